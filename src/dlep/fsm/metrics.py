"""Link metrics as one immutable value (the nine metric items of RFC 8175)."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final

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
_UNSET: Final = (None,) * len(_NAMES)
#: The metrics a modem must declare in its Session Initialization Response (§12.6).
MANDATORY_TYPES: Final = frozenset(c.TYPE for c in MANDATORY_METRICS)


_tuple_new = tuple.__new__
_ALL: Final = slice(None)


class Metrics(tuple[int | None, ...]):
    """Metric values of a destination or a session; None = not reported.

    Units: data rates in bits/s, ``latency`` in microseconds, ``resources``,
    ``rlqr`` and ``rlqt`` in percent (0-100), ``mtu`` in octets.

    An immutable value with one attribute per metric. Iterating yields
    ``(name, value)`` for the fields that are set (``dict(m)`` works);
    equal only to another Metrics with the same values. It is built on a
    tuple because it is made for every destination message, and a tuple is
    made several times faster than a frozen dataclass (see
    docs/performance.md); :func:`metric_values` gives the nine values.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        mdrr: int | None
        mdrt: int | None
        cdrr: int | None
        cdrt: int | None
        latency: int | None
        resources: int | None
        rlqr: int | None
        rlqt: int | None
        mtu: int | None
    else:
        mdrr = property(operator.itemgetter(0), doc="Maximum Data Rate (Receive), bits/s")
        mdrt = property(operator.itemgetter(1), doc="Maximum Data Rate (Transmit), bits/s")
        cdrr = property(operator.itemgetter(2), doc="Current Data Rate (Receive), bits/s")
        cdrt = property(operator.itemgetter(3), doc="Current Data Rate (Transmit), bits/s")
        latency = property(operator.itemgetter(4), doc="Latency, microseconds")
        resources = property(operator.itemgetter(5), doc="Resources, percent")
        rlqr = property(operator.itemgetter(6), doc="Relative Link Quality (Receive), percent")
        rlqt = property(operator.itemgetter(7), doc="Relative Link Quality (Transmit), percent")
        mtu = property(operator.itemgetter(8), doc="MTU, octets")

    def __new__(
        cls,
        mdrr: int | None = None,
        mdrt: int | None = None,
        cdrr: int | None = None,
        cdrt: int | None = None,
        latency: int | None = None,
        resources: int | None = None,
        rlqr: int | None = None,
        rlqt: int | None = None,
        mtu: int | None = None,
    ) -> Metrics:
        return _tuple_new(cls, (mdrr, mdrt, cdrr, cdrt, latency, resources, rlqr, rlqt, mtu))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={v!r}" for n, v in zip(_NAMES, self[:], strict=True))
        return f"Metrics({fields})"

    def __eq__(self, other: object) -> bool:
        return type(other) is Metrics and tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __getnewargs__(self) -> tuple[int | None, ...]:
        return self[:]

    def __iter__(self) -> Iterator[tuple[str, int]]:  # type: ignore[override]
        return iter(self.as_dict().items())

    def validate(self) -> None:
        """Raise ValueError naming the first field out of its RFC range."""
        vals = self[:]
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
        for cls, value in zip(_CLASSES, self[:], strict=True):
            if value is not None:
                item = _new(cls)
                _set(item, "value", value)
                out.append(item)
        return out

    def types(self) -> frozenset[int]:
        """Item type codes of the fields that are set."""
        return frozenset(t for t, v in zip(_TYPES, self[:], strict=True) if v is not None)

    def rate_conflict(self, newer: Metrics) -> str | None:
        """Why ``self.merged(newer)`` would break §13.14/§13.15 (a current
        data rate above the maximum), or None. Checks only the four rate
        fields, without building the merged value; ``newer`` itself must be
        valid already."""
        for cur, top in ((2, 0), (3, 1)):
            c, m = newer[cur], newer[top]
            if c is None and m is None:
                continue
            if c is None:
                c = self[cur]
            if m is None:
                m = self[top]
            if c is not None and m is not None and c > m:
                return (
                    f"metrics.{_NAMES[cur]}: {c} exceeds metrics.{_NAMES[top]} {m} "
                    "(RFC 8175 §13.14-13.15)"
                )
        return None

    def is_empty(self) -> bool:
        """True if no field is set."""
        return tuple.__eq__(self, _UNSET) is True

    def merged(self, newer: Metrics) -> Metrics:
        """This, with every field that ``newer`` sets taken from ``newer``.

        Where both hold equal values this one's value objects are kept: a
        router's destinations then share the session's objects for the
        values they have in common (rates, MTU), which a hundred thousand
        destinations notice (see docs/performance.md).
        """
        a, n = self, newer  # unrolled: this runs for every destination message
        return _tuple_new(
            Metrics,
            (
                a[0] if n[0] is None or n[0] == a[0] else n[0],
                a[1] if n[1] is None or n[1] == a[1] else n[1],
                a[2] if n[2] is None or n[2] == a[2] else n[2],
                a[3] if n[3] is None or n[3] == a[3] else n[3],
                a[4] if n[4] is None or n[4] == a[4] else n[4],
                a[5] if n[5] is None or n[5] == a[5] else n[5],
                a[6] if n[6] is None or n[6] == a[6] else n[6],
                a[7] if n[7] is None or n[7] == a[7] else n[7],
                a[8] if n[8] is None or n[8] == a[8] else n[8],
            ),
        )

    def changed_in(self, newer: Metrics) -> Metrics:
        """Only the fields ``newer`` sets to a value different from this one."""
        a, n = self, newer
        return _tuple_new(
            Metrics,
            (
                None if n[0] == a[0] else n[0],
                None if n[1] == a[1] else n[1],
                None if n[2] == a[2] else n[2],
                None if n[3] == a[3] else n[3],
                None if n[4] == a[4] else n[4],
                None if n[5] == a[5] else n[5],
                None if n[6] == a[6] else n[6],
                None if n[7] == a[7] else n[7],
                None if n[8] == a[8] else n[8],
            ),
        )

    def restricted(self, types: frozenset[int]) -> Metrics:
        """Only the fields whose item types are in ``types``."""
        return _tuple_new(
            Metrics, tuple(v if t in types else None for t, v in zip(_TYPES, self[:], strict=True))
        )

    def as_dict(self) -> dict[str, int]:
        """The set fields as a plain dict (for logs, JSON, metrics)."""
        return {n: v for n, v in zip(_NAMES, self[:], strict=True) if v is not None}

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
        return _NAMES

    @classmethod
    def of_values(cls, values: Iterable[int | None]) -> Metrics:
        """From the nine values in RFC order (no checks; see :meth:`validate`)."""
        out = _tuple_new(Metrics, tuple(values))
        if len(out) != len(_NAMES):
            raise ValueError(f"Metrics.of_values: {len(out)} values, expected {len(_NAMES)}")
        return out


def metric_values(metrics: Metrics) -> tuple[int | None, ...]:
    """The nine values of ``metrics`` in RFC order, as a plain tuple."""
    return metrics[:]
