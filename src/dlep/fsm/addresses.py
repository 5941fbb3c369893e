"""Layer-3 information of a session: address sets and who owns each address.

RFC 8175 §13.8.1 (and the same words in §13.9.1-§13.11.1): an address or
attached subnet belongs to one party of a session at a time — one
destination, the peer itself, or us — an add for something already present
and a drop for something absent are "inconsistent", and addresses that make
no sense (not forwardable) are refused. :class:`AddressIndex` is the one
place these rules live; the engine and the modem daemon's own table use it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Hashable, Iterable
from typing import Final, TypeAlias

from ..wire import (
    DataItem,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
    Ipv6AttachedSubnet,
)
from .errors import InvalidArgumentError

__all__ = [
    "PEER",
    "SELF",
    "AddressIndex",
    "AddressSet",
    "L3Item",
    "L3Key",
    "coalesce",
    "is_forwardable",
    "key_of",
    "parse_l3",
]

L3Item: TypeAlias = Ipv4Address | Ipv6Address | Ipv4AttachedSubnet | Ipv6AttachedSubnet
L3Key: TypeAlias = (
    ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network
)
L3_ITEM_TYPES: Final = frozenset(
    c.TYPE for c in (Ipv4Address, Ipv6Address, Ipv4AttachedSubnet, Ipv6AttachedSubnet)
)

#: Owner of the peer's own addresses (Session Initialization / Session Update).
PEER: Final = "the peer"
#: Owner of our own addresses.
SELF: Final = "us"


class AddressSet:
    """The addresses and attached subnets of one party, by family.

    Immutable (frozensets): :meth:`AddressIndex.apply` returns a new set,
    so records share :data:`EMPTY` until their first address arrives and a
    snapshot takes the sets as they are, without copying.
    """

    __slots__ = ("v4", "v4net", "v6", "v6net")

    def __init__(
        self,
        v4: Iterable[ipaddress.IPv4Address] = (),
        v6: Iterable[ipaddress.IPv6Address] = (),
        v4net: Iterable[ipaddress.IPv4Network] = (),
        v6net: Iterable[ipaddress.IPv6Network] = (),
    ) -> None:
        self.v4: frozenset[ipaddress.IPv4Address] = frozenset(v4)
        self.v6: frozenset[ipaddress.IPv6Address] = frozenset(v6)
        self.v4net: frozenset[ipaddress.IPv4Network] = frozenset(v4net)
        self.v6net: frozenset[ipaddress.IPv6Network] = frozenset(v6net)

    def all(self) -> set[L3Key]:
        """Every address and subnet, mixed."""
        out: set[L3Key] = set()
        out.update(self.v4, self.v6, self.v4net, self.v6net)
        return out

    def items(self, add: bool = True) -> list[L3Item]:
        """Data items naming everything in the set (sorted, for stable output)."""
        out: list[L3Item] = [Ipv4Address(a, add) for a in sorted(self.v4)]
        out += [Ipv6Address(a, add) for a in sorted(self.v6)]
        out += [Ipv4AttachedSubnet(n.network_address, n.prefixlen, add) for n in sorted(self.v4net)]
        out += [Ipv6AttachedSubnet(n.network_address, n.prefixlen, add) for n in sorted(self.v6net)]
        return out

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6 or self.v4net or self.v6net)


#: The shared empty set (never mutated: see :class:`AddressSet`).
EMPTY: Final = AddressSet()


def key_of(item: L3Item) -> tuple[L3Key, str]:
    """The address or network an item names, and the family bucket it goes in."""
    if isinstance(item, Ipv4Address):
        return item.address, "v4"
    if isinstance(item, Ipv6Address):
        return item.address, "v6"
    if isinstance(item, Ipv4AttachedSubnet):
        return item.network, "v4net"
    return item.network, "v6net"


def is_forwardable(key: L3Key) -> bool:
    """False for what RFC 8175 §13.8.1 calls an address that "makes no sense".

    Only unspecified, loopback and multicast are refused: link-local
    destination addresses (fe80::/10) are common on MANET radios.
    """
    if isinstance(key, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return not (key.network_address.is_multicast or key.network_address.is_loopback)
    return not (key.is_unspecified or key.is_loopback or key.is_multicast)


def _owner_name(owner: Hashable) -> str:
    return owner if isinstance(owner, str) else f"destination {owner}"


class AddressIndex:
    """Which party of a session owns each address and subnet."""

    __slots__ = ("_owner",)

    def __init__(self) -> None:
        self._owner: dict[L3Key, Hashable] = {}

    def owner_of(self, key: L3Key) -> Hashable | None:
        """The party that holds ``key``, or None."""
        return self._owner.get(key)

    def apply(
        self, owner: Hashable, current: AddressSet, items: Iterable[L3Item]
    ) -> tuple[AddressSet, list[str]]:
        """``current`` with the add/drop ``items`` applied, and what was wrong.

        Inconsistent items are skipped and described; nothing is committed:
        the caller decides whether the result stands (a Destination Update
        applies the rest, a Destination Up is refused as a whole) and then
        calls :meth:`commit`.
        """
        items = tuple(items)
        if not items:
            return current, []
        buckets: dict[str, set[L3Key]] = {
            "v4": set(current.v4),
            "v6": set(current.v6),
            "v4net": set(current.v4net),
            "v6net": set(current.v6net),
        }
        problems: list[str] = []
        owner_of = self._owner
        for item in items:
            key, kind = key_of(item)
            bucket = buckets[kind]
            if item.add:
                if key in bucket:
                    problems.append(f"{key} added twice")
                    continue
                other = owner_of.get(key)
                if other is not None and other != owner:
                    problems.append(f"{key} already belongs to {_owner_name(other)}")
                    continue
                if not is_forwardable(key):
                    problems.append(f"{key} is not a forwardable address")
                    continue
                bucket.add(key)
            else:
                if key not in bucket:
                    problems.append(f"{key} dropped but never added")
                    continue
                bucket.discard(key)
        new = AddressSet(
            buckets["v4"],  # type: ignore[arg-type]
            buckets["v6"],  # type: ignore[arg-type]
            buckets["v4net"],  # type: ignore[arg-type]
            buckets["v6net"],  # type: ignore[arg-type]
        )
        return new, problems

    def commit(self, owner: Hashable, old: AddressSet, new: AddressSet) -> None:
        """Record that ``owner`` now holds ``new`` instead of ``old``."""
        if old is new:
            return
        before, after = old.all(), new.all()
        for key in before - after:
            if self._owner.get(key) == owner:
                del self._owner[key]
        for key in after - before:
            self._owner[key] = owner

    def release(self, owner: Hashable, current: AddressSet) -> None:
        """``owner`` left the session: everything it held is free again."""
        for key in current.all():
            if self._owner.get(key) == owner:
                del self._owner[key]

    def clear(self) -> None:
        """Forget every owner (Session Reset)."""
        self._owner.clear()


def coalesce(pending: list[L3Item], new: Iterable[L3Item]) -> list[L3Item]:
    """Queued address changes plus ``new``, by net effect.

    :meth:`AddressIndex.apply` has checked every change against the state
    before it, so the changes of one address alternate add/drop: a new one
    cancels the queued opposite one (add then drop: the peer never hears of
    it; drop then add: it keeps it). Plain concatenation would repeat items,
    which the codec refuses.
    """
    out = list(pending)
    for item in new:
        key = key_of(item)
        for i, old in enumerate(out):
            if key_of(old) == key:
                del out[i]
                break
        else:
            out.append(item)
    return out


def parse_l3(values: Iterable[L3Item | str], add: bool, field: str = "addresses") -> list[L3Item]:
    """Items from items or text ("10.0.0.1", "2001:db8::1", "10.1.0.0/16").

    Items keep their value and get the ``add`` flag asked for. Bad text is
    an :class:`InvalidArgumentError` naming ``field`` and the index.
    """
    out: list[L3Item] = []
    for i, v in enumerate(values):
        if isinstance(v, Ipv4Address | Ipv6Address | Ipv4AttachedSubnet | Ipv6AttachedSubnet):
            out.append(v if v.add == add else dataclasses.replace(v, add=add))
            continue
        text = str(v).strip()
        try:
            if "/" in text:
                net = ipaddress.ip_network(text, strict=False)
                if isinstance(net, ipaddress.IPv4Network):
                    out.append(Ipv4AttachedSubnet(net.network_address, net.prefixlen, add))
                else:
                    out.append(Ipv6AttachedSubnet(net.network_address, net.prefixlen, add))
            else:
                addr = ipaddress.ip_address(text)
                if isinstance(addr, ipaddress.IPv4Address):
                    out.append(Ipv4Address(addr, add))
                else:
                    out.append(Ipv6Address(addr, add))
        except ValueError as exc:
            raise InvalidArgumentError(f"{field}[{i}]: {text!r}: {exc}", field) from None
    return out


def split_l3(items: Iterable[DataItem]) -> list[L3Item]:
    """The layer-3 items among ``items``."""
    return [i for i in items if i.TYPE in L3_ITEM_TYPES]  # type: ignore[misc]
