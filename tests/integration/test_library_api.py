"""The library API over real sockets: subscriptions, snapshots, shutdown,
errors, and the router-side calls not covered by test_sessions."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import pytest

from dlep.daemon import (
    ConnectFailed,
    DaemonError,
    Lagged,
    SessionConnected,
    SessionEvent,
)
from dlep.fsm import (
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
    DestKey,
    Metrics,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
)
from dlep.wire import StatusCode, parse_mac

from .conftest import (
    FAST_HB_MS,
    MAC1,
    MAC2,
    MAC3,
    MAC_UNKNOWN,
    V4,
    Daemons,
    Events,
    free_port,
    modem_config,
    peer_str,
    router_config,
    session_pair,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

UPDATES = 200


async def test_slow_subscriber_gets_lagged(daemons: Daemons, port: int) -> None:
    """A subscriber that does not read loses events, not memory: its queue
    stays at ``maxsize`` and the next read says how many it missed. Updates of
    one destination merge first (``merging``: from 2 waiting events on), so
    that subscriber loses nothing; with merging off (``tiny``) they are dropped."""
    modem, router, _mev, _rev = await session_pair(daemons, port)
    tiny = router.subscribe(maxsize=4, coalesce_at=4)
    merging = router.subscribe(maxsize=4)
    full = Events(router.subscribe(), "full")

    for i in range(1, UPDATES + 1):  # bounded burst
        latency = 5000 if i == UPDATES // 2 else None  # changed once, in the middle
        await modem.update_destination(MAC1, Metrics(cdrr=1_000_000 + i, latency=latency))
        assert tiny.pending() <= 4 and merging.pending() <= 4
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the router read
    last = 1_000_000 + UPDATES
    await full.next(DestinationUpdate, lambda e: e.info.metrics.cdrr == last)
    total = len(full.seen)
    assert total == UPDATES
    assert tiny.pending() == 4
    # Two plain updates, then one that every later update merged into.
    assert merging.pending() == 3
    assert router.subscriber_events() == {"dropped": total - 4, "coalesced": total - 3}

    first = await tiny.get(timeout=1)
    assert first == Lagged(total - 4)
    kept = [await tiny.get(timeout=1) for _ in range(4)]
    # The oldest events were kept; the newer ones were dropped.
    assert [e.event.changed.cdrr for e in kept if isinstance(e, SessionEvent)] == [  # type: ignore[attr-defined]
        1_000_001,
        1_000_002,
        1_000_003,
        1_000_004,
    ]
    with pytest.raises(TimeoutError):
        await tiny.get(timeout=0.1)

    assert await merging.get(timeout=1) == Lagged(0, coalesced=total - 3)
    got = [await merging.get(timeout=1) for _ in range(3)]
    updates = [e.event for e in got if isinstance(e, SessionEvent)]
    assert all(isinstance(u, DestinationUpdate) for u in updates)
    assert [u.changed.cdrr for u in updates] == [1_000_001, 1_000_002, last]  # type: ignore[attr-defined]
    # The merged update has the newest snapshot and every field any of its
    # updates changed: latency, though only a middle update carried it.
    merged = updates[-1]
    assert merged.info.metrics.cdrr == last  # type: ignore[attr-defined]
    assert merged.changed.latency == 5000  # type: ignore[attr-defined]

    # Once read, it receives again (and counts afresh).
    await modem.update_destination(MAC1, Metrics(cdrr=7_000_000))
    ev = await tiny.get(timeout=5)
    assert isinstance(ev, SessionEvent) and isinstance(ev.event, DestinationUpdate)
    assert ev.event.changed.cdrr == 7_000_000


async def test_unsubscribe(daemons: Daemons, port: int) -> None:
    modem, router, _mev, rev = await session_pair(daemons, port)
    gone = router.subscribe()
    router.unsubscribe(gone)
    router.unsubscribe(gone)  # twice is harmless
    await modem.update_destination(MAC1, Metrics(cdrr=1))
    await rev.next(DestinationUpdate)
    assert gone.pending() <= 1  # at most the end-of-stream marker
    got = await asyncio.wait_for(_collect(gone), 2)
    assert got == []


async def _collect(sub: object) -> list[object]:
    return [e async for e in sub]  # type: ignore[attr-defined]


async def test_modem_shutdown_peer_sees_255(daemons: Daemons, port: int) -> None:
    modem, router, _mev, rev = await session_pair(
        daemons, port, router_kw={"network": {"gtsm_enforce": False}}
    )
    msub = modem.subscribe()
    await modem.shutdown()
    term = await rev.next(SessionTerminated)
    assert term.status == StatusCode.SHUTTING_DOWN
    assert term.status == 255
    assert term.by_peer
    assert set(term.destinations) == {DestKey(parse_mac(MAC1)), DestKey(parse_mac(MAC2))}
    assert router.destinations() == []
    assert modem.sessions() == []
    # The modem's subscriptions end; new ones are closed at once.
    leftover = await asyncio.wait_for(_collect(msub), 2)
    assert any(
        isinstance(e, SessionEvent) and isinstance(e.event, SessionTerminated) for e in leftover
    )
    assert await asyncio.wait_for(_collect(modem.subscribe()), 1) == []
    await modem.shutdown()  # idempotent
    # The router keeps trying its static peer, and says so. (With GTSM on,
    # the kernel's TTL-64 RST for the closed port is dropped and the attempt
    # ends only at the connect timeout; here the router does not enforce it.)
    failed = await rev.next(ConnectFailed)
    assert failed.peer == peer_str(V4, port)
    assert "connection refused" in failed.reason, failed.reason


async def test_router_shutdown_peer_sees_255_and_no_reconnect(daemons: Daemons, port: int) -> None:
    modem, router, mev, _rev = await session_pair(daemons, port)
    await router.shutdown()
    term = await mev.next(SessionTerminated)
    assert (term.status, term.by_peer) == (StatusCode.SHUTTING_DOWN, True)
    assert router.sessions() == [] and router.destinations() == []
    await mev.none_of(SessionConnected, within=0.5)  # no reconnect after shutdown
    assert modem.sessions() == []
    with pytest.raises(DaemonError, match="no session is up"):
        await router.announce_destination(MAC1)


async def test_terminate_one_session(daemons: Daemons, port: int) -> None:
    """terminate_session() ends a session with Session Termination; a static
    peer is then re-connected."""
    _modem, router, mev, rev = await session_pair(daemons, port)
    (s,) = router.sessions()
    await router.terminate_session(s.id, StatusCode.SHUTTING_DOWN, "maintenance")
    mterm = await mev.next(SessionTerminated)
    assert mterm.status == 255 and mterm.by_peer and "maintenance" in mterm.reason
    rterm = await rev.next(SessionTerminated)
    assert rterm.status == 255 and not rterm.by_peer
    await rev.next(SessionUp)  # reconnected
    (s2,) = [x for x in router.sessions() if x.state == "in-session"]
    assert s2.id != s.id


async def test_snapshots(daemons: Daemons, port: int) -> None:
    modem, router, _mev, _rev = await session_pair(daemons, port)
    (rs,) = router.sessions()
    assert rs.role == "router" and rs.state == "in-session"
    assert rs.heartbeat_ms == FAST_HB_MS and rs.peer_heartbeat_ms == FAST_HB_MS
    assert rs.up_since is not None and rs.started_at <= rs.up_since
    assert rs.extensions == ()
    assert rs.rx.get("SESSION_INITIALIZATION_RESPONSE") == 1
    assert rs.rx.get("DESTINATION_UP") == 2
    assert rs.tx.get("SESSION_INITIALIZATION") == 1
    assert rs.tx.get("DESTINATION_UP_RESPONSE") == 2
    assert rs.errors == {}
    (ms,) = modem.sessions()
    assert ms.role == "modem" and ms.destinations == 2
    assert ms.session_metrics.mdrr == 100_000_000

    before = router.destinations()
    assert sorted(i.mac_str for _, i in before) == [MAC1, MAC2]
    assert router.destinations(rs.id) == before
    assert router.destinations("no-such-session") == []
    info = dict((i.mac_str, i) for _, i in before)[MAC1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.metrics = Metrics()  # type: ignore[misc]
    before.clear()  # our copy only
    assert len(router.destinations()) == 2

    # A snapshot does not change under our feet.
    await modem.update_destination(MAC1, Metrics(cdrr=1_000))
    await wait_until(
        lambda: dict((i.mac_str, i) for _, i in router.destinations())[MAC1].metrics.cdrr == 1_000,
        5,
    )
    assert info.metrics.cdrr == 36_000_000

    # The modem's own table, independent of any router.
    known = modem.known_destinations()
    assert set(known) == {DestKey(parse_mac(MAC1)), DestKey(parse_mac(MAC2))}
    assert known[DestKey(parse_mac(MAC1))].cdrr == 1_000


async def test_daemon_errors_without_session(daemons: Daemons, port: int) -> None:
    router = await daemons.router(router_config(port))  # nobody listens there
    with pytest.raises(DaemonError, match=r"no destination 02:00:00:00:00:01"):
        await router.request_link_characteristics(MAC1, cdrr=1)
    with pytest.raises(DaemonError, match="no destination"):
        await router.drop_destination(MAC1)
    with pytest.raises(DaemonError, match="no session is up"):
        await router.announce_destination(MAC1)
    with pytest.raises(DaemonError, match="no session 42"):
        await router.terminate_session("42")
    with pytest.raises(DaemonError, match="not an IP address"):
        router.connect_static("modem.example.net", 854)
    calls: list[Callable[[], Awaitable[None]]] = [
        lambda: router.request_link_characteristics("02:00:zz:00:00:01", cdrr=1),
        lambda: router.request_link_characteristics("02:00", cdrr=1, session_id="1"),
        lambda: router.announce_destination("not a mac"),
        lambda: router.drop_destination(b"\x02\x00"),
    ]
    for call in calls:
        with pytest.raises(DaemonError, match=r"MAC address|hex"):
            await call()

    modem = await daemons.modem(modem_config(free_port()))
    with pytest.raises(DaemonError, match="no destination 02:00:00:00:00:99"):
        await modem.update_destination(MAC_UNKNOWN, Metrics(cdrr=1))
    with pytest.raises(DaemonError, match="no destination 02:00:00:00:00:99"):
        await modem.drop_destination(MAC_UNKNOWN)
    with pytest.raises(DaemonError, match="already exists"):
        await modem.add_destination(MAC1)
    for bad in ("02:00:00:00:00", "02:00:00:00:00:0g", b"\x02"):
        with pytest.raises(DaemonError, match=r"MAC address|hex"):
            await modem.add_destination(bad)
        with pytest.raises(DaemonError, match=r"MAC address|hex"):
            await modem.update_destination(bad, Metrics(cdrr=1))
        with pytest.raises(DaemonError, match=r"MAC address|hex"):
            await modem.drop_destination(bad)
    with pytest.raises(DaemonError, match="cdrr"):
        await modem.add_destination(MAC3, Metrics(mdrr=1_000, cdrr=2_000))
    with pytest.raises(DaemonError, match="cdrr"):
        await modem.update_session_metrics(Metrics(mdrr=1_000, cdrr=2_000))
    assert parse_mac(MAC3) not in modem.known_destinations()
    with pytest.raises(DaemonError, match="no session is up"):
        await modem.terminate_session(None)  # type: ignore[arg-type]
    # Without a router the modem still keeps its table.
    await modem.add_destination(MAC3, Metrics(cdrr=5))
    assert modem.known_destinations()[DestKey(parse_mac(MAC3))].cdrr == 5


async def test_listen_port_in_use(daemons: Daemons, port: int) -> None:
    await daemons.modem(modem_config(port))
    with pytest.raises(DaemonError, match="could not listen"):
        await daemons.modem(modem_config(port))


async def test_two_sessions_need_a_session_id(daemons: Daemons) -> None:
    p1, p2 = free_port(), free_port()
    await daemons.modem(modem_config(p1))
    await daemons.modem(modem_config(p2, destinations=[{"mac": MAC3}]))
    cfg = router_config(p1)
    router = await daemons.router(cfg)
    rev = Events(router.subscribe(), "router")
    router.connect_static(V4, p2)
    router.connect_static(V4, p2)  # the same peer twice is one peer
    for _ in range(2):
        await rev.next(SessionUp)
    await wait_until(lambda: len(router.destinations()) == 3, 5, "three destinations")
    with pytest.raises(DaemonError, match="2 sessions are up; say which"):
        await router.announce_destination(MAC_UNKNOWN)
    by_peer = {s.peer: s.id for s in router.sessions()}
    assert set(by_peer) == {peer_str(V4, p1), peer_str(V4, p2)}
    # Calls about a known destination find its session by themselves.
    await router.request_link_characteristics(MAC3, latency=100)
    from dlep.fsm import LinkCharacteristicsResponse

    await rev.next(LinkCharacteristicsResponse, lambda e: e.mac == parse_mac(MAC3))
    assert rev.last_wrapper is not None and rev.last_wrapper.session_id == by_peer[peer_str(V4, p2)]
    await router.announce_destination(MAC_UNKNOWN, session_id=by_peer[peer_str(V4, p1)])
    ref = await rev.next(DestinationRefused)
    assert ref.status == StatusCode.REQUEST_DENIED
    assert {sid for sid, _ in router.destinations(by_peer[peer_str(V4, p2)])} == {
        by_peer[peer_str(V4, p2)]
    }


async def test_router_decides_destination_up(daemons: Daemons, port: int) -> None:
    """auto_accept_destinations = false: the application answers each
    Destination Up; a refused one is 'Not Interested' at the modem."""
    modem = await daemons.modem(modem_config(port))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, router={"auto_accept_destinations": False}))
    rev = Events(router.subscribe(), "router")
    asked = {}
    for _ in range(2):
        req = await rev.next(DestinationUpRequested)
        asked[req.info.mac_str] = req.info
    assert set(asked) == {MAC1, MAC2}
    assert router.destinations() == []  # not up until accepted
    await router.respond_destination_up(MAC1, True)
    up = await rev.next(DestinationUp)
    assert up.info.mac_str == MAC1
    await router.respond_destination_up(MAC2, False)
    refused = await mev.next(DestinationRefused)
    assert refused.mac == parse_mac(MAC2) and refused.status == StatusCode.NOT_INTERESTED
    assert [i.mac_str for _, i in router.destinations()] == [MAC1]
    with pytest.raises(DaemonError, match="no destination"):
        await router.respond_destination_up(MAC_UNKNOWN, True)


async def test_router_update_session_addresses(daemons: Daemons, port: int) -> None:
    modem, router, mev, _rev = await session_pair(daemons, port)
    await router.update_session(add=["192.0.2.1", "2001:db8::1"])
    ev = await mev.next(SessionUpdated)
    assert {str(a) for a in ev.peer_ipv4} == {"192.0.2.1"}
    assert {str(a) for a in ev.peer_ipv6} == {"2001:db8::1"}
    assert ev.metrics == Metrics()
    await router.update_session(drop=["192.0.2.1"])
    ev = await mev.next(SessionUpdated)
    assert not ev.peer_ipv4 and {str(a) for a in ev.peer_ipv6} == {"2001:db8::1"}
    assert modem.sessions()[0].state == "in-session"
