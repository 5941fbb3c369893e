"""Extension values (dlep.ext.display) in the API and in dlepctl, against
daemons on loopback that negotiate multi-hop and latency-range."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest

from dlep.api import convert
from dlep.api.server import ManagementServer
from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.ext.display import (
    ExtensionValue,
    compact,
    describe,
    extension_name,
    latency_text,
    register_describer,
)
from dlep.ext.latency_range import LatencyRange
from dlep.ext.link_id import LinkIdentifier
from dlep.ext.multihop import HopCount, hop_count
from dlep.ext.pause import pause
from dlep.fsm import DestinationInfo
from dlep.wire import DataItem, parse_mac

from .conftest import V4, dlepctl, free_port, timers, until

MAC = "02:00:00:00:00:31"


# ---------------------------------------------------------------------------
# Rendering (no daemons)
# ---------------------------------------------------------------------------


def test_describe_builtin_items() -> None:
    assert describe(HopCount(3)).as_tuple() == ("hop_count", "3", 3.0)
    assert describe(HopCount(255)).text == ">1"
    assert describe(HopCount(4, potentially_direct=True)).text == "4 (P)"
    lr = describe(LatencyRange(minimum=500, maximum=4000))
    assert lr.as_tuple() == ("latency_range", "0.5-4 ms", 4000.0)
    assert lr.item_type == LatencyRange.TYPE
    assert {g.suffix: g.value for g in lr.gauges} == {
        "latency_range_min_seconds": 0.0005,
        "latency_range_max_seconds": 0.004,
    }
    assert describe(LinkIdentifier(b"\x00\x00\x00\x07")).as_tuple() == (
        "link_identifier",
        "00:00:00:07",
        None,
    )
    assert describe(pause(255)).as_tuple() == ("pause", "all", None)
    assert latency_text(1, 2_000_000) == "1 us-2 s"


@dataclass(frozen=True, slots=True)
class _Private(DataItem):
    TYPE: ClassVar[int] = 65500
    NAME: ClassVar[str] = "PrivateThing"
    x: int

    def encode_value(self) -> bytes:
        return bytes((self.x,))

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        return cls(data[0])


@dataclass(frozen=True, slots=True)
class _Other(_Private):
    TYPE: ClassVar[int] = 65501


def test_unknown_items_fall_back_to_repr_and_describers_register() -> None:
    v = describe(_Private(5))
    assert v.as_tuple() == ("private_thing", repr(_Private(5)), None)
    assert v.item_type == 65500
    register_describer(_Private, lambda i: ExtensionValue("private", f"x={i.x}", float(i.x)))
    assert describe(_Private(5)).as_tuple() == ("private", "x=5", 5.0)
    # Subclasses inherit the describer, with their own type code.
    assert describe(_Other(6)).item_type == 65501


def test_compact_and_names() -> None:
    assert compact([("hop_count", "3"), ("latency_range", "0.5-4 ms")]) == "hops=3 lat=0.5-4ms"
    assert compact([("private", "x=5")]) == "private=x=5"
    assert extension_name(1) == "multi-hop" and extension_name(4) == "latency-range"
    assert extension_name(65530) == "65530"
    assert extension_name(65530, {65530: "mine"}) == "mine"


def test_destination_to_pb_carries_extension_values() -> None:
    info = DestinationInfo(
        parse_mac(MAC), extra=(HopCount(3), LatencyRange(minimum=500, maximum=4000))
    )
    d = convert.to_dict(convert.destination_to_pb("1", info))
    assert d["extensions"] == [
        {"name": "hop_count", "text": "3", "value": 3.0, "item_type": 21},
        {"name": "latency_range", "text": "0.5-4 ms", "value": 4000.0, "item_type": 28},
    ]
    link = convert.to_dict(
        convert.destination_to_pb(
            "1", DestinationInfo(parse_mac(MAC), extra=(LinkIdentifier(b"\x01\x02\x03\x04"),))
        )
    )
    assert link["extensions"] == [
        {"name": "link_identifier", "text": "01:02:03:04", "item_type": LinkIdentifier.TYPE}
    ]


# ---------------------------------------------------------------------------
# Live daemons
# ---------------------------------------------------------------------------


@dataclass
class ExtLive:
    modem: ModemDaemon
    router: RouterDaemon
    router_sock: Path
    modem_sock: Path


def _configs(port: int, tmp: Path) -> tuple[Any, Any]:
    exts = ["multi-hop", "latency-range"]
    modem = parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": port},
            "timers": timers(),
            "api": {"socket": str(tmp / "modem.sock")},
            "modem": {
                "peer_type": "ext modem",
                "session_metrics": {"mdrr": "20M", "mdrt": "20M", "latency": "1ms"},
                "destinations": [{"mac": MAC, "metrics": {"mdrr": "20M", "cdrr": "10M"}}],
                "extensions": exts,
            },
        }
    )
    router = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers(),
            "api": {"socket": str(tmp / "router.sock")},
            "router": {
                "peer_type": "ext router",
                "discovery": False,
                "static_peers": [f"{V4}:{port}"],
                "extensions": exts,
            },
        }
    )
    return router, modem


def send_extension_items(modem: ModemDaemon, mac: str, items: list[DataItem]) -> None:
    """Destination Update with ``items`` from every modem session (the engine API)."""
    for c in modem._conns.values():
        c.proto.session.update_destination(mac, extra=items, now=asyncio.get_running_loop().time())
        c.proto.flush()


@pytest.fixture
async def ext_live(tmp_path: Path) -> AsyncIterator[ExtLive]:
    rcfg, mcfg = _configs(free_port(), tmp_path)
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    mapi = ManagementServer(modem, mcfg.api)
    rapi = ManagementServer(router, rcfg.api)
    await mapi.start()
    await rapi.start()
    try:
        await until(lambda: len(router.destinations()) == 1, what="destination at the router")
        send_extension_items(modem, MAC, [HopCount(3), LatencyRange(minimum=500, maximum=4000)])

        def arrived() -> bool:
            (_, info) = router.destinations()[0]
            return hop_count(info) == 3 and len(info.extra) == 2

        await until(arrived, what="hop count at the router")
        yield ExtLive(modem, router, rapi.socket_path, mapi.socket_path)
    finally:
        await rapi.stop(0.2)
        await mapi.stop(0.2)
        await router.shutdown()
        await modem.shutdown()


@pytest.mark.timeout(60)
async def test_dlepctl_destinations_show_extension_values(ext_live: ExtLive) -> None:
    sock = ("--socket", str(ext_live.router_sock))
    table, js = await asyncio.gather(
        dlepctl(*sock, "destinations"), dlepctl(*sock, "destinations", "--json")
    )
    assert table.code == 0, table
    header, _rule, row = table.out.splitlines()[:3]
    assert "EXT" in header.split()
    assert MAC in row and "hops=3 lat=0.5-4ms" in row, row
    assert js.code == 0, js
    (d,) = js.json()
    assert d["mac"] == MAC
    assert d["extensions"] == [
        {"name": "hop_count", "text": "3", "value": 3.0, "item_type": 21},
        {"name": "latency_range", "text": "0.5-4 ms", "value": 4000.0, "item_type": 28},
    ]


@pytest.mark.timeout(60)
async def test_dlepctl_sessions_name_the_negotiated_extensions(ext_live: ExtLive) -> None:
    for sock in (ext_live.router_sock, ext_live.modem_sock):
        table, js = await asyncio.gather(
            dlepctl("--socket", str(sock), "sessions"),
            dlepctl("--socket", str(sock), "sessions", "--json"),
        )
        assert table.code == 0, table
        assert "multi-hop,latency-range" in table.out
        (s,) = js.json()
        assert s["extensions"] == [1, 4]
        assert s["extension_names"] == ["multi-hop", "latency-range"]


@pytest.mark.timeout(60)
async def test_updates_replace_the_values(ext_live: ExtLive) -> None:
    send_extension_items(ext_live.modem, MAC, [HopCount(255)])

    def updated() -> bool:
        return hop_count(ext_live.router.destinations()[0][1]) == 255

    await until(updated, what="new hop count")
    res = await dlepctl("--socket", str(ext_live.router_sock), "destinations")
    assert res.code == 0, res
    assert "hops=>1" in res.out and "lat=0.5-4ms" in res.out
