#include "halyard/runtime/chat_template.h"

#include <nlohmann/json.hpp>

#include "halyard/runtime/jinja.h"

namespace halyard::runtime {
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// A message as transformers hands it to the template (vLLM's OpenAI server does the same):
// keys only for what the message has, tool call arguments parsed into a mapping when they are
// a JSON object (templates iterate them or pass them to tojson).
nlohmann::ordered_json message_json(const ChatMessage& m) {
  nlohmann::ordered_json j = {{"role", m.role}};
  j["content"] = m.content_is_null ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(m.content);
  if (!m.tool_calls.empty()) {
    nlohmann::ordered_json calls = nlohmann::ordered_json::array();
    for (const ToolCall& c : m.tool_calls) {
      nlohmann::ordered_json args = nlohmann::ordered_json::parse(c.arguments, nullptr, /*allow_exceptions=*/false);
      if (args.is_discarded() || !args.is_object())
        args = c.arguments;
      nlohmann::ordered_json call = nlohmann::ordered_json::object();
      if (!c.id.empty())
        call["id"] = c.id;
      call["type"] = "function";
      call["function"] = {{"name", c.name}, {"arguments", std::move(args)}};
      calls.push_back(std::move(call));
    }
    j["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty())
    j["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty())
    j["name"] = m.name;
  return j;
}

}  // namespace

ChatTemplate ChatTemplate::make(ChatFormat format, std::string default_system) {
  ChatTemplate t;
  t.format_ = format == ChatFormat::kJinja ? ChatFormat::kChatML : format;
  t.description_ = t.format_ == ChatFormat::kLlama3  ? "builtin Llama-3"
                   : t.format_ == ChatFormat::kGemma ? "builtin Gemma"
                                                     : "builtin ChatML";
  t.default_system_ = std::move(default_system);
  return t;
}

Result<ChatTemplate> ChatTemplate::from_jinja(std::string_view jinja, std::string bos_token, std::string eos_token) {
  if (jinja.empty())
    return make(ChatFormat::kChatML);
  HALYARD_ASSIGN_OR_RETURN(jinja::Template parsed, jinja::Template::parse(jinja));
  ChatTemplate t;
  t.format_ = ChatFormat::kJinja;
  t.description_ = "the model's own (tokenizer.chat_template)";
  t.jinja_ = std::make_shared<const jinja::Template>(std::move(parsed));
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  t.tool_call_format_ = detect_tool_call_format(jinja);
  return t;
}

Result<std::string> ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                        std::string_view tools_json) const {
  if (format_ == ChatFormat::kJinja) {
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& m : messages)
      list.push_back(message_json(m));
    context["messages"] = std::move(list);
    if (!tools_json.empty()) {
      auto tools = nlohmann::ordered_json::parse(tools_json, nullptr, /*allow_exceptions=*/false);
      if (tools.is_discarded() || !tools.is_array())
        return invalid_argument("the tools must be a JSON array of tool definitions");
      context["tools"] = std::move(tools);
    }
    context["add_generation_prompt"] = add_generation_prompt;
    context["bos_token"] = bos_token_;
    context["eos_token"] = eos_token_;
    return jinja_->render(context);
  }
  if (!tools_json.empty())
    return invalid_argument("the " + description_ + " chat format has no place for tools");
  std::string out;
  const bool has_system = !messages.empty() && messages.front().role == "system";
  if (format_ == ChatFormat::kChatML) {
    if (!has_system && !default_system_.empty())
      out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
    for (const auto& m : messages)
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (add_generation_prompt)
      out += "<|im_start|>assistant\n";
    return out;
  }
  if (format_ == ChatFormat::kGemma) {
    // The BOS comes from the tokenizer (Gemma's vocabulary adds it), not from the text.
    std::string system = has_system ? trim(messages.front().content) : default_system_;
    for (std::size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      std::string content = trim(m.content);
      if (!system.empty() && m.role == "user") {
        content = system + "\n\n" + content;
        system.clear();
      }
      out += "<start_of_turn>" + (m.role == "assistant" ? std::string("model") : m.role) + "\n" + content +
             "<end_of_turn>\n";
    }
    if (add_generation_prompt)
      out += "<start_of_turn>model\n";
    return out;
  }
  out += "<|begin_of_text|>";
  if (!has_system && !default_system_.empty()) {
    out += "<|start_header_id|>system<|end_header_id|>\n\n" + default_system_ + "<|eot_id|>";
  }
  for (const auto& m : messages) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
  if (add_generation_prompt)
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace halyard::runtime
