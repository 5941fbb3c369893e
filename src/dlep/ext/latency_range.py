"""RFC 8757: DLEP Latency Range Extension (Extension Type Value 4).

One data item, **Latency Range** (type 28, :class:`LatencyRange`): the
shortest and longest transmission delay over a link, in microseconds.

* It MUST be in the modem's Session Initialization Response, as the
  session-wide default (RFC 8757 §3). :class:`LatencyRangeExtension` adds it
  there (``default=``, else derived from the session Latency) and, on a
  router, ends the session with 130 if a modem left it out.
* It MAY be in any message where RFC 8175 allows the Latency data item
  (:data:`LATENCY_RANGE_MESSAGES`, taken from the core registry), at most
  once, and is processed by the same rules as Latency: session-wide in a
  Session Initialization Response or Session Update (which only a modem may
  send metrics in, RFC 8175 §12.7), per destination in destination messages,
  a requested value in a Link Characteristics Request.

Wire layout (RFC 8757 §3)::

    type 28, length 16 | Maximum Latency (64 bits) | Minimum Latency (64 bits) |

Note the order: maximum first. :class:`LatencyRange` takes keyword
arguments ``minimum`` and ``maximum`` and requires ``minimum <= maximum``
(a range with the bounds the other way round is refused with 130 on receipt).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Self

from ..fsm.destinations import DestinationInfo, DestKey
from ..fsm.events import Event
from ..fsm.session import Role, Session
from ..wire import (
    DEFAULT_REGISTRY,
    OPTIONAL,
    DataItem,
    ItemFormatError,
    Latency,
    Message,
    MessageType,
    Status,
    StatusCode,
    message_name,
)
from .base import Extension, ExtensionViolation, Placement

M = MessageType

#: Extension Type Value of Latency Range (RFC 8757 §5.1).
LATENCY_RANGE_EXTENSION: Final = 4
U64_MAX: Final = (1 << 64) - 1
_QQ: Final = struct.Struct("!QQ")

#: Every message in which RFC 8175 allows the Latency data item, hence the
#: Latency Range (RFC 8757 §3), read from the core registry.
LATENCY_RANGE_MESSAGES: Final[tuple[int, ...]] = tuple(
    sorted(code for code, spec in DEFAULT_REGISTRY.messages.items() if Latency.TYPE in spec.rules)
)


def _check_u64(field_name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ItemFormatError(f"LatencyRange.{field_name}: expected an integer, got {value!r}")
    if not 0 <= value <= U64_MAX:
        raise ItemFormatError(f"LatencyRange.{field_name}: {value} out of range 0..{U64_MAX}")


@dataclass(frozen=True, slots=True)
class LatencyRange(DataItem):
    """Latency Range (RFC 8757 §3): minimum and maximum latency, microseconds.

    On the wire the maximum comes first. ``minimum`` must not exceed
    ``maximum``.
    """

    TYPE: ClassVar[int] = 28
    NAME: ClassVar[str] = "LatencyRange"
    UNIT: ClassVar[str] = "us"
    minimum: int
    maximum: int

    def __post_init__(self) -> None:
        _check_u64("minimum", self.minimum)
        _check_u64("maximum", self.maximum)
        if self.minimum > self.maximum:
            raise ItemFormatError(
                f"LatencyRange.minimum: {self.minimum} exceeds maximum {self.maximum}"
            )

    def encode_value(self) -> bytes:
        return _QQ.pack(self.maximum, self.minimum)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 16:
            raise ItemFormatError(f"LatencyRange: length {len(data)}, must be 16")
        maximum, minimum = _QQ.unpack(data)
        if minimum > maximum:
            raise ItemFormatError(
                f"LatencyRange: minimum latency {minimum} exceeds maximum latency {maximum}"
            )
        return cls(minimum, maximum)


def _as_range(value: LatencyRange | tuple[int, int]) -> LatencyRange:
    if isinstance(value, LatencyRange):
        return value
    minimum, maximum = value
    return LatencyRange(minimum=minimum, maximum=maximum)


# --------------------------------------------------------------------------
# Events (receiving side)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatencyRangeReported(Event):
    """Router: the modem reported a Latency Range.

    ``mac`` is None for the session-wide value (Session Initialization
    Response, Session Update), else the destination.
    """

    mac: bytes | None
    latency_range: LatencyRange
    message_type: int
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey | None:
        """The destination's key, None for the session-wide value."""
        return None if self.mac is None else DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class LatencyRangeRequested(Event):
    """Modem: a Link Characteristics Request for ``mac`` asks for this range
    (processed like the Latency it may come with, RFC 8175 §12.18)."""

    mac: bytes
    latency_range: LatencyRange
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key."""
        return DestKey(self.mac, self.ident)


# --------------------------------------------------------------------------
# Helpers for applications
# --------------------------------------------------------------------------


def latency_range_items(minimum: int, maximum: int) -> tuple[LatencyRange]:
    """The Latency Range item for ``extra=`` of a message that allows Latency
    (ItemFormatError if ``minimum > maximum`` or out of 64-bit range)."""
    return (LatencyRange(minimum=minimum, maximum=maximum),)


def latency_range(
    info: DestinationInfo, default: LatencyRange | None = None
) -> LatencyRange | None:
    """The last Latency Range received for a destination, else ``default``
    (pass the session-wide value, :meth:`LatencyRangeExtension.current`).

    The snapshot keeps a per-destination value even after a Session Update
    changed the session-wide range; :meth:`LatencyRangeExtension.current`
    follows RFC 8175 §12.7 (a session-wide value replaces the destinations').
    """
    for item in info.extra:
        if isinstance(item, LatencyRange):
            return item
    return default


@dataclass(slots=True)
class LatencyRangeState:
    """Per-session state: the session-wide range and per-destination ones."""

    session: LatencyRange | None = None
    destinations: dict[DestKey, LatencyRange] = field(default_factory=dict)

    def current(self, dest: DestKey | bytes | None = None) -> LatencyRange | None:
        """The range in effect for ``dest`` (or the session when None)."""
        if dest is not None:
            found = self.destinations.get(_key(dest))
            if found is not None:
                return found
        return self.session


# --------------------------------------------------------------------------
# The extension
# --------------------------------------------------------------------------


def _is_router(session: Session) -> bool:
    return session.role is Role.ROUTER


def _emit(session: Session, event: Event) -> None:
    session.emit(event)


class LatencyRangeExtension(Extension):
    """RFC 8757 Latency Range (extension 4).

    Args:
        default: modem: the session-wide range sent in the Session
            Initialization Response, as a :class:`LatencyRange` or a
            ``(minimum_us, maximum_us)`` tuple. Without it the modem sends
            ``[latency, latency]`` from its session Latency metric.
            A router ignores it.
    """

    code: ClassVar[int] = LATENCY_RANGE_EXTENSION
    name: ClassVar[str] = "latency-range"
    title: ClassVar[str] = "Latency Range (RFC 8757)"
    items: ClassVar[tuple[type[DataItem], ...]] = (LatencyRange,)
    placements: ClassVar[tuple[Placement, ...]] = tuple(
        Placement(m, LatencyRange, OPTIONAL) for m in LATENCY_RANGE_MESSAGES
    )

    def __init__(self, default: LatencyRange | tuple[int, int] | None = None) -> None:
        self.default: LatencyRange | None = None if default is None else _as_range(default)

    # -- state ------------------------------------------------------------

    def state(self, session: Session) -> LatencyRangeState:
        """This extension's state for ``session`` (``session.ext_state[4]``,
        created on first use)."""
        st = session.ext_state.get(self.code)
        if not isinstance(st, LatencyRangeState):
            st = session.ext_state[self.code] = LatencyRangeState()
        return st

    def current(self, session: Session, dest: DestKey | bytes | None = None) -> LatencyRange | None:
        """The range in effect: for destination ``dest`` (its own, else the
        session-wide one) or, without ``dest``, the session-wide one."""
        return self.state(session).current(dest)

    def session_default(self, session: Session) -> LatencyRange:
        """Modem: the range for our Session Initialization Response."""
        if self.default is not None:
            return self.default
        lat = session.config.session_metrics.latency
        if lat is None:  # a modem config always has it (RFC 8175 §12.6)
            raise ValueError("latency-range: no default and no session Latency to derive one")
        return LatencyRange(minimum=lat, maximum=lat)

    # -- hooks ------------------------------------------------------------

    def new_state(self, session: Session) -> LatencyRangeState:
        return LatencyRangeState()

    def init_items(self, session: Session) -> Sequence[DataItem]:
        """Modem: the mandatory session-wide Latency Range (RFC 8757 §3)."""
        if _is_router(session):
            return ()  # Session Initialization carries no Latency, so no range
        item = self.session_default(session)
        self.state(session).session = item
        return (item,)

    def on_peer_init(self, session: Session, msg: Message) -> None:
        """Router: the Session Initialization Response MUST carry the range."""
        if msg.type != M.SESSION_INITIALIZATION_RESPONSE:
            return
        status = msg.get(Status)
        if status is not None and status.code != StatusCode.SUCCESS:
            return  # a refused session: nothing to negotiate
        item = msg.get(LatencyRange)
        if item is None:
            raise ExtensionViolation(
                "Latency Range negotiated but missing from the Session Initialization "
                "Response (RFC 8757 §3: MUST be included)"
            )
        self.state(session).session = item
        _emit(session, LatencyRangeReported(None, item, msg.type))

    def on_items(
        self, session: Session, msg: Message, dest: DestKey | None, items: Sequence[DataItem]
    ) -> None:
        """Apply a received range by the Latency rules; 130 where a Latency
        would be refused (a Session Update from a router, RFC 8175 §12.7)."""
        router = _is_router(session)
        st = self.state(session)
        for item in items:
            if not isinstance(item, LatencyRange):
                continue
            if msg.type == M.SESSION_INITIALIZATION_RESPONSE:
                st.session = item  # on_peer_init has done the rest
                continue
            if not router:
                if msg.type != M.LINK_CHARACTERISTICS_REQUEST or dest is None:
                    raise ExtensionViolation(
                        f"Latency Range in {message_name(msg.type)} from a router: processed "
                        "like Latency, which a router does not send there (RFC 8757 §3, "
                        "RFC 8175 §12.7)"
                    )
                _emit(session, LatencyRangeRequested(dest.mac, item, dest.ident))
                continue
            if msg.type == M.SESSION_UPDATE or dest is None:
                # Session-wide: like Latency, it applies to every destination.
                st.session = item
                st.destinations.clear()
                _emit(session, LatencyRangeReported(None, item, msg.type))
            else:
                st.destinations[dest] = item
                _emit(session, LatencyRangeReported(dest.mac, item, msg.type, dest.ident))

    def on_destination_gone(self, session: Session, dest: DestKey) -> None:
        self.state(session).destinations.pop(dest, None)


def _key(dest: DestKey | bytes) -> DestKey:
    """A plain MAC names the destination without identity items."""
    return dest if isinstance(dest, DestKey) else DestKey(bytes(dest))


__all__ = [
    "LATENCY_RANGE_EXTENSION",
    "LATENCY_RANGE_MESSAGES",
    "LatencyRange",
    "LatencyRangeExtension",
    "LatencyRangeReported",
    "LatencyRangeRequested",
    "LatencyRangeState",
    "latency_range",
    "latency_range_items",
]
