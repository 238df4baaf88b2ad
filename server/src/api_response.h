// OpenAI response bodies: completions and chat completions whole and as stream chunks, usage,
// log-probabilities in each endpoint's format, and the error object. Text that is not valid
// UTF-8 (a token's bytes in a log-probability entry can be part of a character) is written with
// replacement characters, never refused.
// Thread safety: stateless.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api_request.h"
#include "halyard/runtime/tool_call_parser.h"

namespace halyard::server {

struct TokenLogprobText {
  std::string token;  // the token's bytes
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;  // most likely first
  int text_offset = 0;                             // completions: where the token starts in the text
};

struct ChoiceResult {
  int index = 0;
  std::string text;
  std::string finish_reason;  // "stop", "length" or "tool_calls"
  std::vector<TokenLogprobText> logprobs;
  // Chat with tools: the calls parsed from the output; content_null when no text is left
  // outside them (the message's content is then null, as OpenAI's).
  std::vector<runtime::ToolCall> tool_calls;
  bool content_null = false;
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;
};

// What every response and chunk of one request repeats.
struct ResponseHeader {
  ApiKind kind = ApiKind::kChat;
  std::string id;  // chatcmpl-... or cmpl-...
  long long created = 0;
  std::string model;
};

// "chatcmpl-" or "cmpl-" and 24 random hexadecimal digits.
std::string make_response_id(ApiKind kind);

// The whole response of a non-streamed request.
nlohmann::json completion_body(const ResponseHeader& h, const std::vector<ChoiceResult>& choices, const Usage& usage,
                               bool with_logprobs);
// One stream chunk of choice `index`: the first of a chat choice carries the role; `text` is
// the delta; finish_reason ends the choice. with_usage_field: include_usage was asked, so every
// chunk carries "usage": null (OpenAI's shape).
nlohmann::json chunk_body(const ResponseHeader& h, int index, const std::string& text, bool first,
                          const std::optional<std::string>& finish_reason,
                          const std::vector<TokenLogprobText>* logprobs, bool with_logprobs, bool with_usage_field);
// The stream chunks of one tool call of chat choice `index`, as OpenAI sends them: the call's
// index, id, type and name with empty arguments, then the arguments.
std::vector<nlohmann::json> tool_call_chunk_bodies(const ResponseHeader& h, int index, int call_index,
                                                   const runtime::ToolCall& call, bool with_usage_field);
// The last chunk when include_usage: empty choices and the usage.
nlohmann::json usage_chunk_body(const ResponseHeader& h, const Usage& usage);

nlohmann::json usage_json(const Usage& usage);
nlohmann::json error_json(const ApiError& e);
// The JSON text, with invalid UTF-8 replaced.
std::string dump(const nlohmann::json& j);

}  // namespace halyard::server
