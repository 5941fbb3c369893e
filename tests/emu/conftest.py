"""Helpers for the emulator tests: free loopback ports, scenarios as dicts,
in-process nodes with their modems and routers (library API, loopback only)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.emu.configs import modem_config_data, router_config_data
from dlep.emu.node import EmuNode
from dlep.emu.scenario import Topology, parse_scenario


def free_ports(n: int) -> list[int]:
    """``n`` ports free for both UDP and TCP on 127.0.0.1."""
    out: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(out) < n:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                t.bind(("127.0.0.1", port))
            except OSError:
                u.close()
                t.close()
                continue
            held += [u, t]
            out.append(port)
    finally:
        for s in held:
            s.close()
    return out


def scenario(nodes: list[str], links: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A scenario dict with every node on a free loopback port."""
    ports = free_ports(len(nodes))
    data: dict[str, Any] = {
        "emulator": {"keepalive_interval_ms": 100, "dead_intervals": 5},
        "dlep": {"update_interval_ms": 500},
        "nodes": [
            {"name": n, "address": f"127.0.0.1:{p}"} for n, p in zip(nodes, ports, strict=True)
        ],
        "links": links,
    }
    data.update(extra)
    return data


@dataclass
class Rig:
    """Nodes, their modems and routers, all in this process."""

    topo: Topology
    nodes: list[EmuNode] = field(default_factory=list)
    modems: list[ModemDaemon] = field(default_factory=list)
    routers: list[RouterDaemon] = field(default_factory=list)
    socks: list[socket.socket] = field(default_factory=list)

    def router_view(self, i: int) -> dict[str, Any]:
        """MAC -> metrics dict at router ``i``."""
        return {info.mac_str: info for _sid, info in self.routers[i].destinations()}

    async def wait(self, cond: Any, timeout: float, what: str) -> float:
        """Poll ``cond()`` every 20 ms; returns the loop time it became true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)
        return loop.time()


@contextlib.asynccontextmanager
async def rig(data: dict[str, Any], tmp: Path, *, routers: bool = True) -> AsyncIterator[Rig]:
    """Start every node of ``data`` with a modem (and a router) on loopback."""
    topo = parse_scenario(data).topology()
    r = Rig(topo)
    try:
        for n in topo.nodes:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            r.socks.append(s)
            s.bind(n.address)
            node = EmuNode(topo, n.index)
            await node.start(s)
            r.nodes.append(node)
            mcfg = parse_modem_config(modem_config_data(topo, n, run_dir=tmp, radios_only=True))
            modem = await (
                ModemDaemon.builder().config(mcfg).link_characteristics_handler(node.link_request)
            ).spawn()
            r.modems.append(modem)
            node.attach_modem(modem)
            if routers:
                rcfg = parse_router_config(
                    router_config_data(topo, n, run_dir=tmp, radios_only=True)
                )
                r.routers.append(await RouterDaemon.builder().config(rcfg).spawn())
        yield r
    finally:
        for d in [*r.routers, *r.modems]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(d.shutdown(), 5)
        for node in r.nodes:
            await node.stop()
        for s in r.socks:
            s.close()


@pytest.fixture
def short_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary directory (its path is not used for sockets here)."""
    return tmp_path_factory.mktemp("emu")


def free_base_port(n: int) -> int:
    """A ``[scenario] base_port`` whose ``n`` ports from it are free for UDP
    on 127.0.0.1: the default 47000.. collides with any other run on the host."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000)
        held: list[socket.socket] = []
        try:
            for port in range(base, base + n):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(u)
                u.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free UDP ports on 127.0.0.1")
