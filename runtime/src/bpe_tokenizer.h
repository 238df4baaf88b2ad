// Byte-level BPE ("gpt2" in GGUF): regex pre-tokenizer, GPT-2 byte-to-unicode mapping, merges
// applied by rank (lowest first, leftmost on ties).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "halyard/runtime/tokenizer.h"
#include "pretokenizer.h"

namespace halyard::runtime {

class BpeTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> create(const GgufFile& file);
  void encode_fragment(std::string_view text, bool first, std::vector<TokenId>& out) const override;
  std::string token_to_piece(TokenId id, bool render_special) const override;

 private:
  void encode_word(const std::string& word, std::vector<TokenId>& out) const;

  std::unique_ptr<PreTokenizer> pre_;
  std::unordered_map<std::string, int> merge_rank_;  // "left right" -> rank
  bool ignore_merges_ = false;
  std::string byte_to_char_[256];
  std::unordered_map<std::string, unsigned char> char_to_byte_;
  mutable std::atomic<bool> warned_unencodable_{false};
};

}  // namespace halyard::runtime
