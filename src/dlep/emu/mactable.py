"""The MAC learning table of one node (sans-I/O, time passed in).

Each entry says which node a MAC address was last seen behind:
:data:`LOCAL` for frames read from our own TAP, or a neighbour's index for
frames that arrived from it. Entries idle for ``aging`` seconds are gone,
and a full table forgets its least recently refreshed entry first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from ..wire import format_mac

__all__ = ["LOCAL", "MacEntry", "MacTable"]

#: Owner of the MACs behind our own TAP.
LOCAL: Final = -1


@dataclass(frozen=True, slots=True)
class MacEntry:
    """One row: ``owner`` is :data:`LOCAL` or a node index; ``idle`` seconds."""

    mac: str
    owner: int
    idle: float


class MacTable:
    """MAC -> owner, with aging and a size bound."""

    def __init__(self, aging: float, max_entries: int) -> None:
        self.aging = aging
        self.max_entries = max_entries
        # Ordered by last refresh, oldest first: expiry and eviction pop the front.
        self._t: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        self.learned = 0
        self.moved = 0
        self.aged_out = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._t)

    def learn(self, mac: bytes, owner: int, now: float) -> bool:
        """Record ``mac`` behind ``owner``; True if it is new or moved."""
        old = self._t.pop(mac, None)
        self._t[mac] = (owner, now)
        if old is None:
            self.learned += 1
            if len(self._t) > self.max_entries:
                self._t.popitem(last=False)
                self.evicted += 1
            return True
        if old[0] != owner:
            self.moved += 1
            return True
        return False

    def lookup(self, mac: bytes, now: float) -> int | None:
        """The owner of ``mac``, or None if unknown or aged out."""
        hit = self._t.get(mac)
        if hit is None:
            return None
        if now - hit[1] >= self.aging:
            del self._t[mac]
            self.aged_out += 1
            return None
        return hit[0]

    def expire(self, now: float) -> int:
        """Drop every entry idle for ``aging`` seconds; returns how many."""
        n = 0
        t = self._t
        while t:
            mac, (_owner, seen) = next(iter(t.items()))
            if now - seen < self.aging:
                break
            del t[mac]
            n += 1
        self.aged_out += n
        return n

    def forget_owner(self, owner: int) -> int:
        """Drop every entry behind ``owner`` (a neighbour that is gone)."""
        gone = [m for m, (o, _s) in self._t.items() if o == owner]
        for m in gone:
            del self._t[m]
        return len(gone)

    def entries(self, now: float) -> list[MacEntry]:
        """The live entries, most recently refreshed first."""
        return [
            MacEntry(format_mac(m), o, now - s)
            for m, (o, s) in reversed(self._t.items())
            if now - s < self.aging
        ]
