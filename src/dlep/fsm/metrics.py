"""Link metrics as one immutable value (the nine metric items of RFC 8175)."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Final

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
_NAMES: Final = tuple(METRIC_FIELDS)
_CLASSES: Final = tuple(METRIC_FIELDS.values())
_TYPES: Final = tuple(cls.TYPE for cls in _CLASSES)
_MAXES: Final = tuple(cls.MAX for cls in _CLASSES)
#: All nine values of a Metrics as a tuple, in one C call (the hot paths
#: below work on these tuples rather than field by field).
_VALUES: Final = operator.attrgetter(*_NAMES)
_UNSET: Final = (None,) * len(_NAMES)
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
        vals = _VALUES(self)
        for value, mx in zip(vals, _MAXES, strict=True):  # the common case, fast
            if value is not None and not (type(value) is int and 0 <= value <= mx):
                break
        else:
            return self._check_rates(vals)
        for name, value, mx in zip(_NAMES, vals, _MAXES, strict=True):
            if value is None or (type(value) is int and 0 <= value <= mx):
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"metrics.{name}: expected an integer, got {value!r}")
            if not 0 <= value <= mx:
                raise ValueError(f"metrics.{name}: {value} out of range 0..{mx}")
        self._check_rates(vals)

    @staticmethod
    def _check_rates(vals: tuple[int | None, ...]) -> None:
        """§13.14/§13.15: a current data rate never above its maximum."""
        for cur, top in ((2, 0), (3, 1)):  # (cdrr, mdrr), (cdrt, mdrt)
            c, m = vals[cur], vals[top]
            if c is not None and m is not None and c > m:
                raise ValueError(
                    f"metrics.{_NAMES[cur]}: {c} exceeds metrics.{_NAMES[top]} {m} "
                    "(RFC 8175 §13.14-13.15)"
                )

    def items(self) -> list[MetricItem]:
        """The metric data items for the fields that are set."""
        out: list[MetricItem] = []
        for cls, value in zip(_CLASSES, _VALUES(self), strict=True):
            if value is not None:
                item = _new(cls)
                _set(item, "value", value)
                out.append(item)
        return out

    def types(self) -> frozenset[int]:
        """Item type codes of the fields that are set."""
        return frozenset(t for t, v in zip(_TYPES, _VALUES(self), strict=True) if v is not None)

    def rate_conflict(self, newer: Metrics) -> str | None:
        """Why ``self.merged(newer)`` would break §13.14/§13.15 (a current
        data rate above the maximum), or None. Checks only the four rate
        fields, without building the merged value; ``newer`` itself must be
        valid already."""
        for cur, top in (("cdrr", "mdrr"), ("cdrt", "mdrt")):
            c, m = getattr(newer, cur), getattr(newer, top)
            if c is None and m is None:
                continue
            if c is None:
                c = getattr(self, cur)
            if m is None:
                m = getattr(self, top)
            if c is not None and m is not None and c > m:
                return f"metrics.{cur}: {c} exceeds metrics.{top} {m} (RFC 8175 §13.14-13.15)"
        return None

    def is_empty(self) -> bool:
        """True if no field is set."""
        return bool(_VALUES(self) == _UNSET)

    def merged(self, newer: Metrics) -> Metrics:
        """This, with every field that ``newer`` sets taken from ``newer``.

        Where both hold equal values this one's value objects are kept: a
        router's destinations then share the session's objects for the
        values they have in common (rates, MTU), which a hundred thousand
        destinations notice (see docs/performance.md).
        """
        # Unrolled: this runs for every destination message, and a frozen
        # dataclass is built fastest from positional arguments.
        a, n = _VALUES(self), _VALUES(newer)
        return Metrics(
            a[0] if n[0] is None or n[0] == a[0] else n[0],
            a[1] if n[1] is None or n[1] == a[1] else n[1],
            a[2] if n[2] is None or n[2] == a[2] else n[2],
            a[3] if n[3] is None or n[3] == a[3] else n[3],
            a[4] if n[4] is None or n[4] == a[4] else n[4],
            a[5] if n[5] is None or n[5] == a[5] else n[5],
            a[6] if n[6] is None or n[6] == a[6] else n[6],
            a[7] if n[7] is None or n[7] == a[7] else n[7],
            a[8] if n[8] is None or n[8] == a[8] else n[8],
        )

    def changed_in(self, newer: Metrics) -> Metrics:
        """Only the fields ``newer`` sets to a value different from this one."""
        n = newer
        return Metrics(
            None if n.mdrr == self.mdrr else n.mdrr,
            None if n.mdrt == self.mdrt else n.mdrt,
            None if n.cdrr == self.cdrr else n.cdrr,
            None if n.cdrt == self.cdrt else n.cdrt,
            None if n.latency == self.latency else n.latency,
            None if n.resources == self.resources else n.resources,
            None if n.rlqr == self.rlqr else n.rlqr,
            None if n.rlqt == self.rlqt else n.rlqt,
            None if n.mtu == self.mtu else n.mtu,
        )

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
