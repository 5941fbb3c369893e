"""Repeating conditions are logged once, then summarized (never every
second): the helper itself, and IPv6 Peer Discovery on an interface without
a link-local address (inside a network namespace the test creates)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlep.daemon.repeats import MAX_KEYS, Repeats

try:
    from .netns import Daemon, NetnsPair, unavailable, veth_pair
except ImportError:  # run without the package __init__
    from netns import Daemon, NetnsPair, unavailable, veth_pair  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(60)


def test_once_then_a_summary_per_window_then_cleared(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = logging.getLogger("test.repeats")
    caplog.set_level(logging.DEBUG, "test.repeats")
    r = Repeats(log, every=60.0, clock=lambda: now[0])
    for i in range(121):  # once a second for two minutes
        r.report("k", logging.WARNING, f"destination X not sent: try {i}")
        now[0] += 1.0
    warnings = [x.getMessage() for x in caplog.records if x.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # the first, then one per minute
    assert warnings[0] == "destination X not sent: try 0"
    assert "try 60" in warnings[1] and "59 more time(s) in the last 60 s" in warnings[1]
    r.clear("k", "sent again")
    assert caplog.records[-1].getMessage() == "sent again"
    r.clear("k", "not logged twice")
    assert caplog.records[-1].getMessage() == "sent again"
    for i in range(MAX_KEYS + 10):
        r.report(i, logging.INFO, "x")
    assert len(r.active()) == MAX_KEYS


@pytest.fixture(scope="module")
def pair() -> Iterator[NetnsPair]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    with veth_pair("r") as p:
        yield p


@pytest.mark.root
def test_ipv6_discovery_without_link_local_is_logged_once(pair: NetnsPair, tmp_path: Path) -> None:
    ns = pair.router_ns
    # Our veth end (inside our namespace) loses its IPv6 link-local address;
    # addrgenmode none keeps the kernel from making a new one.
    ifname = pair.router_if
    pair.run(ns, ["ip", "link", "set", ifname, "addrgenmode", "none"])
    pair.run(ns, ["ip", "-6", "addr", "flush", "dev", ifname, "scope", "link"])
    cfg = tmp_path / "router.toml"
    cfg.write_text(
        f"""
[network]
interface = "{ifname}"
discovery_v4 = false
discovery_v6 = true
discovery_port = 854

[timers]
allow_fast_timers = true
discovery_interval_ms = 100

[logging]
level = "info"

[api]
enabled = false

[router]
discovery = true
"""
    )
    d = Daemon(pair, ns, "router", cfg, tmp_path / "router.log")
    try:
        d.wait_for("not sent", 10)
        time.sleep(2.0)  # 20 more discovery intervals
        lines = [ln for ln in d.text().splitlines() if "Peer Discovery to" in ln]
        assert len(lines) == 1, lines
        assert "no IPv6 link-local address" in lines[0], lines[0]
    finally:
        d.stop()
