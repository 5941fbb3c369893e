"""Human-readable rendering of metrics and events.

:func:`describe` is the one text form of an event: the daemons' log lines,
the management API's ``Event.text`` and ``dlepctl watch`` all use it, so an
operator reads the same words everywhere. No Python ``repr`` reaches it:
MACs are in colon notation, destinations by their key, extension items by
their readable value, and events it has no special words for as
``EventName field=value ...``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..ext.display import describe as describe_item
from ..ext.display import extension_name
from ..fsm import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationInfo,
    DestinationLimitReached,
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
    DestKey,
    Event,
    Inconsistency,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    LinkCharacteristicsTimeout,
    Metrics,
    ResponseStatus,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
)
from ..fsm.metrics import FIELD_OF_TYPE
from ..wire import (
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6Address,
    Ipv6AttachedSubnet,
    Ipv6ConnectionPoint,
    MacAddress,
    Message,
    MetricItem,
    PeerType,
    Signal,
    Status,
    UnknownItem,
    format_mac,
    message_name,
    signal_name,
    status_name,
)
from .events import (
    ConnectFailed,
    ConnectionRefused,
    DaemonEvent,
    Lagged,
    PeerDiscovered,
    SessionConnected,
    SessionEvent,
)

__all__ = [
    "addresses",
    "describe",
    "item",
    "latency",
    "message",
    "metrics",
    "rate",
    "signal",
    "value",
]


def rate(bps: int) -> str:
    """``54000000`` -> ``54 Mb/s`` (three significant digits)."""
    for unit, scale in (("Tb/s", 1e12), ("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        # 999,999 b/s rounds to 1,000 kb/s: say 1 Mb/s, never "1e+03 kb/s".
        if bps >= scale * 0.9995:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps} b/s"


def latency(us: int) -> str:
    """``1500`` -> ``1.5 ms``."""
    if us >= 1_000_000:
        return f"{us / 1e6:.3g} s"
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    return f"{us} us"


def metrics(m: Metrics) -> str:
    """One-line summary of the fields that are set."""
    parts: list[str] = []
    for name in ("mdrr", "mdrt", "cdrr", "cdrt"):
        v = getattr(m, name)
        if v is not None:
            parts.append(f"{name}={rate(v)}")
    if m.latency is not None:
        parts.append(f"latency={latency(m.latency)}")
    for name in ("resources", "rlqr", "rlqt"):
        v = getattr(m, name)
        if v is not None:
            parts.append(f"{name}={v}%")
    if m.mtu is not None:
        parts.append(f"mtu={m.mtu}")
    return " ".join(parts) or "-"


def addresses(info: DestinationInfo) -> str:
    """`` [10.0.0.1, 2001:db8::1, 10.1.0.0/16]``, or nothing."""
    parts = [str(a) for a in sorted(info.ipv4)] + [str(a) for a in sorted(info.ipv6)]
    parts += [str(n) for n in sorted(info.ipv4_subnets)]
    parts += [str(n) for n in sorted(info.ipv6_subnets)]
    return f" [{', '.join(parts)}]" if parts else ""


def _quoted(text: str) -> str:
    """Text in double quotes, escaped as JSON would (never a Python repr)."""
    return json.dumps(text, ensure_ascii=False)


def _metric_value(name: str, v: int) -> str:
    if name in ("mdrr", "mdrt", "cdrr", "cdrt"):
        return rate(v)
    if name == "latency":
        return latency(v)
    if name in ("resources", "rlqr", "rlqt"):
        return f"{v}%"
    return str(v)


def item(it: DataItem | UnknownItem, names: Mapping[int, str] | None = None) -> str:
    """One data item as ``name=value`` for people: the core items of RFC
    8175 in their units, an extension's by its describer, one this daemon
    does not know as its type code and octets."""
    if isinstance(it, UnknownItem):
        return f"item_{it.type_code}={it.value.hex(':') or '-'}"
    if isinstance(it, MetricItem):
        name = FIELD_OF_TYPE.get(it.TYPE)
        if name is not None:
            return f"{name}={_metric_value(name, it.value)}"
    if isinstance(it, MacAddress):
        return f"mac={format_mac(it.address)}"
    if isinstance(it, Status):
        text = f" {_quoted(it.text)}" if it.text else ""
        return f"status={status_name(it.code)}{text}"
    if isinstance(it, Ipv4Address | Ipv6Address):
        return f"{'+' if it.add else '-'}{it.address}"
    if isinstance(it, Ipv4AttachedSubnet | Ipv6AttachedSubnet):
        return f"{'+' if it.add else '-'}{it.address}/{it.prefix_length}"
    if isinstance(it, Ipv4ConnectionPoint | Ipv6ConnectionPoint):
        host = f"[{it.address}]" if isinstance(it, Ipv6ConnectionPoint) else str(it.address)
        port = f":{it.port}" if it.port is not None else ""
        return f"connection_point={host}{port}{' tls' if it.tls else ''}"
    if isinstance(it, PeerType):
        return f"peer_type={_quoted(it.description)}{' secured' if it.secured_medium else ''}"
    if isinstance(it, HeartbeatInterval):
        return f"heartbeat={it.milliseconds}ms"
    if isinstance(it, ExtensionsSupported):
        exts = ",".join(extension_name(e, names) for e in it.extensions) or "none"
        return f"extensions={exts}"
    d = describe_item(it)
    return f"{d.name}={d.text}"


def message(msg: Message, names: Mapping[int, str] | None = None) -> str:
    """One decoded message on one line: ``DESTINATION_UPDATE mac=... cdrr=36 Mb/s``."""
    return " ".join([message_name(msg.type), *(item(i, names) for i in msg.items)])


def signal(sig: Signal, names: Mapping[int, str] | None = None) -> str:
    """One decoded discovery signal on one line, as :func:`message` does a
    message: ``PEER_OFFER peer_type=... ipv4_connection_point=...``."""
    return " ".join([signal_name(sig.type), *(item(i, names) for i in sig.items)])


def _items(items: Iterable[DataItem]) -> str:
    return " ".join(f"{v.name}={v.text}" for v in map(describe_item, items))


def value(v: Any) -> str:
    """A field value for people: MACs, keys, items, addresses, collections."""
    if isinstance(v, DestKey):
        return str(v)
    if isinstance(v, bytes):
        return format_mac(v) if len(v) in (6, 8) else v.hex(":")
    if isinstance(v, DataItem):
        d = describe_item(v)
        return f"{d.name}={d.text}"
    if isinstance(v, Metrics):
        return metrics(v)
    if isinstance(v, frozenset | set | tuple | list):
        inner = sorted(v, key=str) if isinstance(v, frozenset | set) else list(v)
        return "[" + ", ".join(value(x) for x in inner) + "]"
    if isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(v)
    if isinstance(v, str):
        return repr(v) if " " in v or not v else v
    return str(v)


def _generic(ev: object) -> str:
    """``EventName field=value ...`` for events without special words."""
    name = type(ev).__name__
    if not dataclasses.is_dataclass(ev):
        return name
    fields = [
        f"{f.name}={value(getattr(ev, f.name))}"
        for f in dataclasses.fields(ev)
        if getattr(ev, f.name) not in (None, (), "")
    ]
    return " ".join([name, *fields])


def _extra(info: DestinationInfo) -> str:
    """`` hop_count=3 ...``: the extension values, identity items aside."""
    text = _items(e for e in info.extra if e not in info.ident)
    return f" {text}" if text else ""


def describe(ev: DaemonEvent | Event, names: Mapping[int, str] | None = None) -> str:
    """The one text form of an event (without the session prefix).

    ``names``: extension code -> name for extensions the built-in table
    does not know (a daemon's third-party plug-ins).
    """
    if isinstance(ev, SessionEvent):
        return describe(ev.event, names)
    if isinstance(ev, SessionUp):
        exts = ",".join(extension_name(e, names) for e in sorted(ev.extensions)) or "none"
        return (
            f"up: peer {ev.peer_type.description!r}"
            f"{' [secured medium]' if ev.peer_type.secured_medium else ''}, heartbeat "
            f"{ev.peer_heartbeat_ms} ms (ours {ev.heartbeat_ms} ms), extensions {exts}, "
            f"metrics {metrics(ev.session_metrics)}"
        )
    if isinstance(ev, SessionTerminated):
        status = status_name(ev.status) if ev.status is not None else "no status"
        who = "by peer" if ev.by_peer else "by us"
        return f"ended ({status}, {who}): {ev.reason}; {len(ev.destinations)} destination(s) gone"
    if isinstance(ev, SessionUpdated):
        return f"session update: {metrics(ev.metrics)}"
    if isinstance(ev, DestinationUp):
        info = ev.info
        tail = _extra(info)
        return (
            f"destination {info.key} up{' (announced)' if ev.announced else ''}: "
            f"{metrics(info.metrics)}{addresses(info)}{tail}"
        )
    if isinstance(ev, DestinationUpdate):
        changed = ev.changed
        what = metrics(changed) if not changed.is_empty() else "addresses" + addresses(ev.info)
        return f"destination {ev.info.key} update: {what}"
    if isinstance(ev, DestinationDown):
        return f"destination {ev.key} down ({'by peer' if ev.by_peer else 'by us'})"
    if isinstance(ev, DestinationRefused):
        return f"destination {ev.key} refused by peer: {status_name(ev.status)} {ev.text}".rstrip()
    if isinstance(ev, DestinationLimitReached):
        return (
            f"destination {ev.key} refused (Request Denied): the session holds its limit of "
            f"{ev.limit} destinations; {ev.refused} refused so far"
        )
    if isinstance(ev, DestinationUpRequested):
        info = ev.info
        return (
            f"destination {info.key} up, awaiting decision: "
            f"{metrics(info.metrics)}{addresses(info)}{_extra(info)}"
        )
    if isinstance(ev, DestinationAnnounceRequested):
        addrs = " ".join(str(a) for a in [*sorted(ev.ipv4), *sorted(ev.ipv6)])
        return f"destination announce requested: {ev.key} {addrs}".rstrip()
    if isinstance(ev, LinkCharacteristicsRequested):
        asked = [
            f"{n}={rate(v) if n != 'latency' else latency(v)}"
            for n in ("cdrr", "cdrt", "latency")
            if (v := getattr(ev, n)) is not None
        ]
        what = " ".join([*asked, _items(ev.extra)]).strip()
        return f"link characteristics requested: {ev.key} {what}".rstrip()
    if isinstance(ev, LinkCharacteristicsResponse):
        return (
            f"link characteristics response: {ev.key} {status_name(ev.status)} "
            f"{metrics(ev.metrics)} {ev.text}"
        ).rstrip()
    if isinstance(ev, LinkCharacteristicsTimeout):
        return f"link characteristics request for {ev.key}: no answer yet"
    if isinstance(ev, Inconsistency):
        where = f" for {ev.key}" if ev.key is not None else ""
        return f"inconsistent {message_name(ev.message_type)}{where}: {ev.reason}"
    if isinstance(ev, ResponseStatus):
        where = f" for {ev.key}" if ev.key is not None else ""
        return (
            f"{message_name(ev.message_type)}{where}: {status_name(ev.status)} {ev.text}"
        ).rstrip()
    if isinstance(ev, SessionConnected):
        return "connected" + (" over TLS" if ev.tls else "")
    if isinstance(ev, PeerDiscovered):
        pt = ev.peer_type.description if ev.peer_type else "no peer type"
        points = ", ".join(ev.connection_points) or "no connection point"
        return f"peer offer from {ev.address} ({pt}): {points}"
    if isinstance(ev, ConnectFailed):
        return f"connect to {ev.peer} failed: {ev.reason}"
    if isinstance(ev, ConnectionRefused):
        return f"connection from {ev.peer} refused: {ev.reason}"
    if isinstance(ev, Lagged):
        text = f"LAGGED: this stream fell behind, {ev.dropped} event(s) dropped"
        if ev.coalesced:
            text += f", {ev.coalesced} destination update(s) merged into newer ones"
        return text
    return _generic(ev)


def log_fields(ev: DaemonEvent | Event, **context: Any) -> dict[str, Any]:
    """What a JSON log line carries besides its message: ``context``
    (session, peer) and the event's name, destination, status and metrics,
    each present only when the event has it (values as JSON types)."""
    if isinstance(ev, SessionEvent):
        ev = ev.event
    out: dict[str, Any] = {**context, "event": type(ev).__name__}
    info = getattr(ev, "info", None)
    if isinstance(info, DestinationInfo):
        out["mac"] = str(info.key)
    else:
        mac = getattr(ev, "mac", None)
        if isinstance(mac, bytes) and mac:
            key = getattr(ev, "key", None)
            out["mac"] = str(key) if isinstance(key, DestKey) else format_mac(mac)
    status = getattr(ev, "status", None)
    if isinstance(status, int):
        out["status"] = status_name(status)
    m: object = None
    if isinstance(ev, DestinationUpdate):
        m = ev.changed
    elif isinstance(ev, DestinationUp | DestinationUpRequested):
        m = ev.info.metrics
    elif isinstance(ev, SessionUp):
        m = ev.session_metrics
    else:
        m = getattr(ev, "metrics", None)
    if isinstance(m, Metrics) and not m.is_empty():
        out["metrics"] = m.as_dict()
    return out


def message_fields(msg: Message) -> dict[str, Any]:
    """The JSON log fields of one message: its name, destination, status, metrics."""
    out: dict[str, Any] = {"message_type": message_name(msg.type)}
    metric_values: dict[str, int] = {}
    for it in msg.items:
        if isinstance(it, MacAddress):
            out["mac"] = format_mac(it.address)
        elif isinstance(it, Status):
            out["status"] = status_name(it.code)
        elif isinstance(it, MetricItem) and it.TYPE in FIELD_OF_TYPE:
            metric_values[FIELD_OF_TYPE[it.TYPE]] = it.value
    if metric_values:
        out["metrics"] = metric_values
    return out
