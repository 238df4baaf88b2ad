"""Batched completion: many prompts through one halyard.Context, stepped together.

Every step is one graph run over at most max_batch_tokens tokens: first one decode token of
each sequence that has sampled one, then prefill chunks of the prompts still being read (a
prompt longer than what is left of the step goes in over several steps). Sequences finish at
different times (max_tokens, an end-of-generation token, a stop string, the context length);
a finished sequence's cache blocks are released at once and the rest go on.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Sequence

from . import _native
from ._sampler import Sampler
from ._stop import StopMatcher
from .context import Context
from .errors import InvalidArgument, OutOfRange

if TYPE_CHECKING:
    from .model import Model


class _Sequence:
    """One prompt's state: tokens still to feed, the text so far, why it ended."""

    def __init__(self, seq: int, prompt: list[int], sampler: Sampler, stop: StopMatcher):
        self.seq = seq
        self.prompt_tokens = len(prompt)
        self.pending = list(prompt)  # tokens to feed, in order
        self.fed = 0  # positions the context holds for it
        self.sampler = sampler
        self.stop = stop
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.text: list[str] = []
        self.generated = 0
        self.finish_reason: str | None = None


def positions_needed(prompt_tokens: int, max_tokens: int, n_ctx: int) -> int:
    """The most positions a sequence fills: its prompt and all but its last generated token."""
    return min(prompt_tokens + max_tokens - 1, n_ctx) if max_tokens > 0 else prompt_tokens


def run(model: "Model", prompts: Sequence[list[int]], max_tokens: int, samplers: Sequence[Sampler],
        stops: Sequence[StopMatcher], max_batch_tokens: int) -> list[_Sequence]:
    n_ctx = model.n_ctx()
    for i, ids in enumerate(prompts):
        if not ids:
            raise InvalidArgument(f"prompts[{i}] is empty: give at least one token")
        if len(ids) > n_ctx:
            raise OutOfRange(f"prompts[{i}] has {len(ids)} tokens but the context holds {n_ctx}; shorten it "
                             "or raise n_ctx")
    block = model._kv_block_size()
    # Room for what each sequence can fill, no more (0 would reserve a whole context for each).
    blocks = sum(-(-positions_needed(len(ids), max_tokens, n_ctx) // block) for ids in prompts)
    seqs = [_Sequence(i, list(ids), samplers[i], stops[i]) for i, ids in enumerate(prompts)]
    for s, ids in zip(seqs, prompts):
        s.sampler.accept(ids)  # as halyard_generate: the prompt is in the penalties' window
    lib = _native.lib()
    with Context(model, max_sequences=len(prompts), kv_blocks=blocks, max_batch_tokens=max_batch_tokens) as ctx:
        active = list(seqs)
        while active:
            tokens: list[int] = []
            positions: list[int] = []
            ids: list[int] = []
            want: list[bool] = []
            sampled_from: list[tuple[_Sequence, int]] = []  # (sequence, batch index of its logits)
            # Decode tokens first (one each), then prompt chunks, until the step is full.
            for s in sorted(active, key=lambda s: s.fed < s.prompt_tokens):
                room = max_batch_tokens - len(tokens)
                if room == 0:
                    break
                take = min(room, len(s.pending))
                for k in range(take):
                    last = k + 1 == len(s.pending)
                    tokens.append(s.pending[k])
                    positions.append(s.fed + k)
                    ids.append(s.seq)
                    want.append(last)
                if take == len(s.pending):
                    sampled_from.append((s, len(tokens) - 1))
                del s.pending[:take]
                s.fed += take
            ctx.step(tokens, positions, ids, want)
            # Those that did not fit in this step go first in the next one.
            stepped = set(ids)
            active = [s for s in active if s.seq not in stepped] + [s for s in active if s.seq in stepped]
            for s, index in sampled_from:
                token = s.sampler.sample(ctx, index)
                if lib.halyard_token_is_end_of_generation(model._h(), token):
                    s.finish_reason = "stop"
                else:
                    s.generated += 1
                    s.sampler.accept([token])
                    s.text.append(s.stop.feed(s.decoder.decode(model.detokenize([token]))))
                    if s.stop.stopped:
                        s.finish_reason = "stop"
                    elif s.generated == max_tokens or s.fed >= n_ctx:
                        s.finish_reason = "length"  # max_tokens, or the context is full
                    else:
                        s.pending.append(token)
                if s.finish_reason is not None:
                    if not s.stop.stopped:
                        s.text.append(s.stop.feed(s.decoder.decode(b"", final=True)) + s.stop.flush())
                    active.remove(s)
                    ctx.seq_remove(s.seq)
    return seqs
