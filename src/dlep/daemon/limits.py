"""Small tools that keep hostile traffic from costing more than it should.

:class:`RateLimiter` is a token bucket per source (discovery offers);
:class:`LogSummary` turns a flood of one kind of log line into one line per
interval with counts. Both are given the time; neither reads a clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict


class RateLimiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst``.

    At most ``max_keys`` buckets are kept (least recently used ones are
    forgotten), so a stream of forged source addresses costs bounded memory;
    a forgotten key starts again with a full bucket.
    """

    def __init__(self, rate: float, burst: int, *, max_keys: int = 4096) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate and burst must be positive, max_keys at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def allow(self, key: object, now: float) -> bool:
        """Take a token from ``key``'s bucket if it has one."""
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        ok = tokens >= 1.0
        if ok:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._buckets)


class LogSummary:
    """Log the first occurrence at once, then one summary per ``interval``.

    ``note(reason, source)`` logs ``"<what> from <source>: <reason>"`` when
    nothing was logged in the current interval; later ones are counted and
    reported in a single line when the interval ends (by a timer on
    ``loop``), with counts per reason and the busiest sources. A flood thus
    costs one line per interval instead of one per event.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        interval: float = 10.0,
        level: int = logging.WARNING,
    ) -> None:
        self.log = log
        self.what = what
        self.interval = interval
        self.level = level
        self._reasons: Counter[str] = Counter()
        self._sources: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.total = 0

    def note(self, reason: str, source: str, loop: asyncio.AbstractEventLoop) -> None:
        """One more occurrence."""
        self.total += 1
        if self._timer is None:
            self.log.log(self.level, "%s from %s: %s", self.what, source, reason)
            self._loop = loop
            self._timer = loop.call_later(self.interval, self._flush)
            return
        if len(self._reasons) < 16 or reason in self._reasons:
            self._reasons[reason] += 1
        else:  # the summary line stays short whatever the reasons
            self._reasons["other"] += 1
        if len(self._sources) < 1024 or source in self._sources:
            self._sources[source] += 1

    def _flush(self) -> None:
        self._timer = None
        n = sum(self._reasons.values())
        if not n:
            return
        reasons = ", ".join(f"{r}: {c}" for r, c in self._reasons.most_common())
        top = ", ".join(f"{s} ({c})" for s, c in self._sources.most_common(3))
        self.log.log(
            self.level,
            "%s: %d more in the last %.0f s (%s); most from %s",
            self.what,
            n,
            self.interval,
            reasons,
            top,
        )
        self._reasons.clear()
        self._sources.clear()
        if self._loop is not None and not self._loop.is_closed():
            # Still flooding: the next interval is summarized too, so a
            # steady flood costs exactly one line per interval.
            self._timer = self._loop.call_later(self.interval, self._flush)

    def close(self) -> None:
        """Log what is counted and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._loop = None
            self._flush()


__all__ = ["LogSummary", "RateLimiter"]
