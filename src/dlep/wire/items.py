"""The 20 data items of RFC 8175 §13 as typed, immutable values.

Each item class knows its type code (``TYPE``), how to encode its value
(:meth:`DataItem.encode_value`) and how to decode one
(:meth:`DataItem.decode_value`). Constructors validate their fields so a bad
value fails where it is made, naming the field. Decoders raise
:class:`~dlep.wire.errors.ItemFormatError`, which the message decoder turns
into a :class:`~dlep.wire.errors.DecodeError` with status 130.

Receive-side leniency (documented in ``docs/wire.md``): reserved flag bits are
ignored rather than rejected, and text fields that are not valid UTF-8 have
the bad octets replaced with U+FFFD instead of failing the session.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from .codes import ItemType, StatusCode, status_name
from .errors import ItemFormatError

_HDR = struct.Struct("!HH")
_U8 = struct.Struct("!B")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_ITEM_U8 = struct.Struct("!HHB")
_ITEM_U16 = struct.Struct("!HHH")
_ITEM_U32 = struct.Struct("!HHI")
_ITEM_U64 = struct.Struct("!HHQ")

_new = object.__new__
_set = object.__setattr__

U64_MAX = (1 << 64) - 1

# Fixed layouts the message decoder builds inline, skipping a method call per
# item: it is the difference between ~130k and >200k messages/s.
FAST_NONE = 0
FAST_U64 = 1  # 8-octet unsigned ``value``
FAST_PERCENT = 2  # 1-octet ``value`` 0..100
FAST_U16 = 3  # 2-octet unsigned ``value``
FAST_MAC = 4  # 6 or 8 octet ``address``
#: Decoding of received text (Status text, Peer Type description): RFC 8175
#: makes them UTF-8 for display (§13.1, §13.4), so octets that are not UTF-8
#: become U+FFFD here, at the network boundary. Everything above (events,
#: logs, JSON, protobuf) then holds only strings that encode as UTF-8; the
#: surrogate escapes this used to keep made protobuf raise in the API.
TEXT_ERRORS = "replace"


class DataItem:
    """Base class of every data item (core and extension).

    Subclasses are frozen dataclasses and set ``TYPE`` (the item type code)
    and ``NAME``.
    """

    __slots__ = ()
    TYPE: ClassVar[int]
    NAME: ClassVar[str]
    #: Layout shortcut the message decoder may inline (see FAST_* below);
    #: FAST_NONE means "call decode_value".
    FAST: ClassVar[int] = 0

    def encode_value(self) -> bytes:
        """The Value field of this item (without type and length)."""
        raise NotImplementedError

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        """Build the item from its Value field; raise ItemFormatError if malformed."""
        raise NotImplementedError

    def encode(self) -> bytes:
        """The whole TLV: type, length, value."""
        value = self.encode_value()
        if len(value) > 0xFFFF:
            raise ItemFormatError(f"{self.NAME}: value of {len(value)} octets exceeds 65535")
        return _HDR.pack(self.TYPE, len(value)) + value


def _check_len(name: str, data: bytes, *allowed: int) -> None:
    if len(data) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ItemFormatError(f"{name}: length {len(data)}, must be {want}")


def _check_uint(name: str, field: str, value: object, bits: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ItemFormatError(f"{name}.{field}: expected an integer, got {value!r}")
    if not 0 <= value < (1 << bits):
        raise ItemFormatError(f"{name}.{field}: {value} out of range 0..{(1 << bits) - 1}")


def _check_bool(name: str, field: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ItemFormatError(f"{name}.{field}: expected a bool, got {value!r}")


def _check_text(name: str, field: str, value: object, limit: int) -> None:
    if not isinstance(value, str):
        raise ItemFormatError(f"{name}.{field}: expected a str, got {value!r}")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate: not a Unicode scalar value
        raise ItemFormatError(f"{name}.{field}: not encodable as UTF-8 ({exc.reason})") from None
    if len(encoded) > limit:
        raise ItemFormatError(f"{name}.{field}: longer than {limit} octets of UTF-8")


# --------------------------------------------------------------------------
# Session-level items
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Status(DataItem):
    """Status (RFC 8175 §13.1): a status code and optional UTF-8 text."""

    TYPE: ClassVar[int] = ItemType.STATUS
    NAME: ClassVar[str] = "Status"
    code: int
    text: str = ""

    def __post_init__(self) -> None:
        _check_uint(self.NAME, "code", self.code, 8)
        _check_text(self.NAME, "text", self.text, 0xFFFF - 1)

    @property
    def name(self) -> str:
        """Symbolic name of the status code."""
        return status_name(self.code)

    def encode_value(self) -> bytes:
        return bytes((self.code,)) + self.text.encode("utf-8")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if not data:
            raise ItemFormatError("Status: length 0, must be at least 1")
        o = _new(cls)
        _set(o, "code", data[0])
        _set(o, "text", data[1:].decode("utf-8", TEXT_ERRORS))
        return o

    @classmethod
    def of(cls, code: StatusCode | int, text: str = "") -> Self:
        """Shorthand constructor: ``Status.of(StatusCode.SUCCESS)``."""
        return cls(int(code), text)


@dataclass(frozen=True, slots=True)
class Ipv4ConnectionPoint(DataItem):
    """IPv4 Connection Point (RFC 8175 §13.2): where the modem accepts TCP.

    ``port`` None means the item carries no port (length 5) and the DLEP
    well-known port applies.
    """

    TYPE: ClassVar[int] = ItemType.IPV4_CONNECTION_POINT
    NAME: ClassVar[str] = "IPv4ConnectionPoint"
    address: ipaddress.IPv4Address
    port: int | None = None
    tls: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address):
            _set(self, "address", _as_v4(self.NAME, self.address))
        if self.port is not None:
            _check_uint(self.NAME, "port", self.port, 16)
        _check_bool(self.NAME, "tls", self.tls)

    def encode_value(self) -> bytes:
        head = bytes((1 if self.tls else 0,)) + self.address.packed
        return head if self.port is None else head + _U16.pack(self.port)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 5, 7)
        port = _U16.unpack_from(data, 5)[0] if len(data) == 7 else None
        return cls(ipaddress.IPv4Address(data[1:5]), port, bool(data[0] & 1))


@dataclass(frozen=True, slots=True)
class Ipv6ConnectionPoint(DataItem):
    """IPv6 Connection Point (RFC 8175 §13.3)."""

    TYPE: ClassVar[int] = ItemType.IPV6_CONNECTION_POINT
    NAME: ClassVar[str] = "IPv6ConnectionPoint"
    address: ipaddress.IPv6Address
    port: int | None = None
    tls: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv6Address):
            _set(self, "address", _as_v6(self.NAME, self.address))
        if self.port is not None:
            _check_uint(self.NAME, "port", self.port, 16)
        _check_bool(self.NAME, "tls", self.tls)

    def encode_value(self) -> bytes:
        head = bytes((1 if self.tls else 0,)) + self.address.packed
        return head if self.port is None else head + _U16.pack(self.port)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 17, 19)
        port = _U16.unpack_from(data, 17)[0] if len(data) == 19 else None
        return cls(ipaddress.IPv6Address(data[1:17]), port, bool(data[0] & 1))


@dataclass(frozen=True, slots=True)
class PeerType(DataItem):
    """Peer Type (RFC 8175 §13.4): free-text description and Secured Medium flag."""

    TYPE: ClassVar[int] = ItemType.PEER_TYPE
    NAME: ClassVar[str] = "PeerType"
    description: str = ""
    secured_medium: bool = False

    def __post_init__(self) -> None:
        _check_text(self.NAME, "description", self.description, 0xFFFF - 1)
        _check_bool(self.NAME, "secured_medium", self.secured_medium)

    def encode_value(self) -> bytes:
        flags = 1 if self.secured_medium else 0
        return bytes((flags,)) + self.description.encode("utf-8")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if not data:
            raise ItemFormatError("PeerType: length 0, must be at least 1")
        return cls(data[1:].decode("utf-8", TEXT_ERRORS), bool(data[0] & 1))


@dataclass(frozen=True, slots=True)
class HeartbeatInterval(DataItem):
    """Heartbeat Interval (RFC 8175 §13.5) in milliseconds; never 0."""

    TYPE: ClassVar[int] = ItemType.HEARTBEAT_INTERVAL
    NAME: ClassVar[str] = "HeartbeatInterval"
    milliseconds: int

    def __post_init__(self) -> None:
        _check_uint(self.NAME, "milliseconds", self.milliseconds, 32)
        if self.milliseconds == 0:
            raise ItemFormatError("HeartbeatInterval.milliseconds: must not be 0")

    def encode_value(self) -> bytes:
        return _U32.pack(self.milliseconds)

    def encode(self) -> bytes:
        return _ITEM_U32.pack(self.TYPE, 4, self.milliseconds)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 4)
        return cls(_U32.unpack(data)[0])


@dataclass(frozen=True, slots=True)
class ExtensionsSupported(DataItem):
    """Extensions Supported (RFC 8175 §13.6): the extension type codes offered."""

    TYPE: ClassVar[int] = ItemType.EXTENSIONS_SUPPORTED
    NAME: ClassVar[str] = "ExtensionsSupported"
    extensions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.extensions, tuple):
            _set(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            _check_uint(self.NAME, "extensions", ext, 16)
        if len(self.extensions) > 0xFFFF // 2:
            raise ItemFormatError("ExtensionsSupported.extensions: too many extensions")

    def encode_value(self) -> bytes:
        return struct.pack(f"!{len(self.extensions)}H", *self.extensions)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) % 2:
            raise ItemFormatError(f"ExtensionsSupported: length {len(data)} is odd")
        return cls(struct.unpack(f"!{len(data) // 2}H", data))


# --------------------------------------------------------------------------
# Destination identity and addressing
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacAddress(DataItem):
    """MAC Address (RFC 8175 §13.7): EUI-48 (6 octets) or EUI-64 (8 octets)."""

    TYPE: ClassVar[int] = ItemType.MAC_ADDRESS
    NAME: ClassVar[str] = "MacAddress"
    FAST: ClassVar[int] = FAST_MAC
    address: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.address, bytes):
            if isinstance(self.address, str):
                _set(self, "address", parse_mac(self.address))
            else:
                raise ItemFormatError(f"MacAddress.address: expected bytes, got {self.address!r}")
        if len(self.address) not in (6, 8):
            raise ItemFormatError(
                f"MacAddress.address: {len(self.address)} octets, must be 6 (EUI-48) or 8 (EUI-64)"
            )

    @classmethod
    def parse(cls, text: str) -> Self:
        """From ``"02:00:00:00:00:01"`` (``-`` also accepted as separator)."""
        return cls(parse_mac(text))

    def __str__(self) -> str:
        return format_mac(self.address)

    def encode_value(self) -> bytes:
        return self.address

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 6 and len(data) != 8:
            raise ItemFormatError(f"MacAddress: length {len(data)}, must be 6 or 8")
        o = _new(cls)
        _set(o, "address", bytes(data))
        return o


def parse_mac(text: str) -> bytes:
    """Parse ``aa:bb:cc:dd:ee:ff`` (or 8 groups for EUI-64) into bytes."""
    parts = text.replace("-", ":").split(":")
    try:
        raw = bytes(int(p, 16) for p in parts if len(p) in (1, 2))
    except ValueError:
        raise ItemFormatError(f"MAC address {text!r}: not hexadecimal") from None
    if len(raw) != len(parts) or len(raw) not in (6, 8):
        raise ItemFormatError(f"MAC address {text!r}: need 6 or 8 hex octets separated by ':'")
    return raw


def format_mac(raw: bytes) -> str:
    """Render MAC bytes as lower-case colon-separated hex."""
    return ":".join(f"{b:02x}" for b in raw)


def _as_v4(name: str, value: object) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except ValueError as exc:
        raise ItemFormatError(f"{name}.address: {exc}") from None


def _as_v6(name: str, value: object) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(value)
    except ValueError as exc:
        raise ItemFormatError(f"{name}.address: {exc}") from None


@dataclass(frozen=True, slots=True)
class Ipv4Address(DataItem):
    """IPv4 Address (RFC 8175 §13.8) with its Add/Drop flag (``add``)."""

    TYPE: ClassVar[int] = ItemType.IPV4_ADDRESS
    NAME: ClassVar[str] = "IPv4Address"
    address: ipaddress.IPv4Address
    add: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address):
            _set(self, "address", _as_v4(self.NAME, self.address))
        _check_bool(self.NAME, "add", self.add)

    def encode_value(self) -> bytes:
        return bytes((1 if self.add else 0,)) + self.address.packed

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 5)
        return cls(ipaddress.IPv4Address(data[1:5]), bool(data[0] & 1))


@dataclass(frozen=True, slots=True)
class Ipv6Address(DataItem):
    """IPv6 Address (RFC 8175 §13.9) with its Add/Drop flag (``add``)."""

    TYPE: ClassVar[int] = ItemType.IPV6_ADDRESS
    NAME: ClassVar[str] = "IPv6Address"
    address: ipaddress.IPv6Address
    add: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv6Address):
            _set(self, "address", _as_v6(self.NAME, self.address))
        _check_bool(self.NAME, "add", self.add)

    def encode_value(self) -> bytes:
        return bytes((1 if self.add else 0,)) + self.address.packed

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 17)
        return cls(ipaddress.IPv6Address(data[1:17]), bool(data[0] & 1))


@dataclass(frozen=True, slots=True)
class Ipv4AttachedSubnet(DataItem):
    """IPv4 Attached Subnet (RFC 8175 §13.10): address, prefix length 0-32, Add/Drop.

    The address is kept as sent (host bits included) so nothing is lost;
    :attr:`network` gives the normalised subnet.
    """

    TYPE: ClassVar[int] = ItemType.IPV4_ATTACHED_SUBNET
    NAME: ClassVar[str] = "IPv4AttachedSubnet"
    address: ipaddress.IPv4Address
    prefix_length: int
    add: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv4Address):
            _set(self, "address", _as_v4(self.NAME, self.address))
        _check_uint(self.NAME, "prefix_length", self.prefix_length, 8)
        if self.prefix_length > 32:
            raise ItemFormatError(
                f"{self.NAME}.prefix_length: {self.prefix_length} out of range 0..32"
            )
        _check_bool(self.NAME, "add", self.add)

    @classmethod
    def from_network(cls, network: str | ipaddress.IPv4Network, add: bool = True) -> Self:
        """From ``"10.0.0.0/24"`` or an :class:`ipaddress.IPv4Network`."""
        net = ipaddress.IPv4Network(network, strict=False)
        return cls(net.network_address, net.prefixlen, add)

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The subnet, host bits cleared."""
        return ipaddress.IPv4Network((self.address, self.prefix_length), strict=False)

    def encode_value(self) -> bytes:
        return bytes((1 if self.add else 0,)) + self.address.packed + bytes((self.prefix_length,))

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 6)
        if data[5] > 32:
            raise ItemFormatError(f"IPv4AttachedSubnet: prefix length {data[5]} exceeds 32")
        return cls(ipaddress.IPv4Address(data[1:5]), data[5], bool(data[0] & 1))


@dataclass(frozen=True, slots=True)
class Ipv6AttachedSubnet(DataItem):
    """IPv6 Attached Subnet (RFC 8175 §13.11): address, prefix length 0-128, Add/Drop."""

    TYPE: ClassVar[int] = ItemType.IPV6_ATTACHED_SUBNET
    NAME: ClassVar[str] = "IPv6AttachedSubnet"
    address: ipaddress.IPv6Address
    prefix_length: int
    add: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.address, ipaddress.IPv6Address):
            _set(self, "address", _as_v6(self.NAME, self.address))
        _check_uint(self.NAME, "prefix_length", self.prefix_length, 8)
        if self.prefix_length > 128:
            raise ItemFormatError(
                f"{self.NAME}.prefix_length: {self.prefix_length} out of range 0..128"
            )
        _check_bool(self.NAME, "add", self.add)

    @classmethod
    def from_network(cls, network: str | ipaddress.IPv6Network, add: bool = True) -> Self:
        """From ``"2001:db8::/64"`` or an :class:`ipaddress.IPv6Network`."""
        net = ipaddress.IPv6Network(network, strict=False)
        return cls(net.network_address, net.prefixlen, add)

    @property
    def network(self) -> ipaddress.IPv6Network:
        """The subnet, host bits cleared."""
        return ipaddress.IPv6Network((self.address, self.prefix_length), strict=False)

    def encode_value(self) -> bytes:
        return bytes((1 if self.add else 0,)) + self.address.packed + bytes((self.prefix_length,))

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        _check_len(cls.NAME, data, 18)
        if data[17] > 128:
            raise ItemFormatError(f"IPv6AttachedSubnet: prefix length {data[17]} exceeds 128")
        return cls(ipaddress.IPv6Address(data[1:17]), data[17], bool(data[0] & 1))


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricItem(DataItem):
    """Base of the single-integer metric items; ``value`` is in the item's unit.

    Subclasses set ``BITS`` (field width), ``MAX`` (largest valid value) and
    ``UNIT``. Decoding goes through a fast path that skips ``__init__``
    because a decoded value of the right width is in range by construction,
    except where ``MAX`` is narrower than the field (percentages).
    """

    BITS: ClassVar[int] = 64
    MAX: ClassVar[int] = U64_MAX
    UNIT: ClassVar[str] = ""
    value: int

    def __post_init__(self) -> None:
        _check_uint(self.NAME, "value", self.value, self.BITS)
        if self.value > self.MAX:
            raise ItemFormatError(f"{self.NAME}.value: {self.value} exceeds {self.MAX}")


class _U64Metric(MetricItem):
    __slots__ = ()
    FAST: ClassVar[int] = FAST_U64

    def encode_value(self) -> bytes:
        return _U64.pack(self.value)

    def encode(self) -> bytes:
        return _ITEM_U64.pack(self.TYPE, 8, self.value)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 8:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be 8")
        o = _new(cls)
        _set(o, "value", int.from_bytes(data, "big"))
        return o


class _Percent(MetricItem):
    __slots__ = ()
    FAST: ClassVar[int] = FAST_PERCENT
    BITS: ClassVar[int] = 8
    MAX: ClassVar[int] = 100
    UNIT: ClassVar[str] = "%"

    def encode_value(self) -> bytes:
        return bytes((self.value,))

    def encode(self) -> bytes:
        return _ITEM_U8.pack(self.TYPE, 1, self.value)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 1:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be 1")
        if data[0] > 100:
            raise ItemFormatError(f"{cls.NAME}: {data[0]} exceeds 100")
        o = _new(cls)
        _set(o, "value", data[0])
        return o


class MaximumDataRateReceive(_U64Metric):
    """Maximum Data Rate (Receive), MDRR (RFC 8175 §13.12), bits per second."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.MDRR
    NAME: ClassVar[str] = "MDRR"
    UNIT: ClassVar[str] = "bps"


class MaximumDataRateTransmit(_U64Metric):
    """Maximum Data Rate (Transmit), MDRT (RFC 8175 §13.13), bits per second."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.MDRT
    NAME: ClassVar[str] = "MDRT"
    UNIT: ClassVar[str] = "bps"


class CurrentDataRateReceive(_U64Metric):
    """Current Data Rate (Receive), CDRR (RFC 8175 §13.14), bits per second."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.CDRR
    NAME: ClassVar[str] = "CDRR"
    UNIT: ClassVar[str] = "bps"


class CurrentDataRateTransmit(_U64Metric):
    """Current Data Rate (Transmit), CDRT (RFC 8175 §13.15), bits per second."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.CDRT
    NAME: ClassVar[str] = "CDRT"
    UNIT: ClassVar[str] = "bps"


class Latency(_U64Metric):
    """Latency (RFC 8175 §13.16), microseconds."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.LATENCY
    NAME: ClassVar[str] = "Latency"
    UNIT: ClassVar[str] = "us"


class Resources(_Percent):
    """Resources, RES (RFC 8175 §13.17), percent 0-100."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.RESOURCES
    NAME: ClassVar[str] = "Resources"


class RelativeLinkQualityReceive(_Percent):
    """Relative Link Quality (Receive), RLQR (RFC 8175 §13.18), 0-100."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.RLQR
    NAME: ClassVar[str] = "RLQR"


class RelativeLinkQualityTransmit(_Percent):
    """Relative Link Quality (Transmit), RLQT (RFC 8175 §13.19), 0-100."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.RLQT
    NAME: ClassVar[str] = "RLQT"


class Mtu(MetricItem):
    """Maximum Transmission Unit (RFC 8175 §13.20), octets."""

    __slots__ = ()
    TYPE: ClassVar[int] = ItemType.MTU
    NAME: ClassVar[str] = "MTU"
    BITS: ClassVar[int] = 16
    MAX: ClassVar[int] = 0xFFFF
    UNIT: ClassVar[str] = "octets"
    FAST: ClassVar[int] = FAST_U16

    def encode_value(self) -> bytes:
        return _U16.pack(self.value)

    def encode(self) -> bytes:
        return _ITEM_U16.pack(self.TYPE, 2, self.value)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 2:
            raise ItemFormatError(f"MTU: length {len(data)}, must be 2")
        o = _new(cls)
        _set(o, "value", (data[0] << 8) | data[1])
        return o


@dataclass(frozen=True, slots=True)
class UnknownItem:
    """A data item whose type code no registered codec knows.

    Kept (not dropped) so the session can decide: RFC 8175 §12.1 makes it an
    error (130), except in a Session Initialization that announces
    extensions the receiver does not know (§12.5), where it may be ignored.
    """

    type_code: int
    value: bytes

    def encode(self) -> bytes:
        """The TLV exactly as received."""
        return _HDR.pack(self.type_code, len(self.value)) + self.value


#: The 20 core data item classes, in type-code order.
CORE_ITEMS: tuple[type[DataItem], ...] = (
    Status,
    Ipv4ConnectionPoint,
    Ipv6ConnectionPoint,
    PeerType,
    HeartbeatInterval,
    ExtensionsSupported,
    MacAddress,
    Ipv4Address,
    Ipv6Address,
    Ipv4AttachedSubnet,
    Ipv6AttachedSubnet,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    Latency,
    Resources,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Mtu,
)

#: Metric items every Session Initialization Response must declare (§12.6).
MANDATORY_METRICS: tuple[type[MetricItem], ...] = (
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    Latency,
)
#: Metric items a modem declares only if it will use them (§12.6).
OPTIONAL_METRICS: tuple[type[MetricItem], ...] = (
    Resources,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Mtu,
)
CORE_METRICS: tuple[type[MetricItem], ...] = MANDATORY_METRICS + OPTIONAL_METRICS
