"""Fixtures for the metrics and ``dlepctl top`` tests: loopback only.

Daemons run in-process on 127.0.0.1 with fast timers and discovery off; the
Prometheus endpoint binds 127.0.0.1 on a free port. :func:`scrape` must run
in a thread (``await asyncio.to_thread(scrape, url)``): the collector takes
its snapshot on the event loop, which must stay free meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dlep.api.metrics import MetricsServer, start_metrics_server
from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.fsm import DestinationUp, SessionUp

V4 = "127.0.0.1"
HB_MS = 200

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


def dest(n: int, **metrics: Any) -> dict[str, Any]:
    """A configured destination ``02:00:00:00:00:<n>``."""
    return {"mac": f"02:00:00:00:00:{n:02x}", "metrics": metrics}


DESTS = [
    dest(1, mdrr="54M", mdrt="54M", cdrr="36M", cdrt="24M", latency="2ms", rlqr=90, rlqt=85),
    dest(2, mdrr="11M", mdrt="11M", cdrr="5.5M", cdrt="2M", latency=8000, mtu=1400),
]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((V4, 0))
        return int(s.getsockname()[1])


def timers(hb_ms: int = HB_MS) -> dict[str, Any]:
    return {
        "allow_fast_timers": True,
        "heartbeat_interval_ms": hb_ms,
        "missed_heartbeats": 4,
        "reconnect_interval_ms": 150,
        "shutdown_timeout_ms": 1500,
    }


def modem_data(port: int, destinations: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "network": {"listen_addresses": [V4], "tcp_port": port},
        "timers": timers(),
        "modem": {
            "peer_type": "test modem",
            "session_metrics": dict(SESSION_METRICS),
            "destinations": destinations,
        },
    }
    data.update(extra)
    return data


def router_data(port: int, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "network": {"tcp_port": port},
        "timers": timers(),
        "router": {
            "peer_type": "test router",
            "discovery": False,
            "static_peers": [{"address": V4, "port": port}],
        },
    }
    data.update(extra)
    return data


def scrape(url: str) -> dict[str, Any]:
    """GET ``url`` and parse it: ``{family name: Metric}`` (blocking)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        ctype = resp.headers.get("Content-Type", "")
        assert ctype.startswith("text/plain"), ctype
        text = resp.read().decode()
    return {m.name: m for m in text_string_to_metric_families(text)}


def samples(
    fams: dict[str, Any], sample_name: str, **labels: str
) -> list[tuple[dict[str, str], float]]:
    """``(labels, value)`` of every sample called ``sample_name`` whose labels
    include ``labels``."""
    out: list[tuple[dict[str, str], float]] = []
    for fam in fams.values():
        for s in fam.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                out.append((dict(s.labels), s.value))
    return out


def value(fams: dict[str, Any], sample_name: str, **labels: str) -> float:
    """The one sample matching; AssertionError if there is not exactly one."""
    found = samples(fams, sample_name, **labels)
    assert len(found) == 1, f"{sample_name}{labels}: {found}"
    return found[0][1]


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.02)


class Pair:
    """A modem and a router in session, each with a metrics endpoint."""

    def __init__(self) -> None:
        self.modem: ModemDaemon | None = None
        self.router: RouterDaemon | None = None
        self.servers: list[MetricsServer] = []

    async def start(
        self,
        destinations: list[dict[str, Any]] = DESTS,
        *,
        router_cap: int = 1000,
        modem_cap: int = 1000,
    ) -> tuple[ModemDaemon, RouterDaemon, MetricsServer, MetricsServer]:
        port = free_port()
        mcfg = parse_modem_config(
            modem_data(
                port,
                destinations,
                metrics={"listen": f"{V4}:0", "max_destinations": modem_cap},
            )
        )
        rcfg = parse_router_config(
            router_data(port, metrics={"listen": f"{V4}:0", "max_destinations": router_cap})
        )
        self.modem = await ModemDaemon.builder().config(mcfg).spawn()
        self.router = r = await RouterDaemon.builder().config(rcfg).spawn()
        rsub = r.subscribe()
        ups = 0
        session_up = False
        async with asyncio.timeout(10):
            while not session_up or ups < len(destinations):
                ev = await rsub.get()
                inner = getattr(ev, "event", None)
                session_up = session_up or isinstance(inner, SessionUp)
                ups += isinstance(inner, DestinationUp)
        r.unsubscribe(rsub)
        ms = await start_metrics_server(self.modem)
        rs = await start_metrics_server(r)
        assert ms is not None and rs is not None
        self.servers += [ms, rs]
        return self.modem, r, ms, rs

    async def close(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self.servers))
        for d in (self.router, self.modem):
            if d is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(d.shutdown(), 5)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    """Start with ``await pair.start(...)``; everything is stopped afterwards."""
    p = Pair()
    try:
        yield p
    finally:
        await p.close()
