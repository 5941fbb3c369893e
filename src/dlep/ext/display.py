"""Readable and numeric renderings of extension data items (for dlepctl, the
API and the Prometheus metrics).

:func:`describe` turns a data item of any known extension into an
:class:`ExtensionValue`: a snake_case ``name``, a human ``text``, a headline
numeric ``value`` (None when the item is not a quantity) and the Prometheus
``gauges`` it contributes per destination. Items without a describer fall
back to their ``repr``.

Third-party extensions add their own with :func:`register_describer` (keyed
by item class; subclasses inherit their base class's describer)::

    from dlep.ext.display import ExtensionValue, register_describer

    register_describer(MyItem, lambda item: ExtensionValue("my_thing", str(item.x), item.x))

Units: ``value`` follows the API's units (latency in microseconds); gauge
values are in Prometheus base units (seconds).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..wire import DataItem
from .credit import (
    CreditWindowAssociation,
    CreditWindowGrant,
    CreditWindowInitialization,
    CreditWindowRequest,
    CreditWindowStatus,
)
from .latency_range import LatencyRange
from .link_id import LinkIdentifier, LinkIdentifierLength
from .multihop import HOP_COUNT_UNKNOWN, HOP_COUNT_UNREACHABLE, HopControl, HopCount
from .pause import ALL_QUEUES, Pause, QueueParameters, Restart
from .traffic_class import TrafficClassification

__all__ = [
    "KNOWN_GAUGES",
    "SHORT_NAMES",
    "ExtensionValue",
    "Gauge",
    "compact",
    "describe",
    "describe_all",
    "extension_name",
    "extension_names",
    "register_describer",
]


@dataclass(frozen=True, slots=True)
class Gauge:
    """One per-destination Prometheus gauge: ``dlep_destination_<suffix>``."""

    suffix: str
    help: str
    value: float


@dataclass(frozen=True, slots=True)
class ExtensionValue:
    """A rendered extension data item.

    Attributes:
        name: snake_case name (``hop_count``, ``latency_range``, ...).
        text: human-readable value (``3``, ``0.5-4 ms``).
        value: headline number (hops, maximum latency in microseconds, ...)
            or None.
        item_type: the data item type code.
        gauges: Prometheus series (base units) this item contributes.
    """

    name: str
    text: str
    value: float | None = None
    item_type: int = 0
    gauges: tuple[Gauge, ...] = ()

    def as_tuple(self) -> tuple[str, str, float | None]:
        """``(name, text, value)``."""
        return (self.name, self.text, self.value)


Describer = Callable[[Any], ExtensionValue]

#: Help texts of the gauges the built-in describers produce, by suffix
#: (always exported, even without samples, so that dashboards find them).
KNOWN_GAUGES: Final[dict[str, str]] = {
    # "hops", not "hop_count": Prometheus reserves "_count" for summaries
    # and histograms (promtool check metrics refuses it on a gauge).
    "hops": "Hop Count (RFC 8629): modem hops to the destination "
    "(255: more than one, unknown; 0: unreachable)",
    "latency_range_min_seconds": "Latency Range minimum (RFC 8757; DLEP reports microseconds)",
    "latency_range_max_seconds": "Latency Range maximum (RFC 8757; DLEP reports microseconds)",
}

#: Short labels for the compact one-line form (``hops=3 lat=0.5-4ms``).
SHORT_NAMES: Final[dict[str, str]] = {
    "hop_count": "hops",
    "hop_control": "hopctl",
    "latency_range": "lat",
    "link_identifier": "lid",
    "link_identifier_length": "lidlen",
    "queue_parameters": "queues",
    "pause": "pause",
    "restart": "restart",
    "credit_window_initialization": "cwi",
    "credit_window_association": "tid",
    "credit_window_grant": "grant",
    "credit_window_status": "credits",
    "credit_window_request": "creq",
    "traffic_classification": "tc",
}

_DESCRIBERS: dict[type, Describer] = {}


def register_describer(cls: type[DataItem], fn: Describer) -> None:
    """Use ``fn`` to describe items of class ``cls`` (and its subclasses)."""
    _DESCRIBERS[cls] = fn


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _fallback(item: DataItem) -> ExtensionValue:
    cls_name = getattr(item, "NAME", "") or type(item).__name__
    t = getattr(item, "TYPE", 0)
    name = _snake(cls_name) if cls_name else f"item_{t}"
    return ExtensionValue(name, repr(item), None, t)


def describe(item: DataItem) -> ExtensionValue:
    """The rendering of ``item``; the item's repr if no describer knows it.

    The ``item_type`` is always the item's own type code. A describer that
    raises is treated like a missing one (a display must not fail).
    """
    t = int(getattr(item, "TYPE", 0))
    for klass in type(item).__mro__:
        fn = _DESCRIBERS.get(klass)
        if fn is not None:
            try:
                v = fn(item)
            except Exception:
                break
            if v.item_type != t:
                v = ExtensionValue(v.name, v.text, v.value, t, v.gauges)
            return v
    return _fallback(item)


def describe_all(items: Iterable[DataItem]) -> list[ExtensionValue]:
    """:func:`describe` each item, in order."""
    return [describe(i) for i in items]


def compact(values: Iterable[tuple[str, str]]) -> str:
    """``[("hop_count", "3"), ("latency_range", "0.5-4 ms")]`` -> ``hops=3 lat=0.5-4ms``."""
    parts = [f"{SHORT_NAMES.get(n, n)}={t.replace(' ', '')}" for n, t in values]
    return " ".join(parts)


# ---------------------------------------------------------------------------
# Extension names
# ---------------------------------------------------------------------------


def extension_name(code: int, extra: Mapping[int, str] | None = None) -> str:
    """The name of extension ``code``: ``extra`` first, then the built-ins,
    else the number as text."""
    if extra and code in extra:
        return extra[code]
    from . import BUILTIN_EXTENSIONS

    cls = BUILTIN_EXTENSIONS.get(code)
    return cls.name if cls is not None else str(code)


def extension_names(plugins: Iterable[object]) -> dict[int, str]:
    """Code -> name of the extension objects in ``plugins`` (e.g. a daemon's)."""
    out: dict[int, str] = {}
    for p in plugins:
        code = getattr(p, "code", None)
        name = getattr(p, "name", None)
        if isinstance(code, int) and isinstance(name, str) and name:
            out[code] = name
    return out


# ---------------------------------------------------------------------------
# Built-in describers
# ---------------------------------------------------------------------------


def _us(us: int) -> tuple[float, str]:
    if us >= 1_000_000:
        return us / 1e6, "s"
    if us >= 1000:
        return us / 1000, "ms"
    return float(us), "us"


def latency_text(minimum: int, maximum: int) -> str:
    """``(500, 4000)`` -> ``0.5-4 ms`` (the maximum's unit for both bounds,
    unless the minimum would be tiny in it: then each has its own unit)."""
    hi, hu = _us(maximum)
    if minimum == maximum:
        return f"{hi:.3g} {hu}"
    lo = minimum * hi / maximum if maximum else 0.0
    if minimum == 0 or lo >= 0.01:
        return f"{lo:.3g}-{hi:.3g} {hu}"
    lo2, lu = _us(minimum)
    return f"{lo2:.3g} {lu}-{hi:.3g} {hu}"


def _hop_count(item: HopCount) -> ExtensionValue:
    if item.hops == HOP_COUNT_UNKNOWN:
        text = ">1"
    elif item.hops == HOP_COUNT_UNREACHABLE:
        text = "unreachable"
    else:
        text = str(item.hops)
    if item.direct_possible:
        text += " (P)"
    gauge = Gauge("hops", KNOWN_GAUGES["hops"], float(item.hops))
    return ExtensionValue("hop_count", text, float(item.hops), item.TYPE, (gauge,))


def _hop_control(item: HopControl) -> ExtensionValue:
    return ExtensionValue("hop_control", item.name.lower(), float(item.action), item.TYPE)


def _latency_range(item: LatencyRange) -> ExtensionValue:
    gauges = (
        Gauge(
            "latency_range_min_seconds",
            KNOWN_GAUGES["latency_range_min_seconds"],
            item.minimum / 1e6,
        ),
        Gauge(
            "latency_range_max_seconds",
            KNOWN_GAUGES["latency_range_max_seconds"],
            item.maximum / 1e6,
        ),
    )
    text = latency_text(item.minimum, item.maximum)
    return ExtensionValue("latency_range", text, float(item.maximum), item.TYPE, gauges)


def _link_id(item: LinkIdentifier) -> ExtensionValue:
    return ExtensionValue("link_identifier", str(item), None, item.TYPE)


def _link_id_length(item: LinkIdentifierLength) -> ExtensionValue:
    return ExtensionValue("link_identifier_length", str(item.length), float(item.length), item.TYPE)


def _queues(indexes: tuple[int, ...]) -> str:
    if ALL_QUEUES in indexes:
        return "all"
    return ",".join(str(q) for q in indexes)


def _pause(item: Pause) -> ExtensionValue:
    return ExtensionValue("pause", _queues(item.queues), None, item.TYPE)


def _restart(item: Restart) -> ExtensionValue:
    return ExtensionValue("restart", _queues(item.queues), None, item.TYPE)


def _queue_parameters(item: QueueParameters) -> ExtensionValue:
    parts = [f"{q.index}:{q.size}{item.scale_name}" for q in item.queues]
    return ExtensionValue("queue_parameters", " ".join(parts), float(len(item.queues)), item.TYPE)


def _cwi(item: CreditWindowInitialization) -> ExtensionValue:
    text = f"fid {item.fid}: {item.credits}/{item.max_octets} B"
    return ExtensionValue("credit_window_initialization", text, float(item.credits), item.TYPE)


def _cwa(item: CreditWindowAssociation) -> ExtensionValue:
    return ExtensionValue("credit_window_association", str(item.tid), float(item.tid), item.TYPE)


def _grant(item: CreditWindowGrant) -> ExtensionValue:
    text = f"fid {item.fid}: {item.credits} B"
    return ExtensionValue("credit_window_grant", text, float(item.credits), item.TYPE)


def _status(item: CreditWindowStatus) -> ExtensionValue:
    text = f"fid {item.fid}: {item.credits} B"
    return ExtensionValue("credit_window_status", text, float(item.credits), item.TYPE)


def _request(item: CreditWindowRequest) -> ExtensionValue:
    text = "all" if item.all else ",".join(str(f) for f in item.fids)
    return ExtensionValue("credit_window_request", text, None, item.TYPE)


def _traffic_class(item: TrafficClassification) -> ExtensionValue:
    fids = ",".join(str(f) for f in sorted(item.fids)) or "-"
    text = f"tid {item.tid}: fids {fids}"
    return ExtensionValue("traffic_classification", text, float(item.tid), item.TYPE)


_BUILTIN: tuple[tuple[type[DataItem], Describer], ...] = (
    (HopCount, _hop_count),
    (HopControl, _hop_control),
    (LatencyRange, _latency_range),
    (LinkIdentifier, _link_id),
    (LinkIdentifierLength, _link_id_length),
    (Pause, _pause),
    (Restart, _restart),
    (QueueParameters, _queue_parameters),
    (CreditWindowInitialization, _cwi),
    (CreditWindowAssociation, _cwa),
    (CreditWindowGrant, _grant),
    (CreditWindowStatus, _status),
    (CreditWindowRequest, _request),
    (TrafficClassification, _traffic_class),
)
for _cls, _fn in _BUILTIN:
    register_describer(_cls, _fn)
