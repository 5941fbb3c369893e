"""Issue 14 (robustness): a hostile or dead peer must cost only its own session.

Each test pins one defect of the issue; the raw peers come from
:mod:`tests.integration.test_faults` (loopback only, bounded loops).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from dlep.fsm import (
    Event,
    Metrics,
    Role,
    Session,
    SessionConfig,
    SessionTerminated,
    SessionUp,
    State,
)
from dlep.transport import SessionProtocol
from dlep.wire import (
    HeartbeatInterval,
    MacAddress,
    Message,
    MessageFramer,
    MessageType,
    PeerType,
    Status,
    StatusCode,
    decode_message,
    encode_message,
)

from .conftest import MAC3, V4, wait_until
from .test_faults import Busy, busy_modem, raw_client, unknown_message

__all__ = ["busy_modem"]  # the fixture, re-exported for pytest

pytestmark = pytest.mark.timeout(60)

MT = MessageType


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None or r.levelno >= logging.ERROR]


async def test_announce_and_fatal_message_in_one_segment(
    busy_modem: Busy, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 4: the modem used to answer the Destination Announce on the
    session the next message of the same read had already terminated; the
    SessionClosedError escaped data_received, asyncio logged a traceback and
    aborted the transport (RST instead of the termination exchange)."""
    caplog.set_level(logging.INFO)
    modem, mev, still_fine = busy_modem.modem, busy_modem.mev, busy_modem.still_fine
    async with raw_client(V4, port) as raw:
        await raw.init()
        await mev.next(SessionUp)
        announce = encode_message(Message(MT.DESTINATION_ANNOUNCE, (MacAddress.parse(MAC3),)))
        raw.send(announce + unknown_message())  # one write, one segment on loopback
        term = await raw.recv_until(MT.SESSION_TERMINATION)
        st = term.get(Status)
        assert st is not None and st.code == StatusCode.UNKNOWN_MESSAGE, term
        raw.send(Message(MT.SESSION_TERMINATION_RESPONSE))
        await raw.closed()  # an orderly close, not a reset (that would raise)
    ev = await mev.next(SessionTerminated)
    assert ev.status == StatusCode.UNKNOWN_MESSAGE and not ev.by_peer
    assert not _tracebacks(caplog), [r.getMessage() for r in _tracebacks(caplog)]
    await still_fine()
    # And the daemon still accepts a new session.
    async with raw_client(V4, port) as raw:
        await raw.init()
        await mev.next(SessionUp)
    assert len(modem.sessions()) >= 1


async def test_unbounded_peer_heartbeat_is_refused(busy_modem: Busy, port: int) -> None:
    """Defect 3: a router announcing a Heartbeat Interval of 0xFFFFFFFF ms
    used to get a session that, once the router went silent, held a
    max_sessions slot for 2 x 49.7 days. The modem now refuses it at
    initialisation ('Request Denied', timers.max_peer_heartbeat_interval_ms)."""
    modem, mev, still_fine = busy_modem.modem, busy_modem.mev, busy_modem.still_fine
    async with raw_client(V4, port) as raw:
        raw.send(
            Message(
                MT.SESSION_INITIALIZATION,
                (HeartbeatInterval(0xFFFFFFFF), PeerType("sleepy router")),
            )
        )
        resp = await raw.recv_until(MT.SESSION_INITIALIZATION_RESPONSE)
        st = resp.get(Status)
        assert st is not None and st.code == StatusCode.REQUEST_DENIED, resp
        assert "max_peer_heartbeat_interval_ms" in st.text
        await raw.closed()
    ev = await mev.next(SessionTerminated)
    assert ev.status == StatusCode.REQUEST_DENIED and not ev.by_peer
    await wait_until(lambda: len(modem.sessions()) == 1, 5, "refused session freed")
    await still_fine()


class _FakeTransport(asyncio.Transport):
    """Collects what the protocol writes (no socket at all)."""

    def __init__(self) -> None:
        super().__init__()
        self.out = b""
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += bytes(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


async def test_data_received_survives_a_failing_event_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect 4, the transport's part: whatever the application's event
    handler raises stays out of data_received (asyncio would abort the
    connection), is logged, and the session goes on."""
    calls: list[int] = []

    def on_events(proto: SessionProtocol, events: list[Event]) -> None:
        calls.append(len(events))
        raise RuntimeError("handler bug")

    cfg = SessionConfig(session_metrics=Metrics(mdrr=1, mdrt=1, cdrr=1, cdrt=1, latency=1))
    proto = SessionProtocol(Session(Role.MODEM, cfg), on_events, lambda p: None)
    transport = _FakeTransport()
    proto.connection_made(transport)
    init = Message(MT.SESSION_INITIALIZATION, (HeartbeatInterval(1000), PeerType("router")))
    proto.data_received(encode_message(init))  # must not raise
    assert calls and proto.session.state is State.IN_SESSION and not transport.closing
    (resp,) = MessageFramer().feed(transport.out)
    assert decode_message(resp).type == MT.SESSION_INITIALIZATION_RESPONSE
    assert any("event handler failed" in r.getMessage() for r in caplog.records)
    proto.connection_lost(None)  # clean-up also guarded
