// OpenAI chat input as JSON (the `messages` and `tools` of a chat completion request) to what
// ChatTemplate::apply takes, every field checked, an invalid one named by its path
// ("messages[2].tool_calls[0].function.name"). The server and the C API share it.
// Thread safety: stateless.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "halyard/runtime/chat_template.h"

namespace halyard::runtime {

struct ChatInputError {
  std::string param;  // the field's path
  std::string message;
};

// Roles system (and "developer", read as system), user, assistant (content a string, null or
// text parts; tool_calls [{id, type: "function", function: {name, arguments: JSON text}}]) and
// tool (content, tool_call_id, name). Appends to `out`.
std::optional<ChatInputError> read_chat_messages(const nlohmann::ordered_json& messages, std::size_t max_messages,
                                                 std::vector<ChatMessage>& out);

// `tools`: [{type: "function", function: {name, description?, parameters?}}]; `tools_json`
// receives the array as JSON text (keys in the client's order), the template's `tools`.
std::optional<ChatInputError> read_chat_tools(const nlohmann::ordered_json& tools, std::string& tools_json);

}  // namespace halyard::runtime
