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
