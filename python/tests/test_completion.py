"""create_completion and create_chat_completion: text, shapes, streams, finish reasons, stops."""

import pytest

PROMPT = "The capital of France is"
GREEDY = " Paris.\n"  # llama.cpp's greedy continuation (tests/e2e/c_api_test.cpp)


def test_greedy_completion(model, model_path):
    out = model.create_completion(PROMPT, max_tokens=3, temperature=0)
    assert out["id"].startswith("cmpl-")
    assert out["object"] == "text_completion"
    assert isinstance(out["created"], int)
    assert out["model"] == model_path
    assert out["choices"] == [{"text": GREEDY, "index": 0, "logprobs": None, "finish_reason": "length"}]
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                            "prompt_tokens_details": {"cached_tokens": 0}}


def test_call_is_create_completion(ref_model):
    assert ref_model(PROMPT, max_tokens=3, temperature=0)["choices"][0]["text"] == GREEDY


def test_stream_concatenates_to_the_completion(cpu_model):
    whole = cpu_model.create_completion(PROMPT, max_tokens=24, temperature=0)
    chunks = list(cpu_model.create_completion(PROMPT, max_tokens=24, temperature=0, stream=True))
    assert len(chunks) >= 2
    assert "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("cmpl-")
    for c in chunks:
        assert c["object"] == "text_completion" and set(c) == {"id", "object", "created", "model", "choices"}
        assert c["choices"][0]["index"] == 0 and c["choices"][0]["logprobs"] is None


def test_seeded_sampling_repeats(cpu_model):
    a = cpu_model.create_completion(PROMPT, max_tokens=12, temperature=1.0, seed=7)
    b = cpu_model.create_completion(PROMPT, max_tokens=12, temperature=1.0, seed=7)
    assert a["choices"][0]["text"] == b["choices"][0]["text"]


def test_stop_string_cuts_the_text(model):
    out = model.create_completion(PROMPT, max_tokens=3, temperature=0, stop=".")
    assert out["choices"][0]["text"] == " Paris"
    assert out["choices"][0]["finish_reason"] == "stop"
    # Tokens up to the one that completed the stop string: " Paris", ".".
    assert out["usage"]["completion_tokens"] == 2


def test_stop_string_across_tokens_is_never_streamed(cpu_model):
    # "ris." spans the tokens " Paris" and ".": the stream must hold back "ris" until it knows.
    chunks = list(cpu_model.create_completion(PROMPT, max_tokens=8, temperature=0, stream=True, stop=["xyz", "ris."]))
    texts = [c["choices"][0]["text"] for c in chunks]
    assert "".join(texts) == " Pa"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # A stop string that never comes changes nothing.
    out = cpu_model.create_completion(PROMPT, max_tokens=3, temperature=0, stop=["Lyon", ""])
    assert out["choices"][0]["text"] == GREEDY and out["choices"][0]["finish_reason"] == "length"


def test_end_of_sequence_is_stop(cpu_model):
    out = cpu_model.create_chat_completion([{"role": "user", "content": "What is the capital of France?"}],
                                           temperature=0, max_tokens=200)
    assert out["choices"][0]["finish_reason"] == "stop"
    assert "Paris" in out["choices"][0]["message"]["content"]
    assert out["usage"]["completion_tokens"] < 200


def test_context_full_is_length(model_path):
    import halyard

    with halyard.Model(model_path, device="cpu", n_ctx=16, n_threads=2) as m:
        out = m.create_completion(PROMPT, max_tokens=None, temperature=0)
        assert out["choices"][0]["finish_reason"] == "length"
        # Every position filled; the last token sampled needs no position of its own.
        assert out["usage"]["total_tokens"] == 17


def test_chat_completion_shape(cpu_model, model_path):
    messages = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Say hello."}]
    out = cpu_model.create_chat_completion(messages, max_tokens=8, temperature=0)
    assert out["id"].startswith("chatcmpl-")
    assert out["object"] == "chat.completion"
    assert out["model"] == model_path and isinstance(out["created"], int)
    (choice,) = out["choices"]
    assert choice["index"] == 0 and choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = out["usage"]
    assert usage["prompt_tokens"] == len(cpu_model.tokenize(cpu_model.apply_chat_template(messages)))
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    chunks = list(cpu_model.create_chat_completion(messages, max_tokens=8, temperature=0, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in chunks[1:-1])
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == choice["finish_reason"]
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == choice["message"]["content"]


@pytest.mark.parametrize("max_tokens", [0, -1])
def test_max_tokens_zero_or_less_means_no_limit(model_path, max_tokens):
    import halyard

    with halyard.Model(model_path, device="cpu", n_ctx=12, n_threads=2) as m:
        out = m.create_completion(PROMPT, max_tokens=max_tokens, temperature=0)
        assert out["usage"]["completion_tokens"] > 3
