"""The channel model of one directed radio link (sans-I/O).

A :class:`Channel` decides the fate of every frame offered to it and when it
arrives, from its :class:`ChannelParams` and the time it is given (``now``, in
seconds of any monotonic clock: the emulator passes the event loop's clock,
tests a fake one). It never reads a clock and holds no socket; the caller
asks :meth:`Channel.due` for what has arrived and :meth:`Channel.next_deadline`
for when to ask again.

The model, in the order a data frame meets it:

1. **MTU**: an Ethernet payload larger than ``mtu`` is dropped (``mtu``).
2. **Rate**: a token bucket of ``rate`` bits/s holding at most ``burst``
   bytes; frames wait in a FIFO queue of at most ``queue`` bytes for their
   tokens. A frame that does not fit in the queue is dropped
   (``queue_full``), as a real radio's transmit queue overflows.
3. **Loss**: each frame is lost with probability ``loss`` (a seeded
   ``random.Random``, so a run is repeatable). A lost frame still used its
   airtime, as on a real channel.
4. **Latency and jitter**: a frame arrives ``latency ± jitter`` (uniform)
   after it left the queue, never before the frame ahead of it (a radio
   does not reorder).

Control packets (the emulators' hello and keepalive) skip the queue and the
rate, so they measure the link even while user traffic saturates it, but
they meet loss, latency and jitter like any frame.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

__all__ = ["ETH_OVERHEAD", "Channel", "ChannelParams", "DropReason"]

#: Ethernet header (14) + FCS (4): what a frame adds to its payload on the air.
ETH_OVERHEAD: Final = 18
#: Default queue: this much time at the link's rate ...
DEFAULT_QUEUE_SECONDS: Final = 0.1
#: ... bounded to this many bytes (the queue holds real frames in memory).
MAX_DEFAULT_QUEUE: Final = 1_000_000

T = TypeVar("T")


class DropReason(StrEnum):
    """Where and why a frame was dropped (the ``reason`` label of the counters)."""

    TAP_READ = "tap_read"  # unreadable or runt frame from the TAP
    TAP_WRITE = "tap_write"  # the TAP would not take a received frame
    MTU = "mtu"  # payload larger than the link's MTU
    CHANNEL_LOSS = "channel_loss"  # lost on the air (the loss probability)
    QUEUE_FULL = "queue_full"  # the link's transmit queue overflowed
    NO_NEIGHBOUR = "no_neighbour"  # its destination is not in range / not a neighbour
    MALFORMED = "malformed"  # an emulator packet that does not parse


@dataclass(frozen=True, slots=True)
class ChannelParams:
    """Parameters of one directed link.

    ``rate`` bits/s (>= 1), ``latency_us`` and ``jitter_us`` microseconds,
    ``loss`` a probability, ``mtu`` octets of Ethernet payload,
    ``queue_bytes`` and ``burst_bytes`` bytes as configured (0: derived, see
    :attr:`queue_size` and :attr:`burst_size`), ``up`` False while the link is broken or
    out of range. ``granted_rate``: a Link Characteristics grant that caps
    the rate below ``rate`` (None: none).
    """

    rate: int
    latency_us: int = 0
    jitter_us: int = 0
    loss: float = 0.0
    mtu: int = 1500
    queue_bytes: int = 0
    burst_bytes: int = 0
    up: bool = True
    granted_rate: int | None = None

    def __post_init__(self) -> None:
        if self.rate < 1:
            raise ValueError(f"rate: {self.rate} bit/s; must be at least 1")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss: {self.loss} is not a probability")
        if self.latency_us < 0 or self.jitter_us < 0:
            raise ValueError("latency and jitter must not be negative")
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"mtu: {self.mtu} outside 68-65535")

    @property
    def effective_rate(self) -> int:
        """The rate frames are sent at now: ``rate``, or a lower grant."""
        if self.granted_rate is None:
            return self.rate
        return max(1, min(self.rate, self.granted_rate))

    @property
    def goodput(self) -> int:
        """Bits/s the link delivers when saturated: effective rate less losses."""
        return int(self.effective_rate * (1.0 - self.loss))

    @property
    def queue_size(self) -> int:
        """Transmit queue in bytes: ``queue_bytes``, or if 0, 100 ms at the
        rate, at least 4 full frames and at most 1 MB."""
        frame = self.mtu + ETH_OVERHEAD
        if self.queue_bytes:
            return max(self.queue_bytes, frame)
        return max(4 * frame, min(MAX_DEFAULT_QUEUE, int(self.rate * DEFAULT_QUEUE_SECONDS / 8)))

    @property
    def burst_size(self) -> int:
        """Token bucket depth in bytes: ``burst_bytes``, or if 0 one full
        frame, so the shaping is tight."""
        return self.burst_bytes or self.mtu + ETH_OVERHEAD

    def updated(self, changes: Mapping[str, Any]) -> ChannelParams:
        """These parameters with ``changes`` (scenario key names) applied."""
        unknown = set(changes) - set(SCENARIO_KEYS)
        if unknown:
            raise ValueError(f"unknown channel keys: {', '.join(sorted(unknown))}")
        return replace(self, **{SCENARIO_KEYS[k]: v for k, v in changes.items()})


#: Scenario key -> :class:`ChannelParams` field.
SCENARIO_KEYS: Final[dict[str, str]] = {
    "rate": "rate",
    "latency": "latency_us",
    "jitter": "jitter_us",
    "loss": "loss",
    "mtu": "mtu",
    "queue": "queue_bytes",
    "burst": "burst_bytes",
    "up": "up",
    "granted_rate": "granted_rate",
}


class Channel(Generic[T]):
    """One directed link: offers in, arrivals out, time passed in.

    ``item`` is whatever the caller wants back when the frame arrives (the
    emulator passes the datagram to send).
    """

    def __init__(self, params: ChannelParams, rng: random.Random) -> None:
        self._params = params
        self._rng = rng
        self._arrivals: list[tuple[float, int, T]] = []
        self._seq = 0
        # Token bucket state right after the last scheduled departure.
        self._t_ref = float("-inf")
        self._tokens = float(self._params.burst_size)
        # (departure time, size) of frames not yet departed: the queue.
        self._queued: deque[tuple[float, int]] = deque()
        self._queued_bytes = 0
        self._last_data_arrival = float("-inf")
        self._last_ctl_arrival = float("-inf")

    @property
    def params(self) -> ChannelParams:
        """Current parameters."""
        return self._params

    def set_params(self, params: ChannelParams) -> None:
        """New parameters from now on (frames already scheduled keep their times)."""
        self._params = params
        self._tokens = min(self._tokens, float(params.burst_size))

    def _drain(self, now: float) -> None:
        q = self._queued
        while q and q[0][0] <= now:
            self._queued_bytes -= q.popleft()[1]

    def backlog(self, now: float) -> int:
        """Bytes waiting in the transmit queue at ``now``."""
        self._drain(now)
        return self._queued_bytes

    def queue_fill(self, now: float) -> float:
        """Backlog as a fraction (0-1) of the queue size."""
        return min(1.0, self.backlog(now) / self._params.queue_size)

    def _jitter(self) -> float:
        j = self._params.jitter_us
        return self._rng.uniform(-j, j) / 1e6 if j else 0.0

    def send_data(self, item: T, size: int, payload: int, now: float) -> DropReason | None:
        """Offer a data frame of ``size`` bytes on the air (``payload``: its
        Ethernet payload length, checked against the MTU). None: accepted
        (it arrives unless the channel loses it; loss is reported here)."""
        p = self._params
        if not p.up:
            return DropReason.NO_NEIGHBOUR
        if payload > p.mtu:
            return DropReason.MTU
        self._drain(now)
        if self._queued_bytes + size > p.queue_size:
            return DropReason.QUEUE_FULL
        rate_bytes = p.effective_rate / 8.0
        t0 = max(now, self._t_ref)
        if t0 > self._t_ref:  # the bucket refilled while idle
            tokens = min(float(p.burst_size), self._tokens + (t0 - self._t_ref) * rate_bytes)
        else:
            tokens = self._tokens
        if tokens >= size:
            depart, left = t0, tokens - size
        else:
            depart, left = t0 + (size - tokens) / rate_bytes, 0.0
        self._t_ref, self._tokens = depart, left
        self._queued.append((depart, size))
        self._queued_bytes += size
        lost = p.loss > 0.0 and self._rng.random() < p.loss
        arrival = max(depart + p.latency_us / 1e6 + self._jitter(), self._last_data_arrival)
        self._last_data_arrival = arrival
        if lost:
            return DropReason.CHANNEL_LOSS
        self._push(arrival, item)
        return None

    def send_control(self, item: T, now: float) -> DropReason | None:
        """Offer a control packet: loss, latency and jitter, no queue."""
        p = self._params
        if not p.up:
            return DropReason.NO_NEIGHBOUR
        if p.loss > 0.0 and self._rng.random() < p.loss:
            return DropReason.CHANNEL_LOSS
        arrival = max(now + p.latency_us / 1e6 + self._jitter(), self._last_ctl_arrival)
        self._last_ctl_arrival = arrival
        self._push(arrival, item)
        return None

    def _push(self, at: float, item: T) -> None:
        self._seq += 1
        heapq.heappush(self._arrivals, (at, self._seq, item))

    def due(self, now: float) -> list[T]:
        """Everything that has arrived by ``now``, in arrival order."""
        out: list[T] = []
        a = self._arrivals
        while a and a[0][0] <= now:
            out.append(heapq.heappop(a)[2])
        return out

    def next_deadline(self) -> float | None:
        """When the next frame arrives (None: nothing in flight)."""
        return self._arrivals[0][0] if self._arrivals else None

    def in_flight(self) -> int:
        """Frames scheduled but not yet arrived."""
        return len(self._arrivals)
