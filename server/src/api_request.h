// OpenAI request bodies (POST /v1/chat/completions and /v1/completions) to what the engine runs:
// every field checked for type and range, an invalid one answered with OpenAI's error naming it
// (`param`), unknown fields ignored, as vLLM's OpenAI server does. Pure functions of the body,
// so the request path is unit-tested and fuzzed without a model or a socket.
// Thread safety: stateless.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "halyard/runtime/chat_template.h"
#include "halyard/runtime/sampler.h"

namespace halyard::server {

// OpenAI's error object: {"error": {"message", "type", "param", "code"}} with the HTTP status.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::optional<std::string> param;
  std::optional<std::string> code;
};

enum class ApiKind { kChat, kCompletion };

struct RequestLimits {
  int max_n = 16;           // choices per request
  int max_stop = 4;         // stop strings (OpenAI's limit)
  int max_json_depth = 64;  // nesting of the body (a deep body would exhaust the parser's stack)
  int max_messages = 1024;  // chat turns
};

struct GenerationRequest {
  ApiKind kind = ApiKind::kChat;
  std::string model;  // as sent; "" when absent
  // Chat: the conversation (runtime/chat_messages.h reads it). Content parts of type "text" are
  // joined; "developer" is "system"; assistant tool_calls and tool turns are kept for the template.
  std::vector<runtime::ChatMessage> messages;
  // Chat: `tools` as JSON text for the template; empty when none were given or tool_choice is
  // "none" (the template then renders no tools and the output is not parsed for calls).
  std::string tools_json;
  bool parallel_tool_calls = true;  // false: only the first call the model writes is returned
  // Test builds only (HALYARD_SERVER_FAULT_INJECTION): `halyard_test_output`, text whose tokens
  // replace the sampled ones, so a test sees a chosen output through the whole response path.
  std::optional<std::string> test_output;
  // Completions: the prompt as text, or as token ids when prompt_is_tokens.
  std::string prompt;
  std::vector<runtime::TokenId> prompt_tokens;
  bool prompt_is_tokens = false;
  bool echo = false;  // completions: the prompt is returned before the completion
  // max_completion_tokens, else max_tokens; empty: until the context is full.
  std::optional<int> max_tokens;
  // OpenAI's defaults: temperature 1, top_p 1, top-k and min-p off, no penalties. The seed is
  // given or drawn at random (seed_given false).
  runtime::SamplerOptions sampler;
  bool seed_given = false;
  std::vector<std::string> stop;  // up to max_stop non-empty strings
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // -1: no log-probabilities; else the number of top alternatives per token (chat: logprobs
  // true with top_logprobs; completions: logprobs N).
  int logprobs = -1;
  // vLLM's extension: generate past the model's end-of-generation token (for benchmarks).
  bool ignore_eos = false;
};

struct ParsedRequest {
  GenerationRequest request;
  std::optional<ApiError> error;  // set: the request is invalid and `request` is meaningless
};

// Parses and checks a body. Token ids (logit_bias keys, token prompts) are checked against
// vocab_size here; the prompt's length against the context is the server's check, after
// tokenization.
ParsedRequest parse_generation_request(std::string_view body, ApiKind kind, std::size_t vocab_size,
                                       const RequestLimits& limits = {});

// The deepest nesting of arrays and objects in `body`, counted outside strings; stops counting
// once past `limit` (returns limit + 1).
int json_depth(std::string_view body, int limit);

}  // namespace halyard::server
