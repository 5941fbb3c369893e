"""WatchEvents streams: an event is converted once for all of them, and
their number is bounded (issue 14, item 10)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest

from dlep.api import convert
from dlep.api._pb import management_pb2 as pb
from dlep.api.client import ApiError, ManagementClient
from dlep.api.server import ManagementServer
from dlep.daemon import ModemDaemon, RouterDaemon, SessionEvent
from dlep.fsm import DestinationUp, Metrics

from .conftest import V4, free_port, modem_config, router_config, until

pytestmark = pytest.mark.timeout(120)


def mac(i: int) -> bytes:
    return b"\x02\x20" + i.to_bytes(4, "big")


class Pair:
    """A modem and a router on loopback; the router's API with ``api`` settings."""

    def __init__(self, tmp_path: Path, **api: Any) -> None:
        self.tmp = tmp_path
        self.api_settings = api

    async def __aenter__(self) -> Pair:
        port = free_port()
        mcfg = modem_config(port, socket=str(self.tmp / "m.sock"))
        rcfg = router_config(port, socket=str(self.tmp / "r.sock"), **self.api_settings)
        self.modem = await ModemDaemon.builder().config(mcfg).spawn()
        self.router = await RouterDaemon.builder().config(rcfg).spawn()
        self.api = ManagementServer(self.router, rcfg.api)
        await self.api.start()
        await until(lambda: len(self.router.destinations()) == 2, what="session up")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.stop(0.2)
        await self.router.shutdown()
        await self.modem.shutdown()

    def client(self) -> ManagementClient:
        return ManagementClient.unix(self.tmp / "r.sock", timeout=10)


def count_conversions(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Calls of convert.event_to_pb, by the engine event's type."""
    seen: Counter[str] = Counter()
    real = convert.event_to_pb

    def spy(ev: Any, *a: Any, **kw: Any) -> pb.Event:
        inner = ev.event if isinstance(ev, SessionEvent) else ev
        seen[type(inner).__name__] += 1
        return real(ev, *a, **kw)

    monkeypatch.setattr(convert, "event_to_pb", spy)
    return seen


async def test_an_event_is_converted_once_for_every_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = count_conversions(monkeypatch)
    n = 12
    async with Pair(tmp_path) as p:
        clients = [p.client() for _ in range(n)]
        got: list[list[pb.Event]] = [[] for _ in range(n)]

        async def read(i: int) -> None:
            async for ev in clients[i].watch():
                if ev.HasField("destination_up"):
                    got[i].append(ev)

        tasks = [asyncio.ensure_future(read(i)) for i in range(n)]
        try:
            await until(lambda: len(p.api.watchers) == n, what="streams open")
            for i in range(5):
                await p.modem.add_destination(mac(i), Metrics(cdrr=10, cdrt=10))
            await until(lambda: all(len(g) == 5 for g in got), what="every stream got them")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in clients:
                await c.close()
        # Five Destination Ups, twelve streams: five conversions.
        assert seen["DestinationUp"] == 5
        assert p.api.events.conversions >= 5


async def test_idle_streams_do_not_multiply_the_work_per_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 streams that never read: each event is still converted once."""
    seen = count_conversions(monkeypatch)
    n = 200
    async with Pair(tmp_path, max_watch_streams=256) as p:
        c = p.client()
        channel = c._chan()
        call = channel.unary_stream(
            "/dlep.v1.Management/WatchEvents",
            request_serializer=pb.WatchEventsRequest.SerializeToString,
            response_deserializer=pb.Event.FromString,
        )
        streams = [call(pb.WatchEventsRequest()) for _ in range(n)]
        try:
            await until(lambda: len(p.api.watchers) == n, timeout=60, what="streams open")
            adds = 50
            for i in range(adds):
                await p.modem.add_destination(mac(i), Metrics(cdrr=10, cdrt=10))
            await until(
                lambda: (
                    sum(1 for _, i in p.router.destinations() if i.mac[:2] == b"\x02\x20") == adds
                ),
                what="router has them",
            )
            await asyncio.sleep(0.3)  # the streams' tasks run what they got
            assert seen["DestinationUp"] <= adds
        finally:
            for s in streams:
                s.cancel()
            await c.close()


async def test_watch_streams_are_bounded(tmp_path: Path) -> None:
    async with Pair(tmp_path, max_watch_streams=3) as p:
        clients = [p.client() for _ in range(4)]
        tasks: list[asyncio.Future[Any]] = []

        async def hold(c: ManagementClient) -> None:
            async for _ in c.watch():
                pass

        try:
            tasks = [asyncio.ensure_future(hold(c)) for c in clients[:3]]
            await until(lambda: len(p.api.watchers) == 3, what="three streams")
            with pytest.raises(ApiError) as ei:
                async for _ in clients[3].watch():
                    pass
            assert ei.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "api.max_watch_streams" in ei.value.details
            assert p.router.bound_refusals.get("max_watch_streams") == 1
            # One closes: a new one is served again.
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)
            await clients[0].close()
            await until(lambda: len(p.api.watchers) == 2, what="one closed")
            tasks.append(asyncio.ensure_future(hold(clients[3])))
            await until(lambda: len(p.api.watchers) == 3, what="served again")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for c in clients:
                await c.close()


def test_event_cache_shares_and_stays_bounded() -> None:
    from dlep.api.server import EventCache
    from dlep.daemon import Lagged
    from dlep.fsm import DestinationInfo

    cache = EventCache(size=4)
    evs = [
        SessionEvent("1", f"{V4}:1", DestinationUp(DestinationInfo(mac(i)), False))
        for i in range(6)
    ]
    first = cache.convert(evs[0])
    assert cache.convert(evs[0]) is first and cache.conversions == 1
    for ev in evs[1:]:
        cache.convert(ev)
    assert cache.conversions == 6
    cache.convert(evs[0])  # pushed out by four newer ones: converted again
    assert cache.conversions == 7
    lag = Lagged(3)
    cache.convert(lag)
    cache.convert(lag)
    assert cache.conversions == 9  # a stream's own notice is never shared
