"""Neighbour lifecycle from hello and keepalive probes (sans-I/O).

For every possible neighbour (every node we have a link to) the
:class:`NeighbourTable` keeps what the probes tell:

* **state**: ``down`` (nothing heard), ``heard`` (its probes reach us),
  ``up`` (two-way: it echoes our probes back, so we know our probes reach
  it and we have an RTT). Only ``up`` neighbours become DLEP destinations.
* **gone**: a neighbour is dropped when for ``dead_intervals`` keepalive
  intervals either nothing was heard from it or nothing it sent echoed a
  newer probe of ours (the link broke in our direction).
* **RTT**: ``now - echo_ts - dwell`` for each fresh echo (see
  :class:`~dlep.emu.packet.Probe`), smoothed with an exponentially weighted
  moving average (``rtt_smoothing`` weight for the new sample).
* **loss**: over the last ``loss_window`` sequence numbers of its probes,
  the share that did not arrive (receive direction); the neighbour reports
  the same figure for ours (transmit direction).

Nothing here reads a clock or sends: :meth:`NeighbourTable.stamp` says what
to put in the next probe, :meth:`NeighbourTable.receive` takes a probe,
:meth:`NeighbourTable.expire` and :meth:`NeighbourTable.next_deadline` do
the timing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, fields
from enum import StrEnum

from .packet import Probe

__all__ = ["NeighbourDown", "NeighbourState", "NeighbourTable", "NeighbourUp", "PeerState", "Stamp"]


class NeighbourState(StrEnum):
    """Where a possible neighbour stands."""

    DOWN = "down"
    HEARD = "heard"
    UP = "up"


@dataclass(frozen=True, slots=True)
class NeighbourUp:
    """``peer`` became a two-way neighbour."""

    peer: int


@dataclass(frozen=True, slots=True)
class NeighbourDown:
    """``peer`` is gone (``reason``: what fell silent)."""

    peer: int
    reason: str


NeighbourEvent = NeighbourUp | NeighbourDown


@dataclass(frozen=True, slots=True)
class Stamp:
    """The measurement fields of our next probe to one peer."""

    hello: bool
    seq: int
    echo_ts: float | None
    dwell: float
    rx_loss: float | None


@dataclass(slots=True)
class PeerState:
    """What the probes told us about one possible neighbour."""

    peer: int
    state: NeighbourState = NeighbourState.DOWN
    tx_seq: int = 0
    since: float | None = None
    last_heard: float | None = None
    last_echo: float | None = None
    peer_ts: float | None = None
    peer_ts_at: float = 0.0
    best_echo: float = float("-inf")
    rtt: float | None = None
    rtt_samples: int = 0
    first_seq: int | None = None
    high_seq: int = -1
    window: deque[int] = field(default_factory=deque)
    tx_loss: float | None = None
    info: Probe | None = None
    probes_in: int = 0

    def rx_loss(self, size: int) -> float | None:
        """Share of the peer's last ``size`` probes that did not reach us."""
        if self.first_seq is None:
            return None
        expected = min(size, self.high_seq - self.first_seq + 1)
        return max(0.0, 1.0 - len(self.window) / expected) if expected > 0 else None

    def reset(self) -> None:
        """Forget everything but our own sequence number (it keeps counting)."""
        seq = self.tx_seq
        fresh = PeerState(self.peer)
        for f in fields(PeerState):
            setattr(self, f.name, getattr(fresh, f.name))
        self.tx_seq = seq


class NeighbourTable:
    """Every possible neighbour of one node and its probe-derived state."""

    def __init__(
        self,
        peers: list[int],
        *,
        interval: float,
        dead_intervals: int,
        loss_window: int,
        rtt_smoothing: float,
    ) -> None:
        self.interval = interval
        self.bound = interval * dead_intervals
        self.loss_window = loss_window
        self.alpha = rtt_smoothing
        self.peers: dict[int, PeerState] = {p: PeerState(p) for p in peers}

    def stamp(self, peer: int, now: float) -> Stamp:
        """Sequence number and echo for our next probe to ``peer``."""
        ps = self.peers[peer]
        ps.tx_seq += 1
        echo = ps.peer_ts
        dwell = max(0.0, now - ps.peer_ts_at) if echo is not None else 0.0
        return Stamp(
            hello=ps.state is not NeighbourState.UP,
            seq=ps.tx_seq,
            echo_ts=echo,
            dwell=dwell,
            rx_loss=ps.rx_loss(self.loss_window),
        )

    def receive(self, peer: int, probe: Probe, now: float) -> list[NeighbourEvent]:
        """A probe from ``peer`` arrived at ``now``."""
        ps = self.peers.get(peer)
        if ps is None:
            return []
        events: list[NeighbourEvent] = []
        if ps.first_seq is not None and probe.seq <= ps.high_seq - self.loss_window:
            # The peer restarted (its sequence went back): start its record afresh.
            was_up = ps.state is NeighbourState.UP
            ps.reset()
            if was_up:
                events.append(NeighbourDown(peer, "restarted"))
        if ps.state is NeighbourState.DOWN:
            ps.state = NeighbourState.HEARD
            ps.since = now
        ps.probes_in += 1
        ps.last_heard = now
        ps.peer_ts, ps.peer_ts_at = probe.ts, now
        ps.info = probe
        ps.tx_loss = probe.rx_loss
        if ps.first_seq is None:
            ps.first_seq = probe.seq
        if probe.seq > ps.high_seq:
            ps.high_seq = probe.seq
            ps.window.append(probe.seq)
            low = ps.high_seq - self.loss_window
            while ps.window and ps.window[0] <= low:
                ps.window.popleft()
        if probe.echo_ts is not None and probe.echo_ts > ps.best_echo:
            ps.best_echo = probe.echo_ts
            ps.last_echo = now
            sample = max(0.0, now - probe.echo_ts - probe.dwell)
            ps.rtt = sample if ps.rtt is None else ps.rtt + self.alpha * (sample - ps.rtt)
            ps.rtt_samples += 1
            if ps.state is NeighbourState.HEARD:
                ps.state = NeighbourState.UP
                ps.since = now
                events.append(NeighbourUp(peer))
        return events

    def _deadline(self, ps: PeerState) -> float | None:
        if ps.state is NeighbourState.DOWN or ps.last_heard is None:
            return None
        t = ps.last_heard
        if ps.state is NeighbourState.UP and ps.last_echo is not None:
            t = min(t, ps.last_echo)
        return t + self.bound

    def expire(self, now: float) -> list[NeighbourEvent]:
        """Drop every neighbour silent for the bound."""
        events: list[NeighbourEvent] = []
        for ps in self.peers.values():
            d = self._deadline(ps)
            if d is None or d > now:
                continue
            was_up = ps.state is NeighbourState.UP
            heard_late = ps.last_heard is not None and ps.last_heard + self.bound <= now
            ps.reset()
            if was_up:
                why = "no probe heard" if heard_late else "our probes no longer echoed"
                events.append(NeighbourDown(ps.peer, why))
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has something to do."""
        ds = [d for ps in self.peers.values() if (d := self._deadline(ps)) is not None]
        return min(ds) if ds else None

    def up(self) -> list[int]:
        """The two-way neighbours."""
        return [p for p, ps in self.peers.items() if ps.state is NeighbourState.UP]
