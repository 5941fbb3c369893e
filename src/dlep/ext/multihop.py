"""RFC 8629: DLEP Multi-Hop Forwarding Extension (Extension Type Value 1).

Two data items:

* **Hop Count** (type 21, :class:`HopCount`), sent by a modem in Destination
  Up, Destination Update, Destination Announce Response and Link
  Characteristics Response: how many modem transmissions reach the
  destination (1 = directly reachable, 255 = "more than one, unknown"), and
  the P flag ("potentially directly reachable"). 0 means "no longer
  reachable after a Hop Control action" and is legal only in a Link
  Characteristics Response (§3.1). A router reads an absent Hop Count as 1
  (:func:`hop_count`).
* **Hop Control** (type 22, :class:`HopControl`), sent by a router in a
  Link Characteristics Request (for one destination) or a Session Update
  (device-wide): Reset, Terminate, Direct Connection or Suppress Forwarding
  (:class:`HopControlAction`). Terminate and Direct Connection are
  per-destination only and MUST NOT be in a Session Update (§3.2.2, §3.2.3).
  A Link Characteristics Request may carry a Hop Control instead of the
  CDRR / CDRT / Latency RFC 8175 §12.18 otherwise requires.

Originating side: the item builders :func:`hop_count_items` (modem) and
:func:`hop_control_request_items` / :func:`hop_control_session_items`
(router) return items for the engine's ``extra=`` parameters. Receiving side:
:class:`MultiHopExtension` checks what RFC 8629 forbids (ending the session
with 130 Invalid Data) and emits :class:`HopCountReported` (router) and
:class:`HopControlRequested` (modem).

Wire layouts (RFC 8629 §3.1, §3.2)::

    Hop Count:   type 21, length 2  | P (1 bit) | Reserved (7 bits) | Hop Count (8 bits) |
    Hop Control: type 22, length 2  | Hop Control Actions (16 bits, unsigned)             |
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Self

from ..fsm.destinations import DestinationInfo, DestKey
from ..fsm.events import Event
from ..fsm.session import Role, Session
from ..wire import (
    OPTIONAL,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    ItemFormatError,
    Latency,
    Message,
    MessageType,
    Registry,
    message_name,
)
from .base import Extension, ExtensionViolation, Placement

M = MessageType

#: Extension Type Value of Multi-Hop Forwarding (RFC 8629 §5.1).
MULTI_HOP_EXTENSION: Final = 1
#: Hop Count value meaning "an unknown number greater than one" (§3.1).
HOP_COUNT_UNKNOWN: Final = 255
#: Hop Count value meaning "no longer reachable" (Link Characteristics Response only).
HOP_COUNT_UNREACHABLE: Final = 0

_P_FLAG: Final = 0x80


class HopControlAction(enum.IntEnum):
    """Hop Control Actions (RFC 8629 §3.2, Table 1 / IANA registry §5.3).

    4-65519 are unassigned (Specification Required), 65520-65534 private
    use, 65535 reserved.
    """

    RESET = 0
    TERMINATE = 1
    DIRECT_CONNECTION = 2
    SUPPRESS_FORWARDING = 3


#: Actions that apply to one destination only: MUST NOT be in a Session Update.
PER_DESTINATION_ACTIONS: Final = frozenset(
    {HopControlAction.TERMINATE, HopControlAction.DIRECT_CONNECTION}
)
#: Actions a router may send device-wide, in a Session Update.
SESSION_ACTIONS: Final = frozenset({HopControlAction.RESET, HopControlAction.SUPPRESS_FORWARDING})
#: The reserved action value (IANA, RFC 8629 §5.3): never valid.
RESERVED_ACTION: Final = 0xFFFF
#: Private-use action values (RFC 8629 §5.3).
PRIVATE_ACTIONS: Final = range(65520, 65535)


def action_name(action: int) -> str:
    """Readable name of a Hop Control action value."""
    try:
        return HopControlAction(action).name
    except ValueError:
        if action in PRIVATE_ACTIONS:
            return f"PRIVATE_{action}"
        if action == RESERVED_ACTION:
            return "RESERVED"
        return f"UNASSIGNED_{action}"


def _check_int(name: str, field: str, value: object, lo: int, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ItemFormatError(f"{name}.{field}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ItemFormatError(f"{name}.{field}: {value} out of range {lo}..{hi}")


def _check_length(name: str, data: bytes, want: int) -> None:
    if len(data) != want:
        raise ItemFormatError(f"{name}: length {len(data)}, must be {want}")


# --------------------------------------------------------------------------
# Data items
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HopCount(DataItem):
    """Hop Count (RFC 8629 §3.1): modem hops to a destination, and the P flag.

    Attributes:
        hops: 1..254 hops; 255 (:data:`HOP_COUNT_UNKNOWN`) = unknown, more
            than one; 0 (:data:`HOP_COUNT_UNREACHABLE`) = made unreachable by
            a Hop Control action (legal in a Link Characteristics Response
            only; checked per message by :class:`MultiHopExtension`).
        potentially_direct: the P flag: the destination could be made
            directly reachable (the router MAY then ask for a Direct
            Connection). Meaningless, and to be ignored, when ``hops`` is 1.

    The seven Reserved bits are sent as zero and ignored on receipt.
    """

    TYPE: ClassVar[int] = 21
    NAME: ClassVar[str] = "HopCount"
    hops: int
    potentially_direct: bool = False

    def __post_init__(self) -> None:
        _check_int(self.NAME, "hops", self.hops, 0, 255)
        if not isinstance(self.potentially_direct, bool):
            raise ItemFormatError(
                f"{self.NAME}.potentially_direct: expected a bool, got {self.potentially_direct!r}"
            )

    @property
    def reachable(self) -> bool:
        """False only for Hop Count 0."""
        return self.hops != HOP_COUNT_UNREACHABLE

    @property
    def unknown(self) -> bool:
        """True for 255: more than one hop, number unknown."""
        return self.hops == HOP_COUNT_UNKNOWN

    @property
    def direct_possible(self) -> bool:
        """The P flag as a receiver must read it: set, and more than one hop
        (§3.1: the flag is ignored when the Hop Count is 1)."""
        return self.potentially_direct and self.hops > 1

    def encode_value(self) -> bytes:
        return bytes((_P_FLAG if self.potentially_direct else 0, self.hops))

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_length(cls.NAME, data, 2)
        return cls(data[1], bool(data[0] & _P_FLAG))


@dataclass(frozen=True, slots=True)
class HopControl(DataItem):
    """Hop Control (RFC 8629 §3.2): a router's request to change forwarding.

    ``action`` is a 16-bit value, normally a :class:`HopControlAction`.
    Every 16-bit value decodes (unassigned and private-use codes exist);
    which actions a message may carry is checked by
    :class:`MultiHopExtension`.
    """

    TYPE: ClassVar[int] = 22
    NAME: ClassVar[str] = "HopControl"
    action: int

    def __post_init__(self) -> None:
        _check_int(self.NAME, "action", self.action, 0, 0xFFFF)

    @property
    def name(self) -> str:
        """Symbolic name of the action."""
        return action_name(self.action)

    @property
    def known_action(self) -> HopControlAction | None:
        """The action as a :class:`HopControlAction`, or None if unassigned."""
        try:
            return HopControlAction(self.action)
        except ValueError:
            return None

    def encode_value(self) -> bytes:
        return self.action.to_bytes(2, "big")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_length(cls.NAME, data, 2)
        return cls((data[0] << 8) | data[1])


# --------------------------------------------------------------------------
# Events (receiving side)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HopCountReported(Event):
    """Router: a Hop Count arrived for ``mac`` in ``message_type``.

    ``hop_count.hops == 0`` (only in a Link Characteristics Response): the
    Hop Control action made the destination unreachable.
    """

    mac: bytes
    hop_count: HopCount
    message_type: int
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey:
        """The destination's key."""
        return DestKey(self.mac, self.ident)


@dataclass(frozen=True, slots=True)
class HopControlRequested(Event):
    """Modem: the router asked for a Hop Control action.

    ``mac`` is the destination (Link Characteristics Request) or None for a
    device-wide request (Session Update). Per RFC 8629 §3.2 the modem answers
    a per-destination request with a Link Characteristics Response carrying
    an updated Hop Count (:func:`hop_count_items`), and reports the effect
    on other destinations with Destination Update / Destination Down.
    """

    mac: bytes | None
    action: int
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def key(self) -> DestKey | None:
        """The destination's key, None for a device-wide request."""
        return None if self.mac is None else DestKey(self.mac, self.ident)

    @property
    def name(self) -> str:
        """Symbolic name of the action."""
        return action_name(self.action)


# --------------------------------------------------------------------------
# Helpers for applications
# --------------------------------------------------------------------------


def hop_count_item(info: DestinationInfo) -> HopCount | None:
    """The last Hop Count received for a destination, or None if none was."""
    for item in info.extra:
        if isinstance(item, HopCount):
            return item
    return None


def hop_count(info: DestinationInfo) -> int:
    """Hop count of a destination: 1 when no Hop Count item was received
    (RFC 8629 §3.1: "the absence ... MUST be interpreted ... as ... one").

    255 means "unknown, more than one"; 0 "made unreachable".
    """
    item = hop_count_item(info)
    return 1 if item is None else item.hops


def direct_connection_possible(info: DestinationInfo) -> bool:
    """True if the last Hop Count had the P flag and more than one hop: the
    case in which a router SHOULD only request a Direct Connection (§3.2.3)."""
    item = hop_count_item(info)
    return item is not None and item.direct_possible


#: Messages in which a Hop Count may be sent (RFC 8629 §3.1).
HOP_COUNT_MESSAGES: Final = (
    M.DESTINATION_UP,
    M.DESTINATION_UPDATE,
    M.DESTINATION_ANNOUNCE_RESPONSE,
    M.LINK_CHARACTERISTICS_RESPONSE,
)


def hop_count_items(
    hops: int,
    potentially_direct: bool = False,
    *,
    message_type: int = M.DESTINATION_UPDATE,
) -> tuple[HopCount]:
    """Modem: the Hop Count item for ``extra=`` of a destination message.

    ``message_type`` is the message it goes into: Hop Count 0 is refused
    (ValueError) except for a Link Characteristics Response. RFC 8629 asks
    for the item whenever the hop count exceeds 1; sending 1 explicitly when
    a destination becomes directly reachable again is legal and keeps
    routers that remember the last value right.
    """
    if message_type not in HOP_COUNT_MESSAGES:
        raise ValueError(
            f"Hop Count is not carried in {message_name(message_type)} (RFC 8629 §3.1)"
        )
    item = HopCount(hops, potentially_direct)
    if hops == HOP_COUNT_UNREACHABLE and message_type != M.LINK_CHARACTERISTICS_RESPONSE:
        raise ValueError(
            "Hop Count 0 is only allowed in a Link Characteristics Response (RFC 8629 §3.1)"
        )
    return (item,)


def _action(action: int | HopControlAction) -> HopControl:
    item = HopControl(int(action) if isinstance(action, HopControlAction) else action)
    if item.action == RESERVED_ACTION:
        raise ValueError("Hop Control action 65535 is reserved (RFC 8629 §5.3)")
    return item


def hop_control_request_items(action: int | HopControlAction) -> tuple[HopControl]:
    """Router: the Hop Control item for a Link Characteristics Request
    (one destination). Any action but the reserved 65535.

    Direct Connection SHOULD only be asked for a destination whose last
    Hop Count showed more than one hop and the P flag
    (:func:`direct_connection_possible`).
    """
    return (_action(action),)


def hop_control_session_items(action: int | HopControlAction) -> tuple[HopControl]:
    """Router: the Hop Control item for a Session Update (device-wide).

    Terminate and Direct Connection are per-destination actions and raise
    ValueError (RFC 8629 §3.2.2, §3.2.3: MUST NOT be sent in a Session
    Update).
    """
    item = _action(action)
    if item.action in PER_DESTINATION_ACTIONS:
        raise ValueError(
            f"Hop Control {item.name} applies to one destination: send it in a Link "
            "Characteristics Request, not a Session Update (RFC 8629 §3.2)"
        )
    return (item,)


# --------------------------------------------------------------------------
# The extension
# --------------------------------------------------------------------------


def _is_router(session: Session) -> bool:
    return session.role is Role.ROUTER


def _emit(session: Session, event: Event) -> None:
    session.emit(event)


@dataclass(slots=True)
class MultiHopState:
    """Per-session state.

    Attributes:
        owed: modem: destinations whose open Link Characteristics Request
            carried a Hop Control, so its response must carry a Hop Count
            (RFC 8629 §3.2).
    """

    owed: set[DestKey] = field(default_factory=set)


class MultiHopExtension(Extension):
    """RFC 8629 Multi-Hop Forwarding (extension 1)."""

    code: ClassVar[int] = MULTI_HOP_EXTENSION
    name: ClassVar[str] = "multi-hop"
    title: ClassVar[str] = "Multi-Hop Forwarding (RFC 8629)"
    items: ClassVar[tuple[type[DataItem], ...]] = (HopCount, HopControl)
    placements: ClassVar[tuple[Placement, ...]] = (
        *(Placement(m, HopCount, OPTIONAL) for m in HOP_COUNT_MESSAGES),
        Placement(M.SESSION_UPDATE, HopControl, OPTIONAL),
        Placement(M.LINK_CHARACTERISTICS_REQUEST, HopControl, OPTIONAL),
    )

    def register(self, registry: Registry) -> None:
        """Register the items and placements, and let a Hop Control satisfy
        the Link Characteristics Request's "at least one of CDRR, CDRT,
        Latency" (RFC 8629 §3.2: the request may carry only the Hop Control).
        """
        super().register(registry)
        spec = registry.messages[M.LINK_CHARACTERISTICS_REQUEST]
        metrics = {CurrentDataRateReceive.TYPE, CurrentDataRateTransmit.TYPE, Latency.TYPE}
        spec.one_of = [
            group | {HopControl.TYPE} if group & metrics else group for group in spec.one_of
        ]

    def state(self, session: Session) -> MultiHopState:
        """This extension's state on ``session`` (``session.ext_state[1]``)."""
        st = session.ext_state.get(self.code)
        if not isinstance(st, MultiHopState):
            st = session.ext_state[self.code] = MultiHopState()
        return st

    def new_state(self, session: Session) -> MultiHopState:
        return MultiHopState()

    def response_items(
        self, session: Session, message_type: int, dest: DestKey | None
    ) -> Sequence[DataItem]:
        """Modem: the Hop Count RFC 8629 §3.2 requires in the answer to a
        Hop Control request, unless the application's answer carries one.

        The value is the destination's last reported Hop Count (absent: 1,
        §3.1); an application that changed the hops passes the new one.
        """
        if message_type != M.LINK_CHARACTERISTICS_RESPONSE or dest is None:
            return ()
        owed = self.state(session).owed
        if dest not in owed:
            return ()
        owed.discard(dest)
        info = session.destination(dest)
        current = hop_count_item(info) if info is not None else None
        return (current if current is not None else HopCount(1),)

    def on_destination_gone(self, session: Session, dest: DestKey) -> None:
        self.state(session).owed.discard(dest)

    def on_items(
        self, session: Session, msg: Message, dest: DestKey | None, items: Sequence[DataItem]
    ) -> None:
        """Check RFC 8629's per-message rules; emit the receive-side events.

        Raises ExtensionViolation (130) for: a Hop Count from a router, Hop
        Count 0 outside a Link Characteristics Response, a Hop Control from
        a modem, the reserved action 65535, and Terminate / Direct
        Connection in a Session Update.
        """
        router = _is_router(session)
        where = message_name(msg.type)
        events: list[Event] = []
        for item in items:
            if isinstance(item, HopCount):
                if not router:
                    raise ExtensionViolation(f"Hop Count in {where} from a router (RFC 8629 §3.1)")
                if (
                    item.hops == HOP_COUNT_UNREACHABLE
                    and msg.type != M.LINK_CHARACTERISTICS_RESPONSE
                ):
                    raise ExtensionViolation(
                        f"Hop Count 0 in {where}: only allowed in a Link Characteristics "
                        "Response (RFC 8629 §3.1)"
                    )
                if dest is not None:
                    events.append(HopCountReported(dest.mac, item, msg.type, dest.ident))
            elif isinstance(item, HopControl):
                if router:
                    raise ExtensionViolation(f"Hop Control in {where} from a modem (RFC 8629 §3.2)")
                if item.action == RESERVED_ACTION:
                    raise ExtensionViolation(
                        f"Hop Control in {where}: action 65535 is reserved (RFC 8629 §5.3)"
                    )
                if msg.type == M.SESSION_UPDATE and item.action in PER_DESTINATION_ACTIONS:
                    raise ExtensionViolation(
                        f"Hop Control {item.name} in a Session Update: per-destination only, "
                        "MUST NOT be sent in a Session Update (RFC 8629 §3.2.2, §3.2.3)"
                    )
                if msg.type == M.SESSION_UPDATE or dest is None:
                    events.append(HopControlRequested(None, item.action))
                else:
                    # §3.2: the Link Characteristics Response MUST carry an
                    # updated Hop Count (response_items adds it if the
                    # application's answer does not).
                    self.state(session).owed.add(dest)
                    events.append(HopControlRequested(dest.mac, item.action, dest.ident))
        for event in events:
            _emit(session, event)


__all__ = [
    "HOP_COUNT_MESSAGES",
    "HOP_COUNT_UNKNOWN",
    "HOP_COUNT_UNREACHABLE",
    "MULTI_HOP_EXTENSION",
    "PER_DESTINATION_ACTIONS",
    "PRIVATE_ACTIONS",
    "RESERVED_ACTION",
    "SESSION_ACTIONS",
    "HopControl",
    "HopControlAction",
    "HopControlRequested",
    "HopCount",
    "HopCountReported",
    "MultiHopExtension",
    "action_name",
    "direct_connection_possible",
    "hop_control_request_items",
    "hop_control_session_items",
    "hop_count",
    "hop_count_item",
    "hop_count_items",
]
