"""The Prometheus endpoint against live daemons on loopback.

Each test scrapes ``/metrics`` over HTTP with urllib, parses the text with
``prometheus_client``'s own parser and checks the series of docs/metrics.md.
"""

from __future__ import annotations

import asyncio

from dlep import __version__
from dlep.fsm import Metrics

from .conftest import DESTS, Pair, dest, samples, scrape, value, wait_until

DIVISOR = {
    "mdrr": ("dlep_destination_mdrr_bytes_per_second", 8),
    "mdrt": ("dlep_destination_mdrt_bytes_per_second", 8),
    "cdrr": ("dlep_destination_cdrr_bytes_per_second", 8),
    "cdrt": ("dlep_destination_cdrt_bytes_per_second", 8),
    "latency": ("dlep_destination_latency_seconds", 1e6),
    "resources": ("dlep_destination_resources_ratio", 100),
    "rlqr": ("dlep_destination_rlqr_ratio", 100),
    "rlqt": ("dlep_destination_rlqt_ratio", 100),
    "mtu": ("dlep_destination_mtu_bytes", 1),
}


async def test_series_of_a_live_session(pair: Pair) -> None:
    modem, router, ms, rs = await pair.start()
    r = await asyncio.to_thread(scrape, rs.url)
    m = await asyncio.to_thread(scrape, ms.url)

    assert value(r, "dlep_info", role="router", version=__version__) == 1
    assert value(m, "dlep_info", role="modem", version=__version__) == 1

    (sess,) = router.sessions()
    lab = {"session": sess.id, "peer": sess.peer}
    assert value(r, "dlep_session_up", **lab) == 1
    assert value(r, "dlep_session_state", state="in-session", **lab) == 1
    assert value(r, "dlep_sessions", state="in-session") == 1
    assert value(r, "dlep_session_destinations", **lab) == 2
    assert value(r, "dlep_destinations") == 2
    assert value(r, "dlep_metrics_destinations_dropped") == 0
    assert value(r, "dlep_metrics_max_destinations") == 1000
    # The loop runs at least the daemon's own tasks (accept / connect, heartbeats).
    assert value(r, "dlep_asyncio_tasks") >= 1 and value(m, "dlep_asyncio_tasks") >= 1
    assert abs(value(r, "dlep_session_up_since_seconds", **lab) - (sess.up_since or 0)) < 1e-3

    # Session initialisation and the two Destination Ups, both directions.
    assert value(r, "dlep_messages_total", type="SESSION_INITIALIZATION", direction="tx") == 1
    assert (
        value(r, "dlep_messages_total", type="SESSION_INITIALIZATION_RESPONSE", direction="rx") == 1
    )
    assert value(r, "dlep_messages_total", type="DESTINATION_UP", direction="rx") == 2
    assert value(m, "dlep_messages_total", type="DESTINATION_UP", direction="tx") == 2
    assert value(r, "dlep_messages_total", type="DESTINATION_UP_RESPONSE", direction="tx") == 2
    assert samples(r, "dlep_errors_total") == []
    assert value(r, "dlep_heartbeat_timeouts_total", by="local") == 0
    assert value(r, "dlep_heartbeat_timeouts_total", by="peer") == 0

    # Counters grow: heartbeats flow every 200 ms.
    # (None may have been sent yet: the series appears with the first one.)
    hb0 = sum(v for _, v in samples(r, "dlep_messages_total", type="HEARTBEAT", direction="tx"))
    await asyncio.sleep(0.6)
    r2 = await asyncio.to_thread(scrape, rs.url)
    assert value(r2, "dlep_messages_total", type="HEARTBEAT", direction="tx", **lab) > hb0
    assert value(r2, "dlep_messages_total", type="HEARTBEAT", direction="rx", **lab) > 0

    # Destination gauges equal the destinations' metrics (in base units).
    dests = router.destinations()
    assert len(dests) == 2
    for sid, info in dests:
        for name, v in info.metrics.as_dict().items():
            series, divisor = DIVISOR[name]
            got = value(r, series, session=sid, peer=sess.peer, mac=info.mac_str)
            assert got == v / divisor, (info.mac_str, name, got, v)
    assert value(r, "dlep_destination_latency_seconds", mac="02:00:00:00:00:01") == 0.002
    assert value(r, "dlep_destination_rlqr_ratio", mac="02:00:00:00:00:01") == 0.9
    assert value(r, "dlep_destination_mtu_bytes", mac="02:00:00:00:00:02") == 1400
    # Session-wide metrics (the modem's defaults) too.
    assert value(r, "dlep_session_mdrr_bytes_per_second", **lab) == 100e6 / 8
    assert value(r, "dlep_session_latency_seconds", **lab) == 0.001

    # An update shows at the next scrape; a new destination adds its series.
    await modem.update_destination("02:00:00:00:00:01", Metrics(cdrr=30_000_000, latency=5000))
    await modem.add_destination("02:00:00:00:00:09", Metrics(cdrr=1_000_000, mdrr=2_000_000))

    def seen() -> bool:
        infos = {i.mac_str: i.metrics for _, i in router.destinations()}
        m1 = infos.get("02:00:00:00:00:01")
        return m1 is not None and m1.cdrr == 30_000_000 and "02:00:00:00:00:09" in infos

    await wait_until(seen, what="update and new destination at the router")
    r3 = await asyncio.to_thread(scrape, rs.url)
    assert value(r3, "dlep_destination_cdrr_bytes_per_second", mac="02:00:00:00:00:01") == 30e6 / 8
    assert value(r3, "dlep_destination_latency_seconds", mac="02:00:00:00:00:01") == 0.005
    assert value(r3, "dlep_destination_cdrr_bytes_per_second", mac="02:00:00:00:00:09") == 1e6 / 8
    assert value(r3, "dlep_destinations") == 3
    assert value(r3, "dlep_session_destinations", **lab) == 3
    assert value(r3, "dlep_messages_total", type="DESTINATION_UPDATE", direction="rx") >= 1


async def test_cap_bounds_destination_series(pair: Pair) -> None:
    many = [dest(n, cdrr="1M", mdrr="2M") for n in range(1, 8)]
    _modem, _router, ms, rs = await pair.start(many, router_cap=3, modem_cap=0)
    r = await asyncio.to_thread(scrape, rs.url)
    assert value(r, "dlep_destinations") == 7
    assert value(r, "dlep_metrics_max_destinations") == 3
    assert value(r, "dlep_metrics_destinations_dropped") == 4
    for series, _ in DIVISOR.values():
        macs = {lab["mac"] for lab, _ in samples(r, series)}
        assert len(macs) <= 3, (series, macs)
    # A stable choice: the first three MACs of the session.
    macs = {lab["mac"] for lab, _ in samples(r, "dlep_destination_cdrr_bytes_per_second")}
    assert macs == {f"02:00:00:00:00:0{n}" for n in (1, 2, 3)}
    # The counts per session are not capped.
    assert value(r, "dlep_session_destinations") == 7

    # The modem exports no per-destination series at all with a cap of 0.
    m = await asyncio.to_thread(scrape, ms.url)
    assert value(m, "dlep_destinations") == 7
    assert value(m, "dlep_metrics_destinations_dropped") == 7
    for series, _ in DIVISOR.values():
        assert samples(m, series) == []


async def test_heartbeat_timeout_is_counted(pair: Pair) -> None:
    modem, router, ms, rs = await pair.start(DESTS[:1])
    (mconn,) = modem._conns.values()
    transport = mconn.proto.transport
    assert transport is not None
    # The modem goes silent (its writes are lost): the router misses its
    # heartbeats, times the session out (status 132) and the modem receives
    # that termination. (A router that merely stops reading would not time
    # out: the heartbeats waiting in its socket prove the peer alive.)
    transport.write = lambda data: None  # type: ignore[method-assign]
    await wait_until(
        lambda: router.heartbeat_timeouts["local"] == 1 and modem.heartbeat_timeouts["peer"] == 1,
        what="heartbeat timeout on both sides",
    )
    r = await asyncio.to_thread(scrape, rs.url)
    m = await asyncio.to_thread(scrape, ms.url)
    assert value(r, "dlep_heartbeat_timeouts_total", by="local") == 1
    assert value(r, "dlep_heartbeat_timeouts_total", by="peer") == 0
    assert value(m, "dlep_heartbeat_timeouts_total", by="peer") == 1
    assert value(m, "dlep_heartbeat_timeouts_total", by="local") == 0
    assert value(r, "dlep_sessions_ended_total", status="TIMED_OUT") == 1
    assert value(m, "dlep_sessions_ended_total", status="TIMED_OUT") == 1


async def test_protocol_errors_outlive_their_session(pair: Pair) -> None:
    modem, router, _ms, rs = await pair.start(DESTS[:1])
    (mconn,) = modem._conns.values()
    (rconn,) = router._conns.values()
    first = rconn.id
    assert mconn.proto.transport is not None
    # A message of an unassigned type (250): the router answers with
    # Session Termination, status Unknown Message (128).
    mconn.proto.transport.write(bytes([0, 250, 0, 0]))
    await wait_until(lambda: first not in router._conns, what="the session to end")
    r = await asyncio.to_thread(scrape, rs.url)
    assert samples(r, "dlep_errors_total", session=first) == []  # gone with the session
    assert value(r, "dlep_protocol_errors_total", status="UNKNOWN_MESSAGE") == 1
    assert value(r, "dlep_sessions_ended_total", status="UNKNOWN_MESSAGE") == 1
    assert value(r, "dlep_heartbeat_timeouts_total", by="local") == 0
