// SentencePiece-style BPE ("llama" in GGUF): spaces become U+2581, an optional leading space,
// then repeatedly merge the adjacent pair whose joined text is the vocabulary token with the
// highest score (leftmost on ties); characters left unknown fall back to <0xXX> byte tokens.
#pragma once

#include <memory>
#include <vector>

#include "halyard/runtime/tokenizer.h"

namespace halyard::runtime {

class SpmTokenizer final : public Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> create(const GgufFile& file);
  void encode_fragment(std::string_view text, bool first, std::vector<TokenId>& out) const override;
  std::string token_to_piece(TokenId id, bool render_special) const override;
  // Drops the space that encode() put in front of the text.
  std::string decode(const std::vector<TokenId>& ids, bool render_special = true) const override;

 private:
  std::vector<float> scores_;
  TokenId byte_tokens_[256];
  TokenId unk_ = -1;
  bool add_space_prefix_ = true;
};

}  // namespace halyard::runtime
