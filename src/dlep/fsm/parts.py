"""One received message, sorted by item kind in a single pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ..wire import DataItem, ItemType, Message, Status, UnknownItem, is_terminate
from .addresses import L3_ITEM_TYPES, L3Item
from .metrics import FIELD_OF_TYPE, Metrics

#: ``Parts.metrics`` of a message that carries no metric item (compare with ``is``).
NO_METRICS: Final = Metrics()

_MAC: int = ItemType.MAC_ADDRESS
_STATUS: int = ItemType.STATUS


@dataclass(slots=True)
class Parts:
    """The items of a session or destination message, by kind.

    Attributes:
        mtype: the message's type.
        mac: the MAC Address item's value (destination messages).
        status: the Status item (responses).
        metrics: the metric items' values (fields not carried are None);
            :data:`NO_METRICS` itself when the message carries none.
        l3: address and attached subnet items, in message order.
        extra: every other item (extensions'), in message order; identity
            items (RFC 8703 Link Identifier) are among them.
        ident: the identity items, which name the destination with the MAC.
    """

    mtype: int = 0
    mac: bytes | None = None
    status: Status | None = None
    metrics: Metrics = NO_METRICS
    l3: list[L3Item] = field(default_factory=list)
    extra: list[DataItem] = field(default_factory=list)
    ident: list[DataItem] = field(default_factory=list)


def split(msg: Message, ident_types: frozenset[int] = frozenset()) -> Parts:
    """Sort ``msg``'s items (unknown items, already allowed by the codec, are skipped)."""
    parts = Parts(msg.type)
    fields_of = FIELD_OF_TYPE
    metrics: dict[str, int] = {}
    for item in msg.items:
        if isinstance(item, UnknownItem):
            continue
        t = item.TYPE
        name = fields_of.get(t)
        if name is not None:
            metrics[name] = item.value  # type: ignore[attr-defined]  # a MetricItem
        elif t == _MAC:
            parts.mac = item.address  # type: ignore[attr-defined]
        elif t in L3_ITEM_TYPES:
            parts.l3.append(item)  # type: ignore[arg-type]
        elif t == _STATUS:
            parts.status = item  # type: ignore[assignment]
        else:
            parts.extra.append(item)
            if t in ident_types:
                parts.ident.append(item)
    if metrics:
        parts.metrics = Metrics(**metrics)
    return parts


def terminate_status(msg: Message) -> Status | None:
    """A Status with a 'Terminate' code in ``msg`` (§12.2: echoed back in
    Session Termination), or None."""
    for item in msg.items:
        if isinstance(item, Status) and is_terminate(item.code):
            return item
    return None
