// Chat formatting. A model's own template (the Jinja text of the GGUF's tokenizer.chat_template)
// is rendered by the Jinja interpreter (jinja.h) with the conversation, add_generation_prompt,
// the vocabulary's bos_token and eos_token, and optional tools, as transformers renders it.
// Without a usable template, builtin ChatML or Llama-3 formats stand in (Model picks which).
// Thread safety: immutable after construction; apply may run on any threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "halyard/hal/status.h"
#include "halyard/runtime/tool_call_parser.h"

namespace halyard::runtime {

namespace jinja {
class Template;
}

struct ChatMessage {
  // {role, content} builds the plain turns that most callers and tests write; the tool fields
  // are set by name.
  ChatMessage() = default;
  ChatMessage(std::string r, std::string c) : role(std::move(r)), content(std::move(c)) {}

  std::string role;     // "system", "user", "assistant", "tool"
  std::string content;  // may be empty
  // OpenAI's null content (an assistant turn with tool calls only): the template sees none.
  bool content_is_null = false;
  std::vector<ToolCall> tool_calls;  // assistant turns
  std::string tool_call_id;          // tool turns: the call answered ("" when not given)
  std::string name;                  // tool turns: the function's name ("" when not given)
};

// kJinja: the model's own template; the others are the builtin formats (kGemma: Gemma's
// <start_of_turn>role ... <end_of_turn> turns, the assistant as "model", a system message
// folded into the first user turn, as Gemma's own templates do).
enum class ChatFormat { kJinja, kChatML, kLlama3, kGemma };

class ChatTemplate {
 public:
  // Parses the model's template; an empty one means builtin ChatML. An error names the construct
  // the interpreter does not know and its line.
  static Result<ChatTemplate> from_jinja(std::string_view jinja, std::string bos_token = {},
                                         std::string eos_token = {});
  // A builtin format; `default_system` is written when the conversation has no system message.
  static ChatTemplate make(ChatFormat format, std::string default_system = {});

  ChatFormat format() const { return format_; }
  // Which template this is, for the CLI and logs: "the model's own (tokenizer.chat_template)",
  // "builtin ChatML", "builtin Llama-3", "builtin Gemma".
  const std::string& description() const { return description_; }
  // The system prompt the builtin format inserts when the conversation has none.
  const std::string& default_system() const { return default_system_; }
  // How this template teaches the model to call tools, from the markers its source contains
  // (<tool_call>: Hermes; [TOOL_CALLS]: Mistral; <|python_tag|> or a Llama-3 header with tools:
  // Llama-3 JSON); kNone for builtin formats and templates without tools.
  ToolCallFormat tool_call_format() const { return tool_call_format_; }
  // The prompt text, ending with the assistant header when add_generation_prompt. `tools_json`,
  // when not empty, is a JSON array of tool definitions passed to the template as `tools`. An
  // error is the template's own (raise_exception) or a construct it used wrongly. Messages
  // reach the template as transformers gives them: tool_calls as [{id, type: "function",
  // function: {name, arguments}}] with arguments parsed into a mapping when they are a JSON
  // object, tool turns with tool_call_id and name, null content as None.
  Result<std::string> apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                            std::string_view tools_json = {}) const;

 private:
  ChatFormat format_ = ChatFormat::kChatML;
  std::string description_ = "builtin ChatML";
  std::string default_system_;
  std::shared_ptr<const jinja::Template> jinja_;
  std::string bos_token_;
  std::string eos_token_;
  ToolCallFormat tool_call_format_ = ToolCallFormat::kNone;
};

}  // namespace halyard::runtime
