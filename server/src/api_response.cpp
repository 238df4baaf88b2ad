#include "api_response.h"

#include <random>

namespace halyard::server {
namespace {

using nlohmann::json;

json bytes_of(const std::string& s) {
  json out = json::array();
  for (const char c : s)
    out.push_back(static_cast<unsigned char>(c));
  return out;
}

// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
json chat_logprobs(const std::vector<TokenLogprobText>& entries) {
  json content = json::array();
  for (const TokenLogprobText& t : entries) {
    json top = json::array();
    for (const auto& [token, lp] : t.top)
      top.push_back({{"token", token}, {"logprob", lp}, {"bytes", bytes_of(token)}});
    content.push_back(
        {{"token", t.token}, {"logprob", t.logprob}, {"bytes", bytes_of(t.token)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// Completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}.
json completion_logprobs(const std::vector<TokenLogprobText>& entries) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenLogprobText& t : entries) {
    tokens.push_back(t.token);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const auto& [token, lp] : t.top) {
      if (!top.contains(token))  // two tokens may render alike; the likelier one stays
        top[token] = lp;
    }
    tops.push_back(top);
    offsets.push_back(t.text_offset);
  }
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json logprobs_json(ApiKind kind, const std::vector<TokenLogprobText>& entries) {
  return kind == ApiKind::kChat ? chat_logprobs(entries) : completion_logprobs(entries);
}

json header_json(const ResponseHeader& h, const char* object) {
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

}  // namespace

std::string make_response_id(ApiKind kind) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = kind == ApiKind::kChat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i)
    id += kHex[rng() & 15];
  return id;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json completion_body(const ResponseHeader& h, const std::vector<ChoiceResult>& choices, const Usage& usage,
                     bool with_logprobs) {
  const bool chat = h.kind == ApiKind::kChat;
  json body = header_json(h, chat ? "chat.completion" : "text_completion");
  json list = json::array();
  for (const ChoiceResult& c : choices) {
    json choice = {{"index", c.index}};
    if (chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.content_null ? json(nullptr) : json(c.text)}};
      if (!c.tool_calls.empty()) {
        json calls = json::array();
        for (const runtime::ToolCall& t : c.tool_calls)
          calls.push_back(
              {{"id", t.id}, {"type", "function"}, {"function", {{"name", t.name}, {"arguments", t.arguments}}}});
        choice["message"]["tool_calls"] = std::move(calls);
      }
    } else {
      choice["text"] = c.text;
    }
    choice["logprobs"] = with_logprobs ? logprobs_json(h.kind, c.logprobs) : json(nullptr);
    choice["finish_reason"] = c.finish_reason;
    list.push_back(std::move(choice));
  }
  body["choices"] = std::move(list);
  body["usage"] = usage_json(usage);
  return body;
}

json chunk_body(const ResponseHeader& h, int index, const std::string& text, bool first,
                const std::optional<std::string>& finish_reason, const std::vector<TokenLogprobText>* logprobs,
                bool with_logprobs, bool with_usage_field) {
  const bool chat = h.kind == ApiKind::kChat;
  json body = header_json(h, chat ? "chat.completion.chunk" : "text_completion");
  json choice = {{"index", index}};
  if (chat) {
    json delta = json::object();
    if (first)
      delta["role"] = "assistant";
    // The closing chunk of a choice carries an empty delta, as OpenAI's does.
    if (first || !text.empty() || !finish_reason)
      delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] =
      with_logprobs && logprobs && !logprobs->empty() ? logprobs_json(h.kind, *logprobs) : json(nullptr);
  choice["finish_reason"] = finish_reason ? json(*finish_reason) : json(nullptr);
  body["choices"] = json::array({std::move(choice)});
  if (with_usage_field)
    body["usage"] = nullptr;
  return body;
}

std::vector<json> tool_call_chunk_bodies(const ResponseHeader& h, int index, int call_index,
                                         const runtime::ToolCall& call, bool with_usage_field) {
  const json deltas[] = {
      {{"tool_calls", json::array({{{"index", call_index},
                                    {"id", call.id},
                                    {"type", "function"},
                                    {"function", {{"name", call.name}, {"arguments", ""}}}}})}},
      {{"tool_calls", json::array({{{"index", call_index}, {"function", {{"arguments", call.arguments}}}}})}},
  };
  std::vector<json> out;
  for (const json& delta : deltas) {
    json body = header_json(h, "chat.completion.chunk");
    body["choices"] =
        json::array({{{"index", index}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
    if (with_usage_field)
      body["usage"] = nullptr;
    out.push_back(std::move(body));
  }
  return out;
}

json usage_chunk_body(const ResponseHeader& h, const Usage& usage) {
  json body = header_json(h, h.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion");
  body["choices"] = json::array();
  body["usage"] = usage_json(usage);
  return body;
}

json error_json(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param ? json(*e.param) : json(nullptr)},
            {"code", e.code ? json(*e.code) : json(nullptr)}}}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace halyard::server
