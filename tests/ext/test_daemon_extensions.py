"""Extensions chosen in configuration negotiate between real daemons on loopback."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import DaemonError, ModemDaemon, RouterDaemon, SessionEvent
from dlep.ext.latency_range import LatencyRange
from dlep.ext.multihop import HopCount, hop_count
from dlep.fsm import DestinationUp, SessionUp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configs(port: int, router_ext: list[Any], modem_ext: list[Any]) -> tuple[Any, Any]:
    timers = {"heartbeat_interval_ms": 1000}
    modem = parse_modem_config(
        {
            "network": {"tcp_port": port, "listen_addresses": ["127.0.0.1"]},
            "timers": timers,
            "api": {"enabled": False},
            "modem": {"extensions": modem_ext},
        }
    )
    router = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers,
            "api": {"enabled": False},
            "router": {
                "discovery": False,
                "static_peers": [f"127.0.0.1:{port}"],
                "extensions": router_ext,
            },
        }
    )
    return router, modem


async def _wait(sub: Any, kind: type, timeout: float = 10.0) -> Any:
    async def loop() -> Any:
        async for ev in sub:
            if isinstance(ev, SessionEvent) and isinstance(ev.event, kind):
                return ev.event
        return None

    return await asyncio.wait_for(loop(), timeout)


@pytest.mark.timeout(30)
async def test_configured_extensions_negotiate_and_flow() -> None:
    port = _free_port()
    rcfg, mcfg = _configs(port, ["multi-hop", "latency-range"], ["multi-hop", "latency-range"])
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    sub = router.subscribe()
    try:
        up = await _wait(sub, SessionUp)
        assert up.extensions == frozenset({1, 4})
        assert router.sessions()[0].extensions == (1, 4)
        await modem.add_destination("02:00:00:00:00:07")
        modem_session = next(iter(modem._conns.values())).proto.session
        modem_session.update_destination(
            "02:00:00:00:00:07", extra=[HopCount(3)], now=asyncio.get_running_loop().time()
        )
        for c in modem._conns.values():
            c.proto.flush()
        deadline = asyncio.get_running_loop().time() + 5
        while asyncio.get_running_loop().time() < deadline:
            dests = router.destinations()
            if dests and hop_count(dests[0][1]) == 3:
                break
            await asyncio.sleep(0.05)
        assert hop_count(router.destinations()[0][1]) == 3
    finally:
        await router.shutdown()
        await modem.shutdown()


@pytest.mark.timeout(30)
async def test_only_the_intersection_is_in_use() -> None:
    port = _free_port()
    rcfg, mcfg = _configs(port, ["multi-hop"], ["latency-range"])
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    sub = router.subscribe()
    try:
        up = await _wait(sub, SessionUp)
        assert up.extensions == frozenset()
        await modem.add_destination("02:00:00:00:00:08")
        await _wait(sub, DestinationUp)
        session = next(iter(modem._conns.values())).proto.session
        with pytest.raises(Exception, match="not negotiated"):
            session.update_destination(
                "02:00:00:00:00:08",
                extra=[LatencyRange(1, 2)],
                now=asyncio.get_running_loop().time(),
            )
    finally:
        await router.shutdown()
        await modem.shutdown()


async def test_unknown_extension_code_is_refused_clearly() -> None:
    _, mcfg = _configs(_free_port(), [], [65530])
    with pytest.raises(DaemonError, match="65530 is not a built-in extension"):
        await ModemDaemon.builder().config(mcfg).spawn()
