"""Tool calling through the chat template, as vLLM's OpenAI server does it: `tools` and tool
turns reach the template (Qwen 2.5's real template, read at test time from the llama-cpp-python
sdist that scripts/fetch-llama-cpp-sdist.sh caches; never committed), the output is read for
calls in the format the template teaches (Hermes <tool_call> here, detected from its markers,
or --tool-call-parser), and calls come back as OpenAI's message.tool_calls / delta.tool_calls.

The small default model does not call tools by itself, so these tests use the test build's
`halyard_test_output` field: the server tokenizes that text and its tokens replace the sampled
ones (the model still runs every step). Everything after sampling is the real path: detokenizing,
streaming, the tool-call parser, the response shapes.
"""

import json
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from conftest import MODEL_ID, ROOT, start_server

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
CALL_TEXT = ('Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}'
             '\n</tool_call>')


def sdist_template(name):
    r = subprocess.run(["bash", str(ROOT / "scripts/fetch-llama-cpp-sdist.sh")], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        pytest.fail("scripts/fetch-llama-cpp-sdist.sh failed:\n" + r.stderr[-2000:])
    path = Path(r.stdout.strip()) / "vendor/llama.cpp/models/templates" / name
    assert path.is_file(), path
    return path


@pytest.fixture(scope="module")
def qwen_server():
    with start_server("--chat-template", str(sdist_template("Qwen-Qwen2.5-7B-Instruct.jinja"))) as s:
        assert "tool calls read as hermes" in s.log()
        yield s


@pytest.fixture(scope="module")
def qwen(qwen_server):
    return openai.OpenAI(base_url=qwen_server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def chat(client, output=None, **kw):
    extra = {"halyard_test_output": output} if output is not None else None
    return client.chat.completions.create(model=MODEL_ID, temperature=0, extra_body=extra, **kw)


def test_tools_and_tool_turns_change_the_rendered_prompt(qwen):
    plain = chat(qwen, messages=ASK, max_tokens=1).usage.prompt_tokens
    with_tools = chat(qwen, messages=ASK, tools=TOOLS, max_tokens=1).usage.prompt_tokens
    # Qwen 2.5 writes the tool schemas into its system turn.
    assert with_tools > plain + 30
    assert chat(qwen, messages=ASK, tools=TOOLS, tool_choice="none", max_tokens=1).usage.prompt_tokens == plain
    history = ASK + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18 C, sunny"},
    ]
    after = chat(qwen, messages=history, tools=TOOLS, max_tokens=1).usage.prompt_tokens
    assert after > with_tools


def test_tool_call_whole_response(qwen):
    r = chat(qwen, CALL_TEXT, messages=ASK, tools=TOOLS, max_tokens=200)
    (choice,) = r.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(call.function.arguments, str)
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}


def test_several_calls_and_no_text_give_null_content(qwen):
    out = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
           '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>')
    r = chat(qwen, out, messages=ASK, tools=TOOLS, max_tokens=200)
    m = r.choices[0].message
    assert m.content is None and r.choices[0].finish_reason == "tool_calls"
    assert [json.loads(c.function.arguments)["city"] for c in m.tool_calls] == ["Paris", "Oslo"]
    assert len({c.id for c in m.tool_calls}) == 2
    # parallel_tool_calls false: the first call only.
    r = chat(qwen, out, messages=ASK, tools=TOOLS, max_tokens=200, parallel_tool_calls=False)
    assert [json.loads(c.function.arguments)["city"] for c in r.choices[0].message.tool_calls] == ["Paris"]


def test_tool_call_streamed(qwen):
    chunks = list(chat(qwen, CALL_TEXT, messages=ASK, tools=TOOLS, max_tokens=200, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert content.strip() == "Let me look." and "<tool_call>" not in content
    calls = {}
    for c in chunks:
        for d in c.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
            if d.id:
                entry["id"] = d.id
                assert d.type == "function"
            if d.function and d.function.name:
                entry["name"] = d.function.name
            if d.function and d.function.arguments:
                entry["arguments"] += d.function.arguments
    assert list(calls) == [0]
    assert calls[0]["id"].startswith("call_") and calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    # The same text streamed and whole: the same content.
    whole = chat(qwen, CALL_TEXT, messages=ASK, tools=TOOLS, max_tokens=200)
    assert whole.choices[0].message.content == content.strip()


@pytest.mark.parametrize("stream", [False, True])
def test_malformed_call_and_no_tools_stay_content(qwen, stream):
    bad = '<tool_call>\n{"name": "get_weather", "arguments": {"city": </tool_call>'
    for out, tools in ((bad, TOOLS), (CALL_TEXT, None)):
        kw = {"tools": tools} if tools else {}
        r = chat(qwen, out, messages=ASK, max_tokens=200, stream=stream, **kw)
        if stream:
            chunks = list(r)
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            assert not any(c.choices[0].delta.tool_calls for c in chunks)
            finish = chunks[-1].choices[0].finish_reason
        else:
            text, finish = r.choices[0].message.content, r.choices[0].finish_reason
            assert not r.choices[0].message.tool_calls
        assert text == out and finish == "stop"


def error_of(r):
    assert r.status_code == 400, r.text
    e = r.json()["error"]
    assert set(e) == {"message", "type", "param", "code"} and e["type"] == "invalid_request_error"
    return e


@pytest.mark.parametrize("extra,param", [
    ({"tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "tool_choice"),
    ({"tools": TOOLS, "tool_choice": "sometimes"}, "tool_choice"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tools": {"get_weather": {}}}, "tools"),
    ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": TOOLS, "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"messages": ASK + [{"role": "assistant", "tool_calls": [{"type": "function", "function": {
        "name": "get_weather", "arguments": 7}}]}]}, "messages[1].tool_calls[0].function.arguments"),
    ({"messages": ASK + [{"role": "tool", "content": "x", "tool_call_id": 1}]}, "messages[1].tool_call_id"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
     "messages[0].content[0]"),
])
def test_bad_tool_fields_are_400s_naming_the_field(qwen_server, extra, param):
    body = {"messages": ASK, "max_tokens": 1, **extra}
    r = httpx.post(qwen_server.url + "/v1/chat/completions", json=body, timeout=30)
    e = error_of(r)
    assert e["param"] == param, e


def test_the_openai_client_sees_unsupported_tool_choice(qwen):
    with pytest.raises(openai.BadRequestError) as err:
        chat(qwen, messages=ASK, tools=TOOLS, tool_choice="required", max_tokens=1)
    assert "not supported" in str(err.value)


def test_tool_call_parser_option_mistral():
    path = sdist_template("Qwen-Qwen2.5-7B-Instruct.jinja")
    with start_server("--chat-template", str(path), "--tool-call-parser", "mistral") as s:
        assert "tool calls read as mistral" in s.log()
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        out = 'Checking.[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Oslo"}}]'
        r = chat(client, out, messages=ASK, tools=TOOLS, max_tokens=200)
        (call,) = r.choices[0].message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}
        assert r.choices[0].message.content == "Checking." and r.choices[0].finish_reason == "tool_calls"
        # Hermes markers mean nothing to the mistral parser.
        r = chat(client, CALL_TEXT, messages=ASK, tools=TOOLS, max_tokens=200)
        assert r.choices[0].message.content == CALL_TEXT and not r.choices[0].message.tool_calls
