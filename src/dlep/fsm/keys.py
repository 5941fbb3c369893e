"""What names a destination, and the snapshot of one (shared by the
destination table and the events)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from typing import Final, NamedTuple

from ..wire import DataItem, MacAddress, format_mac
from .metrics import Metrics

__all__ = ["DestKey", "DestinationInfo", "new_destination_info"]


class DestKey(NamedTuple):
    """What names a destination in a session: its MAC, plus identity items.

    The identity items are those an extension declares (RFC 8703's Link
    Identifier is the only published one): with them, several destinations
    share one MAC. A plain destination has ``ident == ()``.
    """

    mac: bytes
    ident: tuple[DataItem, ...] = ()

    @property
    def mac_str(self) -> str:
        """The MAC in colon notation."""
        return format_mac(self.mac)

    def ids(self) -> list[DataItem]:
        """The items that name this destination in a message."""
        return [MacAddress(self.mac), *self.ident]

    def __str__(self) -> str:
        # "#<hex>" per identity item: short, unambiguous, one shell word.
        return format_mac(self.mac) + "".join("#" + i.encode_value().hex() for i in self.ident)


@dataclass(frozen=True, slots=True)
class DestinationInfo:
    """What the session knows about one destination (a snapshot)."""

    mac: bytes
    metrics: Metrics = field(default_factory=Metrics)
    ipv4: frozenset[ipaddress.IPv4Address] = frozenset()
    ipv6: frozenset[ipaddress.IPv6Address] = frozenset()
    ipv4_subnets: frozenset[ipaddress.IPv4Network] = frozenset()
    ipv6_subnets: frozenset[ipaddress.IPv6Network] = frozenset()
    #: Non-core items last received (router) or sent (modem), by item type.
    extra: tuple[DataItem, ...] = ()
    #: Identity items that name the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()
    # The times are not compared: two snapshots with the same content are
    # equal whenever they were taken.
    #: When it came up in this session: the ``now`` of the engine call that
    #: brought it up (the engine's clock; the daemon gives Unix time). None
    #: if unknown (a table run without a clock).
    up_since: float | None = field(default=None, compare=False)
    #: When its last Destination Update arrived (router) or was sent
    #: (modem), on the same clock; None if none since it came up.
    last_update: float | None = field(default=None, compare=False)
    #: Destination Updates received (router) or sent (modem) about it
    #: since it came up (only a modem sends them, RFC 8175 §12.17).
    updates: int = field(default=0, compare=False)

    @property
    def key(self) -> DestKey:
        """The destination's key in its session."""
        return DestKey(self.mac, self.ident)

    @property
    def mac_str(self) -> str:
        """MAC in colon notation."""
        return format_mac(self.mac)

    def on_clock(self, offset: float) -> DestinationInfo:
        """The same snapshot with its times moved by ``offset`` seconds
        (the daemon's: from the engine's clock to Unix time)."""
        u, t = self.up_since, self.last_update
        return new_destination_info(
            self.mac,
            self.metrics,
            self.ipv4,
            self.ipv6,
            self.ipv4_subnets,
            self.ipv6_subnets,
            self.extra,
            self.ident,
            None if u is None else u + offset,
            None if t is None else t + offset,
            self.updates,
        )


# A router builds a snapshot per Destination Update it receives (for the
# event): the frozen dataclass's __init__ sets each field through
# object.__setattr__ looked up anew, half the cost of the update's handling
# beyond decoding. new_destination_info sets the slots directly instead.
_FIELDS: Final = tuple(f.name for f in fields(DestinationInfo))
assert _FIELDS == (
    "mac",
    "metrics",
    "ipv4",
    "ipv6",
    "ipv4_subnets",
    "ipv6_subnets",
    "extra",
    "ident",
    "up_since",
    "last_update",
    "updates",
), "new_destination_info sets DestinationInfo's fields by position"
_S0, _S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8, _S9, _S10 = (
    DestinationInfo.__dict__[n].__set__ for n in _FIELDS
)
_new: Final = object.__new__


def new_destination_info(
    mac: bytes,
    metrics: Metrics,
    ipv4: frozenset[ipaddress.IPv4Address],
    ipv6: frozenset[ipaddress.IPv6Address],
    ipv4_subnets: frozenset[ipaddress.IPv4Network],
    ipv6_subnets: frozenset[ipaddress.IPv6Network],
    extra: tuple[DataItem, ...],
    ident: tuple[DataItem, ...],
    up_since: float | None,
    last_update: float | None,
    updates: int = 0,
) -> DestinationInfo:
    """``DestinationInfo(...)`` with every field given, twice as fast (the
    engine's per-update snapshot)."""
    info = _new(DestinationInfo)
    _S0(info, mac)
    _S1(info, metrics)
    _S2(info, ipv4)
    _S3(info, ipv6)
    _S4(info, ipv4_subnets)
    _S5(info, ipv6_subnets)
    _S6(info, extra)
    _S7(info, ident)
    _S8(info, up_since)
    _S9(info, last_update)
    _S10(info, updates)
    return info
