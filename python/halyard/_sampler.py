"""Per-sequence samplers for halyard.Context: the library's own chain (halyard_sampler_*, the
one halyard_generate runs), so a sequence sampled here gets the tokens create_completion gives
with the same options, seed included: logit bias, repetition, presence and frequency penalties,
then top-k, temperature, top-p, min-p and the seeded draw.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Sequence

from . import _native
from .errors import check

if TYPE_CHECKING:
    from .context import Context
    from .model import Model


class Sampler:
    """One sequence's sampler, configured by a GenerateOptions (its sampling fields), validated
    by the library (halyard.InvalidArgument naming the field)."""

    def __init__(self, model: "Model", options: _native.GenerateOptions):
        self._handle = None  # for close() when creation fails
        handle = ctypes.c_void_p()
        check(_native.lib().halyard_sampler_create(model._h(), ctypes.byref(options), ctypes.byref(handle)))
        self._handle = handle
        self._vocab = model.n_vocab()

    def accept(self, tokens: Sequence[int]) -> None:
        """Records tokens of the sequence for the penalties (its prompt, then each sampled token)."""
        arr = (ctypes.c_int32 * len(tokens))(*tokens)
        check(_native.lib().halyard_sampler_accept(self._handle, arr, len(tokens)))

    def sample(self, ctx: "Context", index: int) -> int:
        """The next token from the logits of token `index` of ctx's last step (read in place)."""
        token = ctypes.c_int32(-1)
        check(_native.lib().halyard_sampler_sample(self._handle, ctx._logits_pointer(index), self._vocab,
                                                   ctypes.byref(token)))
        return token.value

    def close(self) -> None:
        if self._handle:
            _native.lib().halyard_sampler_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()
