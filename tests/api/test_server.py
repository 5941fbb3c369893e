"""The management API server against live in-process daemons (loopback, Unix sockets)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

from dlep.api.client import ApiError, DaemonUnreachable, ManagementClient, event_kind
from dlep.api.convert import to_dict
from dlep.api.server import ApiSetupError, ManagementServer, SocketInUseError, start_api_server
from dlep.config import parse_modem_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.daemon.events import ConnectionRefused, Lagged, SessionEvent
from dlep.fsm import DestinationInfo, DestinationUpdate, Metrics

from .conftest import MAC1, MAC2, Live, free_port, modem_config, router_config, until

pytestmark = pytest.mark.timeout(60)


async def code_of(coro: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ApiError) as ei:
        await coro
    return ei.value.code, ei.value.details


# ---------------------------------------------------------------------------
# The socket
# ---------------------------------------------------------------------------


async def test_socket_mode_0600_and_removed_on_stop(live: Live) -> None:
    for path in (live.modem_sock, live.router_sock):
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
    await live.router_api.stop()
    assert not live.router_sock.exists()


async def test_stale_socket_is_replaced_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "m.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # bound, never listening: what a killed daemon leaves
    stale.close()
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    try:
        api = ManagementServer(modem, socket_path=path)
        await api.start()
        try:
            other = ManagementServer(modem, socket_path=path)
            with pytest.raises(SocketInUseError, match="another process is serving"):
                await other.start()
            async with ManagementClient.unix(path) as c:  # the first one still serves
                assert (await c.get_info()).role
        finally:
            await api.stop()
    finally:
        await modem.shutdown()


async def test_socket_setup_errors_are_clear(tmp_path: Path) -> None:
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    try:
        missing = tmp_path / "no" / "such" / "m.sock"
        with pytest.raises(ApiSetupError, match=r"directory .*no/such does not exist"):
            await ManagementServer(modem, socket_path=missing).start()
        regular = tmp_path / "file"
        regular.write_text("keep me")
        with pytest.raises(ApiSetupError, match="is not a socket; not removing it"):
            await ManagementServer(modem, socket_path=regular).start()
        assert regular.read_text() == "keep me"
        long = tmp_path / ("x" * 120 + ".sock")
        with pytest.raises(ApiSetupError, match="too long"):
            await ManagementServer(modem, socket_path=long).start()
    finally:
        await modem.shutdown()


async def test_start_api_server_follows_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # default socket in tmp_path
    off = await ModemDaemon.builder().config(modem_config(free_port(), enabled=False)).spawn()
    first = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    second = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    try:
        assert await start_api_server(off) is None
        api = await start_api_server(first)
        assert api is not None and api.socket_path == tmp_path / "dlep-modem.sock"
        try:
            # A second daemon with the default path runs without an API (warning) ...
            with caplog.at_level(logging.WARNING, "dlep.api"):
                assert await start_api_server(second) is None
            assert "running without the management API" in caplog.text
            # ... but a configured socket that is in use is an error.
            cfg = modem_config(free_port(), socket=str(api.socket_path))
            third = await ModemDaemon.builder().config(cfg).spawn()
            try:
                with pytest.raises(SocketInUseError):
                    await start_api_server(third)
            finally:
                await third.shutdown()
        finally:
            await api.stop()
    finally:
        for d in (off, first, second):
            await d.shutdown()


async def test_unreachable(tmp_path: Path) -> None:
    c = ManagementClient.unix(tmp_path / "nobody.sock", timeout=2)
    with pytest.raises(DaemonUnreachable) as ei:
        await c.get_info()
    assert ei.value.code is grpc.StatusCode.UNAVAILABLE
    assert str(tmp_path) in ei.value.target
    await c.close()


# ---------------------------------------------------------------------------
# Read
# ---------------------------------------------------------------------------


async def test_read_calls(live: Live) -> None:
    async with live.router_client() as r, live.modem_client() as m:
        info = to_dict(await r.get_info())
        assert info["role"] == "router"
        assert info["health"] == "ok"
        assert info["sessions_up"] == 1
        assert info["destinations"] == 2
        assert info["pid"] == os.getpid()
        minfo = to_dict(await m.get_info())
        assert minfo["role"] == "modem"
        assert minfo["listening"] == [f"127.0.0.1:{live.modem.listening[0][1]}"]

        (s,) = await r.list_sessions()
        d = to_dict(s)
        assert d["state"] == "in-session"
        assert d["role"] == "router"
        assert d["peer_type"] == "test modem"
        assert d["heartbeat_ms"] == 200 and d["peer_heartbeat_ms"] == 200
        assert d["uptime"] >= 0 and d["up_since"] >= d["started_at"]
        assert d["tx_messages"]["SESSION_INITIALIZATION"] == 1
        assert d["rx_messages"]["SESSION_INITIALIZATION_RESPONSE"] == 1
        assert d["rx_messages"]["DESTINATION_UP"] == 2
        assert d["errors"] == {}
        assert d["session_metrics"]["mdrr"] == 100_000_000

        dests = {x.mac: to_dict(x) for x in await r.list_destinations()}
        assert set(dests) == {MAC1, MAC2}
        assert dests[MAC1]["metrics"]["cdrr"] == 36_000_000
        assert dests[MAC1]["metrics"]["latency"] == 2000
        assert dests[MAC1]["ipv4"] == ["10.0.0.11"] and dests[MAC1]["ipv6"] == ["fd00::11"]
        assert dests[MAC2]["ipv4_subnets"] == ["192.168.12.0/24"]
        assert dests[MAC2]["metrics"]["rlqr"] == 60
        assert [x.mac for x in await r.list_destinations(s.id)] == [MAC1, MAC2]

        sm = to_dict(await r.get_session_metrics())
        assert sm["sessions"][0]["metrics"]["cdrr"] == 50_000_000
        assert "defaults" not in sm
        msm = to_dict(await m.get_session_metrics())
        assert msm["defaults"]["mtu"] == 1500

        assert (await code_of(r.list_destinations("99")))[0] is grpc.StatusCode.NOT_FOUND
        assert (await code_of(r.get_session_metrics("99")))[0] is grpc.StatusCode.NOT_FOUND


async def test_modem_lists_its_table_without_a_router(tmp_path: Path) -> None:
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    api = ManagementServer(modem, socket_path=tmp_path / "m.sock")
    async with api, ManagementClient.unix(api.socket_path) as c:
        info = await c.get_info()
        assert to_dict(info)["health"] == "idle"
        dests = await c.list_destinations()
        assert {(d.session_id, d.mac) for d in dests} == {("", MAC1), ("", MAC2)}
    await modem.shutdown()


# ---------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------


async def test_modem_writes_reach_the_router(live: Live) -> None:
    mac = "02:00:00:00:00:99"
    async with live.modem_client() as m, live.router_client() as r:
        await m.add_destination(
            mac, Metrics(cdrr=20_000_000, mdrr=54_000_000, latency=3000), addresses=["10.0.0.99"]
        )
        await until(lambda: mac in live.router_macs(), what="new destination at the router")
        d = {x.mac: x for x in await r.list_destinations()}[mac]
        assert d.metrics.cdrr == 20_000_000 and d.metrics.latency == 3000
        assert list(d.ipv4) == ["10.0.0.99"]

        await m.update_destination(mac, Metrics(cdrr=30_000_000), add=["192.168.99.0/24"])

        async def updated() -> bool:
            d = {x.mac: x for x in await r.list_destinations()}[mac]
            return d.metrics.cdrr == 30_000_000 and list(d.ipv4_subnets) == ["192.168.99.0/24"]

        await until(updated, what="update at the router")

        await m.update_session_metrics(Metrics(latency=4000))

        async def session_updated() -> bool:
            (s,) = await r.list_sessions()
            return s.session_metrics.latency == 4000

        await until(session_updated, what="session update at the router")

        await m.drop_destination(mac)
        await until(lambda: mac not in live.router_macs(), what="destination gone")


async def test_router_writes(live: Live) -> None:
    async with live.router_client() as r:
        answer = await r.request_link_characteristics(MAC1, cdrr=10_000_000, wait_ms=3000)
        assert answer.answered and answer.status_name == "SUCCESS"
        assert answer.metrics.cdrr == 10_000_000
        assert answer.session_id == "1"
        sent = await r.request_link_characteristics(MAC2, latency=5000)  # no wait
        assert not sent.answered

        ann = await r.announce_destination("02:00:00:00:00:77", addresses=["10.0.0.77"])
        assert ann.session_id == "1"

        await r.drop_destination(MAC2)
        await until(lambda: MAC2 not in live.router_macs(), what="router drop")

        await r.terminate_session("1", text="operator says bye")
        assert not [s for s in live.router.sessions() if s.id == "1"]

        port = live.modem.listening[0][1]
        await r.connect_static("127.0.0.1", port)  # already a static peer: a no-op
        # The static peer reconnects by itself: a new session comes up.
        await until(
            lambda: any(s.state == "in-session" for s in live.router.sessions()),
            what="reconnect",
        )


@pytest.mark.parametrize(
    ("which", "call", "code", "text"),
    [
        ("router", lambda c: c.add_destination(MAC1), "FAILED_PRECONDITION", "modem operation"),
        (
            "router",
            lambda c: c.update_session_metrics(Metrics(cdrr=1)),
            "FAILED_PRECONDITION",
            "modem operation",
        ),
        (
            "modem",
            lambda c: c.request_link_characteristics(MAC1, cdrr=1),
            "FAILED_PRECONDITION",
            "router operation",
        ),
        (
            "modem",
            lambda c: c.announce_destination(MAC1),
            "FAILED_PRECONDITION",
            "router operation",
        ),
        (
            "modem",
            lambda c: c.connect_static("127.0.0.1"),
            "FAILED_PRECONDITION",
            "router operation",
        ),
        ("modem", lambda c: c.add_destination("zz:00"), "INVALID_ARGUMENT", "mac: 'zz:00'"),
        ("modem", lambda c: c.add_destination(""), "INVALID_ARGUMENT", "mac: required"),
        ("modem", lambda c: c.add_destination(MAC1), "ALREADY_EXISTS", "already exists"),
        (
            "modem",
            lambda c: c.add_destination("02:00:00:00:00:50", Metrics(resources=101)),
            "INVALID_ARGUMENT",
            "metrics.resources: 101 out of range",
        ),
        (
            "modem",
            lambda c: c.add_destination("02:00:00:00:00:50", Metrics(cdrr=200_000_000)),
            "INVALID_ARGUMENT",
            "metrics.cdrr",
        ),
        (
            "modem",
            lambda c: c.add_destination("02:00:00:00:00:50", addresses=["10.0.0.300"]),
            "INVALID_ARGUMENT",
            "addresses[0]",
        ),
        (
            "modem",
            lambda c: c.update_destination("02:00:00:00:00:50", Metrics(cdrr=1)),
            "NOT_FOUND",
            "no destination 02:00:00:00:00:50",
        ),
        ("modem", lambda c: c.update_destination(MAC1), "INVALID_ARGUMENT", "nothing to update"),
        ("modem", lambda c: c.drop_destination("02:00:00:00:00:50"), "NOT_FOUND", "no destination"),
        (
            "modem",
            lambda c: c.update_session_metrics(Metrics()),
            "INVALID_ARGUMENT",
            "nothing to update",
        ),
        (
            "router",
            lambda c: c.request_link_characteristics("02:00:00:00:00:50", cdrr=1),
            "NOT_FOUND",
            "mac: no destination 02:00:00:00:00:50",
        ),
        (
            "router",
            lambda c: c.request_link_characteristics(MAC1),
            "INVALID_ARGUMENT",
            "give at least one of cdrr",
        ),
        (
            "router",
            lambda c: c.request_link_characteristics(MAC1, cdrr=1, session_id="9"),
            "NOT_FOUND",
            "session_id: no session 9",
        ),
        (
            "router",
            lambda c: c.request_link_characteristics(MAC1, cdrr=1, wait_ms=70_000),
            "INVALID_ARGUMENT",
            "wait_ms",
        ),
        (
            "router",
            lambda c: c.announce_destination(MAC1, addresses=["10.1.0.0/16"]),
            "INVALID_ARGUMENT",
            "addresses[0]",
        ),
        ("router", lambda c: c.announce_destination(MAC1), "ALREADY_EXISTS", "already known"),
        (
            "router",
            lambda c: c.drop_destination("02:00:00:00:00:50"),
            "NOT_FOUND",
            "no destination",
        ),
        (
            "router",
            lambda c: c.connect_static("modem.example"),
            "INVALID_ARGUMENT",
            "host: 'modem.example' is not an IP address",
        ),
        ("router", lambda c: c.connect_static("127.0.0.1", 70000), "INVALID_ARGUMENT", "port"),
        ("router", lambda c: c.terminate_session("42"), "NOT_FOUND", "no session 42"),
        ("router", lambda c: c.terminate_session(""), "INVALID_ARGUMENT", "session_id: required"),
        ("router", lambda c: c.terminate_session("1", status=300), "INVALID_ARGUMENT", "status"),
    ],
)
async def test_errors(live: Live, which: str, call: Any, code: str, text: str) -> None:
    client = live.router_client() if which == "router" else live.modem_client()
    async with client:
        got, details = await code_of(call(client))
    assert got.name == code, details
    assert text in details


async def test_no_session_is_failed_precondition(tmp_path: Path) -> None:
    router = await RouterDaemon.builder().config(router_config(None)).spawn()
    api = ManagementServer(router, socket_path=tmp_path / "r.sock")
    async with api, ManagementClient.unix(api.socket_path) as c:
        for call in (
            c.request_link_characteristics(MAC1, cdrr=1),
            c.announce_destination(MAC1),
            c.drop_destination(MAC1),
        ):
            code, details = await code_of(call)
            assert code is grpc.StatusCode.FAILED_PRECONDITION
            assert "no session is up" in details
        assert to_dict(await c.get_info())["health"] == "idle"
    await router.shutdown()


# ---------------------------------------------------------------------------
# WatchEvents
# ---------------------------------------------------------------------------


async def _collect(client: ManagementClient, out: list[Any], session_id: str | None = None) -> None:
    async for ev in client.watch(session_id):
        out.append(ev)


async def test_watch_events(live: Live) -> None:
    events: list[Any] = []
    async with live.router_client() as r, live.modem_client() as m:
        task = asyncio.create_task(_collect(r, events))
        await until(lambda: live.router_api.watchers, what="subscription")
        mac = "02:00:00:00:00:42"
        await m.add_destination(mac, Metrics(cdrr=1_000_000, mdrr=2_000_000))
        await m.update_destination(mac, Metrics(cdrr=1_500_000))
        await m.drop_destination(mac)
        await until(lambda: any(event_kind(e) == "destination_down" for e in events))
        await r.terminate_session("1", text="bye")
        await until(lambda: any(event_kind(e) == "session_down" for e in events))
        await until(lambda: any(event_kind(e) == "session_up" for e in events), what="reconnect")
        task.cancel()
    kinds = [event_kind(e) for e in events]
    up = next(e for e in events if event_kind(e) == "destination_up")
    assert up.session_id == "1" and up.destination_up.destination.mac == mac
    assert up.destination_up.destination.metrics.cdrr == 1_000_000
    upd = next(e for e in events if event_kind(e) == "destination_update")
    assert upd.destination_update.changed.cdrr == 1_500_000
    assert not upd.destination_update.changed.HasField("latency")
    down = next(e for e in events if event_kind(e) == "session_down")
    assert down.session_down.reason and not down.session_down.by_peer
    assert down.session_down.status_name == "SHUTTING_DOWN"
    assert sorted(down.session_down.destinations) == [MAC1, MAC2]
    assert "session_connected" in kinds
    assert kinds.index("session_down") < kinds.index("session_up")
    # Every event carries a time, and errors are events too.
    assert all(e.time > 0 for e in events)


async def test_watch_filter_and_errors(live: Live) -> None:
    events: list[Any] = []
    async with live.modem_client() as m:
        task = asyncio.create_task(_collect(m, events, session_id="7"))
        await until(lambda: live.modem_api.watchers, what="subscription")
        live.modem._publish(ConnectionRefused("192.0.2.1:9", "max_sessions reached"))
        await m.update_destination(MAC1, Metrics(cdrr=1_000_000))  # session 1: filtered
        await asyncio.sleep(0.3)
        assert events == []
        task.cancel()
        await until(lambda: not live.modem_api.watchers, what="first stream closed")
        task = asyncio.create_task(_collect(m, events))
        await until(lambda: len(live.modem_api.watchers) == 1, what="subscription")
        live.modem._publish(ConnectionRefused("192.0.2.1:9", "max_sessions reached"))
        await until(lambda: events, what="error event")
        task.cancel()
    (ev,) = events
    assert event_kind(ev) == "error"
    assert ev.error.kind == "connection_refused" and ev.peer == "192.0.2.1:9"


async def test_watch_queue_is_bounded_and_every_event_accounted(tmp_path: Path) -> None:
    """In-process: whatever the pace, the stream delivers each event or counts it in a
    ``lagged`` notice, and the daemon never queues more than ``watch_queue``."""
    queue = 32
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    cfg = parse_modem_config({"api": {"socket": str(tmp_path / "m.sock"), "watch_queue": queue}})
    api = ManagementServer(modem, cfg.api)
    await api.start()
    client = ManagementClient.unix(api.socket_path)
    try:
        stream = client.watch().__aiter__()
        first = asyncio.ensure_future(stream.__anext__())
        await until(lambda: api.watchers, what="subscription")
        (sub,) = api.watchers
        modem._publish(ConnectionRefused("x", "first"))
        assert event_kind(await first) == "error"
        # The client stops reading; the daemon keeps producing events, in
        # batches smaller than the queue with pauses that a reading client
        # would keep up with. Flow control stops the server; the queue fills.
        published = 1
        most = 0
        for i in range(1000):
            for j in range(queue // 2):
                modem._publish(ConnectionRefused("192.0.2.1:9", f"event {i}.{j} " + "x" * 60))
                published += 1
            most = max(most, sub.pending())
            await asyncio.sleep(0.001)
        assert sub.maxsize == queue  # the daemon holds at most this many per stream
        assert most <= queue
        # The reader catches up: it is told how many events it missed.
        received, dropped, lagged = 1, 0, 0
        while received + dropped < published:
            ev = await asyncio.wait_for(stream.__anext__(), 10)
            if event_kind(ev) == "lagged":
                lagged += 1
                dropped += ev.lagged.dropped
            else:
                received += 1
        assert received + dropped == published
        assert (lagged == 0) == (dropped == 0)
    finally:
        await client.close()
        await api.stop(0.2)
        await modem.shutdown()


async def test_a_stopped_watcher_gets_merged_updates_and_the_newest_values(
    tmp_path: Path,
) -> None:
    """Updates of a few destinations, published while ``dlepctl watch`` is
    stopped (SIGSTOP): they merge in the daemon's queue instead of being
    dropped; the stream says so (``lagged.coalesced``) and the watcher still
    ends with each destination's newest values."""
    import json
    import signal
    import sys

    queue = 64
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    cfg = parse_modem_config({"api": {"socket": str(tmp_path / "m.sock"), "watch_queue": queue}})
    api = ManagementServer(modem, cfg.api)
    await api.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dlep.cli.dlepctl", "--socket", str(api.socket_path),
        "watch", "--json", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    macs = [bytes([2, 0, 0, 0, 0, i]) for i in range(4)]
    try:
        await until(lambda: api.watchers, timeout=15, what="watch stream")
        (sub,) = api.watchers
        proc.send_signal(signal.SIGSTOP)
        published, rounds = 0, 0
        newest: dict[str, int] = {}
        # Until gRPC's buffers are full and the queue is past half (bounded).
        while rounds < 3000 and not (sub.coalesced_total > 200 and published > 20_000):
            for k in range(16):
                mac = macs[k % len(macs)]
                m = Metrics(cdrr=1_000_000 + published, latency=100 + k)
                ev = DestinationUpdate(DestinationInfo(mac, m), m)
                modem._publish(SessionEvent("7", "192.0.2.1:854", ev))
                newest[ev.info.mac_str] = 1_000_000 + published
                published += 1
            assert sub.pending() <= queue
            rounds += 1
            await asyncio.sleep(0.001)
        assert sub.coalesced_total > 0, "the stopped watcher never made the queue lag"
        assert sub.dropped_total == 0  # four destinations: always something to merge into
        proc.send_signal(signal.SIGCONT)
        assert proc.stdout is not None
        received, coalesced, seen = 0, 0, {}
        while received + coalesced < published:
            ev = json.loads(await asyncio.wait_for(proc.stdout.readline(), 15))
            if ev["kind"] == "lagged":
                assert ev["lagged"]["dropped"] == 0 and ev["lagged"]["coalesced"] > 0
                assert "merged into newer ones" in ev["text"]
                coalesced += ev["lagged"]["coalesced"]
            else:
                received += 1
                dest = ev["destination_update"]["destination"]
                seen[dest["mac"]] = dest["metrics"]["cdrr"]
        assert received + coalesced == published
        assert seen == newest
        assert modem.subscriber_events() == {"dropped": 0, "coalesced": coalesced}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        await proc.wait()
        await api.stop(0.2)
        await modem.shutdown()


def test_lagged_text_names_both_counts() -> None:
    from dlep.api import convert

    msg = convert.event_to_pb(Lagged(2, coalesced=3))
    assert (msg.lagged.dropped, msg.lagged.coalesced) == (2, 3)
    assert "2 event(s) dropped" in msg.text and "3 destination update(s) merged" in msg.text
    assert "merged" not in convert.event_to_pb(Lagged(2)).text


async def test_watch_ends_when_the_server_stops(live: Live) -> None:
    events: list[Any] = []
    async with live.router_client() as r:
        task = asyncio.create_task(_collect(r, events))
        await until(lambda: live.router_api.watchers, what="subscription")
        await live.router_api.stop(0.5)
        await asyncio.wait_for(task, 5)  # the stream ends, no exception
    assert live.router_api.watchers == []


# ---------------------------------------------------------------------------
# TCP with mutual TLS
# ---------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = trustme.CA()
    other_ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("operator@dlep.test")
    stranger = other_ca.issue_cert("stranger@dlep.test")
    files = {
        "ca": ca.cert_pem,
        "server.crt": server.cert_chain_pems[0],
        "server.key": server.private_key_pem,
        "client.crt": client.cert_chain_pems[0],
        "client.key": client.private_key_pem,
        "stranger.crt": stranger.cert_chain_pems[0],
        "stranger.key": stranger.private_key_pem,
    }
    out = {}
    for name, blob in files.items():
        path = tmp_path / name
        blob.write_to_path(str(path))
        out[name] = path
    return out


async def test_tcp_listener_requires_a_client_certificate(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    port = free_port()
    cfg = parse_modem_config(
        {
            "api": {
                "socket": str(tmp_path / "m.sock"),
                "tcp_listen": f"127.0.0.1:{port}",
                "tls_cert": str(pki["server.crt"]),
                "tls_key": str(pki["server.key"]),
                "tls_client_ca": str(pki["ca"]),
            }
        }
    )
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    api = ManagementServer(modem, cfg.api)
    await api.start()
    try:
        assert api.tcp_port == port
        good = ManagementClient.tcp(
            f"127.0.0.1:{port}", cert=pki["client.crt"], key=pki["client.key"], ca=pki["ca"]
        )
        async with good:
            assert to_dict(await good.get_info())["role"] == "modem"

        # No client certificate: the handshake fails, nothing is served.
        creds = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
        anonymous = ManagementClient(f"127.0.0.1:{port}", credentials=creds, timeout=3)
        async with anonymous:
            with pytest.raises(DaemonUnreachable):
                await anonymous.get_info()
        # A certificate from another CA: refused as well.
        stranger = ManagementClient.tcp(
            f"127.0.0.1:{port}",
            cert=pki["stranger.crt"],
            key=pki["stranger.key"],
            ca=pki["ca"],
            timeout=3,
        )
        async with stranger:
            with pytest.raises(DaemonUnreachable):
                await stranger.get_info()
        # Plaintext to the TLS port: refused too.
        plain = ManagementClient(f"127.0.0.1:{port}", timeout=3)
        async with plain:
            with pytest.raises(DaemonUnreachable):
                await plain.get_info()
    finally:
        await api.stop()
        await modem.shutdown()


async def test_stopped_reader_gets_lagged_and_daemon_memory_stays_bounded(tmp_path: Path) -> None:
    """A real slow reader: ``dlepctl watch`` in a process we SIGSTOP, so nobody
    reads its socket. The daemon keeps at most ``watch_queue`` events for it,
    drops and counts the rest, and the reader is told once it runs again."""
    import json
    import resource
    import signal
    import sys

    queue = 64
    modem = await ModemDaemon.builder().config(modem_config(free_port())).spawn()
    cfg = parse_modem_config({"api": {"socket": str(tmp_path / "m.sock"), "watch_queue": queue}})
    api = ManagementServer(modem, cfg.api)
    await api.start()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dlep.cli.dlepctl", "--socket", str(api.socket_path),
        "watch", "--json", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await until(lambda: api.watchers, timeout=15, what="watch stream")
        (sub,) = api.watchers
        proc.send_signal(signal.SIGSTOP)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        published, most, rounds = 0, 0, 0
        while rounds < 3000 and not (sub.dropped and published > 20_000):
            for _ in range(16):
                modem._publish(ConnectionRefused("192.0.2.1:9", f"event {published} " + "x" * 200))
                published += 1
            most = max(most, sub.pending())
            rounds += 1
            await asyncio.sleep(0.001)
        dropped_while_stopped = sub.dropped
        assert dropped_while_stopped > 0, "the stopped reader never made the queue overflow"
        assert most <= queue
        # Each event is ~300 bytes on the wire; everything published would be
        # several MB. What the daemon holds is the queue plus gRPC's buffers.
        grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        assert grown_kb < 64 * 1024, f"daemon grew by {grown_kb} kB"
        proc.send_signal(signal.SIGCONT)
        assert proc.stdout is not None
        received, dropped, lagged = 0, 0, 0
        while received + dropped < published:
            line = await asyncio.wait_for(proc.stdout.readline(), 15)
            ev = json.loads(line)
            if ev["kind"] == "lagged":
                lagged += 1
                dropped += ev["lagged"]["dropped"]
            else:
                received += 1
        assert lagged >= 1 and dropped >= dropped_while_stopped
        assert received + dropped == published
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        await proc.wait()
        await api.stop(0.2)
        await modem.shutdown()
