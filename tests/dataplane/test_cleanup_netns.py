"""Nothing stale, ever: dlep-router killed with SIGKILL leaves its kernel
state behind, and the next start removes it (and a graceful stop removes
everything). The daemons run as the real CLIs inside the router namespace;
the modem and the router talk over that namespace's loopback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import free_port, modem_data, router_data, write_toml
from tests.integration.netns import Daemon

from .netns import DEST_SUBNET, DEST_V4, Link, link

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _wait(cond: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _state(lk: Link) -> tuple[set[str], set[str], str]:
    root = lk.root_qdisc()
    return (
        {r["dst"] for r in lk.routes()},
        {n["dst"] for n in lk.neighbours()},
        f"{root['kind']} {root.get('handle', '')}",
    )


def test_sigkill_then_restart_cleans_up(tmp_path: Path) -> None:
    with link("c") as lk:
        port = free_port()
        mcfg = modem_data(
            port,
            destinations=[
                {
                    "mac": lk.dest_mac,
                    "ipv4": [DEST_V4],
                    "ipv4_subnets": [DEST_SUBNET],
                    "metrics": {"mdrt": "20M", "cdrt": "5M", "latency": "1ms"},
                }
            ],
            api={"enabled": False},
        )
        kernel = {"enabled": True, "interface": lk.rif}
        rcfg = router_data(port, router={"kernel": kernel}, api={"enabled": False})
        mpath = write_toml(tmp_path / "modem.toml", mcfg)
        rpath = write_toml(tmp_path / "router.toml", rcfg)
        modem = Daemon(lk.pair, lk.rns, "modem", mpath, tmp_path / "modem.log")
        router = Daemon(lk.pair, lk.rns, "router", rpath, tmp_path / "router1.log")
        try:
            router.wait_for("shaped to 5000000 bit/s", 20)
            _wait(lambda: len(lk.routes()) == 2, "routes")
            installed = _state(lk)
            assert installed == ({DEST_V4, DEST_SUBNET}, {DEST_V4}, "htb d1e0:")

            router.proc.kill()  # SIGKILL: no chance to clean up
            router.proc.wait(5)
            assert _state(lk) == installed, "SIGKILL must leave the state behind"
            modem.stop()  # the next router finds no modem: nothing new is installed

            router = Daemon(lk.pair, lk.rns, "router", rpath, tmp_path / "router2.log")
            text = router.wait_for("applying DLEP on", 20)
            assert "removed 2 route(s), 1 neighbour(s), 1 qdisc(s) left by an earlier run" in text
            routes, neighbours, root = _state(lk)
            assert routes == set() and neighbours == set()
            assert root == "htb d1e0:"  # a fresh one, with no destination classes
            assert [c["handle"] for c in lk.classes()] == ["d1e0:ffff"]

            assert router.stop() == 0
            assert _state(lk)[2] != "htb d1e0:", "a graceful stop removes the qdisc"
        finally:
            router.stop()
            modem.stop()
