"""Appendix A discovery flow and §7.1 / §12.1 / §12.3-§12.4 signal rules,
with :class:`RouterDiscovery` and :class:`ModemDiscovery` on a fake clock."""

from __future__ import annotations

import ipaddress

import pytest

from dlep.fsm import (
    ConnectionPoint,
    DiscoveryReceived,
    ModemDiscovery,
    PeerOffered,
    RouterDiscovery,
)
from dlep.wire import (
    DLEP_PORT,
    Ipv4ConnectionPoint,
    Ipv6ConnectionPoint,
    PeerType,
    Signal,
    SignalType,
    decode_signal,
    encode_signal,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
MODEM_IP = V6("fe80::2")
ROUTER_IP = V6("fe80::1")


def offer_bytes(*items: object) -> bytes:
    return encode_signal(Signal(SignalType.PEER_OFFER, tuple(items)))  # type: ignore[arg-type]


def discovery_bytes(*items: object) -> bytes:
    return encode_signal(Signal(SignalType.PEER_DISCOVERY, tuple(items)))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Appendix A, end to end
# --------------------------------------------------------------------------


def test_appendix_a_discovery_flow() -> None:
    router = RouterDiscovery(1000, peer_type=PeerType("r"))
    modem = ModemDiscovery([Ipv4ConnectionPoint(V4("192.0.2.2"), 8540)], peer_type=PeerType("m"))
    # Router initiates discovery: the first signal is lost.
    router.start(0.0)
    (lost,) = router.datagrams_to_send()
    assert decode_signal(lost) == Signal(SignalType.PEER_DISCOVERY, (PeerType("r"),))
    assert router.active and router.get_timer() == 1.0
    # Timer expires without an offer: another Peer Discovery.
    router.handle_timer(1.0)
    (again,) = router.datagrams_to_send()
    assert again == lost
    # The modem receives it and answers with its connection point.
    got = modem.receive_datagram(again, ROUTER_IP, 40000, 255)
    assert isinstance(got, DiscoveryReceived)
    assert (got.source, got.source_port, got.peer_type) == (ROUTER_IP, 40000, PeerType("r"))
    assert decode_signal(got.reply) == Signal(
        SignalType.PEER_OFFER, (PeerType("m"), Ipv4ConnectionPoint(V4("192.0.2.2"), 8540))
    )
    # The router takes the offer and may stop discovery.
    offer = router.receive_datagram(got.reply, MODEM_IP, DLEP_PORT, 255)
    assert offer == PeerOffered(
        MODEM_IP, DLEP_PORT, PeerType("m"), (ConnectionPoint(V4("192.0.2.2"), 8540),)
    )
    router.stop()
    assert not router.active and router.get_timer() is None
    router.handle_timer(100.0)
    assert router.datagrams_to_send() == []
    assert router.sent == 2
    assert modem.counters.accepted == 1 and router.counters.accepted == 1


def test_router_repeats_discovery_at_the_interval_until_stopped() -> None:
    router = RouterDiscovery(2000)
    router.start(10.0)
    times = [10.0]
    router.datagrams_to_send()
    t = 10.0
    while t < 20.0:
        t = round(t + 0.25, 6)
        router.handle_timer(t)
        if router.datagrams_to_send():
            times.append(t)
    assert times == [10.0, 12.0, 14.0, 16.0, 18.0, 20.0]
    assert router.sent == 6
    # No Peer Type configured: the signal carries no items.
    router.handle_timer(22.0)
    assert router.datagrams_to_send() == [discovery_bytes()]


def test_handle_timer_before_due_does_nothing() -> None:
    router = RouterDiscovery(1000)
    router.handle_timer(5.0)  # not started
    assert router.datagrams_to_send() == []
    router.start(0.0)
    router.datagrams_to_send()
    router.handle_timer(0.999)
    assert router.datagrams_to_send() == []
    assert router.get_timer() == 1.0


def test_start_twice_sends_once_and_restart_after_stop() -> None:
    router = RouterDiscovery(1000)
    router.start(0.0)
    router.start(0.5)
    assert len(router.datagrams_to_send()) == 1
    router.stop()
    router.start(7.0)  # §7.1: resume if no connection point worked
    assert len(router.datagrams_to_send()) == 1
    assert router.get_timer() == 8.0


def test_no_burst_after_a_long_stall() -> None:
    router = RouterDiscovery(1000)
    router.start(0.0)
    router.datagrams_to_send()
    router.handle_timer(60.0)
    assert len(router.datagrams_to_send()) == 1
    assert router.get_timer() == 60.5
    router.handle_timer(60.5)
    assert len(router.datagrams_to_send()) == 1
    assert router.get_timer() == 61.5


def test_discovery_interval_minimum_one_second() -> None:
    with pytest.raises(ValueError, match="minimum of 1000 ms"):
        RouterDiscovery(999)
    assert RouterDiscovery().interval == 60.0  # the recommended default


# --------------------------------------------------------------------------
# Peer Offer -> connection points (§7.1)
# --------------------------------------------------------------------------


def test_offer_without_connection_points_uses_source_and_well_known_port() -> None:
    router = RouterDiscovery(1000)
    offer = router.receive_datagram(offer_bytes(), V4("192.0.2.9"), 40001, 255)
    assert offer is not None
    assert offer.connection_points == (ConnectionPoint(V4("192.0.2.9"), DLEP_PORT, False),)
    assert offer.peer_type is None


def test_offer_without_connection_points_uses_configured_default_port() -> None:
    router = RouterDiscovery(1000, default_port=10854)
    offer = router.receive_datagram(offer_bytes(), MODEM_IP, 1, 255)
    assert offer is not None and offer.connection_points == (ConnectionPoint(MODEM_IP, 10854),)


def test_connection_point_without_port_gets_the_default_port() -> None:
    router = RouterDiscovery(1000)
    offer = router.receive_datagram(
        offer_bytes(Ipv4ConnectionPoint(V4("10.0.0.1"))), MODEM_IP, 1, 255
    )
    assert offer is not None and offer.connection_points == (ConnectionPoint(V4("10.0.0.1"), 854),)


MIXED = (
    Ipv4ConnectionPoint(V4("10.0.0.1"), 1, tls=False),
    Ipv4ConnectionPoint(V4("10.0.0.2"), 2, tls=True),
    Ipv6ConnectionPoint(V6("2001:db8::3"), 3, tls=False),
    Ipv6ConnectionPoint(V6("2001:db8::4"), 4, tls=True),
    Ipv4ConnectionPoint(V4("10.0.0.5"), 5, tls=True),
)


def ports(offer: PeerOffered | None) -> list[int]:
    assert offer is not None
    return [p.port for p in offer.connection_points]


def test_tls_router_tries_tls_points_first_then_ipv6() -> None:
    router = RouterDiscovery(1000, prefer_tls=True)
    offer = router.receive_datagram(offer_bytes(*MIXED), MODEM_IP, 1, 255)
    # TLS (v6, then v4 in offer order), then plaintext (v6, then v4).
    assert ports(offer) == [4, 2, 5, 3, 1]
    assert [p.tls for p in offer.connection_points] == [True, True, True, False, False]  # type: ignore[union-attr]


def test_plaintext_router_tries_plaintext_first_then_ipv6() -> None:
    router = RouterDiscovery(1000, prefer_tls=False)
    offer = router.receive_datagram(offer_bytes(*MIXED), MODEM_IP, 1, 255)
    assert ports(offer) == [3, 1, 4, 2, 5]


def test_ipv6_connection_points_before_ipv4() -> None:
    router = RouterDiscovery(1000)
    offer = router.receive_datagram(
        offer_bytes(
            Ipv4ConnectionPoint(V4("10.0.0.1"), 1),
            Ipv6ConnectionPoint(V6("2001:db8::1"), 2),
            Ipv4ConnectionPoint(V4("10.0.0.2"), 3),
            Ipv6ConnectionPoint(V6("2001:db8::2"), 4),
        ),
        MODEM_IP,
        1,
        255,
    )
    assert ports(offer) == [2, 4, 1, 3]


# --------------------------------------------------------------------------
# Ignored signals (§12.1) and their counters
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0, 1, 64, 254])
def test_ttl_other_than_255_is_ignored_and_counted(ttl: int) -> None:
    router = RouterDiscovery(1000)
    modem = ModemDiscovery()
    assert router.receive_datagram(offer_bytes(), MODEM_IP, 1, ttl) is None
    assert modem.receive_datagram(discovery_bytes(), ROUTER_IP, 1, ttl) is None
    for c in (router.counters, modem.counters):
        assert (c.received, c.bad_ttl, c.accepted) == (1, 1, 0)
        assert str(ttl) in c.last_error


def test_unknown_ttl_is_accepted() -> None:
    """The transport may not report the TTL (None): nothing to check."""
    assert ModemDiscovery().receive_datagram(discovery_bytes(), ROUTER_IP, 1, None) is not None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"DLEP",
        b"XLEP\x00\x01\x00\x00",  # wrong prefix
        b"DLEP\x00\x01\x00\x05\x00",  # length past the end
        b"DLEP\x00\x09\x00\x00",  # unknown signal type
        b"DLEP\x00\x01\x00\x04\x00\x07\x00\x00",  # MAC item not allowed in Peer Discovery
        b"DLEP\x00\x02\x00\x05\x00\x02\x00\x01\x00",  # truncated IPv4 Connection Point
        b"\x00\x10\x00\x00",  # a session message, not a signal
    ],
)
def test_malformed_signals_are_ignored_and_counted(data: bytes) -> None:
    router = RouterDiscovery(1000)
    modem = ModemDiscovery()
    assert router.receive_datagram(data, MODEM_IP, 1, 255) is None
    assert modem.receive_datagram(data, ROUTER_IP, 1, 255) is None
    for c in (router.counters, modem.counters):
        assert (c.malformed, c.accepted) == (1, 0)
        assert c.last_error


def test_duplicate_peer_type_is_malformed() -> None:
    body = PeerType("a").encode() + PeerType("b").encode()
    data = b"DLEP\x00\x01" + len(body).to_bytes(2, "big") + body
    modem = ModemDiscovery()
    assert modem.receive_datagram(data, ROUTER_IP, 1, 255) is None
    assert modem.counters.malformed == 1 and "repeat" in modem.counters.last_error


def test_unexpected_signals_are_ignored_and_counted() -> None:
    router = RouterDiscovery(1000)
    modem = ModemDiscovery()
    # A router hears its own (or another router's) Peer Discovery.
    assert router.receive_datagram(discovery_bytes(), ROUTER_IP, 1, 255) is None
    # A modem hears another modem's Peer Offer.
    assert modem.receive_datagram(offer_bytes(), MODEM_IP, 1, 255) is None
    assert router.counters.unexpected == modem.counters.unexpected == 1


def test_modem_ignores_discovery_from_an_already_connected_router() -> None:
    modem = ModemDiscovery()
    data = discovery_bytes()
    assert modem.receive_datagram(data, ROUTER_IP, 1, 255, already_connected=True) is None
    assert modem.counters.already_connected == 1 and modem.counters.accepted == 0
    # Another router (or the same one after the session ended) is answered.
    reply = modem.receive_datagram(data, ROUTER_IP, 1, 255, already_connected=False)
    assert reply is not None and reply.reply == modem.offer == offer_bytes()


def test_modem_answers_every_valid_discovery() -> None:
    modem = ModemDiscovery(
        [Ipv6ConnectionPoint(V6("fe80::2"), tls=True), Ipv4ConnectionPoint(V4("192.0.2.2"))]
    )
    for i in range(3):
        got = modem.receive_datagram(discovery_bytes(PeerType(f"r{i}")), ROUTER_IP, 1000 + i, 255)
        assert got is not None and got.peer_type == PeerType(f"r{i}")
        assert decode_signal(got.reply).items == (
            Ipv6ConnectionPoint(V6("fe80::2"), tls=True),
            Ipv4ConnectionPoint(V4("192.0.2.2")),
        )
    assert modem.counters.received == modem.counters.accepted == 3
