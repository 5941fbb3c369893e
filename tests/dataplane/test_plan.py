"""plan_for: what the kernel should hold for one destination (no kernel)."""

from __future__ import annotations

import ipaddress

from dlep.config import KernelConfig
from dlep.dataplane.kernel import plan_for
from dlep.dataplane.table import DestState
from dlep.ext.link_id import LinkIdentifier
from dlep.fsm import DestKey, Metrics

MAC = bytes.fromhex("020000000001")
LID = LinkIdentifier(bytes.fromhex("00000007"))
A = ipaddress.ip_address
N = ipaddress.ip_network


def gw() -> DestState:
    return DestState(
        key=DestKey(MAC),
        session_id="1",
        metrics=Metrics(cdrt=10_000_000, latency=1000),
        ipv4=frozenset({A("10.0.0.1"), A("10.0.0.9")}),  # type: ignore[arg-type]
        ipv4_subnets=frozenset({N("192.168.1.0/24")}),  # type: ignore[arg-type]
        ipv6_subnets=frozenset({N("fd00:1::/64")}),  # type: ignore[arg-type]
    )


def test_layer2_destination() -> None:
    p = plan_for(gw(), KernelConfig(), {})
    assert p.neighbours == {A("10.0.0.1"), A("10.0.0.9")}
    # Subnets go via the lowest address of their family; no IPv6 address: no route.
    assert p.routes == {
        (N("10.0.0.1/32"), None),
        (N("10.0.0.9/32"), None),
        (N("192.168.1.0/24"), A("10.0.0.1")),
    }
    assert p.metric == 32 and p.rate == 10_000_000 and not p.paused


def test_layer3_destination_routes_via_its_gateway() -> None:
    l3 = DestState(
        key=DestKey(MAC, (LID,)),
        session_id="1",
        metrics=Metrics(cdrt=2_000_000),
        ipv4=frozenset({A("172.16.0.7")}),  # type: ignore[arg-type]
        ipv4_subnets=frozenset({N("172.16.7.0/24")}),  # type: ignore[arg-type]
        hops=3,
    )
    p = plan_for(l3, KernelConfig(), {MAC: gw()})
    assert p.neighbours == set() and p.rate is None  # not on our link; shares the gateway's class
    assert p.routes == {(N("172.16.0.7/32"), A("10.0.0.1")), (N("172.16.7.0/24"), A("10.0.0.1"))}
    # Unknown gateway: nothing to route through.
    assert plan_for(l3, KernelConfig(), {}).routes == set()


def test_switches_and_pause() -> None:
    cfg = KernelConfig(neighbours=False, routes=False, shaping=True, rate_percent=50)
    from dataclasses import replace

    p = plan_for(replace(gw(), paused=True), cfg, {})
    assert p.neighbours == set() and p.routes == set()
    assert p.rate == 5_000_000 and p.paused
    assert plan_for(gw(), KernelConfig(shaping=False), {}).rate is None
