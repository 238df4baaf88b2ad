// Tokenizers read from GGUF metadata:
//  - "gpt2": byte-level BPE with a regex pre-tokenizer chosen by tokenizer.ggml.pre
//    (smollm, gpt2/default, llama3/llama-bpe, qwen2/deepseek-r1-qwen, ...; an unknown one is an
//    error unless TokenizerOptions::force_gpt2_split), as SmolLM2, Llama 3 and Qwen2 use;
//  - "llama": SentencePiece-style BPE over scores with byte fallback (Llama 1/2, Mistral,
//    Gemma 3).
// As in llama.cpp, user-defined tokens (Gemma's runs of newlines, spaces and tabs, its HTML tags)
// are always matched literally in the text; control tokens ("<start_of_turn>") only when
// parse_special is set.
// Thread safety: immutable after construction; encode/decode from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "halyard/hal/status.h"
#include "halyard/runtime/gguf.h"

namespace halyard::runtime {

using TokenId = std::int32_t;

enum class TokenType : std::int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerOptions {
  // A byte-level BPE file whose tokenizer.ggml.pre Halyard does not know fails to load, since
  // another split would quietly give other tokens than the model was trained on; set this to
  // split it as GPT-2 does instead (a warning is logged).
  bool force_gpt2_split = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& file, const TokenizerOptions& options = {});

  static constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

  // add_special: prepend BOS where the model asks for it. parse_special: treat control-token
  // texts in `text` (e.g. "<|im_start|>") as those tokens rather than as plain text
  // (user-defined tokens are matched either way).
  // max_tokens: once more than max_tokens tokens are produced, stop without tokenizing the rest
  // of the text and return the first max_tokens + 1 tokens; a result longer than max_tokens
  // thus says the limit was exceeded. (The byte-level BPE stops after the pre-token that passes
  // the limit; SentencePiece merges a whole fragment at once, so it stops after that fragment.)
  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special,
                              std::size_t max_tokens = kNoLimit) const;
  // The bytes of one token; control tokens render as their text only when render_special.
  virtual std::string token_to_piece(TokenId id, bool render_special) const = 0;
  virtual std::string decode(const std::vector<TokenId>& ids, bool render_special = true) const;

  std::size_t vocab_size() const { return tokens_.size(); }
  const std::string& token_text(TokenId id) const { return tokens_.at(static_cast<std::size_t>(id)); }
  TokenType token_type(TokenId id) const { return types_.at(static_cast<std::size_t>(id)); }
  std::optional<TokenId> find(std::string_view text) const;
  TokenId bos() const { return bos_; }
  TokenId eos() const { return eos_; }
  bool add_bos() const { return add_bos_; }
  // End-of-generation: EOS and the end-of-turn tokens of the chat formats.
  bool is_end_of_generation(TokenId id) const;

 protected:
  Status load_common(const GgufFile& file);
  // Appends the tokens of plain text (no special tokens in it); `after_special` marks a fragment
  // at the start of the input or right after a special token, where SentencePiece puts its
  // space prefix (as llama.cpp does). May stop early once `out` holds more than max_tokens tokens.
  virtual void encode_fragment(std::string_view text, bool after_special, std::size_t max_tokens,
                               std::vector<TokenId>& out) const = 0;
  // Splits text around special tokens (user-defined ones always, control and unknown ones when
  // parse_special); pieces with id >= 0 are special tokens.
  std::vector<std::pair<std::string_view, TokenId>> split_special(std::string_view text, bool parse_special) const;

  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  // Looked up by string_view without building a string (the tokenizers look up substrings).
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, TokenId, TextHash, std::equal_to<>> index_;
  std::vector<TokenId> special_by_length_;
  std::vector<TokenId> end_of_generation_;
  TokenId bos_ = -1;
  TokenId eos_ = -1;
  bool add_bos_ = false;
};

}  // namespace halyard::runtime
