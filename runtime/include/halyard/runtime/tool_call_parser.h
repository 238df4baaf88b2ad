// Tool calls in generated text, in the formats the common chat templates teach (as vLLM's
// --tool-call-parser options read them):
//   hermes       Hermes, Qwen 2.5, Qwen 3: <tool_call>{"name": ..., "arguments": {...}}</tool_call>, one or several
//   llama3_json  Llama 3.1/3.2: {"name": ..., "parameters": {...}} (several separated by ';'), at the start of
//                the output or after <|python_tag|>
//   mistral      Mistral: [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]
// Text that looks like a call but does not parse (malformed JSON, no name) stays plain content.
// Thread safety: the functions are stateless; a ToolCallStream belongs to one generation.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace halyard::runtime {

// One tool call of an assistant turn, as OpenAI sends it: `arguments` is JSON text.
struct ToolCall {
  std::string id;  // "call_..."; may be empty in a client's history
  std::string name;
  std::string arguments;  // JSON text, normally an object
};

enum class ToolCallFormat { kNone, kHermes, kLlama3Json, kMistral };

// "none", "hermes", "llama3_json", "mistral" (vLLM's names).
const char* tool_call_format_name(ToolCallFormat format);
std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name);
// The format a chat template teaches, from the markers its source contains; kNone when none.
ToolCallFormat detect_tool_call_format(std::string_view template_source);

// "call_" and 24 random letters and digits.
std::string make_tool_call_id();

struct ParsedToolCalls {
  // The text outside the calls (before them, and any after); empty when there is none but
  // whitespace. Without calls: the whole text.
  std::optional<std::string> content;
  std::vector<ToolCall> calls;  // ids from make_tool_call_id
};

// The calls in a whole generated text.
ParsedToolCalls parse_tool_calls(ToolCallFormat format, std::string_view text);

// The same, incrementally, for streaming: push() returns the text that is certainly content
// (a suffix that may begin a start marker split across tokens is held back until it is
// decided); from a start marker on, everything is held until finish() parses it.
class ToolCallStream {
 public:
  explicit ToolCallStream(ToolCallFormat format) : format_(format) {}
  std::string push(std::string_view text);
  // A start marker was seen: what follows is held for finish().
  bool in_tool_call() const { return in_call_; }
  struct End {
    std::string content;  // held text that turned out to be content, or text after the calls
    std::vector<ToolCall> calls;
  };
  // The end of generation: the held text parsed into calls, or released as content.
  End finish();

 private:
  std::string release_safe();
  ToolCallFormat format_;
  std::string pending_;  // before any marker: not yet released
  std::string held_;     // from the start marker on
  bool in_call_ = false;
  bool released_any_ = false;  // llama3_json: a call must start the output
};

}  // namespace halyard::runtime
