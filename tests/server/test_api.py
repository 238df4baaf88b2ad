"""The OpenAI API of `halyard serve` through the official openai client and raw HTTP: chat and
text completions, streamed and whole, usage, logprobs, stop strings, n > 1, and every error shape."""

import json

import httpx
import openai
import pytest

from conftest import MODEL_ID

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def greedy_chat(client, **kw):
    return client.chat.completions.create(model=MODEL_ID, messages=CHAT, temperature=0, **kw)


def test_models_lists_the_served_model(client, server):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    info = httpx.get(server.url + "/halyard/info").json()
    assert info["device"] == "cpu" and info["model"] == MODEL_ID


def test_chat_completion_whole(client):
    r = greedy_chat(client, max_tokens=24)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == MODEL_ID
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert "Paris" in choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 24
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_has_openai_shape_and_equals_the_whole_answer(client):
    whole = greedy_chat(client, max_tokens=20)
    chunks = list(greedy_chat(client, max_tokens=20, stream=True, stream_options={"include_usage": True}))
    assert len(chunks) >= 3
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    # The usage chunk comes last, with no choices; every other chunk has usage null.
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens == whole.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    body = chunks[:-1]
    assert body[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert all(c.choices[0].finish_reason is None for c in body[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text == whole.choices[0].message.content


def test_stream_ends_with_done_and_no_usage_unless_asked(server):
    with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=60,
                      json={"messages": CHAT, "max_tokens": 5, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    for e in events[:-1]:
        chunk = json.loads(e)
        assert "usage" not in chunk and len(chunk["choices"]) == 1


def test_text_completion_whole_stream_and_echo(client):
    prompt = "The capital of France is"
    whole = client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=8, temperature=0)
    assert whole.object == "text_completion" and whole.id.startswith("cmpl-")
    assert whole.choices[0].finish_reason == "length" and whole.usage.completion_tokens == 8
    streamed = list(client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=8, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text
    assert streamed[-1].choices[0].finish_reason == "length"
    echoed = client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=8, temperature=0, echo=True)
    assert echoed.choices[0].text == prompt + whole.choices[0].text
    # A prompt of token ids is the same prompt.
    ids = client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=1, temperature=0, logprobs=0)
    assert ids.choices[0].logprobs.tokens


def test_max_completion_tokens_wins_over_max_tokens(client):
    r = greedy_chat(client, max_tokens=20, extra_body={"max_completion_tokens": 3, "ignore_eos": True})
    assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length"


def test_seeded_sampling_repeats_and_differs_by_seed(client):
    kw = dict(model=MODEL_ID, messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=16,
              temperature=1.0, top_p=0.95)
    # A first request puts the prompt's blocks in the prefix cache, so the runs compared below
    # compute the same way (on cpu, a prompt computed whole rounds differently from its cached
    # blocks plus the rest, and a draw can flip where two tokens nearly tie).
    client.chat.completions.create(seed=1, **kw)
    a = client.chat.completions.create(seed=7, **kw).choices[0].message.content
    b = client.chat.completions.create(seed=7, **kw).choices[0].message.content
    c = client.chat.completions.create(seed=8, **kw).choices[0].message.content
    assert a == b
    assert a != c


def test_chat_logprobs(client):
    r = greedy_chat(client, max_tokens=6, logprobs=True, top_logprobs=3, extra_body={"ignore_eos": True})
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 6
    for entry in content:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == 3
        lps = [t.logprob for t in entry.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        # Greedy: the chosen token is the most likely.
        assert entry.top_logprobs[0].token == entry.token
        assert entry.bytes == list(entry.token.encode("utf-8", "surrogateescape")) or entry.bytes
    assert "".join(e.token for e in content).startswith(r.choices[0].message.content[:5])


def test_completion_logprobs_format(client):
    r = client.completions.create(model=MODEL_ID, prompt="One, two, three,", max_tokens=4, temperature=0,
                                  logprobs=2, extra_body={"ignore_eos": True})
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == 4
    assert all(len(t) <= 2 and len(t) >= 1 for t in lp.top_logprobs)
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    assert "".join(lp.tokens) == r.choices[0].text


def test_stop_strings_across_token_boundaries_are_not_returned(client):
    kw = dict(model=MODEL_ID, prompt="Count: 1, 2, 3, 4, 5,", temperature=0, max_tokens=24,
              extra_body={"ignore_eos": True})
    free = client.completions.create(logprobs=0, **kw)
    tokens = free.choices[0].logprobs.tokens
    text = free.choices[0].text
    assert "".join(tokens) == text
    # A stop string made of the end of token 2 and the start of token 3 (or token 3 whole and
    # token 4's start), so no single token holds it.
    i = next(k for k in range(2, len(tokens) - 1) if len(tokens[k]) >= 1 and len(tokens[k + 1]) >= 1)
    start = len("".join(tokens[:i])) + len(tokens[i]) - 1
    stop = text[start:start + 2]
    assert len(stop) == 2
    first = text.find(stop)
    r = client.completions.create(stop=[stop, "never-generated-xyz"], **kw)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].text == text[:first]
    assert stop not in r.choices[0].text
    # Streamed, the same text arrives, and nothing of the stop string.
    streamed = list(client.completions.create(stop=stop, stream=True, **kw))
    assert "".join(c.choices[0].text for c in streamed) == text[:first]
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_n_choices_share_the_prompt_blocks(client, server):
    long_prompt = "Here is a list of fruits: apple, banana, cherry, date, elderberry, fig, grape, honeydew, kiwi."
    before = server.metrics()["vllm:prefix_cache_hits_total"]
    r = client.completions.create(model=MODEL_ID, prompt=long_prompt, max_tokens=6, temperature=0, n=3,
                                  extra_body={"ignore_eos": True})
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    assert len({c.text for c in r.choices}) == 1  # greedy: the same text
    assert r.usage.completion_tokens == 18
    hits = server.metrics()["vllm:prefix_cache_hits_total"] - before
    full_blocks = (r.usage.prompt_tokens // 16) * 16
    assert full_blocks >= 16
    # Choices 1 and 2 reuse choice 0's full blocks.
    assert hits >= 2 * full_blocks
    streamed = list(client.completions.create(model=MODEL_ID, prompt=long_prompt, max_tokens=4, temperature=0, n=2,
                                              stream=True, extra_body={"ignore_eos": True}))
    for index in (0, 1):
        mine = [c for c in streamed if c.choices and c.choices[0].index == index]
        assert mine[-1].choices[0].finish_reason == "length"


def error_of(response):
    body = response.json()
    assert set(body) == {"error"}
    e = body["error"]
    assert set(e) == {"message", "type", "param", "code"}
    assert isinstance(e["message"], str) and e["message"]
    assert e["param"] is None or isinstance(e["param"], str)
    assert e["code"] is None or isinstance(e["code"], str)
    return e


@pytest.mark.parametrize("body,param", [
    ({"messages": CHAT, "temperature": "hot"}, "temperature"),
    ({"messages": CHAT, "temperature": 3}, "temperature"),
    ({"messages": CHAT, "top_p": 0}, "top_p"),
    ({"messages": CHAT, "max_tokens": 0}, "max_tokens"),
    ({"messages": CHAT, "n": 0}, "n"),
    ({"messages": CHAT, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": CHAT, "stop": [""]}, "stop"),
    ({"messages": CHAT, "logit_bias": {"abc": 1}}, "logit_bias"),
    ({"messages": CHAT, "logit_bias": {"1": 500}}, "logit_bias"),
    ({"messages": CHAT, "presence_penalty": 9}, "presence_penalty"),
    ({"messages": CHAT, "top_logprobs": 3}, "top_logprobs"),
    ({"messages": CHAT, "logprobs": True, "top_logprobs": 50}, "top_logprobs"),
    ({"messages": CHAT, "stream_options": {"include_usage": True}}, "stream_options"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]"),
    ({}, "messages"),
])
def test_invalid_fields_are_400s_naming_the_field(server, body, param):
    r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text
    e = error_of(r)
    assert e["param"] == param and e["type"] == "invalid_request_error"


def test_the_openai_client_sees_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as err:
        greedy_chat(client, max_tokens=5, top_p=-1)
    assert "top_p" in str(err.value)


def test_unknown_fields_are_ignored(server):
    r = httpx.post(server.url + "/v1/chat/completions", timeout=60,
                   json={"messages": CHAT, "max_tokens": 2, "frobnicate": {"x": [1]}, "user": "u1"})
    assert r.status_code == 200, r.text


def test_malformed_bodies(server):
    for raw in [b"{not json", b"[1, 2]", b"", b"[" * 100000, "\"\\ud800\"".encode()]:
        r = httpx.post(server.url + "/v1/completions", content=raw, timeout=30,
                       headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (raw[:20], r.text)
        error_of(r)
    r = httpx.post(server.url + "/v1/completions", json={"prompt": "x" * (5 << 20)}, timeout=30)
    assert r.status_code == 413
    assert error_of(r)["type"] == "invalid_request_error"
    r = httpx.get(server.url + "/v1/nothing", timeout=10)
    assert r.status_code == 404
    error_of(r)


def test_prompt_and_max_tokens_past_the_context(server):
    r = httpx.post(server.url + "/v1/completions", json={"prompt": "word " * 2000}, timeout=30)
    assert r.status_code == 400
    e = error_of(r)
    assert e["code"] == "context_length_exceeded" and e["param"] == "prompt"
    r = httpx.post(server.url + "/v1/completions", json={"prompt": "hi", "max_tokens": 5000}, timeout=30)
    assert r.status_code == 400
    assert error_of(r)["param"] == "max_tokens"
    r = httpx.post(server.url + "/v1/completions", json={"prompt": [1, 2, 10 ** 9]}, timeout=30)
    assert r.status_code == 400 and error_of(r)["param"] == "prompt"


def test_unknown_model_is_404(server):
    r = httpx.post(server.url + "/v1/chat/completions", json={"model": "gpt-17", "messages": CHAT}, timeout=30)
    assert r.status_code == 404
    assert error_of(r)["code"] == "model_not_found"
