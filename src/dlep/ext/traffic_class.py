"""RFC 9892 Traffic Classification data item (type 29) and its sub-data items.

The item is shared: it has no Extension Type Value of its own and is carried
by the extensions that require it -- RFC 9894 Diffserv Aware Credit Window
(code 6, :mod:`dlep.ext.credit_diffserv`) and RFC 9895 IEEE 802.1Q Aware
Credit Window (code 5, :mod:`dlep.ext.credit_8021q`). Those register it.

Layouts (RFC 9892 §2.1-§2.3)::

    Traffic Classification (29): TID (16) | Num SDIs (8) | Reserved (8) | SDIs...
    Sub-Data Item:               Type (16) | Length (16) | Value
    Diffserv (sub-type 1):       FID (16) | Num DSCPs (8) | DS Field (8) * n
                                 DS Field = DSCP (6) | MBZ (2)
    Ethernet (sub-type 2):       FID (16) | NumPCPs (4) | VID (12) |
                                 Priority (4) * n | Pad (4) if n is odd
                                 Priority = PCP (3) | MBZ (1)

Decoding is strict: lengths must be exact, Num SDIs must match the sub-data
items present, FID 0xFFFF (reserved, "MUST NOT be used"), VID 0xFFF
(reserved), more than 8 PCPs and sub-data item types 0 and 65535 (reserved)
are refused, and so is a DS Field value (or PCP value for the same VID)
listed twice in one Traffic Classification item (§2.2.1, §2.3.1).
Reserved/MBZ/Pad bits are sent as zero and ignored on receipt.

Sub-data item types this module does not know (3-65534) are kept as
:class:`UnknownSubDataItem`; whether they are acceptable depends on what the
session negotiated, which the extension checks (an unknown type is an error,
130, as for any data item: §2.1.1).

:class:`Classifier` is the router's lookup: which FID a packet to a
destination's TID belongs to, with RFC 9892's precedence rules (Ethernet over
Diffserv; explicit VID over VID 0 "ignore"; explicit values over wildcards).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Final, Self, TypeAlias

from ..wire import DataItem, ItemFormatError

__all__ = [
    "DIFFSERV_SUB_TYPE",
    "ETHERNET_SUB_TYPE",
    "FID_RESERVED",
    "SUB_DATA_ITEM_TYPES",
    "TRAFFIC_CLASSIFICATION",
    "VID_IGNORE",
    "VID_RESERVED",
    "AnySubDataItem",
    "Classifier",
    "DiffservClassification",
    "EthernetClassification",
    "SubDataItem",
    "TrafficClassification",
    "UnknownSubDataItem",
]

#: Data item type code (RFC 9892 §5.1).
TRAFFIC_CLASSIFICATION: Final = 29
#: Traffic Classification Sub-Data Item type codes (RFC 9892 §5.2).
DIFFSERV_SUB_TYPE: Final = 1
ETHERNET_SUB_TYPE: Final = 2
#: FID value reserved by RFC 9892 (it means "all FIDs" in a Credit Window Request).
FID_RESERVED: Final = 0xFFFF
#: VID 0: the VLAN is ignored in classification (RFC 9892 §2.3).
VID_IGNORE: Final = 0
#: VID 0xFFF is reserved (RFC 9892 §2.3).
VID_RESERVED: Final = 0xFFF
MAX_PCPS: Final = 8
MAX_DSCP: Final = 63
MAX_PCP: Final = 7

_HDR: Final = struct.Struct("!HH")
_TC_HEAD: Final = struct.Struct("!HBB")
_SDI_RESERVED: Final = (0, 0xFFFF)


def _uint(name: str, value: object, bits: int) -> int:
    """``value`` if it is an int in 0..2**bits-1, else ItemFormatError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ItemFormatError(f"{name}: expected an integer, got {value!r}")
    if not 0 <= value < (1 << bits):
        raise ItemFormatError(f"{name}: {value} out of range 0..{(1 << bits) - 1}")
    return value


def _int_tuple(name: str, values: object, bits: int, maximum: int) -> tuple[int, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ItemFormatError(f"{name}: expected a sequence of integers, got {values!r}")
    out = tuple(values)
    for v in out:
        _uint(name, v, bits)
        if v > maximum:
            raise ItemFormatError(f"{name}: {v} out of range 0..{maximum}")
    return out


def _fid(name: str, value: object) -> int:
    fid = _uint(name, value, 16)
    if fid == FID_RESERVED:
        raise ItemFormatError(f"{name}: 0xFFFF is reserved and must not be used (RFC 9892)")
    return fid


class SubDataItem:
    """Base class of Traffic Classification Sub-Data Items (RFC 9892 §2.1.1).

    Subclasses are frozen dataclasses with ``SUB_TYPE``, ``NAME``,
    :meth:`encode_value` and :meth:`decode_value` like a data item.
    """

    __slots__ = ()
    SUB_TYPE: ClassVar[int]
    NAME: ClassVar[str]
    fid: int

    def encode_value(self) -> bytes:
        """The Value field (without sub-type and length)."""
        raise NotImplementedError

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        """Build from a Value field; ItemFormatError if malformed."""
        raise NotImplementedError

    def encode(self) -> bytes:
        """The whole sub-data item: type, length, value."""
        value = self.encode_value()
        return _HDR.pack(self.SUB_TYPE, len(value)) + value


@dataclass(frozen=True, slots=True)
class DiffservClassification(SubDataItem):
    """Diffserv Traffic Classification Sub-Data Item (RFC 9892 §2.2).

    The DSCPs in ``dscps`` (0-63) form flow ``fid``; no DSCPs is the wildcard
    (any DSCP not explicitly mapped to a FID of the same TID).
    """

    SUB_TYPE: ClassVar[int] = DIFFSERV_SUB_TYPE
    NAME: ClassVar[str] = "DiffservClassification"
    fid: int
    dscps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _fid(f"{self.NAME}.fid", self.fid)
        dscps = _int_tuple(f"{self.NAME}.dscps", self.dscps, 8, MAX_DSCP)
        if len(set(dscps)) != len(dscps):
            raise ItemFormatError(f"{self.NAME}.dscps: a DSCP is listed twice")
        object.__setattr__(self, "dscps", dscps)

    @property
    def wildcard(self) -> bool:
        """True if this matches any DSCP not mapped elsewhere (Num DSCPs 0)."""
        return not self.dscps

    def encode_value(self) -> bytes:
        return struct.pack("!HB", self.fid, len(self.dscps)) + bytes(d << 2 for d in self.dscps)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) < 3:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be at least 3")
        n = data[2]
        if len(data) != 3 + n:
            raise ItemFormatError(
                f"{cls.NAME}: length {len(data)}, must be 3 + Num DSCPs ({n}) = {3 + n}"
            )
        fid = (data[0] << 8) | data[1]
        # MBZ bits ignored on receipt; a repeated DSCP is an error (§2.2.1).
        return cls(fid, tuple(b >> 2 for b in data[3:]))


@dataclass(frozen=True, slots=True)
class EthernetClassification(SubDataItem):
    """Ethernet Traffic Classification Sub-Data Item (RFC 9892 §2.3).

    Frames on VLAN ``vid`` (0: any VLAN without an explicit mapping) with a
    PCP in ``pcps`` (0-7, at most 8) form flow ``fid``; no PCPs is the
    wildcard (any PCP not explicitly mapped).
    """

    SUB_TYPE: ClassVar[int] = ETHERNET_SUB_TYPE
    NAME: ClassVar[str] = "EthernetClassification"
    fid: int
    vid: int = VID_IGNORE
    pcps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _fid(f"{self.NAME}.fid", self.fid)
        _uint(f"{self.NAME}.vid", self.vid, 12)
        if self.vid == VID_RESERVED:
            raise ItemFormatError(f"{self.NAME}.vid: 0xFFF is reserved (RFC 9892 §2.3)")
        pcps = _int_tuple(f"{self.NAME}.pcps", self.pcps, 8, MAX_PCP)
        if len(pcps) > MAX_PCPS:
            raise ItemFormatError(f"{self.NAME}.pcps: {len(pcps)} PCPs, at most {MAX_PCPS}")
        if len(set(pcps)) != len(pcps):
            raise ItemFormatError(f"{self.NAME}.pcps: a PCP is listed twice")
        object.__setattr__(self, "pcps", pcps)

    @property
    def wildcard(self) -> bool:
        """True if this matches any PCP not mapped elsewhere (NumPCPs 0)."""
        return not self.pcps

    def encode_value(self) -> bytes:
        n = len(self.pcps)
        head = struct.pack("!HBB", self.fid, (n << 4) | (self.vid >> 8), self.vid & 0xFF)
        nibbles = [p << 1 for p in self.pcps]  # PCP (3) | MBZ (1)
        if n % 2:
            nibbles.append(0)  # Pad
        return head + bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) < 4:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be at least 4")
        n = data[2] >> 4
        if n > MAX_PCPS:
            raise ItemFormatError(f"{cls.NAME}: NumPCPs {n} exceeds {MAX_PCPS}")
        want = 4 + (n + 1) // 2
        if len(data) != want:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be {want} for NumPCPs {n}")
        fid = (data[0] << 8) | data[1]
        vid = ((data[2] & 0x0F) << 8) | data[3]
        pcps = []
        for i in range(n):
            octet = data[4 + i // 2]
            nibble = octet >> 4 if i % 2 == 0 else octet & 0x0F
            pcps.append(nibble >> 1)  # MBZ bit and Pad ignored on receipt
        return cls(fid, vid, tuple(pcps))


@dataclass(frozen=True, slots=True)
class UnknownSubDataItem:
    """A sub-data item of a type this module does not define (kept as received)."""

    sub_type: int
    value: bytes = b""

    def __post_init__(self) -> None:
        _uint("UnknownSubDataItem.sub_type", self.sub_type, 16)
        if self.sub_type in _SDI_RESERVED:
            raise ItemFormatError(f"sub-data item type {self.sub_type} is reserved (RFC 9892)")
        if not isinstance(self.value, bytes):
            raise ItemFormatError(f"UnknownSubDataItem.value: expected bytes, got {self.value!r}")
        if len(self.value) > 0xFFFF:
            raise ItemFormatError("UnknownSubDataItem.value: longer than 65535 octets")

    @property
    def fid(self) -> None:
        """Unknown layout: no FID can be read."""
        return None

    def encode(self) -> bytes:
        """The sub-data item exactly as received."""
        return _HDR.pack(self.sub_type, len(self.value)) + self.value


AnySubDataItem: TypeAlias = DiffservClassification | EthernetClassification | UnknownSubDataItem

#: Sub-data item codecs by type code (RFC 9892 §5.2 registry, initial contents).
SUB_DATA_ITEM_TYPES: Final[dict[int, type[DiffservClassification | EthernetClassification]]] = {
    DIFFSERV_SUB_TYPE: DiffservClassification,
    ETHERNET_SUB_TYPE: EthernetClassification,
}


def _check_unique(sub_items: tuple[AnySubDataItem, ...]) -> None:
    """§2.2.1 / §2.3.1: each DS Field value (PCP value, per VLAN) once per item.

    A wildcard counts as a value too: two Diffserv wildcards, or two
    Ethernet wildcards for the same VID, would make the match ambiguous.
    """
    dscps: set[int | None] = set()
    pcps: set[tuple[int, int | None]] = set()
    for sub in sub_items:
        if isinstance(sub, DiffservClassification):
            for d in sub.dscps or (None,):
                if d in dscps:
                    what = "wildcard (0 DSCPs)" if d is None else f"DSCP {d}"
                    raise ItemFormatError(
                        f"TrafficClassification: {what} listed more than once (RFC 9892 §2.2.1)"
                    )
                dscps.add(d)
        elif isinstance(sub, EthernetClassification):
            for p in sub.pcps or (None,):
                key = (sub.vid, p)
                if key in pcps:
                    what = "wildcard (0 PCPs)" if p is None else f"PCP {p}"
                    raise ItemFormatError(
                        f"TrafficClassification: {what} for VID {sub.vid} listed more than "
                        "once (RFC 9892 §2.3.1)"
                    )
                pcps.add(key)


@dataclass(frozen=True, slots=True)
class TrafficClassification(DataItem):
    """Traffic Classification (RFC 9892 §2.1): the flows of traffic class ``tid``.

    ``sub_items`` are the flows (at most 255), each naming its FID. Sent by a
    modem in Session Initialization Response and Session Update.
    """

    TYPE: ClassVar[int] = TRAFFIC_CLASSIFICATION
    NAME: ClassVar[str] = "TrafficClassification"
    tid: int
    sub_items: tuple[AnySubDataItem, ...] = ()

    def __post_init__(self) -> None:
        _uint(f"{self.NAME}.tid", self.tid, 16)
        subs = self.sub_items
        if isinstance(subs, str | bytes) or not isinstance(subs, Iterable):
            raise ItemFormatError(f"{self.NAME}.sub_items: expected a sequence, got {subs!r}")
        subs = tuple(subs)
        for s in subs:
            if not isinstance(s, SubDataItem | UnknownSubDataItem):
                raise ItemFormatError(f"{self.NAME}.sub_items: {s!r} is not a sub-data item")
        if len(subs) > 0xFF:
            raise ItemFormatError(f"{self.NAME}.sub_items: {len(subs)} exceed Num SDIs max 255")
        _check_unique(subs)
        object.__setattr__(self, "sub_items", subs)

    @property
    def fids(self) -> frozenset[int]:
        """The FIDs this traffic class defines."""
        return frozenset(s.fid for s in self.sub_items if s.fid is not None)

    @property
    def sub_types(self) -> frozenset[int]:
        """The sub-data item type codes present."""
        return frozenset(
            s.sub_type if isinstance(s, UnknownSubDataItem) else s.SUB_TYPE for s in self.sub_items
        )

    @property
    def diffserv(self) -> tuple[DiffservClassification, ...]:
        """The Diffserv sub-data items."""
        return tuple(s for s in self.sub_items if isinstance(s, DiffservClassification))

    @property
    def ethernet(self) -> tuple[EthernetClassification, ...]:
        """The Ethernet sub-data items."""
        return tuple(s for s in self.sub_items if isinstance(s, EthernetClassification))

    def encode_value(self) -> bytes:
        return _TC_HEAD.pack(self.tid, len(self.sub_items), 0) + b"".join(
            s.encode() for s in self.sub_items
        )

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) < 4:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be at least 4")
        tid, count, _reserved = _TC_HEAD.unpack_from(data, 0)
        subs: list[AnySubDataItem] = []
        off, end = 4, len(data)
        while off < end:
            if end - off < 4:
                raise ItemFormatError(
                    f"{cls.NAME}: {end - off} trailing octets, too short for a sub-data item"
                )
            st, length = _HDR.unpack_from(data, off)
            vstart = off + 4
            vend = vstart + length
            if vend > end:
                raise ItemFormatError(
                    f"{cls.NAME}: sub-data item {st} length {length} runs past the item"
                )
            value = bytes(data[vstart:vend])
            if st in _SDI_RESERVED:
                raise ItemFormatError(f"{cls.NAME}: sub-data item type {st} is reserved")
            codec = SUB_DATA_ITEM_TYPES.get(st)
            subs.append(
                UnknownSubDataItem(st, value) if codec is None else codec.decode_value(value)
            )
            off = vend
        if len(subs) != count:
            raise ItemFormatError(
                f"{cls.NAME}: Num SDIs is {count} but {len(subs)} sub-data items follow"
            )
        return cls(tid, tuple(subs))


class Classifier:
    """Maps a packet to a FID under one Traffic Classification (RFC 9892).

    Precedence: an Ethernet match wins over a Diffserv match (§2.3.1). Among
    Ethernet entries: explicit VID before VID 0 ("ignore"), and within each,
    an explicit PCP before the wildcard. Among Diffserv entries: an explicit
    DSCP before the wildcard. A wildcard also matches traffic that carries
    no such field (RFC 9892: "the same traffic treatment for all traffic").
    Unknown sub-data item types match nothing.
    """

    __slots__ = ("_ds", "_eth", "classification")

    def __init__(self, classification: TrafficClassification) -> None:
        self.classification = classification
        self._ds: dict[int | None, int] = {}
        self._eth: dict[tuple[int, int | None], int] = {}
        for sub in classification.sub_items:
            if isinstance(sub, DiffservClassification):
                for d in sub.dscps or (None,):
                    self._ds[d] = sub.fid
            elif isinstance(sub, EthernetClassification):
                for p in sub.pcps or (None,):
                    self._eth[(sub.vid, p)] = sub.fid

    def match(
        self, *, dscp: int | None = None, vid: int | None = None, pcp: int | None = None
    ) -> int | None:
        """The FID for a packet, or None (no match: RFC 9893 §2 says drop it).

        ``vid``/``pcp`` describe an IEEE 802.1Q tag (None: untagged or no
        such field); ``dscp`` the IP DS field's DSCP (None: not IP).
        """
        eth = self._eth
        if eth:
            keys: list[tuple[int, int | None]] = []
            if vid is not None and vid != VID_IGNORE:
                if pcp is not None:
                    keys.append((vid, pcp))
                keys.append((vid, None))
            if pcp is not None:
                keys.append((VID_IGNORE, pcp))
            keys.append((VID_IGNORE, None))
            for k in keys:
                fid = eth.get(k)
                if fid is not None:
                    return fid
        ds = self._ds
        if ds:
            if dscp is not None:
                fid = ds.get(dscp)
                if fid is not None:
                    return fid
            return ds.get(None)
        return None
