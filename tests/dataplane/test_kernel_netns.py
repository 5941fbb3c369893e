"""The router applies DLEP to the kernel, checked in network namespaces.

The DLEP session runs on loopback (modem and router in this process); the
kernel side is the router namespace of ``netns.link()``: neighbour entries,
routes and HTB classes appear, change and disappear there, and traffic from
the router namespace to the destination namespace proves they work.
Needs root; skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from dlep.config import RouteMetricConfig
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.dataplane.metric import route_metric
from dlep.dataplane.router import RouterDataplane
from dlep.ext.pause import pause, restart
from dlep.fsm import Metrics
from tests.integration.conftest import free_port, modem_config, router_config

from .conftest import until
from .netns import DEST_SUBNET, DEST_V4, Link, link

pytestmark = pytest.mark.root


@dataclass
class Setup:
    link: Link
    modem: ModemDaemon
    router: RouterDaemon
    dp: RouterDataplane

    @property
    def mac(self) -> str:
        return self.link.dest_mac


def _dest(mac: str, cdrt: str = "4M", latency: str = "1ms") -> dict[str, Any]:
    return {
        "mac": mac,
        "ipv4": [DEST_V4],
        "ipv4_subnets": [DEST_SUBNET],
        "metrics": {"mdrt": "20M", "cdrt": cdrt, "latency": latency, "rlqt": 100},
    }


@pytest.fixture
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    exts = getattr(request, "param", [])
    with link("k") as lk:
        port = free_port()
        mcfg = modem_config(port, destinations=[_dest(lk.dest_mac)], modem={"extensions": exts})
        rcfg = router_config(
            port,
            router={
                "extensions": exts,
                "kernel": {"enabled": True, "interface": lk.rif, "netns": lk.rns},
            },
        )
        modem = await ModemDaemon.builder().config(mcfg).spawn()
        router = await RouterDaemon.builder().config(rcfg).spawn()
        dp = RouterDataplane(router, rcfg.router.kernel)
        try:
            await dp.start()
            s = Setup(lk, modem, router, dp)
            await until(lambda: len(lk.routes()) == 2, what="routes installed")
            yield s
        finally:
            await dp.stop()
            await router.shutdown()
            await modem.shutdown()


def _metric(**m: int) -> int:
    return route_metric(RouteMetricConfig(), Metrics(**m))


def dest_classes(lk: Link) -> list[dict[str, Any]]:
    """The per-destination classes (not the hold class)."""
    return [c for c in lk.classes() if c["handle"] != "d1e0:ffff"]


def _rate(cls: dict[str, Any]) -> int:
    return int(cls["rate"])


async def test_destination_lifecycle_in_the_kernel(setup: Setup) -> None:
    lk = setup.link
    routes = {r["dst"]: r for r in lk.routes()}
    want = _metric(cdrt=4_000_000, latency=1000, rlqt=100)
    assert routes[DEST_V4]["metric"] == want and routes[DEST_V4]["dev"] == lk.rif
    assert routes[DEST_SUBNET]["gateway"] == DEST_V4
    [neigh] = lk.neighbours()
    assert neigh["dst"] == DEST_V4 and neigh["lladdr"] == setup.mac
    assert "PERMANENT" in neigh["state"]
    root = lk.root_qdisc()
    assert root["kind"] == "htb" and root["handle"] == "d1e0:"
    [cls] = dest_classes(lk)
    assert _rate(cls) == 4_000_000
    # The route and the neighbour are what makes the destination reachable.
    assert await lk.aping()

    # Destination Update: a degraded link raises the metric and lowers the rate.
    await setup.modem.update_destination(setup.mac, Metrics(cdrt=1_000_000, latency=5000))
    worse = _metric(cdrt=1_000_000, latency=5000, rlqt=100)
    await until(lambda: {r["metric"] for r in lk.routes()} == {worse}, what="new metric")
    await until(lambda: _rate(dest_classes(lk)[0]) == 1_000_000, what="new rate")
    # A small wobble (within the 10 % hysteresis) leaves the routes alone.
    await setup.modem.update_destination(setup.mac, Metrics(latency=5100))
    await setup.dp.settled()
    await asyncio.sleep(0.3)
    assert {r["metric"] for r in lk.routes()} == {worse}

    # Addresses change: the routes follow.
    await setup.modem.update_destination(setup.mac, add=["10.77.3.0/24"], drop=[DEST_SUBNET])
    await until(
        lambda: {r["dst"] for r in lk.routes()} == {DEST_V4, "10.77.3.0/24"}, what="new subnet"
    )

    # Destination Down: everything of it goes (our root qdisc stays).
    await setup.modem.drop_destination(setup.mac)
    await until(
        lambda: not lk.routes() and not lk.neighbours() and not dest_classes(lk), what="gone"
    )
    assert not await lk.aping(wait=0.5)
    assert lk.root_qdisc()["handle"] == "d1e0:"


async def test_session_loss_removes_everything(setup: Setup) -> None:
    lk = setup.link
    await setup.modem.shutdown()
    await until(
        lambda: not lk.routes() and not lk.neighbours() and not dest_classes(lk), what="gone"
    )


async def test_stop_removes_everything_and_leaves_others_alone(setup: Setup) -> None:
    lk = setup.link
    # Someone else's route and neighbour entry on the same interface.
    lk.ip("route", "add", "10.88.0.0/16", "via", "10.199.0.2", "proto", "static")
    lk.ip("neigh", "add", "10.199.0.50", "lladdr", "02:aa:00:00:00:50", "dev", lk.rif)
    await setup.dp.stop()
    assert lk.routes() == [] and lk.neighbours() == []
    assert lk.root_qdisc()["kind"] != "htb"
    assert "10.88.0.0/16" in lk.ip("route", "show", "proto", "static")
    assert "10.199.0.50" in lk.ip("neigh", "show", "dev", lk.rif)


@pytest.mark.parametrize("setup", [["pause"]], indirect=True)
async def test_pause_stops_and_restart_resumes(setup: Setup) -> None:
    lk = setup.link

    def held() -> bool:
        return "flowid d1e0:ffff" in lk.tc("filter", "show", "dev", lk.rif)

    assert await lk.aping() and not held()
    await setup.modem.update_destination(setup.mac, extra=[pause()])
    await until(held, what="pause filter to the hold class")
    # Frames to the destination now wait in the hold class (64 bit/s, a
    # one-octet bucket): at most the very first one it ever saw gets out.
    assert sum([await lk.aping(wait=0.5) for _ in range(4)]) <= 1
    assert "d1e0:ffff" in {c["handle"] for c in lk.classes()}
    # The destination's own class keeps its rate, so a Restart is immediate.
    ours = [c for c in lk.classes() if c["handle"] != "d1e0:ffff"]
    assert [c["rate"] for c in ours] == [4_000_000]
    await setup.modem.update_destination(setup.mac, extra=[restart()])
    await until(lambda: not held(), what="pause filter gone")
    assert await lk.aping()
    # The route stays through a pause: routing daemons see no flap.
    assert {r["dst"] for r in lk.routes()} == {DEST_V4, DEST_SUBNET}


def _iperf3(lk: Link, seconds: int = 4) -> float:
    """Received bits/s of a TCP iperf3 run from the router namespace to the
    destination (server in the destination namespace; both bounded)."""
    port = "5299"
    server = subprocess.Popen(
        ["ip", "netns", "exec", lk.dns, "iperf3", "-s", "-1", "-B", DEST_V4, "-p", port],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            probe = subprocess.run(
                ["ip", "netns", "exec", lk.dns, "ss", "-ltn", f"sport = :{port}"],
                capture_output=True,
                text=True,
                check=False,
            )
            if f":{port}" in probe.stdout:
                break
            subprocess.run(["sleep", "0.1"], check=False)
        res = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                lk.rns,
                "iperf3",
                "-c",
                DEST_V4,
                "-p",
                port,
                "-t",
                str(seconds),
                "-O",
                "1",
                "-J",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 20,
            check=True,
        )
    finally:
        server.kill()
        server.wait(5)
    return float(json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"])


def _within(measured: float, target: float, tol: float = 0.15) -> bool:
    return abs(measured - target) <= tol * target


@pytest.mark.slow
async def test_iperf3_sees_the_shaped_rate(setup: Setup) -> None:
    import shutil

    if shutil.which("iperf3") is None or shutil.which("ss") is None:
        pytest.skip("needs iperf3 (Debian package iperf3) and ss")
    lk = setup.link
    # HTB counts Ethernet frames, iperf3 counts TCP payload: 1448 of 1514
    # octets per full frame, 4.4 % less, well inside the ±15 % of the issue.
    got = await asyncio.to_thread(_iperf3, lk)
    print(f"iperf3 at CDRT 4 Mb/s: {got / 1e6:.3f} Mb/s")
    assert _within(got, 4_000_000), f"shaped to 4 Mb/s, iperf3 measured {got / 1e6:.2f} Mb/s"
    await setup.modem.update_destination(setup.mac, Metrics(cdrt=2_000_000))
    await until(lambda: _rate(dest_classes(lk)[0]) == 2_000_000, what="new rate")
    got = await asyncio.to_thread(_iperf3, lk)
    print(f"iperf3 at CDRT 2 Mb/s: {got / 1e6:.3f} Mb/s")
    assert _within(got, 2_000_000), f"shaped to 2 Mb/s, iperf3 measured {got / 1e6:.2f} Mb/s"


async def test_ipv6_addresses_and_subnets(setup: Setup) -> None:
    lk = setup.link
    await setup.modem.update_destination(setup.mac, add=["fd77:1::2", "fd77:2::/64"])
    await until(
        lambda: {r["dst"] for r in lk.routes()} >= {"fd77:1::2", "fd77:2::/64"}, what="v6 routes"
    )
    v6 = {r["dst"]: r for r in lk.routes() if ":" in r["dst"]}
    assert "gateway" not in v6["fd77:1::2"] and v6["fd77:2::/64"]["gateway"] == "fd77:1::2"
    assert v6["fd77:1::2"]["metric"] == v6["fd77:2::/64"]["metric"]
    assert {n["dst"] for n in lk.neighbours()} == {DEST_V4, "fd77:1::2"}
    await setup.modem.update_destination(setup.mac, drop=["fd77:1::2"])
    # Without an IPv6 address of its own the subnet has no gateway: both go.
    await until(lambda: all(":" not in r["dst"] for r in lk.routes()), what="v6 routes gone")
    assert {n["dst"] for n in lk.neighbours()} == {DEST_V4}
