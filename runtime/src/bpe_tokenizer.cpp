#include "bpe_tokenizer.h"

#include <spdlog/spdlog.h>

#include <limits>

#include "utf8.h"

namespace halyard::runtime {

Result<std::unique_ptr<Tokenizer>> BpeTokenizer::create(const GgufFile& file) {
  auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer());
  HALYARD_RETURN_IF_ERROR(tok->load_common(file));
  const auto* merges = file.find("tokenizer.ggml.merges");
  const auto* arr = merges ? merges->as_array() : nullptr;
  if (!arr || arr->type != GgufType::kString)
    return data_loss("gpt2 tokenizer needs tokenizer.ggml.merges (a string array)");
  tok->merge_rank_.reserve(arr->strings.size());
  for (std::size_t i = 0; i < arr->strings.size(); ++i) {
    tok->merge_rank_.emplace(std::string(arr->strings[i]), static_cast<int>(i));
  }
  const std::string pre(file.get_string("tokenizer.ggml.pre").value_or("default"));
  bool known = true;
  HALYARD_ASSIGN_OR_RETURN(tok->pre_, PreTokenizer::for_name(pre, &known));
  if (!known) {
    spdlog::warn("tokenizer: unknown pre-tokenizer '{}', using the GPT-2 expression; text may tokenize differently",
                 pre);
  }
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") {
    tok->ignore_merges_ = true;  // a whole word that is a token is taken as is
    if (!file.find("tokenizer.ggml.add_bos_token"))
      tok->add_bos_ = true;
  }
  // GPT-2's reversible byte -> printable character mapping.
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
    tok->byte_to_char_[b] = utf8_encode(cp);
    tok->char_to_byte_.emplace(tok->byte_to_char_[b], static_cast<unsigned char>(b));
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

void BpeTokenizer::encode_word(const std::string& word, std::vector<TokenId>& out) const {
  std::string mapped;
  for (unsigned char c : word)
    mapped += byte_to_char_[c];
  if (ignore_merges_) {
    if (auto id = find(mapped)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<std::string> symbols = utf8_chars(mapped);
  while (symbols.size() > 1) {
    int best_rank = std::numeric_limits<int>::max();
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merge_rank_.find(symbols[i] + " " + symbols[i + 1]);
      if (it != merge_rank_.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == std::numeric_limits<int>::max())
      break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  for (const auto& s : symbols) {
    if (auto id = find(s)) {
      out.push_back(*id);
      continue;
    }
    // Not in the vocabulary: fall back to its single byte-characters. A byte whose character
    // the vocabulary lacks (SmolLM2 has none for 21 bytes, e.g. the control 0x13) is dropped,
    // as llama.cpp drops it; say so once.
    for (const auto& ch : utf8_chars(s)) {
      if (auto id = find(ch)) {
        out.push_back(*id);
      } else if (!warned_unencodable_.exchange(true)) {
        spdlog::warn("tokenizer: the vocabulary has no token for byte 0x{:02x}; such bytes are dropped",
                     char_to_byte_.count(ch) ? char_to_byte_.at(ch) : 0);
      }
    }
  }
}

void BpeTokenizer::encode_fragment(std::string_view text, bool /*first*/, std::vector<TokenId>& out) const {
  for (const auto& word : pre_->split(text))
    encode_word(word, out);
}

std::string BpeTokenizer::token_to_piece(TokenId id, bool render_special) const {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab_size())
    return {};
  const TokenType type = token_type(id);
  const std::string& text = token_text(id);
  if (type == TokenType::kControl)
    return render_special ? text : std::string();
  if (type == TokenType::kUserDefined)
    return text;
  std::string out;
  for (const auto& ch : utf8_chars(text)) {
    auto it = char_to_byte_.find(ch);
    if (it != char_to_byte_.end()) {
      out += static_cast<char>(it->second);
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace halyard::runtime
