"""One halyard_generate call on a worker thread, its pieces handed over through a queue.

halyard_generate blocks until the sequence ends and calls back for each token, so a Python
iterator cannot pull tokens from it directly. The worker runs the call; the callback queues each
piece and returns non-zero once the reader has cancelled, so the call ends within one token of
a `break`. No Python exception may unwind through the ctypes callback (ctypes would print it and
return 0): the callback records it, cancels, and the reader raises it.
"""

from __future__ import annotations

import atexit
import ctypes
import queue
import threading
import weakref
from typing import Iterator

from . import _native
from .errors import Cancelled, HalyardError, error_for

# Every generation whose worker may still run: interpreter exit cancels them (the workers are
# daemon threads, which must not be inside the C call when the interpreter goes away).
_live: "weakref.WeakSet[Generation]" = weakref.WeakSet()


class _Done:
    __slots__ = ("status", "error", "timings")

    def __init__(self, status: int | None, error: BaseException | None, timings: _native.Timings):
        self.status = status
        self.error = error
        self.timings = timings


class Generation:
    """Runs on first iteration; iterate for (token id, bytes) pieces; close() cancels it and
    waits for the worker (at most one more token)."""

    def __init__(self, model_handle: int, prompt: bytes, options: _native.GenerateOptions,
                 device_lock: threading.Lock):
        self._handle = model_handle
        self._device_lock = device_lock  # held for the call: the model's contexts wait for it
        self._prompt = prompt
        self._options = options
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._done: _Done | None = None
        self._callback_error: BaseException | None = None

    # ---- worker side --------------------------------------------------------------------

    def _on_token(self, token: int, text: int, text_len: int, _user_data: int) -> int:
        try:
            if self._cancel.is_set():
                return 1
            self._queue.put((token, ctypes.string_at(text, text_len) if text_len else b""))
            return 0
        except BaseException as e:  # noqa: BLE001 - nothing may unwind through the C frame
            self._callback_error = e
            self._cancel.set()
            return 1

    def _run(self) -> None:
        timings = _native.Timings()
        timings.struct_size = ctypes.sizeof(_native.Timings)
        status: int | None = None
        error: BaseException | None = None
        # The ctypes thunk lives in this frame for the whole call (kept off self: no cycle).
        callback = _native.TOKEN_CALLBACK(self._on_token)
        try:
            with self._device_lock:
                status = _native.lib().halyard_generate(self._handle, self._prompt, ctypes.byref(self._options),
                                                        callback, None, ctypes.byref(timings))
            if status != _native.OK:
                error = error_for(status)  # on this thread: halyard_last_error is per thread
        except BaseException as e:  # noqa: BLE001 - reported to the reader
            error = e
        self._queue.put(_Done(status, error, timings))

    # ---- reader side --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            _live.add(self)
            self._thread = threading.Thread(target=self._run, name="halyard-generate", daemon=True)
            self._thread.start()

    def pieces(self) -> Iterator[tuple[int, bytes]]:
        """(token id, bytes) for each callback until generation ends; raises its error."""
        self.start()
        while self._done is None:
            item = self._queue.get()
            if isinstance(item, _Done):
                self._finish(item)
                break
            yield item
        self._raise_if_failed()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self) -> _native.Timings:
        """Waits for the worker (discarding pieces not read) and returns the timings; raises the
        call's error unless it is the cancellation this side asked for."""
        self.start()
        while self._done is None:
            item = self._queue.get()
            if isinstance(item, _Done):
                self._finish(item)
        self._raise_if_failed()
        return self._done.timings

    def close(self) -> None:
        """Cancels and waits for the worker; never raises the generation's own error."""
        self._cancel.set()
        if self._thread is None or self._done is not None:
            return
        if threading.current_thread() is self._thread:
            return  # a finalizer run by the worker itself: the flag is enough
        try:
            self.wait()
        except HalyardError:
            pass

    def _finish(self, done: _Done) -> None:
        self._done = done
        _live.discard(self)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._thread.join()

    def _raise_if_failed(self) -> None:
        done = self._done
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            raise error
        if done is None or done.error is None:
            return
        if isinstance(done.error, Cancelled) and self._cancel.is_set():
            return  # this side stopped it: not a failure
        raise done.error

    def __del__(self) -> None:
        try:
            self.close()
        except BaseException:  # noqa: BLE001 - a finalizer must not raise
            pass


@atexit.register
def _cancel_all() -> None:
    for g in list(_live):
        g.close()
