"""Fixtures for the management API and dlepctl tests: loopback and Unix sockets only.

``live`` runs a ModemDaemon and a RouterDaemon in-process on 127.0.0.1 (a
free port, discovery off, fast timers, no simulation), each with its
management API on a socket in ``tmp_path``, and waits until the router has
the modem's destinations. ``dlepctl`` runs as a subprocess against those
sockets (the daemons keep running on the test's event loop meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dlep.api.client import ManagementClient
from dlep.api.server import ManagementServer
from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon

V4 = "127.0.0.1"
HB_MS = 200
MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"

SESSION_METRICS: dict[str, Any] = {
    "mdrr": "100M",
    "mdrt": "100M",
    "cdrr": "50M",
    "cdrt": "50M",
    "latency": "1ms",
    "resources": 100,
    "rlqr": 100,
    "rlqt": 100,
    "mtu": 1500,
}

DESTINATIONS: list[dict[str, Any]] = [
    {
        "mac": MAC1,
        "ipv4": ["10.0.0.11"],
        "ipv6": ["fd00::11"],
        "metrics": {"mdrr": "54M", "mdrt": "54M", "cdrr": "36M", "cdrt": "24M", "latency": "2ms"},
    },
    {
        "mac": MAC2,
        "ipv4": ["10.0.0.12"],
        "ipv4_subnets": ["192.168.12.0/24"],
        "metrics": {"mdrr": "11M", "mdrt": "11M", "cdrr": "5.5M", "cdrt": "2M", "rlqr": 60},
    },
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((V4, 0))
        return int(s.getsockname()[1])


def timers() -> dict[str, Any]:
    return {
        "allow_fast_timers": True,
        "heartbeat_interval_ms": HB_MS,
        "missed_heartbeats": 4,
        "reconnect_interval_ms": 150,
        "shutdown_timeout_ms": 1000,
    }


def modem_config(port: int, **api: Any) -> Any:
    return parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": port},
            "timers": timers(),
            "api": api,
            "modem": {
                "peer_type": "test modem",
                "session_metrics": dict(SESSION_METRICS),
                "destinations": DESTINATIONS,
            },
        }
    )


def router_config(port: int | None, **api: Any) -> Any:
    return parse_router_config(
        {
            "network": {"tcp_port": port or 1},
            "timers": timers(),
            "api": api,
            "router": {
                "peer_type": "test router",
                "discovery": False,
                "static_peers": [f"{V4}:{port}"] if port else [],
            },
        }
    )


async def until(cond: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``cond`` (sync or async) until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Live:
    modem: ModemDaemon
    router: RouterDaemon
    modem_api: ManagementServer
    router_api: ManagementServer
    modem_sock: Path
    router_sock: Path

    def modem_client(self) -> ManagementClient:
        return ManagementClient.unix(self.modem_sock, timeout=5)

    def router_client(self) -> ManagementClient:
        return ManagementClient.unix(self.router_sock, timeout=5)

    def router_macs(self) -> set[str]:
        return {info.mac_str for _, info in self.router.destinations()}


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    port = free_port()
    mcfg = modem_config(port, socket=str(tmp_path / "modem.sock"))
    rcfg = router_config(port, socket=str(tmp_path / "router.sock"))
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    mapi = ManagementServer(modem, mcfg.api)
    rapi = ManagementServer(router, rcfg.api)
    await mapi.start()
    await rapi.start()
    live = Live(modem, router, mapi, rapi, mapi.socket_path, rapi.socket_path)
    try:
        await until(lambda: live.router_macs() == {MAC1, MAC2}, what="destinations at router")
        yield live
    finally:
        await rapi.stop(0.2)
        await mapi.stop(0.2)
        await router.shutdown()
        await modem.shutdown()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def dlepctl(*argv: str, env: dict[str, str] | None = None, timeout: float = 30) -> Result:
    """Run ``python -m dlep.cli.dlepctl ARGV`` (the event loop keeps running)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dlep.cli.dlepctl",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())
