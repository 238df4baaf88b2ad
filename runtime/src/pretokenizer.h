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
  // `pre` is GGUF's tokenizer.ggml.pre; an unknown name falls back to the GPT-2 expression.
  static Result<std::unique_ptr<PreTokenizer>> for_name(std::string_view pre, bool* known);
  static Result<std::unique_ptr<PreTokenizer>> from_expressions(const std::vector<std::string>& expressions);
  std::vector<std::string> split(std::string_view text) const;
  // Hands each piece to `on_piece` in order as it is found; stops when it returns false, so a
  // caller that has seen enough does not pay for splitting the rest of the text.
  void split(std::string_view text, const std::function<bool(std::string_view piece)>& on_piece) const;

 private:
  PreTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace halyard::runtime
