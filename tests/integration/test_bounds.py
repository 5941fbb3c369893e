"""Issue 14 (robustness), the bounds: connection churn, discovery floods, TLS
handshakes in progress, destinations per session.

Everything here sends to loopback only, and every loop that sends is
bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time

import pytest

from dlep.api.metrics import DaemonCollector
from dlep.daemon import ConnectionRefused
from dlep.fsm import DestinationRefused, SessionUp
from dlep.transport import set_ttl_255
from dlep.wire import PeerType, Signal, SignalType, StatusCode, encode_signal

from .conftest import (
    V4,
    V6,
    Certs,
    Daemons,
    Events,
    free_port,
    modem_config,
    need_host,
    router_config,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


async def _open_raw(host: str, port: int) -> socket.socket | None:
    """A TCP connection with TTL 255 (the modem enforces GTSM) that never
    says anything; None if the connect failed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    set_ttl_255(sock, enforce=False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), 1.0)
    except (OSError, TimeoutError):
        sock.close()
        return None
    return sock


async def _churn(
    host: str, port: int, *, hold: float, max_conns: int, until: float, counter: list[int]
) -> None:
    """One churning client: connect, say nothing for ``hold`` seconds (or
    until the modem closes the connection), close, reconnect at once.
    Bounded by ``max_conns`` connections and ``until``."""
    loop = asyncio.get_running_loop()
    while counter[0] < max_conns and time.monotonic() < until:
        counter[0] += 1
        sock = await _open_raw(host, port)
        if sock is None:
            await asyncio.sleep(0.01)
            continue
        try:
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(loop.sock_recv(sock, 1), hold)
        finally:
            sock.close()


def _modem_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "dlep.modem" and r.levelno >= logging.WARNING
    ]


async def test_connection_churn_does_not_lock_out_the_router(
    daemons: Daemons, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 1: connections that had not completed Session Initialization
    counted toward max_sessions (and stayed 4 heartbeats): a client churning
    connections from the router's own address kept the router out. Now only
    sessions count; the churn stays within the pending bounds and the router
    comes up at once."""
    caplog.set_level(logging.INFO)
    modem = await daemons.modem(modem_config(port, modem={"max_sessions": 1}))
    counter = [0]
    until = time.monotonic() + 8.0
    churners = [
        asyncio.create_task(
            _churn(V4, port, hold=hold, max_conns=20_000, until=until, counter=counter)
        )
        for hold in (1.0, 1.0, 0.0)  # two holding, one closing at once
    ]
    try:
        await asyncio.sleep(0.3)  # the churn is under way
        router = await daemons.router(router_config(port))
        rev = Events(router.subscribe(), "router")
        t0 = time.monotonic()
        await rev.next(SessionUp, timeout=3.0)
        assert time.monotonic() - t0 < 3.0
    finally:
        for t in churners:
            t.cancel()
        await asyncio.gather(*churners, return_exceptions=True)
    assert counter[0] > 100, "the churn did not run"
    assert [s.state for s in modem.sessions() if s.state == "in-session"] == ["in-session"]
    warnings = _modem_warnings(caplog)
    assert len(warnings) <= 3, warnings
    # Not a line per churned connection at any level either.
    lines = [r.getMessage() for r in caplog.records if r.name == "dlep.modem"]
    assert len(lines) <= 20, (counter[0], lines[:30])


async def test_pending_connections_are_bounded_and_time_out(
    daemons: Daemons, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 1: a client holding as many idle connections as it can (each
    closed one reopened) from one address: beyond max_pending_per_source they
    are closed at once, summarized in the log; the idle ones are closed after
    pending_timeout_ms; a router from another address gets its session."""
    need_host(V6)
    caplog.set_level(logging.INFO)
    modem = await daemons.modem(
        modem_config(
            port,
            network={"listen_addresses": [V4, V6], "tcp_port": port},
            modem={
                "max_sessions": 2,
                "max_pending_per_source": 4,
                "max_pending_connections": 16,
                "pending_timeout_ms": 1000,
            },
        )
    )
    mev = Events(modem.subscribe(), "modem")
    held: list[socket.socket] = []
    loop = asyncio.get_running_loop()
    try:
        for _ in range(40):  # bounded: 40 connections from 127.0.0.1
            sock = await _open_raw(V4, port)
            if sock is not None:
                held.append(sock)
        refused = await mev.next(ConnectionRefused)
        assert "max_pending_per_source" in refused.reason, refused
        router = await daemons.router(router_config(port, V6))
        rev = Events(router.subscribe(), "router")
        await rev.next(SessionUp, timeout=2.0)

        # The idle connections the modem kept are closed after the timeout.
        async def closed(sock: socket.socket) -> bool:
            try:
                return await asyncio.wait_for(loop.sock_recv(sock, 1), 3.0) == b""
            except ConnectionError:
                return True
            except TimeoutError:
                return False

        t0 = time.monotonic()
        results = await asyncio.gather(*(closed(s) for s in held))
        assert all(results), f"{results.count(False)} idle connections still open"
        assert time.monotonic() - t0 < 3.0
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
    assert modem.bound_refusals.get("max_pending_per_source", 0) >= 30
    warnings = _modem_warnings(caplog)
    assert len(warnings) <= 3, warnings


def _peer_discovery() -> bytes:
    return encode_signal(Signal(SignalType.PEER_DISCOVERY, (PeerType("flood"),)))


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((V4, 0))
        return int(s.getsockname()[1])


async def test_discovery_flood_gets_bounded_offers(
    daemons: Daemons, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 2: every valid Peer Discovery got a Peer Offer and an INFO line
    (83,594 of each in 10 s). Now offers are rate-limited per source (token
    bucket), the log is summarized, the suppressed ones are counted in the
    metrics, and a router connecting meanwhile gets its session at once.

    Loopback only: the modem's discovery interface is ``lo`` and the flood
    is unicast to 127.0.0.1 (nothing joins a group on a real interface)."""
    need_host(V6)
    caplog.set_level(logging.INFO)
    dport = _free_udp_port()
    modem = await daemons.modem(
        modem_config(
            port,
            network={
                "listen_addresses": [V4, V6],
                "tcp_port": port,
                "interface": "lo",
                "discovery_port": dport,
                "discovery_v4": True,
                "discovery_v6": False,
            },
            modem={"discovery_offer_rate": 1.0, "discovery_offer_burst": 5},
        )
    )
    loop = asyncio.get_running_loop()
    flooder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flooder.setblocking(False)
    flooder.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)  # §12.1: else ignored
    flooder.bind((V4, 0))
    offers = 0
    sent = 0
    stop = asyncio.Event()

    async def read_offers() -> None:
        nonlocal offers
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(loop.sock_recv(flooder, 2048), 0.2)
            except TimeoutError:
                continue
            if data:
                offers += 1

    reader = asyncio.create_task(read_offers())
    signal_ = _peer_discovery()
    try:
        deadline = time.monotonic() + 2.0
        router_up: asyncio.Task[object] | None = None
        for i in range(40):  # bounded: 40 bursts of 100 datagrams, at most ~2 s
            if time.monotonic() > deadline:
                break
            for _ in range(100):
                with contextlib.suppress(BlockingIOError):
                    flooder.sendto(signal_, (V4, dport))
                    sent += 1
            await asyncio.sleep(0.02)
            if i == 5:  # the flood is under way: a router connects (over ::1)
                router = await daemons.router(router_config(port, V6))
                rev = Events(router.subscribe(), "router")
                router_up = asyncio.create_task(rev.next(SessionUp, timeout=2.0))
        assert router_up is not None
        await router_up
        await asyncio.sleep(0.3)  # the last offers arrive
    finally:
        stop.set()
        await reader
        flooder.close()
    assert sent >= 1000, sent
    # A burst of 5, then 1 a second for at most ~3 s.
    assert 1 <= offers <= 10, f"{offers} Peer Offers for {sent} Peer Discovery"
    assert modem.bound_refusals.get("discovery_offer_rate", 0) >= 500
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "dlep.modem" and "Peer Discovery" in r.getMessage()
    ]
    assert 1 <= len(lines) <= 3, lines
    metric = {
        s.labels["bound"]: s.value
        for fam in DaemonCollector(modem).collect()
        if fam.name == "dlep_bound_refusals"
        for s in fam.samples
    }
    assert metric.get("discovery_offer_rate", 0) >= 500, metric


async def test_tls_handshakes_in_progress_are_bounded(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 3: a TLS handshake in progress was held 60 s (asyncio's
    default) at ~0.3 MB each, and as many as clients opened. Now handshakes
    count toward the pending bounds (beyond them: closed at once) and are
    abandoned after tls.handshake_timeout_ms; a real TLS router still gets in."""
    need_host(V6)
    caplog.set_level(logging.INFO)
    modem = await daemons.modem(
        modem_config(
            port,
            network={"listen_addresses": [V4, V6], "tcp_port": port, "use_tls": True},
            tls=certs.modem_tls(handshake_timeout_ms=1000),
            modem={"max_sessions": 2, "max_pending_per_source": 4, "max_pending_connections": 16},
        )
    )
    loop = asyncio.get_running_loop()
    held: list[socket.socket] = []

    async def closed(sock: socket.socket, within: float) -> bool:
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 1), within) == b""
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    try:
        for _ in range(30):  # bounded: 30 connections that never say ClientHello
            sock = await _open_raw(V4, port)
            if sock is not None:
                held.append(sock)
        assert len(held) == 30
        # Beyond the per-source bound: closed at once.
        early = await asyncio.gather(*(closed(s, 0.5) for s in held))
        assert early.count(True) >= 26, early
        assert modem.bound_refusals.get("max_pending_per_source", 0) >= 26
        # A TLS router from another address gets its session meanwhile.
        router = await daemons.router(
            router_config(port, V6, network={"use_tls": True}, tls=certs.router_tls())
        )
        await Events(router.subscribe(), "router").next(SessionUp, timeout=3.0)
        # The handshakes the modem took on are abandoned after the timeout.
        t0 = time.monotonic()
        late = await asyncio.gather(
            *(closed(s, 3.0) for s, gone in zip(held, early, strict=True) if not gone)
        )
        assert all(late), late
        assert time.monotonic() - t0 < 3.0
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
    # And the slots are free again: a TLS router from 127.0.0.1 gets in too.
    router4 = await daemons.router(
        router_config(port, V4, network={"use_tls": True}, tls=certs.router_tls())
    )
    await Events(router4.subscribe(), "router4").next(SessionUp, timeout=3.0)


async def test_router_caps_destinations_per_session(
    daemons: Daemons, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 4: a modem could bring up any number of destinations (100k:
    +174 MB at the router). Beyond router.max_destinations_per_session each
    Destination Up is answered 'Request Denied', counted, and logged once
    per interval; the session goes on."""
    caplog.set_level(logging.INFO)
    modem = await daemons.modem(modem_config(port))  # two configured destinations
    router = await daemons.router(router_config(port, router={"max_destinations_per_session": 5}))
    rev = Events(router.subscribe(), "router")
    mev = Events(modem.subscribe(), "modem")
    await rev.next(SessionUp)
    for i in range(200):  # bounded: 200 more destinations
        await modem.add_destination(f"02:00:00:00:10:{i:02x}")
    await wait_until(
        lambda: router.bound_refusals.get("max_destinations_per_session", 0) == 197,
        5,
        "197 refusals",
    )
    refused = await mev.next(DestinationRefused)
    assert refused.status == StatusCode.REQUEST_DENIED
    (rs,) = router.sessions()
    assert rs.state == "in-session" and rs.destinations == 5
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "dlep.router" and "Destination Up refused" in r.getMessage()
    ]
    assert len(lines) == 1, lines
    assert "limit of 5 destinations" in lines[0]


async def test_api_peers_are_bounded(daemons: Daemons) -> None:
    """Issue 14 item 12: ConnectStatic was unbounded (2,000 calls: 1,900
    fds). Beyond router.max_api_peers a peer added through the API is
    refused, counted, and nothing is kept for it; disconnecting one makes
    room, and static peers and repeats of a known peer are not limited."""
    from dlep.daemon import DaemonError

    router = await daemons.router(router_config(None, router={"max_api_peers": 2}))
    ports = [free_port() for _ in range(3)]  # closed: each peer just backs off
    router.connect_static(V4, ports[0], origin="api")
    router.connect_static(V4, ports[1], origin="api")
    router.connect_static(V4, ports[1], origin="api")  # the same peer again: no new one
    with pytest.raises(DaemonError, match=r"router\.max_api_peers"):
        router.connect_static(V4, ports[2], origin="api", profile="standard")
    assert router.bound_refusals == {"max_api_peers": 1}
    assert len(router.peers()) == 2
    router.connect_static(V4, ports[2])  # a static peer (configuration, reload): not limited
    await router.disconnect(V4, ports[0])
    router.connect_static(V4, free_port(), origin="api")
    assert sorted(p.origin for p in router.peers()) == ["api", "api", "static"]
