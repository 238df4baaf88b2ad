// Regex pre-tokenization (the split before BPE), on ICU's regex engine so \p{L}, \p{N},
// lookahead and case-insensitive groups behave as in the tokenizers the models were trained with.
// Each expression splits every piece further, keeping both the matches and the text between them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/hal/status.h"

namespace halyard::runtime {

class PreTokenizer {
 public:
  ~PreTokenizer();
  // `pre` is GGUF's tokenizer.ggml.pre. An unknown name is an unimplemented error listing
  // the known ones, unless force_gpt2_split asks for GPT-2's expression instead (`*forced` then
  // says that it was used, so the caller can warn).
  static Result<std::unique_ptr<PreTokenizer>> for_name(std::string_view pre, bool force_gpt2_split, bool* forced);
  // The names for_name knows, comma-separated, for messages and docs.
  static std::string known_names();
  static Result<std::unique_ptr<PreTokenizer>> from_expressions(const std::vector<std::string>& expressions);
  std::vector<std::string> split(std::string_view text) const;
  // Llama 3's tokenizer takes a pre-token that is itself a vocabulary token as is, before any
  // merge (tokenizer.json's "ignore_merges"), and adds BOS when the file does not say.
  bool ignore_merges() const { return ignore_merges_; }
  bool default_add_bos() const { return default_add_bos_; }
  // Hands each piece to `on_piece` in order as it is found; stops when it returns false, so a
  // caller that has seen enough does not pay for splitting the rest of the text.
  void split(std::string_view text, const std::function<bool(std::string_view piece)>& on_piece) const;

 private:
  PreTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool ignore_merges_ = false;
  bool default_add_bos_ = false;
};

}  // namespace halyard::runtime
