"""Engine-level regression tests (fake clock, no sockets) for the bugs of the
"one owner per piece of state" issue; the end-to-end twins are in
``tests/integration/test_engine_regressions.py``. Also: the destination
transition table is complete and its actions exist.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from dlep.ext.link_id import LinkIdentifier, LinkIdExtension
from dlep.ext.multihop import (
    HopControlAction,
    HopCount,
    HopCountReported,
    MultiHopExtension,
    hop_control_request_items,
)
from dlep.ext.pause import PauseExtension, QueuesPaused, pause
from dlep.fsm import (
    DESTINATION_TRANSITIONS,
    DestinationDown,
    DestinationTable,
    DestInput,
    DestKey,
    DestState,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    LinkCharacteristicsTimeout,
    Metrics,
    ResponseStatus,
    SessionArgumentError,
    SessionError,
    SessionTerminated,
    State,
)
from dlep.wire import (
    Ipv4Address,
    MacAddress,
    Message,
    MessageType,
    Status,
    StatusCode,
    core_registry,
)

from .fsm_harness import (
    DECLARED,
    K1,
    MAC1,
    MAC1_B,
    Pair,
    established,
    modem_config,
    router_config,
)

M = MessageType


# -- 1. time is an argument; nothing remembers it ----------------------------------


def test_link_request_deadline_counts_from_the_call_not_the_last_message() -> None:
    """The router last heard the modem at 0.0; a request at 30.0 with a 10 s
    report time is slow at 40.0, not at once (and not at 10.0)."""
    p = established(
        router_config(heartbeat_interval_ms=60_000, link_characteristics_timeout_ms=10_000),
        modem_config(heartbeat_interval_ms=60_000),
    )
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, cdrr=1000, now=30.0)
    assert p.router.get_timer() == pytest.approx(40.0)
    p.router.handle_timer(30.5)
    assert p.router.events() == []
    p.router.handle_timer(40.0)
    assert p.router.events() == [LinkCharacteristicsTimeout(MAC1_B)]


def test_what_we_send_restarts_our_heartbeat_at_the_call_time() -> None:
    p = established(
        router_config(heartbeat_interval_ms=60_000),
        modem_config(heartbeat_interval_ms=60_000),
    )
    p.modem.add_destination(MAC1, now=45.0)
    # Our next heartbeat is due 60 s after what we just sent, not after the
    # last message received (0.0); the peer may be silent until 0 + 2 x 60.
    assert p.modem.get_timer() == pytest.approx(105.0)
    p.modem.handle_timer(60.0)
    assert p.modem.data_to_send().count(b"\x00\x10\x00\x00") == 0  # no Heartbeat yet


def test_every_engine_call_needs_the_time() -> None:
    p = established()
    with pytest.raises(TypeError, match="now"):
        p.modem.add_destination(MAC1)  # type: ignore[call-arg]
    with pytest.raises(SessionError, match="no engine call in progress"):
        _ = p.modem.now


# -- 2. destinations are named by DestKey ------------------------------------------------


def _link_pause_pair() -> tuple[Pair, PauseExtension]:
    reg = core_registry()
    for ext in (LinkIdExtension(), PauseExtension()):
        ext.register(reg)
    rpause = PauseExtension()
    p = Pair(
        router_config(registry=reg, plugins=(LinkIdExtension(), rpause)),
        modem_config(registry=reg, plugins=(LinkIdExtension(), PauseExtension())),
    )
    p.establish()
    return p, rpause


def test_link_id_destination_key_everywhere() -> None:
    p, rpause = _link_pause_pair()
    lid = LinkIdentifier.from_int(27)
    key = DestKey(MAC1_B, (lid,))
    p.modem.add_destination(MAC1, addresses=["10.1.0.1"], extra=[lid], now=p.now)
    p.pump()
    assert set(p.router.destinations) == {key}
    p.modem.update_destination(key, extra=[pause(0)], now=p.now)
    p.pump()
    (ev,) = [e for e in p.router.events() if isinstance(e, QueuesPaused)]
    assert ev.dest == key
    assert rpause.paused(p.router, key) == {0}
    p.modem.drop_destination(key, now=p.now)
    p.pump()
    downs = [e for e in p.router.events() if isinstance(e, DestinationDown)]
    assert downs == [DestinationDown(MAC1_B, by_peer=True, ident=(lid,))]
    assert downs[0].key == key
    assert rpause.state(p.router).dest_paused == {}  # went with the destination
    # Inconsistency and ResponseStatus carry the MAC, and the key beside it.
    lid2 = LinkIdentifier.from_int(28)
    p.modem.add_destination(MAC1, addresses=["10.1.0.2"], extra=[lid2], now=p.now)
    p.pump()
    p.inject(
        "router",
        Message(
            M.DESTINATION_UPDATE,
            (MacAddress(MAC1_B), lid2, Ipv4Address(IPv4Address("10.1.0.9"), add=False)),
        ),
    )
    (inc,) = [e for e in p.router.events() if type(e).__name__ == "Inconsistency"]
    assert inc.mac == MAC1_B and inc.key == DestKey(MAC1_B, (lid2,))  # type: ignore[attr-defined]
    p.router.terminate(now=p.now)
    p.pump()
    (term,) = [e for e in p.router.events() if isinstance(e, SessionTerminated)]
    assert term.destinations == (DestKey(MAC1_B, (lid2,)),)


def test_response_status_names_mac_and_key() -> None:
    p = established()
    p.up([MAC1])
    p.router.drop_destination(MAC1, now=p.now)
    p.sent("router")
    p.inject("router", Message(M.DESTINATION_DOWN_RESPONSE, (MacAddress(MAC1_B), Status(2, "no"))))
    rs = [e for e in p.router.events() if isinstance(e, ResponseStatus)]
    assert rs == [ResponseStatus(M.DESTINATION_DOWN_RESPONSE, 2, "no", MAC1_B)]
    assert rs[0].key == K1


# -- 3. RFC 8629 §3.2 -----------------------------------------------------------------


def _multihop_pair() -> Pair:
    reg = core_registry()
    MultiHopExtension().register(reg)
    p = Pair(
        router_config(registry=reg, plugins=(MultiHopExtension(),)),
        modem_config(registry=reg, plugins=(MultiHopExtension(),)),
    )
    p.establish()
    return p


@pytest.mark.parametrize("known", [True, False], ids=["reported-before", "never-reported"])
def test_hop_control_request_answer_carries_a_hop_count(known: bool) -> None:
    p = _multihop_pair()
    extra = [HopCount(4, True)] if known else []
    p.modem.add_destination(MAC1, extra=extra, now=p.now)
    p.pump()
    p.events()
    p.router.request_link_characteristics(
        MAC1, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION), now=p.now
    )
    p.pump()
    (req,) = [e for e in p.modem.events() if isinstance(e, LinkCharacteristicsRequested)]
    assert [type(i).__name__ for i in req.extra] == ["HopControl"]
    p.modem.respond_link_characteristics(MAC1, now=p.now)  # the application gave none
    p.pump()
    (resp,) = [w.message for w in p.log if w.type == M.LINK_CHARACTERISTICS_RESPONSE]
    hop = resp.get(HopCount)
    assert hop is not None and hop.hops == (4 if known else 1)
    rev = p.router.events()
    assert any(isinstance(e, LinkCharacteristicsResponse) for e in rev)
    assert any(
        isinstance(e, HopCountReported) and e.message_type == M.LINK_CHARACTERISTICS_RESPONSE
        for e in rev
    )


def test_application_hop_count_wins_and_plain_requests_get_none() -> None:
    p = _multihop_pair()
    p.modem.add_destination(MAC1, extra=[HopCount(4, True)], now=p.now)
    p.pump()
    p.router.request_link_characteristics(
        MAC1, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION), now=p.now
    )
    p.pump()
    p.modem.respond_link_characteristics(MAC1, extra=[HopCount(1)], now=p.now)
    p.pump()
    p.router.request_link_characteristics(MAC1, cdrr=1000, now=p.now)
    p.pump()
    p.modem.respond_link_characteristics(MAC1, now=p.now)
    p.pump()
    answers = [w.message for w in p.log if w.type == M.LINK_CHARACTERISTICS_RESPONSE]
    assert [m.get_all(HopCount) for m in answers] == [[HopCount(1)], []]


# -- 4. the modem engine refuses what it could not keep ---------------------------------


def test_session_metrics_breaking_a_destination_are_refused() -> None:
    p = established()
    p.modem.add_destination(MAC1, Metrics(mdrr=10_000, cdrr=5_000), now=p.now)
    p.pump()
    with pytest.raises(SessionArgumentError, match=r"cdrr.*02:00:00:00:00:01") as err:
        p.modem.update_session(Metrics(cdrr=20_000), now=p.now)
    assert err.value.field == "metrics"
    assert p.modem.session_metrics == DECLARED
    assert p.modem.data_to_send() == b""


def test_destination_metrics_are_checked_with_the_session_wide_ones() -> None:
    p = established()  # session MDRR 100M, CDRR 50M
    with pytest.raises(SessionArgumentError, match=r"cdrr.*exceeds.*mdrr.*session-wide"):
        p.modem.add_destination(MAC1, Metrics(mdrr=10_000_000), now=p.now)
    assert p.modem.data_to_send() == b""


# -- 6. who ended it ----------------------------------------------------------------------


def test_termination_for_the_peers_fault_is_ours() -> None:
    p = established()
    p.inject("router", b"\x00\xc8\x00\x00")  # unknown message
    p.pump()
    (ev,) = [e for e in p.router.events() if isinstance(e, SessionTerminated)]
    assert ev.status == StatusCode.UNKNOWN_MESSAGE and not ev.by_peer
    (mev,) = [e for e in p.modem.events() if isinstance(e, SessionTerminated)]
    assert mev.by_peer  # the modem got the Session Termination
    assert p.router.state is p.modem.state is State.RESET


# -- the destination state machine -------------------------------------------------------


def test_every_transition_has_its_action() -> None:
    for (state, inp), (nxt, action) in DESTINATION_TRANSITIONS.items():
        assert isinstance(state, DestState) and isinstance(inp, DestInput)
        assert isinstance(nxt, DestState)
        assert callable(getattr(DestinationTable, "_a_" + action, None)), (state, inp, action)


def test_the_table_is_the_rule() -> None:
    """A few cells, read as the RFC says them."""
    t = DESTINATION_TRANSITIONS
    assert t[(DestState.ABSENT, DestInput.PEER_UP)] == (DestState.UP, "peer_up")
    assert t[(DestState.UP, DestInput.PEER_DOWN)] == (DestState.ABSENT, "peer_down")
    assert t[(DestState.GOING_DOWN, DestInput.PEER_UPDATE)][1] == "ignore"
    # §12.1: nothing about a destination before it is up.
    assert (DestState.ANNOUNCING, DestInput.PEER_UPDATE) not in t
    assert (DestState.DECIDING, DestInput.DROP) not in t


def test_rates_never_print_in_exponent_form() -> None:
    from dlep.daemon.fmt import rate

    assert rate(999_999) == "1 Mb/s"  # seen in the demo as "1e+03 kb/s"
    assert rate(999_499) == "999 kb/s"
    assert rate(54_000_000) == "54 Mb/s"
    assert rate(12_345_678_901_234) == "12.3 Tb/s"
    assert rate(999) == "999 b/s"
