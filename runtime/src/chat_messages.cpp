#include "halyard/runtime/chat_messages.h"

namespace halyard::runtime {
namespace {

using ojson = nlohmann::ordered_json;

ChatInputError bad(std::string param, std::string message) {
  return {std::move(param), std::move(message)};
}

std::optional<ChatInputError> must_be_string(const ojson& obj, const char* key, const std::string& p, bool required,
                                             std::string& out) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required)
      return bad(p + "." + key, "'" + p + "." + key + "' is required");
    return std::nullopt;
  }
  if (!it->is_string())
    return bad(p + "." + key, "'" + p + "." + key + "' must be a string");
  out = it->get<std::string>();
  return std::nullopt;
}

// A message's content: a string, null, or an array of parts of which only "text" parts are known.
std::optional<ChatInputError> read_content(const ojson& content, const std::string& param, ChatMessage& m) {
  if (content.is_null()) {
    m.content_is_null = true;
    return std::nullopt;
  }
  if (content.is_string()) {
    m.content = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array())
    return bad(param, "'" + param + "' must be a string, null or an array of content parts");
  for (std::size_t i = 0; i < content.size(); ++i) {
    const ojson& part = content[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      return bad(p, "'" + p + "' must be an object with a string 'type'");
    const std::string type = part["type"].get<std::string>();
    if (type != "text")
      return bad(p, "content parts of type '" + type + "' are not supported by this text model; use 'text'");
    if (!part.contains("text") || !part["text"].is_string())
      return bad(p + ".text", "'" + p + ".text' must be a string");
    m.content += part["text"].get<std::string>();
  }
  return std::nullopt;
}

std::optional<ChatInputError> read_tool_calls(const ojson& calls, const std::string& param, ChatMessage& m) {
  if (calls.is_null())
    return std::nullopt;
  if (!calls.is_array())
    return bad(param, "'" + param + "' must be an array of tool calls");
  for (std::size_t i = 0; i < calls.size(); ++i) {
    const ojson& c = calls[i];
    const std::string p = param + "[" + std::to_string(i) + "]";
    if (!c.is_object())
      return bad(p, "'" + p + "' must be an object");
    ToolCall call;
    if (auto e = must_be_string(c, "id", p, false, call.id))
      return e;
    std::string type = "function";
    if (auto e = must_be_string(c, "type", p, false, type))
      return e;
    if (type != "function")
      return bad(p + ".type", "tool call type '" + type + "' is not supported; use 'function'");
    const auto fn = c.find("function");
    if (fn == c.end() || !fn->is_object())
      return bad(p + ".function", "'" + p + ".function' must be an object with name and arguments");
    if (auto e = must_be_string(*fn, "name", p + ".function", true, call.name))
      return e;
    const auto args = fn->find("arguments");
    if (args == fn->end() || args->is_null())
      call.arguments = "{}";
    else if (args->is_string())
      call.arguments = args->get<std::string>();
    else if (args->is_object())  // lenient: a mapping, as some clients send it
      call.arguments = args->dump();
    else
      return bad(p + ".function.arguments", "'" + p + ".function.arguments' must be a JSON string");
    m.tool_calls.push_back(std::move(call));
  }
  return std::nullopt;
}

}  // namespace

std::optional<ChatInputError> read_chat_messages(const ojson& messages, std::size_t max_messages,
                                                 std::vector<ChatMessage>& out) {
  if (!messages.is_array() || messages.empty())
    return bad("messages", "'messages' must be a non-empty array");
  if (messages.size() > max_messages)
    return bad("messages", "at most " + std::to_string(max_messages) + " messages are accepted");
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    const std::string p = "messages[" + std::to_string(i) + "]";
    if (!m.is_object())
      return bad(p, "'" + p + "' must be an object");
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      return bad(p + ".role", "'" + p + ".role' must be a string");
    ChatMessage msg;
    msg.role = role->get<std::string>();
    if (msg.role == "developer")
      msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "tool") {
      return bad(p + ".role",
                 "role '" + msg.role + "' is not supported; use 'system', 'developer', 'user', 'assistant' or 'tool'");
    }
    if (msg.role == "assistant") {
      if (const auto calls = m.find("tool_calls"); calls != m.end()) {
        if (auto e = read_tool_calls(*calls, p + ".tool_calls", msg))
          return e;
      }
    }
    const auto content = m.find("content");
    // OpenAI lets an assistant turn with tool calls leave content out.
    if (content == m.end()) {
      if (msg.tool_calls.empty())
        return bad(p + ".content", "'" + p + ".content' is required");
      msg.content_is_null = true;
    } else if (auto e = read_content(*content, p + ".content", msg)) {
      return e;
    }
    if (msg.role == "tool") {
      if (auto e = must_be_string(m, "tool_call_id", p, false, msg.tool_call_id))
        return e;
    }
    if (auto e = must_be_string(m, "name", p, false, msg.name))
      return e;
    out.push_back(std::move(msg));
  }
  return std::nullopt;
}

std::optional<ChatInputError> read_chat_tools(const ojson& tools, std::string& tools_json) {
  if (tools.is_null())
    return std::nullopt;
  if (!tools.is_array())
    return bad("tools", "'tools' must be an array of tool definitions");
  for (std::size_t i = 0; i < tools.size(); ++i) {
    const ojson& t = tools[i];
    const std::string p = "tools[" + std::to_string(i) + "]";
    if (!t.is_object())
      return bad(p, "'" + p + "' must be an object");
    const auto type = t.find("type");
    if (type == t.end() || !type->is_string() || type->get<std::string>() != "function")
      return bad(p + ".type", "'" + p + ".type' must be 'function'");
    const auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object())
      return bad(p + ".function", "'" + p + ".function' must be an object");
    std::string name;
    if (auto e = must_be_string(*fn, "name", p + ".function", true, name))
      return e;
    if (name.empty())
      return bad(p + ".function.name", "'" + p + ".function.name' must not be empty");
    std::string description;
    if (auto e = must_be_string(*fn, "description", p + ".function", false, description))
      return e;
    if (const auto params = fn->find("parameters"); params != fn->end() && !params->is_null() && !params->is_object())
      return bad(p + ".function.parameters", "'" + p + ".function.parameters' must be a JSON Schema object");
  }
  tools_json = tools.empty() ? std::string() : tools.dump();
  return std::nullopt;
}

}  // namespace halyard::runtime
