"""Timers on a fake clock: heartbeats (§7.3.1, §12.20), silence detection,
initialisation timeout (§12.5), termination timeout (§7.4), the Link
Characteristics slowness report (§8), and the get_timer()/handle_timer()
contract."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlep.fsm import (
    LinkCharacteristicsResponse,
    LinkCharacteristicsTimeout,
    Metrics,
    Session,
    SessionConfig,
    SessionTerminated,
    State,
    TransactionInProgressError,
)
from dlep.wire import MessageType, Status, StatusCode

from .fsm_harness import (
    MAC1,
    MAC1_B,
    MAC2,
    Pair,
    established,
    modem_config,
    msg,
    router_config,
)

M = MessageType


def heartbeat_times(p: Pair, side: str, until: float, step: float = 0.25) -> list[float]:
    """Tick ``side`` alone every ``step`` s; return when it sent a Heartbeat."""
    s = p.side(side)  # type: ignore[arg-type]
    out = []
    t = p.now
    while t < until:
        t = round(t + step, 6)
        s.handle_timer(t)
        for m in p.sent(side):  # type: ignore[arg-type]
            if m.type == M.HEARTBEAT:
                out.append(t)
        # Keep the peer-silence timer quiet: pretend the peer spoke.
        if s.state is State.IN_SESSION:
            s.receive_data(b"\x00\x10\x00\x00", t)
    p.now = t
    return out


# --------------------------------------------------------------------------
# Heartbeats
# --------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["router", "modem"])
def test_heartbeat_every_interval_when_idle(side: str) -> None:
    p = established()
    assert heartbeat_times(p, side, 5.0) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_heartbeat_interval_is_our_own_not_the_peers() -> None:
    def pair() -> Pair:
        return established(
            router_config(heartbeat_interval_ms=2000), modem_config(heartbeat_interval_ms=1500)
        )

    assert heartbeat_times(pair(), "router", 8.0) == [2.0, 4.0, 6.0, 8.0]
    assert heartbeat_times(pair(), "modem", 6.0) == [1.5, 3.0, 4.5, 6.0]


def test_no_heartbeat_when_other_traffic_went_out_recently() -> None:
    p = established()
    p.now = 0.5
    p.router.update_session(add=["192.0.2.1"], now=0.5)
    assert [m.type for m in p.sent("router")] == [M.SESSION_UPDATE]
    assert p.router.get_timer() == 1.5
    p.router.handle_timer(1.0)
    assert p.router.data_to_send() == b""
    p.router.receive_data(b"\x00\x04\x00\x05\x00\x01\x00\x01\x00", 1.2)  # Session Update Response
    p.router.handle_timer(1.5)
    assert p.sent("router") == [msg(M.HEARTBEAT)]
    assert p.router.get_timer() == 2.5


def test_sending_a_response_also_counts_as_traffic() -> None:
    p = established()
    p.now = 0.9
    p.modem.add_destination(MAC1, now=0.9)
    p.deliver("modem")  # the router answers at 0.9
    assert p.router.get_timer() == 1.9
    p.router.handle_timer(1.0)
    assert [m.type for m in p.sent("router")] == [M.DESTINATION_UP_RESPONSE]
    p.router.handle_timer(1.9)
    assert p.sent("router") == [msg(M.HEARTBEAT)]


def test_no_heartbeats_while_terminating() -> None:
    p = established()
    p.router.terminate(now=0.1)
    p.sent("router")
    for t in (1.0, 2.0, 3.0, 3.9):
        p.router.handle_timer(t)
        assert p.router.data_to_send() == b""
    assert p.router.state is State.TERMINATING


# --------------------------------------------------------------------------
# Peer silence
# --------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["router", "modem"])
def test_silence_of_two_peer_intervals_terminates_with_132(side: str) -> None:
    p = established()
    s = p.side(side)  # type: ignore[arg-type]
    for t in (1.0, 1.5, 1.999999):
        s.handle_timer(t)
        assert s.state is State.IN_SESSION, t
    s.handle_timer(2.0)
    assert s.state is State.RESET  # no wait for a silent peer's response (issue 14)
    sent = p.sent(side)  # type: ignore[arg-type]
    assert [m.type for m in sent] == [M.HEARTBEAT, M.SESSION_TERMINATION]
    assert sent[-1].get(Status).code == 132  # type: ignore[union-attr]


def test_silence_limit_uses_the_peers_interval() -> None:
    p = established(
        router_config(heartbeat_interval_ms=1000), modem_config(heartbeat_interval_ms=3000)
    )
    # The router heartbeats every second but tolerates 6 s of modem silence.
    for t in range(1, 6):
        p.router.handle_timer(float(t))
        assert p.router.state is State.IN_SESSION
    assert p.router.get_timer() == 6.0
    p.router.handle_timer(5.999)
    assert p.router.state is State.IN_SESSION
    p.router.handle_timer(6.0)
    assert p.router.state is State.RESET


def test_missed_heartbeats_is_configurable() -> None:
    p = established(router_config(missed_heartbeats=3))
    p.router.handle_timer(2.5)
    assert p.router.state is State.IN_SESSION
    p.router.handle_timer(3.0)
    assert p.router.state is State.RESET


def test_missed_heartbeats_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="minimum of 2"):
        SessionConfig(missed_heartbeats=1)


def test_any_valid_message_resets_peer_silence() -> None:
    p = established()
    p.up([MAC1])  # at t=0
    p.now = 1.5
    p.modem.update_destination(MAC1, Metrics(latency=3), now=1.5)
    p.deliver("modem")
    assert p.router.get_timer() == 1.0  # own heartbeat still first
    p.router.handle_timer(1.0)
    p.router.handle_timer(3.0)
    p.router.handle_timer(3.4999)
    assert p.router.state is State.IN_SESSION
    p.router.handle_timer(3.5)  # 2 s after the Destination Update
    assert p.router.state is State.RESET


def test_invalid_message_does_not_count_as_peer_traffic() -> None:
    p = established()
    p.router.terminate(now=0.0)
    deadline = p.router.get_timer()
    p.router.receive_data(b"\x00\x10\x00\x00", 1.0)  # Heartbeat, ignored while terminating
    assert p.router.get_timer() == deadline == 4.0


def test_heartbeats_keep_both_sides_alive_indefinitely() -> None:
    p = established()
    p.run_until(120.0)
    assert p.router.state is p.modem.state is State.IN_SESSION
    hb = [w for w in p.log if w.type == M.HEARTBEAT]
    assert len(hb) == 240


def test_one_way_loss_detected_by_the_side_that_hears_nothing() -> None:
    p = established()
    # Router -> modem bytes are lost from the start; modem -> router flows.
    t = 0.0
    while p.modem.state is State.IN_SESSION:
        t = min(x for x in (p.router.get_timer(), p.modem.get_timer()) if x is not None)
        p.now = t
        p.router.handle_timer(t)
        p.modem.handle_timer(t)
        p.router.data_to_send()  # lost
        p.deliver("modem")
    assert t == 2.0
    # The modem timed out and is reset at once (issue 14); the router heard
    # its Session Termination and answered (the answer is lost), so both end.
    assert p.modem.state is State.RESET
    assert p.router.state is State.RESET
    (ev,) = p.router.events()
    assert isinstance(ev, SessionTerminated) and ev.status == 132 and ev.by_peer


# --------------------------------------------------------------------------
# Initialisation timeout
# --------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["router", "modem"])
def test_init_timeout_defaults_to_four_heartbeat_intervals(side: str) -> None:
    p = Pair(router_config(heartbeat_interval_ms=1500), modem_config(heartbeat_interval_ms=1500))
    s = p.side(side)  # type: ignore[arg-type]
    s.data_to_send()
    assert s.get_timer() == 6.0
    s.handle_timer(5.999)
    assert s.state is State.INITIALIZING and s.events() == []
    s.handle_timer(6.0)
    assert s.state is State.RESET
    assert s.data_to_send() == b""  # no session yet: nothing to terminate
    (ev,) = s.events()
    assert isinstance(ev, SessionTerminated) and ev.status == 132 and not ev.by_peer
    assert "initialisation timed out" in ev.reason


@pytest.mark.parametrize("side", ["router", "modem"])
def test_init_timeout_configurable(side: str) -> None:
    p = Pair(router_config(init_timeout_ms=250), modem_config(init_timeout_ms=250), now=10.0)
    s = p.side(side)  # type: ignore[arg-type]
    assert s.get_timer() == 10.25
    s.handle_timer(10.25)
    assert s.state is State.RESET


def test_init_timeout_cancelled_by_session_up() -> None:
    p = Pair(router_config(init_timeout_ms=500), modem_config(init_timeout_ms=500))
    p.establish()
    p.run_until(10.0)
    assert p.router.state is p.modem.state is State.IN_SESSION


def test_init_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="init_timeout_ms"):
        SessionConfig(init_timeout_ms=0)


# --------------------------------------------------------------------------
# Termination timeout
# --------------------------------------------------------------------------


def test_termination_waits_four_peer_intervals_by_default() -> None:
    p = established(modem=modem_config(heartbeat_interval_ms=2000))
    p.router.terminate(now=1.0)
    assert p.router.get_timer() == 9.0
    p.router.handle_timer(8.99)
    assert p.router.state is State.TERMINATING
    p.router.handle_timer(9.0)
    assert p.router.state is State.RESET


def test_termination_intervals_configurable() -> None:
    p = established(router_config(termination_intervals=1))
    p.router.terminate(now=0.0)
    assert p.router.get_timer() == 1.0
    with pytest.raises(ValueError):
        SessionConfig(termination_intervals=0)


def test_termination_timeout_before_session_up_uses_own_interval() -> None:
    p = Pair(router_config(heartbeat_interval_ms=3000))
    p.router.terminate(now=0.0)
    assert p.router.get_timer() == 12.0


@pytest.mark.parametrize("side", ["router", "modem"])
def test_heartbeat_timeout_resets_at_once_and_drops_destinations(side: str) -> None:
    """Issue 14, defect 2: after a heartbeat timeout the session used to wait
    4 more peer intervals for a Session Termination Response from a peer
    already known to be dead, keeping its destinations meanwhile. Now the
    132 goes out and the session is reset in the same call (§7.3.1 / §7.4)."""
    p = established()
    p.up([MAC1, MAC2])
    p.events()
    s = p.side(side)  # type: ignore[arg-type]
    t0 = p.now
    assert s.get_timer() == pytest.approx(t0 + 1.0)  # our heartbeat first
    s.handle_timer(t0 + 1.0)
    assert s.get_timer() == pytest.approx(t0 + 2.0)  # 2 peer intervals of silence
    s.handle_timer(t0 + 2.0)
    assert s.state is State.RESET and s.closed
    assert s.get_timer() is None
    assert s.destinations == {}
    sent = p.sent(side)  # type: ignore[arg-type]
    assert sent[-1].type == M.SESSION_TERMINATION
    assert sent[-1].get(Status).code == 132  # type: ignore[union-attr]
    (ev,) = [e for e in s.events() if isinstance(e, SessionTerminated)]
    assert ev.status == 132 and not ev.by_peer
    assert "2 heartbeat intervals" in ev.reason
    assert len(ev.destinations) == 2


def test_errors_other_than_timeout_still_wait_for_the_response() -> None:
    """§7.4's wait stays for every other termination: the peer is alive."""
    p = established()
    p.router.terminate(now=0.5)
    assert p.router.state is State.TERMINATING
    assert p.router.get_timer() == 4.5


# --------------------------------------------------------------------------
# Link Characteristics slowness
# --------------------------------------------------------------------------


def test_link_characteristics_timeout_keeps_request_outstanding() -> None:
    p = established(router_config(link_characteristics_timeout_ms=3000))
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, cdrr=1000, now=p.now)
    p.pump()
    assert len(p.modem.events()) == 1
    p.run_until(2.999)
    assert p.router.events() == []
    p.run_until(3.0)
    assert p.router.events() == [LinkCharacteristicsTimeout(MAC1_B)]
    # §8: still outstanding, no second request.
    with pytest.raises(TransactionInProgressError):
        p.router.request_link_characteristics(MAC1, cdrr=2000, now=p.now)
    p.run_until(30.0)
    assert p.router.events() == []  # reported once only
    p.modem.respond_link_characteristics(MAC1, 0, Metrics(cdrr=1000), now=p.now)
    p.pump()
    (resp,) = p.router.events()
    assert isinstance(resp, LinkCharacteristicsResponse) and resp.metrics.cdrr == 1000
    p.router.request_link_characteristics(MAC1, cdrr=2000, now=p.now)


def test_link_characteristics_timer_is_the_earliest_action() -> None:
    p = established(router_config(link_characteristics_timeout_ms=400))
    p.up([MAC1, MAC2])
    p.now = 0.1
    p.router.request_link_characteristics(MAC1, latency=1, now=0.1)
    p.router.request_link_characteristics(MAC2, latency=1, now=0.2)
    assert p.router.get_timer() == pytest.approx(0.5)
    p.router.handle_timer(0.5)
    assert p.router.events() == [LinkCharacteristicsTimeout(MAC1_B)]
    assert p.router.get_timer() == pytest.approx(0.6)
    p.router.handle_timer(p.router.get_timer())  # type: ignore[arg-type]
    assert len(p.router.events()) == 1
    assert p.router.get_timer() == pytest.approx(1.2)  # heartbeat (sent LCRs at 0.2)


def test_link_characteristics_answered_before_timeout_no_event() -> None:
    p = established(router_config(link_characteristics_timeout_ms=3000))
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, cdrr=1000, now=p.now)
    p.pump()
    p.modem.events()
    p.modem.respond_link_characteristics(MAC1, now=p.now)
    p.pump()
    p.router.events()
    p.run_until(10.0)
    assert p.router.events() == []


def test_link_characteristics_timeout_disabled() -> None:
    p = established(router_config(link_characteristics_timeout_ms=None))
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, cdrr=1000, now=p.now)
    p.run_until(100.0)
    assert p.router.events() == []


def test_destination_down_cancels_link_characteristics_timer() -> None:
    p = established(router_config(link_characteristics_timeout_ms=3000))
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, cdrr=1000, now=p.now)
    p.pump()
    p.modem.events()
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    p.events()
    p.run_until(10.0)
    assert p.router.events() == []


# --------------------------------------------------------------------------
# get_timer() / handle_timer() contract
# --------------------------------------------------------------------------


def snapshot(s: Session) -> tuple[object, ...]:
    return (s.state, dict(s.tx_counts), len(s._events), s.get_timer())


def check_timer_contract(s: Session) -> float | None:
    """handle_timer just before get_timer() does nothing; at it, something."""
    t = s.get_timer()
    if t is None:
        assert s.state is State.RESET
        return None
    before = snapshot(s)
    s.handle_timer(t - 1e-6)
    assert snapshot(s) == before, "handle_timer before get_timer() acted"
    s.handle_timer(t)
    assert snapshot(s) != before, f"handle_timer at get_timer()={t!r} did nothing"
    return t


def test_timer_contract_through_a_session_life() -> None:
    p = established(router_config(link_characteristics_timeout_ms=700))
    p.up([MAC1])
    for _ in range(4):
        # Whichever side is due first acts; the pair then talks at that time.
        first = min(p.router, p.modem, key=lambda s: s.get_timer() or 0.0)
        p.now = check_timer_contract(first) or p.now
        p.pump()
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    # The modem goes quiet: LCR slowness, heartbeats, silence, termination.
    while p.router.state is not State.RESET:
        check_timer_contract(p.router)
    assert LinkCharacteristicsTimeout(MAC1_B) in p.router.events()
    assert check_timer_contract(p.router) is None
    q = Pair()
    check_timer_contract(q.modem)
    check_timer_contract(q.router)


@settings(max_examples=150, deadline=None)
@given(
    hb=st.integers(1, 5000),
    peer_hb=st.integers(1, 5000),
    times=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=6),
)
def test_handle_timer_at_get_timer_always_acts(hb: int, peer_hb: int, times: list[float]) -> None:
    """Float rounding must never make get_timer() a no-op deadline."""
    p = Pair(router_config(heartbeat_interval_ms=hb), modem_config(heartbeat_interval_ms=peer_hb))
    p.establish()
    for t in sorted(times):
        p.now = t
        if p.router.state is not State.IN_SESSION:
            break
        p.router.receive_data(b"\x00\x10\x00\x00", t)  # peer heartbeat at t
        p.router.handle_timer(t)
        p.router.data_to_send()
        timer = p.router.get_timer()
        if timer is None:
            break
        before = snapshot(p.router)
        p.router.handle_timer(timer)
        assert snapshot(p.router) != before


# --------------------------------------------------------------------------
# The peer's Heartbeat Interval is bounded (issue 14, defect 3)
# --------------------------------------------------------------------------

U32_MAX = 0xFFFFFFFF


def test_modem_refuses_a_router_heartbeat_above_the_maximum() -> None:
    """A router announcing 0xFFFFFFFF ms used to get a session that a dead
    router kept for 2 x 49.7 days (and its max_sessions slot). Now the
    modem refuses it like B.2: 'Request Denied', then closes."""
    p = Pair(router_config(heartbeat_interval_ms=U32_MAX), modem_config())
    crossed = p.pump()
    resp = crossed[1]
    assert resp.sender == "modem" and resp.type == M.SESSION_INITIALIZATION_RESPONSE
    st = resp.message.get(Status)
    assert st is not None and st.code == StatusCode.REQUEST_DENIED
    assert "4294967295 ms" in st.text and "3600000 ms" in st.text
    assert p.modem.state is State.RESET and p.router.state is State.RESET
    (me,) = p.modem.events()
    assert isinstance(me, SessionTerminated) and me.status == StatusCode.REQUEST_DENIED
    assert not me.by_peer and "max_peer_heartbeat_interval_ms" in me.reason
    assert p.modem.get_timer() is None


def test_router_refuses_a_modem_heartbeat_above_the_maximum() -> None:
    p = Pair(router_config(), modem_config(heartbeat_interval_ms=U32_MAX))
    p.deliver("router")  # Session Initialization
    p.deliver("modem")  # the Response, with 0xFFFFFFFF ms
    assert p.router.state is State.TERMINATING
    (term,) = p.sent("router")
    assert term.type == M.SESSION_TERMINATION
    assert term.get(Status).code == StatusCode.REQUEST_DENIED  # type: ignore[union-attr]
    # The wait for the response counts in our interval, not the refused one.
    assert p.router.get_timer() == pytest.approx(p.now + 4 * 1.0)
    p.router.handle_timer(p.now + 4.0)
    assert p.router.state is State.RESET
    (re,) = p.router.events()
    assert isinstance(re, SessionTerminated) and re.status == StatusCode.REQUEST_DENIED
    assert not re.by_peer


def test_peer_heartbeat_at_the_maximum_is_accepted() -> None:
    p = Pair(
        router_config(heartbeat_interval_ms=5000, max_peer_heartbeat_interval_ms=5000),
        modem_config(heartbeat_interval_ms=5000, max_peer_heartbeat_interval_ms=5000),
    )
    ru, mu = p.establish()
    assert ru.peer_heartbeat_ms == mu.peer_heartbeat_ms == 5000
    p.modem.handle_timer(9.999)
    assert p.modem.state is State.IN_SESSION  # 2 x 5 s of silence allowed


def test_no_maximum_when_none() -> None:
    p = Pair(
        router_config(heartbeat_interval_ms=U32_MAX),
        modem_config(max_peer_heartbeat_interval_ms=None),
    )
    _, mu = p.establish()
    assert mu.peer_heartbeat_ms == U32_MAX


@pytest.mark.parametrize("bad", [0, U32_MAX + 1, -1, True])
def test_maximum_must_be_a_u32(bad: object) -> None:
    with pytest.raises(ValueError, match="max_peer_heartbeat_interval_ms"):
        SessionConfig(max_peer_heartbeat_interval_ms=bad)  # type: ignore[arg-type]
    assert SessionConfig().max_peer_heartbeat_interval_ms == 3_600_000
