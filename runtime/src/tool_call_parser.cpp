#include "halyard/runtime/tool_call_parser.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

namespace halyard::runtime {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && is_space(s[i]))
    ++i;
  return i;
}

bool blank(std::string_view s) {
  return skip_space(s, 0) == s.size();
}

std::string trim_right(std::string s) {
  while (!s.empty() && is_space(s.back()))
    s.pop_back();
  return s;
}

// The marker that starts a call in this format (llama3_json's bare '{' is handled apart).
std::string_view start_marker(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kHermes:
      return kHermesOpen;
    case ToolCallFormat::kLlama3Json:
      return kPythonTag;
    case ToolCallFormat::kMistral:
      return kMistralMarker;
    case ToolCallFormat::kNone:
      break;
  }
  return {};
}

// The end (one past) of the JSON object or array starting at s[begin], counted outside strings;
// npos when it does not close.
std::size_t json_extent(std::string_view s, std::size_t begin) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = begin; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0)
        return i + 1;
    }
  }
  return std::string_view::npos;
}

// {"name": ..., "arguments" | "parameters": {...} or JSON text} to a call; nullopt when it is not one.
std::optional<ToolCall> call_from_json(const ojson& j) {
  if (!j.is_object())
    return std::nullopt;
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get<std::string>().empty())
    return std::nullopt;
  auto args = j.find("arguments");
  if (args == j.end())
    args = j.find("parameters");
  ToolCall call;
  call.id = make_tool_call_id();
  call.name = name->get<std::string>();
  if (args == j.end() || args->is_null()) {
    call.arguments = "{}";
  } else if (args->is_string()) {
    // Some models write the arguments as JSON text, as OpenAI sends them: it must parse.
    const std::string text = args->get<std::string>();
    if (ojson::parse(text, nullptr, false).is_discarded())
      return std::nullopt;
    call.arguments = text;
  } else if (args->is_object()) {
    call.arguments = args->dump(-1, ' ', false, ojson::error_handler_t::replace);
  } else {
    return std::nullopt;
  }
  return call;
}

// Parses one JSON value at s[i] (after spaces); advances i past it.
std::optional<ojson> json_at(std::string_view s, std::size_t& i) {
  i = skip_space(s, i);
  if (i >= s.size() || (s[i] != '{' && s[i] != '['))
    return std::nullopt;
  const std::size_t end = json_extent(s, i);
  if (end == std::string_view::npos)
    return std::nullopt;
  ojson j = ojson::parse(s.substr(i, end - i), nullptr, false);
  if (j.is_discarded())
    return std::nullopt;
  i = end;
  return j;
}

// The calls of the held text (which starts at the marker); the text after them goes to `rest`.
// nullopt: not calls after all (the held text is content).
std::optional<std::vector<ToolCall>> parse_held(ToolCallFormat f, std::string_view s, std::string& rest) {
  std::vector<ToolCall> calls;
  std::size_t i = 0;
  if (f == ToolCallFormat::kHermes) {
    while (true) {
      const std::size_t at = skip_space(s, i);
      if (s.substr(at, kHermesOpen.size()) != kHermesOpen) {
        i = at;
        break;
      }
      const std::size_t body = at + kHermesOpen.size();
      std::size_t close = s.find(kHermesClose, body);
      // An unclosed last call (generation ended at the end-of-turn token) is still read.
      const std::size_t body_end = close == std::string_view::npos ? s.size() : close;
      std::size_t j = 0;
      const std::string_view inner = s.substr(body, body_end - body);
      auto value = json_at(inner, j);
      if (!value || !blank(inner.substr(j)))
        return std::nullopt;
      auto call = call_from_json(*value);
      if (!call)
        return std::nullopt;
      calls.push_back(std::move(*call));
      i = close == std::string_view::npos ? s.size() : close + kHermesClose.size();
    }
  } else if (f == ToolCallFormat::kLlama3Json) {
    if (s.substr(0, kPythonTag.size()) == kPythonTag)
      i = kPythonTag.size();
    while (true) {
      std::size_t j = skip_space(s, i);
      if (!calls.empty()) {
        if (j >= s.size() || s[j] != ';')
          break;
        ++j;
      }
      auto value = json_at(s, j);
      if (!value) {
        if (calls.empty())
          return std::nullopt;
        break;
      }
      auto call = call_from_json(*value);
      if (!call)
        return std::nullopt;
      calls.push_back(std::move(*call));
      i = j;
    }
  } else if (f == ToolCallFormat::kMistral) {
    i = kMistralMarker.size();
    auto value = json_at(s, i);
    if (!value)
      return std::nullopt;
    if (value->is_object())
      *value = ojson::array({*value});
    for (const ojson& item : *value) {
      auto call = call_from_json(item);
      if (!call)
        return std::nullopt;
      calls.push_back(std::move(*call));
    }
    if (calls.empty())
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  rest = blank(s.substr(i)) ? std::string() : std::string(s.substr(skip_space(s, i)));
  return calls;
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kLlama3Json:
      return "llama3_json";
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kNone:
      break;
  }
  return "none";
}

std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name) {
  for (ToolCallFormat f :
       {ToolCallFormat::kNone, ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral}) {
    if (name == tool_call_format_name(f))
      return f;
  }
  return std::nullopt;
}

ToolCallFormat detect_tool_call_format(std::string_view src) {
  if (src.find(kHermesOpen) != std::string_view::npos)
    return ToolCallFormat::kHermes;
  if (src.find(kMistralMarker) != std::string_view::npos)
    return ToolCallFormat::kMistral;
  // Llama 3.1 writes <|python_tag|> for its builtin tools; 3.2 teaches the bare JSON object
  // in a template with a Llama-3 header and tools.
  if (src.find(kPythonTag) != std::string_view::npos ||
      (src.find("<|start_header_id|>") != std::string_view::npos && src.find("tools") != std::string_view::npos))
    return ToolCallFormat::kLlama3Json;
  return ToolCallFormat::kNone;
}

std::string make_tool_call_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i)
    id += kChars[rng() % (sizeof kChars - 1)];
  return id;
}

std::string ToolCallStream::release_safe() {
  // Hold the longest suffix that is a beginning of the marker: the rest of it may come next.
  const std::string_view marker = start_marker(format_);
  std::size_t keep = 0;
  for (std::size_t n = std::min(marker.size() - 1, pending_.size()); n > 0; --n) {
    if (std::string_view(pending_).substr(pending_.size() - n) == marker.substr(0, n)) {
      keep = n;
      break;
    }
  }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  if (!out.empty())
    released_any_ = true;
  return out;
}

std::string ToolCallStream::push(std::string_view text) {
  if (format_ == ToolCallFormat::kNone)
    return std::string(text);
  if (in_call_) {
    held_ += text;
    return {};
  }
  pending_ += text;
  if (format_ == ToolCallFormat::kLlama3Json && !released_any_) {
    // A bare JSON call must open the output: hold leading spaces until the first other character.
    const std::size_t first = skip_space(pending_, 0);
    if (first == pending_.size())
      return {};
    if (pending_[first] == '{') {
      // The leading spaces stay held too: if the JSON is no call they are content again
      // (parse_held skips them when it is one).
      in_call_ = true;
      held_ = std::move(pending_);
      pending_.clear();
      return {};
    }
  }
  const std::size_t at = pending_.find(start_marker(format_));
  if (at != std::string::npos) {
    std::string out = pending_.substr(0, at);
    held_ = pending_.substr(at);
    pending_.clear();
    in_call_ = true;
    return out;
  }
  return release_safe();
}

ToolCallStream::End ToolCallStream::finish() {
  End end;
  if (!in_call_) {
    end.content = std::move(pending_);
    pending_.clear();
    return end;
  }
  std::string rest;
  auto calls = parse_held(format_, held_, rest);
  if (!calls) {
    end.content = std::move(held_);
  } else {
    end.calls = std::move(*calls);
    end.content = std::move(rest);
  }
  held_.clear();
  in_call_ = false;
  return end;
}

ParsedToolCalls parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallStream stream(format);
  std::string before = stream.push(text);
  ToolCallStream::End end = stream.finish();
  ParsedToolCalls out;
  if (end.calls.empty()) {
    out.content = before + end.content;
    return out;
  }
  out.calls = std::move(end.calls);
  std::string content = trim_right(std::move(before));
  if (!end.content.empty())
    content += (content.empty() ? "" : "\n") + trim_right(std::move(end.content));
  if (!blank(content))
    out.content = std::move(content);
  return out;
}

}  // namespace halyard::runtime
