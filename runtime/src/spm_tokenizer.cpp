#include "spm_tokenizer.h"

#include <cstdio>
#include <cstring>

#include "utf8.h"

namespace halyard::runtime {
namespace {
constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK
}

Result<std::unique_ptr<Tokenizer>> SpmTokenizer::create(const GgufFile& file) {
  auto tok = std::unique_ptr<SpmTokenizer>(new SpmTokenizer());
  HALYARD_RETURN_IF_ERROR(tok->load_common(file));
  tok->scores_.assign(tok->vocab_size(), 0.f);
  if (const auto* s = file.find("tokenizer.ggml.scores")) {
    const auto* arr = s->as_array();
    if (!arr || arr->type != GgufType::kF32 || arr->count != tok->vocab_size()) {
      return data_loss("tokenizer.ggml.scores must be an f32 array as long as the vocabulary");
    }
    std::memcpy(tok->scores_.data(), arr->data, tok->vocab_size() * 4);
  }
  if (auto v = tok->find("<unk>"))
    tok->unk_ = *v;
  if (auto v = file.get_int("tokenizer.ggml.unknown_token_id"))
    tok->unk_ = static_cast<TokenId>(*v);
  if (auto v = file.get_int("tokenizer.ggml.add_space_prefix"))
    tok->add_space_prefix_ = *v != 0;
  if (!file.find("tokenizer.ggml.add_bos_token"))
    tok->add_bos_ = true;  // SentencePiece models default to BOS
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tok->byte_tokens_[b] = tok->find(name).value_or(tok->unk_);
  }
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

void SpmTokenizer::encode_fragment(std::string_view text, bool first, std::vector<TokenId>& out) const {
  std::string escaped;
  if (first && add_space_prefix_)
    escaped += kSpace;  // the leading space goes before the first text only
  for (char c : text) {
    if (c == ' ') {
      escaped += kSpace;
    } else {
      escaped += c;
    }
  }
  std::vector<std::string> symbols = utf8_chars(escaped);
  while (symbols.size() > 1) {
    float best_score = 0.f;
    std::ptrdiff_t best = -1;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto id = find(symbols[i] + symbols[i + 1]);
      if (id && (best < 0 || scores_[static_cast<std::size_t>(*id)] > best_score)) {
        best_score = scores_[static_cast<std::size_t>(*id)];
        best = static_cast<std::ptrdiff_t>(i);
      }
    }
    if (best < 0)
      break;
    symbols[static_cast<std::size_t>(best)] += symbols[static_cast<std::size_t>(best) + 1];
    symbols.erase(symbols.begin() + best + 1);
  }
  for (const auto& s : symbols) {
    if (auto id = find(s)) {
      out.push_back(*id);
    } else {
      for (unsigned char c : s) {
        if (byte_tokens_[c] >= 0)
          out.push_back(byte_tokens_[c]);
      }
    }
  }
}

std::string SpmTokenizer::token_to_piece(TokenId id, bool render_special) const {
  if (id < 0 || static_cast<std::size_t>(id) >= vocab_size())
    return {};
  const TokenType type = token_type(id);
  const std::string& text = token_text(id);
  if (type == TokenType::kControl)
    return render_special ? text : std::string();
  if (type == TokenType::kByte) {
    unsigned value = 0;
    if (std::sscanf(text.c_str(), "<0x%02X>", &value) == 1)
      return std::string(1, static_cast<char>(value));
    return {};
  }
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string SpmTokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
  std::string out;
  bool first_text = true;
  for (TokenId id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (first_text && id >= 0 && static_cast<std::size_t>(id) < vocab_size() && token_type(id) != TokenType::kControl) {
      if (add_space_prefix_ && !piece.empty() && piece[0] == ' ')
        piece.erase(0, 1);
      first_text = false;
    }
    out += piece;
  }
  return out;
}

}  // namespace halyard::runtime
