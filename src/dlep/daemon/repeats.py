"""Log a repeating condition once, then summarize it, never once per occurrence.

A discovery socket that cannot send fails every discovery interval; a
destination the modem cannot send to a router fails on every update. One
line per occurrence buries everything else in the log, so the first
occurrence is logged in full, later ones are counted, and a summary line
(with the latest message) is written at most every ``every`` seconds while
the condition lasts; :meth:`Repeats.clear` says when it ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable

#: Conditions tracked at once; beyond this the oldest is forgotten (bounded
#: memory even if the keys were to come from the network).
MAX_KEYS = 256


class _State:
    __slots__ = ("count", "last_msg", "since")

    def __init__(self, now: float) -> None:
        self.since = now
        self.count = 0
        self.last_msg = ""


class Repeats:
    """Once-then-summary logging for conditions named by a key."""

    def __init__(
        self,
        log: logging.Logger,
        every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.every = every
        self._clock = clock
        self._state: dict[Hashable, _State] = {}

    def report(self, key: Hashable, level: int, msg: str) -> None:
        """One occurrence of condition ``key`` (``msg``: this occurrence, in full)."""
        now = self._clock()
        st = self._state.get(key)
        if st is None:
            if len(self._state) >= MAX_KEYS:
                self._state.pop(next(iter(self._state)))
            self._state[key] = _State(now)
            self.log.log(level, "%s", msg)
            return
        st.count += 1
        st.last_msg = msg
        if now - st.since >= self.every:
            self.log.log(
                level,
                "%s (and %d more time(s) in the last %.0f s; logged again in %.0f s if it goes on)",
                msg,
                st.count - 1,
                now - st.since,
                self.every,
            )
            st.since, st.count = now, 0
        else:
            self.log.debug("%s", msg)

    def clear(self, key: Hashable, msg: str = "") -> None:
        """The condition ended; ``msg`` (if any) is logged at INFO when it
        had been reported."""
        st = self._state.pop(key, None)
        if st is not None and msg:
            self.log.info("%s", msg)

    def active(self) -> list[Hashable]:
        """Keys of the conditions going on now."""
        return list(self._state)


__all__ = ["MAX_KEYS", "Repeats"]
