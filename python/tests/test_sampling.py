"""The sampling keywords beyond temperature / top-k / top-p: logit bias, penalties, min-p."""

import math

import pytest

import halyard

PROMPT = "The capital of France is"
PARIS = 7042  # " Paris", the greedy first token (tests/e2e/c_api_test.cpp)


def first_text(model, **kwargs):
    return model.create_completion(PROMPT, max_tokens=1, temperature=0, **kwargs)["choices"][0]["text"]


def test_logit_bias_bans_the_greedy_token(cpu_model):
    assert first_text(cpu_model) == " Paris"
    banned = first_text(cpu_model, logit_bias={PARIS: -math.inf})
    assert banned != " Paris"
    # OpenAI's JSON spells the keys as strings: the same ban.
    assert first_text(cpu_model, logit_bias={str(PARIS): -math.inf}) == banned
    # A large positive bias promotes a token to the greedy choice.
    lyon = cpu_model.tokenize(" Lyon", add_bos=False)[0]
    assert first_text(cpu_model, logit_bias={lyon: 100.0}) == cpu_model.detokenize([lyon]).decode()


def test_penalties_and_min_p_are_passed_through(cpu_model):
    # The library validates the ranges: values it refuses show that they reached it.
    with pytest.raises(halyard.InvalidArgument, match="min-p"):
        first_text(cpu_model, min_p=1.5)
    with pytest.raises(halyard.InvalidArgument, match="repeat penalty"):
        first_text(cpu_model, repeat_penalty=0.0)
    with pytest.raises(halyard.InvalidArgument, match="presence"):
        first_text(cpu_model, presence_penalty=math.nan)
    with pytest.raises(halyard.InvalidArgument, match="frequency"):
        first_text(cpu_model, frequency_penalty=math.inf)
    with pytest.raises(halyard.InvalidArgument, match="vocabulary"):
        first_text(cpu_model, logit_bias={10**6: 1.0})
    with pytest.raises(halyard.InvalidArgument, match="token ids"):
        first_text(cpu_model, logit_bias={"Paris": 1.0})
    # And in range they change greedy text: a strong presence penalty forbids repeating any
    # token of the prompt or of the text so far.
    plain = cpu_model.create_completion(PROMPT, max_tokens=12, temperature=0)["choices"][0]["text"]
    penalised = cpu_model.create_completion(PROMPT, max_tokens=12, temperature=0, presence_penalty=100.0,
                                            repeat_penalty=1.0)["choices"][0]["text"]
    assert penalised != plain


def test_chat_completion_takes_the_same_keywords(cpu_model):
    out = cpu_model.create_chat_completion([{"role": "user", "content": "Say hi"}], max_tokens=4, temperature=0,
                                           min_p=0.1, repeat_penalty=1.1, presence_penalty=0.5,
                                           frequency_penalty=0.5, logit_bias={PARIS: -math.inf})
    assert out["choices"][0]["finish_reason"] in ("length", "stop")


def test_last_n_tokens_size_is_the_window(model_path):
    # A window size the library refuses shows that the value reaches it.
    with halyard.Model(model_path, device="cpu", n_ctx=64, n_threads=2, last_n_tokens_size=-2) as bad:
        with pytest.raises(halyard.InvalidArgument, match="repeat-last-n"):
            first_text(bad)
    # With a window of 0 the penalties are off: greedy text is unchanged by them (with the
    # default window, test_penalties_and_min_p_are_passed_through shows the same penalty
    # changing it).
    with halyard.Model(model_path, device="cpu", n_ctx=64, n_threads=2, last_n_tokens_size=0) as none:
        plain = none.create_completion(PROMPT, max_tokens=8, temperature=0)["choices"][0]["text"]
        penalised = none.create_completion(PROMPT, max_tokens=8, temperature=0,
                                           presence_penalty=100.0)["choices"][0]["text"]
        assert penalised == plain
