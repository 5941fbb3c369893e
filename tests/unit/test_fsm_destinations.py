"""Destinations: addresses and subnets (§13.8.1-§13.11.1), session-wide
metrics (§12.7), deferred changes while Destination Up is unanswered,
application decisions, Destination Announce, Link Characteristics (§12.19),
change-only Destination Updates, and API argument errors."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import ClassVar, Self

import pytest

from dlep.fsm import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
    Inconsistency,
    LinkCharacteristicsResponse,
    Metrics,
    ResponseStatus,
    SessionConfig,
    SessionError,
    SessionUpdated,
    State,
    TransactionInProgressError,
    UnknownDestinationError,
)
from dlep.wire import (
    OPTIONAL,
    CurrentDataRateReceive,
    DataItem,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
    Ipv6AttachedSubnet,
    ItemFormatError,
    Latency,
    MacAddress,
    MessageType,
    Registry,
    Status,
    StatusCode,
    core_registry,
)

from .fsm_harness import (
    ALL_METRICS,
    DECLARED,
    K1,
    MAC1,
    MAC1_B,
    MAC2,
    MAC2_B,
    MAC3,
    Pair,
    established,
    mac,
    modem_config,
    msg,
    router_config,
)

M = MessageType
V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
N4 = ipaddress.IPv4Network
N6 = ipaddress.IPv6Network


def only(events: list[object], cls: type) -> list[object]:
    return [e for e in events if isinstance(e, cls)]


# --------------------------------------------------------------------------
# Address / subnet semantics (§13.8.1 - §13.11.1)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ([Ipv4Address(V4("10.0.0.1"))], "belongs to destination 02:00:00:00:00:01"),
        ([Ipv4Address(V4("192.0.2.1"))], "belongs to us"),
        ([Ipv6Address(V6("2001:db8::99"))], "belongs to the peer"),
        ([Ipv4Address(V4("127.0.0.1"))], "not a forwardable"),
        ([Ipv4Address(V4("0.0.0.0"))], "not a forwardable"),
        ([Ipv6Address(V6("ff02::1"))], "not a forwardable"),
        ([Ipv4AttachedSubnet(V4("224.0.0.0"), 4)], "not a forwardable"),
        ([Ipv6AttachedSubnet(V6("::1"), 128)], "not a forwardable"),
        ([Ipv4Address(V4("10.0.0.9"), False)], "dropped but never added"),
        (
            [Ipv4AttachedSubnet(V4("10.5.0.0"), 16), Ipv4AttachedSubnet(V4("10.5.1.1"), 16)],
            "added twice",
        ),
    ],
)
def test_destination_up_with_inconsistent_address_is_answered_3_and_not_added(
    items: list[DataItem], why: str
) -> None:
    p = established(modem=modem_config(ipv6_addresses=(V6("2001:db8::99"),)))
    p.router.update_session(add=["192.0.2.1"], now=p.now)
    p.up([MAC1], addresses=["10.0.0.1"])
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC2), Latency(3), *items))
    (resp,) = p.sent("router")
    assert resp.type == M.DESTINATION_UP_RESPONSE
    assert resp.get(MacAddress) == mac(MAC2)
    st = resp.get(Status)
    assert st is not None and st.code == StatusCode.INCONSISTENT_DATA and why in st.text
    (ev,) = p.router.events()
    assert isinstance(ev, Inconsistency) and ev.mac == MAC2_B and why in ev.reason
    assert ev.message_type == M.DESTINATION_UP
    assert p.router.state is State.IN_SESSION
    assert set(p.router.destinations) == {K1}
    # Nothing of it was recorded: the address is free for a later destination.
    if why.startswith("not") or why.startswith("dropped") or why.startswith("added"):
        return
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC3), Ipv4Address(V4("10.0.0.77"))))
    assert p.sent("router")[0].get(Status) == Status(0)


def test_destination_up_refused_with_3_reaches_the_modem_as_refusal() -> None:
    p = established()
    p.modem.add_destination(MAC1, now=p.now)
    p.sent("modem")
    p.inject("modem", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(3, "clash")))
    assert p.modem.events() == [DestinationRefused(MAC1_B, 3, "clash")]
    assert p.modem.state is State.IN_SESSION
    p.modem.add_destination(MAC1, now=p.now)  # may be announced again later


def test_link_local_destination_addresses_are_accepted() -> None:
    p = established()
    p.up([MAC1], addresses=["fe80::1", "169.254.1.1"])
    info = p.router.destination(MAC1)
    assert info is not None and V6("fe80::1") in info.ipv6 and V4("169.254.1.1") in info.ipv4


def test_destination_update_with_inconsistent_address_applies_the_rest() -> None:
    p = established()
    p.up([MAC1, MAC2], addresses=[])
    p.modem.update_destination(MAC1, add=["10.0.0.1", "10.1.0.0/16"], now=p.now)
    p.modem.update_destination(MAC2, add=["10.0.0.2"], now=p.now)
    p.pump()
    p.events()
    p.inject(
        "router",
        msg(
            M.DESTINATION_UPDATE,
            mac(MAC1),
            Latency(9),
            Ipv4Address(V4("10.0.0.1")),  # added twice
            Ipv4Address(V4("10.0.0.2")),  # belongs to MAC2
            Ipv4Address(V4("10.0.0.3")),  # fine
            Ipv4Address(V4("10.9.9.9"), False),  # never added
            Ipv4AttachedSubnet(V4("10.1.0.0"), 16, False),  # fine
            Ipv6AttachedSubnet(V6("2001:db8:1::"), 48),  # fine
        ),
    )
    assert p.sent("router") == []  # no response to a Destination Update
    assert p.router.state is State.IN_SESSION
    inc, upd = p.router.events()
    assert isinstance(inc, Inconsistency) and inc.mac == MAC1_B
    assert inc.message_type == M.DESTINATION_UPDATE
    for why in ("10.0.0.1 added twice", "10.0.0.2 already belongs", "10.9.9.9 dropped but never"):
        assert why in inc.reason
    assert isinstance(upd, DestinationUpdate) and upd.changed == Metrics(latency=9)
    info = p.router.destination(MAC1)
    assert info is not None
    assert info.ipv4 == {V4("10.0.0.1"), V4("10.0.0.3")}
    assert info.ipv4_subnets == frozenset()
    assert info.ipv6_subnets == {N6("2001:db8:1::/48")}
    assert info.metrics.latency == 9
    assert p.router.destination(MAC2).ipv4 == {V4("10.0.0.2")}  # type: ignore[union-attr]


def test_address_moves_between_destinations_after_drop() -> None:
    p = established()
    p.up([MAC1], addresses=["10.0.0.1"])
    p.up([MAC2])
    with pytest.raises(SessionError, match="already belongs to destination 02:00:00:00:00:01"):
        p.modem.update_destination(MAC2, add=["10.0.0.1"], now=p.now)
    p.modem.update_destination(MAC1, drop=["10.0.0.1"], now=p.now)
    p.modem.update_destination(MAC2, add=["10.0.0.1"], now=p.now)
    p.pump()
    rev, _ = p.events()
    assert not only(rev, Inconsistency)
    assert p.router.destination(MAC2).ipv4 == {V4("10.0.0.1")}  # type: ignore[union-attr]
    assert p.router.destination(MAC1).ipv4 == frozenset()  # type: ignore[union-attr]


def test_destination_down_releases_its_addresses() -> None:
    p = established()
    p.up([MAC1], addresses=["10.0.0.1", "2001:db8::1/64"])
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    p.up([MAC2], addresses=["10.0.0.1", "2001:db8::/64"])
    assert p.router.destination(MAC2).ipv6_subnets == {N6("2001:db8::/64")}  # type: ignore[union-attr]


def test_session_update_addresses_tracked_both_ways() -> None:
    p = established(router_config(ipv6_subnets=(N6("2001:db8:f::/48"),)))
    assert p.modem.peer_addresses.ipv6_subnets == {N6("2001:db8:f::/48")}
    p.modem.update_session(add=["198.51.100.1", "198.51.100.0/24"], now=p.now)
    p.pump()
    (ev,) = p.router.events()
    assert isinstance(ev, SessionUpdated) and ev.peer_ipv4 == {V4("198.51.100.1")}
    assert p.router.peer_addresses.ipv4_subnets == {N4("198.51.100.0/24")}
    # A destination may not take the modem's own address.
    with pytest.raises(SessionError, match="already belongs to us"):
        p.modem.add_destination(MAC1, addresses=["198.51.100.1"], now=p.now)
    with pytest.raises(SessionError, match="already belongs to the peer"):
        p.modem.add_destination(MAC1, addresses=["2001:db8:f::/48"], now=p.now)
    with pytest.raises(SessionError, match="dropped but never added"):
        p.router.update_session(drop=["192.0.2.1"], now=p.now)
    with pytest.raises(SessionError, match="added twice"):
        p.modem.update_session(add=["198.51.100.1"], now=p.now)


def test_address_items_accepted_as_well_as_strings() -> None:
    p = established()
    p.modem.add_destination(
        MAC1,
        addresses=[Ipv4Address(V4("10.0.0.1")), Ipv6AttachedSubnet(V6("2001:db8::"), 32)],
        now=p.now,
    )
    p.modem.add_destination(
        MAC2, addresses=[Ipv4Address(V4("10.0.0.2"), False)], now=p.now
    )  # flag fixed
    p.pump()
    assert p.router.destination(MAC2).ipv4 == {V4("10.0.0.2")}  # type: ignore[union-attr]
    p.modem.update_destination(MAC1, drop=[Ipv4Address(V4("10.0.0.1"))], now=p.now)
    p.modem.update_destination(
        MAC1, drop=[Ipv6AttachedSubnet(V6("2001:db8::"), 32, True)], now=p.now
    )
    p.pump()
    info = p.router.destination(MAC1)
    assert info is not None and not info.ipv4 and not info.ipv6_subnets


# --------------------------------------------------------------------------
# Session-wide metrics (§12.7)
# --------------------------------------------------------------------------


def test_session_update_metrics_apply_to_every_destination() -> None:
    p = established()
    p.modem.add_destination(MAC1, Metrics(latency=5, cdrr=10), now=p.now)
    p.modem.add_destination(MAC2, now=p.now)
    p.pump()
    p.modem.update_destination(MAC1, Metrics(rlqr=50), now=p.now)
    p.pump()
    p.events()
    p.modem.update_session(Metrics(latency=77, rlqr=90), now=p.now)
    p.pump()
    for m in (MAC1, MAC2):
        info = p.router.destination(m)
        assert info is not None and info.metrics.latency == 77 and info.metrics.rlqr == 90
    assert p.router.destination(MAC1).metrics.cdrr == 10  # type: ignore[union-attr]
    (ev,) = p.router.events()
    assert isinstance(ev, SessionUpdated) and ev.metrics == Metrics(latency=77, rlqr=90)


def test_session_update_metrics_keep_both_views_of_destinations_equal() -> None:
    """The modem's idea of a destination must match the router's (§12.7),
    or change-only Destination Updates would go missing."""
    p = established()
    p.up([MAC1], metrics=Metrics(latency=5))
    p.modem.update_session(Metrics(latency=77), now=p.now)
    p.pump()
    assert p.router.destination(MAC1).metrics.latency == 77  # type: ignore[union-attr]
    assert p.modem.destination(MAC1) == p.router.destination(MAC1)
    # Back to 5 for this destination only: it must be sent.
    assert p.modem.update_destination(MAC1, Metrics(latency=5), now=p.now) is True
    p.pump()
    assert p.router.destination(MAC1).metrics.latency == 5  # type: ignore[union-attr]


def test_session_update_while_destination_up_unanswered_overrides_deferred() -> None:
    p = established(router_config(auto_accept_destinations=False))
    p.modem.add_destination(MAC1, Metrics(latency=5), now=p.now)
    p.modem.update_destination(MAC1, Metrics(latency=6, cdrr=7), now=p.now)  # deferred
    p.modem.update_session(Metrics(latency=77), now=p.now)  # newer, session-wide
    p.pump()
    p.router.events()
    p.router.respond_destination_up(MAC1, True, now=p.now)
    p.pump()
    assert p.modem.destination(MAC1) == p.router.destination(MAC1)
    assert p.router.destination(MAC1).metrics.latency == 77  # type: ignore[union-attr]
    assert p.router.destination(MAC1).metrics.cdrr == 7  # type: ignore[union-attr]


def test_coalesced_session_update_is_applied_in_wire_order() -> None:
    """A Session Update held back behind an outstanding one reaches the
    router after later destination messages; both views must still agree."""
    p = established()
    p.modem.update_session(Metrics(rlqr=0), now=p.now)
    p.modem.update_session(Metrics(latency=1), now=p.now)  # coalesced: sent after the response
    p.modem.add_destination(MAC1, Metrics(latency=0), now=p.now)  # sent at once
    p.pump()
    assert [(w.sender, w.type) for w in p.log] == [
        ("modem", M.SESSION_UPDATE),
        ("modem", M.DESTINATION_UP),
        ("router", M.SESSION_UPDATE_RESPONSE),
        ("router", M.DESTINATION_UP_RESPONSE),
        ("modem", M.SESSION_UPDATE),
        ("router", M.SESSION_UPDATE_RESPONSE),
    ]
    assert p.router.destination(MAC1) == p.modem.destination(MAC1)
    assert p.router.destination(MAC1).metrics.latency == 1  # type: ignore[union-attr]
    assert p.modem.update_destination(MAC1, Metrics(latency=0), now=p.now) is True


def test_coalesced_session_update_address_changes_cancel_out() -> None:
    p = established()
    p.modem.update_session(Metrics(latency=7), now=p.now)  # outstanding
    p.modem.update_session(add=["198.51.100.1"], now=p.now)
    p.modem.update_session(drop=["198.51.100.1"], now=p.now)
    p.modem.update_session(add=["198.51.100.1", "198.51.100.2"], now=p.now)
    p.modem.update_session(drop=["198.51.100.2"], now=p.now)
    p.pump()
    assert p.log[-2].message == msg(M.SESSION_UPDATE, Ipv4Address(V4("198.51.100.1")))
    assert p.router.peer_addresses.ipv4 == {V4("198.51.100.1")}
    # Changes that cancel out completely send nothing at all.
    p.log.clear()
    p.modem.update_session(Metrics(latency=8), now=p.now)
    p.modem.update_session(drop=["198.51.100.1"], now=p.now)
    p.modem.update_session(add=["198.51.100.1"], now=p.now)
    p.pump()
    assert [w.type for w in p.log] == [M.SESSION_UPDATE, M.SESSION_UPDATE_RESPONSE]


# --------------------------------------------------------------------------
# Deferred changes while Destination Up is unanswered
# --------------------------------------------------------------------------


def pending_pair() -> Pair:
    p = established(router_config(auto_accept_destinations=False))
    p.modem.add_destination(MAC1, Metrics(cdrr=1), addresses=["10.0.0.1"], now=p.now)
    p.pump()
    (req,) = p.router.events()
    assert isinstance(req, DestinationUpRequested) and req.info.mac == MAC1_B
    assert req.info.ipv4 == {V4("10.0.0.1")} and req.info.metrics.cdrr == 1
    p.log.clear()
    return p


def test_updates_held_back_coalesced_and_flushed_on_success() -> None:
    p = pending_pair()
    assert p.modem.update_destination(MAC1, Metrics(cdrr=2, latency=3), now=p.now) is True
    assert p.modem.update_destination(MAC1, Metrics(cdrr=4), add=["10.0.0.2"], now=p.now) is True
    assert p.modem.update_destination(MAC1, drop=["10.0.0.1"], now=p.now) is True
    assert p.modem.data_to_send() == b""
    assert p.router.destination(MAC1) is None and p.modem.destination(MAC1) is None
    p.router.respond_destination_up(MAC1, True, now=p.now)
    p.pump()
    assert [(w.sender, w.message) for w in p.log] == [
        ("router", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0))),
        (
            "modem",
            msg(
                M.DESTINATION_UPDATE,
                mac(MAC1),
                CurrentDataRateReceive(4),
                Latency(3),
                Ipv4Address(V4("10.0.0.2")),
                Ipv4Address(V4("10.0.0.1"), False),
            ),
        ),
    ]
    rev, mev = p.events()
    assert [type(e) for e in rev] == [DestinationUp, DestinationUpdate]
    assert [type(e) for e in mev] == [DestinationUp]
    assert p.router.destination(MAC1) == p.modem.destination(MAC1)
    assert p.router.destination(MAC1).ipv4 == {V4("10.0.0.2")}  # type: ignore[union-attr]


def test_down_held_back_and_sent_after_success() -> None:
    p = pending_pair()
    p.modem.update_destination(MAC1, Metrics(latency=3), now=p.now)
    p.modem.drop_destination(MAC1, now=p.now)
    p.modem.drop_destination(MAC1, now=p.now)  # idempotent
    with pytest.raises(SessionError, match="going down"):
        p.modem.update_destination(MAC1, Metrics(latency=4), now=p.now)
    assert p.modem.data_to_send() == b""
    p.router.respond_destination_up(MAC1, True, now=p.now)
    p.pump()
    assert [(w.sender, w.type) for w in p.log] == [
        ("router", M.DESTINATION_UP_RESPONSE),
        ("modem", M.DESTINATION_UPDATE),
        ("modem", M.DESTINATION_DOWN),
        ("router", M.DESTINATION_DOWN_RESPONSE),
    ]
    rev, mev = p.events()
    assert [type(e) for e in rev] == [DestinationUp, DestinationUpdate, DestinationDown]
    assert mev == [mev[0], DestinationDown(MAC1_B, by_peer=False)]
    assert p.router.destinations == {} == p.modem.destinations


def test_deferred_changes_discarded_on_not_interested() -> None:
    p = pending_pair()
    p.modem.update_destination(MAC1, Metrics(latency=3), now=p.now)
    p.modem.drop_destination(MAC1, now=p.now)
    p.router.respond_destination_up(MAC1, False, now=p.now)
    p.pump()
    assert [(w.sender, w.message) for w in p.log] == [
        ("router", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(StatusCode.NOT_INTERESTED))),
    ]
    rev, mev = p.events()
    assert rev == []
    assert mev == [DestinationRefused(MAC1_B, StatusCode.NOT_INTERESTED)]
    assert p.router.destinations == {} == p.modem.destinations
    # §12.12: nothing more about it; the address is free again on both sides.
    with pytest.raises(UnknownDestinationError):
        p.modem.update_destination(MAC1, Metrics(latency=1), now=p.now)
    p.modem.add_destination(MAC2, addresses=["10.0.0.1"], now=p.now)
    p.pump()
    p.router.respond_destination_up(MAC2, True, now=p.now)


def test_held_back_address_changes_cancel_out() -> None:
    p = pending_pair()
    p.modem.update_destination(MAC1, add=["10.0.0.2"], now=p.now)
    p.modem.update_destination(MAC1, drop=["10.0.0.2", "10.0.0.1"], now=p.now)
    p.modem.update_destination(MAC1, add=["10.0.0.2", "10.0.0.1"], drop=["10.0.0.2"], now=p.now)
    p.router.respond_destination_up(MAC1, True, now=p.now)
    p.pump()
    assert [w.type for w in p.log] == [M.DESTINATION_UP_RESPONSE]  # nothing left to say
    assert p.router.destination(MAC1) == p.modem.destination(MAC1)
    assert p.router.destination(MAC1).ipv4 == {V4("10.0.0.1")}  # type: ignore[union-attr]


def test_update_with_no_change_while_pending_sends_nothing() -> None:
    p = pending_pair()
    assert p.modem.update_destination(MAC1, Metrics(cdrr=1), now=p.now) is False
    p.router.respond_destination_up(MAC1, True, now=p.now)
    p.pump()
    assert [w.type for w in p.log] == [M.DESTINATION_UP_RESPONSE]


# --------------------------------------------------------------------------
# Router decides (auto_accept_destinations=False)
# --------------------------------------------------------------------------


def test_respond_destination_up_accept() -> None:
    p = pending_pair()
    p.router.respond_destination_up(MAC1, True, now=p.now)
    (ev,) = p.router.events()
    assert isinstance(ev, DestinationUp) and ev.info.metrics.cdrr == 1 and not ev.announced
    assert p.sent("router") == [msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0))]
    with pytest.raises(SessionError, match="no Destination Up pending"):
        p.router.respond_destination_up(MAC1, True, now=p.now)


def test_respond_destination_up_refuse_frees_addresses() -> None:
    p = pending_pair()
    p.router.respond_destination_up(MAC1, False, now=p.now)
    assert p.router.events() == []
    p.pump()
    p.modem.events()
    p.modem.add_destination(MAC2, addresses=["10.0.0.1"], now=p.now)
    p.pump()
    (ev,) = p.router.events()
    assert isinstance(ev, DestinationUpRequested) and ev.info.ipv4 == {V4("10.0.0.1")}


def test_respond_destination_up_errors() -> None:
    p = pending_pair()
    with pytest.raises(UnknownDestinationError, match="no destination 02:00:00:00:00:02"):
        p.router.respond_destination_up(MAC2, True, now=p.now)
    with pytest.raises(SessionError, match="router operation"):
        p.modem.respond_destination_up(MAC1, True, now=p.now)
    assert isinstance(UnknownDestinationError("x"), KeyError)
    assert str(UnknownDestinationError()) == "unknown destination"


def test_router_cannot_drop_or_query_an_undecided_destination() -> None:
    p = pending_pair()
    with pytest.raises(SessionError, match="not up"):
        p.router.drop_destination(MAC1, now=p.now)
    with pytest.raises(SessionError, match="not up"):
        p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    with pytest.raises(SessionError, match="already known"):
        p.router.announce_destination(MAC1, now=p.now)


# --------------------------------------------------------------------------
# Destination Announce
# --------------------------------------------------------------------------


def test_announce_accepted_with_metrics_and_addresses() -> None:
    p = established()
    p.router.announce_destination(MAC1, addresses=["10.0.0.1", "2001:db8::1"], now=p.now)
    assert p.router.destination(MAC1) is None  # not up until answered
    p.pump()
    (req,) = p.modem.events()
    assert req == DestinationAnnounceRequested(
        MAC1_B, frozenset({V4("10.0.0.1")}), frozenset({V6("2001:db8::1")})
    )
    p.log.clear()
    p.modem.respond_destination_announce(
        MAC1, True, Metrics(latency=8), addresses=["10.0.0.1", "10.8.0.0/16"], text="ok", now=p.now
    )
    p.pump()
    full = DECLARED.merged(Metrics(latency=8))
    assert [w.message for w in p.log] == [
        msg(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            mac(MAC1),
            Status(0, "ok"),
            *full.items(),
            Ipv4Address(V4("10.0.0.1")),
            Ipv4AttachedSubnet(V4("10.8.0.0"), 16),
        )
    ]
    rev, mev = p.events()
    assert len(rev) == len(mev) == 1
    assert rev[0] == mev[0]
    assert isinstance(rev[0], DestinationUp) and rev[0].announced
    assert p.router.destination(MAC1) == p.modem.destination(MAC1)
    # Now up for both: the router may query it and drop it.
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)


def test_announce_refused() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.pump()
    p.modem.events()
    p.log.clear()
    p.modem.respond_destination_announce(MAC1, False, text="unreachable", now=p.now)
    p.pump()
    assert [w.message for w in p.log] == [
        msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(2, "unreachable"))
    ]
    assert p.router.events() == [DestinationRefused(MAC1_B, 2, "unreachable")]
    assert p.modem.events() == []
    assert p.router.destinations == {} == p.modem.destinations
    # Either side may bring it up later.
    p.router.announce_destination(MAC1, now=p.now)
    p.pump()
    assert isinstance(p.modem.events()[0], DestinationAnnounceRequested)


def test_announce_of_a_destination_the_modem_already_has_up() -> None:
    """The router announces a MAC it refused earlier; the modem still has it."""
    p = established()
    p.modem.add_destination(MAC1, Metrics(latency=4), addresses=["10.0.0.1"], now=p.now)
    p.deliver("modem")
    p.inject("modem", msg(M.DESTINATION_UP_RESPONSE, mac(MAC1), Status(0)))
    p.router.data_to_send()
    p.router.connection_lost(0.0)  # only the modem matters here
    p.modem.events()
    p.inject("modem", msg(M.DESTINATION_ANNOUNCE, mac(MAC1)))
    (resp,) = p.sent("modem")
    assert resp == msg(
        M.DESTINATION_ANNOUNCE_RESPONSE,
        mac(MAC1),
        Status(0),
        *DECLARED.merged(Metrics(latency=4)).items(),
        Ipv4Address(V4("10.0.0.1")),
    )
    assert p.modem.events() == []  # answered at once, no application decision


def test_announce_of_a_destination_the_modem_is_taking_down() -> None:
    p = established()
    p.up([MAC1])
    p.modem.drop_destination(MAC1, now=p.now)
    p.sent("modem")
    p.inject("modem", msg(M.DESTINATION_ANNOUNCE, mac(MAC1)))
    (resp,) = p.sent("modem")
    assert resp.get(Status).code == StatusCode.REQUEST_DENIED  # type: ignore[union-attr]


def test_announce_errors() -> None:
    p = established()
    with pytest.raises(SessionError, match="addresses only, not subnets"):
        p.router.announce_destination(MAC1, addresses=["10.0.0.0/8"], now=p.now)
    with pytest.raises(SessionError, match="router operation"):
        p.modem.announce_destination(MAC1, now=p.now)
    p.up([MAC1])
    with pytest.raises(SessionError, match="no Destination Announce pending"):
        p.modem.respond_destination_announce(MAC1, True, now=p.now)
    p.router.announce_destination(MAC2, now=p.now)
    p.pump()
    with pytest.raises(SessionError, match="not a forwardable"):
        p.modem.respond_destination_announce(MAC2, True, addresses=["127.0.0.1"], now=p.now)


def test_router_drop_while_announce_unanswered_is_sent_after_success() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.router.drop_destination(MAC1, now=p.now)  # held back: one request at a time (§8)
    p.pump()
    p.modem.events()
    p.modem.respond_destination_announce(MAC1, True, now=p.now)
    p.pump()
    assert [(w.sender, w.type) for w in p.log] == [
        ("router", M.DESTINATION_ANNOUNCE),
        ("modem", M.DESTINATION_ANNOUNCE_RESPONSE),
        ("router", M.DESTINATION_DOWN),
        ("modem", M.DESTINATION_DOWN_RESPONSE),
    ]
    assert p.router.destinations == {} == p.modem.destinations
    rev, _ = p.events()
    assert [type(e) for e in rev] == [DestinationUp, DestinationDown]


def test_router_drop_while_announce_unanswered_then_refused() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.router.drop_destination(MAC1, now=p.now)
    p.pump()
    p.modem.events()
    p.modem.respond_destination_announce(MAC1, False, now=p.now)
    p.pump()
    assert [w.type for w in p.log][-1] == M.DESTINATION_ANNOUNCE_RESPONSE
    assert p.router.events() == [DestinationRefused(MAC1_B, 2)]


def test_modem_cannot_update_a_destination_it_has_not_accepted() -> None:
    """Announced by the router but not yet answered: not up (§12.1)."""
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.pump()
    p.modem.events()
    with pytest.raises(SessionError, match="not up"):
        p.modem.update_destination(MAC1, Metrics(latency=1), now=p.now)
    with pytest.raises(SessionError, match="not up"):
        p.modem.drop_destination(MAC1, now=p.now)
    with pytest.raises(SessionError, match="already exists"):
        p.modem.add_destination(MAC1, now=p.now)
    assert p.modem.data_to_send() == b""
    p.modem.respond_destination_announce(MAC1, True, now=p.now)
    p.modem.update_destination(MAC1, Metrics(latency=1), now=p.now)
    p.pump()
    assert p.router.destination(MAC1).metrics.latency == 1  # type: ignore[union-attr]


# --------------------------------------------------------------------------
# Link Characteristics (§12.18-§12.19)
# --------------------------------------------------------------------------


def test_link_characteristics_response_carries_the_complete_declared_set() -> None:
    p = established(modem=modem_config(session_metrics=ALL_METRICS))
    p.up([MAC1], metrics=Metrics(latency=3, mtu=1400))
    p.modem.update_destination(MAC1, Metrics(resources=40), now=p.now)
    p.router.request_link_characteristics(MAC1, cdrt=123, latency=2, cdrr=9, now=p.now)
    p.pump()
    p.events()
    p.log.clear()
    p.modem.respond_link_characteristics(MAC1, metrics=Metrics(cdrt=123, latency=2), now=p.now)
    p.pump()
    (w,) = p.log
    expect = ALL_METRICS.merged(Metrics(latency=2, mtu=1400, resources=40, cdrt=123))
    assert w.message == msg(M.LINK_CHARACTERISTICS_RESPONSE, mac(MAC1), Status(0), *expect.items())
    assert len(expect.items()) == 9
    (ev,) = p.router.events()
    assert ev == LinkCharacteristicsResponse(MAC1_B, 0, expect)
    assert p.modem.destination(MAC1) == p.router.destination(MAC1)


def test_link_characteristics_response_without_metrics_is_accepted() -> None:
    """The metrics are SHOULD in §12.19: a bare response keeps the old values."""
    p = established()
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    p.sent("router")
    p.inject("router", msg(M.LINK_CHARACTERISTICS_RESPONSE, mac(MAC1), Status(0)))
    (ev,) = p.router.events()
    assert isinstance(ev, LinkCharacteristicsResponse) and ev.metrics == DECLARED


def test_link_characteristics_errors() -> None:
    p = established()
    p.up([MAC1])
    with pytest.raises(SessionError, match="give cdrr, cdrt or latency"):
        p.router.request_link_characteristics(MAC1, now=p.now)
    with pytest.raises(SessionError, match="latency"):
        p.router.request_link_characteristics(MAC1, latency=-1, now=p.now)
    with pytest.raises(SessionError, match="router operation"):
        p.modem.request_link_characteristics(MAC1, latency=1, now=p.now)
    with pytest.raises(SessionError, match="no Link Characteristics Request pending"):
        p.modem.respond_link_characteristics(MAC1, now=p.now)
    with pytest.raises(SessionError, match="modem operation"):
        p.router.respond_link_characteristics(MAC1, now=p.now)
    with pytest.raises(UnknownDestinationError):
        p.router.request_link_characteristics(MAC2, latency=1, now=p.now)
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    with pytest.raises(TransactionInProgressError, match="still unanswered"):
        p.router.request_link_characteristics(MAC1, latency=2, now=p.now)


# --------------------------------------------------------------------------
# Change-only Destination Updates
# --------------------------------------------------------------------------


def test_update_destination_sends_only_changed_metrics() -> None:
    p = established()
    p.up([MAC1], metrics=Metrics(cdrr=10, latency=5))
    assert p.modem.update_destination(MAC1, Metrics(cdrr=10, latency=5), now=p.now) is False
    assert (
        p.modem.update_destination(MAC1, Metrics(mdrr=100_000_000), now=p.now) is False
    )  # the default
    assert p.modem.update_destination(MAC1, now=p.now) is False
    assert p.modem.data_to_send() == b""
    assert p.modem.update_destination(MAC1, Metrics(cdrr=10, latency=6, rlqt=50), now=p.now) is True
    assert p.sent("modem") == [
        msg(M.DESTINATION_UPDATE, mac(MAC1), Latency(6), *Metrics(rlqt=50).items())
    ]


def test_update_destination_address_only() -> None:
    p = established()
    p.up([MAC1])
    assert p.modem.update_destination(MAC1, add=["10.0.0.1"], now=p.now) is True
    assert p.sent("modem") == [msg(M.DESTINATION_UPDATE, mac(MAC1), Ipv4Address(V4("10.0.0.1")))]


# --------------------------------------------------------------------------
# Extension items (extra=)
# --------------------------------------------------------------------------

TOY_EXT = 65521


@dataclass(frozen=True, slots=True)
class Toy(DataItem):
    TYPE: ClassVar[int] = 0xFF81
    NAME: ClassVar[str] = "Toy"
    value: int

    def encode_value(self) -> bytes:
        return self.value.to_bytes(2, "big")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 2:
            raise ItemFormatError("Toy: length must be 2")
        return cls(int.from_bytes(data, "big"))


def toy_registry() -> Registry:
    reg = core_registry()
    reg.register_item(Toy, extension=TOY_EXT)
    for mt in (M.DESTINATION_UP, M.DESTINATION_UPDATE):
        reg.allow(mt, Toy, OPTIONAL)
    return reg


def test_extension_items_travel_when_negotiated() -> None:
    reg = toy_registry()
    p = established(
        router_config(registry=reg, extensions=(TOY_EXT,)),
        modem_config(registry=reg, extensions=(TOY_EXT,)),
    )
    p.up([MAC1], extra=[Toy(1)])
    assert p.router.destination(MAC1).extra == (Toy(1),)  # type: ignore[union-attr]
    assert p.modem.update_destination(MAC1, extra=[Toy(2)], now=p.now) is True
    p.pump()
    (ev,) = p.router.events()
    assert isinstance(ev, DestinationUpdate) and ev.info.extra == (Toy(2),)
    assert ev.changed == Metrics()


def test_extension_items_refused_when_not_negotiated() -> None:
    reg = toy_registry()
    p = established(router_config(registry=reg), modem_config(registry=reg, extensions=(TOY_EXT,)))
    with pytest.raises(SessionError, match="extension 65521, not negotiated"):
        p.modem.add_destination(MAC1, extra=[Toy(1)], now=p.now)
    p.up([MAC2])
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.update_destination(MAC2, extra=[Toy(1)], now=p.now)


# --------------------------------------------------------------------------
# API argument errors
# --------------------------------------------------------------------------


def test_api_errors_name_the_problem() -> None:
    p = established()
    p.up([MAC1])
    cases: list[tuple[object, str]] = [
        (lambda: p.modem.add_destination(MAC1, now=p.now), "already exists"),
        (lambda: p.modem.add_destination("zz:zz", now=p.now), "not hexadecimal|need 6 or 8"),
        (lambda: p.modem.add_destination(b"\x01\x02", now=p.now), "6 \\(EUI-48\\) or 8"),
        (
            lambda: p.modem.add_destination(MAC2, Metrics(resources=5), now=p.now),
            "resources were not declared",
        ),
        (
            lambda: p.modem.add_destination(MAC2, Metrics(mtu=1, resources=5), now=p.now),
            "mtu, resources",
        ),
        (lambda: p.modem.add_destination(MAC2, addresses=["10.0.0.300"], now=p.now), "10.0.0.300"),
        (lambda: p.modem.add_destination(MAC2, addresses=["::1"], now=p.now), "not a forwardable"),
        (lambda: p.router.add_destination(MAC2, now=p.now), "add_destination is a modem operation"),
        (
            lambda: p.router.update_destination(MAC1, now=p.now),
            "update_destination is a modem operation",
        ),
        (lambda: p.modem.update_destination(MAC2, now=p.now), "no destination 02:00:00:00:00:02"),
        (
            lambda: p.modem.update_destination(MAC1, Metrics(mtu=1), now=p.now),
            "mtu were not declared",
        ),
        (
            lambda: p.modem.update_destination(MAC1, drop=["10.0.0.1"], now=p.now),
            "dropped but never added",
        ),
        (lambda: p.modem.drop_destination(MAC2, now=p.now), "no destination"),
        (
            lambda: p.router.update_session(Metrics(latency=1), now=p.now),
            "only a modem sends metrics",
        ),
        (lambda: p.modem.update_session(Metrics(mtu=1), now=p.now), "mtu were not declared"),
        (lambda: p.modem.update_session(add=["not an address"], now=p.now), "not an address"),
        (
            lambda: p.router.respond_destination_up(MAC1, True, now=p.now),
            "no Destination Up pending",
        ),
    ]
    for call, pattern in cases:
        with pytest.raises(SessionError, match=pattern):
            call()  # type: ignore[operator]
    assert p.router.data_to_send() == b"" and p.modem.data_to_send() == b""
    assert p.router.state is p.modem.state is State.IN_SESSION


def test_bad_argument_values_are_session_errors() -> None:
    """Out-of-range values are the caller's error: SessionError, nothing sent."""
    p = established()
    p.up([MAC1])
    with pytest.raises(SessionError, match="rlqr: 101 out of range"):
        p.modem.add_destination(MAC2, Metrics(rlqr=101), now=p.now)
    with pytest.raises(SessionError, match=r"cdrr: 2 exceeds metrics\.mdrr 1"):
        p.modem.add_destination(MAC2, Metrics(cdrr=2, mdrr=1), now=p.now)
    with pytest.raises(SessionError, match="expected an integer"):
        p.modem.update_session(Metrics(latency=1.5), now=p.now)  # type: ignore[arg-type]
    with pytest.raises(SessionError, match="not hexadecimal"):
        p.router.destination("zz:zz:zz:zz:zz:zz")
    with pytest.raises(SessionError, match="MAC address"):
        p.modem.drop_destination(b"\x01", now=p.now)
    with pytest.raises(SessionError, match=r"Status\.code: 300"):
        p.router.terminate(300, now=p.now)
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    p.pump()
    p.modem.events()
    with pytest.raises(SessionError, match=r"Status\.code"):
        p.modem.respond_link_characteristics(MAC1, -1, now=p.now)
    p.modem.respond_link_characteristics(MAC1, 0, now=p.now)  # the request is still pending
    p.router.announce_destination(MAC2, now=p.now)
    p.pump()
    p.modem.events()
    with pytest.raises(SessionError, match=r"Status\.text"):
        p.modem.respond_destination_announce(MAC2, False, text=3, now=p.now)  # type: ignore[arg-type]
    p.modem.respond_destination_announce(MAC2, False, now=p.now)  # still pending
    p.pump()
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert p.router.events() == [
        LinkCharacteristicsResponse(MAC1_B, 0, DECLARED),
        DestinationRefused(MAC2_B, 2),
    ]


def test_api_before_session_is_up() -> None:
    p = Pair()
    with pytest.raises(SessionError, match="initializing, not in-session"):
        p.modem.add_destination(MAC1, now=p.now)
    with pytest.raises(SessionError, match="not in-session"):
        p.router.update_session(add=["192.0.2.1"], now=p.now)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval_ms"):
        SessionConfig(heartbeat_interval_ms=0)
    with pytest.raises(ValueError, match="extensions: 0"):
        SessionConfig(extensions=(0,))
    with pytest.raises(ValueError, match="latency"):
        SessionConfig(session_metrics=Metrics(mdrr=1, mdrt=1, cdrr=1, cdrt=1)).validate_for_modem()
    from dlep.fsm import Role, Session

    with pytest.raises(ValueError, match="a modem must declare"):
        Session(Role.MODEM, SessionConfig(session_metrics=Metrics(latency=1)))


# --------------------------------------------------------------------------
# Crossing requests (both sides act on one destination at the same time)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("auto", [True, False])
def test_destination_up_crossing_router_announce(auto: bool) -> None:
    p = established(router_config(auto_accept_destinations=auto))
    p.router.announce_destination(MAC1, now=p.now)
    p.modem.add_destination(MAC1, Metrics(latency=4), now=p.now)
    p.pump()
    assert [(w.sender, w.type) for w in p.log][:2] == [
        ("router", M.DESTINATION_ANNOUNCE),
        ("modem", M.DESTINATION_UP),
    ]
    if not auto:
        p.router.respond_destination_up(MAC1, True, now=p.now)
        p.pump()
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert set(p.router.destinations) == set(p.modem.destinations) == {K1}
    assert p.router.destination(MAC1) == p.modem.destination(MAC1)
    rev, mev = p.events()
    assert len(only(rev, DestinationUp)) == 1
    assert not only(mev, DestinationAnnounceRequested)  # answered at once
    # The router's Announce transaction is over: a new request is allowed.
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)


def test_router_drop_held_back_behind_announce_survives_a_crossing_up() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.router.drop_destination(MAC1, now=p.now)
    p.modem.add_destination(MAC1, now=p.now)
    p.pump()
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert p.router.destinations == {} == p.modem.destinations
    assert [(w.sender, w.type) for w in p.log][-2:] == [
        ("router", M.DESTINATION_DOWN),
        ("modem", M.DESTINATION_DOWN_RESPONSE),
    ]


def test_announce_response_with_failure_after_crossing_up() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.sent("router")
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC1)))
    p.inject("router", msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(2, "busy")))
    assert p.router.state is State.IN_SESSION
    assert p.router.destination(MAC1) is not None
    assert only(p.router.events(), ResponseStatus) == [
        ResponseStatus(M.DESTINATION_ANNOUNCE_RESPONSE, 2, "busy", MAC1_B)
    ]


def test_inconsistent_destination_up_crossing_announce_keeps_the_announce() -> None:
    p = established()
    p.router.announce_destination(MAC1, now=p.now)
    p.sent("router")
    p.inject("router", msg(M.DESTINATION_UP, mac(MAC1), Ipv4Address(V4("127.0.0.1"))))
    assert p.sent("router")[0].get(Status).code == 3  # type: ignore[union-attr]
    p.inject("router", msg(M.DESTINATION_ANNOUNCE_RESPONSE, mac(MAC1), Status(0)))
    assert p.router.state is State.IN_SESSION
    assert p.router.destination(MAC1) is not None


def test_destination_down_crossing_destination_down() -> None:
    p = established()
    p.up([MAC1])
    p.router.drop_destination(MAC1, now=p.now)
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    assert sorted((w.sender, w.type) for w in p.log) == [
        ("modem", M.DESTINATION_DOWN),
        ("modem", M.DESTINATION_DOWN_RESPONSE),
        ("router", M.DESTINATION_DOWN),
        ("router", M.DESTINATION_DOWN_RESPONSE),
    ]
    assert p.router.state is p.modem.state is State.IN_SESSION
    rev, mev = p.events()
    assert rev == [DestinationDown(MAC1_B, by_peer=False)]
    assert mev == [DestinationDown(MAC1_B, by_peer=False)]
    p.up([MAC1])  # and it can come back
    assert set(p.router.destinations) == {K1}


def test_link_characteristics_request_crossing_destination_down() -> None:
    p = established(router_config(link_characteristics_timeout_ms=1000))
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert [w.type for w in p.log] == [
        M.LINK_CHARACTERISTICS_REQUEST,
        M.DESTINATION_DOWN,
        M.DESTINATION_DOWN_RESPONSE,
    ]
    rev, mev = p.events()
    assert rev == [DestinationDown(MAC1_B, by_peer=True)]
    assert mev == [DestinationDown(MAC1_B, by_peer=False)]
    p.run_until(5.0)
    assert p.router.events() == []  # the cancelled request never times out


def test_answering_link_characteristics_after_own_down_sends_nothing() -> None:
    p = established()
    p.up([MAC1])
    p.router.request_link_characteristics(MAC1, latency=1, now=p.now)
    p.pump()
    p.events()
    p.modem.drop_destination(MAC1, now=p.now)
    p.log.clear()
    p.modem.respond_link_characteristics(MAC1, 0, Metrics(latency=1), now=p.now)
    p.pump()
    assert [w.type for w in p.log] == [M.DESTINATION_DOWN, M.DESTINATION_DOWN_RESPONSE]
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert p.router.destinations == {} == p.modem.destinations


# --------------------------------------------------------------------------
# Messages the codec refuses; extension items held back
# --------------------------------------------------------------------------


def test_item_refused_by_the_codec_changes_nothing() -> None:
    reg = core_registry()
    reg.register_item(Toy, extension=TOY_EXT)
    reg.allow(M.DESTINATION_UPDATE, Toy, OPTIONAL)  # not allowed in Destination Up
    p = established(
        router_config(registry=reg, extensions=(TOY_EXT,)),
        modem_config(registry=reg, extensions=(TOY_EXT,)),
    )
    with pytest.raises(SessionError, match=r"Toy.* is not allowed"):
        p.modem.add_destination(MAC1, addresses=["10.0.0.1"], extra=[Toy(1)], now=p.now)
    assert p.modem.data_to_send() == b""
    p.up([MAC1], addresses=["10.0.0.1"])  # neither the MAC nor the address was taken
    with pytest.raises(SessionError, match="Toy"):
        p.modem.update_destination(
            MAC1, Metrics(latency=3), add=["10.0.0.2"], extra=[Toy(1), Toy(2)], now=p.now
        )
    assert p.modem.data_to_send() == b""
    assert p.modem.destination(MAC1) == p.router.destination(MAC1)
    assert p.modem.update_destination(MAC1, Metrics(latency=3), add=["10.0.0.2"], now=p.now) is True


def test_extension_items_held_back_while_destination_up_unanswered() -> None:
    reg = toy_registry()
    p = established(
        router_config(registry=reg, extensions=(TOY_EXT,), auto_accept_destinations=False),
        modem_config(registry=reg, extensions=(TOY_EXT,)),
    )
    p.modem.add_destination(MAC1, extra=[Toy(1)], now=p.now)
    p.pump()
    p.router.events()
    assert p.modem.update_destination(MAC1, extra=[Toy(2)], now=p.now) is True
    assert p.modem.update_destination(MAC1, Metrics(latency=4), extra=[Toy(3)], now=p.now) is True
    with pytest.raises(SessionError, match="Toy"):
        p.modem.update_destination(MAC1, extra=[Toy(4), Toy(5)], now=p.now)  # two in one message
    p.log.clear()
    p.router.respond_destination_up(MAC1, True, now=p.now)
    p.pump()
    assert p.log[-1].message == msg(M.DESTINATION_UPDATE, mac(MAC1), Latency(4), Toy(3))
    assert p.router.destination(MAC1) == p.modem.destination(MAC1)
    assert p.router.destination(MAC1).extra == (Toy(3),)  # type: ignore[union-attr]


# --------------------------------------------------------------------------
# Remaining receive paths
# --------------------------------------------------------------------------


def test_destination_update_crossing_router_down_is_ignored() -> None:
    p = established()
    p.up([MAC1])
    p.router.drop_destination(MAC1, now=p.now)
    p.modem.update_destination(MAC1, Metrics(latency=2), now=p.now)
    p.pump()
    assert p.router.state is p.modem.state is State.IN_SESSION
    assert [(w.sender, w.type) for w in p.log] == [
        ("router", M.DESTINATION_DOWN),
        ("modem", M.DESTINATION_UPDATE),
        ("modem", M.DESTINATION_DOWN_RESPONSE),
    ]
    rev, _ = p.events()
    assert rev == [DestinationDown(MAC1_B, by_peer=False)]


def test_announce_response_with_inconsistent_address() -> None:
    p = established()
    p.up([MAC1], addresses=["10.0.0.1"])
    p.router.announce_destination(MAC2, now=p.now)
    p.sent("router")
    p.inject(
        "router",
        msg(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            mac(MAC2),
            Status(0),
            Ipv4Address(V4("10.0.0.1")),  # MAC1's
            Ipv4Address(V4("10.0.0.2")),
        ),
    )
    assert p.router.state is State.IN_SESSION
    inc, up = p.router.events()
    assert isinstance(inc, Inconsistency) and "already belongs" in inc.reason
    assert isinstance(up, DestinationUp) and up.info.ipv4 == {V4("10.0.0.2")}


@pytest.mark.parametrize(
    "message",
    [
        msg(M.DESTINATION_DOWN, mac(MAC1)),
        msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(1)),
    ],
)
def test_request_about_destination_whose_up_is_unanswered(message: object) -> None:
    p = established()
    p.modem.add_destination(MAC1, now=p.now)
    p.sent("modem")
    p.inject("modem", message)  # type: ignore[arg-type]
    (term,) = p.sent("modem")
    assert term.type == M.SESSION_TERMINATION
    assert term.get(Status).code == StatusCode.INVALID_DESTINATION  # type: ignore[union-attr]


def test_next_event_returns_events_one_by_one() -> None:
    p = established()
    p.up([MAC1])
    p.modem.add_destination(MAC2, now=p.now)
    p.modem.update_destination(MAC1, Metrics(latency=1), now=p.now)
    p.pump()
    first = p.router.next_event()
    second = p.router.next_event()
    assert isinstance(first, DestinationUp) and isinstance(second, DestinationUpdate)
    assert p.router.next_event() is None


# --------------------------------------------------------------------------
# Metrics value helpers
# --------------------------------------------------------------------------


def test_metrics_helpers() -> None:
    m = Metrics(cdrr=5, latency=7, mtu=1500)
    assert m.as_dict() == {"cdrr": 5, "latency": 7, "mtu": 1500}
    assert list(m) == [("cdrr", 5), ("latency", 7), ("mtu", 1500)]
    assert Metrics.from_items([*m.items(), mac(MAC1), object()]) == m
    assert Metrics.field_names()[:2] == ("mdrr", "mdrt") and len(Metrics.field_names()) == 9
    assert m.restricted(frozenset({16})) == Metrics(latency=7)
    assert Metrics(latency=7).changed_in(Metrics(latency=7, cdrr=1)) == Metrics(cdrr=1)
    assert Metrics().is_empty() and not m.is_empty()


# --------------------------------------------------------------------------
# update_destinations: a batch of metrics-only updates, all or nothing
# --------------------------------------------------------------------------


def test_update_destinations_sends_changes_in_order() -> None:
    p = established()
    p.up([MAC1, MAC2], metrics=Metrics(cdrr=10, latency=5))
    n = p.modem.update_destinations(
        [
            (MAC2, Metrics(latency=7)),
            (MAC1, Metrics(cdrr=10, latency=5)),  # no change: nothing sent
            (MAC1, Metrics(cdrr=11)),
        ],
        now=p.now,
    )
    assert n == 2
    assert p.sent("modem") == [
        msg(M.DESTINATION_UPDATE, mac(MAC2), Latency(7)),
        msg(M.DESTINATION_UPDATE, mac(MAC1), CurrentDataRateReceive(11)),
    ]
    p.modem.update_destinations([(MAC2, Metrics(latency=8)), (MAC1, Metrics(cdrr=12))], now=p.now)
    p.pump()
    ups = only(p.events()[0], DestinationUpdate)
    assert [(e.info.mac, e.info.metrics.cdrr, e.info.metrics.latency) for e in ups] == [  # type: ignore[attr-defined]
        (MAC2_B, 10, 8),
        (MAC1_B, 12, 5),
    ]


def test_update_destinations_pairs_see_earlier_pairs() -> None:
    """The rate rule (§13.14-13.15) is checked against what a destination
    will have when its pair is sent: raising the maximum first lets a later
    pair raise the current rate above the old maximum, however many pairs of
    other fields come between; the reverse order is refused."""
    p = established()
    p.up([MAC1, MAC2])  # mdrr 100M (session-wide)
    with pytest.raises(SessionError, match=r"updates\[1\]") as bad:
        p.modem.update_destinations(
            [(MAC2, Metrics(latency=9)), (MAC1, Metrics(cdrr=150_000_000))], now=p.now
        )
    assert bad.value.field == "updates[1].metrics.cdrr"  # type: ignore[attr-defined]
    assert p.modem.data_to_send() == b""
    assert (
        p.modem.update_destinations(
            [
                (MAC1, Metrics(mdrr=200_000_000)),
                (MAC2, Metrics(latency=9)),
                (MAC1, Metrics(latency=3)),
                (MAC1, Metrics(cdrr=150_000_000)),
                (MAC1, Metrics(mdrr=160_000_000)),
            ],
            now=p.now,
        )
        == 5
    )
    with pytest.raises(SessionError, match=r"updates\[1\]"):
        p.modem.update_destinations(
            [(MAC1, Metrics(cdrr=150_000_000)), (MAC1, Metrics(mdrr=140_000_000))], now=p.now
        )


def test_update_destinations_refusals_send_nothing() -> None:
    p = established()  # resources and MTU not declared
    p.up([MAC1])
    p.sent("modem")
    with pytest.raises(UnknownDestinationError, match=r"updates\[1\]"):
        p.modem.update_destinations([(MAC1, Metrics(cdrr=1)), (MAC3, Metrics(cdrr=1))], now=p.now)
    with pytest.raises(SessionError, match=r"updates\[0\]") as bad:
        p.modem.update_destinations([(MAC1, Metrics(rlqr=101))], now=p.now)
    assert bad.value.field == "updates[0].metrics.rlqr"  # type: ignore[attr-defined]
    # §12.6: a metric the Session Initialization Response did not declare.
    for validated in (False, True):
        with pytest.raises(SessionError, match="not declared"):
            p.modem.update_destinations(
                [(MAC1, Metrics(cdrr=2)), (MAC1, Metrics(resources=3))],
                validated=validated,
                now=p.now,
            )
    with pytest.raises(SessionError, match=r"updates\[0\]"):
        p.modem.update_destinations([("02:00", Metrics(cdrr=1))], now=p.now)
    assert p.modem.data_to_send() == b""
    assert p.modem.update_destinations([(MAC1, Metrics(cdrr=2))], now=p.now) == 1
