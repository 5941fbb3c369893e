"""Link metrics as one immutable value (the nine metric items of RFC 8175)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, Final

from ..wire import (
    MANDATORY_METRICS,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    Latency,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    MetricItem,
    Mtu,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Resources,
)

_new = object.__new__
_set = object.__setattr__

#: Metrics field name -> item class, in RFC order.
METRIC_FIELDS: Final[dict[str, type[MetricItem]]] = {
    "mdrr": MaximumDataRateReceive,
    "mdrt": MaximumDataRateTransmit,
    "cdrr": CurrentDataRateReceive,
    "cdrt": CurrentDataRateTransmit,
    "latency": Latency,
    "resources": Resources,
    "rlqr": RelativeLinkQualityReceive,
    "rlqt": RelativeLinkQualityTransmit,
    "mtu": Mtu,
}
#: Item type code -> Metrics field name.
FIELD_OF_TYPE: Final[dict[int, str]] = {cls.TYPE: name for name, cls in METRIC_FIELDS.items()}
METRIC_TYPES: Final = frozenset(FIELD_OF_TYPE)
#: The metrics a modem must declare in its Session Initialization Response (§12.6).
MANDATORY_TYPES: Final = frozenset(c.TYPE for c in MANDATORY_METRICS)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Metric values of a destination or a session; None = not reported.

    Units: data rates in bits/s, ``latency`` in microseconds, ``resources``,
    ``rlqr`` and ``rlqt`` in percent (0-100), ``mtu`` in octets.
    """

    mdrr: int | None = None
    mdrt: int | None = None
    cdrr: int | None = None
    cdrt: int | None = None
    latency: int | None = None
    resources: int | None = None
    rlqr: int | None = None
    rlqt: int | None = None
    mtu: int | None = None

    def validate(self) -> None:
        """Raise ValueError naming the first field out of its RFC range."""
        for name, cls in METRIC_FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"metrics.{name}: expected an integer, got {value!r}")
            if not 0 <= value <= cls.MAX:
                raise ValueError(f"metrics.{name}: {value} out of range 0..{cls.MAX}")
        for cur, mx in (("cdrr", "mdrr"), ("cdrt", "mdrt")):
            c, m = getattr(self, cur), getattr(self, mx)
            if c is not None and m is not None and c > m:
                raise ValueError(
                    f"metrics.{cur}: {c} exceeds metrics.{mx} {m} (RFC 8175 §13.14-13.15)"
                )

    def items(self) -> list[MetricItem]:
        """The metric data items for the fields that are set."""
        out: list[MetricItem] = []
        for name, cls in METRIC_FIELDS.items():
            value = getattr(self, name)
            if value is not None:
                item = _new(cls)
                _set(item, "value", value)
                out.append(item)
        return out

    def types(self) -> frozenset[int]:
        """Item type codes of the fields that are set."""
        return frozenset(
            cls.TYPE for n, cls in METRIC_FIELDS.items() if getattr(self, n) is not None
        )

    def is_empty(self) -> bool:
        """True if no field is set."""
        return all(getattr(self, n) is None for n in METRIC_FIELDS)

    def merged(self, newer: Metrics) -> Metrics:
        """This, with every field that ``newer`` sets taken from ``newer``."""
        vals = {}
        for n in METRIC_FIELDS:
            v = getattr(newer, n)
            vals[n] = v if v is not None else getattr(self, n)
        return Metrics(**vals)

    def changed_in(self, newer: Metrics) -> Metrics:
        """Only the fields ``newer`` sets to a value different from this one."""
        vals: dict[str, Any] = {}
        for n in METRIC_FIELDS:
            v = getattr(newer, n)
            if v is not None and v != getattr(self, n):
                vals[n] = v
        return Metrics(**vals)

    def restricted(self, types: frozenset[int]) -> Metrics:
        """Only the fields whose item types are in ``types``."""
        return Metrics(
            **{n: getattr(self, n) for n, cls in METRIC_FIELDS.items() if cls.TYPE in types}
        )

    def as_dict(self) -> dict[str, int]:
        """The set fields as a plain dict (for logs, JSON, metrics)."""
        return {n: v for n in METRIC_FIELDS if (v := getattr(self, n)) is not None}

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(self.as_dict().items())

    @classmethod
    def from_items(cls, items: Iterable[DataItem | object]) -> Metrics:
        """Collect the metric items among ``items`` (others are skipped)."""
        vals: dict[str, int] = {}
        for item in items:
            name = FIELD_OF_TYPE.get(getattr(item, "TYPE", -1))
            if name is not None and isinstance(item, MetricItem):
                vals[name] = item.value
        return cls(**vals)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of the metric fields, in RFC order."""
        return tuple(f.name for f in fields(cls))
