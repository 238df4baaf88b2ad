// A generation request's prompt as tokens: the chat template's rendering of the conversation
// (special tokens parsed, one BOS) or the completion prompt, checked against the context. Pure,
// so the HTTP handler and the request fuzzer run the same code.
// Thread safety: stateless; the tokenizer and template are only read.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "api_request.h"
#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/tokenizer.h"

namespace halyard::server {

struct PromptTokens {
  std::vector<runtime::TokenId> tokens;
  std::optional<ApiError> error;  // empty prompt, longer than max_prompt, or max_tokens past the context
};

// max_prompt: the most prompt tokens accepted (< context_length). Fills request.max_tokens
// with the room left in the context when the request did not set it.
PromptTokens build_prompt(GenerationRequest& request, const runtime::Tokenizer& tokenizer,
                          const runtime::ChatTemplate& chat_template, int context_length, int max_prompt);

}  // namespace halyard::server
