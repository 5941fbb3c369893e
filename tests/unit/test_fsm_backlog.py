"""Issue 14 item 3 (engine part), on a fake clock: a driver that handles a
read over several turns, or stops reading a peer, judges the peer's silence
by when its data arrived (``note_peer_alive``), and tells answers the peer
provoked from other output (``response_octets``)."""

from __future__ import annotations

from dlep.fsm import State
from dlep.wire import MessageType

from .fsm_harness import ALL_METRICS, MAC1, established, modem_config, raw

M = MessageType
HEARTBEAT = b"\x00\x10\x00\x00"


def test_backlog_received_before_the_deadline_keeps_the_session() -> None:
    """Default peer interval 1 s, 2 missed: silent at 2.0. A heartbeat read
    at 1.9 but not handled yet (the driver's budget ran out) proves the
    peer alive at 1.9: the timer at 2.0 must not end the session."""
    p = established()
    s = p.router
    assert s.receive_data(HEARTBEAT * 3, 1.9, limit=0)  # kept, not handled
    assert s.pending_messages == 3
    assert s.peer_silent(2.0)
    s.note_peer_alive(1.9)
    assert not s.peer_silent(2.0)
    s.handle_timer(2.0)
    assert s.state is State.IN_SESSION
    assert s.last_heard == 1.9
    # Handled later: the silence then counts from when they were handled.
    assert not s.receive_more(2.05)
    assert s.pending_messages == 0 and s.last_heard == 2.05
    # And a peer that then says nothing times out as before.
    s.handle_timer(4.05)
    assert s.state is State.RESET


def test_note_peer_alive_never_moves_back_nor_acts_outside_a_session() -> None:
    p = established()
    s = p.router
    s.receive_data(HEARTBEAT, 1.5)
    s.note_peer_alive(1.0)
    assert s.last_heard == 1.5
    s.handle_timer(3.5)  # silent since 1.5
    assert s.state is State.RESET
    s.note_peer_alive(10.0)  # no effect on a closed session
    assert s.state is State.RESET and not s.peer_silent(10.0)


def test_peer_silent_matches_handle_timer() -> None:
    p = established()
    s = p.modem
    assert not s.peer_silent(1.999999)
    s.handle_timer(1.999999)
    assert s.state is State.IN_SESSION
    assert s.peer_silent(2.0)
    s.handle_timer(2.0)
    assert s.state is State.RESET


def test_response_octets_count_answers_only() -> None:
    """The router's Destination Up Responses are answers; the modem's
    Destination Ups (its own output, however large) are not."""
    p = established(modem=modem_config(session_metrics=ALL_METRICS))
    before = p.router.response_octets
    p.modem.add_destination(MAC1, ALL_METRICS, now=p.now)
    up = p.modem.data_to_send()
    assert p.modem.response_octets == 0
    p.router.receive_data(up, p.now)
    ack = p.router.data_to_send()
    assert ack and p.router.response_octets - before == len(ack)
    p.modem.receive_data(ack, p.now)
    # A Session Update answered by the engine itself counts too.
    p.router.receive_data(raw(M.SESSION_UPDATE), p.now)
    assert p.router.response_octets - before > len(ack)
