"""A token sampler in Python over the logits of halyard.Context (the C API has no per-sequence
sampler; halyard_generate's own sampler runs inside the library only).

It follows the library's order and rules (runtime/src/sampler.cpp): greedy is the first largest
logit; otherwise top-k, temperature, top-p, min-p, then a draw. The draw uses Python's
random.Random(seed), not the library's generator, so a seeded sampled text differs from
create_completion's with the same seed (greedy text is the same). Logit bias and the
repetition, presence and frequency penalties are not implemented here.
"""

from __future__ import annotations

import heapq
import math
import os
import random
from array import array

from .errors import InvalidArgument


def check_sampling(temperature: float, top_k: int, top_p: float, min_p: float) -> None:
    """The library's ranges (sampler.cpp validate), with its wording."""
    if not math.isfinite(temperature) or temperature < 0:
        raise InvalidArgument(f"temperature must be a finite number >= 0 (0 is greedy), not {temperature}")
    if top_k < 0:
        raise InvalidArgument(f"top_k must be >= 0 (0 disables it), not {top_k}")
    if not (0 < top_p <= 1):
        raise InvalidArgument(f"top_p must be in (0, 1] (1 disables it), not {top_p}")
    if not (0 <= min_p <= 1):
        raise InvalidArgument(f"min_p must be in [0, 1] (0 disables it), not {min_p}")


class Sampler:
    def __init__(self, temperature: float, top_k: int, top_p: float, min_p: float, seed: int | None):
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)
        self.min_p = float(min_p)
        check_sampling(self.temperature, self.top_k, self.top_p, self.min_p)
        self._rng = random.Random(int.from_bytes(os.urandom(8), "little") if seed is None else int(seed))

    def sample(self, logits: array) -> int:
        n = len(logits)
        if self.temperature <= 0 or n < 2:
            # array.index finds the first occurrence of the maximum, as the library's argmax.
            return logits.index(max(logits))
        keep = self.top_k if 0 < self.top_k < n else n
        ids = heapq.nlargest(keep, range(n), key=logits.__getitem__)
        top = logits[ids[0]]
        if not math.isfinite(top):
            return ids[0]
        weights = [math.exp((logits[i] - top) / self.temperature) for i in ids]
        total = math.fsum(weights)
        p = [w / total for w in weights]
        if self.top_p < 1:
            cumulative = 0.0
            for cut, q in enumerate(p, 1):
                cumulative += q
                if cumulative >= self.top_p:
                    p = p[:cut]
                    break
        if self.min_p > 0:
            threshold = self.min_p * p[0]
            cut = 1
            while cut < len(p) and p[cut] >= threshold:
                cut += 1
            p = p[:cut]
        return ids[self._rng.choices(range(len(p)), weights=p)[0]]
