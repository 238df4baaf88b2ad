#include "halyard/runtime/tokenizer.h"

#include <algorithm>
#include <cstring>

#include "bpe_tokenizer.h"
#include "spm_tokenizer.h"

namespace halyard::runtime {

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& file, const TokenizerOptions& options) {
  const auto model = file.get_string("tokenizer.ggml.model");
  if (!model)
    return invalid_argument("model has no tokenizer (tokenizer.ggml.model is missing)");
  std::unique_ptr<Tokenizer> tok;
  if (*model == "gpt2") {
    HALYARD_ASSIGN_OR_RETURN(tok, BpeTokenizer::create(file, options));
  } else if (*model == "llama") {
    HALYARD_ASSIGN_OR_RETURN(tok, SpmTokenizer::create(file));
  } else {
    return unimplemented("tokenizer '" + std::string(*model) + "' is not supported (supported: gpt2, llama)");
  }
  return tok;
}

Status Tokenizer::load_common(const GgufFile& file) {
  const auto* tokens = file.find("tokenizer.ggml.tokens");
  const auto* arr = tokens ? tokens->as_array() : nullptr;
  if (!arr || arr->type != GgufType::kString || arr->count == 0) {
    return data_loss("tokenizer.ggml.tokens is missing or not a string array");
  }
  tokens_.assign(arr->strings.begin(), arr->strings.end());
  types_.assign(tokens_.size(), TokenType::kNormal);
  if (const auto* t = file.find("tokenizer.ggml.token_type")) {
    const auto* ta = t->as_array();
    if (!ta || ta->type != GgufType::kI32 || ta->count != tokens_.size()) {
      return data_loss("tokenizer.ggml.token_type must be an i32 array as long as the vocabulary");
    }
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      std::int32_t v;
      std::memcpy(&v, ta->data + i * 4, 4);
      types_[i] = static_cast<TokenType>(v);
    }
  }
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    index_.emplace(tokens_[i], static_cast<TokenId>(i));
  auto id_key = [&](const char* key, TokenId& out) -> Status {
    if (auto v = file.get_int(key)) {
      if (*v < 0 || *v >= static_cast<std::int64_t>(tokens_.size())) {
        return data_loss(std::string(key) + " = " + std::to_string(*v) + " is outside the vocabulary");
      }
      out = static_cast<TokenId>(*v);
    }
    return Status::ok();
  };
  HALYARD_RETURN_IF_ERROR(id_key("tokenizer.ggml.bos_token_id", bos_));
  HALYARD_RETURN_IF_ERROR(id_key("tokenizer.ggml.eos_token_id", eos_));
  TokenId eot = -1;
  HALYARD_RETURN_IF_ERROR(id_key("tokenizer.ggml.eot_token_id", eot));
  if (auto v = file.get_int("tokenizer.ggml.add_bos_token"))
    add_bos_ = *v != 0;

  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    if (types_[i] == TokenType::kControl || types_[i] == TokenType::kUserDefined || types_[i] == TokenType::kUnknown) {
      if (!tokens_[i].empty())
        special_by_length_.push_back(static_cast<TokenId>(i));
    }
  }
  std::stable_sort(special_by_length_.begin(), special_by_length_.end(),
                   [&](TokenId a, TokenId b) { return token_text(a).size() > token_text(b).size(); });
  if (eos_ >= 0)
    end_of_generation_.push_back(eos_);
  if (eot >= 0)
    end_of_generation_.push_back(eot);
  for (const char* text :
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<|eom_id|>", "<end_of_turn>", "<|end_of_text|>"}) {
    if (auto id = find(text))
      end_of_generation_.push_back(*id);
  }
  return Status::ok();
}

std::optional<TokenId> Tokenizer::find(std::string_view text) const {
  auto it = index_.find(text);
  if (it == index_.end())
    return std::nullopt;
  return it->second;
}

bool Tokenizer::is_end_of_generation(TokenId id) const {
  return std::find(end_of_generation_.begin(), end_of_generation_.end(), id) != end_of_generation_.end();
}

std::vector<std::pair<std::string_view, TokenId>> Tokenizer::split_special(std::string_view text,
                                                                           bool parse_special) const {
  std::vector<std::pair<std::string_view, TokenId>> pieces;
  pieces.emplace_back(text, -1);
  // Longest special tokens first, so "<|im_start|>" wins over any shorter token inside it.
  for (TokenId special : special_by_length_) {
    if (!parse_special && token_type(special) != TokenType::kUserDefined)
      continue;
    const std::string& st = token_text(special);
    std::vector<std::pair<std::string_view, TokenId>> next;
    for (const auto& [piece, id] : pieces) {
      if (id >= 0) {
        next.emplace_back(piece, id);
        continue;
      }
      std::size_t start = 0;
      while (true) {
        const std::size_t hit = piece.find(st, start);
        if (hit == std::string_view::npos)
          break;
        if (hit > start)
          next.emplace_back(piece.substr(start, hit - start), -1);
        next.emplace_back(piece.substr(hit, st.size()), special);
        start = hit + st.size();
      }
      if (start < piece.size())
        next.emplace_back(piece.substr(start), -1);
    }
    pieces = std::move(next);
  }
  return pieces;
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special,
                                       std::size_t max_tokens) const {
  std::vector<TokenId> out;
  if (add_special && add_bos_ && bos_ >= 0)
    out.push_back(bos_);
  // User-defined tokens are cut out of the text even when special tokens are not parsed, as
  // Hugging Face's tokenizers and llama.cpp do: Gemma's "\n\n" is one user-defined token.
  const std::vector<std::pair<std::string_view, TokenId>> pieces = split_special(text, parse_special);
  bool after_special = true;
  for (const auto& [piece, id] : pieces) {
    if (out.size() > max_tokens)
      break;
    if (id >= 0) {
      out.push_back(id);
      after_special = true;
      continue;
    }
    if (piece.empty())
      continue;  // an empty text has no tokens: no SentencePiece space prefix alone either
    encode_fragment(piece, after_special, max_tokens, out);
    after_special = false;
  }
  if (out.size() > max_tokens)
    out.resize(max_tokens + 1);
  return out;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
  std::string out;
  for (TokenId id : ids)
    out += token_to_piece(id, render_special);
  return out;
}

}  // namespace halyard::runtime
