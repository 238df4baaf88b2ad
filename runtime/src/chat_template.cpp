#include "halyard/runtime/chat_template.h"

namespace halyard::runtime {
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

ChatTemplate ChatTemplate::make(ChatFormat format, std::string default_system) {
  ChatTemplate t;
  t.format_ = format;
  t.default_system_ = std::move(default_system);
  return t;
}

Result<ChatTemplate> ChatTemplate::from_jinja(std::string_view jinja) {
  if (jinja.empty())
    return make(ChatFormat::kChatML);
  if (jinja.find("<|start_header_id|>") != std::string_view::npos)
    return make(ChatFormat::kLlama3);
  if (jinja.find("<|im_start|>") != std::string_view::npos) {
    // A template that writes a fixed system turn when the first message is not a system one
    // (SmolLM2's does) carries its default system prompt as a literal.
    std::string default_system;
    constexpr std::string_view kOpen = "<|im_start|>system\n";
    const auto open = jinja.find(kOpen);
    if (open != std::string_view::npos && jinja.find("!= 'system'") != std::string_view::npos) {
      const auto start = open + kOpen.size();
      const auto end = jinja.find("<|im_end|>", start);
      if (end != std::string_view::npos)
        default_system = std::string(jinja.substr(start, end - start));
    }
    return make(ChatFormat::kChatML, std::move(default_system));
  }
  return unimplemented("the model's chat template is not one Halyard knows (ChatML, Llama-3); use a plain prompt");
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
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
