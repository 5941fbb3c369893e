"""Issue 14 (robustness): a hostile or dead peer must cost only its own session.

Each test pins one defect of the issue; the raw peers come from
:mod:`tests.integration.test_faults` (loopback only, bounded loops).
"""

from __future__ import annotations

import logging

import pytest

from dlep.fsm import SessionTerminated, SessionUp
from dlep.wire import (
    HeartbeatInterval,
    MacAddress,
    Message,
    MessageType,
    PeerType,
    Status,
    StatusCode,
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
