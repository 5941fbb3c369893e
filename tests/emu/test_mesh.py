"""The issue's demonstration with the emulator: ``dlep-emu run
examples/mesh.toml`` (its timeline shortened) with every router applying
DLEP to its node's kernel and babeld on every node.

Checked inside A's namespace: the DLEP neighbours as proto 77 routes and
neighbour entries; the degraded A-C link raises the route metric and lowers
the HTB class, iperf3 across it gets the class rate (±15 %), and babeld moves
A's route to C's loopback onto the two-hop path through B; the break removes
DLEP's route and neighbour entry while C stays reachable through B; the
restored link brings babeld back, and DLEP's route with the first ARP
exchange. Nothing is left afterwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dlep.emu.runner import toml_dumps

from .conftest import free_ports
from .runs import REPO, EmuRun, assert_clean, emu_run, need_root, need_tool

pytestmark = [pytest.mark.root, pytest.mark.slow]

MESH = REPO / "examples" / "mesh.toml"
#: The shortened timeline (seconds after the timeline's start).
DEGRADE, BREAK, RESTORE, DURATION = 15.0, 50.0, 60.0, 82.0
A_TAP, B_TAP, C_TAP = "10.77.0.1", "10.77.0.2", "10.77.0.3"
C_LOOPBACK = "10.90.0.3"
C_MAC = "02:e0:00:00:00:03"


def short_mesh(tmp: Path) -> Path:
    """examples/mesh.toml with the timeline above, the hook's path made
    absolute and free UDP ports."""
    data: dict[str, Any] = tomllib.loads(MESH.read_text())
    data["scenario"]["duration"] = DURATION
    for event, at in zip(data["timeline"], (DEGRADE, BREAK, RESTORE), strict=True):
        event["at"] = at
    # Free ports rather than base_port's 47000..: other runs may hold those.
    for node, port in zip(data["nodes"], free_ports(len(data["nodes"])), strict=True):
        node["address"] = f"127.0.0.1:{port}"
    hook = data["router_config"]["router"]["hooks"]
    hook["command"] = [a.replace("{scenario_dir}", str(MESH.parent)) for a in hook["command"]]
    path = tmp / "mesh.toml"
    path.write_text(toml_dumps(data))
    return path


class Node:
    """Looks at one node's kernel through ``ip``/``tc`` in its namespace."""

    def __init__(self, run: EmuRun, name: str) -> None:
        self.run = run
        self.name = name

    def out(self, *argv: str) -> str:
        res = subprocess.run(
            self.run.ns_argv(self.name, argv), capture_output=True, text=True, timeout=20
        )
        return res.stdout if res.returncode == 0 else ""

    def dlep_route(self, addr: str) -> dict[str, Any] | None:
        routes = json.loads(self.out("ip", "-j", "-4", "route", "show", "proto", "77") or "[]")
        return next((r for r in routes if r.get("dst") == addr), None)

    def dlep_neighbour(self, addr: str) -> dict[str, Any] | None:
        neigh = json.loads(self.out("ip", "-j", "neigh", "show", "proto", "77") or "[]")
        return next((n for n in neigh if n.get("dst") == addr), None)

    def class_rates(self) -> list[int]:
        """Our HTB classes' rates in bit/s, the hold class left out (tc prints
        HTB classes as text even with -j)."""
        out: list[int] = []
        for line in self.out("tc", "class", "show", "dev", "radio0").splitlines():
            m = re.match(r"class htb d1e0:(\w+) .*?\brate (\d+(?:\.\d+)?)([KMG]?)bit", line)
            if m and m[1] != "ffff":
                scale = {"": 1, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}[m[3]]
                out.append(round(float(m[2]) * scale))
        return sorted(out)

    def gateway(self, addr: str) -> str:
        """The next hop the kernel uses for ``addr`` now ("" if none)."""
        got = json.loads(self.out("ip", "-j", "route", "get", addr) or "[]")
        return str(got[0].get("gateway", "")) if got else ""


def wait(cond: Callable[[], Any], timeout: float, what: str, run: EmuRun) -> float:
    """Poll ``cond`` until true; the time it took."""
    start = time.monotonic()
    while not cond():
        if run.proc.poll() is not None:
            raise AssertionError(f"dlep-emu run exited:\n{run.text()[-3000:]}")
        if time.monotonic() - start > timeout:
            raise AssertionError(f"no {what} within {timeout} s:\n{run.text()[-2000:]}")
        time.sleep(0.2)
    return time.monotonic() - start


def until(t0: float, at: float) -> None:
    time.sleep(max(0.0, t0 + at - time.time()))


@pytest.mark.timeout(150)
def test_mesh_scenario_with_kernel_routes_shaping_and_babeld(tmp_path: Path) -> None:
    need_root()
    for tool, package in (("babeld", "babeld"), ("iperf3", "iperf3"), ("tc", "iproute2")):
        need_tool(tool, package)
    need_tool("nsenter", "util-linux")
    ping = need_tool("ping", "iputils-ping")
    figures: dict[str, Any] = {}
    with emu_run(short_mesh(tmp_path), tmp_path / "run") as run:
        info = run.wait_started()
        t0 = info["t0"]
        a = Node(run, "A")

        # 1. DLEP's neighbours in A's kernel; babeld uses the direct link to C.
        wait(lambda: a.dlep_route(B_TAP) and a.dlep_route(C_TAP), 15, "proto 77 routes", run)
        wait(lambda: a.dlep_neighbour(C_TAP), 5, "proto 77 neighbour of C", run)
        assert (a.dlep_neighbour(C_TAP) or {}).get("lladdr") == C_MAC
        wait(lambda: a.gateway(C_LOOPBACK) == C_TAP, 20, "Babel route A->C direct", run)
        assert time.time() < t0 + DEGRADE, "babeld took the whole good phase to converge"
        good = a.dlep_route(C_TAP)
        assert good is not None
        figures["metric_good"] = good["metric"]
        figures["rates_good"] = a.class_rates()
        assert figures["rates_good"] == [18_000_000, 18_000_000]  # 90 % of 20 Mb/s

        # 2. Degraded: metric up, class down, iperf3 at the class rate, Babel via B.
        until(t0, DEGRADE)
        # ETT at 4 Mb/s and 40 ms (docs/dataplane.md): 10 + (3000 + 40000) / 100.
        degraded = 10 + (12_000 * 1_000_000 // 4_000_000 + 40_000) // 100
        wait(
            lambda: (a.dlep_route(C_TAP) or {}).get("metric", 0) >= 0.9 * degraded,
            10,
            f"route metric near {degraded}",
            run,
        )
        wait(lambda: min(a.class_rates()) < 18_000_000, 10, "a slower class", run)
        figures["metric_degraded"] = a.dlep_route(C_TAP)["metric"]  # type: ignore[index]
        rates = a.class_rates()
        figures["rates_degraded"] = rates
        assert rates == [3_600_000, 18_000_000], rates  # C's class at 90 % of 4 Mb/s; B's kept
        server = run.ns_popen("C", ["iperf3", "-s", "-1", "-B", C_TAP, "-p", "5301"])
        try:
            time.sleep(0.5)
            out = run.ns_run(
                "A",
                ["iperf3", "-c", C_TAP, "-p", "5301", "-t", "4", "-O", "1", "-J"],
                timeout=25,
            )
        finally:
            server.kill()
            server.wait(5)
        got = float(json.loads(out)["end"]["sum_received"]["bits_per_second"])
        figures["iperf3"] = got
        assert abs(got - 3_600_000) <= 0.15 * 3_600_000, got
        wait(lambda: a.gateway(C_LOOPBACK) == B_TAP, BREAK - DEGRADE, "Babel via B", run)
        figures["babel_moved_after"] = time.time() - t0 - DEGRADE
        assert time.time() < t0 + BREAK, "babeld moved only after the break"

        # 3. Broken: DLEP's route and neighbour go; C's loopback through B.
        until(t0, BREAK)
        wait(
            lambda: a.dlep_route(C_TAP) is None and a.dlep_neighbour(C_TAP) is None,
            5,
            "route and neighbour of C removed",
            run,
        )
        figures["route_removed_after"] = time.time() - t0 - BREAK
        assert a.dlep_route(B_TAP) is not None  # B is still a neighbour
        assert a.gateway(C_LOOPBACK) == B_TAP
        run.ns_run("A", [ping, "-c", "2", "-W", "2", "-I", "10.90.0.1", C_LOOPBACK])

        # 4. Restored: babeld comes back to the direct link. The emulator forgot
        # C's addresses when C went away; the first ARP exchange brings its IPv4
        # address back to A's modem, and with it DLEP's route.
        until(t0, RESTORE)
        wait(lambda: a.gateway(C_LOOPBACK) == C_TAP, 15, "Babel back on A-C", run)
        figures["babel_back_after"] = time.time() - t0 - RESTORE
        run.ns_run("A", [ping, "-c", "3", "-i", "0.2", "-W", "2", C_TAP])
        wait(lambda: a.dlep_route(C_TAP), 5, "route of C again", run)
        print("mesh figures:", figures)
        run.stop()
        assert_clean(run)
    assert run.proc.returncode == 0, run.text()[-3000:]
