"""Issue 14 (robustness) at the management API: what a peer sends must never
make an API call fail."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import grpc
import pytest

from dlep.api.client import ApiError, ManagementClient, event_kind
from dlep.api.convert import event_to_pb, safe_text
from dlep.api.server import MAX_WAIT_MS, MESSAGE_LIMIT, ManagementServer
from dlep.cli.dlepctl import MAX_WAIT_S
from dlep.daemon import ConnectFailed, ModemDaemon, SessionEvent
from dlep.fsm import Metrics, ResponseStatus, SessionTerminated
from dlep.wire import HeartbeatInterval, MacAddress, MessageType, Status

from ..integration.test_faults import raw_client
from .conftest import MAC1, V4, Live, dlepctl, free_port, modem_config, until

pytestmark = pytest.mark.timeout(60)

MT = MessageType
#: Not UTF-8: a lone continuation byte, an overlong NUL and a truncated sequence.
BAD = b"bad \x80 \xc0\x80 \xe2\x82"
SHOWN = BAD.decode("utf-8", "replace")


def _item(itype: int, value: bytes) -> bytes:
    return struct.pack("!HH", itype, len(value)) + value


def _message(mtype: int, *items: bytes) -> bytes:
    body = b"".join(items)
    return struct.pack("!HH", mtype, len(body)) + body


def _status(code: int, text: bytes) -> bytes:
    return _item(1, bytes((code,)) + text)  # Status (§13.1) with raw text octets


async def _collect(client: ManagementClient, out: list[Any]) -> None:
    async for ev in client.watch():
        out.append(ev)


async def test_invalid_utf8_from_a_peer_keeps_the_api_working(tmp_path: Path) -> None:
    """Defect 1: Peer Type and Status text that are not UTF-8 used to reach
    protobuf as surrogate escapes: ListSessions answered INTERNAL for the
    session's lifetime and every WatchEvents stream died. Now (RFC 8175
    §13.1 / §13.4, see docs/conformance.md) they are shown with U+FFFD and
    the session goes on."""
    port = free_port()
    cfg = modem_config(port, socket=str(tmp_path / "modem.sock"))
    modem = await ModemDaemon.builder().config(cfg).spawn()
    api = ManagementServer(modem, cfg.api)
    await api.start()
    events: list[Any] = []
    try:
        async with ManagementClient.unix(api.socket_path, timeout=5) as client:
            watcher = asyncio.create_task(_collect(client, events))
            await until(lambda: api.watchers, what="subscription")
            async with raw_client(V4, port) as raw:
                raw.send(
                    _message(
                        MT.SESSION_INITIALIZATION,
                        HeartbeatInterval(1000).encode(),
                        _item(4, b"\x00" + BAD),  # Peer Type, description not UTF-8
                    )
                )
                resp = await raw.recv_until(MT.SESSION_INITIALIZATION_RESPONSE)
                st = resp.get(Status)
                assert st is not None and st.code == 0
                up = await raw.recv_until(MT.DESTINATION_UP)
                mac = up.get(MacAddress)
                assert mac is not None
                # Refuse it with a Status text that is not UTF-8 either.
                raw.send(_message(MT.DESTINATION_UP_RESPONSE, mac.encode(), _status(1, BAD)))
                await until(
                    lambda: any(event_kind(e) == "destination_refused" for e in events),
                    what="destination_refused event",
                )
                sessions = await client.list_sessions()
                assert [s.peer_type for s in sessions] == [SHOWN]
                assert (await client.get_info()) is not None
                raw.send(_message(MT.SESSION_TERMINATION, _status(0, BAD)))
                await raw.recv_until(MT.SESSION_TERMINATION_RESPONSE)
            await until(
                lambda: any(event_kind(e) == "session_down" for e in events),
                what="session_down event",
            )
            assert not watcher.done(), watcher  # the stream survived all of it
            watcher.cancel()
        by_kind = {event_kind(e): e for e in events}
        assert by_kind["session_up"].session_up.peer_type == SHOWN
        assert by_kind["destination_refused"].destination_refused.text == SHOWN
        assert SHOWN in by_kind["session_down"].session_down.reason
        assert all("\ufffd" in e.text for e in events if "bad" in e.text)
    finally:
        await api.stop(0.2)
        await modem.shutdown()


def test_convert_never_hands_protobuf_a_surrogate() -> None:
    """The API boundary's own defence: whatever string reaches
    :mod:`dlep.api.convert` (the codec no longer makes surrogates, but an
    extension's rendering or a library user's event might), protobuf gets
    one it can encode."""
    bad = "bad \udc80 text \ud800"
    shown = "bad \ufffd text \ufffd"
    assert safe_text(bad) == shown
    assert safe_text("plain") == "plain"
    assert safe_text("é \U0001f4e1") == "é \U0001f4e1"
    down = event_to_pb(SessionEvent("1", "peer", SessionTerminated(130, bad, False, ())))
    assert down.session_down.reason == shown
    assert shown in down.text
    status = event_to_pb(SessionEvent("1", "peer", ResponseStatus(MT.SESSION_UPDATE, 1, bad)))
    assert status.error.message == shown
    failed = event_to_pb(ConnectFailed("peer", bad))
    assert failed.error.message == shown


# ---------------------------------------------------------------------------
# Item 12 (low): bounded input, bounded errors
# ---------------------------------------------------------------------------


async def test_error_messages_quote_input_bounded(live: Live) -> None:
    """A 3 MB MAC string used to come back quoted twice: a 6 MB status."""
    huge = "z" * 3_000_000
    async with live.modem_client() as m:
        with pytest.raises(ApiError) as ei:
            await m.add_destination(huge, Metrics(cdrr=1000))
    assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT
    details = ei.value.details
    assert details.startswith("mac: 'zzz")
    assert "(3000000 characters)" in details
    assert len(details) <= MESSAGE_LIMIT + 40
    async with live.router_client() as r:
        with pytest.raises(ApiError) as ei:
            await r.connect_static("h" * 100_000, 854)
    assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert ei.value.details.startswith("host: ") and len(ei.value.details) < 200


async def test_terminate_session_with_overlong_text_is_invalid_argument(live: Live) -> None:
    """It answered FAILED_PRECONDITION (the Session Termination failed to
    encode, as if the session were at fault); the session stays up."""
    async with live.router_client() as r:
        (s,) = await r.list_sessions()
        with pytest.raises(ApiError) as ei:
            await r.terminate_session(s.id, text="x" * 65_531)
        assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert ei.value.details.startswith("text: 65531 octets")
        (again,) = await r.list_sessions()
        assert (again.id, again.state) == (s.id, "in-session")
        await r.terminate_session(s.id, text="x" * 65_530)  # the longest that fits


async def test_dlepctl_link_request_wait_is_bounded(live: Live) -> None:
    """--wait 1e9 died with a traceback (wait_ms overflowed uint32)."""
    sock = str(live.router_sock)
    for wait in ("1e9", "61", "-1", "nan", "inf", "soon"):
        res = await dlepctl("--socket", sock, "link-request", MAC1, "--cdrr", "1M", "--wait", wait)
        assert res.code == 2, (wait, res)
        assert "Traceback" not in res.err
        assert "--wait" in res.err and "expected seconds from 0 to 60" in res.err
    assert MAX_WAIT_S * 1000 == MAX_WAIT_MS
