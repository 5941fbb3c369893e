"""The router's peer table: configured peers that are not in session are
visible with their state, last error and next retry; retries back off;
``disconnect`` forgets one. Loopback only."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dlep.api.client import ManagementClient
from dlep.api.convert import to_dict
from dlep.api.server import ManagementServer
from dlep.daemon import ModemDaemon, PeerInfo, RouterDaemon, UnknownPeerError
from dlep.daemon.peers import Backoff, classify

from .conftest import V4, free_port, modem_config, router_config, wait_until

pytestmark = pytest.mark.timeout(60)


def _only(router: RouterDaemon) -> PeerInfo:
    peers = router.peers()
    assert len(peers) == 1, peers
    return peers[0]


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    b = Backoff(1.0, 8.0, 0.2, random.Random(7))
    for failures, step in ((0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        for _ in range(50):
            assert step * 0.8 <= b.delay(failures) <= step * 1.2
    # Jitter really varies the delay (routers restarted together spread out).
    assert len({round(b.delay(3), 6) for _ in range(20)}) > 10
    assert Backoff(1.0, 1.0, 0.0, random.Random()).delay(30) == 1.0


def test_classify() -> None:
    import ssl

    assert classify(ConnectionRefusedError()) == "refused"
    assert classify(TimeoutError()) == "timeout"
    assert classify(ssl.SSLError()) == "tls-failed"
    assert classify(OSError(113, "No route to host")) == "unreachable"


async def test_dead_static_peer_is_visible_backs_off_then_comes_up() -> None:
    port = free_port()  # nothing listens there (yet)
    # GTSM off for this peer: the kernel's refusal (TTL 64) must reach us.
    cfg = router_config(
        None,
        timers={"reconnect_interval_ms": 100, "reconnect_max_interval_ms": 400},
        router={"static_peers": [{"address": V4, "port": port, "gtsm_enforce": False}]},
    )
    router = await RouterDaemon.builder().config(cfg).spawn()
    router.backoff.jitter = 0.0
    modem = None
    try:
        await wait_until(lambda: _only(router).failures >= 3, 10, "three failed attempts")
        p = _only(router)
        assert p.origin == "static"
        assert p.failure == "refused"
        assert "refused" in p.last_error.lower()
        assert p.session_id is None
        assert not p.gtsm_enforce
        assert p.state in ("backing-off", "connecting")
        await wait_until(lambda: _only(router).state == "backing-off", 5, "backing off")
        p = _only(router)
        assert p.next_retry is not None and p.next_retry > p.since
        # Doubling, capped: after 3+ failures the wait is the 400 ms cap.
        assert p.next_retry - p.since == pytest.approx(0.4, abs=0.1)
        assert router.sessions() == []

        modem = await ModemDaemon.builder().config(modem_config(port)).spawn()
        await wait_until(lambda: _only(router).state == "in-session", 10, "the session")
        p = _only(router)
        assert p.session_id is not None and p.next_retry is None
        assert p.failures == 0
        assert [s.id for s in router.sessions()] == [p.session_id]

        # disconnect: the session ends and the router does not come back.
        before = await router.disconnect(V4)
        assert before.session_id == p.session_id
        assert router.peers() == []
        await wait_until(lambda: not router.sessions(), 5, "session gone")
        await wait_until(lambda: not modem.sessions(), 5, "modem session gone")
        with pytest.raises(UnknownPeerError):
            await router.disconnect(V4, port)
    finally:
        await router.shutdown()
        if modem is not None:
            await modem.shutdown()


async def test_session_end_resets_the_backoff_and_names_the_reason() -> None:
    port = free_port()
    modem = await ModemDaemon.builder().config(modem_config(port)).spawn()
    cfg = router_config(port, timers={"reconnect_interval_ms": 5000})
    router = await RouterDaemon.builder().config(cfg).spawn()
    try:
        await wait_until(lambda: _only(router).state == "in-session", 10, "the session")
        (ms,) = modem.sessions()
        await modem.terminate_session(ms.id, text="maintenance")
        await wait_until(lambda: _only(router).state == "backing-off", 10, "backing off")
        p = _only(router)
        assert p.failure == "closed"
        assert p.failures == 0
        assert "maintenance" in p.last_error
        assert p.next_retry is not None
    finally:
        await router.shutdown()
        await modem.shutdown()


async def test_api_list_peers_health_and_disconnect(tmp_path: Path) -> None:
    port = free_port()
    cfg = router_config(None, network={"gtsm_enforce": False})
    router = await RouterDaemon.builder().config(cfg).spawn()
    api = ManagementServer(router, socket_path=tmp_path / "r.sock")
    try:
        async with api, ManagementClient.unix(api.socket_path) as c:
            info = to_dict(await c.get_info())
            assert info["health"] == "idle"
            await c.connect_static(V4, port)
            await wait_until(lambda: _only(router).failure == "refused", 10, "refused")
            (p,) = await c.list_peers()
            assert p.origin == "api" and p.failure == "refused" and p.port == port
            info = to_dict(await c.get_info())
            assert info["health"] == "degraded"
            assert f"peer {V4}:{port}" in info["health_detail"]
            gone = await c.disconnect_peer(V4, port)
            assert gone.peer == f"{V4}:{port}"
            assert await c.list_peers() == []
            assert to_dict(await c.get_info())["health"] == "idle"
    finally:
        await router.shutdown()


def test_reconnect_config_keys_are_checked() -> None:
    from dlep.config import ConfigError, parse_router_config

    cfg = parse_router_config({"timers": {"reconnect_max_interval_ms": 5000}})
    assert cfg.timers.reconnect_max_interval_ms == 5000
    assert cfg.timers.reconnect_jitter_percent == 20
    with pytest.raises(ConfigError, match="reconnect_max_interval_ms"):
        parse_router_config(
            {"timers": {"reconnect_interval_ms": 2000, "reconnect_max_interval_ms": 1000}}
        )
    with pytest.raises(ConfigError, match="reconnect_jitter_percent"):
        parse_router_config({"timers": {"reconnect_jitter_percent": 90}})
    peer = parse_router_config(
        {"router": {"static_peers": [{"address": "10.0.0.2", "gtsm_enforce": False}]}}
    ).router.static_peers[0]
    assert peer.gtsm_enforce is False


async def test_api_connect_without_gtsm_accepts_a_peer_below_ttl_255(tmp_path: Path) -> None:
    """ConnectStatic's gtsm_enforce=False: that peer's packets are taken
    whatever their TTL. The 'modem' is a plain listener answering with the
    kernel's default TTL (64 on loopback): under GTSM (the router's default
    here) its SYN-ACK is dropped, without it the connection is made."""
    import asyncio
    import socket

    plain = socket.socket()
    plain.bind((V4, 0))
    plain.listen(4)
    plain.setblocking(False)
    port = int(plain.getsockname()[1])
    enforced = free_port()  # nothing listens: only its GTSM setting is looked at
    router = await RouterDaemon.builder().config(router_config(None)).spawn()
    assert router.cfg.network.gtsm_enforce
    api = ManagementServer(router, socket_path=tmp_path / "r.sock")
    loop = asyncio.get_running_loop()
    try:
        async with api, ManagementClient.unix(api.socket_path) as c:
            await c.connect_static(V4, port, gtsm_enforce=False)
            await c.connect_static(V4, enforced)  # unset: the router's default
            conn, _ = await asyncio.wait_for(loop.sock_accept(plain), 10)
            conn.close()
            by_port = {p.port: p for p in await c.list_peers()}
            assert by_port[port].gtsm_enforce is False
            assert by_port[enforced].gtsm_enforce is True
    finally:
        await router.shutdown()
        plain.close()
