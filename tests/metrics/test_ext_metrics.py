"""Extension values and negotiated extensions in the Prometheus endpoint
(daemons on loopback negotiating multi-hop and latency-range)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dlep.api.metrics import MetricsServer, start_metrics_server
from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.ext.latency_range import LatencyRange
from dlep.ext.multihop import HopCount, hop_count

from .conftest import dest, free_port, modem_data, router_data, samples, scrape, value, wait_until

pytestmark = pytest.mark.timeout(60)

EXTS = ["multi-hop", "latency-range"]
MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")


class ExtPair:
    def __init__(self) -> None:
        self.daemons: list[Any] = []
        self.servers: list[MetricsServer] = []

    async def start(self, router_cap: int = 1000) -> tuple[ModemDaemon, RouterDaemon, str]:
        port = free_port()
        mdata = modem_data(
            port,
            [dest(1, mdrr="54M", cdrr="36M"), dest(2, mdrr="11M", cdrr="5M")],
            metrics={"listen": "127.0.0.1:0"},
        )
        mdata["modem"]["extensions"] = EXTS
        rdata = router_data(port, metrics={"listen": "127.0.0.1:0", "max_destinations": router_cap})
        rdata["router"]["extensions"] = EXTS
        modem = await ModemDaemon.builder().config(parse_modem_config(mdata)).spawn()
        self.daemons.append(modem)
        router = await RouterDaemon.builder().config(parse_router_config(rdata)).spawn()
        self.daemons.append(router)
        await wait_until(lambda: len(router.destinations()) == 2, what="destinations")
        for c in modem._conns.values():
            c.proto.session.update_destination(
                MACS[0],
                extra=[HopCount(3), LatencyRange(minimum=500, maximum=4000)],
                now=asyncio.get_running_loop().time(),
            )
            c.proto.session.update_destination(
                MACS[1], extra=[HopCount(1)], now=asyncio.get_running_loop().time()
            )
            c.proto.flush()

        def arrived() -> bool:
            hops = {i.mac_str: hop_count(i) for _, i in router.destinations()}
            extras = {i.mac_str: len(i.extra) for _, i in router.destinations()}
            return hops == {MACS[0]: 3, MACS[1]: 1} and extras[MACS[1]] == 1

        await wait_until(arrived, what="extension items at the router")
        rs = await start_metrics_server(router)
        assert rs is not None
        self.servers.append(rs)
        return modem, router, rs.url

    async def close(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self.servers))
        for d in reversed(self.daemons):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(d.shutdown(), 5)


@pytest.fixture
async def ext_pair() -> AsyncIterator[ExtPair]:
    p = ExtPair()
    try:
        yield p
    finally:
        await p.close()


async def test_extension_gauges(ext_pair: ExtPair) -> None:
    _, router, url = await ext_pair.start()
    r = await asyncio.to_thread(scrape, url)
    (sess,) = router.sessions()
    lab = {"session": sess.id, "peer": sess.peer}

    # The negotiated set, by name.
    got = samples(r, "dlep_session_extension", **lab)
    assert sorted(s["extension"] for s, _ in got) == ["latency-range", "multi-hop"]
    assert all(v == 1 for _, v in got)

    # Per-destination values, in base units.
    assert value(r, "dlep_destination_hops", mac=MACS[0], **lab) == 3
    assert value(r, "dlep_destination_hops", mac=MACS[1], **lab) == 1
    assert value(r, "dlep_destination_latency_range_min_seconds", mac=MACS[0]) == 0.0005
    assert value(r, "dlep_destination_latency_range_max_seconds", mac=MACS[0]) == 0.004
    assert samples(r, "dlep_destination_latency_range_min_seconds", mac=MACS[1]) == []


async def test_extension_gauges_respect_the_cap(ext_pair: ExtPair) -> None:
    await ext_pair.start(router_cap=1)
    r = await asyncio.to_thread(scrape, ext_pair.servers[0].url)
    assert value(r, "dlep_metrics_destinations_dropped") == 1
    assert [s["mac"] for s, _ in samples(r, "dlep_destination_hops")] == [MACS[0]]
    # Families are there even without samples.
    assert "dlep_destination_latency_range_max_seconds" in r


async def test_no_extensions_no_samples(pair: Any) -> None:
    _, _, _, rs = await pair.start()
    r = await asyncio.to_thread(scrape, rs.url)
    assert samples(r, "dlep_session_extension") == []
    assert samples(r, "dlep_destination_hops") == []
    assert "dlep_destination_hops" in r
