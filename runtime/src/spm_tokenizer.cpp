#include "spm_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

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
  // A NaN score would break the merge heap's ordering; it ranks below every real score.
  for (float& score : tok->scores_) {
    if (std::isnan(score))
      score = -std::numeric_limits<float>::infinity();
  }
  for (const auto& t : tok->tokens_)
    tok->max_token_bytes_ = std::max(tok->max_token_bytes_, t.size());
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

void SpmTokenizer::encode_fragment(std::string_view text, bool after_special, std::size_t max_tokens,
                                   std::vector<TokenId>& out) const {
  std::string escaped;
  if (after_special && add_space_prefix_)
    escaped += kSpace;  // before the text's start and after each special token, as llama.cpp does
  for (char c : text) {
    if (c == ' ') {
      escaped += kSpace;
    } else {
      escaped += c;
    }
  }
  // Symbols are indexed by the byte offset where they start; a merged-away one has length 0.
  // Candidate pairs wait in a heap, best score first and leftmost on ties; an entry whose two
  // symbols changed since it was pushed (their lengths tell) is skipped when it surfaces.
  struct Candidate {
    float score;
    std::size_t left;
    std::size_t left_len, right_len;
    bool operator<(const Candidate& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  const std::size_t n = escaped.size();
  std::vector<std::size_t> len(n, 0);
  std::vector<std::ptrdiff_t> prev(n, -1), next(n, -1);
  std::ptrdiff_t last = -1;
  for (std::size_t i = 0; i < n;) {
    len[i] = std::min(utf8_sequence_length(static_cast<unsigned char>(escaped[i])), n - i);
    prev[i] = last;
    if (last >= 0)
      next[static_cast<std::size_t>(last)] = static_cast<std::ptrdiff_t>(i);
    last = static_cast<std::ptrdiff_t>(i);
    i += len[i];
  }
  const std::string_view text_view(escaped);
  std::vector<Candidate> heap;
  auto consider = [&](std::ptrdiff_t left) {
    if (left < 0)
      return;
    const auto l = static_cast<std::size_t>(left);
    const std::ptrdiff_t right = next[l];
    if (right < 0)
      return;
    const std::size_t r_len = len[static_cast<std::size_t>(right)];
    if (len[l] + r_len > max_token_bytes_)
      return;  // longer than any token: no lookup needed
    if (auto id = find(text_view.substr(l, len[l] + r_len))) {
      heap.push_back({scores_[static_cast<std::size_t>(*id)], l, len[l], r_len});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  for (std::size_t i = 0; i < n; i += len[i])
    consider(static_cast<std::ptrdiff_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate c = heap.back();
    heap.pop_back();
    const std::ptrdiff_t right = next[c.left];
    if (len[c.left] != c.left_len || right < 0 || len[static_cast<std::size_t>(right)] != c.right_len)
      continue;
    const auto r = static_cast<std::size_t>(right);
    len[c.left] += len[r];
    len[r] = 0;
    next[c.left] = next[r];
    if (next[r] >= 0)
      prev[static_cast<std::size_t>(next[r])] = static_cast<std::ptrdiff_t>(c.left);
    consider(prev[c.left]);
    consider(static_cast<std::ptrdiff_t>(c.left));
  }
  for (std::ptrdiff_t i = n > 0 ? 0 : -1; i >= 0; i = next[static_cast<std::size_t>(i)]) {
    const std::string_view s = text_view.substr(static_cast<std::size_t>(i), len[static_cast<std::size_t>(i)]);
    if (auto id = find(s)) {
      out.push_back(*id);
    } else {
      for (unsigned char c : s) {
        if (byte_tokens_[c] >= 0)
          out.push_back(byte_tokens_[c]);
      }
    }
    if (out.size() > max_tokens)
      return;
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
