"""Halyard from Python: ctypes bindings over the C API of include/halyard.h.

    import halyard
    with halyard.Model("SmolLM2-135M-Instruct.Q4_1.gguf", device="cpu") as llm:
        print(llm("The capital of France is", max_tokens=8, temperature=0)["choices"][0]["text"])
"""

from .context import Context
from .devices import Device, list_devices, set_log_level, version
from .errors import (BufferTooSmall, Cancelled, CorruptFile, HalyardError, InternalError, InvalidArgument,
                     KvCacheFull, NotFound, OutOfMemory, OutOfRange, Unavailable, Unimplemented)
from .model import Model

__all__ = [
    "Model", "Context", "Device", "list_devices", "set_log_level", "version",
    "HalyardError", "InvalidArgument", "NotFound", "Unavailable", "Unimplemented", "OutOfRange", "OutOfMemory",
    "CorruptFile", "Cancelled", "KvCacheFull", "InternalError", "BufferTooSmall",
]
