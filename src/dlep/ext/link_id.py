"""RFC 8703 Link Identifier extension (Extension Type Value 3).

A modem that reaches *Layer 3 DLEP Destinations* (behind a gateway node, not
directly on the local Layer 2 domain) names each one with the pair
{MAC Address of the gateway, Link Identifier}. Two data items:

* :class:`LinkIdentifierLength` (type 26, §3.1): in the modem's Session
  Initialization Response only, when the identifiers are not the default 4
  octets long;
* :class:`LinkIdentifier` (type 27, §3.2): wherever a MAC Address may appear,
  i.e. in every destination message.

The engine keys destinations by MAC *and* Link Identifier (``identity_items``)
and repeats the identifier after the MAC Address in every message it sends
about such a destination. This module adds the session rules of §2/§2.1:

* every Link Identifier has the session's length (130 Invalid Data);
* a Destination Up with a Link Identifier carries Layer 3 information (130);
* a {MAC, Link Identifier} pair is introduced once: a router that receives a
  Destination Up naming a pair already used in this session answers 130 and
  terminates;
* a router names only pairs a Destination Up introduced: a modem that receives
  a Destination Announce with any other pair terminates with 131 (Invalid
  Destination).

Deployed OONF radios swap the codes of items 26 and 27 (and use extension
65523); that is an interoperability profile, not this module: the classes here
carry the RFC's codes.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, Self

from ..fsm.destinations import DestKey
from ..wire import (
    OPTIONAL,
    DataItem,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
    Ipv6AttachedSubnet,
    ItemFormatError,
    MacAddress,
    Message,
    MessageType,
    StatusCode,
    format_mac,
)
from .base import Extension, ExtensionViolation, Placement

if TYPE_CHECKING:
    from ..fsm.session import Session

__all__ = [
    "DEFAULT_LENGTH",
    "EXTENSION_CODE",
    "LINK_IDENTIFIER",
    "LINK_IDENTIFIER_LENGTH",
    "LinkIdExtension",
    "LinkIdState",
    "LinkIdentifier",
    "LinkIdentifierLength",
]

#: Extension Type Value of RFC 8703 §5 ('Link Identifiers').
EXTENSION_CODE: Final = 3
#: Data item type codes of RFC 8703 §5.
LINK_IDENTIFIER_LENGTH: Final = 26
LINK_IDENTIFIER: Final = 27
#: Link Identifier length when none is announced (§2.1).
DEFAULT_LENGTH: Final = 4

_MAX_LENGTH: Final = 0xFFFF  # an item's Length field is 16 bits
_M = MessageType
_L3_CLASSES: Final = (Ipv4Address, Ipv6Address, Ipv4AttachedSubnet, Ipv6AttachedSubnet)


def _check_length(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ItemFormatError(f"{name}: expected an integer, got {value!r}")
    if not 1 <= value <= _MAX_LENGTH:
        raise ItemFormatError(f"{name}: {value} out of range 1..{_MAX_LENGTH}")
    return value


@dataclass(frozen=True, slots=True)
class LinkIdentifierLength(DataItem):
    """Link Identifier Length (RFC 8703 §3.1): octets in every Link Identifier.

    A 16-bit unsigned value. The RFC gives no range; 0 is refused because a
    zero-length Link Identifier could not tell links apart (and an item's
    Length field cannot describe more than 65535 octets, the maximum).
    """

    TYPE: ClassVar[int] = LINK_IDENTIFIER_LENGTH
    NAME: ClassVar[str] = "LinkIdentifierLength"
    length: int

    def __post_init__(self) -> None:
        _check_length("LinkIdentifierLength.length", self.length)

    def encode_value(self) -> bytes:
        return self.length.to_bytes(2, "big")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 2:
            raise ItemFormatError(f"LinkIdentifierLength: length {len(data)}, must be 2")
        value = (data[0] << 8) | data[1]
        if value == 0:
            raise ItemFormatError("LinkIdentifierLength: 0 octets is not a usable length")
        return cls(value)


@dataclass(frozen=True, slots=True)
class LinkIdentifier(DataItem):
    """Link Identifier (RFC 8703 §3.2): opaque octets naming a Layer 3 link.

    Paired with the MAC Address of the gateway node it identifies one Layer 3
    DLEP Destination. Its length is the session's (4 unless the modem
    announced another with :class:`LinkIdentifierLength`); the item itself
    accepts 1..65535 octets and the session checks the length.
    """

    TYPE: ClassVar[int] = LINK_IDENTIFIER
    NAME: ClassVar[str] = "LinkIdentifier"
    identifier: bytes

    def __post_init__(self) -> None:
        value = self.identifier
        if isinstance(value, bytearray | memoryview):
            value = bytes(value)
            object.__setattr__(self, "identifier", value)
        if not isinstance(value, bytes):
            raise ItemFormatError(f"LinkIdentifier.identifier: expected bytes, got {value!r}")
        if not 1 <= len(value) <= _MAX_LENGTH:
            raise ItemFormatError(
                f"LinkIdentifier.identifier: {len(value)} octets, must be 1..{_MAX_LENGTH}"
            )

    @classmethod
    def from_int(cls, value: int, length: int = DEFAULT_LENGTH) -> Self:
        """Identifier ``value`` as a big-endian number of ``length`` octets."""
        _check_length("LinkIdentifier length", length)
        try:
            return cls(value.to_bytes(length, "big"))
        except (OverflowError, AttributeError, TypeError):
            raise ItemFormatError(
                f"LinkIdentifier: {value!r} does not fit in {length} octets"
            ) from None

    @classmethod
    def parse(cls, text: str) -> Self:
        """From hex, with or without ``:``/``-`` separators: ``"0a:0b:0c:0d"``."""
        digits = text.replace(":", "").replace("-", "").strip()
        try:
            return cls(bytes.fromhex(digits))
        except ValueError:
            raise ItemFormatError(f"LinkIdentifier {text!r}: not hexadecimal") from None

    def __int__(self) -> int:
        return int.from_bytes(self.identifier, "big")

    def __str__(self) -> str:
        return ":".join(f"{b:02x}" for b in self.identifier)

    def encode_value(self) -> bytes:
        return self.identifier

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if not data:
            raise ItemFormatError("LinkIdentifier: length 0, must be at least 1")
        o = object.__new__(cls)
        object.__setattr__(o, "identifier", bytes(data))
        return o


Pair = tuple[bytes, bytes]
"""A Layer 3 DLEP Destination: (gateway MAC, Link Identifier octets)."""


@dataclass(slots=True)
class LinkIdState:
    """Per-session state of the extension.

    Attributes:
        length: octets of every Link Identifier in this session (§2.1).
        announced_length: the Link Identifier Length item seen or sent in
            session initialisation (None: none, the default applies).
        introduced: pairs named by a Destination Up in this session. Router:
            every Destination Up received. Modem: every Destination Up the
            router answered (its response repeats the Link Identifier), which
            are the pairs it may name in a Destination Announce (§2).
    """

    length: int = DEFAULT_LENGTH
    announced_length: int | None = None
    introduced: set[Pair] = field(default_factory=set)


_DEST_MESSAGES: Final = (
    _M.DESTINATION_UP,
    _M.DESTINATION_UP_RESPONSE,
    _M.DESTINATION_ANNOUNCE,
    _M.DESTINATION_ANNOUNCE_RESPONSE,
    _M.DESTINATION_DOWN,
    _M.DESTINATION_DOWN_RESPONSE,
    _M.DESTINATION_UPDATE,
    _M.LINK_CHARACTERISTICS_REQUEST,
    _M.LINK_CHARACTERISTICS_RESPONSE,
)


class LinkIdExtension(Extension):
    """RFC 8703 Link Identifier extension.

    Args:
        length: modem: the Link Identifier length this modem uses (default
            4; any other value is announced in the Session Initialization
            Response). Ignored by a router, which takes the modem's.

    Use on a modem: ``session.add_destination(gateway_mac, addresses=[...],
    extra=[LinkIdentifier.from_int(7)])``; later messages about that
    destination name it with the same ``extra`` identifier.
    """

    code: ClassVar[int] = EXTENSION_CODE
    name: ClassVar[str] = "link-identifier"
    title: ClassVar[str] = "Link Identifier Extension (RFC 8703)"
    items: ClassVar[tuple[type[DataItem], ...]] = (LinkIdentifierLength, LinkIdentifier)
    placements: ClassVar[tuple[Placement, ...]] = (
        Placement(_M.SESSION_INITIALIZATION_RESPONSE, LinkIdentifierLength, OPTIONAL),
        *(Placement(m, LinkIdentifier, OPTIONAL) for m in _DEST_MESSAGES),
    )
    identity_items: ClassVar[tuple[int, ...]] = (LINK_IDENTIFIER,)

    def __init__(self, length: int = DEFAULT_LENGTH) -> None:
        try:
            self.length = _check_length("length", length)
        except ItemFormatError as exc:
            raise ValueError(str(exc)) from None
        self._states: weakref.WeakKeyDictionary[Session, LinkIdState] = weakref.WeakKeyDictionary()

    # -- state ------------------------------------------------------------

    def state(self, session: Session) -> LinkIdState:
        """This extension's state on ``session`` (created on first use)."""
        st = self._states.get(session)
        if st is None:
            st = self._states[session] = LinkIdState()
            if _is_modem(session):
                st.length = self.length
        return st

    def identifier(
        self, value: int | bytes | str, session: Session | None = None
    ) -> LinkIdentifier:
        """A :class:`LinkIdentifier` of the right length for ``session``
        (or for this modem's configured length): from an int, raw octets or
        hex text. ValueError if it does not have that length."""
        want = self.state(session).length if session is not None else self.length
        try:
            if isinstance(value, int):
                return LinkIdentifier.from_int(value, want)
            item = LinkIdentifier.parse(value) if isinstance(value, str) else LinkIdentifier(value)
        except ItemFormatError as exc:
            raise ValueError(str(exc)) from None
        if len(item.identifier) != want:
            raise ValueError(
                f"Link Identifier {item} has {len(item.identifier)} octets; "
                f"this session uses {want} (RFC 8703 §2.1)"
            )
        return item

    # -- hooks ------------------------------------------------------------

    def new_state(self, session: Session) -> LinkIdState:
        return self.state(session)

    def init_items(self, session: Session) -> Sequence[DataItem]:
        if not _is_modem(session):
            return ()
        st = self.state(session)
        if self.length == DEFAULT_LENGTH:
            return ()
        # §3.1: MAY be sent when the router offered the extension and the
        # length is not the default (the engine only calls us if it did).
        st.announced_length = self.length
        return (LinkIdentifierLength(self.length),)

    def on_peer_init(self, session: Session, msg: Message) -> None:
        if _is_modem(session):
            return  # a Session Initialization cannot carry item 26 (codec rules)
        st = self.state(session)
        lil = msg.get(LinkIdentifierLength)
        if lil is not None:
            st.announced_length = lil.length
            st.length = lil.length

    def on_items(
        self, session: Session, msg: Message, dest: DestKey | None, items: Sequence[DataItem]
    ) -> None:
        if msg.type == _M.SESSION_INITIALIZATION_RESPONSE:
            self.on_peer_init(session, msg)  # idempotent
            return
        st = self.state(session)
        lid: LinkIdentifier | None = None
        for item in items:
            if isinstance(item, LinkIdentifier):
                lid = item
                if len(item.identifier) != st.length:
                    raise ExtensionViolation(
                        f"Link Identifier {item} in {msg.name} has {len(item.identifier)} "
                        f"octets; this session uses {st.length} (RFC 8703 §2.1)"
                    )
        if lid is None:
            return
        mac = msg.get(MacAddress)
        if mac is None:  # the codec requires one in every destination message
            raise ExtensionViolation(f"{msg.name}: Link Identifier without a MAC Address")
        pair = (mac.address, lid.identifier)
        name = _pair_name(pair)
        if msg.type == _M.DESTINATION_UP:
            if _is_modem(session):
                return  # not a message a modem receives; the engine says 129
            if pair in st.introduced:
                # §2: answer the Destination Up with 130, then terminate.
                raise ExtensionViolation(
                    f"Destination Up reuses {name}, already used in this session (RFC 8703 §2)",
                    respond=True,
                )
            if not any(isinstance(i, _L3_CLASSES) for i in msg.items):
                raise ExtensionViolation(
                    f"Destination Up for {name} carries no IPv4/IPv6 Address or Attached "
                    "Subnet (RFC 8703 §2)"
                )
            st.introduced.add(pair)
        elif msg.type == _M.DESTINATION_UP_RESPONSE and _is_modem(session):
            # The router answered our Destination Up (whatever its status):
            # the pair is now "mentioned in a prior Destination Up".
            st.introduced.add(pair)
        elif (
            msg.type == _M.DESTINATION_ANNOUNCE and _is_modem(session) and pair not in st.introduced
        ):
            raise ExtensionViolation(
                f"Destination Announce names {name}, which no Destination Up introduced "
                "(RFC 8703 §2)",
                StatusCode.INVALID_DESTINATION,
            )

    def check_outgoing(
        self, session: Session, message_type: int, items: Iterable[DataItem]
    ) -> None:
        """Sender-side rules: raise ValueError if ``items`` would break them.

        For an engine (or application) that validates what it is about to
        send: the length (§2.1), Layer 3 information in a Destination Up and
        no reuse of a pair (§2), and a router naming only introduced pairs.
        """
        items = list(items)
        lid = next((i for i in items if isinstance(i, LinkIdentifier)), None)
        if lid is None:
            return
        st = self.state(session)
        if len(lid.identifier) != st.length:
            raise ValueError(
                f"Link Identifier {lid} has {len(lid.identifier)} octets; "
                f"this session uses {st.length} (RFC 8703 §2.1)"
            )
        mac = next((i for i in items if isinstance(i, MacAddress)), None)
        if mac is None:
            return
        pair = (mac.address, lid.identifier)
        if message_type == _M.DESTINATION_UP:
            if not any(isinstance(i, _L3_CLASSES) for i in items):
                raise ValueError(
                    f"Destination Up for {_pair_name(pair)} needs an IPv4/IPv6 Address or "
                    "Attached Subnet (RFC 8703 §2)"
                )
            if pair in st.introduced:
                raise ValueError(f"{_pair_name(pair)} was already used in this session")
        elif (
            message_type == _M.DESTINATION_ANNOUNCE
            and not _is_modem(session)
            and pair not in st.introduced
        ):
            raise ValueError(
                f"{_pair_name(pair)} was not introduced by a Destination Up (RFC 8703 §2)"
            )


def _is_modem(session: Session) -> bool:
    return bool(session.role.value == "modem")


def _pair_name(pair: Pair) -> str:
    mac, lid = pair
    return f"{{MAC {format_mac(mac)}, Link Identifier {lid.hex(':')}}}"
