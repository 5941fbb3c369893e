"""Peer discovery engines (RFC 8175 §7.1, §12.3-12.4), sans I/O.

The router side sends Peer Discovery at a fixed interval until told to stop
and turns Peer Offers into an ordered list of connection points to try. The
modem side answers each acceptable Peer Discovery with a Peer Offer. Both
ignore, and count, what §12.1 says to ignore: a TTL other than 255, a
malformed or unexpected signal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from ..wire import (
    DEFAULT_REGISTRY,
    DLEP_PORT,
    DecodeError,
    Ipv4ConnectionPoint,
    Ipv6ConnectionPoint,
    PeerType,
    Registry,
    Signal,
    SignalType,
    decode_signal,
    encode_signal,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: RFC 8175 §7.1: the discovery interval MUST be at least one second.
MIN_DISCOVERY_INTERVAL_MS = 1000


@dataclass(frozen=True, slots=True)
class ConnectionPoint:
    """Where to open the TCP session."""

    address: IPAddress
    port: int = DLEP_PORT
    tls: bool = False


@dataclass(frozen=True, slots=True)
class PeerOffered:
    """A modem answered; try ``connection_points`` in order."""

    source: IPAddress
    source_port: int
    peer_type: PeerType | None
    connection_points: tuple[ConnectionPoint, ...]


@dataclass(frozen=True, slots=True)
class DiscoveryReceived:
    """Modem: a router is looking for us; send ``reply`` back to ``source``."""

    source: IPAddress
    source_port: int
    peer_type: PeerType | None
    reply: bytes


@dataclass(slots=True)
class DiscoveryCounters:
    """Why signals were dropped (RFC 8175 §12.1 says to ignore them)."""

    received: int = 0
    accepted: int = 0
    bad_ttl: int = 0
    malformed: int = 0
    unexpected: int = 0
    already_connected: int = 0
    last_error: str = field(default="")


#: RFC 8175 §12.1: signals must arrive with this TTL / hop limit (GTSM, RFC 5082).
REQUIRED_TTL: Final = 255


def _check_ttl(counters: DiscoveryCounters, ttl: int | None) -> bool:
    if ttl is not None and ttl != REQUIRED_TTL:
        counters.bad_ttl += 1
        counters.last_error = f"TTL/hop limit {ttl}, not {REQUIRED_TTL}"
        return False
    return True


def _decode(counters: DiscoveryCounters, data: bytes, registry: Registry) -> Signal | None:
    try:
        return decode_signal(data, registry)
    except DecodeError as exc:
        counters.malformed += 1
        counters.last_error = str(exc)
        return None


class RouterDiscovery:
    """Router side: repeat Peer Discovery, collect Peer Offers.

    Args:
        interval_ms: time between Peer Discovery signals (RFC: ≥ 1 s,
            recommended 60 s).
        peer_type: optional Peer Type to include.
        prefer_tls: the router supports TLS, so TLS connection points are
            tried first (RFC 8175 §7.1 MUST).
        default_port: port assumed when a connection point has none.
        allow_fast: permit intervals down to 100 ms (not RFC-conformant;
            for tests and demos).
    """

    def __init__(
        self,
        interval_ms: int = 60_000,
        *,
        peer_type: PeerType | None = None,
        prefer_tls: bool = False,
        default_port: int = DLEP_PORT,
        registry: Registry = DEFAULT_REGISTRY,
        allow_fast: bool = False,
    ) -> None:
        # allow_fast: below the RFC minimum, for tests and demos only
        # (config timers.allow_fast_timers).
        floor = 100 if allow_fast else MIN_DISCOVERY_INTERVAL_MS
        if interval_ms < floor:
            raise ValueError(
                f"discovery interval {interval_ms} ms is below the minimum of {floor} ms"
                " (RFC 8175 §7.1: 1000 ms)"
            )
        self.interval = interval_ms / 1000.0
        self.prefer_tls = prefer_tls
        self.default_port = default_port
        self._registry = registry
        items = (peer_type,) if peer_type is not None else ()
        self._signal = encode_signal(Signal(SignalType.PEER_DISCOVERY, items), registry)
        self._next: float | None = None
        self._out: list[bytes] = []
        self.counters = DiscoveryCounters()
        self.sent = 0

    @property
    def active(self) -> bool:
        """True while Peer Discovery signals are being sent."""
        return self._next is not None

    def start(self, now: float) -> None:
        """Begin (or resume) discovery; the first signal goes out at once."""
        if self._next is None:
            self._out.append(self._signal)
            self.sent += 1
            self._next = now + self.interval

    def stop(self) -> None:
        """Stop sending (e.g. a session is up; RFC 8175 leaves this to us)."""
        self._next = None

    def get_timer(self) -> float | None:
        """When the next signal is due."""
        return self._next

    def handle_timer(self, now: float) -> None:
        """Queue a Peer Discovery if one is due."""
        if self._next is not None and now >= self._next:
            self._out.append(self._signal)
            self.sent += 1
            # Keep the cadence without bursting after a long stall.
            self._next = max(self._next + self.interval, now + self.interval / 2)

    def datagrams_to_send(self) -> list[bytes]:
        """Signals to multicast to the DLEP discovery group."""
        out, self._out = self._out, []
        return out

    def receive_datagram(
        self, data: bytes, source: IPAddress, source_port: int, ttl: int | None
    ) -> PeerOffered | None:
        """A datagram arrived; returns the offer if it is an acceptable one."""
        c = self.counters
        c.received += 1
        if not _check_ttl(c, ttl):
            return None
        sig = _decode(c, data, self._registry)
        if sig is None:
            return None
        if sig.type != SignalType.PEER_OFFER:
            c.unexpected += 1  # e.g. our own or another router's Peer Discovery
            return None
        c.accepted += 1
        points = [self._point(i) for i in sig.items if isinstance(i, Ipv4ConnectionPoint)]
        points += [self._point(i) for i in sig.items if isinstance(i, Ipv6ConnectionPoint)]
        if not points:
            # §7.1: no connection point -> the packet's source and the well-known port.
            points = [ConnectionPoint(source, self.default_port)]
        points.sort(key=self._rank)
        return PeerOffered(source, source_port, sig.get(PeerType), tuple(points))

    def _point(self, item: Ipv4ConnectionPoint | Ipv6ConnectionPoint) -> ConnectionPoint:
        port = item.port if item.port is not None else self.default_port
        return ConnectionPoint(item.address, port, item.tls)

    def _rank(self, p: ConnectionPoint) -> tuple[int, int]:
        # §7.1: a TLS-capable router MUST try TLS points first (a plaintext
        # router tries plaintext first); then IPv6 before IPv4 (SHOULD).
        return (0 if p.tls == self.prefer_tls else 1, 0 if p.address.version == 6 else 1)


class ModemDiscovery:
    """Modem side: answer Peer Discovery with a Peer Offer.

    Args:
        connection_points: the Connection Point items to offer (may be empty:
            the router then uses our source address and the well-known port).
        peer_type: optional Peer Type to include in the offer.
    """

    def __init__(
        self,
        connection_points: Sequence[Ipv4ConnectionPoint | Ipv6ConnectionPoint] = (),
        *,
        peer_type: PeerType | None = None,
        registry: Registry = DEFAULT_REGISTRY,
    ) -> None:
        items: list[PeerType | Ipv4ConnectionPoint | Ipv6ConnectionPoint] = []
        if peer_type is not None:
            items.append(peer_type)
        items.extend(connection_points)
        self._registry = registry
        self.offer = encode_signal(Signal(SignalType.PEER_OFFER, tuple(items)), registry)
        self.counters = DiscoveryCounters()

    def receive_datagram(
        self,
        data: bytes,
        source: IPAddress,
        source_port: int,
        ttl: int | None,
        *,
        already_connected: bool = False,
    ) -> DiscoveryReceived | None:
        """A datagram arrived; returns the reply to send, or None to ignore it.

        ``already_connected``: we have a TCP connection with ``source``; §7.1
        says to ignore its Peer Discovery silently.
        """
        c = self.counters
        c.received += 1
        if not _check_ttl(c, ttl):
            return None
        sig = _decode(c, data, self._registry)
        if sig is None:
            return None
        if sig.type != SignalType.PEER_DISCOVERY:
            c.unexpected += 1
            return None
        if already_connected:
            c.already_connected += 1
            return None
        c.accepted += 1
        return DiscoveryReceived(source, source_port, sig.get(PeerType), self.offer)
