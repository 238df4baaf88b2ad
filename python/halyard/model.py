"""halyard.Model: a loaded model with a llama-cpp-python-like API over the C API."""

from __future__ import annotations

import codecs
import ctypes
import json
import math
import os
import threading
import time
import uuid
import weakref
from typing import Any, Iterable, Iterator, Mapping, Sequence

from . import _native
from . import _batch
from ._generation import Generation
from ._sampler import Sampler
from ._stop import StopMatcher
from .context import Context
from .errors import Cancelled, InvalidArgument, check

_FINISH = {
    _native.FINISH_MAX_TOKENS: "length",
    _native.FINISH_CONTEXT_FULL: "length",
    _native.FINISH_END_OF_SEQUENCE: "stop",
}


def _c_string(value: str | bytes, what: str) -> bytes:
    """UTF-8 bytes for a C string argument; a NUL inside would silently cut it, so it is refused."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        # Not bytes(value): a list of token ids would silently become a byte string.
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in data:
        raise InvalidArgument(f"{what} contains a NUL character, which the C API cannot take")
    return data


class _Outcome:
    """What a finished generation reports besides its text."""

    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the prefix cache served


class _Sampling:
    """The sampling keywords of one call, checked for type here and for range by the library."""

    def __init__(self, temperature: float, top_p: float, top_k: int, min_p: float, repeat_penalty: float,
                 presence_penalty: float, frequency_penalty: float,
                 logit_bias: Mapping[int | str, float] | None) -> None:
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = int(top_k)
        self.min_p = float(min_p)
        self.repeat_penalty = float(repeat_penalty)
        self.presence_penalty = float(presence_penalty)
        self.frequency_penalty = float(frequency_penalty)
        tokens: list[int] = []
        values: list[float] = []
        for key, value in (logit_bias or {}).items():
            # OpenAI's JSON has string keys ("7042"); llama-cpp-python takes ints. Both are ids.
            try:
                token = int(key)
            except (TypeError, ValueError):
                raise InvalidArgument(f"logit_bias keys are token ids, not {key!r}") from None
            if not -(2**31) <= token < 2**31:
                raise InvalidArgument(f"logit_bias token id {token} does not fit in 32 bits")
            tokens.append(token)
            values.append(float(value))
        self._tokens = (ctypes.c_int32 * len(tokens))(*tokens)
        self._values = (ctypes.c_float * len(values))(*values)

    def fill(self, options: _native.GenerateOptions) -> None:
        """Writes these into options; the bias arrays stay alive with options (ctypes keeps a
        reference to what a pointer field is set from)."""
        options.temperature = self.temperature
        options.top_p = self.top_p
        options.top_k = self.top_k
        options.min_p = self.min_p
        options.repeat_penalty = self.repeat_penalty
        options.presence_penalty = self.presence_penalty
        options.frequency_penalty = self.frequency_penalty
        options.n_logit_bias = len(self._tokens)
        if len(self._tokens):
            options.logit_bias_tokens = ctypes.cast(self._tokens, ctypes.POINTER(ctypes.c_int32))
            options.logit_bias_values = ctypes.cast(self._values, ctypes.POINTER(ctypes.c_float))
            options._bias_arrays = (self._tokens, self._values)  # cast() alone does not keep them


class Model:
    """A GGUF model loaded on one device.

    Model(model_path, device="auto", n_ctx=0, n_threads=0, backend_options=None, last_n_tokens_size=64,
          force_gpt2_split=False)

    device: "auto", "ref", "cpu", "vulkan:0", ... (halyard.list_devices() lists them); None
    takes HALYARD_DEVICE, else "auto".
    n_ctx: context length; 0 takes min(the model's training context, 4096).
    n_threads: CPU threads for the cpu device; 0 takes the physical cores (or HALYARD_THREADS).
    backend_options: {"cpu.kernels": "avx2"} or ["cpu.kernels=avx2"]; halyard.list_options().
    last_n_tokens_size: the window of repeat_penalty, presence_penalty and frequency_penalty
    (llama-cpp-python's name): the last N tokens, prompt included; 0 none, -1 all.
    force_gpt2_split: load a byte-level BPE file whose tokenizer.ggml.pre Halyard does not know
    with GPT-2's split (a warning is logged) instead of failing with halyard.Unimplemented.

    Read-only calls (tokenize, detokenize, chat formatting) may run on several threads at once;
    generations on one Model are serialised by the library (a second one waits for the first).
    close() (or leaving a `with` block) must not race other calls on the same Model.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        device: str | None = "auto",
        n_ctx: int = 0,
        n_threads: int = 0,
        backend_options: Mapping[str, Any] | Iterable[str] | None = None,
        last_n_tokens_size: int = 64,
        force_gpt2_split: bool = False,
    ):
        self._handle: int | None = None
        self._last_n_tokens_size = int(last_n_tokens_size)  # range checked by the library
        self._generations: "weakref.WeakSet[Generation]" = weakref.WeakSet()
        self._contexts: "weakref.WeakSet[Context]" = weakref.WeakSet()
        self._lock = threading.Lock()
        # Held around every call that runs on the device (a generation, a context's step or
        # sequence operation): the library wants a model's sequences driven one thread at a time.
        self._device_lock = threading.Lock()
        self._block_size: int | None = None
        self.model_path = os.fspath(model_path)
        lib = _native.lib()
        options = _native.ModelOptions()
        _native.init_options(options)
        # None: the library's default (HALYARD_DEVICE, else "auto").
        options.device = None if device is None else _c_string(device, "device")
        options.context_length = int(n_ctx)
        options.threads = int(n_threads)
        # An unknown tokenizer.ggml.pre fails the load unless GPT-2's split is forced.
        options.force_gpt2_split = 1 if force_gpt2_split else 0
        keep_alive = []
        if backend_options is not None:
            if isinstance(backend_options, Mapping):
                pairs = [f"{k}={_option_value(v)}" for k, v in backend_options.items()]
            elif isinstance(backend_options, (str, bytes)):
                raise TypeError("backend_options is a mapping or a list of 'key=value' strings")
            else:
                pairs = list(backend_options)
            encoded = [_c_string(p, "a backend option") for p in pairs]
            array = (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)
            keep_alive.append(array)
            options.backend_options = ctypes.cast(array, ctypes.POINTER(ctypes.c_char_p))
        handle = ctypes.c_void_p()
        check(lib.halyard_model_load(_c_string(self.model_path, "model_path"), ctypes.byref(options),
                                     ctypes.byref(handle)))
        self._handle = handle.value

    # ---- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Frees the model; streams still open on it are cancelled and waited for first, and
        its contexts are closed."""
        with self._lock:
            if self._handle is None:
                return
            generations = list(self._generations)
            contexts = list(self._contexts)
        for g in generations:
            g.close()
        for c in contexts:
            c.close()
        with self._lock:
            handle, self._handle = self._handle, None
        if handle is not None:
            _native.lib().halyard_model_free(handle)

    def _add_context(self, context: "Context") -> None:
        with self._lock:
            self._contexts.add(context)

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except BaseException:  # noqa: BLE001 - a finalizer must not raise (e.g. at exit)
            pass

    def _h(self) -> int:
        handle = self._handle
        if handle is None:
            raise InvalidArgument("the model is closed")
        return handle

    # ---- properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        return _native.text(_native.lib().halyard_model_name(self._h()))

    @property
    def device(self) -> str:
        """The device the model runs on ("cpu", "ref", "vulkan:0", ...): "auto" resolved."""
        return _native.text(_native.lib().halyard_model_device(self._h()))

    @property
    def device_details(self) -> str:
        return _native.text(_native.lib().halyard_model_device_details(self._h()))

    def n_ctx(self) -> int:
        return int(_native.lib().halyard_model_context_length(self._h()))

    def n_vocab(self) -> int:
        return int(_native.lib().halyard_model_vocab_size(self._h()))

    # ---- text ---------------------------------------------------------------------------

    def tokenize(self, text: bytes | str, add_bos: bool = True, special: bool = True) -> list[int]:
        """Token ids of text. add_bos prepends BOS where the model wants one; special turns
        special-token texts such as "<|im_start|>" into those tokens."""
        if isinstance(text, str):
            data = text.encode("utf-8")
        elif isinstance(text, (bytes, bytearray, memoryview)):
            data = bytes(text)
        else:
            raise TypeError(f"text must be str or bytes, not {type(text).__name__}")
        lib = _native.lib()
        capacity = len(data) + 8
        while True:
            ids = (ctypes.c_int32 * capacity)()
            n = ctypes.c_size_t()
            status = lib.halyard_tokenize(self._h(), data, len(data), int(bool(add_bos)), int(bool(special)), ids,
                                          capacity, ctypes.byref(n))
            if status == _native.ERROR_BUFFER_TOO_SMALL and n.value > capacity:
                capacity = n.value
                continue
            check(status)
            return list(ids[: n.value])

    def detokenize(self, tokens: Sequence[int]) -> bytes:
        """The bytes of tokens (UTF-8, possibly cut mid-character at either end)."""
        tokens = [int(t) for t in tokens]
        if any(not -(2**31) <= t < 2**31 for t in tokens):
            raise InvalidArgument("token ids must fit in 32 bits")
        ids = (ctypes.c_int32 * len(tokens))(*tokens)
        lib = _native.lib()
        capacity = 16 * len(tokens) + 16
        while True:
            buf = ctypes.create_string_buffer(capacity)
            n = ctypes.c_size_t()
            status = lib.halyard_detokenize(self._h(), ids, len(tokens), buf, capacity, ctypes.byref(n))
            if status == _native.ERROR_BUFFER_TOO_SMALL and n.value > capacity:
                capacity = n.value
                continue
            check(status)
            return buf.raw[: n.value]

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]],
                            tools: Sequence[Mapping[str, Any]] | None = None,
                            add_generation_prompt: bool = True) -> str:
        """The conversation in the model's chat template, ending with the assistant header
        (unless add_generation_prompt is False). Messages are OpenAI's: content a string,
        None or text parts; assistant "tool_calls" ([{"id", "type": "function", "function":
        {"name", "arguments": JSON text}}]); "tool" turns with "tool_call_id". tools: OpenAI's
        tool definitions, passed to the template as `tools`."""
        if tools or not add_generation_prompt or any(_uses_tools(m) for m in messages):
            return self._apply_chat_template_json(messages, tools, add_generation_prompt)
        encoded = []
        for i, m in enumerate(messages):
            if not isinstance(m, Mapping):
                raise InvalidArgument(f"messages[{i}] is a {type(m).__name__}, not a mapping with 'role' and 'content'")
            role = m.get("role")
            if not isinstance(role, str):
                raise InvalidArgument(f"messages[{i}] has no 'role' string")
            encoded.append((_c_string(role, f"messages[{i}].role"),
                            _c_string(_content_text(m.get("content"), i), f"messages[{i}].content")))
        array = (_native.ChatMessage * max(len(encoded), 1))()
        for i, (role, content) in enumerate(encoded):
            array[i].role = role
            array[i].content = content
        lib = _native.lib()
        capacity = sum(len(r) + len(c) for r, c in encoded) + 256
        while True:
            buf = ctypes.create_string_buffer(capacity)
            n = ctypes.c_size_t()
            status = lib.halyard_apply_chat_template(self._h(), array, len(encoded), buf, capacity, ctypes.byref(n))
            if status == _native.ERROR_BUFFER_TOO_SMALL and n.value > capacity:
                capacity = n.value
                continue
            check(status)
            return buf.raw[: n.value].decode("utf-8", errors="replace")

    def _apply_chat_template_json(self, messages: Sequence[Mapping[str, Any]],
                                  tools: Sequence[Mapping[str, Any]] | None, add_generation_prompt: bool) -> str:
        for i, m in enumerate(messages):
            if not isinstance(m, Mapping):
                raise InvalidArgument(f"messages[{i}] is a {type(m).__name__}, not a mapping with 'role' and 'content'")
        try:
            messages_json = json.dumps(list(messages), ensure_ascii=False).encode("utf-8")
            tools_json = json.dumps(list(tools), ensure_ascii=False).encode("utf-8") if tools else None
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"messages and tools must be JSON-serializable: {e}") from None
        options = _native.ChatTemplateOptions()
        lib = _native.lib()
        lib.halyard_chat_template_options_init(ctypes.byref(options), ctypes.sizeof(options))
        options.messages_json = messages_json
        options.tools_json = tools_json
        options.add_generation_prompt = 1 if add_generation_prompt else 0
        capacity = len(messages_json) + len(tools_json or b"") + 256
        while True:
            buf = ctypes.create_string_buffer(capacity)
            n = ctypes.c_size_t()
            status = lib.halyard_apply_chat_template_ex(self._h(), None, 0, ctypes.byref(options), buf, capacity,
                                                        ctypes.byref(n))
            if status == _native.ERROR_BUFFER_TOO_SMALL and n.value > capacity:
                capacity = n.value
                continue
            check(status)
            return buf.raw[: n.value].decode("utf-8", errors="replace")

    @property
    def tool_call_format(self) -> str:
        """How the model's chat template teaches tool calls: "hermes", "llama3_json", "mistral" or "none"."""
        return _native.text(_native.lib().halyard_model_tool_call_format(self._h()))

    def parse_tool_calls(self, text: str, format: str | None = None) -> dict:
        """Tool calls in generated text: {"content": str | None, "tool_calls": [{"id", "type":
        "function", "function": {"name", "arguments": JSON text}}]}. format: "hermes",
        "llama3_json", "mistral", "none", or None for tool_call_format. Text that does not parse
        as calls is all content."""
        raw = text.encode("utf-8")
        lib = _native.lib()
        capacity = 2 * len(raw) + 256
        fmt = format.encode("utf-8") if format is not None else None
        while True:
            buf = ctypes.create_string_buffer(capacity)
            n = ctypes.c_size_t()
            status = lib.halyard_parse_tool_calls(self._h(), raw, len(raw), fmt, buf, capacity, ctypes.byref(n))
            if status == _native.ERROR_BUFFER_TOO_SMALL and n.value > capacity:
                capacity = n.value
                continue
            check(status)
            return json.loads(buf.raw[: n.value].decode("utf-8"))

    # ---- generation ---------------------------------------------------------------------

    def _generate_options(self, max_tokens: int | None, sampling: _Sampling,
                          seed: int | None) -> _native.GenerateOptions:
        """halyard_generate_options for one generation (or one sequence's sampler)."""
        options = _native.GenerateOptions()
        _native.init_options(options)
        # None or <= 0: until the end of sequence or the context is full (llama-cpp-python's
        # meaning); the context length bounds it anyway.
        options.max_tokens = self.n_ctx() if max_tokens is None or max_tokens <= 0 else min(int(max_tokens), 2**31 - 1)
        sampling.fill(options)
        options.repeat_last_n = max(-(2**31), min(self._last_n_tokens_size, 2**31 - 1))
        options.seed = int.from_bytes(os.urandom(8), "little") if seed is None else int(seed) & (2**64 - 1)
        options.parse_special = 1
        return options

    def _pieces(self, prompt: bytes, max_tokens: int | None, sampling: _Sampling, seed: int | None,
                stop: str | Sequence[str] | None, outcome: _Outcome) -> Iterator[str]:
        """Text deltas of one generation (stop strings applied); fills outcome at the end.
        Closing this iterator early cancels the generation and waits for it (one token)."""
        lib = _native.lib()
        options = self._generate_options(max_tokens, sampling, seed)
        matcher = StopMatcher(stop)  # validates stop before anything runs
        generation = Generation(self._h(), prompt, options, self._device_lock)
        with self._lock:
            self._generations.add(generation)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        completion_tokens = 0
        try:
            for token, data in generation.pieces():
                if token >= 0:
                    completion_tokens += 1
                delta = matcher.feed(decoder.decode(data))
                if delta:
                    yield delta
                if matcher.stopped:
                    generation.cancel()
                    break
            if not matcher.stopped:
                delta = matcher.feed(decoder.decode(b"", final=True))
                delta += matcher.flush()
                if delta:
                    yield delta
            timings = generation.wait()
            if timings.finish_reason == _native.FINISH_CANCELLED and not matcher.stopped:
                # Not this reader's doing: Model.close() cancelled the stream under it.
                raise Cancelled("the generation was cancelled because the model was closed")
            if matcher.stopped:
                outcome.finish_reason = "stop"
            else:
                outcome.finish_reason = _FINISH.get(timings.finish_reason, "length")
            outcome.prompt_tokens = int(timings.prompt_tokens)
            outcome.cached_tokens = int(timings.prompt_cached_tokens)
            outcome.completion_tokens = completion_tokens
        finally:
            generation.close()

    def create_completion(
        self,
        prompt: str | bytes,
        max_tokens: int | None = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        top_k: int = 40,
        seed: int | None = None,
        stream: bool = False,
        stop: str | Sequence[str] | None = None,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        logit_bias: Mapping[int | str, float] | None = None,
    ) -> dict | Iterator[dict]:
        """An OpenAI-style text completion of prompt (llama-cpp-python's shape). temperature 0
        is greedy; seed None draws a random seed; stop: a string or strings that end the text
        (cut before them). min_p, repeat_penalty (over the last 64 tokens, prompt included),
        presence_penalty, frequency_penalty and logit_bias ({token id: bias}, -inf bans) have
        llama-cpp-python's names and defaults. With stream=True, an iterator of chunks; the last one carries
        finish_reason. Closing it (break, close(), garbage collection) cancels generation."""
        data = _c_string(prompt, "the prompt")
        completion_id = f"cmpl-{uuid.uuid4()}"
        created = int(time.time())
        outcome = _Outcome()
        sampling = _Sampling(temperature, top_p, top_k, min_p, repeat_penalty, presence_penalty, frequency_penalty,
                             logit_bias)
        pieces = self._pieces(data, max_tokens, sampling, seed, stop, outcome)

        def chunk(text: str, finish_reason: str | None) -> dict:
            return {
                "id": completion_id,
                "object": "text_completion",
                "created": created,
                "model": self.model_path,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
            }

        if stream:
            return _stream_chunks(pieces, lambda text: chunk(text, None), lambda: chunk("", outcome.finish_reason))
        text = "".join(_consume(pieces))
        result = chunk(text, outcome.finish_reason)
        result["usage"] = _usage(outcome)
        return result

    __call__ = create_completion

    def create_chat_completion(
        self,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int | None = None,
        temperature: float = 0.2,
        top_p: float = 0.95,
        top_k: int = 40,
        seed: int | None = None,
        stream: bool = False,
        stop: str | Sequence[str] | None = None,
        min_p: float = 0.05,
        repeat_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        logit_bias: Mapping[int | str, float] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> dict | Iterator[dict]:
        """An OpenAI-style chat completion: messages ([{"role": ..., "content": ...}], tool
        calls and tool turns included) go through the model's chat template; max_tokens None
        runs to the end of the reply (or of the context). With stream=True,
        chat.completion.chunk dicts: the first delta carries the role, then content deltas,
        the last has finish_reason.

        tools (OpenAI's definitions) reach the template; tool_choice "auto" (the default with
        tools) reads the output for tool calls in the format the template teaches
        (tool_call_format): found calls come back as message["tool_calls"] (arguments JSON
        text), content is the text outside them or None, finish_reason "tool_calls". "none"
        passes no tools. "required" and a named function are not supported (InvalidArgument).
        Streamed with tools, the output is held until it ends, then sent as content and
        tool_calls deltas."""
        if tool_choice is not None and tool_choice not in ("auto", "none"):
            raise InvalidArgument(f"tool_choice {tool_choice!r} is not supported; use 'auto' or 'none'")
        if tool_choice == "none":
            tools = None
        prompt = _c_string(self.apply_chat_template(messages, tools=tools), "the formatted conversation")
        read_tools = bool(tools) and self.tool_call_format != "none"
        completion_id = f"chatcmpl-{uuid.uuid4()}"
        created = int(time.time())
        outcome = _Outcome()
        sampling = _Sampling(temperature, top_p, top_k, min_p, repeat_penalty, presence_penalty, frequency_penalty,
                             logit_bias)
        pieces = self._pieces(prompt, max_tokens, sampling, seed, stop, outcome)

        def chunk(delta: dict, finish_reason: str | None) -> dict:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.model_path,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }

        if stream and not read_tools:
            return _stream_chunks(pieces, lambda text: chunk({"content": text}, None),
                                  lambda: chunk({}, outcome.finish_reason),
                                  first=chunk({"role": "assistant"}, None))
        text = "".join(_consume(pieces))
        message = {"role": "assistant", "content": text}
        finish_reason = outcome.finish_reason
        if read_tools:
            parsed = self.parse_tool_calls(text)
            if parsed["tool_calls"]:
                message = {"role": "assistant", "content": parsed["content"], "tool_calls": parsed["tool_calls"]}
                finish_reason = "tool_calls"
        if stream:
            return _held_tool_stream(chunk, message, finish_reason)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": self.model_path,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }],
            "usage": _usage(outcome),
        }

    def create_context(self, max_sequences: int = 1, kv_blocks: int = 0, max_batch_tokens: int = 512,
                       kv_dtype: str | None = None, kv_bytes: int = 0) -> Context:
        """halyard.Context(self, ...): a batch context over this model."""
        return Context(self, max_sequences=max_sequences, kv_blocks=kv_blocks, max_batch_tokens=max_batch_tokens,
                       kv_dtype=kv_dtype, kv_bytes=kv_bytes)

    def _kv_block_size(self) -> int:
        """Positions per context cache block (the C API tells it for a context: ask one once)."""
        if self._block_size is None:
            with Context(self, max_sequences=1, kv_blocks=1, max_batch_tokens=1) as probe:
                self._block_size = probe.block_size
        return self._block_size

    def create_completions(
        self,
        prompts: Sequence[str | bytes],
        max_tokens: int | None = 16,
        temperature: float = 0.8,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        max_batch_tokens: int = 512,
        repeat_penalty: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        logit_bias: Mapping[int | str, float] | None = None,
    ) -> list[dict]:
        """Completes every prompt at once: one OpenAI-style text_completion dict per prompt, in
        order, each shaped as create_completion's (choices[0]: text, finish_reason; usage).

        All prompts run as sequences of one halyard.Context: each step is one batched graph run
        of at most max_batch_tokens tokens (a decode token of each running sequence, then
        prefill chunks: a long prompt is read over several steps), and a sequence that ends
        (max_tokens, an end-of-generation token, a stop string, the context length) leaves the
        batch while the others go on. max_tokens None or <= 0: until the end of sequence or of
        the context. The cache holds what the prompts and max_tokens can fill.

        Sampling: the library's sampler chain, one per prompt (halyard_sampler_*), with
        create_completion's keywords and meaning (temperature 0 is greedy; logit bias, the
        repetition, presence and frequency penalties over the last last_n_tokens_size tokens,
        prompt included; top-k, top-p, min-p; seed None draws a random seed per prompt). A
        prompt's tokens are create_completion's with the same options and seed, up to the
        rounding of batched arithmetic on cpu, and do not depend on the other prompts. No
        streaming.
        """
        if isinstance(prompts, (str, bytes)):
            raise TypeError("prompts is a list of prompts; for one prompt use create_completion")
        data = [_c_string(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        if not data:
            return []
        limit = self.n_ctx() if max_tokens is None or max_tokens <= 0 else min(int(max_tokens), 2**31 - 1)
        sampling = _Sampling(temperature, top_p, top_k, min_p, repeat_penalty, presence_penalty, frequency_penalty,
                             logit_bias)
        samplers = [Sampler(self, self._generate_options(max_tokens, sampling, seed)) for _ in data]
        stops = [StopMatcher(stop) for _ in data]
        max_batch_tokens = int(max_batch_tokens)
        if max_batch_tokens < 1:
            raise InvalidArgument(f"max_batch_tokens must be >= 1, not {max_batch_tokens}")
        ids = [self.tokenize(p, add_bos=True, special=True) for p in data]
        created = int(time.time())
        results = []
        for s in _batch.run(self, ids, limit, samplers, stops, max_batch_tokens):
            outcome = _Outcome()
            outcome.prompt_tokens = s.prompt_tokens
            outcome.completion_tokens = s.generated
            results.append({
                "id": f"cmpl-{uuid.uuid4()}",
                "object": "text_completion",
                "created": created,
                "model": self.model_path,
                "choices": [{"text": "".join(s.text), "index": 0, "logprobs": None,
                             "finish_reason": s.finish_reason}],
                "usage": _usage(outcome),
            })
        return results

    def __repr__(self) -> str:
        if self._handle is None:
            return f"<halyard.Model {self.model_path!r} (closed)>"
        return f"<halyard.Model {self.name!r} on {self.device!r}>"


def _consume(pieces: Iterator[str]) -> list[str]:
    """All pieces; the generator is closed even when the caller's thread is interrupted."""
    try:
        return list(pieces)
    finally:
        pieces.close()


def _stream_chunks(pieces: Iterator[str], make_chunk, make_last, first: dict | None = None) -> Iterator[dict]:
    """Chunks of a stream. Nothing runs until the first chunk is asked for; closing the stream
    closes pieces, which cancels the generation."""
    try:
        started = False
        for text in pieces:
            if first is not None and not started:
                yield first
            started = True
            yield make_chunk(text)
        if first is not None and not started:
            yield first
        yield make_last()
    finally:
        pieces.close()


def _usage(outcome: _Outcome) -> dict:
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": outcome.prompt_tokens + outcome.completion_tokens,
        # OpenAI's field for prompt tokens served from a cache.
        "prompt_tokens_details": {"cached_tokens": outcome.cached_tokens},
    }


def _uses_tools(m: Any) -> bool:
    """A message only the JSON path carries: tool calls, a tool turn, or null content kept as null."""
    return isinstance(m, Mapping) and (bool(m.get("tool_calls")) or m.get("role") == "tool" or "tool_call_id" in m)


def _held_tool_stream(chunk, message: dict, finish_reason: str | None) -> Iterator[dict]:
    """A chat stream of an output that was read for tool calls: the role, the content, each call
    as OpenAI's deltas (index, id, type and name, then the arguments), the finish."""
    yield chunk({"role": "assistant", "content": ""}, None)
    if message.get("content"):
        yield chunk({"content": message["content"]}, None)
    for i, call in enumerate(message.get("tool_calls", [])):
        yield chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                     "function": {"name": call["function"]["name"], "arguments": ""}}]}, None)
        yield chunk({"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]}, None)
    yield chunk({}, finish_reason)


def _content_text(content: Any, index: int) -> str:
    """A message's content as text: a string, None (empty) or OpenAI's list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise InvalidArgument(f"messages[{index}].content has a part that is not text: {part!r}")
        return "".join(parts)
    raise InvalidArgument(f"messages[{index}].content must be a string, not {type(content).__name__}")


def _option_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and math.isnan(value):
        raise InvalidArgument("a backend option value is NaN")
    return str(value)
