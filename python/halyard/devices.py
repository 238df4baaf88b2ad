"""Library-wide calls: version, log level, the devices of every backend plugin."""

from __future__ import annotations

import ctypes
from typing import NamedTuple

from . import _native
from .errors import check


class Device(NamedTuple):
    backend: str  # "cpu", "vulkan", ...
    uri: str  # what Model(device=...) takes; "" for an unavailable backend
    description: str  # the device, or why the backend is unavailable
    available: bool


def version() -> str:
    """The library's version (halyard_version())."""
    return _native.text(_native.lib().halyard_version())


def set_log_level(level: int) -> None:
    """0 errors only, 1 warnings (the default), 2 info, 3 debug; messages go to stderr."""
    _native.lib().halyard_set_log_level(int(level))


def list_devices() -> tuple[list[Device], str | None]:
    """Every backend plugin's devices (or one entry saying why it is unavailable), and the
    device "auto" would choose (None if none)."""
    lib = _native.lib()
    handle = ctypes.c_void_p()
    check(lib.halyard_list_devices(ctypes.byref(handle)))
    try:
        devices = [
            Device(_native.text(lib.halyard_device_list_backend(handle, i)),
                   _native.text(lib.halyard_device_list_uri(handle, i)),
                   _native.text(lib.halyard_device_list_description(handle, i)),
                   bool(lib.halyard_device_list_available(handle, i)))
            for i in range(lib.halyard_device_list_size(handle))
        ]
        auto = lib.halyard_device_list_auto(handle)
        return devices, (None if auto is None else _native.text(auto))
    finally:
        lib.halyard_device_list_free(handle)
