// Tool calls read from generated text (tool_call_parser.h), whole and streamed, and chat input
// JSON (chat_messages.h) reaching a template as transformers gives it.
#include "halyard/runtime/tool_call_parser.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "halyard/runtime/chat_messages.h"
#include "halyard/runtime/chat_template.h"

namespace halyard::runtime {
namespace {

using ojson = nlohmann::ordered_json;

ojson args_of(const ToolCall& c) {
  return ojson::parse(c.arguments);
}

TEST(ToolCallParser, HermesOneCall) {
  auto r =
      parse_tool_calls(ToolCallFormat::kHermes,
                       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(args_of(r.calls[0]), ojson({{"city", "Paris"}}));
  EXPECT_EQ(r.calls[0].id.rfind("call_", 0), 0u);
  EXPECT_EQ(r.calls[0].id.size(), 29u);
  EXPECT_FALSE(r.content.has_value());
}

TEST(ToolCallParser, HermesSeveralCallsWithTextBefore) {
  auto r = parse_tool_calls(ToolCallFormat::kHermes,
                            "Let me check both.\n<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1}}</tool_call>\n"
                            "<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "a");
  EXPECT_EQ(r.calls[1].name, "b");
  EXPECT_EQ(r.calls[1].arguments, "{}");
  EXPECT_NE(r.calls[0].id, r.calls[1].id);
  ASSERT_TRUE(r.content.has_value());
  EXPECT_EQ(*r.content, "Let me check both.");
}

TEST(ToolCallParser, HermesUnclosedLastCallStillReads) {
  auto r = parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"a\", \"arguments\": {\"q\": \"}\"}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(args_of(r.calls[0]), ojson({{"q", "}"}}));
}

TEST(ToolCallParser, MalformedStaysContent) {
  for (const char* text : {"<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": }</tool_call>",
                           "<tool_call>{\"arguments\": {}}</tool_call>", "<tool_call>not json</tool_call>",
                           "<tool_call>{\"name\": \"a\", \"arguments\": 5}</tool_call>", "<tool_call>"}) {
    auto r = parse_tool_calls(ToolCallFormat::kHermes, text);
    EXPECT_TRUE(r.calls.empty()) << text;
    ASSERT_TRUE(r.content.has_value()) << text;
    EXPECT_EQ(*r.content, text);
  }
}

TEST(ToolCallParser, Llama3JsonBareAndPythonTag) {
  auto r =
      parse_tool_calls(ToolCallFormat::kLlama3Json,
                       "  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"unit\": \"celsius\"}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, "{\"city\":\"Oslo\",\"unit\":\"celsius\"}");  // the model's key order
  EXPECT_FALSE(r.content.has_value());

  auto t =
      parse_tool_calls(ToolCallFormat::kLlama3Json,
                       "Sure.<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": "
                       "{\"k\": [1, 2]}}");
  ASSERT_EQ(t.calls.size(), 2u);
  EXPECT_EQ(t.calls[1].name, "b");
  EXPECT_EQ(args_of(t.calls[1]), ojson({{"k", {1, 2}}}));
  EXPECT_EQ(t.content.value_or("<none>"), "Sure.");
}

TEST(ToolCallParser, Llama3JsonPlainJsonAnswerIsContent) {
  // A JSON answer that is not a call (no name), and a '{' that does not open the output.
  // Leading spaces before a '{' that is no call stay in the content (server_request_fuzz found
  // them dropped: "\r\r{\"prompt\": ...}" came back without its "\r\r").
  for (const char* text : {"{\"answer\": 42}", "The object is {\"name\": \"a\", \"parameters\": {}}",
                           "\r\r {\"prompt\": \"x\", \"max_tokens\": =817.0}", "\n{\"answer\": 42}"}) {
    auto r = parse_tool_calls(ToolCallFormat::kLlama3Json, text);
    EXPECT_TRUE(r.calls.empty()) << text;
    EXPECT_EQ(r.content.value_or(""), text);
  }
}

TEST(ToolCallParser, Llama3JsonCallAfterLeadingSpaces) {
  auto r = parse_tool_calls(ToolCallFormat::kLlama3Json, "\n  {\"name\": \"f\", \"parameters\": {\"a\": 1}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].name, "f");
  EXPECT_FALSE(r.content.has_value());
}

TEST(ToolCallParser, Mistral) {
  auto r = parse_tool_calls(ToolCallFormat::kMistral,
                            "I will call it.[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": \"y\"}}, {\"name\": "
                            "\"b\", \"arguments\": \"{\\\"n\\\": 1}\"}]");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(args_of(r.calls[0]), ojson({{"x", "y"}}));
  EXPECT_EQ(r.calls[1].arguments, "{\"n\": 1}");  // arguments given as JSON text stay that text
  EXPECT_EQ(r.content.value_or("<none>"), "I will call it.");
  auto bad = parse_tool_calls(ToolCallFormat::kMistral, "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {]");
  EXPECT_TRUE(bad.calls.empty());
  EXPECT_EQ(bad.content.value_or(""), "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {]");
}

TEST(ToolCallParser, NoneFormatNeverParses) {
  auto r = parse_tool_calls(ToolCallFormat::kNone, "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>");
  EXPECT_TRUE(r.calls.empty());
  EXPECT_EQ(r.content.value_or(""), "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>");
}

// Feeds the text one byte at a time: every marker is split across pushes.
std::pair<std::string, ToolCallStream::End> stream_bytes(ToolCallFormat f, std::string_view text) {
  ToolCallStream s(f);
  std::string content;
  for (char c : text)
    content += s.push(std::string_view(&c, 1));
  return {content, s.finish()};
}

TEST(ToolCallStream, MarkerSplitAcrossTokens) {
  const std::string text = "Checking <b>now</b>.<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": 1}}</tool_call>";
  ToolCallStream s(ToolCallFormat::kHermes);
  EXPECT_EQ(s.push("Checking <"), "Checking ");  // "<" may start the marker: held
  EXPECT_EQ(s.push("b>now</b>.<tool"), "<b>now</b>.");
  EXPECT_FALSE(s.in_tool_call());
  EXPECT_EQ(s.push("_call>{\"name\": \"a\", "), "");
  EXPECT_TRUE(s.in_tool_call());
  EXPECT_EQ(s.push("\"arguments\": {\"x\": 1}}</tool_call>"), "");
  auto end = s.finish();
  ASSERT_EQ(end.calls.size(), 1u);
  EXPECT_EQ(end.calls[0].name, "a");
  EXPECT_EQ(end.content, "");

  for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral}) {
    const std::string t = f == ToolCallFormat::kHermes ? text
                          : f == ToolCallFormat::kMistral
                              ? "Hi [TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}]"
                              : "Hi <|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": 1}}";
    auto [content, e] = stream_bytes(f, t);
    ASSERT_EQ(e.calls.size(), 1u) << tool_call_format_name(f);
    EXPECT_EQ(args_of(e.calls[0]), ojson({{"x", 1}}));
    EXPECT_EQ(content, t.substr(0, t.find(f == ToolCallFormat::kHermes    ? "<tool_call>"
                                          : f == ToolCallFormat::kMistral ? "[TOOL_CALLS]"
                                                                          : "<|python_tag|>")));
  }
}

TEST(ToolCallStream, HeldTextThatIsNotAMarkerIsReleased) {
  auto [content, end] = stream_bytes(ToolCallFormat::kHermes, "a < b and <tool");
  EXPECT_EQ(content + end.content, "a < b and <tool");
  EXPECT_TRUE(end.calls.empty());
  auto [c2, e2] = stream_bytes(ToolCallFormat::kHermes, "x<tool_call>{broken");
  EXPECT_EQ(c2, "x");
  EXPECT_TRUE(e2.calls.empty());
  EXPECT_EQ(e2.content, "<tool_call>{broken");
}

// Streamed in pieces of any size, the same calls as the whole text, and text without calls back
// unchanged (the invariant server_request_fuzz checks on arbitrary bodies).
TEST(ToolCallStream, PiecesOfAnySizeAgreeWithTheWholeText) {
  const char* texts[] = {
      "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call> trailing",
      "  \n{\"name\": \"a\", \"parameters\": {\"s\": \"<tool_call>\"}} ; {\"name\": \"b\", \"parameters\": {}}",
      "x [TOOL_CALLS] [{\"name\": \"a\", \"arguments\": \"{}\"}] y",
      "<<tool_call<tool_call>{\"name\": \"a\"}</tool_call>",
      "[TOOL_CALLS[TOOL_CALLS]{\"name\": \"x\", \"arguments\": {\"q\": \"\\\"]}\"}}",
      "<|python_tag<|python_tag|>{\"name\": \"a\", \"parameters\": {}}",
      "",
      " ",
      "<",
      "[TOOL_CALLS]",
      "<tool_call></tool_call>",
      "{",
      "{}",
      "{\"name\": 3}",
  };
  for (const char* t : texts) {
    const std::string_view text(t);
    for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kMistral}) {
      const ParsedToolCalls whole = parse_tool_calls(f, text);
      for (std::size_t step = 1; step <= 4; ++step) {
        ToolCallStream s(f);
        std::string released;
        for (std::size_t i = 0; i < text.size(); i += step)
          released += s.push(text.substr(i, step));
        const ToolCallStream::End end = s.finish();
        ASSERT_EQ(end.calls.size(), whole.calls.size()) << t << " " << tool_call_format_name(f) << " step " << step;
        for (std::size_t i = 0; i < end.calls.size(); ++i) {
          EXPECT_EQ(end.calls[i].name, whole.calls[i].name);
          EXPECT_EQ(end.calls[i].arguments, whole.calls[i].arguments);
        }
        if (whole.calls.empty()) {
          EXPECT_EQ(released + end.content, text) << t << " " << tool_call_format_name(f);
          EXPECT_EQ(whole.content.value_or("<none>"), text);
        }
      }
    }
  }
}

TEST(ToolCallFormat, NamesAndDetection) {
  for (const char* n : {"none", "hermes", "llama3_json", "mistral"})
    EXPECT_STREQ(tool_call_format_name(*tool_call_format_from_name(n)), n);
  EXPECT_FALSE(tool_call_format_from_name("pythonic").has_value());
  EXPECT_EQ(detect_tool_call_format("{{ '<tool_call>\\n' }}"), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format("{{ '[TOOL_CALLS]' }}"), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format("<|start_header_id|>{% if tools %}{% endif %}"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format("<|im_start|>{{ m.content }}"), ToolCallFormat::kNone);
}

TEST(ChatMessages, ToolCallsAndToolTurnsReachTheTemplate) {
  const ojson input = ojson::parse(R"([
    {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C"}
  ])");
  std::vector<ChatMessage> messages;
  ASSERT_FALSE(read_chat_messages(input, 16, messages).has_value());
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].content, "Weather in Paris?");
  EXPECT_TRUE(messages[1].content_is_null);
  auto t = ChatTemplate::from_jinja(
      "{% for m in messages %}{{ m.role }}:{{ m.content }}|{% if m.tool_calls %}{% for c in m.tool_calls %}"
      "{{ c.id }} {{ c.function.name }} {{ c.function.arguments.city }} {{ c.function.arguments | tojson }}"
      "{% endfor %}{% endif %}{% if m.tool_call_id %}{{ m.tool_call_id }}/{{ m.name }}{% endif %};{% endfor %}"
      "{% for t in tools %}{{ t.function.name }}{% endfor %}");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  std::string tools;
  ASSERT_FALSE(read_chat_tools(ojson::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object"}}}])"),
                               tools)
                   .has_value());
  auto text = t.value().apply(messages, false, tools);
  ASSERT_TRUE(text.is_ok()) << text.status().message();
  EXPECT_EQ(text.value(),
            "user:Weather in Paris?|;assistant:None|call_1 get_weather Paris {\"city\": \"Paris\"};"
            "tool:18 C|call_1/get_weather;get_weather");
}

TEST(ChatMessages, ErrorsNameTheField) {
  struct Case {
    const char* json;
    const char* param;
  } cases[] = {
      {R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])", "messages[0].content[0]"},
      {R"([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}])",
       "messages[0].tool_calls[0].function.name"},
      {R"([{"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": 3}}]}])",
       "messages[0].tool_calls[0].function.arguments"},
      {R"([{"role": "tool", "content": "x", "tool_call_id": 5}])", "messages[0].tool_call_id"},
      {R"([{"role": "robot", "content": "x"}])", "messages[0].role"},
      {R"([{"role": "user"}])", "messages[0].content"},
  };
  for (const Case& c : cases) {
    std::vector<ChatMessage> m;
    auto e = read_chat_messages(ojson::parse(c.json), 16, m);
    ASSERT_TRUE(e.has_value()) << c.json;
    EXPECT_EQ(e->param, c.param) << c.json;
  }
  std::string tools;
  auto e =
      read_chat_tools(ojson::parse(R"([{"type": "function", "function": {"name": "a", "parameters": 1}}])"), tools);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "tools[0].function.parameters");
  e = read_chat_tools(ojson::parse(R"([{"type": "code_interpreter"}])"), tools);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "tools[0].type");
}

}  // namespace
}  // namespace halyard::runtime
