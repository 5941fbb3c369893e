"""From measurements to DLEP metrics, and when to tell the router (sans-I/O).

:func:`link_metrics` maps what a node knows about one neighbour to the nine
RFC 8175 metrics:

=========  ===============================================================
MDRT       our link's configured ``rate`` to the neighbour
MDRR       the neighbour's link's configured ``rate`` to us (from its probes)
CDRT       what our link delivers when saturated: its rate (or a lower
           Link Characteristics grant) times (1 - loss)
CDRR       the same for the neighbour's link to us
Latency    half the measured keepalive RTT (one way; clocks need no sync)
RLQT       100 x (1 - loss of our probes, as the neighbour measures it)
RLQR       100 x (1 - loss of its probes, as we measure it)
Resources  100 x (1 - fill of our transmit queue to it)
MTU        our link's MTU
=========  ===============================================================

:class:`Reporter` decides, per destination, whether new metrics are worth a
Destination Update: at most one per ``update_interval``, and only when some
metric moved by its threshold (rates by a percentage, latency by a
percentage with a floor in microseconds, RLQ and resources by points; MDR
and MTU on any change). When it sends, it sends every metric that differs
from what the router last heard, so the router's view is exact after each
update even if earlier small drifts were held back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fsm import Metrics
from .channel import ChannelParams
from .neighbours import PeerState

__all__ = ["Reporter", "Thresholds", "link_metrics"]


def _pct(loss: float | None) -> int:
    return 100 if loss is None else max(0, min(100, round(100 * (1.0 - loss))))


def link_metrics(
    tx: ChannelParams, peer: PeerState, loss_window: int, queue_fill: float
) -> Metrics:
    """The DLEP metrics of the destination behind ``peer`` (see the module doc)."""
    info = peer.info
    mdrt = tx.rate
    cdrt = tx.goodput
    if info is not None:
        rx = ChannelParams(
            rate=info.rate, loss=info.loss, granted_rate=info.granted_rate, mtu=max(68, info.mtu)
        )
        mdrr, cdrr = rx.rate, rx.goodput
    else:
        mdrr, cdrr = mdrt, cdrt
    latency = round(peer.rtt * 1e6 / 2) if peer.rtt is not None else tx.latency_us
    return Metrics(
        mdrr=mdrr,
        mdrt=mdrt,
        cdrr=min(cdrr, mdrr),
        cdrt=min(cdrt, mdrt),
        latency=latency,
        resources=max(0, min(100, round(100 * (1.0 - queue_fill)))),
        rlqr=_pct(peer.rx_loss(loss_window)),
        rlqt=_pct(peer.tx_loss),
        mtu=tx.mtu,
    )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What counts as a meaningful change (``[dlep]`` of the scenario)."""

    update_interval: float = 1.0
    rate_percent: float = 5.0
    latency_percent: float = 10.0
    latency_min_us: int = 500
    rlq_points: int = 5
    resources_points: int = 10


@dataclass(slots=True)
class _Sent:
    metrics: Metrics
    at: float


class Reporter:
    """Per destination: what the router was last told, and when."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.th = thresholds
        self._sent: dict[int, _Sent] = {}
        self.updates = 0
        self.held = 0

    def started(self, key: int, metrics: Metrics, now: float) -> None:
        """The destination went up with ``metrics`` (Destination Up)."""
        self._sent[key] = _Sent(metrics, now)

    def note_sent(self, key: int, metrics: Metrics, now: float) -> None:
        """The router was told ``metrics`` by other means (a Link
        Characteristics Response): count them as sent at ``now``."""
        s = self._sent.get(key)
        if s is not None:
            s.metrics, s.at = s.metrics.merged(metrics), now

    def forget(self, key: int) -> None:
        """The destination went down."""
        self._sent.pop(key, None)

    def last(self, key: int) -> Metrics | None:
        """What the router was last told about ``key``."""
        s = self._sent.get(key)
        return s.metrics if s is not None else None

    def meaningful(self, old: Metrics, new: Metrics) -> bool:
        """Whether any metric moved past its threshold."""
        th = self.th
        for name in ("mdrr", "mdrt", "mtu"):
            if getattr(new, name) != getattr(old, name):
                return True
        for name in ("cdrr", "cdrt"):
            a, b = getattr(old, name), getattr(new, name)
            if (a is None) != (b is None):
                return True
            if a is not None and b is not None and abs(b - a) > max(a, 1) * th.rate_percent / 100:
                return True
        a, b = old.latency, new.latency
        if a is not None and b is not None:
            if abs(b - a) >= max(th.latency_min_us, a * th.latency_percent / 100):
                return True
        elif a != b:
            return True
        for name, points in (
            ("rlqr", th.rlq_points),
            ("rlqt", th.rlq_points),
            ("resources", th.resources_points),
        ):
            a, b = getattr(old, name), getattr(new, name)
            if a is not None and b is not None and abs(b - a) >= max(points, 1):
                return True
        return False

    def decide(self, key: int, new: Metrics, now: float) -> Metrics | None:
        """The Destination Update to send now (changed metrics only), or None."""
        s = self._sent.get(key)
        if s is None:
            return None
        changed = s.metrics.changed_in(new)
        if changed.is_empty() or not self.meaningful(s.metrics, new):
            return None
        if now - s.at < self.th.update_interval:
            self.held += 1
            return None
        s.metrics, s.at = s.metrics.merged(changed), now
        self.updates += 1
        return changed
