#include "bpe_tokenizer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "utf8.h"

namespace halyard::runtime {
namespace {

std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
}

}  // namespace

// The symbols of one word, indexed by the byte offset where each starts (GPT-2's mapping gives
// every byte one character, so the initial symbols are the bytes). A merged-away symbol has
// length 0.
struct BpeTokenizer::Scratch {
  struct Candidate {
    int rank;
    std::int32_t left;
    std::int32_t left_len;  // lengths when pushed: a change means a stale entry
    std::int32_t right_len;
    // Min-heap order: lowest rank first, then leftmost.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::vector<std::int32_t> id, len, prev, next;
  std::vector<Candidate> heap;
};

Result<std::unique_ptr<Tokenizer>> BpeTokenizer::create(const GgufFile& file, const TokenizerOptions& options) {
  auto tok = std::unique_ptr<BpeTokenizer>(new BpeTokenizer());
  HALYARD_RETURN_IF_ERROR(tok->load_common(file));
  // GPT-2's reversible byte -> printable character mapping.
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(next++);
    tok->byte_to_char_[b] = utf8_encode(cp);
    tok->char_to_byte_.emplace(tok->byte_to_char_[b], static_cast<unsigned char>(b));
  }

  // Symbol ids for every text a word's merging can produce: the bytes' characters and both sides
  // and the result of every merge. A vocabulary text keeps its token id.
  std::unordered_map<std::string, std::int32_t> extra;
  auto intern = [&](const std::string& text) -> std::int32_t {
    if (auto id = tok->find(text))
      return *id;
    return extra.emplace(text, static_cast<std::int32_t>(tok->vocab_size() + extra.size())).first->second;
  };
  for (int b = 0; b < 256; ++b)
    tok->byte_symbol_[b] = intern(tok->byte_to_char_[b]);

  const auto* merges = file.find("tokenizer.ggml.merges");
  const auto* arr = merges ? merges->as_array() : nullptr;
  if (!arr || arr->type != GgufType::kString)
    return data_loss("gpt2 tokenizer needs tokenizer.ggml.merges (a string array)");
  tok->merges_.reserve(arr->strings.size());
  for (std::size_t i = 0; i < arr->strings.size(); ++i) {
    // "left right": symbols never hold an ASCII space (GPT-2 maps byte 0x20 to U+0120), so an
    // entry without exactly one space, or with an empty side, can never apply.
    const std::string_view m = arr->strings[i];
    const std::size_t space = m.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == m.size() ||
        m.find(' ', space + 1) != std::string_view::npos)
      continue;
    const std::string left(m.substr(0, space)), right(m.substr(space + 1));
    const std::int32_t l = intern(left), r = intern(right);
    const std::int32_t joined = intern(left + right);
    tok->merges_.emplace(pair_key(l, r), Merge{static_cast<int>(i), joined});  // the first (lowest) rank wins
  }

  const std::string pre(file.get_string("tokenizer.ggml.pre").value_or("default"));
  bool forced = false;
  HALYARD_ASSIGN_OR_RETURN(tok->pre_, PreTokenizer::for_name(pre, options.force_gpt2_split, &forced));
  if (forced) {
    spdlog::warn(
        "tokenizer: unknown pre-tokenizer '{}', split as GPT-2 splits (forced); text may tokenize "
        "differently from the model's own tokenizer",
        pre);
  }
  if (tok->pre_->default_add_bos() && !file.find("tokenizer.ggml.add_bos_token"))
    tok->add_bos_ = true;
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

const BpeTokenizer::Merge* BpeTokenizer::find_merge(std::int32_t left, std::int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

// A symbol that is a vocabulary token is that token; any other falls back to its bytes'
// characters. A byte whose character the vocabulary lacks (SmolLM2 has none for 21 bytes, e.g.
// the control 0x13) is dropped, as llama.cpp drops it; say so once.
void BpeTokenizer::push_symbol(std::int32_t symbol, std::string_view bytes, std::vector<TokenId>& out) const {
  if (static_cast<std::size_t>(symbol) < vocab_size()) {
    out.push_back(symbol);
    return;
  }
  for (unsigned char b : bytes) {
    const std::int32_t s = byte_symbol_[b];
    if (static_cast<std::size_t>(s) < vocab_size()) {
      out.push_back(s);
    } else if (!warned_unencodable_.exchange(true)) {
      spdlog::warn("tokenizer: the vocabulary has no token for byte 0x{:02x}; such bytes are dropped", b);
    }
  }
}

void BpeTokenizer::encode_word(std::string_view word, Scratch& s, std::vector<TokenId>& out) const {
  if (word.empty())
    return;
  if (pre_->ignore_merges()) {  // a whole word that is a token is taken as is
    std::string mapped;
    for (unsigned char c : word)
      mapped += byte_to_char_[c];
    if (auto id = find(mapped)) {
      out.push_back(*id);
      return;
    }
  }
  const auto n = static_cast<std::int32_t>(word.size());
  if (n == 1) {
    push_symbol(byte_symbol_[static_cast<unsigned char>(word[0])], word, out);
    return;
  }
  s.id.resize(static_cast<std::size_t>(n));
  s.len.assign(static_cast<std::size_t>(n), 1);
  s.prev.resize(static_cast<std::size_t>(n));
  s.next.resize(static_cast<std::size_t>(n));
  for (std::int32_t i = 0; i < n; ++i) {
    s.id[static_cast<std::size_t>(i)] = byte_symbol_[static_cast<unsigned char>(word[static_cast<std::size_t>(i)])];
    s.prev[static_cast<std::size_t>(i)] = i - 1;
    s.next[static_cast<std::size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  s.heap.clear();
  auto consider = [&](std::int32_t left) {
    if (left < 0)
      return;
    const std::int32_t right = s.next[static_cast<std::size_t>(left)];
    if (right < 0)
      return;
    if (const Merge* m = find_merge(s.id[static_cast<std::size_t>(left)], s.id[static_cast<std::size_t>(right)])) {
      s.heap.push_back({m->rank, left, s.len[static_cast<std::size_t>(left)], s.len[static_cast<std::size_t>(right)]});
      std::push_heap(s.heap.begin(), s.heap.end());
    }
  };
  for (std::int32_t i = 0; i + 1 < n; ++i)
    consider(i);
  while (!s.heap.empty()) {
    std::pop_heap(s.heap.begin(), s.heap.end());
    const Scratch::Candidate c = s.heap.back();
    s.heap.pop_back();
    const auto left = static_cast<std::size_t>(c.left);
    const std::int32_t right = s.next[left];
    // Stale unless both symbols are still the ones it was pushed for: a symbol's start and
    // length fix its text, and so its id.
    if (s.len[left] != c.left_len || right < 0 || s.len[static_cast<std::size_t>(right)] != c.right_len)
      continue;
    const auto r = static_cast<std::size_t>(right);
    s.id[left] = find_merge(s.id[left], s.id[r])->result;
    s.len[left] += s.len[r];
    s.len[r] = 0;
    s.next[left] = s.next[r];
    if (s.next[r] >= 0)
      s.prev[static_cast<std::size_t>(s.next[r])] = c.left;
    consider(s.prev[left]);
    consider(c.left);
  }
  for (std::int32_t i = 0; i >= 0; i = s.next[static_cast<std::size_t>(i)]) {
    const auto u = static_cast<std::size_t>(i);
    push_symbol(s.id[u], word.substr(u, static_cast<std::size_t>(s.len[u])), out);
  }
}

void BpeTokenizer::encode_fragment(std::string_view text, bool /*after_special*/, std::size_t max_tokens,
                                   std::vector<TokenId>& out) const {
  Scratch scratch;
  pre_->split(text, [&](std::string_view word) {
    encode_word(word, scratch, out);
    return out.size() <= max_tokens;  // past the limit: the rest is not tokenized
  });
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
