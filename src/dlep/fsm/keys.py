"""What names a destination, and the snapshot of one (shared by the
destination table and the events)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import NamedTuple

from ..wire import DataItem, MacAddress, format_mac
from .metrics import Metrics

__all__ = ["DestKey", "DestinationInfo"]


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

    @property
    def key(self) -> DestKey:
        """The destination's key in its session."""
        return DestKey(self.mac, self.ident)

    @property
    def mac_str(self) -> str:
        """MAC in colon notation."""
        return format_mac(self.mac)
