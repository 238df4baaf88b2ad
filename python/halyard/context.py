"""halyard.Context: many sequences of one Model, one batched step at a time (the context C API:
halyard_context_*, halyard_batch, halyard_seq_*)."""

from __future__ import annotations

import ctypes
from array import array
from typing import TYPE_CHECKING, Sequence

from . import _native
from .errors import InvalidArgument, check

if TYPE_CHECKING:
    from .model import Model

_KV_DTYPES = {None: 0, "f16": 0, "f32": 1}


def _int32s(values: Sequence[int], what: str) -> ctypes.Array:
    try:
        ints = [int(v) for v in values]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{what} must be integers") from None
    for v in ints:
        if not -(2**31) <= v < 2**31:
            raise InvalidArgument(f"{what} must fit in 32 bits, not {v}")
    return (ctypes.c_int32 * len(ints))(*ints)


class Context:
    """A paged KV cache shared by max_sequences sequences (ids 0..max_sequences-1) on the
    model's device; each step() runs one graph over a batch of tokens from any of them.

    Context(model, max_sequences=1, kv_blocks=0, max_batch_tokens=512, kv_dtype=None, kv_bytes=0,
            prefix_cache=True)

    kv_blocks: the cache's capacity in blocks of block_size positions; 0 gives every sequence
    room for the whole context. kv_bytes: the capacity as a byte budget instead (whole blocks
    of kv_bytes_per_block; not with kv_blocks). kv_dtype: None or "f16" (the model's KV dtype,
    which is f16 for a halyard.Model), or "f32". prefix_cache: keep the full blocks of emptied
sequences so attach_prefix() can give them to a new sequence whose prompt starts the same way.

    Owned by the caller: close() it (or use `with`); Model.close() closes the model's contexts
    first. One thread at a time per context; its calls and the model's generations are
    serialised by the Model (the library wants a model's sequences driven from one thread at a
    time).
    """

    def __init__(self, model: "Model", max_sequences: int = 1, kv_blocks: int = 0, max_batch_tokens: int = 512,
                 kv_dtype: str | None = None, kv_bytes: int = 0, prefix_cache: bool = True):
        self._handle: int | None = None
        if kv_dtype not in _KV_DTYPES:
            raise InvalidArgument(f"kv_dtype must be None, 'f16' or 'f32', not {kv_dtype!r}")
        self._model = model  # the model must outlive the context: keep it alive
        options = _native.ContextOptions()
        _native.init_options(options)
        for name, value in (("max_sequences", max_sequences), ("kv_blocks", kv_blocks),
                            ("max_batch_tokens", max_batch_tokens)):
            value = int(value)
            if not -(2**31) <= value < 2**31:
                raise InvalidArgument(f"{name} must fit in 32 bits, not {value}")
            setattr(options, name, value)
        kv_bytes = int(kv_bytes)
        if not -(2**63) <= kv_bytes < 2**63:
            raise InvalidArgument(f"kv_bytes must fit in 64 bits, not {kv_bytes}")
        options.kv_bytes = kv_bytes
        options.kv_dtype = _KV_DTYPES[kv_dtype]
        options.prefix_cache = 1 if prefix_cache else 0
        handle = ctypes.c_void_p()
        with model._device_lock:
            check(_native.lib().halyard_context_create(model._h(), ctypes.byref(options), ctypes.byref(handle)))
        self._handle = handle.value
        self._vocab = model.n_vocab()
        self._last_batch = 0  # tokens in the last step
        model._add_context(self)

    # ---- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """Frees the context (its cache and compiled graphs); later calls raise InvalidArgument."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with self._model._device_lock:
                _native.lib().halyard_context_free(handle)

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except BaseException:  # noqa: BLE001 - a finalizer must not raise
            pass

    def _h(self) -> int:
        handle = self._handle
        if handle is None:
            raise InvalidArgument("the context is closed")
        return handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    # ---- steps --------------------------------------------------------------------------

    def step(self, tokens: Sequence[int], positions: Sequence[int], seq_ids: Sequence[int],
             logits: Sequence[bool] | None = None) -> None:
        """Runs one batch: token i continues sequence seq_ids[i] at positions[i] (each
        sequence's tokens in order, the first at seq_pos_max(seq) + 1). logits[i] true keeps
        token i's logits for logits(i); None keeps only the last token's. Errors change
        nothing: KvCacheFull when the cache lacks blocks (free some with seq_remove),
        InvalidArgument for a bad token, sequence id or position, OutOfRange past the context."""
        handle = self._h()
        n = len(tokens)
        if len(positions) != n or len(seq_ids) != n or (logits is not None and len(logits) != n):
            raise InvalidArgument(f"tokens, positions, seq_ids (and logits) must have one entry per token; got "
                                  f"{n}, {len(positions)}, {len(seq_ids)}"
                                  + ("" if logits is None else f", {len(logits)}"))
        if n == 0:
            raise InvalidArgument("a batch needs at least one token")
        t = _int32s(tokens, "tokens")
        p = _int32s(positions, "positions")
        s = _int32s(seq_ids, "seq_ids")
        batch = _native.Batch()
        batch.struct_size = ctypes.sizeof(_native.Batch)
        batch.n_tokens = n
        batch.tokens = t
        batch.positions = p
        batch.seq_ids = s
        if logits is not None:
            want = (ctypes.c_int8 * n)(*(1 if w else 0 for w in logits))
            batch.logits = want
        with self._model._device_lock:
            check(_native.lib().halyard_context_step(handle, ctypes.byref(batch)))
        self._last_batch = n

    def _logits_pointer(self, i: int):
        """Token i's logits in the library's memory (valid until the next step); raises
        InvalidArgument as logits() does."""
        i = int(i)
        handle = self._h()
        ptr = _native.lib().halyard_context_logits(handle, i) if 0 <= i < 2**63 else None
        if not ptr:
            raise InvalidArgument(f"token {i} of the last step has no logits (it did not ask for them, or the "
                                  f"step had {self._last_batch} tokens)")
        return ptr

    def logits(self, i: int) -> array:
        """The logits (n_vocab floats, an array('f') copy) of token i of the last step; raises
        InvalidArgument when token i did not ask for them or the last step had no token i."""
        ptr = self._logits_pointer(i)
        out = array("f")
        out.frombytes(ctypes.string_at(ptr, self._vocab * ctypes.sizeof(ctypes.c_float)))
        return out

    # ---- sequences ----------------------------------------------------------------------

    def attach_prefix(self, seq: int, tokens: Sequence[int]) -> int:
        """For an empty sequence about to be fed `tokens`: shares the prefix cache's blocks they
        start with (whole blocks, never the last token) and returns how many positions the
        sequence now holds; feed tokens[returned:] next. The logits are those of computing all."""
        t = _int32s(tokens, "tokens")
        got = ctypes.c_int32(0)
        with self._model._device_lock:
            check(_native.lib().halyard_seq_attach_prefix(self._h(), _int32(seq), t, len(tokens), ctypes.byref(got)))
        return int(got.value)

    @property
    def prefix_hits(self) -> int:
        """Blocks attach_prefix reused."""
        return int(_native.lib().halyard_context_prefix_hits(self._h()))

    @property
    def prefix_misses(self) -> int:
        """Full prompt blocks attach_prefix found no match for."""
        return int(_native.lib().halyard_context_prefix_misses(self._h()))

    def seq_remove(self, seq: int, p0: int = 0, p1: int = -1) -> None:
        """Removes positions [p0, p1) of a sequence (p1 < 0: to its end). For a middle range the
        positions after it are recomputed at their new places, exactly as if the range had never
        been fed. seq_remove(seq) empties it."""
        with self._model._device_lock:
            check(_native.lib().halyard_seq_remove(self._h(), _int32(seq), _int32(p0), _int32(p1)))

    def seq_copy(self, src: int, dst: int) -> None:
        """dst becomes a copy of src; they share blocks until one writes into a shared one."""
        with self._model._device_lock:
            check(_native.lib().halyard_seq_copy(self._h(), _int32(src), _int32(dst)))

    def seq_keep(self, seq: int) -> None:
        """Empties every sequence but seq."""
        with self._model._device_lock:
            check(_native.lib().halyard_seq_keep(self._h(), _int32(seq)))

    def seq_pos_max(self, seq: int) -> int:
        """The last position seq holds; -1 when it is empty (or not a sequence id)."""
        return int(_native.lib().halyard_seq_pos_max(self._h(), _int32(seq)))

    def seq_pos_min(self, seq: int) -> int:
        """The first position seq holds (0); -1 when it is empty (or not a sequence id)."""
        return int(_native.lib().halyard_seq_pos_min(self._h(), _int32(seq)))

    # ---- capacity -----------------------------------------------------------------------

    @property
    def max_sequences(self) -> int:
        return int(_native.lib().halyard_context_max_sequences(self._h()))

    @property
    def block_size(self) -> int:
        """Positions per cache block."""
        return int(_native.lib().halyard_context_block_size(self._h()))

    @property
    def kv_blocks_total(self) -> int:
        return int(_native.lib().halyard_context_kv_blocks_total(self._h()))

    @property
    def kv_blocks_used(self) -> int:
        return int(_native.lib().halyard_context_kv_blocks_used(self._h()))

    @property
    def kv_bytes_per_block(self) -> int:
        """Bytes one block takes across all layers, K and V (to size a kv_bytes budget)."""
        return int(_native.lib().halyard_context_kv_bytes_per_block(self._h()))

    def n_vocab(self) -> int:
        return self._vocab

    def __repr__(self) -> str:
        if self._handle is None:
            return "<halyard.Context (closed)>"
        return (f"<halyard.Context {self.max_sequences} sequences, {self.kv_blocks_used}/{self.kv_blocks_total} "
                f"blocks of {self.block_size}>")


def _int32(value: int) -> int:
    value = int(value)
    if not -(2**31) <= value < 2**31:
        raise InvalidArgument(f"a sequence id or position must fit in 32 bits, not {value}")
    return value
