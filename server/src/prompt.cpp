#include "prompt.h"

namespace halyard::server {
namespace {

ApiError too_long(std::string message, std::string param) {
  ApiError e;
  e.message = std::move(message);
  e.code = "context_length_exceeded";
  e.param = std::move(param);
  return e;
}

}  // namespace

PromptTokens build_prompt(GenerationRequest& r, const runtime::Tokenizer& tok, const runtime::ChatTemplate& chat,
                          int context_length, int max_prompt) {
  PromptTokens out;
  const std::string param = r.kind == ApiKind::kChat ? "messages" : "prompt";
  // Tokenizing stops one token past the limit: a huge prompt costs no more than a long one.
  const auto limit = static_cast<std::size_t>(max_prompt) + 1;
  if (r.kind == ApiKind::kChat) {
    auto text = chat.apply(r.messages, true, r.tools_json);
    if (!text.is_ok()) {
      // The model's template refused the conversation (raise_exception: roles that do not
      // alternate, say): the client's to fix.
      ApiError e;
      e.message = text.status().message();
      e.param = param;
      out.error = e;
      return out;
    }
    out.tokens = tok.encode(text.value(), true, true, limit);
    // A template that writes BOS itself, after a tokenizer that adds one: keep one.
    if (out.tokens.size() >= 2 && out.tokens[0] == tok.bos() && out.tokens[1] == tok.bos())
      out.tokens.erase(out.tokens.begin());
  } else if (r.prompt_is_tokens) {
    out.tokens = r.prompt_tokens;
  } else {
    out.tokens = tok.encode(r.prompt, true, true, limit);
  }
  if (out.tokens.empty()) {
    ApiError e;
    e.message = "the prompt has no tokens";
    e.param = param;
    out.error = e;
    return out;
  }
  if (static_cast<int>(out.tokens.size()) > max_prompt) {
    out.error = too_long("the prompt has more than " + std::to_string(max_prompt) +
                             " tokens, the most this server accepts (context length " + std::to_string(context_length) +
                             "); shorten it",
                         param);
    return out;
  }
  const int room = context_length - static_cast<int>(out.tokens.size());
  if (r.max_tokens && *r.max_tokens > room) {
    out.error = too_long("the prompt has " + std::to_string(out.tokens.size()) + " tokens and max_tokens asks for " +
                             std::to_string(*r.max_tokens) + " more, past the context length of " +
                             std::to_string(context_length) + "; lower max_tokens",
                         "max_tokens");
    return out;
  }
  if (!r.max_tokens)
    r.max_tokens = room;
  return out;
}

}  // namespace halyard::server
