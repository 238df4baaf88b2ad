// Chat formatting for the template families Halyard knows: ChatML (SmolLM2, Qwen) and Llama-3.
// The family is recognised from the GGUF's tokenizer.chat_template; Jinja is not interpreted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "halyard/hal/status.h"

namespace halyard::runtime {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatFormat { kChatML, kLlama3 };

class ChatTemplate {
 public:
  // Recognises the family of `jinja`; an empty template means ChatML.
  static Result<ChatTemplate> from_jinja(std::string_view jinja);
  static ChatTemplate make(ChatFormat format, std::string default_system = {});

  ChatFormat format() const { return format_; }
  // The system prompt the template inserts when the conversation has none (SmolLM2 has one).
  const std::string& default_system() const { return default_system_; }
  // The prompt text, ending with the assistant header when add_generation_prompt.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  ChatFormat format_ = ChatFormat::kChatML;
  std::string default_system_;
};

}  // namespace halyard::runtime
