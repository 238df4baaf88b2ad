"""The C API of include/halyard.h through ctypes: the library, its structs and its functions.

Nothing else in the package touches ctypes declarations. The library is the one the wheel
installed beside this file (halyard/_lib/lib/libhalyard.so.0, whose RUNPATH finds
libhalyard-hal.so and whose registry finds the plugins in lib/halyard/), or the file named by
HALYARD_LIBRARY (e.g. a build tree's build/ci/bin/libhalyard.so).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

_LIB_DIR = Path(__file__).resolve().parent / "_lib" / "lib"
# The ABI follows the SONAME: any libhalyard.so.0 has these functions and structs.
_SONAME = "libhalyard.so.0"


class ModelOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("device", ctypes.c_char_p),
        ("context_length", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("backend_options", ctypes.POINTER(ctypes.c_char_p)),
        ("kv_dtype", ctypes.c_int32),
        ("load_flags", ctypes.c_uint64),  # HALYARD_LOAD_* bits; 0: weights used in place on host devices
        ("force_gpt2_split", ctypes.c_int32),
    ]


class GenerateOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("max_tokens", ctypes.c_int32),
        ("temperature", ctypes.c_float),
        ("top_k", ctypes.c_int32),
        ("top_p", ctypes.c_float),
        ("seed", ctypes.c_uint64),
        ("parse_special", ctypes.c_int),
        # Appended later in halyard.h; the same order, so the layouts match.
        ("logit_bias_tokens", ctypes.POINTER(ctypes.c_int32)),
        ("logit_bias_values", ctypes.POINTER(ctypes.c_float)),
        ("n_logit_bias", ctypes.c_size_t),
        ("min_p", ctypes.c_float),
        ("repeat_penalty", ctypes.c_float),
        ("repeat_last_n", ctypes.c_int32),
        ("presence_penalty", ctypes.c_float),
        ("frequency_penalty", ctypes.c_float),
    ]


class ContextOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("max_sequences", ctypes.c_int32),
        ("kv_blocks", ctypes.c_int32),
        ("max_batch_tokens", ctypes.c_int32),
        # Appended later in halyard.h (kv_bytes first: it starts where the older struct ended).
        ("kv_bytes", ctypes.c_int64),
        ("kv_dtype", ctypes.c_int32),
        ("prefix_cache", ctypes.c_int32),
    ]


class Batch(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("n_tokens", ctypes.c_size_t),
        ("tokens", ctypes.POINTER(ctypes.c_int32)),
        ("positions", ctypes.POINTER(ctypes.c_int32)),
        ("seq_ids", ctypes.POINTER(ctypes.c_int32)),
        ("logits", ctypes.POINTER(ctypes.c_int8)),
    ]


def init_options(struct: ctypes.Structure) -> None:
    """Fills an options mirror with the library's defaults through halyard_X_options_init,
    passing the mirror's own size: the library writes no more than that (a newer library's
    extra fields stay at their defaults on its side), and a mirror missing a field of its own
    library just leaves that field at its default. ModelOptions -> halyard_model_options_init."""
    name = _INIT_FUNCTIONS[type(struct)]
    getattr(lib(), name)(ctypes.byref(struct), ctypes.sizeof(struct))


class Timings(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("prompt_tokens", ctypes.c_int32),
        ("generated_tokens", ctypes.c_int32),
        ("time_to_first_token_ms", ctypes.c_double),
        ("prefill_tokens_per_s", ctypes.c_double),
        ("decode_tokens_per_s", ctypes.c_double),
        ("finish_reason", ctypes.c_int32),
        ("prompt_cached_tokens", ctypes.c_int32),
    ]


class ChatMessage(ctypes.Structure):
    _fields_ = [("role", ctypes.c_char_p), ("content", ctypes.c_char_p)]


class ChatTemplateOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("messages_json", ctypes.c_char_p),
        ("tools_json", ctypes.c_char_p),
        ("add_generation_prompt", ctypes.c_int),
    ]


# halyard_finish_reason
FINISH_NONE = 0
FINISH_MAX_TOKENS = 1
FINISH_END_OF_SEQUENCE = 2
FINISH_CONTEXT_FULL = 3
FINISH_CANCELLED = 4

# halyard_status values used by the package itself (errors.py maps all of them).
OK = 0
ERROR_BUFFER_TOO_SMALL = 11

# int (*)(int32_t token, const char* text, size_t text_len, void* user_data). The text is not
# NUL-terminated, so it is taken as a raw pointer and read with string_at(text, len).
TOKEN_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

_P = ctypes.c_void_p
_STATUS = ctypes.c_int
_SIGNATURES = {
    "halyard_last_error": (ctypes.c_char_p, []),
    "halyard_status_name": (ctypes.c_char_p, [_STATUS]),
    "halyard_version": (ctypes.c_char_p, []),
    "halyard_set_log_level": (None, [ctypes.c_int]),
    "halyard_list_devices": (_STATUS, [ctypes.POINTER(_P)]),
    "halyard_device_list_size": (ctypes.c_size_t, [_P]),
    "halyard_device_list_backend": (ctypes.c_char_p, [_P, ctypes.c_size_t]),
    "halyard_device_list_uri": (ctypes.c_char_p, [_P, ctypes.c_size_t]),
    "halyard_device_list_description": (ctypes.c_char_p, [_P, ctypes.c_size_t]),
    "halyard_device_list_available": (ctypes.c_int, [_P, ctypes.c_size_t]),
    "halyard_device_list_auto": (ctypes.c_char_p, [_P]),
    "halyard_device_list_free": (None, [_P]),
    "halyard_model_options_init": (None, [ctypes.POINTER(ModelOptions), ctypes.c_size_t]),
    "halyard_model_load": (_STATUS, [ctypes.c_char_p, ctypes.POINTER(ModelOptions), ctypes.POINTER(_P)]),
    "halyard_model_free": (None, [_P]),
    "halyard_model_name": (ctypes.c_char_p, [_P]),
    "halyard_model_device": (ctypes.c_char_p, [_P]),
    "halyard_model_device_details": (ctypes.c_char_p, [_P]),
    "halyard_model_context_length": (ctypes.c_int32, [_P]),
    "halyard_model_vocab_size": (ctypes.c_int32, [_P]),
    "halyard_model_kv_bytes_per_token": (ctypes.c_uint64, [_P]),
    "halyard_tokenize": (
        _STATUS,
        [
            _P,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int32),
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        ],
    ),
    "halyard_detokenize": (
        _STATUS,
        [_P, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_size_t)],
    ),
    "halyard_token_is_end_of_generation": (ctypes.c_int, [_P, ctypes.c_int32]),
    "halyard_apply_chat_template": (
        _STATUS,
        [_P, ctypes.POINTER(ChatMessage), ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_size_t)],
    ),
    "halyard_chat_template_options_init": (None, [ctypes.POINTER(ChatTemplateOptions), ctypes.c_size_t]),
    "halyard_apply_chat_template_ex": (
        _STATUS,
        [_P, ctypes.POINTER(ChatMessage), ctypes.c_size_t, ctypes.POINTER(ChatTemplateOptions), ctypes.c_char_p,
         ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "halyard_model_tool_call_format": (ctypes.c_char_p, [_P]),
    "halyard_parse_tool_calls": (
        _STATUS,
        [_P, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_size_t)],
    ),
    "halyard_generate_options_init": (None, [ctypes.POINTER(GenerateOptions), ctypes.c_size_t]),
    "halyard_generate": (
        _STATUS,
        [_P, ctypes.c_char_p, ctypes.POINTER(GenerateOptions), TOKEN_CALLBACK, _P, ctypes.POINTER(Timings)],
    ),
    "halyard_context_options_init": (None, [ctypes.POINTER(ContextOptions), ctypes.c_size_t]),
    "halyard_context_create": (_STATUS, [_P, ctypes.POINTER(ContextOptions), ctypes.POINTER(_P)]),
    "halyard_context_free": (None, [_P]),
    "halyard_context_step": (_STATUS, [_P, ctypes.POINTER(Batch)]),
    "halyard_context_logits": (ctypes.POINTER(ctypes.c_float), [_P, ctypes.c_size_t]),
    "halyard_seq_remove": (_STATUS, [_P, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32]),
    "halyard_seq_copy": (_STATUS, [_P, ctypes.c_int32, ctypes.c_int32]),
    "halyard_seq_keep": (_STATUS, [_P, ctypes.c_int32]),
    "halyard_seq_pos_max": (ctypes.c_int32, [_P, ctypes.c_int32]),
    "halyard_seq_pos_min": (ctypes.c_int32, [_P, ctypes.c_int32]),
    "halyard_context_kv_blocks_total": (ctypes.c_int32, [_P]),
    "halyard_context_kv_blocks_used": (ctypes.c_int32, [_P]),
    "halyard_context_block_size": (ctypes.c_int32, [_P]),
    "halyard_context_max_sequences": (ctypes.c_int32, [_P]),
    "halyard_context_kv_bytes_per_block": (ctypes.c_uint64, [_P]),
    "halyard_seq_attach_prefix": (_STATUS, [_P, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                                                 ctypes.POINTER(ctypes.c_int32)]),
    "halyard_context_prefix_hits": (ctypes.c_int64, [_P]),
    "halyard_context_prefix_misses": (ctypes.c_int64, [_P]),
    "halyard_sampler_create": (_STATUS, [_P, ctypes.POINTER(GenerateOptions), ctypes.POINTER(_P)]),
    "halyard_sampler_free": (None, [_P]),
    "halyard_sampler_accept": (_STATUS, [_P, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t]),
    "halyard_sampler_sample": (_STATUS, [_P, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_int32)]),
}

_INIT_FUNCTIONS = {
    ModelOptions: "halyard_model_options_init",
    GenerateOptions: "halyard_generate_options_init",
    ContextOptions: "halyard_context_options_init",
}

_lib = None
_lib_lock = threading.Lock()


def library_path() -> str:
    """The libhalyard.so this process loads: HALYARD_LIBRARY, else the one in the package."""
    override = os.environ.get("HALYARD_LIBRARY")
    if override:
        return override
    return str(_LIB_DIR / _SONAME)


def lib() -> ctypes.CDLL:
    """The loaded library, opened on first use with every function's signature declared."""
    global _lib
    with _lib_lock:
        if _lib is None:
            path = library_path()
            if not os.path.exists(path):
                where = "HALYARD_LIBRARY" if os.environ.get("HALYARD_LIBRARY") else "the package"
                raise OSError(f"libhalyard not found at {path} (from {where}); reinstall the package "
                              "with `pip install ./python` or point HALYARD_LIBRARY at a libhalyard.so")
            loaded = ctypes.CDLL(path)
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(loaded, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _lib = loaded
        return _lib


def text(value: bytes | None) -> str:
    """A C string from the library as str (UTF-8; never fails on odd bytes)."""
    return "" if value is None else value.decode("utf-8", errors="replace")
