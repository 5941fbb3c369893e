"""External feeds: record checks (dlep.daemon.changes), all-or-nothing batches
(ModemDaemon.apply_destination_changes), JSON lines (stream and loopback UDP),
the streaming gRPC call, and extension values through the API. Loopback and
Unix sockets only."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dlep.api._pb import management_pb2 as pb
from dlep.api.client import ApiError, ManagementClient
from dlep.config import parse_modem_config
from dlep.daemon import (
    DaemonArgumentError,
    DestinationChange,
    ModemDaemon,
    RouterDaemon,
    parse_change,
)
from dlep.dataplane.feed import JsonLinesFeed
from dlep.ext.latency_range import LatencyRange
from dlep.ext.multihop import HopCount
from dlep.ext.values import parse_extension_values
from dlep.fsm import DestKey, Metrics
from tests.integration.conftest import free_port, modem_data, router_config

from .conftest import EXTS, Pair, until

M5 = "02:00:00:00:00:05"
M6 = "02:00:00:00:00:06"


# -- parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"mac": M5}, "record.op: expected one of"),
        ({"op": "up"}, "record.mac: required"),
        ({"op": "up", "mac": "02:00"}, "record.mac: '02:00' is not a MAC address"),
        ({"op": "up", "mac": M5, "metrics": {"cdrt": "fast"}}, "record.metrics.cdrt:"),
        ({"op": "up", "mac": M5, "metrics": {"speed": 1}}, "record.metrics.speed: unknown metric"),
        (
            {"op": "up", "mac": M5, "metrics": {"cdrt": "20M", "mdrt": "10M"}},
            "record.metrics.cdrt: 20000000 exceeds",
        ),
        ({"op": "up", "mac": M5, "addresses": ["10.0.0.300"]}, "record.addresses[0]: '10.0.0.300'"),
        ({"op": "up", "mac": M5, "add": ["10.0.0.1"]}, "record.add: not a key of an 'up' record"),
        ({"op": "update", "mac": M5}, "record: nothing to update"),
        ({"op": "up", "mac": M5, "ext": {"pause": [255]}}, "record.ext: pause/restart go in"),
        ({"op": "up", "mac": M5, "ext": {"hop_count": 0}}, "record.ext.hop_count: 0 out of range"),
        ({"op": "up", "mac": M5, "ext": {"colour": 1}}, "record.ext.colour: unknown extension"),
        (
            {"op": "up", "mac": M5, "ext": {"latency_range": [5000, 4000]}},
            "record.ext.latency_range: minimum 5000 exceeds maximum 4000",
        ),
        ({"op": "session", "ext": {"link_id": "01"}}, "record.ext.link_id: names a destination"),
        ("not an object", "record: expected an object"),
    ],
)
def test_record_errors_name_the_key(record: Any, error: str) -> None:
    with pytest.raises(DaemonArgumentError) as exc:
        parse_change(record)
    assert str(exc.value).startswith(error), str(exc.value)


def test_record_accepts_units_and_extension_values() -> None:
    rec = parse_change(
        {
            "op": "up",
            "mac": M5,
            "id": 7,
            "metrics": {"cdrt": "20M", "mdrt": "54 Mbps", "latency": "2ms", "rlqt": "90%"},
            "addresses": ["10.0.0.5", "192.168.5.0/24"],
            "ext": {"hop_count": 2, "latency_range": [500, 4000], "link_id": "00:00:00:09"},
        }
    )
    assert rec.metrics.cdrt == 20_000_000 and rec.metrics.latency == 2000
    assert rec.metrics.rlqt == 90 and rec.id == "7"
    items = rec.items()
    assert [i.NAME for i in items] == ["LinkIdentifier", "HopCount", "LatencyRange"]
    assert rec.key == DestKey(bytes.fromhex("020000000005"), (items[0],))


def test_extension_values_parse() -> None:
    ext = parse_extension_values({"pause": 255, "restart": [0, 1]})
    assert ext.pause == (255,) and ext.restart == (0, 1)
    with pytest.raises(ValueError, match=r"ext.restart: queue 1 is also in ext.pause"):
        parse_extension_values({"pause": [1], "restart": [1]})
    with pytest.raises(ValueError, match=r"ext.potentially_direct: needs hop_count"):
        parse_extension_values({"potentially_direct": True})


# -- batches against a live modem --------------------------------------------------


async def test_batch_all_or_nothing(pair: Pair) -> None:
    apply = pair.modem.apply_destination_changes
    bad = [
        {"op": "up", "mac": M5, "id": "a", "metrics": {"cdrt": "10M"}, "addresses": ["10.1.0.5"]},
        {"op": "up", "mac": M6, "id": "b", "addresses": ["10.1.0.5"]},  # address taken by M5
        {"op": "update", "mac": "02:00:00:00:00:77", "metrics": {"cdrt": 1}},  # unknown
    ]
    results = await apply(bad)
    assert [r.ok for r in results] == [False, False, False]
    assert results[0].error == "not applied: another record of the batch has errors"
    assert results[0].id == "a"
    assert results[1].error == (
        "records[1].addresses: 10.1.0.5 already belongs to destination 02:00:00:00:00:05"
    )
    assert results[2].error == "records[2].mac: no destination 02:00:00:00:00:77"
    await asyncio.sleep(0.2)
    assert pair.modem.known_destinations() == {}
    assert pair.router_dests() == {}

    good = [
        {"op": "up", "mac": M5, "metrics": {"cdrt": "10M"}, "addresses": ["10.1.0.5"]},
        {"op": "update", "mac": M5, "metrics": {"cdrt": "5M"}, "add": ["10.1.0.55"]},
        {"op": "up", "mac": M6, "addresses": ["10.1.0.6"], "ext": {"hop_count": 3}},
    ]
    results = await apply(good)
    assert all(r.ok for r in results), results
    await until(lambda: set(pair.router_dests()) == {M5, M6}, what="both at the router")
    await until(lambda: pair.router_dests()[M5].metrics.cdrt == 5_000_000, what="update")
    d5, d6 = pair.router_dests()[M5], pair.router_dests()[M6]
    assert {str(a) for a in d5.ipv4} == {"10.1.0.5", "10.1.0.55"}
    assert HopCount(3) in d6.extra

    # A destination stays in the session until the router answers its
    # Destination Down, so down and up again in one batch would be
    # half-applied: refused whole, with the reason.
    results = await apply([{"op": "down", "mac": M6}, {"op": "up", "mac": M6}])
    assert [r.ok for r in results] == [False, False]
    assert results[1].error.startswith(
        "records[1].mac: destination 02:00:00:00:00:06 is still in session 1: its "
        "Destination Down is not answered yet"
    )
    assert M6 in {k.mac_str for k in pair.modem.known_destinations()}
    assert all(r.ok for r in await apply([{"op": "down", "mac": M6}]))
    await until(lambda: M6 not in pair.router_dests(), what="down answered")
    await until(
        lambda: all(info.mac_str != M6 for _, info in pair.modem.destinations()),
        what="down answered",
    )
    assert all(r.ok for r in await apply([{"op": "up", "mac": M6}]))
    # ... but an update that breaks CDR <= MDR once merged is refused.
    [r] = await apply([{"op": "update", "mac": M5, "metrics": {"mdrt": "1M"}}])
    assert not r.ok and r.error.startswith("records[0].metrics.cdrt: 5000000 exceeds metrics.mdrt")
    # Session-wide metrics are checked against every destination too, as
    # the batch's earlier records leave them.
    results = await apply(
        [
            {"op": "session", "metrics": {"cdrt": "1M"}},
            {"op": "update", "mac": M5, "metrics": {"cdrt": "5M"}},
            {"op": "session", "metrics": {"mdrt": "4M"}},
        ]
    )
    assert results[2].error == (
        "records[2].metrics.cdrt: 5000000 exceeds metrics.mdrt 4000000 (RFC 8175 §13.14-13.15) "
        "(for destination 02:00:00:00:00:05; change it first)"
    )
    assert pair.modem.session_metrics.cdrt == 50_000_000  # nothing applied


async def test_batch_of_python_changes_and_max_batch(pair: Pair) -> None:
    key = DestKey(bytes.fromhex("020000000005"))
    changes = [
        DestinationChange("up", key, Metrics(cdrt=3_000_000), addresses=("10.4.0.5",), id="u"),
        DestinationChange("update", key, Metrics(cdrt=2_000_000)),
    ]
    results = await pair.modem.apply_destination_changes(changes, max_batch=1)
    assert [r.ok for r in results] == [False, False]
    assert results[0].error == "batch of 2 records exceeds max_batch 1" and results[0].id == "u"
    assert pair.modem.known_destinations() == {}
    results = await pair.modem.apply_destination_changes(changes)
    assert [r.ok for r in results] == [True, True]
    assert pair.modem.known_destinations()[key].cdrt == 2_000_000
    with pytest.raises(DaemonArgumentError, match="mac: a 'session' change takes no mac"):
        DestinationChange("session", key)


async def test_extension_values_reach_the_router(pair: Pair) -> None:
    apply = pair.modem.apply_destination_changes
    results = await apply([{"op": "up", "mac": M5, "ext": {"latency_range": [1, 2]}}])
    assert results[0].ok
    await until(lambda: M5 in pair.router_dests())
    assert LatencyRange(1, 2) in pair.router_dests()[M5].extra


async def test_undeclared_unoffered_and_unnegotiated_are_refused() -> None:
    """A modem offering Latency Range and Multi-Hop to a router that only
    knows Multi-Hop; the modem declares only CDRT and latency."""
    port = free_port()
    data = modem_data(port, destinations=[], modem={"extensions": ["multi-hop", "latency-range"]})
    # The metrics RFC 8175 §12.6 requires, no link quality.
    rates = {"mdrr": "10M", "mdrt": "10M", "cdrr": "1M", "cdrt": "1M"}
    data["modem"]["session_metrics"] = {**rates, "latency": 1000}
    mcfg = parse_modem_config(data)
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = (
        await RouterDaemon.builder()
        .config(router_config(port, router={"extensions": EXTS[:1]}))
        .spawn()
    )
    try:
        await until(lambda: any(s.state == "in-session" for s in modem.sessions()))
        results = await modem.apply_destination_changes(
            [
                {"op": "up", "mac": M5, "metrics": {"rlqt": 50}},
                {"op": "up", "mac": M6, "ext": {"latency_range": [1, 2]}},
                {"op": "up", "mac": M6, "ext": {"link_id": "00:00:00:01"}},
                {"op": "up", "mac": "02:00:00:00:00:07", "ext": {"hop_count": 1}},
            ]
        )
        errors = [r.error for r in results]
        assert errors[0].startswith(
            "records[0].metrics.rlqt: not declared in modem.session_metrics"
        )
        assert errors[1].startswith("records[1].ext.latency_range: session 1 (")
        assert "did not negotiate extension" in errors[1]
        assert errors[2].startswith("records[2].ext.link_id: extension")
        assert "is not offered by this modem" in errors[2]
        assert errors[3] == "not applied: another record of the batch has errors"
        assert modem.known_destinations() == {}
    finally:
        await router.shutdown()
        await modem.shutdown()


async def test_pause_through_the_feed_reaches_the_router(pair: Pair) -> None:
    from dlep.daemon import SessionEvent
    from dlep.ext.pause import QueuesPaused

    sub = pair.router.subscribe()
    apply = pair.modem.apply_destination_changes
    assert (await apply([{"op": "up", "mac": M5}]))[0].ok
    assert (await apply([{"op": "update", "mac": M5, "ext": {"pause": [255]}}]))[0].ok

    async def paused() -> QueuesPaused:
        async for ev in sub:
            if isinstance(ev, SessionEvent) and isinstance(ev.event, QueuesPaused):
                return ev.event
        raise AssertionError("no pause")

    got = await asyncio.wait_for(paused(), 10)
    assert got.dest == DestKey(bytes.fromhex("020000000005")) and 255 in got.paused
    pair.router.unsubscribe(sub)


# -- JSON lines ----------------------------------------------------------------------


async def test_json_lines_stream(pair: Pair) -> None:
    feed = JsonLinesFeed(pair.modem)
    reader = asyncio.StreamReader()
    out: list[bytes] = []
    await feed.start_stdin(reader, out.append)
    lines = [
        json.dumps({"op": "up", "mac": M5, "id": "x", "metrics": {"cdrt": "3M"}}),
        "",
        "{not json",
        json.dumps([{"op": "up", "mac": M6}, {"op": "up", "mac": M6}]),
        json.dumps({"op": "down", "mac": M5}),
    ]
    reader.feed_data(("\n".join(lines) + "\n").encode())
    reader.feed_eof()
    await until(lambda: len(out) == 4, what="4 answers")
    answers = [json.loads(b) for b in out]
    assert answers[0] == {"ok": True, "results": [{"index": 0, "ok": True, "id": "x"}]}
    assert answers[1]["ok"] is False and answers[1]["error"].startswith("not JSON")
    assert answers[2]["ok"] is False
    assert (
        answers[2]["results"][1]["error"]
        == "records[1].mac: destination 02:00:00:00:00:06 already exists"
    )
    assert answers[3]["ok"] is True
    assert pair.modem.known_destinations() == {}
    await feed.stop()


async def test_json_lines_udp_on_loopback(pair: Pair) -> None:
    feed = JsonLinesFeed(pair.modem)
    host, port = await feed.start_udp("127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.bind(("127.0.0.1", 0))
        payload = (
            json.dumps({"op": "up", "mac": M5, "metrics": {"cdrt": "2M"}})
            + "\n"
            + json.dumps({"op": "update", "mac": M5, "metrics": {"cdrt": "bad"}})
            + "\n"
        )
        await loop.sock_sendto(sock, payload.encode(), (host, port))
        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
    finally:
        sock.close()
        await feed.stop()
    first, second = (json.loads(x) for x in data.splitlines())
    assert first["ok"] is True
    assert second["ok"] is False
    assert second["results"][0]["error"].startswith("records[0].metrics.cdrt:")
    await until(lambda: M5 in pair.router_dests())
    with pytest.raises(ValueError, match="loopback only"):
        await JsonLinesFeed(pair.modem).start_udp("0.0.0.0", 0)


# -- the streaming gRPC call and extension values in the API ------------------------------


async def test_grpc_feed_stream(pair: Pair) -> None:
    async def batches() -> AsyncIterator[pb.FeedBatch]:
        yield pb.FeedBatch(
            records=[
                pb.FeedRecord(
                    op="up",
                    mac=M5,
                    id="one",
                    metrics=pb.Metrics(cdrt=4_000_000),
                    addresses=["10.2.0.5"],
                    ext=pb.ExtensionValues(hop_count=2, latency_min=100, latency_max=900),
                )
            ]
        )
        yield pb.FeedBatch(
            records=[
                pb.FeedRecord(op="update", mac=M5, metrics=pb.Metrics(cdrt=1_000_000)),
                pb.FeedRecord(op="update", mac=M6, metrics=pb.Metrics(cdrt=1)),
            ]
        )
        yield pb.FeedBatch(
            records=[pb.FeedRecord(op="update", mac=M5, ext=pb.ExtensionValues(latency_min=5))]
        )

    async with ManagementClient.unix(pair.modem_api.socket_path, timeout=5) as client:
        results = [r async for r in client.feed(batches())]
    assert [r.batch for r in results] == [0, 1, 2]
    assert results[0].ok and results[0].results[0].id == "one"
    assert not results[1].ok
    assert [x.error for x in results[1].results] == [
        "not applied: another record of the batch has errors",
        "records[1].mac: no destination 02:00:00:00:00:06",
    ]
    assert not results[2].ok
    assert results[2].results[0].error.startswith("records[0].ext.latency_range[1]")
    await until(lambda: M5 in pair.router_dests())
    d = pair.router_dests()[M5]
    assert d.metrics.cdrt == 4_000_000  # the rejected batch changed nothing
    assert HopCount(2) in d.extra and LatencyRange(100, 900) in d.extra


async def test_api_sets_extension_values(pair: Pair) -> None:
    async with ManagementClient.unix(pair.modem_api.socket_path, timeout=5) as client:
        await client._unary(
            "AddDestination",
            pb.AddDestinationRequest(mac=M5, ext=pb.ExtensionValues(hop_count=4)),
            pb.AddDestinationResponse,
        )
        await until(lambda: M5 in pair.router_dests())
        assert HopCount(4) in pair.router_dests()[M5].extra
        await client._unary(
            "UpdateDestination",
            pb.UpdateDestinationRequest(mac=M5, ext=pb.ExtensionValues(hop_count=1)),
            pb.UpdateDestinationResponse,
        )
        await until(lambda: HopCount(1) in pair.router_dests()[M5].extra, what="hop count 1")
        with pytest.raises(ApiError) as exc:
            await client._unary(
                "AddDestination",
                pb.AddDestinationRequest(mac=M6, ext=pb.ExtensionValues(pause=[255])),
                pb.AddDestinationResponse,
            )
        assert "ext.pause" in str(exc.value)
        # Link Identifier destinations: added, and dropped by {MAC, link id}.
        await client._unary(
            "AddDestination",
            pb.AddDestinationRequest(
                mac=M5, addresses=["10.3.0.9"], ext=pb.ExtensionValues(link_id="00:00:00:09")
            ),
            pb.AddDestinationResponse,
        )
        await until(lambda: len(pair.router.destinations()) == 2, what="link-id destination")
        await client._unary(
            "DropDestination",
            pb.DropDestinationRequest(mac=M5, link_id="00:00:00:09"),
            pb.DropDestinationResponse,
        )
        await until(lambda: len(pair.router.destinations()) == 1, what="link-id dest gone")
        assert M5 in pair.router_dests()
