"""Between the daemon's Python values and the management API's messages.

Everything here is pure: no I/O, no daemon access. The server builds its
answers with it; the client turns messages into plain dicts for JSON with
:func:`to_dict`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..daemon import fmt
from ..daemon.events import (
    ConnectFailed,
    ConnectionRefused,
    DaemonEvent,
    Lagged,
    PeerDiscovered,
    SessionConnected,
    SessionEvent,
)
from ..ext import BUILTIN_EXTENSIONS
from ..ext.display import ExtensionValue, describe, extension_name
from ..fsm import (
    METRIC_FIELDS,
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationInfo,
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
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
from ..wire import DataItem, format_mac, message_name, status_name
from ._pb import management_pb2 as pb

if TYPE_CHECKING:
    # For the annotation only: dlep.daemon.base brings the transports, which
    # dlepctl (a client of this module) never needs.
    from ..daemon.base import SessionInfo
    from ..daemon.peers import PeerInfo

__all__ = [
    "EXTENSION_NAMES_BY_CODE",
    "destination_to_pb",
    "event_to_pb",
    "extension_value_to_pb",
    "extension_values_from_pb",
    "extension_values_to_pb",
    "feed_record_from_pb",
    "metrics_from_pb",
    "metrics_to_pb",
    "peer_to_pb",
    "role_name",
    "role_to_pb",
    "safe_text",
    "session_to_pb",
    "to_dict",
]


#: Extension Type Value -> the name used in configuration files (each built-in
#: extension's ``name``, the keys of :data:`dlep.config.EXTENSION_NAMES`; read
#: from the extensions so that dlepctl does not import the pydantic schema).
EXTENSION_NAMES_BY_CODE: dict[int, str] = {
    code: cls.name for code, cls in BUILTIN_EXTENSIONS.items()
}


_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` as protobuf can carry it: lone surrogates (which UTF-8
    cannot encode, and protobuf refuses with UnicodeEncodeError) become
    U+FFFD. The codec already replaces a peer's invalid UTF-8; this keeps any
    other path (an extension's rendering, a reason built from such text)
    from turning one string into a failed call or a dead event stream."""
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def role_to_pb(role: str) -> pb.Role:
    """``"router"`` / ``"modem"`` -> the enum value."""
    return {"router": pb.ROLE_ROUTER, "modem": pb.ROLE_MODEM}.get(role, pb.ROLE_UNSPECIFIED)


def role_name(role: int) -> str:
    """The enum value -> ``"router"`` / ``"modem"`` (``"?"`` if unset)."""
    names: dict[int, str] = {pb.ROLE_ROUTER: "router", pb.ROLE_MODEM: "modem"}
    return names.get(role, "?")


def metrics_to_pb(m: Metrics) -> pb.Metrics:
    """The fields that are set; unset stays unset."""
    return pb.Metrics(**m.as_dict())


def metrics_from_pb(m: pb.Metrics) -> Metrics:
    """Only the fields present in the message (not validated: call
    :meth:`Metrics.validate`)."""
    return Metrics(**{name: getattr(m, name) for name in METRIC_FIELDS if m.HasField(name)})


def extension_value_to_pb(v: ExtensionValue) -> pb.ExtensionValue:
    """A rendered extension item (:mod:`dlep.ext.display`)."""
    msg = pb.ExtensionValue(name=safe_text(v.name), text=safe_text(v.text), item_type=v.item_type)
    if v.value is not None:
        msg.value = v.value
    return msg


def extension_values_to_pb(items: Iterable[DataItem]) -> list[pb.ExtensionValue]:
    """Every extension item of a destination, rendered."""
    return [extension_value_to_pb(describe(i)) for i in items]


def extension_values_from_pb(msg: pb.ExtensionValues) -> dict[str, Any]:
    """The values set in ``msg`` as the mapping :func:`dlep.ext.values.parse_extension_values`
    checks (a lone latency_min or latency_max is kept so the check names it)."""
    out: dict[str, Any] = {}
    if msg.HasField("hop_count"):
        out["hop_count"] = msg.hop_count
    if msg.potentially_direct:
        out["potentially_direct"] = True
    has_min, has_max = msg.HasField("latency_min"), msg.HasField("latency_max")
    if has_min or has_max:
        out["latency_range"] = [
            msg.latency_min if has_min else None,
            msg.latency_max if has_max else None,
        ]
    if msg.link_id:
        out["link_id"] = msg.link_id
    if msg.pause:
        out["pause"] = list(msg.pause)
    if msg.restart:
        out["restart"] = list(msg.restart)
    return out


def feed_record_from_pb(rec: pb.FeedRecord) -> dict[str, Any]:
    """A FeedRecord as the record :func:`dlep.daemon.changes.parse_change` checks."""
    out: dict[str, Any] = {"op": rec.op}
    if rec.mac:
        out["mac"] = rec.mac
    if rec.id:
        out["id"] = rec.id
    if rec.HasField("metrics"):
        out["metrics"] = metrics_from_pb(rec.metrics).as_dict()
    for key, values in (
        ("addresses", rec.addresses),
        ("add", rec.add_addresses),
        ("drop", rec.drop_addresses),
    ):
        if values:
            out[key] = list(values)
    if rec.HasField("ext"):
        ext = extension_values_from_pb(rec.ext)
        if ext:
            out["ext"] = ext
    return out


def destination_to_pb(session_id: str, info: DestinationInfo, flaps: int = 0) -> pb.Destination:
    """One destination of one session (its times as given: the daemon's
    snapshots have them in Unix time); ``flaps``: how often it went down
    and came back (the daemon's count)."""
    mac = info.mac_str
    msg = pb.Destination(
        session_id=session_id,
        mac=mac,
        metrics=metrics_to_pb(info.metrics),
        ipv4=[str(a) for a in sorted(info.ipv4)],
        ipv6=[str(a) for a in sorted(info.ipv6)],
        ipv4_subnets=[str(n) for n in sorted(info.ipv4_subnets)],
        ipv6_subnets=[str(n) for n in sorted(info.ipv6_subnets)],
        extensions=extension_values_to_pb(info.extra),
        # The key is the MAC for nearly every destination: formatted once.
        key=str(info.key) if info.ident else mac,
        flaps=flaps,
        updates=info.updates,
    )
    if info.up_since is not None:
        msg.up_since = info.up_since
    if info.last_update is not None:
        msg.last_update = info.last_update
    return msg


def session_to_pb(
    s: SessionInfo, now: float | None = None, names: Mapping[int, str] | None = None
) -> pb.Session:
    """A :class:`SessionInfo` snapshot; ``names`` names extensions beyond the
    built-in ones (e.g. a daemon's third-party plug-ins)."""
    now = time.time() if now is None else now
    msg = pb.Session(
        id=s.id,
        peer=s.peer,
        role=role_to_pb(s.role),
        state=s.state,
        tls=s.tls,
        peer_type=safe_text(s.peer_type),
        secured_medium=s.secured_medium,
        extensions=list(s.extensions),
        extension_names=[extension_name(e, names) for e in s.extensions],
        heartbeat_ms=s.heartbeat_ms,
        started_at=s.started_at,
        uptime=max(0.0, now - s.up_since) if s.up_since is not None else 0.0,
        destinations=s.destinations,
        session_metrics=metrics_to_pb(s.session_metrics),
        tx_messages=s.tx,
        rx_messages=s.rx,
        errors=s.errors,
    )
    if s.peer_heartbeat_ms is not None:
        msg.peer_heartbeat_ms = s.peer_heartbeat_ms
    if s.up_since is not None:
        msg.up_since = s.up_since
    if s.last_heard is not None:
        msg.last_heard = s.last_heard
    msg.flaps = s.flaps
    return msg


def peer_to_pb(p: PeerInfo) -> pb.Peer:
    """A :class:`PeerInfo` snapshot (a router's configured peer)."""
    msg = pb.Peer(
        peer=p.peer,
        address=p.address,
        port=p.port,
        origin=p.origin,
        tls=p.tls,
        state=p.state,
        failure=p.failure,
        last_error=safe_text(p.last_error),
        failures=p.failures,
        since=p.since,
        gtsm_enforce=p.gtsm_enforce,
    )
    if p.next_retry is not None:
        msg.next_retry = p.next_retry
    if p.session_id is not None:
        msg.session_id = p.session_id
    return msg


def _opt(msg: Message, **values: int | None) -> None:
    for name, value in values.items():
        if value is not None:
            setattr(msg, name, value)


def _addresses(values: Iterable[object]) -> list[str]:
    return sorted(str(v) for v in values)


def event_to_pb(
    ev: DaemonEvent, now: float | None = None, names: Mapping[int, str] | None = None
) -> pb.Event:
    """Any daemon event; kinds this API has no message for become ``other``.

    ``text`` is :func:`dlep.daemon.fmt.describe`: the words of the log.
    """
    out = pb.Event(
        time=time.time() if now is None else now, text=safe_text(fmt.describe(ev, names))
    )
    if isinstance(ev, SessionEvent):
        out.session_id = ev.session_id
        out.peer = ev.peer
        _session_event(out, ev)
    elif isinstance(ev, Lagged):
        out.lagged.dropped = ev.dropped
        out.lagged.coalesced = ev.coalesced
    elif isinstance(ev, SessionConnected):
        out.session_id = ev.session_id
        out.peer = ev.peer
        out.session_connected.tls = ev.tls
    elif isinstance(ev, ConnectFailed):
        out.peer = ev.peer
        out.error.CopyFrom(pb.Error(kind="connect_failed", message=safe_text(ev.reason)))
    elif isinstance(ev, ConnectionRefused):
        out.peer = ev.peer
        out.error.CopyFrom(pb.Error(kind="connection_refused", message=safe_text(ev.reason)))
    elif isinstance(ev, PeerDiscovered):
        out.peer = str(ev.address)
        out.peer_discovered.CopyFrom(
            pb.PeerDiscovered(
                address=str(ev.address),
                peer_type=safe_text(ev.peer_type.description) if ev.peer_type else "",
                connection_points=list(ev.connection_points),
            )
        )
    else:
        out.other.CopyFrom(pb.Other(type=type(ev).__name__, text=out.text))
    return out


def _session_event(out: pb.Event, se: SessionEvent) -> None:
    ev = se.event
    sid = se.session_id
    if isinstance(ev, SessionUp):
        out.session_up.CopyFrom(
            pb.SessionUp(
                peer_type=safe_text(ev.peer_type.description),
                secured_medium=ev.peer_type.secured_medium,
                extensions=sorted(ev.extensions),
                heartbeat_ms=ev.heartbeat_ms,
                peer_heartbeat_ms=ev.peer_heartbeat_ms,
                session_metrics=metrics_to_pb(ev.session_metrics),
            )
        )
    elif isinstance(ev, SessionTerminated):
        down = pb.SessionDown(
            reason=safe_text(ev.reason),
            by_peer=ev.by_peer,
            destinations=[str(k) for k in ev.destinations],
        )
        if ev.status is not None:
            down.status = ev.status
            down.status_name = status_name(ev.status)
        out.session_down.CopyFrom(down)
    elif isinstance(ev, SessionUpdated):
        out.session_update.CopyFrom(
            pb.SessionUpdate(
                changed=metrics_to_pb(ev.metrics),
                session_metrics=metrics_to_pb(ev.session_metrics),
            )
        )
    elif isinstance(ev, DestinationUp):
        out.destination_up.CopyFrom(
            pb.DestinationUp(destination=destination_to_pb(sid, ev.info), announced=ev.announced)
        )
    elif isinstance(ev, DestinationUpdate):
        out.destination_update.CopyFrom(
            pb.DestinationUpdate(
                destination=destination_to_pb(sid, ev.info), changed=metrics_to_pb(ev.changed)
            )
        )
    elif isinstance(ev, DestinationDown):
        out.destination_down.CopyFrom(
            pb.DestinationDown(mac=format_mac(ev.mac), by_peer=ev.by_peer)
        )
    elif isinstance(ev, DestinationRefused):
        out.destination_refused.CopyFrom(
            pb.DestinationRefused(
                mac=format_mac(ev.mac),
                status=ev.status,
                status_name=status_name(ev.status),
                text=safe_text(ev.text),
            )
        )
    elif isinstance(ev, DestinationUpRequested):
        out.destination_up_requested.CopyFrom(
            pb.DestinationUpRequested(destination=destination_to_pb(sid, ev.info))
        )
    elif isinstance(ev, DestinationAnnounceRequested):
        out.destination_announce_requested.CopyFrom(
            pb.DestinationAnnounceRequested(
                mac=format_mac(ev.mac), addresses=_addresses([*ev.ipv4, *ev.ipv6])
            )
        )
    elif isinstance(ev, LinkCharacteristicsRequested):
        req = pb.LinkCharacteristicsRequested(mac=format_mac(ev.mac))
        _opt(req, cdrr=ev.cdrr, cdrt=ev.cdrt, latency=ev.latency)
        out.link_request.CopyFrom(req)
    elif isinstance(ev, LinkCharacteristicsResponse):
        out.link_response.CopyFrom(
            pb.LinkCharacteristicsResponse(
                mac=format_mac(ev.mac),
                status=ev.status,
                status_name=status_name(ev.status),
                metrics=metrics_to_pb(ev.metrics),
                text=safe_text(ev.text),
            )
        )
    elif isinstance(ev, LinkCharacteristicsTimeout):
        out.link_timeout.mac = format_mac(ev.mac)
    elif isinstance(ev, Inconsistency):
        out.error.CopyFrom(
            pb.Error(
                kind="inconsistency",
                message=safe_text(ev.reason),
                message_type=message_name(ev.message_type),
                mac=format_mac(ev.mac) if ev.mac is not None else "",
                key=str(ev.key) if ev.key is not None else "",
            )
        )
    elif isinstance(ev, ResponseStatus):
        out.error.CopyFrom(
            pb.Error(
                kind="response_status",
                message=safe_text(ev.text) or status_name(ev.status),
                status=ev.status,
                status_name=status_name(ev.status),
                message_type=message_name(ev.message_type),
                mac=format_mac(ev.mac) if ev.mac is not None else "",
                key=str(ev.key) if ev.key is not None else "",
            )
        )
    else:
        out.other.CopyFrom(pb.Other(type=type(ev).__name__, text=out.text))


def to_dict(msg: Message) -> dict[str, Any]:
    """A message as plain JSON-able values.

    Unlike ``json_format.MessageToDict``, 64-bit integers stay numbers,
    field names stay snake_case, enums become lower-case names without their
    prefix (``"router"``, ``"ok"``), unset ``optional`` fields are left out
    and every other field is present (with its zero value).
    """
    out: dict[str, Any] = {}
    fields: Any = msg.DESCRIPTOR.fields  # descriptor classes differ by backend
    for fd in fields:
        name: str = fd.name
        value = getattr(msg, name)
        if (fd.containing_oneof is not None or fd.has_presence) and not msg.HasField(name):
            continue
        if _is_map(fd):
            value_fd = fd.message_type.fields_by_name["value"]
            out[name] = {k: _scalar(value_fd, v) for k, v in sorted(value.items())}
        elif _is_repeated(fd):
            out[name] = [_scalar(fd, v) for v in value]
        else:
            out[name] = _scalar(fd, value)
    return out


def _is_repeated(fd: Any) -> bool:
    rep = getattr(fd, "is_repeated", None)  # protobuf >= 6; older ones have label
    if rep is None:
        return bool(fd.label == 3)  # LABEL_REPEATED
    return bool(rep)


def _is_map(fd: Any) -> bool:
    mt = fd.message_type
    return bool(_is_repeated(fd) and mt is not None and mt.GetOptions().map_entry)


def _scalar(fd: Any, value: Any) -> Any:
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return to_dict(value)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        known = fd.enum_type.values_by_number.get(value)
        name: str = known.name if known is not None else str(value)
        prefix = fd.enum_type.name.upper() + "_"
        return name[len(prefix) :].lower() if name.startswith(prefix) else name.lower()
    return value
