"""Tokenize, detokenize and chat formatting on ref and cpu."""

import pytest

import halyard

FRANCE = [504, 3575, 282, 4649, 314]  # "The capital of France is" (tests/e2e/c_api_test.cpp)


def test_known_token_ids(model):
    assert model.tokenize(b"The capital of France is") == FRANCE
    assert model.tokenize("The capital of France is") == FRANCE
    # SmolLM2 adds no BOS, so add_bos changes nothing here.
    assert model.tokenize("The capital of France is", add_bos=False) == FRANCE


def test_round_trip(model):
    text = "Héllo, wörld! 日本語 \n\t tabs and 123"
    assert model.detokenize(model.tokenize(text, add_bos=False)).decode("utf-8") == text
    assert model.detokenize([]) == b""


def test_long_texts(model):
    text = "word " * 3000
    ids = model.tokenize(text)
    assert len(ids) == 3001  # "word", 2999 x " word", " "
    assert model.detokenize(ids).decode() == text


def test_a_token_longer_than_the_first_buffer(model):
    # Token 46778 is a newline and 80 spaces: more than the 32 bytes first offered for one
    # token, so detokenize takes the BUFFER_TOO_SMALL path and retries with the size given.
    text = model.detokenize([46778])
    assert text == b"\n" + b" " * 80
    assert model.detokenize([46778, 46778]) == text * 2


def test_special_tokens(model):
    special = model.tokenize("<|im_start|>", special=True)
    plain = model.tokenize("<|im_start|>", special=False)
    assert len(special) == 1
    assert len(plain) > 1
    assert model.detokenize(special) == b"<|im_start|>"


def test_bad_token_id_is_invalid_argument(model):
    with pytest.raises(halyard.InvalidArgument) as info:
        model.detokenize([model.n_vocab()])
    assert info.value.message
    with pytest.raises(halyard.InvalidArgument):
        model.detokenize([-1])
    with pytest.raises(halyard.InvalidArgument):
        model.detokenize([2**32 + 504])  # would wrap to a valid id if truncated


def test_properties(model):
    assert model.n_vocab() == 49152
    assert model.n_ctx() in (256, 512)
    assert model.device in ("ref", "cpu")
    assert isinstance(model.name, str) and model.name
    assert model.device in repr(model)


def test_chat_template(model):
    text = model.apply_chat_template([{"role": "user", "content": "Hi"}])
    # ChatML; SmolLM2's template adds its default system message.
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    parts = model.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    assert parts == text


def test_nul_in_a_chat_message_is_refused(model):
    with pytest.raises(halyard.InvalidArgument):
        model.apply_chat_template([{"role": "user", "content": "a\0b"}])
    with pytest.raises(halyard.InvalidArgument):
        model.apply_chat_template([{"content": "no role"}])
    with pytest.raises(halyard.InvalidArgument):
        model.apply_chat_template([("user", "a tuple")])
