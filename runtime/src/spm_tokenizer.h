// SentencePiece-style BPE ("llama" in GGUF): spaces become U+2581, an optional leading space,
// then repeatedly merge the adjacent pair whose joined text is the vocabulary token with the
// highest score (leftmost on ties); characters left unknown fall back to <0xXX> byte tokens.
// Merging n characters takes O(n log n) (a linked list of symbols and a heap of candidate pairs).
#pragma once

#include <memory>
#include <vector>

#include "halyard/runtime/tokenizer.h"

namespace halyard::runtime {

class SpmTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> create(const GgufFile& file);
  void encode_fragment(std::string_view text, bool after_special, std::size_t max_tokens,
                       std::vector<TokenId>& out) const override;
  std::string token_to_piece(TokenId id, bool render_special) const override;
  // Drops the space that encode() put in front of the text.
  std::string decode(const std::vector<TokenId>& ids, bool render_special = true) const override;

 private:
  std::vector<float> scores_;
  TokenId byte_tokens_[256];
  TokenId unk_ = -1;
  bool add_space_prefix_ = true;
  std::size_t max_token_bytes_ = 0;  // pairs longer than this are never a token
};

}  // namespace halyard::runtime
