"""RFC 8175 Appendix B (peer-level) and Appendix C (destination) flows.

Each test drives a router and a modem :class:`~dlep.fsm.Session` against
each other and asserts the exact messages that crossed the wire (decoded
with :func:`dlep.wire.decode_message`) and the events on both sides.
Discovery (Appendix A) is in ``test_fsm_discovery.py``.
"""

from __future__ import annotations

import ipaddress

from dlep.fsm import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationInfo,
    DestinationUp,
    DestinationUpdate,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    Metrics,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
    State,
)
from dlep.wire import (
    CurrentDataRateReceive,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MessageType,
    PeerType,
    Status,
    StatusCode,
)

from .fsm_harness import (
    ALL_METRICS,
    DECLARED,
    K1,
    K2,
    MAC1,
    MAC1_B,
    MAC2,
    Pair,
    Wire,
    established,
    modem_config,
    msg,
    router_config,
)

M = MessageType
V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
N4 = ipaddress.IPv4Network


def wires(*pairs: tuple[str, object]) -> list[Wire]:
    return [Wire(s, m) for s, m in pairs]  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# B.1 Session Initialization
# --------------------------------------------------------------------------


def test_b1_session_initialization_exact_messages_and_session_up() -> None:
    p = Pair(
        router_config(extensions=(7, 9), ipv4_addresses=(V4("192.0.2.1"),)),
        modem_config(
            extensions=(9, 11),
            ipv6_addresses=(V6("2001:db8::2"),),
            ipv4_subnets=(N4("198.51.100.0/24"),),
        ),
    )
    crossed = p.pump()
    assert crossed == wires(
        (
            "router",
            msg(
                M.SESSION_INITIALIZATION,
                HeartbeatInterval(1000),
                PeerType("test router"),
                ExtensionsSupported((7, 9)),
                Ipv4Address(V4("192.0.2.1")),
            ),
        ),
        (
            "modem",
            msg(
                M.SESSION_INITIALIZATION_RESPONSE,
                Status(0),
                PeerType("test modem"),
                HeartbeatInterval(1000),
                *DECLARED.items(),
                ExtensionsSupported((9,)),
                Ipv6Address(V6("2001:db8::2")),
                Ipv4AttachedSubnet(V4("198.51.100.0"), 24),
            ),
        ),
    )
    assert p.router.state is State.IN_SESSION and p.modem.state is State.IN_SESSION
    (ru,) = p.router.events()
    (mu,) = p.modem.events()
    assert ru == SessionUp(
        PeerType("test modem"),
        1000,
        1000,
        frozenset({9}),
        DECLARED,
        frozenset(),
        frozenset({V6("2001:db8::2")}),
    )
    assert mu == SessionUp(
        PeerType("test router"), 1000, 1000, frozenset({9}), DECLARED, frozenset({V4("192.0.2.1")})
    )
    assert p.router.extensions == p.modem.extensions == frozenset({9})
    assert p.router.peer_heartbeat_ms == 1000 and p.modem.peer_type == PeerType("test router")
    assert p.router.peer_addresses.ipv4_subnets == frozenset({N4("198.51.100.0/24")})
    # Heartbeats begin: both sides now have a heartbeat timer one interval out.
    assert p.router.get_timer() == p.modem.get_timer() == 1.0


def test_b1_no_extensions_item_when_none_offered() -> None:
    p = Pair()
    crossed = p.pump()
    assert crossed[0].message == msg(
        M.SESSION_INITIALIZATION, HeartbeatInterval(1000), PeerType("test router")
    )
    assert ExtensionsSupported not in {type(i) for i in crossed[1].message.items}


def test_b1_modem_sends_nothing_before_session_initialization() -> None:
    p = Pair()
    assert p.modem.data_to_send() == b""
    assert p.modem.state is State.INITIALIZING
    p.deliver("router")
    assert [m.type for m in p.sent("modem")] == [M.SESSION_INITIALIZATION_RESPONSE]


def test_b1_different_heartbeat_intervals_are_each_sides_own() -> None:
    p = Pair(router_config(heartbeat_interval_ms=3000), modem_config(heartbeat_interval_ms=2000))
    ru, mu = p.establish()
    assert (ru.heartbeat_ms, ru.peer_heartbeat_ms) == (3000, 2000)
    assert (mu.heartbeat_ms, mu.peer_heartbeat_ms) == (2000, 3000)
    assert p.router.get_timer() == 3.0  # own heartbeat first (silence limit is 4 s)
    assert p.modem.get_timer() == 2.0


# --------------------------------------------------------------------------
# B.2 Session Initialization - Refused
# --------------------------------------------------------------------------


def test_b2_modem_refuses_router_without_required_extension() -> None:
    p = Pair(
        router_config(extensions=(1,)),
        modem_config(extensions=(1, 2), required_extensions=frozenset({2})),
    )
    crossed = p.pump()
    assert len(crossed) == 2
    resp = crossed[1]
    assert resp.sender == "modem" and resp.type == M.SESSION_INITIALIZATION_RESPONSE
    st = resp.message.get(Status)
    assert st is not None and st.code == StatusCode.REQUEST_DENIED and "2" in st.text
    # The modem is done; the router closes on the negative response.
    assert p.modem.state is State.RESET and p.router.state is State.RESET
    (me,) = p.modem.events()
    (re,) = p.router.events()
    assert isinstance(me, SessionTerminated) and me.status == StatusCode.REQUEST_DENIED
    assert not me.by_peer
    assert isinstance(re, SessionTerminated) and re.status == StatusCode.REQUEST_DENIED
    assert re.by_peer and "REQUEST_DENIED" in re.reason
    # Nobody sends anything more (the router did not answer with a Termination).
    assert p.router.data_to_send() == b"" and p.modem.data_to_send() == b""
    assert p.router.get_timer() is None and p.modem.get_timer() is None


def test_b2_router_accepts_when_required_extension_offered() -> None:
    p = Pair(
        router_config(extensions=(2,)),
        modem_config(extensions=(2,), required_extensions=frozenset({2})),
    )
    ru, mu = p.establish()
    assert ru.extensions == mu.extensions == frozenset({2})


# --------------------------------------------------------------------------
# B.3 Router changes IP addresses
# --------------------------------------------------------------------------


def test_b3_router_changes_ip_addresses() -> None:
    p = established(router_config(ipv4_addresses=(V4("192.0.2.1"),)))
    p.router.update_session(add=["192.0.2.7", "2001:db8::7"], drop=["192.0.2.1"], now=p.now)
    crossed = p.pump()
    assert crossed == wires(
        (
            "router",
            msg(
                M.SESSION_UPDATE,
                Ipv4Address(V4("192.0.2.7")),
                Ipv6Address(V6("2001:db8::7")),
                Ipv4Address(V4("192.0.2.1"), False),
            ),
        ),
        ("modem", msg(M.SESSION_UPDATE_RESPONSE, Status(0))),
    )
    rev, mev = p.events()
    assert rev == []
    (upd,) = mev
    assert upd == SessionUpdated(
        Metrics(), DECLARED, frozenset({V4("192.0.2.7")}), frozenset({V6("2001:db8::7")})
    )
    assert p.modem.peer_addresses.ipv4 == frozenset({V4("192.0.2.7")})


def test_b3_updates_coalesced_while_one_is_outstanding() -> None:
    p = established()
    p.router.update_session(add=["192.0.2.1"], now=p.now)
    p.router.update_session(add=["192.0.2.2"], now=p.now)
    p.router.update_session(add=["192.0.2.3"], now=p.now)
    first = p.sent("router")
    assert [m.type for m in first] == [M.SESSION_UPDATE]  # §8: one session request at a time
    p.inject("modem", first[0])
    p.pump()
    assert [(w.sender, w.type) for w in p.log] == [
        ("modem", M.SESSION_UPDATE_RESPONSE),
        ("router", M.SESSION_UPDATE),
        ("modem", M.SESSION_UPDATE_RESPONSE),
    ]
    assert p.log[1].message == msg(
        M.SESSION_UPDATE, Ipv4Address(V4("192.0.2.2")), Ipv4Address(V4("192.0.2.3"))
    )
    assert p.modem.peer_addresses.ipv4 == {V4("192.0.2.1"), V4("192.0.2.2"), V4("192.0.2.3")}


def test_b3_update_with_nothing_new_sends_nothing() -> None:
    p = established()
    p.router.update_session(now=p.now)
    p.modem.update_session(DECLARED, now=p.now)  # identical values: no change
    assert p.router.data_to_send() == b"" and p.modem.data_to_send() == b""


# --------------------------------------------------------------------------
# B.4 Modem changes session-wide metrics
# --------------------------------------------------------------------------


def test_b4_modem_changes_session_wide_metrics() -> None:
    p = established()
    p.modem.update_session(Metrics(mdrr=200_000_000, latency=1000), now=p.now)  # latency unchanged
    crossed = p.pump()
    assert crossed == wires(
        ("modem", msg(M.SESSION_UPDATE, MaximumDataRateReceive(200_000_000))),
        ("router", msg(M.SESSION_UPDATE_RESPONSE, Status(0))),
    )
    rev, mev = p.events()
    assert mev == []
    new = DECLARED.merged(Metrics(mdrr=200_000_000))
    assert rev == [SessionUpdated(Metrics(mdrr=200_000_000), new)]
    assert p.router.session_metrics == p.modem.session_metrics == new


# --------------------------------------------------------------------------
# B.5 / B.6 Termination
# --------------------------------------------------------------------------


def test_b5_router_terminates_session() -> None:
    p = established()
    p.up([MAC1])
    p.log.clear()
    p.router.terminate(text="bye", now=p.now)
    crossed = p.pump()
    assert crossed == wires(
        ("router", msg(M.SESSION_TERMINATION, Status(StatusCode.SHUTTING_DOWN, "bye"))),
        ("modem", msg(M.SESSION_TERMINATION_RESPONSE)),
    )
    rev, mev = p.events()
    assert mev == [
        SessionTerminated(255, "peer terminated the session (SHUTTING_DOWN): bye", True, (K1,))
    ]
    assert rev == [SessionTerminated(255, "bye", False, (K1,))]
    assert p.router.state is p.modem.state is State.RESET
    # Both stopped heartbeats and sending.
    assert p.router.get_timer() is None and p.modem.get_timer() is None
    assert p.router.destinations == {} and p.modem.destinations == {}


def test_b6_modem_terminates_session() -> None:
    p = established()
    p.modem.terminate(StatusCode.SHUTTING_DOWN, now=p.now)
    crossed = p.pump()
    assert crossed == wires(
        ("modem", msg(M.SESSION_TERMINATION, Status(255))),
        ("router", msg(M.SESSION_TERMINATION_RESPONSE)),
    )
    (re,) = p.router.events()
    (me,) = p.modem.events()
    assert re.status == me.status == 255  # type: ignore[attr-defined]
    assert re.by_peer and not me.by_peer  # type: ignore[attr-defined]
    assert me.reason == "closed by application"  # type: ignore[attr-defined]
    assert p.router.closed and p.modem.closed


def test_termination_with_custom_status_code() -> None:
    p = established()
    p.router.terminate(StatusCode.TIMED_OUT, "custom", now=p.now)
    p.pump()
    (me,) = p.modem.events()
    assert isinstance(me, SessionTerminated) and me.status == 132 and "custom" in me.reason


def test_terminate_is_idempotent() -> None:
    p = established()
    p.router.terminate(now=p.now)
    p.router.terminate(now=p.now)
    assert [m.type for m in p.sent("router")] == [M.SESSION_TERMINATION]


# --------------------------------------------------------------------------
# B.7 Session heartbeats
# --------------------------------------------------------------------------


def test_b7_heartbeats_exchanged_and_reset_missed_counter() -> None:
    p = established()
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        p.advance(to=t, pump=True)
    hb = [w for w in p.log if w.type == M.HEARTBEAT]
    assert [w.sender for w in hb] == ["router", "modem"] * 5
    assert all(w.message == msg(M.HEARTBEAT) for w in hb)
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert p.events() == ([], [])


def test_b7_any_message_resets_missed_counter() -> None:
    p = established()
    p.modem.add_destination(MAC1, now=p.now)
    p.pump()
    # Only destination traffic for a while; nobody times out.
    for i, t in enumerate((1.5, 3.0, 4.5)):
        p.now = t
        p.modem.update_destination(MAC1, Metrics(cdrr=1000 + i), now=t)
        p.router.update_session(add=[f"192.0.2.{i + 1}"], now=t)
        p.pump()
        p.advance()
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert not [w for w in p.log if w.type == M.SESSION_TERMINATION]


# --------------------------------------------------------------------------
# B.8 / B.9 Heartbeat timeouts
# --------------------------------------------------------------------------


def test_b8_router_detects_heartbeat_timeout() -> None:
    p = established()
    p.up([MAC1])
    p.log.clear()
    # The modem's bytes are lost from now on.
    p.now = 1.0
    p.router.handle_timer(p.now)
    p.modem.handle_timer(p.now)
    p.deliver("router")
    p.modem.data_to_send()  # lost
    p.now = 1.999
    p.router.handle_timer(p.now)
    assert p.router.state is State.IN_SESSION  # one missed heartbeat is tolerated
    p.now = 2.0
    p.router.handle_timer(p.now)
    # The silent modem is not waited for (issue 14): reset at once, its
    # destinations gone now rather than 4 intervals later.
    assert p.router.state is State.RESET
    (term,) = p.sent("router")
    assert term.type == M.SESSION_TERMINATION and term.get(Status).code == 132  # type: ignore[union-attr]
    (re,) = p.router.events()
    assert isinstance(re, SessionTerminated) and re.status == 132 and not re.by_peer
    assert re.destinations == (K1,)
    # Should the modem still hear it, it answers and ends too.
    p.inject("modem", term)
    assert [m.type for m in p.sent("modem")] == [M.SESSION_TERMINATION_RESPONSE]
    (me,) = p.modem.events()
    assert isinstance(me, SessionTerminated) and me.status == 132 and me.by_peer


def test_b9_modem_detects_heartbeat_timeout() -> None:
    p = established()
    p.now = 1.0
    p.modem.handle_timer(p.now)
    p.router.handle_timer(p.now)
    p.deliver("modem")
    p.router.data_to_send()  # the router's heartbeat is lost
    p.now = 2.0
    p.modem.handle_timer(p.now)
    assert p.modem.state is State.RESET  # no wait for a silent router (issue 14)
    (term,) = p.sent("modem")
    assert term == msg(M.SESSION_TERMINATION, Status(132, term.get(Status).text))  # type: ignore[union-attr]
    assert "2 heartbeat intervals" in term.get(Status).text  # type: ignore[union-attr]


# --------------------------------------------------------------------------
# C.1 Common destination notification
# --------------------------------------------------------------------------


def test_c1_common_destination_notification() -> None:
    p = established()
    p.modem.add_destination(
        MAC1, Metrics(cdrr=1000, latency=5), addresses=["10.0.0.1", "10.1.0.0/16"], now=p.now
    )
    p.pump()
    p.modem.update_destination(MAC1, Metrics(cdrr=2000, latency=5), now=p.now)  # latency unchanged
    p.pump()
    p.modem.update_destination(MAC1, Metrics(latency=9), add=["2001:db8::1"], now=p.now)
    p.pump()
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    assert p.log == wires(
        (
            "modem",
            msg(
                M.DESTINATION_UP,
                MacAddress(MAC1_B),
                CurrentDataRateReceive(1000),
                Latency(5),
                Ipv4Address(V4("10.0.0.1")),
                Ipv4AttachedSubnet(V4("10.1.0.0"), 16),
            ),
        ),
        ("router", msg(M.DESTINATION_UP_RESPONSE, MacAddress(MAC1_B), Status(0))),
        ("modem", msg(M.DESTINATION_UPDATE, MacAddress(MAC1_B), CurrentDataRateReceive(2000))),
        (
            "modem",
            msg(
                M.DESTINATION_UPDATE,
                MacAddress(MAC1_B),
                Latency(9),
                Ipv6Address(V6("2001:db8::1")),
            ),
        ),
        ("modem", msg(M.DESTINATION_DOWN, MacAddress(MAC1_B))),
        ("router", msg(M.DESTINATION_DOWN_RESPONSE, MacAddress(MAC1_B), Status(0))),
    )
    rev, mev = p.events()
    base = DECLARED.merged(Metrics(cdrr=1000, latency=5))
    info1 = DestinationInfo(
        MAC1_B, base, frozenset({V4("10.0.0.1")}), ipv4_subnets=frozenset({N4("10.1.0.0/16")})
    )
    info2 = DestinationInfo(
        MAC1_B,
        base.merged(Metrics(cdrr=2000)),
        frozenset({V4("10.0.0.1")}),
        ipv4_subnets=frozenset({N4("10.1.0.0/16")}),
    )
    info3 = DestinationInfo(
        MAC1_B,
        base.merged(Metrics(cdrr=2000, latency=9)),
        frozenset({V4("10.0.0.1")}),
        frozenset({V6("2001:db8::1")}),
        frozenset({N4("10.1.0.0/16")}),
    )
    assert rev == [
        DestinationUp(info1),
        DestinationUpdate(info2, Metrics(cdrr=2000)),
        DestinationUpdate(info3, Metrics(latency=9)),
        DestinationDown(MAC1_B, by_peer=True),
    ]
    assert mev == [DestinationUp(info1), DestinationDown(MAC1_B, by_peer=False)]
    assert p.router.destinations == {} and p.modem.destinations == {}


def test_c1_destination_snapshots_agree_on_both_sides() -> None:
    p = established()
    p.modem.add_destination(MAC1, Metrics(cdrr=1000), addresses=["10.0.0.1"], now=p.now)
    p.modem.add_destination(MAC2, addresses=["10.0.0.2"], now=p.now)
    p.pump()
    assert p.router.destinations == p.modem.destinations
    assert set(p.router.destinations) == {K1, K2}
    assert p.router.destination(MAC1) == p.modem.destination(MAC1_B)
    assert p.router.destination("02:00:00:00:00:99") is None
    info = p.router.destination(MAC1)
    assert info is not None and info.mac_str == MAC1


# --------------------------------------------------------------------------
# C.2 Multicast destination notification (router announces)
# --------------------------------------------------------------------------


def test_c2_multicast_destination_notification() -> None:
    group = "01:00:5e:00:00:01"
    gmac = bytes.fromhex("01005e000001")
    p = established()
    p.router.announce_destination(group, addresses=["239.1.1.1"], now=p.now)
    p.pump()
    (req,) = p.modem.events()
    assert req == DestinationAnnounceRequested(gmac, frozenset({V4("239.1.1.1")}))
    p.modem.respond_destination_announce(group, True, Metrics(cdrr=64_000), now=p.now)
    p.pump()
    p.modem.update_destination(group, Metrics(cdrr=128_000), now=p.now)
    p.pump()
    p.modem.update_destination(group, Metrics(latency=20), now=p.now)
    p.pump()
    p.router.drop_destination(group, now=p.now)
    p.pump()
    full = DECLARED.merged(Metrics(cdrr=64_000))
    assert p.log == wires(
        ("router", msg(M.DESTINATION_ANNOUNCE, MacAddress(gmac), Ipv4Address(V4("239.1.1.1")))),
        ("modem", msg(M.DESTINATION_ANNOUNCE_RESPONSE, MacAddress(gmac), Status(0), *full.items())),
        ("modem", msg(M.DESTINATION_UPDATE, MacAddress(gmac), CurrentDataRateReceive(128_000))),
        ("modem", msg(M.DESTINATION_UPDATE, MacAddress(gmac), Latency(20))),
        ("router", msg(M.DESTINATION_DOWN, MacAddress(gmac))),
        ("modem", msg(M.DESTINATION_DOWN_RESPONSE, MacAddress(gmac), Status(0))),
    )
    rev, mev = p.events()
    assert [type(e) for e in rev] == [
        DestinationUp,
        DestinationUpdate,
        DestinationUpdate,
        DestinationDown,
    ]
    assert rev[0] == DestinationUp(DestinationInfo(gmac, full), announced=True)
    assert rev[-1] == DestinationDown(gmac, by_peer=False)
    assert mev == [
        DestinationUp(DestinationInfo(gmac, full), announced=True),
        DestinationDown(gmac, by_peer=True),
    ]


# --------------------------------------------------------------------------
# C.3 Link characteristics request
# --------------------------------------------------------------------------


def test_c3_link_characteristics_request() -> None:
    p = established()
    p.up([MAC1])
    p.log.clear()
    p.router.request_link_characteristics(MAC1, cdrr=5000, latency=100, now=p.now)
    p.pump()
    (req,) = p.modem.events()
    assert req == LinkCharacteristicsRequested(MAC1_B, 5000, None, 100)
    p.modem.respond_link_characteristics(
        MAC1, StatusCode.SUCCESS, Metrics(cdrr=5000, latency=100), now=p.now
    )
    p.pump()
    after = DECLARED.merged(Metrics(cdrr=5000, latency=100))
    assert p.log == wires(
        (
            "router",
            msg(
                M.LINK_CHARACTERISTICS_REQUEST,
                MacAddress(MAC1_B),
                CurrentDataRateReceive(5000),
                Latency(100),
            ),
        ),
        # §12.19: the complete set of declared metrics, after processing.
        (
            "modem",
            msg(M.LINK_CHARACTERISTICS_RESPONSE, MacAddress(MAC1_B), Status(0), *after.items()),
        ),
    )
    (resp,) = p.router.events()
    assert resp == LinkCharacteristicsResponse(MAC1_B, 0, after)
    assert p.router.destination(MAC1).metrics == after  # type: ignore[union-attr]
    assert p.modem.destination(MAC1).metrics == after  # type: ignore[union-attr]


def test_c3_link_characteristics_request_denied() -> None:
    p = established(modem=modem_config(session_metrics=ALL_METRICS))
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, cdrt=1, now=p.now)
    p.pump()
    p.modem.events()
    p.modem.respond_link_characteristics(MAC1, StatusCode.REQUEST_DENIED, text="no", now=p.now)
    p.log.clear()
    p.pump()
    (w,) = p.log
    assert w.message == msg(
        M.LINK_CHARACTERISTICS_RESPONSE, MacAddress(MAC1_B), Status(2, "no"), *ALL_METRICS.items()
    )
    (resp,) = p.router.events()
    assert isinstance(resp, LinkCharacteristicsResponse)
    assert (resp.status, resp.text, resp.metrics) == (2, "no", ALL_METRICS)
    # The transaction is complete: a new request may be issued.
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
