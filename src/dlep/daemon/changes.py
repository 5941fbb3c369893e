"""Batches of destination changes for :meth:`ModemDaemon.apply_destination_changes`.

One record format serves every external source of destinations — the
JSON-lines feed (standard input, or UDP on loopback), the management API's
streaming ``FeedDestinations`` call — and Python callers (the nl80211
driver) build :class:`DestinationChange` values directly::

    {"op": "up", "mac": "02:00:00:00:00:05", "id": "r1",
     "metrics": {"cdrt": "20M", "mdrt": "54M", "latency": "2ms", "rlqt": 90},
     "addresses": ["10.0.0.5", "192.168.5.0/24"],
     "ext": {"hop_count": 2}}
    {"op": "update", "mac": "02:00:00:00:00:05", "metrics": {"cdrt": 5000000},
     "add": ["fd00::5"], "drop": ["10.0.0.5"], "ext": {"pause": [255]}}
    {"op": "down", "mac": "02:00:00:00:00:05"}
    {"op": "session", "metrics": {"latency": 3000}}

:func:`parse_change` checks one record as strictly as the management API
(every error is a :class:`~dlep.daemon.DaemonArgumentError` whose message
starts with the key path, e.g. ``records[1].metrics.cdrt: ...``); the
daemon then checks the batch against its table and applies all of it or
nothing, with one :class:`ChangeResult` per record.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..config import parse_latency, parse_rate
from ..ext.display import extension_name
from ..ext.values import EXTENSION_OF_KEY, parse_extension_values, value_key
from ..fsm import DestKey, Metrics
from ..fsm.metrics import METRIC_FIELDS
from ..wire import DataItem, MacAddress, Registry
from .base import DaemonArgumentError, DaemonError

__all__ = [
    "NOT_APPLIED",
    "ChangeResult",
    "DestinationChange",
    "check_offered",
    "parse_change",
    "record_id",
]

ChangeOp = Literal["up", "update", "down", "session"]
_OPS: Final = ("up", "update", "down", "session")
_KEYS: Final = {
    "up": {"op", "mac", "id", "metrics", "addresses", "ext"},
    "update": {"op", "mac", "id", "metrics", "add", "drop", "ext"},
    "down": {"op", "mac", "id", "ext"},
    "session": {"op", "id", "metrics", "ext"},
}
_RATES: Final = ("mdrr", "mdrt", "cdrr", "cdrt")
_PERCENT: Final = ("resources", "rlqr", "rlqt")
#: The error of the other records of a batch that had errors.
NOT_APPLIED: Final = "not applied: another record of the batch has errors"


@dataclass(frozen=True, slots=True)
class DestinationChange:
    """One destination change of a batch.

    ``op``: ``up`` (Destination Up), ``update``, ``down``, or ``session``
    (session-wide metrics and items; ``key`` None). ``extra``: items of
    extensions other than the identity items (those are in ``key``).
    ``id`` is the caller's name for it, echoed in its result.
    """

    op: ChangeOp
    key: DestKey | None = None
    metrics: Metrics = field(default_factory=Metrics)
    addresses: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    extra: tuple[DataItem, ...] = ()
    id: str | None = None

    def __post_init__(self) -> None:
        if (self.key is None) != (self.op == "session"):
            need = "no mac" if self.op == "session" else "a mac"
            raise DaemonArgumentError(f"mac: a {self.op!r} change takes {need}", "mac")

    def items(self) -> tuple[DataItem, ...]:
        """Every extension item it carries, identity items first."""
        ident = self.key.ident if self.key is not None else ()
        return (*ident, *self.extra)


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """The answer for one record of a batch."""

    index: int
    ok: bool
    error: str = ""
    id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``{"index": 0, "ok": true}`` (+ ``id``, ``error``)."""
        out: dict[str, Any] = {"index": self.index, "ok": self.ok}
        if self.id is not None:
            out["id"] = self.id
        if self.error:
            out["error"] = self.error
        return out


def record_id(obj: object) -> str | None:
    """The ``id`` of a change or record, if it has a usable one."""
    if isinstance(obj, DestinationChange):
        return obj.id
    if isinstance(obj, Mapping):
        rid = obj.get("id")
        if isinstance(rid, str | int) and not isinstance(rid, bool):
            return str(rid)
    return None


def check_offered(registry: Registry, items: Iterable[DataItem], where: str = "ext") -> None:
    """A :class:`DaemonError` (not possible with this configuration) naming
    the first item whose extension the daemon does not offer."""
    for item in items:
        if item.TYPE in registry.items:
            continue
        key = value_key(item)
        code = EXTENSION_OF_KEY.get(key)
        what = f"extension {extension_name(code)} ({code})" if code is not None else "its extension"
        raise DaemonError(
            f"{where}.{key}: {what} is not offered by this modem (add it to modem.extensions)"
        )


# --------------------------------------------------------------------------
# Parsing one record
# --------------------------------------------------------------------------


def _bad(path: str, text: str) -> DaemonArgumentError:
    return DaemonArgumentError(f"{path}: {text}", path)


def _metric_value(name: str, value: object, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if name in _RATES and isinstance(value, str | int | float):
            return parse_rate(value)
        if name == "latency" and isinstance(value, str | int | float):
            return parse_latency(value)
        if isinstance(value, str) and name in _PERCENT and value.strip().endswith("%"):
            value = int(value.strip()[:-1])
        if not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    except ValueError as exc:
        raise _bad(f"{where}.{name}", str(exc)) from None


def _metrics(data: object, where: str) -> Metrics:
    if data is None:
        return Metrics()
    if not isinstance(data, Mapping):
        raise _bad(where, "expected an object of metrics")
    unknown = sorted(set(data) - set(METRIC_FIELDS))
    if unknown:
        raise _bad(f"{where}.{unknown[0]}", f"unknown metric (known: {', '.join(METRIC_FIELDS)})")
    m = Metrics(**{k: _metric_value(k, v, where) for k, v in data.items() if v is not None})
    try:
        m.validate()
    except ValueError as exc:
        text = str(exc).replace("metrics.", f"{where}.", 1)
        raise DaemonArgumentError(text, text.split(":", 1)[0]) from None
    return m


def _address_list(data: object, where: str) -> tuple[str, ...]:
    if data is None:
        return ()
    if not isinstance(data, list | tuple):
        raise _bad(where, "expected a list of addresses")
    out: list[str] = []
    for i, text in enumerate(data):
        if not isinstance(text, str):
            raise _bad(f"{where}[{i}]", f"expected an address string, got {text!r}")
        try:
            if "/" in text:
                out.append(str(ipaddress.ip_network(text.strip(), strict=False)))
            else:
                out.append(str(ipaddress.ip_address(text.strip())))
        except ValueError as exc:
            raise _bad(f"{where}[{i}]", f"{text!r}: {exc}") from None
    if len(set(out)) != len(out):
        raise _bad(where, "an address is listed twice")
    return tuple(out)


def parse_change(obj: object, where: str = "record") -> DestinationChange:
    """Check one record (a JSON object); :class:`DaemonArgumentError` names
    the bad key, starting with ``where``."""
    if not isinstance(obj, Mapping):
        raise _bad(where, "expected an object with an 'op'")
    op = obj.get("op")
    if op not in _OPS:
        raise _bad(f"{where}.op", f"expected one of {', '.join(_OPS)}, got {op!r}")
    unknown = sorted(set(obj) - _KEYS[op])
    if unknown:
        raise _bad(
            f"{where}.{unknown[0]}",
            f"not a key of an {op!r} record (keys: {', '.join(sorted(_KEYS[op]))})",
        )
    rid = obj.get("id")
    if rid is not None and (not isinstance(rid, str | int) or isinstance(rid, bool)):
        raise _bad(f"{where}.id", "expected a string or a number")
    mac: bytes | None = None
    if op != "session":
        text = obj.get("mac")
        if not isinstance(text, str) or not text.strip():
            raise _bad(f"{where}.mac", "required (e.g. '02:00:00:00:00:01')")
        try:
            mac = MacAddress.parse(text.strip()).address
        except ValueError as exc:
            raise _bad(f"{where}.mac", f"{text!r} is not a MAC address ({exc})") from None
    try:
        ext = parse_extension_values(obj.get("ext"), f"{where}.ext")
    except ValueError as exc:
        raise DaemonArgumentError(str(exc), str(exc).split(":", 1)[0]) from None
    if op == "up" and (ext.pause or ext.restart):
        raise _bad(f"{where}.ext", "pause/restart go in an 'update' (RFC 8651 §3.2)")
    if op == "session" and ext.link_id is not None:
        raise _bad(f"{where}.ext.link_id", "names a destination, not the session")
    metrics = _metrics(obj.get("metrics"), f"{where}.metrics")
    ident = ext.identity()
    change = DestinationChange(
        op=op,
        key=DestKey(mac, ident) if mac is not None else None,
        metrics=metrics,
        addresses=_address_list(obj.get("addresses"), f"{where}.addresses"),
        add=_address_list(obj.get("add"), f"{where}.add"),
        drop=_address_list(obj.get("drop"), f"{where}.drop"),
        extra=tuple(i for i in ext.items() if i not in ident),
        id=None if rid is None else str(rid),
    )
    if op == "update":
        if metrics.is_empty() and not change.add and not change.drop and not change.extra:
            raise _bad(where, "nothing to update (metrics, add, drop or ext)")
        both = set(change.add) & set(change.drop)
        if both:
            raise _bad(f"{where}.drop", f"{min(both)} is also in add")
    if op == "session" and metrics.is_empty() and not change.extra:
        raise _bad(where, "nothing to update (metrics or ext)")
    return change
