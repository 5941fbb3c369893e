"""Route metric from DLEP link metrics: the documented formula.

``formula = "ett"`` is an expected-transmission-time cost, in the spirit of
ETT/ETX in mesh routing: the time one packet of ``packet_bits`` takes on the
link at its current data rate, plus the link's latency, divided by the
probability that it gets through (RLQ as a percentage), times the number of
radio hops (RFC 8629 Hop Count, when the modem reports one)::

    ett_us  = packet_bits * 1e6 / rate  +  latency_us
    cost_us = ett_us * 100 / max(rlq, 1) * max(hops, 1)
    metric  = clamp(base + round(cost_us / unit_us), 1, max)

Lower is better, as for kernel route metrics (and Babel, OSPF, ...). With
the defaults (12000-bit packets, one metric point per 100 µs, base 10) a
clean 100 Mbit/s link with 1 ms latency costs 10 + 11 = 21, the same link at
10 Mbit/s costs 32, and at 10 Mbit/s with RLQ 50 costs 54.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fsm import Metrics

if TYPE_CHECKING:
    from ..config import RouteMetricConfig

__all__ = ["metric_changed", "route_metric", "shaping_rate"]


def route_metric(cfg: RouteMetricConfig, m: Metrics, hops: int | None = None) -> int:
    """The route metric of a destination with metrics ``m`` (see module doc)."""
    if cfg.formula == "fixed":
        return max(1, min(cfg.fixed, cfg.max))
    rate = m.cdrt or m.mdrt or cfg.default_rate
    latency = m.latency or 0
    rlq = m.rlqt if m.rlqt is not None else (m.rlqr if m.rlqr is not None else 100)
    ett_us = cfg.packet_bits * 1_000_000 / rate + latency
    cost_us = ett_us * 100.0 / max(rlq, 1) * max(hops or 1, 1)
    return int(max(1, min(cfg.base + round(cost_us / cfg.unit_us), cfg.max)))


def metric_changed(installed: int | None, new: int, hysteresis_percent: float) -> bool:
    """True if ``new`` should replace the ``installed`` metric.

    Changes within ``hysteresis_percent`` of the installed value are ignored
    so a metric that wobbles with every Destination Update does not rewrite
    routes (and make routing daemons recompute) each time.
    """
    if installed is None:
        return True
    if new == installed:
        return False
    return abs(new - installed) * 100.0 > installed * hysteresis_percent


def shaping_rate(m: Metrics, percent: float, default: int) -> int:
    """Bits/s to shape a destination to: CDRT (else MDRT, else ``default``)
    times ``percent`` / 100, at least 8 bit/s."""
    base = m.cdrt or m.mdrt or default
    return max(8, int(base * percent / 100.0))
