"""A router namespace and a destination namespace joined by a veth pair.

Built on tests/integration/netns.py (same safety rules: everything lives in
namespaces this test run created, named with its pid, removed whatever
happens). The destination side also gets 10.77.1.2/32, an address that only
the routes DLEP installs make reachable from the router, so reaching it
proves the data plane works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.netns import NetnsPair, unavailable, veth_pair

DEST_V4 = "10.77.1.2"
DEST_SUBNET = "10.77.2.0/24"
PROTO = 77


@dataclass
class Link:
    pair: NetnsPair
    dest_mac: str

    @property
    def rns(self) -> str:
        return self.pair.router_ns

    @property
    def dns(self) -> str:
        return self.pair.modem_ns

    @property
    def rif(self) -> str:
        return self.pair.router_if

    def ip(self, *args: str, ns: str | None = None) -> str:
        return subprocess.run(
            ["ip", "-n", ns or self.rns, *args], capture_output=True, text=True, check=True
        ).stdout

    def routes(self) -> list[dict[str, Any]]:
        """Our routes (proto 77) in the router namespace, IPv4 and IPv6."""
        out: list[dict[str, Any]] = []
        for fam in ("-4", "-6"):
            out += json.loads(self.ip("-j", fam, "route", "show", "proto", str(PROTO)) or "[]")
        return out

    def neighbours(self) -> list[dict[str, Any]]:
        """Our neighbour entries (proto 77)."""
        return [
            n
            for n in json.loads(self.ip("-j", "neigh", "show", "dev", self.rif) or "[]")
            if n.get("protocol") in (PROTO, str(PROTO))
        ]

    def tc(self, *args: str) -> str:
        return subprocess.run(
            ["tc", "-n", self.rns, *args], capture_output=True, text=True, check=True
        ).stdout

    def tc_json(self, *args: str) -> list[dict[str, Any]]:
        return json.loads(self.tc("-j", *args) or "[]")  # type: ignore[no-any-return]

    def classes(self) -> list[dict[str, Any]]:
        """Our HTB classes: ``{"handle": "d1e0:1", "rate": bits/s}`` (tc 6.1 prints
        HTB classes as text even with -j)."""
        out: list[dict[str, Any]] = []
        for line in self.tc("class", "show", "dev", self.rif).splitlines():
            m = re.match(r"class htb (\S+) .*?\brate (\d+(?:\.\d+)?)([KMG]?)bit", line)
            if m:
                scale = {"": 1, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}[m[3]]
                out.append({"handle": m[1], "rate": round(float(m[2]) * scale)})
        return out

    def root_qdisc(self) -> dict[str, Any]:
        return next(q for q in self.tc_json("qdisc", "show", "dev", self.rif) if q.get("root"))

    async def aping(self, addr: str = DEST_V4, wait: float = 1.0) -> bool:
        """:meth:`ping` off the event loop (the daemons' heartbeats go on)."""
        return await asyncio.to_thread(self.ping, addr, wait)

    def ping(self, addr: str = DEST_V4, wait: float = 1.0) -> bool:
        res = subprocess.run(
            ["ip", "netns", "exec", self.rns, "ping", "-c", "1", "-W", str(wait), addr],
            capture_output=True,
            timeout=wait + 5,
            check=False,
        )
        return res.returncode == 0


def need_root() -> None:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    for tool in ("tc", "ping"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian package iproute2 / iputils-ping) to inspect")


@contextlib.contextmanager
def link(tag: str) -> Iterator[Link]:
    """The two namespaces (see the module docstring); removed afterwards."""
    need_root()
    with veth_pair(tag) as pair:
        subprocess.run(
            ["ip", "-n", pair.modem_ns, "addr", "add", f"{DEST_V4}/32", "dev", pair.modem_if],
            check=True,
        )
        # The destination answers the router over its connected /24.
        info = json.loads(
            subprocess.run(
                ["ip", "-n", pair.modem_ns, "-j", "link", "show", pair.modem_if],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        yield Link(pair, info[0]["address"])
