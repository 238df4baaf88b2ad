"""Cancellation: leaving a stream stops generation within a token; errors in the callback."""

import gc
import signal
import threading
import time

import pytest

import halyard
from halyard import _generation

PROMPT = "Once upon a time"
# Tokens a stream would produce if nothing stopped it: the 512-token context fills first, after
# several seconds on cpu; a cancelled stream ends within a token (milliseconds).
LONG = 1000


def _workers():
    return [t for t in threading.enumerate() if t.name == "halyard-generate"]


def _assert_usable(model):
    out = model.create_completion("The capital of France is", max_tokens=3, temperature=0)
    assert out["choices"][0]["text"] == " Paris.\n"


def test_break_after_two_chunks_cancels_at_once(cpu_model):
    n = 0
    for _chunk in cpu_model.create_completion(PROMPT, max_tokens=LONG, temperature=0, stream=True):
        n += 1
        if n == 2:
            start = time.monotonic()
            break
    # The temporary stream is closed by the break: its worker is gone, well before LONG tokens.
    elapsed = time.monotonic() - start
    assert not _workers()
    assert elapsed < 1.5, f"took {elapsed:.2f} s"
    start = time.monotonic()
    _assert_usable(cpu_model)
    assert time.monotonic() - start < 3.0


def test_close_cancels_a_held_stream(cpu_model):
    stream = cpu_model.create_chat_completion([{"role": "user", "content": "Tell me a long story."}],
                                              max_tokens=LONG, temperature=0, stream=True)
    first = next(stream)
    assert first["choices"][0]["delta"] == {"role": "assistant"}
    next(stream)
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 1.5
    assert not _workers()
    with pytest.raises(StopIteration):
        next(stream)
    _assert_usable(cpu_model)


def test_dropping_a_stream_cancels_it(cpu_model):
    stream = cpu_model.create_completion(PROMPT, max_tokens=LONG, temperature=0, stream=True)
    next(stream)
    start = time.monotonic()
    del stream
    gc.collect()
    assert not _workers()
    assert time.monotonic() - start < 1.5
    _assert_usable(cpu_model)


def test_a_stream_never_read_starts_nothing(cpu_model):
    stream = cpu_model.create_completion(PROMPT, max_tokens=LONG, temperature=0, stream=True)
    assert not _workers()
    del stream
    _assert_usable(cpu_model)


def test_closing_the_model_cancels_its_streams(model_path):
    m = halyard.Model(model_path, device="cpu", n_ctx=512, n_threads=2)
    stream = m.create_completion(PROMPT, max_tokens=LONG, temperature=0, stream=True)
    next(stream)
    start = time.monotonic()
    m.close()
    assert time.monotonic() - start < 1.5
    assert not _workers()
    # The stream ends with an error rather than a made-up finish reason.
    with pytest.raises(halyard.Cancelled):
        for _ in stream:
            pass


class _Boom(Exception):
    pass


class _FailingQueue:
    """A queue whose put raises: the callback's own work failing, as a real bug would."""

    def __init__(self, inner):
        self._inner = inner

    def put(self, item):
        if isinstance(item, tuple):
            raise _Boom("from the callback")
        self._inner.put(item)

    def get(self):
        return self._inner.get()


def test_an_exception_in_the_callback_reaches_the_caller(cpu_model, monkeypatch):
    """Nothing unwinds through the ctypes frame: the callback records the error, cancels, and
    the reading thread raises it; the model keeps working."""
    calls = []
    original = _generation.Generation._on_token

    def failing(self, token, text, text_len, user_data):
        calls.append(token)
        if len(calls) == 3:
            self._queue = _FailingQueue(self._queue)
        return original(self, token, text, text_len, user_data)

    monkeypatch.setattr(_generation.Generation, "_on_token", failing)
    start = time.monotonic()
    with pytest.raises(_Boom):
        cpu_model.create_completion(PROMPT, max_tokens=LONG, temperature=0)
    assert time.monotonic() - start < 3.0
    assert len(calls) == 3  # cancelled at the failing token
    assert not _workers()
    monkeypatch.undo()
    _assert_usable(cpu_model)


class _Interrupt(Exception):
    pass


def test_a_signal_interrupts_a_blocking_completion(cpu_model):
    """Ctrl-C during create_completion: the reading thread waits in Python (not inside the C
    call), so the signal handler runs, and its exception cancels the generation."""

    def handler(signum, frame):
        raise _Interrupt()

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        start = time.monotonic()
        with pytest.raises(_Interrupt):
            cpu_model.create_completion(PROMPT, max_tokens=LONG, temperature=0)
        assert time.monotonic() - start < 2.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not _workers()
    _assert_usable(cpu_model)


def test_two_threads_generating_on_one_model_both_get_the_greedy_text(cpu_model):
    """The library serialises generations on a model; from Python both simply complete."""
    results = [None, None]

    def run(i):
        results[i] = cpu_model.create_completion("The capital of France is", max_tokens=3, temperature=0)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r["choices"][0]["text"] for r in results] == [" Paris.\n", " Paris.\n"]
