"""Tool calling in the Python package: OpenAI messages with tool calls and tool turns through the
chat template (halyard_apply_chat_template_ex), calls read out of text (halyard_parse_tool_calls),
and create_chat_completion's tools / tool_choice keywords (llama-cpp-python's names)."""

import json

import pytest

import halyard

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
HISTORY = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C"},
]


def test_tool_turns_render_through_the_template(ref_model):
    text = ref_model.apply_chat_template(HISTORY, tools=TOOLS)
    assert text.endswith("<|im_start|>tool\n18 C<|im_end|>\n<|im_start|>assistant\n")
    assert ref_model.apply_chat_template(HISTORY, add_generation_prompt=False).endswith("<|im_start|>tool\n18 C<|im_end|>\n")
    # Plain conversations render as before.
    plain = [{"role": "user", "content": "Hi"}]
    assert ref_model.apply_chat_template(plain) == ref_model.apply_chat_template(plain, tools=None)


def test_bad_tool_fields_name_the_field(ref_model):
    bad = [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"arguments": "{}"}}]}]
    with pytest.raises(halyard.InvalidArgument) as err:
        ref_model.apply_chat_template(bad)
    assert "messages[0].tool_calls[0].function.name" in str(err.value)
    with pytest.raises(halyard.InvalidArgument) as err:
        ref_model.apply_chat_template([{"role": "user", "content": "x"}], tools=[{"type": "code"}])
    assert "tools[0].type" in str(err.value)


@pytest.mark.parametrize("fmt,text,content", [
    ("hermes", 'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', "Sure."),
    ("llama3_json", '{"name": "get_weather", "parameters": {"city": "Oslo"}}', None),
    ("mistral", '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}]', None),
])
def test_parse_tool_calls_each_format(ref_model, fmt, text, content):
    parsed = ref_model.parse_tool_calls(text, format=fmt)
    assert parsed["content"] == content
    (call,) = parsed["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    # Malformed: all content.
    broken = text.replace('"city"', '"city":')
    assert ref_model.parse_tool_calls(broken, format=fmt) == {"content": broken, "tool_calls": []}


def test_create_chat_completion_tools_keywords(ref_model):
    assert ref_model.tool_call_format == "none"  # SmolLM2's template teaches no tool format
    r = ref_model.create_chat_completion(HISTORY, tools=TOOLS, tool_choice="auto", max_tokens=4, temperature=0)
    assert r["choices"][0]["message"]["role"] == "assistant"
    assert r["choices"][0]["finish_reason"] in ("stop", "length")
    assert r["usage"]["prompt_tokens"] > 0
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        with pytest.raises(halyard.InvalidArgument):
            ref_model.create_chat_completion(HISTORY, tools=TOOLS, tool_choice=choice, max_tokens=1)
    none = ref_model.create_chat_completion(HISTORY, tools=TOOLS, tool_choice="none", max_tokens=4, temperature=0)
    assert none["choices"][0]["message"]["content"] == r["choices"][0]["message"]["content"]


def test_held_stream_sends_openai_tool_call_deltas():
    # The stream shape create_chat_completion(stream=True, tools=...) builds once the output is read.
    from halyard.model import _held_tool_stream

    def chunk(delta, finish_reason):
        return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    call = {"id": "call_x", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    chunks = list(_held_tool_stream(chunk, {"role": "assistant", "content": "Sure.", "tool_calls": [call]},
                                    "tool_calls"))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant" and deltas[1] == {"content": "Sure."}
    assert deltas[2]["tool_calls"] == [{"index": 0, "id": "call_x", "type": "function",
                                        "function": {"name": "get_weather", "arguments": ""}}]
    assert deltas[3]["tool_calls"] == [{"index": 0, "function": {"arguments": '{"city": "Oslo"}'}}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
