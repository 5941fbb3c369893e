"""Pages of a destination listing (``ListDestinations``), cheap at 100k.

A listing is ordered by (session id, destination) and a page token names
the last destination a page gave, not an offset: a destination that comes
or goes between two pages does not shift the others, so following the
tokens gives every destination that stayed throughout exactly once.

The daemons hand out the keys of their destinations without a snapshot
each (:meth:`~dlep.daemon.DaemonBase.destination_keys`); a page orders
only what it needs (``heapq.nsmallest`` over the keys past the token, in
C) and snapshots and converts only the destinations it gives. A page of
1,000 out of 100,000 costs a few milliseconds of ordering (figures in the
issue-14 notes); the conversion of what is given dominates.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ..fsm import DestKey
from ..wire import MacAddress, format_mac

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_BYTES",
    "MAX_PAGE_SIZE",
    "KeyFilter",
    "ListingCache",
    "Page",
    "PageTokenError",
    "decode_token",
    "encode_token",
    "page_size",
    "parse_key_filter",
    "select_page",
    "sort_key",
]

#: Destinations per page when the request says 0.
DEFAULT_PAGE_SIZE: Final = 1000
#: The most destinations one page gives, whatever the request asks.
MAX_PAGE_SIZE: Final = 10_000
#: A page ends before its destinations pass this many octets, so a response
#: stays below gRPC's default 4 MiB message limit even for destinations
#: with many addresses (a page gives at least one destination).
MAX_PAGE_BYTES: Final = 3 * 1024 * 1024

#: A destination's key as the daemons hand it out: the MAC alone (bytes)
#: when it has no identity items, else its DestKey.
Slot = bytes | DestKey

_TOKEN_VERSION: Final = "1"


class PageTokenError(ValueError):
    """A page token this server did not make."""


def page_size(requested: int) -> int:
    """The page size for a request's ``page_size`` (0: the default)."""
    if requested <= 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def sort_key(slot: Slot) -> bytes:
    """Where a destination sits in a session's order: its MAC, then (for a
    destination with identity items) each item's type, length and value.
    Within a session every MAC has one length (RFC 8175 §13.7), so this
    orders by MAC as the colon notation does, and a destination with
    identity items right after the one with the bare MAC."""
    if type(slot) is bytes:
        return slot
    assert isinstance(slot, DestKey)
    if not slot.ident:
        return slot.mac
    parts = [slot.mac]
    for item in slot.ident:
        value = item.encode_value()
        parts.append(item.TYPE.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value)
    return b"".join(parts)


def encode_token(session_id: str, key: bytes) -> str:
    """The opaque token that names the position after (``session_id``, ``key``)."""
    raw = session_id.encode() + b"\0" + key
    return _TOKEN_VERSION + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, bytes]:
    """(session id, sort key) of a token of :func:`encode_token`."""
    if not token.startswith(_TOKEN_VERSION):
        raise PageTokenError("not a page token of this server")
    body = token[len(_TOKEN_VERSION) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        sid, sep, key = raw.partition(b"\0")
        if not sep:
            raise ValueError("no separator")
        return sid.decode(), key
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise PageTokenError("not a page token of this server") from None


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """Which destinations a listing keeps: those with ``mac``, and with the
    exact key ``key`` (text of :class:`DestKey`) if given."""

    mac: bytes
    key: str | None = None

    def keeps(self, slot: Slot) -> bool:
        """Whether the destination ``slot`` passes."""
        if type(slot) is bytes:
            return slot == self.mac and self.key is None
        assert isinstance(slot, DestKey)
        if slot.mac != self.mac:
            return False
        return self.key is None or str(slot) == self.key


def parse_key_filter(text: str) -> KeyFilter:
    """The filter of a request's ``mac``: a MAC (every destination with
    it), or a key ``MAC#hex...`` (that destination only). ValueError with
    the reason if it is neither."""
    text = text.strip()
    mac_text, sep, rest = text.partition("#")
    mac = MacAddress.parse(mac_text).address
    if not sep:
        return KeyFilter(mac)
    parts = rest.split("#")
    for part in parts:
        if not part:
            raise ValueError("empty identity item after '#'")
        try:
            bytes.fromhex(part)
        except ValueError:
            raise ValueError(f"identity item {part!r} is not hex") from None
    return KeyFilter(mac, format_mac(mac) + "#" + "#".join(p.lower() for p in parts))


@dataclass(slots=True)
class Page:
    """What :func:`select_page` chose: ``entries`` in order, how many
    destinations are past the token (``remaining``, the page included) and
    how many match the filters at all (``total``)."""

    entries: list[tuple[str, bytes, Slot]]
    remaining: int
    total: int


def select_page(
    groups: Iterable[tuple[str, Sequence[Slot]]],
    limit: int,
    after: tuple[str, bytes] | None = None,
    keep: Callable[[Slot], bool] | None = None,
) -> Page:
    """The first ``limit`` destinations past ``after`` in (session id, sort
    key) order, from ``groups`` of (session id, keys); ``keep`` filters.

    Cost: one pass over the keys, plus ``heapq.nsmallest`` over those of the
    sessions the page reaches; nothing is snapshotted here."""
    ordered = sorted(groups, key=lambda g: g[0])
    entries: list[tuple[str, bytes, Slot]] = []
    remaining = total = 0
    for sid, slots in ordered:
        chosen = [s for s in slots if keep(s)] if keep is not None else slots
        total += len(chosen)
        if after is not None and sid < after[0]:
            continue
        # Comprehensions, not a loop: this runs over every key of the table.
        keys = [s if s.__class__ is bytes else sort_key(s) for s in chosen]
        by_key = {sort_key(s): s for s in chosen if s.__class__ is not bytes}
        if after is not None and sid == after[0]:
            last = after[1]
            keys = [k for k in keys if k > last]
        remaining += len(keys)
        need = limit - len(entries)
        if need > 0 and keys:
            # A large share: timsort in C (fast on a table kept in insertion
            # order, often nearly sorted); a small one: a heap of ``need``.
            first = sorted(keys)[:need] if need * 8 >= len(keys) else heapq.nsmallest(need, keys)
            entries += [(sid, k, by_key.get(k, k)) for k in first]
    return Page(entries, remaining, total)


#: Listings whose order is kept between pages, and for how long (seconds).
LISTINGS_KEPT: Final = 4
LISTING_TTL: Final = 30.0

Entry = tuple[str, bytes, Slot]


class ListingCache:
    """The order of a listing in progress, kept between its pages.

    The first page of a listing costs a pass over the keys and a partial
    order (:func:`select_page`); so would every following page, a pass over
    the whole table each (about 15 ms at 100,000 destinations, on the loop
    that runs the sessions, 100 times for a listing 1000 a page). Instead,
    the second page orders everything past its token once and keeps the
    rest here under the token it hands out; each later page takes its share
    from the front, so a whole listing costs one sort plus its pages.

    What the kept order changes: a destination that comes up after the
    second page was served is not in that listing (one that went down is
    skipped when its page is built). Every destination present throughout
    is still listed exactly once. At most :data:`LISTINGS_KEPT` listings
    are kept, each for :data:`LISTING_TTL` seconds after its last page; a
    token whose listing is no longer kept falls back to a fresh order.
    """

    def __init__(self, keep: int = LISTINGS_KEPT, ttl: float = LISTING_TTL) -> None:
        self.keep = keep
        self.ttl = ttl
        # (token, filters) -> (entries, next index, total, expiry)
        self._kept: dict[tuple[str, str], tuple[list[Entry], int, int, float]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def take(self, token: str, filters: str, limit: int, now: float) -> Page | None:
        """The page after ``token`` from a kept order (None: not kept).
        The order is forgotten under ``token``; :meth:`keep_rest` keeps it
        under the token of the page given."""
        self._expire(now)
        got = self._kept.pop((token, filters), None)
        if got is None:
            return None
        entries, at, total, _ = got
        return _CachedPage(entries[at : at + limit], len(entries) - at, total, entries, at)

    def keep_rest(self, page: Page, used: int, token: str, filters: str, now: float) -> None:
        """After a page of which ``used`` entries were given and whose next
        page is ``token``: keep the rest of its order, if it has one."""
        if not token or not isinstance(page, _CachedPage):
            return
        self._expire(now)
        while len(self._kept) >= self.keep:
            del self._kept[next(iter(self._kept))]  # the oldest
        self._kept[(token, filters)] = (page.order, page.start + used, page.total, now + self.ttl)

    def _expire(self, now: float) -> None:
        for k in [k for k, v in self._kept.items() if v[3] <= now]:
            del self._kept[k]


@dataclass(slots=True)
class _CachedPage(Page):
    """A page cut from a kept order: the order and where the page starts."""

    order: list[Entry]
    start: int


def ordered_page(
    groups: Iterable[tuple[str, Sequence[Slot]]],
    limit: int,
    after: tuple[str, bytes] | None = None,
    keep: Callable[[Slot], bool] | None = None,
) -> Page:
    """Like :func:`select_page`, but orders everything past ``after`` (one
    sort) and returns a page that :class:`ListingCache` can keep the rest of."""
    whole = select_page(groups, 1 << 62, after, keep)
    entries = whole.entries
    return _CachedPage(entries[:limit], len(entries), whole.total, entries, 0)
