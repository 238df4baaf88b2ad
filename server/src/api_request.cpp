#include "api_request.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>

#include "halyard/runtime/chat_messages.h"
#include "halyard/runtime/scheduler.h"

namespace halyard::server {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

ApiError bad(std::string param, std::string message) {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

// Reads an optional number field into `out` and checks [lo, hi]; an error names the field.
std::optional<ApiError> read_number(const json& body, const char* name, double lo, double hi, float& out) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return std::nullopt;
  if (!it->is_number())
    return bad(name, std::string("'") + name + "' must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return bad(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                         ", got " + it->dump());
  }
  out = static_cast<float>(v);
  return std::nullopt;
}

// An integer field in [lo, hi]; a float with an integral value (2.0) is accepted, as Python is.
std::optional<ApiError> read_int(const json& body, const char* name, long long lo, long long hi,
                                 std::optional<long long>& out) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return std::nullopt;
  long long v = 0;
  if (it->is_number_integer()) {
    v = it->is_number_unsigned() && it->get<unsigned long long>() > static_cast<unsigned long long>(hi)
            ? hi + 1
            : it->get<long long>();
  } else if (it->is_number_float() && std::isfinite(it->get<double>()) &&
             std::floor(it->get<double>()) == it->get<double>() && std::fabs(it->get<double>()) < 9e15) {
    v = static_cast<long long>(it->get<double>());
  } else {
    return bad(name, std::string("'") + name + "' must be an integer");
  }
  if (v < lo || v > hi) {
    return bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                         std::to_string(hi) + ", got " + std::to_string(v));
  }
  out = v;
  return std::nullopt;
}

std::optional<ApiError> read_bool(const json& body, const char* name, bool& out) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return std::nullopt;
  if (!it->is_boolean())
    return bad(name, std::string("'") + name + "' must be a boolean");
  out = it->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> from_input_error(const std::optional<runtime::ChatInputError>& e) {
  if (!e)
    return std::nullopt;
  return bad(e->param, e->message);
}

// messages, tools, tool_choice and parallel_tool_calls. `ordered` is the body with its keys in
// the client's order: the template's tojson writes tool schemas as the client wrote them.
std::optional<ApiError> read_chat(const json& body, const ojson& ordered, const RequestLimits& limits,
                                  GenerationRequest& r) {
  const auto it = ordered.find("messages");
  if (it == ordered.end() || it->is_null())
    return bad("messages", "'messages' is required");
  if (auto e =
          from_input_error(runtime::read_chat_messages(*it, static_cast<std::size_t>(limits.max_messages), r.messages)))
    return e;
  std::string tools;
  if (const auto t = ordered.find("tools"); t != ordered.end()) {
    if (auto e = from_input_error(runtime::read_chat_tools(*t, tools)))
      return e;
  }
  if (auto e = read_bool(body, "parallel_tool_calls", r.parallel_tool_calls))
    return e;
  std::string choice = "auto";
  if (const auto c = body.find("tool_choice"); c != body.end() && !c->is_null()) {
    if (c->is_object()) {
      // A named function would need constrained decoding to be honest: not offered.
      return bad("tool_choice",
                 "a named function in 'tool_choice' is not supported by this server; use 'auto' or 'none'");
    }
    if (!c->is_string())
      return bad("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or a named function");
    choice = c->get<std::string>();
    if (choice == "required")
      return bad("tool_choice", "'tool_choice': 'required' is not supported by this server; use 'auto' or 'none'");
    if (choice != "auto" && choice != "none")
      return bad("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or a named function");
    if (choice == "auto" && tools.empty())
      return bad("tool_choice", "'tool_choice' is only allowed when 'tools' are given");
  }
  if (choice != "none")
    r.tools_json = std::move(tools);
#ifdef HALYARD_SERVER_FAULT_INJECTION
  if (const auto t = body.find("halyard_test_output"); t != body.end() && !t->is_null()) {
    if (!t->is_string() || t->get<std::string>().empty())
      return bad("halyard_test_output", "'halyard_test_output' must be a non-empty string");
    r.test_output = t->get<std::string>();
  }
#endif
  return std::nullopt;
}

std::optional<ApiError> read_prompt(const json& body, std::size_t vocab_size, GenerationRequest& r) {
  const auto it = body.find("prompt");
  if (it == body.end() || it->is_null())
    return bad("prompt", "'prompt' is required");
  const json* p = &*it;
  // A list of one prompt is that prompt; several prompts in one request are not served.
  if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    if (p->size() != 1)
      return bad("prompt", "one prompt per request is supported; send one request per prompt (or use 'n')");
    p = &(*p)[0];
  }
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
    if (r.prompt.empty())
      return bad("prompt", "'prompt' must not be empty");
    return std::nullopt;
  }
  if (!p->is_array() || p->empty())
    return bad("prompt", "'prompt' must be a non-empty string or array of token ids");
  for (const json& t : *p) {
    if (!t.is_number_integer() || t.get<long long>() < 0 || t.get<long long>() >= static_cast<long long>(vocab_size))
      return bad("prompt", "token " + t.dump() + " of 'prompt' is not a token id below " + std::to_string(vocab_size));
    r.prompt_tokens.push_back(static_cast<runtime::TokenId>(t.get<long long>()));
  }
  r.prompt_is_tokens = true;
  return std::nullopt;
}

std::optional<ApiError> read_stop(const json& body, const RequestLimits& limits, GenerationRequest& r) {
  const auto it = body.find("stop");
  if (it == body.end() || it->is_null())
    return std::nullopt;
  std::vector<json> items;
  if (it->is_string())
    items.push_back(*it);
  else if (it->is_array())
    items.assign(it->begin(), it->end());
  else
    return bad("stop", "'stop' must be a string or an array of strings");
  if (items.size() > static_cast<std::size_t>(limits.max_stop))
    return bad("stop", "at most " + std::to_string(limits.max_stop) + " stop strings are accepted");
  for (const json& s : items) {
    if (!s.is_string() || s.get<std::string>().empty())
      return bad("stop", "every stop sequence must be a non-empty string");
    r.stop.push_back(s.get<std::string>());
  }
  return std::nullopt;
}

std::optional<ApiError> read_logit_bias(const json& body, std::size_t vocab_size, GenerationRequest& r) {
  const auto it = body.find("logit_bias");
  if (it == body.end() || it->is_null())
    return std::nullopt;
  if (!it->is_object())
    return bad("logit_bias", "'logit_bias' must be an object of token id -> bias");
  for (const auto& [key, value] : it->items()) {
    long long id = -1;
    std::size_t used = 0;
    try {
      id = std::stoll(key, &used);
    } catch (...) {
      used = 0;
    }
    if (used != key.size() || key.empty() || id < 0 || id >= static_cast<long long>(vocab_size)) {
      return bad("logit_bias", "logit_bias key '" + key + "' is not a token id below " + std::to_string(vocab_size));
    }
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < -100 ||
        value.get<double>() > 100)
      return bad("logit_bias", "logit_bias values must be numbers between -100 and 100");
    r.sampler.logit_bias.emplace_back(static_cast<runtime::TokenId>(id), value.get<float>());
  }
  return std::nullopt;
}

std::optional<ApiError> parse_into(const json& body, const ojson& ordered, ApiKind kind, std::size_t vocab_size,
                                   const RequestLimits& limits, GenerationRequest& r) {
  if (!body.is_object())
    return bad("", "the request body must be a JSON object");
  r.kind = kind;
  if (const auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string())
      return bad("model", "'model' must be a string");
    r.model = it->get<std::string>();
  }
  if (kind == ApiKind::kChat) {
    if (auto e = read_chat(body, ordered, limits, r))
      return e;
  } else {
    if (auto e = read_prompt(body, vocab_size, r))
      return e;
    if (auto e = read_bool(body, "echo", r.echo))
      return e;
  }
  std::optional<long long> v;
  constexpr long long kMaxTokens = 1LL << 30;
  if (auto e = read_int(body, "max_tokens", 1, kMaxTokens, v))
    return e;
  if (auto e = read_int(body, "max_completion_tokens", 1, kMaxTokens, v))  // wins over max_tokens
    return e;
  if (v)
    r.max_tokens = static_cast<int>(*v);

  // OpenAI's sampling defaults, not the CLI's.
  r.sampler.temperature = 1.f;
  r.sampler.top_p = 1.f;
  r.sampler.top_k = 0;
  if (auto e = read_number(body, "temperature", 0, 2, r.sampler.temperature))
    return e;
  if (auto e = read_number(body, "top_p", 0, 1, r.sampler.top_p))
    return e;
  if (r.sampler.top_p <= 0)
    return bad("top_p", "'top_p' must be greater than 0");
  v.reset();
  if (auto e = read_int(body, "top_k", -1, std::numeric_limits<int>::max(), v))  // vLLM: -1 is off
    return e;
  if (v)
    r.sampler.top_k = *v < 0 ? 0 : static_cast<int>(*v);
  if (auto e = read_number(body, "min_p", 0, 1, r.sampler.min_p))
    return e;
  if (auto e = read_number(body, "presence_penalty", -2, 2, r.sampler.presence_penalty))
    return e;
  if (auto e = read_number(body, "frequency_penalty", -2, 2, r.sampler.frequency_penalty))
    return e;
  if (auto e = read_number(body, "repetition_penalty", 1e-6, 100, r.sampler.repeat_penalty))  // vLLM's extension
    return e;
  v.reset();
  if (auto e = read_int(body, "seed", std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max(), v))
    return e;
  if (v) {
    r.sampler.seed = static_cast<std::uint64_t>(*v);
    r.seed_given = true;
  } else {
    r.sampler.seed = std::random_device{}() * 0x9E3779B97F4A7C15ULL + std::random_device{}();
  }
  if (auto e = read_logit_bias(body, vocab_size, r))
    return e;
  if (auto e = read_stop(body, limits, r))
    return e;
  v.reset();
  if (auto e = read_int(body, "n", 1, limits.max_n, v))
    return e;
  if (v)
    r.n = static_cast<int>(*v);

  if (auto e = read_bool(body, "stream", r.stream))
    return e;
  if (auto e = read_bool(body, "ignore_eos", r.ignore_eos))
    return e;
  if (const auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      return bad("stream_options", "'stream_options' must be an object");
    if (!r.stream)
      return bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (auto e = read_bool(*it, "include_usage", r.include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }

  if (kind == ApiKind::kChat) {
    bool logprobs = false;
    if (auto e = read_bool(body, "logprobs", logprobs))
      return e;
    v.reset();
    if (auto e = read_int(body, "top_logprobs", 0, runtime::kMaxTopLogprobs, v))
      return e;
    if (v && !logprobs)
      return bad("top_logprobs", "'top_logprobs' needs 'logprobs' set to true");
    if (logprobs)
      r.logprobs = v ? static_cast<int>(*v) : 0;
  } else {
    v.reset();
    if (auto e = read_int(body, "logprobs", 0, runtime::kMaxTopLogprobs, v))
      return e;
    if (v)
      r.logprobs = static_cast<int>(*v);
  }
  return std::nullopt;
}

}  // namespace

int json_depth(std::string_view body, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit)
        return limit + 1;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

ParsedRequest parse_generation_request(std::string_view body, ApiKind kind, std::size_t vocab_size,
                                       const RequestLimits& limits) {
  ParsedRequest out;
  if (json_depth(body, limits.max_json_depth) > limits.max_json_depth) {
    out.error = bad("", "the request body nests deeper than " + std::to_string(limits.max_json_depth) + " levels");
    return out;
  }
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    out.error = bad("", "the request body is not valid JSON");
    return out;
  }
  // nlohmann throws on a few value conversions (numbers out of range); none escapes.
  try {
    // Chat bodies are read a second time keeping the key order, for what the template writes out.
    const ojson ordered = kind == ApiKind::kChat ? ojson::parse(body, nullptr, false) : ojson();
    out.error = parse_into(parsed, ordered, kind, vocab_size, limits, out.request);
  } catch (const std::exception& e) {
    out.error = bad("", std::string("the request body could not be read: ") + e.what());
  }
  if (out.error && out.error->param && out.error->param->empty())
    out.error->param.reset();
  return out;
}

}  // namespace halyard::server
