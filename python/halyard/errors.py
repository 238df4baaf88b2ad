"""Exceptions: one class per halyard_status, each carrying the status name and the library's
message (halyard_last_error() of the thread that made the failing call)."""

from __future__ import annotations

from . import _native


class HalyardError(Exception):
    """A Halyard call failed. `status` is the halyard_status value, `status_name` its name
    (halyard_status_name(), e.g. "not found") and `message` the library's explanation."""

    status: int = -1

    def __init__(self, message: str, status: int | None = None, status_name: str | None = None):
        if status is not None:
            self.status = status
        self.status_name = status_name or STATUS_NAMES.get(self.status, "unknown status")
        self.message = message
        super().__init__(f"{self.status_name}: {message}")


class InvalidArgument(HalyardError, ValueError):
    """A malformed argument or option value (NULL, NaN, out of its range)."""

    status = 1


class NotFound(HalyardError, LookupError):
    """A file, plugin, backend or device that does not exist."""

    status = 2


class Unavailable(HalyardError):
    """A backend or device that exists but cannot be used here."""

    status = 3


class Unimplemented(HalyardError):
    """An op, dtype or architecture Halyard does not support."""

    status = 4


class OutOfRange(HalyardError, ValueError):
    """A request no state could satisfy, e.g. a prompt longer than the whole context."""

    status = 5


class OutOfMemory(HalyardError, MemoryError):
    """Host or device memory could not be allocated."""

    status = 6


class CorruptFile(HalyardError):
    """A model file that is truncated or malformed."""

    status = 7


class Cancelled(HalyardError):
    """The work was stopped by the caller."""

    status = 8


class KvCacheFull(HalyardError):
    """The KV cache has no room for these tokens now; nothing changed."""

    status = 9


class InternalError(HalyardError):
    """A bug or a device failure; the message says which."""

    status = 10


class BufferTooSmall(HalyardError):
    """An output buffer was too small (the package retries with the size the library gives)."""

    status = 11


_CLASSES = {
    cls.status: cls
    for cls in (InvalidArgument, NotFound, Unavailable, Unimplemented, OutOfRange, OutOfMemory, CorruptFile,
                Cancelled, KvCacheFull, InternalError, BufferTooSmall)
}
# halyard_status_name() of each status (the library gives the same strings; a test checks it).
STATUS_NAMES = {
    0: "ok",
    1: "invalid argument",
    2: "not found",
    3: "unavailable",
    4: "unimplemented",
    5: "out of range",
    6: "out of memory",
    7: "corrupt file",
    8: "cancelled",
    9: "KV cache full",
    10: "internal error",
    11: "buffer too small",
}


def error_for(status: int, message: str | None = None) -> HalyardError:
    """The exception for a failed call. Call it on the thread that made the call, right after
    it: halyard_last_error() is per thread and valid until that thread's next Halyard call."""
    lib = _native.lib()
    if message is None:
        message = _native.text(lib.halyard_last_error())
    name = _native.text(lib.halyard_status_name(status)) or None
    cls = _CLASSES.get(status, HalyardError)
    return cls(message, status=status, status_name=name)


def check(status: int) -> None:
    """Raises the matching exception unless status is HALYARD_OK."""
    if status != _native.OK:
        raise error_for(status)
