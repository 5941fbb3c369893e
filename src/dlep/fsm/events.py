"""Typed events the engines hand to the application."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..wire import DataItem, PeerType
from .keys import DestinationInfo, DestKey
from .metrics import Metrics

__all__ = [
    "DestinationAnnounceRequested",
    "DestinationDown",
    "DestinationInfo",
    "DestinationLimitReached",
    "DestinationRefused",
    "DestinationUp",
    "DestinationUpRequested",
    "DestinationUpdate",
    "Event",
    "Inconsistency",
    "LinkCharacteristicsRequested",
    "LinkCharacteristicsResponse",
    "LinkCharacteristicsTimeout",
    "ResponseStatus",
    "SessionTerminated",
    "SessionUp",
    "SessionUpdated",
]


class Event:
    """Base class of engine events."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SessionUp(Event):
    """Session initialisation completed; the session is In-Session."""

    peer_type: PeerType
    peer_heartbeat_ms: int
    heartbeat_ms: int
    extensions: frozenset[int]
    session_metrics: Metrics
    peer_ipv4: frozenset[ipaddress.IPv4Address] = frozenset()
    peer_ipv6: frozenset[ipaddress.IPv6Address] = frozenset()


@dataclass(frozen=True, slots=True)
class SessionUpdated(Event):
    """The peer sent a Session Update (metrics apply to every destination)."""

    metrics: Metrics
    session_metrics: Metrics
    peer_ipv4: frozenset[ipaddress.IPv4Address] = frozenset()
    peer_ipv6: frozenset[ipaddress.IPv6Address] = frozenset()


@dataclass(frozen=True, slots=True)
class SessionTerminated(Event):
    """The session reached Session Reset; the transport must close.

    Attributes:
        status: status code of the termination (ours or the peer's); None
            when the connection simply went away.
        reason: readable cause (when we ended it because of the peer's
            fault, the fault).
        by_peer: the peer ended it (sent Session Termination, or closed the
            connection); False when we sent the Session Termination or
            closed, whatever the cause.
        destinations: the destinations that went away with the session.
    """

    status: int | None
    reason: str
    by_peer: bool
    destinations: tuple[DestKey, ...] = ()


@dataclass(frozen=True, slots=True)
class DestinationUp(Event):
    """A destination is now shared between router and modem."""

    info: DestinationInfo
    #: True if the router asked for it (Destination Announce).
    announced: bool = False


@dataclass(frozen=True, slots=True)
class DestinationUpdate(Event):
    """New metrics or addresses for a destination."""

    info: DestinationInfo
    #: The metric fields that this update carried.
    changed: Metrics = field(default_factory=Metrics)


@dataclass(frozen=True, slots=True)
class DestinationDown(Event):
    """A destination left the session."""

    mac: bytes
    by_peer: bool
    #: Identity items naming the destination with ``mac`` (RFC 8703);
    #: pass them as ``extra`` to select it in API calls.
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class DestinationRefused(Event):
    """The peer declined a destination (Not Interested, Request Denied, ...)."""

    mac: bytes
    status: int
    text: str = ""
    #: Identity items naming the destination with ``mac`` (RFC 8703);
    #: pass them as ``extra`` to select it in API calls.
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class DestinationUpRequested(Event):
    """Router, with auto-accept off: decide with ``respond_destination_up``."""

    info: DestinationInfo


@dataclass(frozen=True, slots=True)
class DestinationLimitReached(Event):
    """The peer's Destination Up for a new destination was refused with
    'Request Denied': the session already holds ``limit`` destinations
    (``SessionConfig.max_peer_destinations``). ``refused``: how many were
    refused so far in this session."""

    mac: bytes
    limit: int
    refused: int
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class DestinationAnnounceRequested(Event):
    """Modem: the router asked about a destination it does not know yet.

    Answer with ``Session.respond_destination_announce``.
    """

    mac: bytes
    ipv4: frozenset[ipaddress.IPv4Address] = frozenset()
    ipv6: frozenset[ipaddress.IPv6Address] = frozenset()
    #: Identity items that name the destination with the MAC (RFC 8703);
    #: pass them back as ``extra`` when answering.
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class LinkCharacteristicsRequested(Event):
    """Modem: the router asks for new characteristics; answer with
    ``Session.respond_link_characteristics``."""

    mac: bytes
    cdrr: int | None
    cdrt: int | None
    latency: int | None
    #: Identity items naming the destination with ``mac`` (RFC 8703);
    #: pass them as ``extra`` to select it in API calls.
    ident: tuple[DataItem, ...] = ()
    #: Items of negotiated extensions the request carried (e.g. RFC 8629
    #: Hop Control, which obliges the response to carry a Hop Count).
    extra: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class LinkCharacteristicsResponse(Event):
    """Router: the modem answered a Link Characteristics Request."""

    mac: bytes
    status: int
    metrics: Metrics
    text: str = ""
    #: Identity items naming the destination with ``mac`` (RFC 8703);
    #: pass them as ``extra`` to select it in API calls.
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class LinkCharacteristicsTimeout(Event):
    """Router: no answer yet within the configured time.

    RFC 8175 §8 says transactions do not time out, so the request stays
    outstanding (no new request for this destination until it is answered);
    this event only tells the application it is slow.
    """

    mac: bytes
    #: Identity items naming the destination with ``mac`` (RFC 8703);
    #: pass them as ``extra`` to select it in API calls.
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class ResponseStatus(Event):
    """A response carried a non-success 'Continue' status worth knowing."""

    message_type: int
    status: int
    text: str = ""
    #: The destination's MAC, for a destination message.
    mac: bytes | None = None
    #: Its identity items (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey | None:
        """The destination's key, for a destination message."""
        return None if self.mac is None else DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class Inconsistency(Event):
    """The peer sent logically inconsistent data that the RFC says to skip
    (e.g. an address drop for an unknown address in a Destination Update)."""

    message_type: int
    reason: str
    #: The destination's MAC, for a destination message.
    mac: bytes | None = None
    #: Its identity items (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey | None:
        """The destination's key, for a destination message."""
        return None if self.mac is None else DestKey(self.mac, self.ident)
