// Byte-level BPE ("gpt2" in GGUF): regex pre-tokenizer, GPT-2 byte-to-unicode mapping, merges
// applied by rank (lowest first, leftmost on ties). Merging a pre-token of n bytes takes
// O(n log n): its symbols form a linked list and the candidate pairs a min-heap keyed by
// (rank, position), with stale entries skipped when they surface; a pair is looked up by its two
// symbol ids, with no string built.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "halyard/runtime/tokenizer.h"
#include "pretokenizer.h"

namespace halyard::runtime {

class BpeTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> create(const GgufFile& file, const TokenizerOptions& options);
  void encode_fragment(std::string_view text, bool after_special, std::size_t max_tokens,
                       std::vector<TokenId>& out) const override;
  std::string token_to_piece(TokenId id, bool render_special) const override;

 private:
  struct Merge {
    int rank;
    std::int32_t result;  // symbol id of the joined text
  };
  struct Scratch;  // per-call working memory, reused across the words of one fragment
  void encode_word(std::string_view word, Scratch& scratch, std::vector<TokenId>& out) const;
  void push_symbol(std::int32_t symbol, std::string_view bytes, std::vector<TokenId>& out) const;
  const Merge* find_merge(std::int32_t left, std::int32_t right) const;

  std::unique_ptr<PreTokenizer> pre_;
  // Symbol ids: a vocabulary token's text has its token id; other texts that merges name get ids
  // from vocab_size() up. (left id, right id) -> the merge of that pair.
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::int32_t byte_symbol_[256];  // symbol id of each byte's GPT-2 character
  std::string byte_to_char_[256];
  std::unordered_map<std::string, unsigned char> char_to_byte_;
  mutable std::atomic<bool> warned_unencodable_{false};
};

}  // namespace halyard::runtime
