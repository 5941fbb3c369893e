"""Router and modem daemons in one process, over real TCP/TLS on loopback.

Every combination of IPv4 / IPv6 (::1) and plain / TLS runs the full
life of a session: destinations from the modem's configuration, then
add / update / drop, session metrics, Link Characteristics, Destination
Announce, and a clean shutdown.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from dlep.daemon import ModemDaemon, RouterDaemon, SessionConnected
from dlep.fsm import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationInfo,
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestKey,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    Metrics,
    SessionError,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
)
from dlep.wire import StatusCode, parse_mac

from .conftest import (
    FAMILIES,
    FAST_HB_MS,
    MAC1,
    MAC2,
    MAC3,
    MAC_UNKNOWN,
    V4,
    Certs,
    Daemons,
    Events,
    modem_config,
    need_host,
    peer_str,
    router_config,
    session_pair,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

M = 1_000_000

#: What the router must see for the two configured destinations: their own
#: metrics merged over the session-wide ones (RFC 8175 §12.6).
EXPECTED = {
    MAC1: (
        Metrics(
            mdrr=54 * M,
            mdrt=54 * M,
            cdrr=36 * M,
            cdrt=24 * M,
            latency=2000,
            resources=100,
            rlqr=90,
            rlqt=85,
            mtu=1500,
        ),
        {"10.0.0.11"},
        {"fd00::11"},
        set(),
    ),
    MAC2: (
        Metrics(
            mdrr=11 * M,
            mdrt=11 * M,
            cdrr=5_500_000,
            cdrt=2 * M,
            latency=8000,
            resources=100,
            rlqr=100,
            rlqt=100,
            mtu=1500,
        ),
        {"10.0.0.12"},
        set(),
        {"192.168.12.0/24"},
    ),
}


def router_dests(router: RouterDaemon) -> dict[str, DestinationInfo]:
    return {info.mac_str: info for _, info in router.destinations()}


def check_info(info: DestinationInfo, mac: str) -> None:
    metrics, v4, v6, v4net = EXPECTED[mac]
    assert info.mac_str == mac
    assert info.metrics == metrics
    assert {str(a) for a in info.ipv4} == v4
    assert {str(a) for a in info.ipv6} == v6
    assert {str(n) for n in info.ipv4_subnets} == v4net
    assert not info.ipv6_subnets


def tls_kwargs(certs: Certs, tls: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    if not tls:
        return {}, {}
    return (
        {"network": {"use_tls": True}, "tls": certs.modem_tls()},
        {"network": {"use_tls": True}, "tls": certs.router_tls(server_name="localhost")},
    )


@FAMILIES
@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
async def test_session_life(
    daemons: Daemons, port: int, host: str, tls: bool, certs: Certs
) -> None:
    need_host(host)
    modem_kw, router_kw = tls_kwargs(certs, tls)
    modem = await daemons.modem(modem_config(port, host, **modem_kw))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, host, **router_kw))
    rev = Events(router.subscribe(), "router")

    # -- the session comes up, over TLS when configured ------------------
    conn = await rev.next(SessionConnected)
    assert rev.seen == [conn], "SessionConnected must precede the session's events"
    assert conn.tls is tls
    assert conn.peer == peer_str(host, port)
    up = await rev.next(SessionUp)
    assert up.peer_type.description == "test modem"
    assert up.peer_heartbeat_ms == FAST_HB_MS
    assert up.session_metrics.mdrr == 100 * M and up.session_metrics.mtu == 1500
    m_conn = await mev.next(SessionConnected)
    assert m_conn.tls is tls
    assert (await mev.next(SessionUp)).peer_type.description == "test router"

    # -- the configured destinations arrive with their metrics -----------
    seen = {}
    for _ in range(2):
        ev = await rev.next(DestinationUp)
        assert not ev.announced
        seen[ev.info.mac_str] = ev.info
    assert set(seen) == {MAC1, MAC2}
    for mac, info in seen.items():
        check_info(info, mac)
    snap = router_dests(router)
    assert set(snap) == {MAC1, MAC2}
    for mac, info in snap.items():
        check_info(info, mac)

    (rs,) = router.sessions()
    assert (rs.role, rs.state, rs.tls) == ("router", "in-session", tls)
    assert rs.peer == peer_str(host, port)
    assert rs.peer_type == "test modem"
    assert rs.peer_heartbeat_ms == FAST_HB_MS
    assert rs.destinations == 2
    (ms,) = modem.sessions()
    assert (ms.role, ms.state, ms.tls) == ("modem", "in-session", tls)
    assert ms.peer_type == "test router"
    assert ipaddress.ip_address(ms.peer.rsplit(":", 1)[0].strip("[]")) == ipaddress.ip_address(host)

    # -- a new destination --------------------------------------------------
    await modem.add_destination(
        MAC3,
        Metrics(mdrr=2 * M, mdrt=2 * M, cdrr=1_200_000, cdrt=800_000, latency=25_000, rlqr=35),
        addresses=["10.0.0.13", "fd00::13", "10.13.0.0/16"],
    )
    ev = await rev.next(DestinationUp, lambda e: e.info.mac_str == MAC3)
    assert ev.info.metrics.cdrr == 1_200_000
    assert ev.info.metrics.rlqr == 35
    assert ev.info.metrics.rlqt == 100  # inherited from the session metrics
    assert {str(a) for a in ev.info.ipv4} == {"10.0.0.13"}
    assert {str(a) for a in ev.info.ipv6} == {"fd00::13"}
    assert {str(n) for n in ev.info.ipv4_subnets} == {"10.13.0.0/16"}

    # -- an update: only the changed metrics travel; addresses added/dropped
    await modem.update_destination(
        MAC1, Metrics(cdrr=40 * M, latency=3000), add=["10.0.0.111"], drop=["fd00::11"]
    )
    upd = await rev.next(DestinationUpdate, lambda e: e.info.mac_str == MAC1)
    assert upd.changed == Metrics(cdrr=40 * M, latency=3000)
    assert upd.info.metrics.cdrr == 40 * M
    assert upd.info.metrics.cdrt == 24 * M
    assert {str(a) for a in upd.info.ipv4} == {"10.0.0.11", "10.0.0.111"}
    assert not upd.info.ipv6
    assert router_dests(router)[MAC1].metrics.latency == 3000

    # -- a destination goes away ----------------------------------------------
    await modem.drop_destination(MAC2)
    down = await rev.next(DestinationDown)
    assert down.mac == parse_mac(MAC2)
    assert down.by_peer
    assert set(router_dests(router)) == {MAC1, MAC3}

    # -- session-wide metrics apply to every destination (§12.7) --------------
    await modem.update_session_metrics(Metrics(rlqr=50, resources=40))
    su = await rev.next(SessionUpdated)
    assert su.metrics == Metrics(rlqr=50, resources=40)
    assert su.session_metrics.rlqr == 50
    for info in router_dests(router).values():
        assert (info.metrics.rlqr, info.metrics.resources) == (50, 40)
    assert router.sessions()[0].session_metrics.rlqr == 50

    # -- Link Characteristics: granted within the maximum ---------------------
    await router.request_link_characteristics(MAC1, cdrr=30 * M, latency=1500)
    req = await mev.next(LinkCharacteristicsRequested)
    assert (req.cdrr, req.cdrt, req.latency) == (30 * M, None, 1500)
    lcr = await rev.next(LinkCharacteristicsResponse)
    assert lcr.mac == parse_mac(MAC1)
    assert lcr.status == StatusCode.SUCCESS
    assert lcr.metrics.cdrr == 30 * M and lcr.metrics.latency == 1500
    assert router_dests(router)[MAC1].metrics.cdrr == 30 * M

    # ... and capped above it: 'Request Denied' with what the link does now
    await router.request_link_characteristics(MAC1, cdrr=60 * M, cdrt=70 * M)
    lcr = await rev.next(LinkCharacteristicsResponse)
    assert lcr.status == StatusCode.REQUEST_DENIED
    assert lcr.metrics.cdrr == 54 * M  # the mdrr of MAC1
    assert lcr.metrics.cdrt == 54 * M
    assert lcr.metrics.mdrr == 54 * M
    assert "capped" in lcr.text
    assert router_dests(router)[MAC1].metrics.cdrr == 54 * M
    assert modem.known_destinations()[DestKey(parse_mac(MAC1))].cdrr == 54 * M

    # -- Destination Announce for a MAC the modem does not know ---------------
    await router.announce_destination(MAC_UNKNOWN, addresses=["10.0.0.99"])
    ann = await mev.next(DestinationAnnounceRequested)
    assert ann.mac == parse_mac(MAC_UNKNOWN)
    assert {str(a) for a in ann.ipv4} == {"10.0.0.99"}
    ref = await rev.next(DestinationRefused)
    assert ref.mac == parse_mac(MAC_UNKNOWN)
    assert ref.status == StatusCode.REQUEST_DENIED
    assert MAC_UNKNOWN not in router_dests(router)

    # -- clean shutdown of the router: the modem sees it go -------------------
    await router.shutdown()
    term = await mev.next(SessionTerminated)
    assert term.status == StatusCode.SHUTTING_DOWN
    assert term.by_peer
    assert set(term.destinations) == {DestKey(parse_mac(MAC1)), DestKey(parse_mac(MAC3))}
    await wait_until(lambda: not modem.sessions(), 5, "modem session gone")
    assert not router.sessions()
    assert router.destinations() == []


async def test_announce_known_destination(daemons: Daemons, port: int) -> None:
    """Destination Announce for a destination the modem has, but the router
    dropped: the modem answers Success with its metrics and addresses; a
    destination the router already has cannot be announced at all."""
    modem, router, mev, rev = await session_pair(daemons, port)

    with pytest.raises(SessionError, match="already known"):
        await router.announce_destination(MAC1)

    # The router no longer wants MAC2 (Destination Down from the router).
    await router.drop_destination(MAC2)
    down = await rev.next(DestinationDown)
    assert (down.mac, down.by_peer) == (parse_mac(MAC2), False)
    mdown = await mev.next(DestinationDown)
    assert (mdown.mac, mdown.by_peer) == (parse_mac(MAC2), True)
    assert MAC2 not in router_dests(router)
    # The modem's application still knows it ...
    assert DestKey(parse_mac(MAC2)) in modem.known_destinations()

    # ... so announcing it brings it back, with its metrics and addresses.
    await router.announce_destination(MAC2)
    up = await rev.next(DestinationUp)
    assert up.announced
    check_info(up.info, MAC2)
    check_info(router_dests(router)[MAC2], MAC2)
    mup = await mev.next(DestinationUp)
    assert mup.announced and mup.info.mac == parse_mac(MAC2)

    # And it is a normal destination again: updates reach the router.
    await modem.update_destination(MAC2, Metrics(cdrr=3 * M))
    upd = await rev.next(DestinationUpdate, lambda e: e.info.mac_str == MAC2)
    assert upd.changed == Metrics(cdrr=3 * M)


async def test_link_characteristics_custom_handler(daemons: Daemons, port: int) -> None:
    """An application handler (async) decides Link Characteristics Requests."""
    from dlep.daemon import LinkDecision, LinkRequest

    seen: list[LinkRequest] = []

    async def handler(req: LinkRequest) -> LinkDecision:
        seen.append(req)
        return LinkDecision(StatusCode.SUCCESS, Metrics(cdrt=1 * M, latency=9999), "ok")

    modem = await daemons.modem(
        modem_config(port), lambda b: b.link_characteristics_handler(handler)
    )
    router = await daemons.router(router_config(port))
    rev = Events(router.subscribe(), "router")
    await rev.next(DestinationUp, lambda e: e.info.mac_str == MAC1)
    await router.request_link_characteristics(MAC1, latency=500)
    lcr = await rev.next(LinkCharacteristicsResponse)
    assert lcr.status == 0 and lcr.text == "ok"
    assert (lcr.metrics.cdrt, lcr.metrics.latency) == (1 * M, 9999)
    (req,) = seen
    assert req.mac == parse_mac(MAC1)
    assert (req.cdrr, req.cdrt, req.latency) == (None, None, 500)
    assert req.current.mdrr == 54 * M
    assert isinstance(modem, ModemDaemon)


async def test_link_characteristics_sync_handler_spawns_no_task(
    daemons: Daemons, port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that answers at once (the default is one) is answered in the
    step that read the request: a router flooding Link Characteristics
    Requests must not cost the modem one task each (issue 14, item 3)."""
    modem = await daemons.modem(modem_config(port))
    spawned: list[str] = []
    real_spawn = modem._spawn

    def counting_spawn(coro: Any, name: str) -> Any:
        spawned.append(name)
        return real_spawn(coro, name)

    monkeypatch.setattr(modem, "_spawn", counting_spawn)
    router = await daemons.router(router_config(port))
    rev = Events(router.subscribe(), "router")
    await rev.next(DestinationUp, lambda e: e.info.mac_str == MAC1)
    for _ in range(20):
        await router.request_link_characteristics(MAC1, latency=500)
        lcr = await rev.next(LinkCharacteristicsResponse)
        assert lcr.status == 0
    assert not [n for n in spawned if n.startswith("lcr-")]


async def test_two_routers_share_one_modem(daemons: Daemons, port: int) -> None:
    """With max_sessions = 2 both routers get every destination, including
    ones added later; a third router is refused."""
    from dlep.daemon import ConnectionRefused

    modem = await daemons.modem(modem_config(port, modem={"max_sessions": 2}))
    mev = Events(modem.subscribe(), "modem")
    r1 = await daemons.router(router_config(port))
    r2 = await daemons.router(router_config(port))
    e1, e2 = Events(r1.subscribe(), "r1"), Events(r2.subscribe(), "r2")
    for ev in (e1, e2):
        await ev.next(DestinationUp, lambda e: e.info.mac_str == MAC2)
    await wait_until(lambda: len(modem.sessions()) == 2, 5, "two modem sessions")

    await modem.add_destination(MAC3, Metrics(cdrr=1 * M), addresses=["10.0.0.13"])
    for ev in (e1, e2):
        up = await ev.next(DestinationUp, lambda e: e.info.mac_str == MAC3)
        assert up.info.metrics.cdrr == 1 * M

    r3 = await daemons.router(router_config(port))
    refused = await mev.next(ConnectionRefused)
    assert "max_sessions" in refused.reason
    assert not [s for s in r3.sessions() if s.state == "in-session"]
    await r3.shutdown()

    # Which router a destination belongs to is per session at the modem.
    sids = {s.id for s in modem.sessions()}
    assert {sid for sid, _ in modem.destinations()} == sids
    assert len(modem.destinations()) == 6


async def test_modem_restart_router_reconnects(daemons: Daemons, port: int) -> None:
    """A static peer is re-connected after the modem went away and came back."""
    modem, router, _mev, rev = await session_pair(daemons, port)
    await modem.shutdown()
    term = await rev.next(SessionTerminated)
    assert term.status == StatusCode.SHUTTING_DOWN and term.by_peer
    assert router.destinations() == []

    modem2 = await daemons.modem(modem_config(port, destinations=[{"mac": MAC3}]))
    up = await rev.next(DestinationUp, timeout=10)
    assert up.info.mac_str == MAC3
    assert set(router_dests(router)) == {MAC3}
    assert len(modem2.sessions()) == 1


async def test_ipv6_static_peer_string(daemons: Daemons, port: int) -> None:
    """``"[::1]:port"`` as a static peer string reaches an IPv6-only modem."""
    need_host("::1")
    from dlep.config import parse_router_config

    from .conftest import router_data

    await daemons.modem(modem_config(port, "::1"))
    data = router_data(None)
    data["router"]["static_peers"] = [f"[::1]:{port}"]
    router = await daemons.router(parse_router_config(data))
    rev = Events(router.subscribe(), "router")
    await rev.next(SessionUp)
    assert router.sessions()[0].peer == f"[::1]:{port}"
    assert V4 not in router.sessions()[0].peer


@FAMILIES
async def test_both_ends_send_without_nagle(daemons: Daemons, port: int, host: str) -> None:
    """TCP_NODELAY on both ends of a session (the modem's accepted socket
    too: asyncio leaves it off there, and each small Destination Update then
    waited up to 40 ms for the router's delayed ACK)."""
    need_host(host)
    modem, router, _mev, _rev = await session_pair(daemons, port, host)
    for side in (modem, router):
        (conn,) = side._conns.values()
        assert conn.proto.transport is not None
        sock = conn.proto.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, side.role
