"""Error handling: RFC 8175 §12.1-§12.2, §7.2, §7.4, §7.5, §8.

Each test provokes one error on an established (or initialising) session by
injecting bytes built with :mod:`dlep.wire`, and asserts what the engine put
on the wire (a Session Termination with the right status, or nothing at all)
and the state it ends in.
"""

from __future__ import annotations

import ipaddress

import pytest

from dlep.fsm import (
    DestinationRefused,
    DestinationUp,
    DestKey,
    Metrics,
    ResponseStatus,
    Session,
    SessionClosedError,
    SessionError,
    SessionTerminated,
    State,
    TransactionInProgressError,
)
from dlep.wire import (
    CurrentDataRateReceive,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
    Latency,
    Message,
    MessageType,
    Mtu,
    PeerType,
    Resources,
    Status,
    StatusCode,
    is_terminate,
)

from .fsm_harness import (
    EUI64,
    K1,
    K2,
    MAC1,
    MAC1_B,
    MAC2,
    Pair,
    established,
    mac,
    modem_config,
    msg,
    raw,
    raw_header,
    router_config,
    session_init,
    session_init_response,
)

M = MessageType
V4 = ipaddress.IPv4Address


def terminated_with(s: Session, sent: list[Message], code: int) -> Status:
    """Assert ``s`` sent exactly one Session Termination with ``code``."""
    assert [m.type for m in sent] == [M.SESSION_TERMINATION], sent
    st = sent[0].get(Status)
    assert st is not None and st.code == code, (st, code)
    assert s.state is State.TERMINATING
    return st


def check_error(p: Pair, to: str, data: bytes | Message, code: int) -> Status:
    p.inject(to, data)  # type: ignore[arg-type]
    s = p.side(to)  # type: ignore[arg-type]
    st = terminated_with(s, p.sent(to), code)  # type: ignore[arg-type]
    assert s.error_counts == {code: 1}
    return st


# --------------------------------------------------------------------------
# 128 Unknown Message
# --------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["router", "modem"])
@pytest.mark.parametrize("mtype", [0, 17, 200, 0xFFFF])
def test_unknown_message_terminates_with_128(side: str, mtype: int) -> None:
    p = established()
    st = check_error(p, side, raw_header(mtype, b""), StatusCode.UNKNOWN_MESSAGE)
    assert "unknown message type" in st.text
    assert p.side(side).error_counts == {128: 1}  # type: ignore[arg-type]


def test_unknown_message_while_router_initialising() -> None:
    p = Pair()
    p.sent("router")  # Session Initialization
    check_error(p, "router", raw_header(99, b""), 128)


# --------------------------------------------------------------------------
# 129 Unexpected Message
# --------------------------------------------------------------------------


def test_session_initialization_in_session_is_unexpected() -> None:
    p = established()
    st = check_error(p, "modem", session_init(), StatusCode.UNEXPECTED_MESSAGE)
    assert "SESSION_INITIALIZATION" in st.text and "in-session" in st.text


def test_session_initialization_response_in_session_is_unexpected() -> None:
    p = established()
    check_error(p, "router", session_init_response(), 129)


def test_destination_up_sent_to_a_modem_is_unexpected() -> None:
    p = established()
    check_error(p, "modem", msg(M.DESTINATION_UP, mac(MAC1)), 129)


@pytest.mark.parametrize(
    "message",
    [
        msg(M.DESTINATION_ANNOUNCE, mac(MAC1)),
        msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1)),
        msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0)),
        msg(M.SESSION_TERMINATION_RESPONSE),
    ],
)
def test_modem_only_messages_sent_to_router_are_unexpected(message: Message) -> None:
    p = established()
    check_error(p, "router", message, 129)


@pytest.mark.parametrize(
    "message",
    [
        msg(M.DESTINATION_UPDATE, mac(MAC1)),
        msg(M.LINK_CHARACTERISTICS_RESPONSE, mac(MAC1), Status(0)),
        msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(0)),
        msg(M.SESSION_TERMINATION_RESPONSE),
    ],
)
def test_router_only_messages_sent_to_modem_are_unexpected(message: Message) -> None:
    p = established()
    check_error(p, "modem", message, 129)


def test_heartbeat_before_session_initialization_response_is_unexpected() -> None:
    p = Pair()
    p.sent("router")
    check_error(p, "router", msg(M.HEARTBEAT), 129)


def test_session_update_response_without_request() -> None:
    p = established()
    st = check_error(p, "router", msg(M.SESSION_UPDATE_RESPONSE, Status(0)), 129)
    assert "without a Session Update" in st.text


def test_destination_up_response_without_request() -> None:
    p = established()
    p.up([MAC1])
    check_error(p, "modem", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0)), 129)


def test_destination_down_response_without_request() -> None:
    p = established()
    p.up([MAC1])
    check_error(p, "router", msg(M.DESTINATION_DOWN_RESPONSE, mac(MAC1), Status(0)), 129)


def test_link_characteristics_response_without_request() -> None:
    p = established()
    p.up([MAC1])
    st = check_error(p, "router", msg(M.LINK_CHARACTERISTICS_RESPONSE, mac(MAC1), Status(0)), 129)
    assert "without a request" in st.text


def test_destination_announce_response_without_announce() -> None:
    p = established()
    p.up([MAC1])
    check_error(p, "router", msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(0)), 129)


# --------------------------------------------------------------------------
# §8: a second request for a destination with one outstanding -> 129
# --------------------------------------------------------------------------


def test_second_destination_up_while_first_unanswered() -> None:
    p = established(router_config(auto_accept_destinations=False))
    up = msg(M.DESTINATION_UP, mac(MAC1))
    p.inject("router", up)
    assert p.sent("router") == []  # the application has not decided yet
    st = check_error(p, "router", up, 129)
    assert "still unanswered" in st.text


def test_second_link_characteristics_request_while_first_unanswered() -> None:
    p = established()
    p.up([MAC1])
    req = msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1))
    p.inject("modem", req)
    assert p.sent("modem") == []
    check_error(p, "modem", req, 129)


def test_second_destination_announce_while_first_unanswered() -> None:
    p = established()
    ann = msg(M.DESTINATION_ANNOUNCE, mac(MAC1))
    p.inject("modem", ann)
    check_error(p, "modem", ann, 129)


def test_destination_down_while_announce_unanswered() -> None:
    p = established()
    p.inject("modem", msg(M.DESTINATION_ANNOUNCE, mac(MAC1)))
    check_error(p, "modem", msg(M.DESTINATION_DOWN, mac(MAC1)), 129)


def test_requests_for_different_destinations_may_overlap() -> None:
    p = established()
    p.up([MAC1, MAC2])
    p.inject("modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1)))
    p.inject("modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC2), Latency(1)))
    assert p.modem.state is State.IN_SESSION
    assert len(p.modem.events()) == 2


# --------------------------------------------------------------------------
# 130 Invalid Data
# --------------------------------------------------------------------------


def test_malformed_item_is_invalid_data() -> None:
    p = established()
    bad_mac = (7).to_bytes(2, "big") + (5).to_bytes(2, "big") + b"\x02\x00\x00\x00\x01"
    st = check_error(p, "router", raw_header(M.DESTINATION_UP, bad_mac), 130)
    assert "MacAddress" in st.text


def test_item_running_past_the_end_is_invalid_data() -> None:
    p = established()
    body = (16).to_bytes(2, "big") + (8).to_bytes(2, "big") + b"\x00\x01"
    check_error(p, "modem", raw_header(M.SESSION_UPDATE, body), 130)


def test_missing_required_item_is_invalid_data() -> None:
    p = established()
    st = check_error(p, "router", raw(M.DESTINATION_UP, Latency(5)), 130)
    assert "missing required item" in st.text


def test_duplicate_item_is_invalid_data() -> None:
    p = established()
    check_error(p, "router", raw(M.DESTINATION_UP, mac(MAC1), Latency(5), Latency(6)), 130)


def test_duplicate_address_with_same_value_is_invalid_data() -> None:
    p = established()
    a = Ipv4Address(V4("10.0.0.1"))
    check_error(p, "router", raw(M.DESTINATION_UP, mac(MAC1), a, a), 130)


def test_item_not_allowed_in_message_is_invalid_data() -> None:
    p = established()
    check_error(p, "modem", raw(M.HEARTBEAT, Status(0)), 130)


@pytest.mark.parametrize(
    "message",
    [
        msg(M.DESTINATION_UP, mac(MAC2), Resources(50)),
        msg(M.DESTINATION_UPDATE, mac(MAC1), Mtu(1400)),
        msg(M.SESSION_UPDATE, Resources(1)),
    ],
)
def test_metric_not_declared_in_session_init_response(message: Message) -> None:
    p = established()  # the default modem declares neither Resources nor MTU
    p.up([MAC1])
    st = check_error(p, "router", message, 130)
    assert "did not declare" in st.text


def test_undeclared_metric_in_link_characteristics_response() -> None:
    p = established()
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    p.sent("router")
    check_error(
        p, "router", msg(M.LINK_CHARACTERISTICS_RESPONSE, mac(MAC1), Status(0), Mtu(1)), 130
    )


def test_undeclared_metric_in_destination_announce_response() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.sent("router")
    check_error(
        p,
        "router",
        msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(0), Resources(1)),
        130,
    )


def test_router_sending_metrics_in_session_update() -> None:
    p = established()
    st = check_error(p, "modem", msg(M.SESSION_UPDATE, CurrentDataRateReceive(1)), 130)
    assert "§12.7" in st.text


def test_a_flag_clear_in_session_initialization_closes_modem_silently() -> None:
    p = Pair(start=False)
    p.modem.start(0.0)
    p.inject("modem", session_init(1000, Ipv4Address(V4("192.0.2.1"), False)))
    assert p.modem.data_to_send() == b""
    assert p.modem.state is State.RESET
    (ev,) = p.modem.events()
    assert isinstance(ev, SessionTerminated) and ev.status == 130 and "Add/Drop" in ev.reason


def test_a_flag_clear_in_session_initialization_response() -> None:
    p = Pair()
    p.sent("router")
    flagless = Ipv4AttachedSubnet(V4("10.0.0.0"), 8, False)
    st = check_error(p, "router", session_init_response(0, 1000, session_metrics(), flagless), 130)
    assert "Add/Drop flag clear" in st.text


def test_same_address_twice_in_session_initialization_response() -> None:
    p = Pair()
    p.sent("router")
    # Equal items are refused by the codec already; a subnet whose host bits
    # differ is a different item but the same subnet to the session.
    s1 = Ipv4AttachedSubnet(V4("10.0.0.0"), 8)
    s2 = Ipv4AttachedSubnet(V4("10.0.0.1"), 8)
    st = check_error(p, "router", session_init_response(0, 1000, session_metrics(), s1, s2), 130)
    assert "added twice" in st.text


def session_metrics() -> Metrics:
    return Metrics(mdrr=1, mdrt=1, cdrr=1, cdrt=1, latency=1)


@pytest.mark.parametrize(
    ("first", "second", "why"),
    [
        ([], [Ipv4Address(V4("192.0.2.9"), False)], "never added"),
        (
            [Ipv6Address(ipaddress.IPv6Address("2001:db8::1"))],
            [Ipv6Address(ipaddress.IPv6Address("2001:db8::1"))],
            "added twice",
        ),
        ([], [Ipv4Address(V4("127.0.0.1"))], "not a forwardable"),
    ],
)
def test_inconsistent_address_in_session_update(
    first: list[Ipv4Address], second: list[Ipv4Address], why: str
) -> None:
    p = established()
    if first:
        p.inject("modem", msg(M.SESSION_UPDATE, *first))
        assert [m.type for m in p.sent("modem")] == [M.SESSION_UPDATE_RESPONSE]
        p.modem.events()
    st = check_error(p, "modem", msg(M.SESSION_UPDATE, *second), 130)
    assert why in st.text


def test_session_update_address_owned_by_a_destination() -> None:
    p = established()
    p.up([MAC1], addresses=["10.0.0.1"])
    st = check_error(p, "router", msg(M.SESSION_UPDATE, Ipv4Address(V4("10.0.0.1"))), 130)
    assert "belongs to destination" in st.text


@pytest.mark.parametrize(
    "mtype",
    [M.DESTINATION_UPDATE, M.DESTINATION_DOWN, M.DESTINATION_UP],
)
def test_eui64_mac_in_eui48_session(mtype: int) -> None:
    p = established()
    p.up([MAC1])
    st = check_error(p, "router", msg(mtype, mac(EUI64)), 130)
    assert "8-octet MAC" in st.text


def test_eui64_mac_in_eui48_session_at_modem() -> None:
    p = established()
    p.up([MAC1])
    check_error(p, "modem", msg(M.DESTINATION_ANNOUNCE, mac(EUI64)), 130)
    p = established()
    p.up([MAC1])
    check_error(p, "modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(EUI64), Latency(1)), 130)


def test_eui64_session_works_end_to_end() -> None:
    p = established()
    p.up([EUI64])
    assert set(p.router.destinations) == {DestKey(bytes.fromhex("020000fffe000001"))}
    with pytest.raises(SessionError, match="8-octet"):
        p.modem.add_destination(MAC1, now=p.now)


# --------------------------------------------------------------------------
# 131 Invalid Destination
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("router", msg(M.DESTINATION_UPDATE, mac(MAC1), Latency(1))),
        ("router", msg(M.DESTINATION_DOWN, mac(MAC1))),
        ("router", msg(M.LINK_CHARACTERISTICS_RESPONSE, mac(MAC1), Status(0))),
        ("router", msg(M.DESTINATION_DOWN_RESPONSE, mac(MAC1), Status(0))),
        ("router", msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(0))),
        ("modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1))),
        ("modem", msg(M.DESTINATION_DOWN, mac(MAC1))),
        ("modem", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0))),
    ],
)
def test_message_about_unannounced_destination(to: str, message: Message) -> None:
    p = established()
    st = check_error(p, to, message, StatusCode.INVALID_DESTINATION)
    assert "unannounced destination" in st.text


def test_message_about_downed_destination() -> None:
    p = established()
    p.up([MAC1])
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    check_error(p, "router", msg(M.DESTINATION_UPDATE, mac(MAC1), Latency(1)), 131)


def test_link_characteristics_request_about_router_downed_destination() -> None:
    p = established()
    p.up([MAC1])
    p.router.drop_destination(MAC1, now=p.now)
    p.pump()
    check_error(p, "modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1)), 131)


def test_destination_update_before_destination_up_was_accepted() -> None:
    p = established(router_config(auto_accept_destinations=False))
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC1)))
    st = check_error(p, "router", msg(M.DESTINATION_UPDATE, mac(MAC1), Latency(1)), 131)
    assert "before it was accepted" in st.text


def test_destination_down_while_destination_up_unanswered() -> None:
    """The modem's Destination Up is still a request in progress (§8)."""
    p = established(router_config(auto_accept_destinations=False))
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC1)))
    st = check_error(p, "router", msg(M.DESTINATION_DOWN, mac(MAC1)), 129)
    assert "Destination Up is still unanswered" in st.text


def test_link_characteristics_request_once_announce_accepted() -> None:
    p = established()
    p.inject("modem", msg(M.DESTINATION_ANNOUNCE, mac(MAC1)))
    p.modem.events()
    p.modem.respond_destination_announce(MAC1, True, now=p.now)
    p.sent("modem")
    p.inject("modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1)))
    assert p.modem.state is State.IN_SESSION
    assert p.modem.data_to_send() == b""  # the application answers


# --------------------------------------------------------------------------
# §12.2 Status code processing
# --------------------------------------------------------------------------


@pytest.mark.parametrize("code", [128, 129, 130, 131, 132, 133, 200, 240, 254, 255])
def test_terminate_status_in_a_response_is_echoed(code: int) -> None:
    p = established()
    p.modem.add_destination(MAC1, now=p.now)
    p.sent("modem")
    p.inject("modem", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(code, "peer says no")))
    (term,) = p.sent("modem")
    assert term == msg(M.SESSION_TERMINATION, Status(code, "peer says no"))
    assert p.modem.state is State.TERMINATING
    p.inject("modem", msg(M.SESSION_TERMINATION_RESPONSE))
    (ev,) = p.modem.events()
    assert isinstance(ev, SessionTerminated) and ev.status == code and ev.by_peer


def test_terminate_status_in_session_update_response_is_echoed() -> None:
    p = established()
    p.router.update_session(add=["192.0.2.1"], now=p.now)
    p.sent("router")
    p.inject("router", msg(M.SESSION_UPDATE_RESPONSE, Status(130)))
    assert p.sent("router") == [msg(M.SESSION_TERMINATION, Status(130))]


def test_terminate_status_in_session_initialization_response_is_echoed() -> None:
    p = Pair()
    p.sent("router")
    p.inject("router", session_init_response(131))
    assert p.sent("router") == [msg(M.SESSION_TERMINATION, Status(131))]


@pytest.mark.parametrize("code", [1, 2, 3, 4, 99, 100, 111, 112, 127])
def test_continue_status_in_destination_up_response(code: int) -> None:
    """100-127 are 'Continue' per Table 2 / IANA (§12.2 prose says 100+)."""
    p = established()
    p.modem.add_destination(MAC1, now=p.now)
    p.modem.update_destination(MAC1, Metrics(latency=7), now=p.now)  # deferred
    p.sent("modem")
    p.inject("modem", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(code, "x")))
    assert p.modem.state is State.IN_SESSION
    assert p.sent("modem") == []  # deferred update discarded (§12.12)
    assert p.modem.events() == [DestinationRefused(MAC1_B, code, "x")]
    assert p.modem.destination(MAC1) is None
    with pytest.raises(SessionError):
        p.modem.update_destination(MAC1, Metrics(latency=8), now=p.now)


@pytest.mark.parametrize("code", [2, 100, 127])
def test_continue_status_in_session_update_response(code: int) -> None:
    p = established()
    p.router.update_session(add=["192.0.2.1"], now=p.now)
    p.sent("router")
    p.inject("router", msg(M.SESSION_UPDATE_RESPONSE, Status(code, "meh")))
    assert p.router.state is State.IN_SESSION
    assert p.router.events() == [ResponseStatus(M.SESSION_UPDATE_RESPONSE, code, "meh")]


def test_is_terminate_follows_the_iana_table() -> None:
    assert [c for c in range(256) if not is_terminate(c)] == list(range(128))


def test_continue_status_in_destination_down_response() -> None:
    p = established()
    p.up([MAC1])
    p.router.drop_destination(MAC1, now=p.now)
    p.sent("router")
    p.inject("router", msg(M.DESTINATION_DOWN_RESPONSE, mac(MAC1), Status(2)))
    rev = p.router.events()
    assert rev[0] == ResponseStatus(M.DESTINATION_DOWN_RESPONSE, 2, "", MAC1_B)
    assert p.router.destination(MAC1) is None


# --------------------------------------------------------------------------
# §7.2: the modem waiting for Session Initialization
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        raw(M.HEARTBEAT),
        raw(M.SESSION_UPDATE),
        raw(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0)),
        raw(M.SESSION_TERMINATION, Status(255)),
        raw_header(77, b""),  # unknown message
        # Session Initialization holding only an unknown item: no Heartbeat Interval
        b"\x00\x01\x00\x04\xff\xff\x00\x00",
        raw(M.SESSION_INITIALIZATION, PeerType("x")),  # missing Heartbeat Interval
        raw(M.SESSION_INITIALIZATION, HeartbeatInterval(1), HeartbeatInterval(2), PeerType("")),
    ],
)
def test_modem_receiving_anything_but_session_initialization_sends_nothing(data: bytes) -> None:
    p = Pair(start=False)
    p.modem.start(0.0)
    p.modem.receive_data(data, 0.0)
    assert p.modem.state is State.RESET
    assert p.modem.data_to_send() == b""
    (ev,) = p.modem.events()
    # We closed it (the peer's fault, which the reason names): not "by peer".
    assert isinstance(ev, SessionTerminated) and not ev.by_peer and ev.destinations == ()
    # Later input changes nothing.
    p.modem.receive_data(raw(M.SESSION_INITIALIZATION, HeartbeatInterval(1000), PeerType("")), 1.0)
    p.modem.handle_timer(100.0)
    assert p.modem.data_to_send() == b"" and p.modem.events() == []


def test_modem_garbage_first_sends_nothing() -> None:
    p = Pair(start=False)
    p.modem.start(0.0)
    p.modem.receive_data(b"\xde\xad\x00\x02\xbe\xef", 0.0)
    assert p.modem.state is State.RESET and p.modem.data_to_send() == b""


def test_modem_partial_garbage_waits_then_init_timeout_sends_nothing() -> None:
    p = Pair(start=False)
    p.modem.start(0.0)
    # "GET " announces a 21536-octet body: the framer waits for it.
    p.modem.receive_data(b"GET / HTTP/1.1\r\n\r\n", 0.0)
    assert p.modem.state is State.INITIALIZING
    assert p.modem.get_timer() == 4.0
    p.modem.handle_timer(4.0)
    assert p.modem.state is State.RESET and p.modem.data_to_send() == b""


def test_modem_tolerates_unknown_items_in_session_initialization() -> None:
    """§12.5: unknown data items in Session Initialization MAY be ignored."""
    p = Pair(start=False)
    p.modem.start(0.0)
    unknown = (0x7000).to_bytes(2, "big") + (2).to_bytes(2, "big") + b"hi"
    body = HeartbeatInterval(1000).encode() + PeerType("r").encode() + unknown
    p.modem.receive_data(raw_header(M.SESSION_INITIALIZATION, body), 0.0)
    assert p.modem.state is State.IN_SESSION


def test_modem_terminate_before_initialization_sends_nothing() -> None:
    p = Pair(start=False)
    p.modem.start(0.0)
    p.modem.terminate(now=p.now)
    assert p.modem.state is State.RESET and p.modem.data_to_send() == b""


def test_terminate_before_start_is_an_error() -> None:
    p = Pair(start=False)
    with pytest.raises(SessionError, match="not started"):
        p.router.terminate(now=p.now)
    p.router.start(0.0)
    with pytest.raises(SessionError, match="already started"):
        p.router.start(0.0)


def test_router_terminates_while_initialising() -> None:
    p = Pair()
    p.sent("router")
    p.router.terminate(now=p.now)
    assert [m.type for m in p.sent("router")] == [M.SESSION_TERMINATION]
    p.inject("router", msg(M.SESSION_TERMINATION_RESPONSE))
    assert p.router.state is State.RESET


def test_peer_terminates_while_router_initialising() -> None:
    p = Pair()
    p.sent("router")
    p.inject("router", msg(M.SESSION_TERMINATION, Status(255)))
    assert p.sent("router") == [msg(M.SESSION_TERMINATION_RESPONSE)]
    assert p.router.state is State.RESET


# --------------------------------------------------------------------------
# §7.4 Session Termination state
# --------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["router", "modem"])
def test_after_termination_everything_but_the_response_is_ignored(side: str) -> None:
    p = established()
    p.up([MAC1])
    s = p.side(side)  # type: ignore[arg-type]
    s.terminate(StatusCode.SHUTTING_DOWN, now=p.now)
    p.sent(side)  # type: ignore[arg-type]
    for junk in [
        raw(M.HEARTBEAT),
        raw_header(999, b""),
        b"\x00\x10\x00\x01\x00",  # Heartbeat with a truncated item
        raw(M.DESTINATION_UPDATE, mac(MAC1), Latency(1)),
        raw(M.DESTINATION_UP, mac(MAC2)),
        raw(M.SESSION_INITIALIZATION, HeartbeatInterval(1), PeerType("")),
        raw(M.SESSION_UPDATE_RESPONSE, Status(130)),
        raw(M.DESTINATION_DOWN, mac(MAC1)),
    ]:
        s.receive_data(junk, 0.0)
        assert s.data_to_send() == b"" and s.state is State.TERMINATING
    assert s.events() == []
    s.receive_data(raw(M.SESSION_TERMINATION_RESPONSE), 0.0)
    assert s.state is State.RESET
    (ev,) = s.events()
    assert ev == SessionTerminated(255, "closed by application", False, (K1,))


@pytest.mark.parametrize("side", ["router", "modem"])
def test_what_is_ignored_after_termination_is_not_even_decoded(
    side: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer that keeps sending garbage after the error that ended its
    session cost a decode, and a rendered fault, per message: 80 % of a
    router's CPU under 32 such peers (issue 14's reliability suite)."""
    import dlep.fsm.session as session_mod

    p = established()
    s = p.side(side)  # type: ignore[arg-type]
    s.terminate(StatusCode.SHUTTING_DOWN, now=p.now)
    p.sent(side)  # type: ignore[arg-type]
    decoded = 0
    real = session_mod.decode_message

    def counting(*a: object, **kw: object) -> object:
        nonlocal decoded
        decoded += 1
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(session_mod, "decode_message", counting)
    errors = dict(s.error_counts)
    junk = raw_header(999, b"\xff" * 7) + b"\x00\x10\x00\x01\x00" + raw(M.HEARTBEAT)
    s.receive_data(junk * 1000, 0.0)
    assert decoded == 0 and s.error_counts == errors
    assert s.state is State.TERMINATING and s.data_to_send() == b""
    s.receive_data(raw(M.SESSION_TERMINATION_RESPONSE), 0.0)
    assert decoded == 1 and s.state is State.RESET


def test_termination_response_with_status_is_tolerated() -> None:
    """Appendix B.5 shows a Status 'Success' in the response; §12.10 none."""
    p = established()
    p.router.terminate(now=p.now)
    p.sent("router")
    p.inject("router", msg(M.SESSION_TERMINATION_RESPONSE, Status(0)))
    assert p.router.state is State.RESET


def test_no_termination_response_within_four_peer_intervals() -> None:
    p = established(modem=modem_config(heartbeat_interval_ms=2500))
    p.now = 10.0
    p.router.terminate(now=10.0)
    p.sent("router")
    assert p.router.get_timer() == 20.0  # 4 x the modem's 2.5 s
    p.router.handle_timer(19.99)
    assert p.router.state is State.TERMINATING
    p.router.handle_timer(20.0)
    assert p.router.state is State.RESET and p.router.data_to_send() == b""
    (ev,) = p.router.events()
    assert isinstance(ev, SessionTerminated) and ev.status == 255
    assert "no Session Termination Response" in ev.reason


def test_crossing_session_terminations_are_answered() -> None:
    p = established()
    p.up([MAC1])
    p.log.clear()
    p.router.terminate(StatusCode.SHUTTING_DOWN, "router quits", now=p.now)
    p.modem.terminate(StatusCode.TIMED_OUT, "modem quits", now=p.now)
    p.pump()
    assert [(w.sender, w.message) for w in p.log] == [
        ("router", msg(M.SESSION_TERMINATION, Status(255, "router quits"))),
        ("modem", msg(M.SESSION_TERMINATION, Status(132, "modem quits"))),
        ("modem", msg(M.SESSION_TERMINATION_RESPONSE)),
        ("router", msg(M.SESSION_TERMINATION_RESPONSE)),
    ]
    assert p.router.state is p.modem.state is State.RESET
    rev, mev = p.events()
    # Each side reports its own cause, exactly once.
    assert rev == [SessionTerminated(255, "router quits", False, (K1,))]
    assert mev == [SessionTerminated(132, "modem quits", False, (K1,))]


def test_peer_termination_reason_without_text() -> None:
    p = established()
    p.inject("modem", msg(M.SESSION_TERMINATION, Status(132)))
    (ev,) = p.modem.events()
    assert ev == SessionTerminated(132, "peer terminated the session (TIMED_OUT)", True, ())


# --------------------------------------------------------------------------
# §7.5 Session Reset
# --------------------------------------------------------------------------


def reset_pair() -> Pair:
    p = established()
    p.up([MAC1])
    p.router.announce_destination(MAC2, now=p.now)
    p.pump()
    p.events()
    p.router.terminate(now=p.now)
    p.pump()
    p.events()
    assert p.router.state is p.modem.state is State.RESET
    return p


@pytest.mark.parametrize(
    ("side", "call"),
    [
        ("router", lambda s: s.update_session(add=["192.0.2.1"], now=9.0)),
        ("modem", lambda s: s.update_session(Metrics(latency=1), now=9.0)),
        ("modem", lambda s: s.add_destination(MAC2, now=9.0)),
        ("modem", lambda s: s.update_destination(MAC1, Metrics(latency=1), now=9.0)),
        ("modem", lambda s: s.drop_destination(MAC1, now=9.0)),
        ("router", lambda s: s.drop_destination(MAC1, now=9.0)),
        ("router", lambda s: s.announce_destination(MAC2, now=9.0)),
        ("router", lambda s: s.request_link_characteristics(MAC1, latency=1, now=9.0)),
        ("router", lambda s: s.respond_destination_up(MAC1, True, now=9.0)),
        ("modem", lambda s: s.respond_link_characteristics(MAC1, now=9.0)),
        ("modem", lambda s: s.respond_destination_announce(MAC2, True, now=9.0)),
    ],
)
def test_api_calls_after_reset_raise_session_closed(side: str, call: object) -> None:
    p = reset_pair()
    s = p.side(side)  # type: ignore[arg-type]
    with pytest.raises(SessionClosedError):
        call(s)  # type: ignore[operator]
    assert s.data_to_send() == b""


def test_api_calls_while_terminating_raise_session_closed() -> None:
    p = established()
    p.up([MAC1])
    p.modem.terminate(now=p.now)
    with pytest.raises(SessionClosedError, match="terminating"):
        p.modem.update_destination(MAC1, Metrics(latency=1), now=p.now)
    p.router.terminate(now=p.now)
    with pytest.raises(SessionClosedError):
        p.router.request_link_characteristics(MAC1, latency=1, now=p.now)


def test_nothing_is_ever_sent_after_reset() -> None:
    p = reset_pair()
    for t in (1.0, 10.0, 1000.0, 1e9):
        for s in (p.router, p.modem):
            s.receive_data(raw(M.HEARTBEAT) + raw_header(500, b"") + b"junk", t)
            s.receive_data(raw(M.SESSION_TERMINATION, Status(255)), t)
            s.handle_timer(t)
            s.terminate(now=t)
            s.connection_lost(t)
            assert s.data_to_send() == b""
            assert s.get_timer() is None
            assert s.events() == []
    assert p.router.destinations == {} and p.modem.destinations == {}


def test_connection_lost_lists_destinations() -> None:
    p = established()
    p.up([MAC1, MAC2])
    p.router.connection_lost(5.0, "eof")
    p.modem.connection_lost(5.0)
    (re,) = p.router.events()
    (me,) = p.modem.events()
    assert re == SessionTerminated(None, "eof", True, (K1, K2))
    assert me == SessionTerminated(None, "connection lost", True, (K1, K2))
    assert p.router.closed and p.modem.closed
    assert p.router.data_to_send() == b""


def test_connection_lost_while_terminating_keeps_our_cause() -> None:
    p = established()
    p.router.terminate(StatusCode.TIMED_OUT, "why", now=p.now)
    p.router.connection_lost(1.0)
    (ev,) = p.router.events()
    assert isinstance(ev, SessionTerminated) and ev.status == 132 and not ev.by_peer
    assert "connection closed before response" in ev.reason


def test_connection_lost_while_initialising() -> None:
    p = Pair()
    p.modem.connection_lost(0.5)
    (ev,) = p.modem.events()
    assert isinstance(ev, SessionTerminated) and ev.status is None


def test_destinations_not_yet_accepted_are_not_listed_at_reset() -> None:
    p = established(router_config(auto_accept_destinations=False))
    p.modem.add_destination(MAC1, now=p.now)
    p.pump()
    p.router.events()
    p.router.connection_lost(1.0)
    p.modem.connection_lost(1.0)
    assert p.router.events()[0].destinations == ()  # type: ignore[attr-defined]
    assert p.modem.events()[0].destinations == ()  # type: ignore[attr-defined]


def test_messages_after_a_fatal_one_in_the_same_chunk_are_ignored() -> None:
    p = established()
    p.up([MAC1])
    data = raw_header(300, b"") + raw(M.DESTINATION_DOWN, mac(MAC1)) + raw(M.HEARTBEAT)
    p.router.receive_data(data, 0.0)
    sent = p.sent("router")
    assert [m.type for m in sent] == [M.SESSION_TERMINATION]
    assert p.router.destination(MAC1) is not None  # the Down was not processed


def test_session_termination_followed_by_more_data_in_one_chunk() -> None:
    p = established()
    data = raw(M.SESSION_TERMINATION, Status(255)) + raw(M.HEARTBEAT) + raw_header(300, b"")
    p.modem.receive_data(data, 0.0)
    assert p.sent("modem") == [msg(M.SESSION_TERMINATION_RESPONSE)]
    assert p.modem.state is State.RESET
    assert len(p.modem.events()) == 1


# --------------------------------------------------------------------------
# API argument errors (SessionError naming the problem)
# --------------------------------------------------------------------------


def test_transaction_in_progress_error() -> None:
    p = established()
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, latency=5, now=p.now)
    with pytest.raises(TransactionInProgressError, match="Link Characteristics Request"):
        p.router.request_link_characteristics(MAC1, latency=6, now=p.now)
    with pytest.raises(TransactionInProgressError):
        p.router.drop_destination(MAC1, now=p.now)
    assert isinstance(TransactionInProgressError("x"), SessionError)


def test_destination_up_event_reports_the_refresh() -> None:
    """A repeated Destination Up for an up destination refreshes it."""
    p = established()
    p.up([MAC1])
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC1), Latency(42)))
    assert p.sent("router") == [msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0))]
    (ev,) = p.router.events()
    assert not isinstance(ev, DestinationUp)
    assert p.router.destination(MAC1).metrics.latency == 42  # type: ignore[union-attr]
