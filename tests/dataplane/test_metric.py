"""The route metric formula of docs/dataplane.md, value by value."""

from __future__ import annotations

import pytest

from dlep.config import RouteMetricConfig
from dlep.dataplane.metric import metric_changed, route_metric, shaping_rate
from dlep.fsm import Metrics

CFG = RouteMetricConfig()


@pytest.mark.parametrize(
    ("metrics", "hops", "expected"),
    [
        # 12000 bits at 100 Mb/s = 120 us, + 1 ms latency = 1120 us -> 11 points + base 10
        (Metrics(cdrt=100_000_000, latency=1000), None, 21),
        (Metrics(cdrt=10_000_000, latency=1000), None, 32),
        # RLQ 50: twice the expected time
        (Metrics(cdrt=10_000_000, latency=1000, rlqt=50), None, 54),
        # RLQT missing: RLQR is used
        (Metrics(cdrt=10_000_000, latency=1000, rlqr=50), None, 54),
        # two radio hops (RFC 8629) double the cost
        (Metrics(cdrt=10_000_000, latency=1000), 2, 54),
        # no CDRT: MDRT, then the default rate (1 Mb/s: 12000 us)
        (Metrics(mdrt=10_000_000, latency=1000), None, 32),
        (Metrics(latency=0), None, 130),
        # RLQ 0 counts as 1 %, and the result is capped at max
        (Metrics(cdrt=1000, latency=0, rlqt=0), None, 65_535),
    ],
)
def test_ett_formula(metrics: Metrics, hops: int | None, expected: int) -> None:
    assert route_metric(CFG, metrics, hops) == expected


def test_degraded_link_costs_more() -> None:
    good = route_metric(CFG, Metrics(cdrt=50_000_000, latency=1000, rlqt=100))
    slow = route_metric(CFG, Metrics(cdrt=5_000_000, latency=1000, rlqt=100))
    lossy = route_metric(CFG, Metrics(cdrt=5_000_000, latency=1000, rlqt=40))
    assert good < slow < lossy


def test_fixed_formula_and_units() -> None:
    fixed = RouteMetricConfig(formula="fixed", fixed=500)
    assert route_metric(fixed, Metrics(cdrt=1)) == 500
    fine = RouteMetricConfig(unit_us=10, base=0)
    assert route_metric(fine, Metrics(cdrt=100_000_000, latency=1000)) == 112


def test_hysteresis() -> None:
    assert metric_changed(None, 5, 10.0)
    assert not metric_changed(100, 100, 10.0)
    assert not metric_changed(100, 109, 10.0)
    assert not metric_changed(100, 91, 10.0)
    assert metric_changed(100, 111, 10.0)
    assert metric_changed(100, 89, 10.0)
    assert metric_changed(100, 101, 0.0)


def test_shaping_rate() -> None:
    assert shaping_rate(Metrics(cdrt=4_000_000), 100.0, 10) == 4_000_000
    assert shaping_rate(Metrics(cdrt=4_000_000), 90.0, 10) == 3_600_000
    assert shaping_rate(Metrics(mdrt=2_000_000), 100.0, 10) == 2_000_000
    assert shaping_rate(Metrics(), 100.0, 123_456) == 123_456
    assert shaping_rate(Metrics(cdrt=1), 100.0, 10) == 8
