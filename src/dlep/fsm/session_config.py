"""The parameters of one session engine (:class:`SessionConfig`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Protocol

from ..wire import DEFAULT_REGISTRY, PeerType, Registry
from .metrics import FIELD_OF_TYPE, MANDATORY_TYPES, Metrics
from .plugins import Extension

__all__ = ["SessionConfig", "WireTranslation"]


class WireTranslation(Protocol):
    """Rewrites whole messages at the wire boundary (e.g. an interop profile
    mapping a peer's pre-standard code points to the standard ones).

    The engine calls :meth:`to_wire` on every message it encodes and
    :meth:`from_wire` on every message before decoding it; everything inside
    the engine sees standard codes only.
    """

    def to_wire(self, message: bytes) -> bytes:
        """Standard codes -> the peer's."""
        ...

    def from_wire(self, message: bytes) -> bytes:
        """The peer's codes -> standard."""
        ...


@dataclass(frozen=True)
class SessionConfig:
    """Engine parameters; times in milliseconds.

    Attributes:
        heartbeat_interval_ms: our Heartbeat Interval (RFC: ≥ 1000, default 60 s).
        peer_type: our Peer Type item.
        extensions: extension type codes we offer (besides ``plugins``).
        registry: codec registry (core plus registered extensions).
        missed_heartbeats: peer heartbeat intervals of silence before we
            terminate with 132 (RFC 8175 §7.3.1: at least 2).
        init_timeout_ms: how long to wait for Session Initialization (Response);
            default 4 heartbeat intervals.
        max_peer_heartbeat_interval_ms: the longest Heartbeat Interval we
            accept from a peer (None: any). A longer one is refused at
            initialisation with 'Request Denied': §7.3.1 obliges us to wait
            2 of the peer's intervals before ending a silent session, so an
            unbounded one (up to 0xFFFFFFFF ms, 49.7 days) would let a dead
            peer keep its session for months.
        termination_intervals: heartbeat intervals to wait for a Session
            Termination Response (RFC 8175 §7.4 suggests 4); not waited after
            a heartbeat timeout, whose peer is known to be unresponsive.
        link_characteristics_timeout_ms: router: when to report a slow Link
            Characteristics Response (the request stays open, §8).
        auto_accept_destinations: router: answer Destination Up with Success
            at once; if False the application decides
            (:meth:`Session.respond_destination_up`).
        max_peer_destinations: the most destinations the peer may bring up
            in this session (None: no bound). A Destination Up for a new
            destination beyond it is answered 'Request Denied' (§12.12: the
            modem then sends nothing more about it) and reported with
            :class:`DestinationLimitReached`; the session goes on.
        session_metrics: modem: the session-wide defaults declared in the
            Session Initialization Response; must set mdrr, mdrt, cdrr, cdrt
            and latency (§12.6). Optional fields set here are "in use".
        ipv4_addresses ... ipv6_subnets: our own layer-3 information, sent in
            Session Initialization (Response).
        required_extensions: modem: refuse a router that does not offer all
            of these (Session Initialization Response 'Request Denied', B.2).
        plugins: extensions whose hooks run when negotiated; their codes
            are offered too.
        wire_translation: rewrites messages at the wire boundary (an
            interoperability profile of the layer above); None = standard codes.
    """

    heartbeat_interval_ms: int = 60_000
    peer_type: PeerType = field(default_factory=lambda: PeerType("dlep"))
    extensions: tuple[int, ...] = ()
    registry: Registry = DEFAULT_REGISTRY
    missed_heartbeats: int = 2
    init_timeout_ms: int | None = None
    max_peer_heartbeat_interval_ms: int | None = 3_600_000
    termination_intervals: int = 4
    link_characteristics_timeout_ms: int | None = 10_000
    auto_accept_destinations: bool = True
    max_peer_destinations: int | None = None
    session_metrics: Metrics = field(
        default_factory=lambda: Metrics(mdrr=0, mdrt=0, cdrr=0, cdrt=0, latency=0)
    )
    ipv4_addresses: tuple[ipaddress.IPv4Address, ...] = ()
    ipv6_addresses: tuple[ipaddress.IPv6Address, ...] = ()
    ipv4_subnets: tuple[ipaddress.IPv4Network, ...] = ()
    ipv6_subnets: tuple[ipaddress.IPv6Network, ...] = ()
    required_extensions: frozenset[int] = frozenset()
    plugins: tuple[Extension, ...] = ()
    wire_translation: WireTranslation | None = None

    @property
    def offered_extensions(self) -> tuple[int, ...]:
        """Extension codes we list in Extensions Supported."""
        return tuple(sorted(set(self.extensions) | {p.code for p in self.plugins}))

    def __post_init__(self) -> None:
        if not isinstance(self.heartbeat_interval_ms, int) or not (
            1 <= self.heartbeat_interval_ms <= 0xFFFFFFFF
        ):
            raise ValueError(
                f"heartbeat_interval_ms: {self.heartbeat_interval_ms!r} must be 1..4294967295"
            )
        if self.missed_heartbeats < 2:
            raise ValueError(
                f"missed_heartbeats: {self.missed_heartbeats} is below the RFC 8175 §7.3.1 "
                "minimum of 2"
            )
        bound = self.max_peer_heartbeat_interval_ms
        if bound is not None and (
            not isinstance(bound, int) or isinstance(bound, bool) or not 1 <= bound <= 0xFFFFFFFF
        ):
            raise ValueError(
                f"max_peer_heartbeat_interval_ms: {bound!r} must be 1..4294967295 or None"
            )
        cap = self.max_peer_destinations
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise ValueError(f"max_peer_destinations: {cap!r} must be a positive int or None")
        if self.termination_intervals < 1:
            raise ValueError("termination_intervals: must be at least 1")
        if self.init_timeout_ms is not None and self.init_timeout_ms <= 0:
            raise ValueError("init_timeout_ms: must be positive")
        for ext in self.extensions:
            if not 0 < ext < 0xFFFF:
                raise ValueError(f"extensions: {ext} is not a valid extension type code")
        self.session_metrics.validate()

    def validate_for_modem(self) -> None:
        """Raise ValueError unless the mandatory session metrics are set."""
        missing = [FIELD_OF_TYPE[t] for t in MANDATORY_TYPES - self.session_metrics.types()]
        if missing:
            raise ValueError(
                "session_metrics: a modem must declare "
                + ", ".join(sorted(missing))
                + " (RFC 8175 §12.6)"
            )
