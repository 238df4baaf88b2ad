"""Stop strings over streamed text: text is released only once it cannot be the start of a stop
string, so a stream never shows a piece of a stop string that a later token completes."""

from __future__ import annotations

from typing import Sequence


class StopMatcher:
    def __init__(self, stop: str | Sequence[str] | None):
        if stop is None:
            stops: list[str] = []
        elif isinstance(stop, str):
            stops = [stop]
        else:
            stops = list(stop)
        for s in stops:
            if not isinstance(s, str):
                raise TypeError(f"stop strings must be str, not {type(s).__name__}")
        self._stops = [s for s in stops if s]  # an empty stop string matches nothing
        self._held = ""  # text not released yet: it may begin a stop string
        self.stopped = False

    def feed(self, text: str) -> str:
        """Adds text; returns what can be released. After a match, `stopped` is set and the
        text before the stop string is the last thing released."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        buf = self._held + text
        first = -1
        for s in self._stops:
            i = buf.find(s)
            if i >= 0 and (first < 0 or i < first):
                first = i
        if first >= 0:
            self.stopped = True
            self._held = ""
            return buf[:first]
        keep = self._partial_suffix(buf)
        self._held = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """The end of the text: what was held back is released (no stop string followed)."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _partial_suffix(self, buf: str) -> int:
        """Length of the longest end of buf that is a proper prefix of a stop string."""
        best = 0
        for s in self._stops:
            for k in range(min(len(s) - 1, len(buf)), best, -1):
                if s.startswith(buf[len(buf) - k:]):
                    best = k
                    break
        return best
