"""Extension values as plain data: what the API and the feeds accept.

A program that is not written in Python (a radio vendor's process, a shell
script, ``dlepctl``) sets extension values as a small mapping::

    {"hop_count": 3, "potentially_direct": true,
     "latency_range": [500, 4000], "link_id": "00:00:00:07",
     "pause": [255], "restart": [0, 1]}

:func:`parse_extension_values` checks such a mapping completely (every error
names its key, e.g. ``ext.latency_range: minimum 5000 exceeds maximum 4000``)
and returns :class:`ExtensionValues`, whose :meth:`~ExtensionValues.items`
are the data items to pass as ``extra=`` to the daemon calls. Nothing is
built half: either every value is valid or a :class:`ValueError` says which
is not.

Which extension each key needs (the modem must offer it, and the router
must have negotiated it, for the item to be sent):

=====================  ====  ==========================================
key                    code  item
=====================  ====  ==========================================
hop_count              1     RFC 8629 Hop Count (1..255, 255 = unknown)
potentially_direct     1     the Hop Count's P flag (needs hop_count)
latency_range          4     RFC 8757 Latency Range [min, max] in µs
link_id                3     RFC 8703 Link Identifier (hex octets)
pause / restart        2     RFC 8651 Pause / Restart queue indexes
=====================  ====  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from ..wire import DataItem, ItemFormatError
from .latency_range import LatencyRange
from .link_id import LinkIdentifier
from .multihop import HopCount
from .pause import ALL_QUEUES, Pause, Restart

__all__ = [
    "EXTENSION_OF_KEY",
    "ExtensionValues",
    "extension_values_from_items",
    "parse_extension_values",
    "value_key",
]

#: Key -> Extension Type Value it needs.
EXTENSION_OF_KEY: Final[dict[str, int]] = {
    "hop_count": 1,
    "potentially_direct": 1,
    "pause": 2,
    "restart": 2,
    "link_id": 3,
    "latency_range": 4,
}
_U64_MAX: Final = (1 << 64) - 1
#: Item type -> the key that sets it.
_KEY_OF_ITEM: Final[dict[int, str]] = {
    HopCount.TYPE: "hop_count",
    LatencyRange.TYPE: "latency_range",
    LinkIdentifier.TYPE: "link_id",
    Pause.TYPE: "pause",
    Restart.TYPE: "restart",
}


def value_key(item: DataItem) -> str:
    """The key that sets ``item`` (``"hop_count"``, ...); for an item of a
    third-party extension, its name."""
    return _KEY_OF_ITEM.get(item.TYPE, item.NAME)


@dataclass(frozen=True, slots=True)
class ExtensionValues:
    """Validated extension values of one destination change (None: not given)."""

    hop_count: int | None = None
    potentially_direct: bool = False
    latency_range: tuple[int, int] | None = None
    link_id: bytes | None = None
    pause: tuple[int, ...] = ()
    restart: tuple[int, ...] = ()

    def is_empty(self) -> bool:
        """True if no value is set."""
        return (
            self.hop_count is None
            and self.latency_range is None
            and self.link_id is None
            and not self.pause
            and not self.restart
        )

    def extensions_needed(self) -> dict[str, int]:
        """The keys that are set -> the Extension Type Value each needs."""
        out: dict[str, int] = {}
        if self.hop_count is not None:
            out["hop_count"] = 1
        if self.pause:
            out["pause"] = 2
        if self.restart:
            out["restart"] = 2
        if self.link_id is not None:
            out["link_id"] = 3
        if self.latency_range is not None:
            out["latency_range"] = 4
        return out

    def identity(self) -> tuple[DataItem, ...]:
        """The items that name the destination (RFC 8703 Link Identifier)."""
        return (LinkIdentifier(self.link_id),) if self.link_id is not None else ()

    def items(self) -> list[DataItem]:
        """Every item, identity first, for ``extra=`` of a daemon call."""
        out: list[DataItem] = list(self.identity())
        if self.hop_count is not None:
            out.append(HopCount(self.hop_count, self.potentially_direct))
        if self.latency_range is not None:
            out.append(LatencyRange(*self.latency_range))
        if self.pause:
            out.append(Pause(self.pause))
        if self.restart:
            out.append(Restart(self.restart))
        return out


def _int(value: object, key: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key}: expected an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{key}: {value} out of range {lo}..{hi}")
    return value


def _queues(value: object, key: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(f"{key}: expected a list of queue indexes (255: all traffic)")
    if not value:
        raise ValueError(f"{key}: at least one queue index (255: all traffic)")
    return tuple(dict.fromkeys(_int(q, f"{key}[{i}]", 0, ALL_QUEUES) for i, q in enumerate(value)))


def parse_extension_values(data: object, prefix: str = "ext") -> ExtensionValues:
    """Check a mapping of extension values; ValueError names the bad key.

    ``prefix`` starts every key path in error messages (``"records[2].ext"``).
    """
    if data is None:
        return ExtensionValues()
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix}: expected an object of extension values")
    unknown = sorted(set(data) - set(EXTENSION_OF_KEY))
    if unknown:
        known = ", ".join(EXTENSION_OF_KEY)
        raise ValueError(f"{prefix}.{unknown[0]}: unknown extension value (known: {known})")
    hop: int | None = None
    if data.get("hop_count") is not None:
        hop = _int(data["hop_count"], f"{prefix}.hop_count", 1, 255)
    direct = data.get("potentially_direct", False)
    if not isinstance(direct, bool):
        raise ValueError(f"{prefix}.potentially_direct: expected true or false, got {direct!r}")
    if direct and hop is None:
        raise ValueError(f"{prefix}.potentially_direct: needs hop_count")
    rng: tuple[int, int] | None = None
    if data.get("latency_range") is not None:
        raw = data["latency_range"]
        key = f"{prefix}.latency_range"
        if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or len(raw) != 2:
            raise ValueError(f"{key}: expected [minimum, maximum] in microseconds")
        lo = _int(raw[0], f"{key}[0]", 0, _U64_MAX)
        hi = _int(raw[1], f"{key}[1]", 0, _U64_MAX)
        if lo > hi:
            raise ValueError(f"{key}: minimum {lo} exceeds maximum {hi}")
        rng = (lo, hi)
    link: bytes | None = None
    if data.get("link_id") is not None:
        raw_id = data["link_id"]
        key = f"{prefix}.link_id"
        try:
            if isinstance(raw_id, int) and not isinstance(raw_id, bool):
                link = LinkIdentifier.from_int(raw_id).identifier
            elif isinstance(raw_id, str):
                link = LinkIdentifier.parse(raw_id).identifier
            else:
                raise ValueError(f"{key}: expected hex octets ('00:00:00:07') or an integer")
        except ItemFormatError as exc:
            raise ValueError(f"{key}: {exc}") from None
    pause = _queues(data["pause"], f"{prefix}.pause") if data.get("pause") is not None else ()
    restart = (
        _queues(data["restart"], f"{prefix}.restart") if data.get("restart") is not None else ()
    )
    both = set(pause) & set(restart)
    if both:
        raise ValueError(
            f"{prefix}.restart: queue {min(both)} is also in {prefix}.pause; one change "
            "either pauses or restarts a queue"
        )
    return ExtensionValues(hop, direct, rng, link, pause, restart)


def extension_values_from_items(items: Sequence[DataItem]) -> Mapping[str, object]:
    """The reverse, for JSON output: the values among ``items`` as a mapping."""
    out: dict[str, object] = {}
    for item in items:
        if isinstance(item, HopCount):
            out["hop_count"] = item.hops
            if item.potentially_direct:
                out["potentially_direct"] = True
        elif isinstance(item, LatencyRange):
            out["latency_range"] = [item.minimum, item.maximum]
        elif isinstance(item, LinkIdentifier):
            out["link_id"] = str(item)
        elif isinstance(item, Pause):
            out["pause"] = list(item.queues)
        elif isinstance(item, Restart):
            out["restart"] = list(item.queues)
    return out
