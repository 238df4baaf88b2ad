"""Errors: each failure raises the exception of its status, with the library's message."""

import math

import pytest

import halyard


def test_missing_file_is_not_found(tmp_path):
    with pytest.raises(halyard.NotFound) as info:
        halyard.Model(str(tmp_path / "nothing.gguf"), device="ref")
    assert info.value.status == 2 and info.value.status_name == "not found"
    assert "nothing.gguf" in info.value.message
    assert isinstance(info.value, halyard.HalyardError) and isinstance(info.value, LookupError)


def test_truncated_file_is_corrupt(tmp_path, model_path):
    bad = tmp_path / "cut.gguf"
    with open(model_path, "rb") as f:
        bad.write_bytes(f.read(4096))
    with pytest.raises(halyard.CorruptFile):
        halyard.Model(str(bad), device="ref")


def test_unknown_device_is_not_found(model_path):
    with pytest.raises(halyard.NotFound) as info:
        halyard.Model(model_path, device="nosuch:0")
    assert "nosuch" in info.value.message


def test_bad_backend_option_is_invalid_argument(model_path):
    with pytest.raises(halyard.InvalidArgument) as info:
        halyard.Model(model_path, device="cpu", backend_options={"cpu.kernals": "avx2"})
    assert "cpu.kernals" in info.value.message


def test_backend_options_are_passed(model_path):
    with halyard.Model(model_path, device="cpu", n_ctx=64, backend_options=["cpu.kernels=generic"]) as m:
        assert "generic" in m.device_details
    with halyard.Model(model_path, device="cpu", n_ctx=64, backend_options={"cpu.kernels": "generic"}) as m:
        assert "generic" in m.device_details


def test_nan_temperature_is_invalid_argument(ref_model):
    with pytest.raises(halyard.InvalidArgument) as info:
        ref_model.create_completion("Hi", max_tokens=2, temperature=math.nan)
    assert isinstance(info.value, ValueError)
    assert "temperature" in info.value.message
    # A stream raises it when it is first read; the model stays usable.
    stream = ref_model.create_completion("Hi", max_tokens=2, temperature=math.nan, stream=True)
    with pytest.raises(halyard.InvalidArgument):
        next(stream)
    with pytest.raises(halyard.InvalidArgument):
        ref_model.create_chat_completion([{"role": "user", "content": "Hi"}], top_p=0.0)
    assert ref_model("The capital of France is", max_tokens=1, temperature=0)["choices"][0]["text"] == " Paris"


def test_prompt_longer_than_the_context_is_out_of_range(ref_model):
    prompt = "word " * (ref_model.n_ctx() + 10)
    with pytest.raises(halyard.OutOfRange) as info:
        ref_model.create_completion(prompt, max_tokens=1)
    assert str(ref_model.n_ctx()) in info.value.message
    with pytest.raises(halyard.OutOfRange):
        list(ref_model.create_completion(prompt, max_tokens=1, stream=True))


def test_nul_in_the_prompt_is_refused(ref_model):
    with pytest.raises(halyard.InvalidArgument):
        ref_model.create_completion("a\0b", max_tokens=1)


def test_wrong_types_are_type_errors(ref_model):
    with pytest.raises(TypeError):
        ref_model.create_completion("Hi", max_tokens=1, stop=[1])
    with pytest.raises(TypeError):
        ref_model.create_completion([504, 3575], max_tokens=1)  # token ids: not taken
    with pytest.raises(TypeError):
        ref_model.tokenize(None)


def test_closed_model(model_path):
    m = halyard.Model(model_path, device="ref", n_ctx=32)
    m.close()
    m.close()  # twice is fine
    with pytest.raises(halyard.InvalidArgument):
        m.tokenize("x")
    with pytest.raises(halyard.InvalidArgument):
        m.create_completion("x")
    assert "closed" in repr(m)
