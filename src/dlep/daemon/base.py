"""Machinery shared by the router and modem daemons."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from ..ext import builtin_extension, load_entry_point_extensions
from ..ext.display import extension_names
from ..fsm import (
    AlreadyExistsError,
    DestinationDown,
    DestinationInfo,
    DestinationLimitReached,
    DestinationUpdate,
    DestKey,
    DlepError,
    Event,
    Extension,
    Inconsistency,
    InvalidArgumentError,
    Metrics,
    NotFoundError,
    Role,
    Session,
    SessionConfig,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
    State,
    mac_bytes,
)
from ..fsm.plugins import GaugeSample, GaugeSpec
from ..transport import SessionProtocol, TlsSettings, TlsSetupError
from ..wire import (
    DecodeError,
    PeerType,
    Registry,
    StatusCode,
    core_registry,
    decode_signal,
    message_name,
    signal_name,
    status_name,
)
from . import fmt
from .events import DaemonEvent, FilteredSubscription, SessionEvent, Subscription
from .limits import LogSummary

if TYPE_CHECKING:
    from ..config import ModemConfig, RouterConfig

    AnyConfig = RouterConfig | ModemConfig


class DaemonError(DlepError):
    """A daemon API call failed (the message says why).

    Plain ``DaemonError`` means "not possible now"; the subclasses also
    derive from their category in :mod:`dlep.fsm.errors`, so the management
    API maps them to status codes by type.
    """


class UnknownSessionError(DaemonError, NotFoundError):
    """No session with that id."""


class UnknownPeerError(DaemonError, NotFoundError):
    """No configured peer with that address (and port)."""


class DestinationNotFoundError(DaemonError, NotFoundError):
    """No destination with that key in the daemon's view."""


class DestinationExistsError(DaemonError, AlreadyExistsError):
    """A destination with that key already exists."""


class DaemonArgumentError(DaemonError, InvalidArgumentError):
    """An argument is malformed or would break an RFC rule (``field`` names it)."""


C = TypeVar("C")
T = TypeVar("T")

#: Events logged at debug, not info: a destination's (or the session's)
#: metrics moving, every second per destination on a busy radio.
_METRIC_UPDATES: frozenset[type] = frozenset({DestinationUpdate, SessionUpdated})


class BuilderBase(Generic[C]):
    """The fluent set-up both daemon builders share."""

    def __init__(self) -> None:
        self._cfg: C | None = None
        self._exts: list[Extension] = []
        self._tls: TlsSettings | None = None
        self._ctx: ssl.SSLContext | None = None
        self._use_tls: bool | None = None

    def config(self, cfg: C) -> Self:
        """Use this configuration (see :mod:`dlep.config`)."""
        self._cfg = cfg
        return self

    def register_extension(self, ext: Extension) -> Self:
        """Offer ``ext`` in session initialisation and decode its items."""
        self._exts.append(ext)
        return self

    def with_tls(self, settings: TlsSettings) -> Self:
        """Certificates and policy for TLS sessions (overrides ``[tls]``)."""
        self._tls = settings
        self._use_tls = True
        return self

    def with_ssl_context(self, ctx: ssl.SSLContext) -> Self:
        """Use a ready-made ``SSLContext`` (client for a router, server for a modem)."""
        self._ctx = ctx
        self._use_tls = True
        return self

    def no_tls(self) -> Self:
        """Plain TCP whatever the configuration says (``--no-tls``)."""
        self._use_tls = False
        return self

    def _registry(self) -> Registry:
        registry = core_registry()
        for ext in self._exts:
            ext.register(registry)
        return registry

    def _common(self) -> dict[str, Any]:
        return {
            "registry": self._registry(),
            "extensions": [e.code for e in self._exts],
            "plugins": list(self._exts),
            "tls": self._tls,
            "use_tls": self._use_tls,
            "ssl_context": self._ctx,
        }


#: Peers whose ended sessions are counted (session_flaps, SessionInfo.flaps).
MAX_FLAP_PEERS = 4096
#: Destinations (peer, key) whose Destination Downs are counted
#: (destination_flaps).
MAX_FLAP_DESTINATIONS = 4096


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Snapshot of one session for the API and tools."""

    id: str
    peer: str
    role: str
    state: str
    tls: bool
    peer_type: str
    secured_medium: bool
    extensions: tuple[int, ...]
    heartbeat_ms: int
    peer_heartbeat_ms: int | None
    started_at: float
    up_since: float | None
    destinations: int
    session_metrics: Metrics
    tx: dict[str, int] = field(default_factory=dict)
    rx: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    #: When the peer last sent a message (Unix time; None if unknown).
    last_heard: float | None = None
    #: Sessions with this peer (:attr:`peer_name`) that were up and ended
    #: before this one, since the daemon started: how often the link flapped.
    flaps: int = 0
    #: The peer's stable name, for metrics labels: the modem's ``address:port``
    #: at a router (a static peer's as configured), the router's address
    #: alone at a modem (its source port is ephemeral).
    peer_name: str = ""
    #: The peer's own addresses and subnets, as it declared them (Session
    #: Initialization and Session Updates; RFC 8175 §13.8-§13.11).
    peer_ipv4: tuple[str, ...] = ()
    peer_ipv6: tuple[str, ...] = ()
    peer_ipv4_subnets: tuple[str, ...] = ()
    peer_ipv6_subnets: tuple[str, ...] = ()
    #: Octets queued for the peer now, and the most ever queued.
    output_queued: int = 0
    output_peak: int = 0
    #: How often the peer was no longer read because it did not read the
    #: answers to its requests (``network.write_high_water_kib``), and
    #: whether it is not read now.
    backpressure_pauses: int = 0
    backpressure_now: bool = False


class _Conn:
    """Book-keeping for one live connection."""

    __slots__ = ("id", "name", "origin", "peer", "proto", "started", "tls", "up_since")

    def __init__(
        self,
        sid: str,
        peer: str,
        proto: SessionProtocol,
        tls: bool,
        origin: Any,
        name: str | None = None,
    ) -> None:
        self.id = sid
        self.peer = peer
        self.name = peer if name is None else name
        self.proto = proto
        self.tls = tls
        self.origin = origin
        self.started = time.time()
        self.up_since: float | None = None


class DaemonBase:
    """Owns sessions, subscribers and shutdown for one role."""

    role: Role
    log: logging.Logger

    def __init__(
        self,
        config: AnyConfig,
        *,
        registry: Registry | None = None,
        extensions: Iterable[int] = (),
        tls: TlsSettings | None = None,
        use_tls: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        plugins: Iterable[Extension] = (),
    ) -> None:
        self.cfg = config
        self._ssl_ctx = ssl_context
        self._plugins = tuple(plugins)
        self.registry = registry or core_registry()
        self._plugins = self._plugins + self._configured_extensions()
        self._extra_extensions = tuple(extensions)
        self.tls_settings = tls if tls is not None else tls_settings(config)
        self.use_tls = bool(config.network.use_tls) if use_tls is None else use_tls
        self._subs: list[Subscription] = []
        self._ended_subs_dropped = 0
        self._ended_subs_coalesced = 0
        self._conns: dict[str, _Conn] = {}
        self._by_proto: dict[int, _Conn] = {}
        self._next_id = 1
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started_at = time.time()
        #: Sessions that ended with status 132 (Timed Out) after coming up,
        #: i.e. heartbeat timeouts: "local" = we missed the peer's, "peer" = it missed ours.
        self.heartbeat_timeouts: dict[str, int] = {"local": 0, "peer": 0}
        #: Sessions ended, by termination status name ("NONE": the connection
        #: closed without one); protocol errors of ended sessions, by status name.
        self.sessions_ended: dict[str, int] = {}
        self.ended_errors: dict[str, int] = {}
        #: Sessions that were In-Session and went down (for any reason but
        #: this daemon's own shutdown), by the peer's stable name.
        self.session_flaps: dict[str, int] = {}
        #: Destination Downs in the sessions with a peer (by its stable name,
        #: :attr:`SessionInfo.peer_name`), by destination key, since the
        #: start: how often a destination went away while the session
        #: stayed up. At most MAX_FLAP_DESTINATIONS keys: a peer cycling
        #: through MACs must not make it grow without bound.
        self._dest_flaps: dict[tuple[str, DestKey], int] = {}
        #: Connection attempts that failed before a session could start, by
        #: peer (a router's static peer as configured, a discovered modem
        #: by its address).
        self.connect_failures: dict[str, int] = {}
        #: Modem enforcing GTSM: TCP segments the kernel dropped for a TTL
        #: below 255 since it started (namespace-wide, see
        #: :func:`dlep.transport.min_ttl_drops`); None: not watched.
        self.gtsm_drops: int | None = None
        #: What a bound of docs/hardening.md turned away, by its config key
        #: (a connection, a Peer Offer, a Destination Up), since the start.
        self.bound_refusals: dict[str, int] = {}
        self._dest_limit_log = LogSummary(self.log, "Destination Up refused")
        self._pre_session_log = LogSummary(
            self.log, "connection ended before Session Initialization", level=logging.INFO
        )

    def _count_refusal(self, bound: str) -> None:
        self.bound_refusals[bound] = self.bound_refusals.get(bound, 0) + 1

    def count_bound_refusal(self, bound: str) -> None:
        """Count a refusal by a bound kept outside the daemon (the management
        API's, e.g. ``max_watch_streams``) in :attr:`bound_refusals`, with
        the daemon's own."""
        self._count_refusal(bound)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the daemon runs on (None before it started)."""
        return self._loop

    def _setup_tls(self, make: Callable[[TlsSettings], ssl.SSLContext]) -> None:
        """Build the TLS context from the settings unless one was given."""
        if self.use_tls and self._ssl_ctx is None:
            try:
                self._ssl_ctx = make(self.tls_settings)
            except TlsSetupError as exc:
                raise DaemonError(str(exc)) from None

    def _configured_extensions(self) -> tuple[Extension, ...]:
        """Instantiate the extensions the configuration offers: built-ins by
        code, third-party ones by ``dlep.extensions`` entry-point name
        (``"plugin:NAME"`` entries, :attr:`RouterSection.plugins`). An
        extension registered with the builder takes precedence."""
        section = getattr(self.cfg, "router", None) or getattr(self.cfg, "modem", None)
        codes: tuple[int, ...] = tuple(getattr(section, "extensions", ()))
        names: tuple[str, ...] = tuple(getattr(section, "plugins", ()))
        have = {p.code for p in self._plugins}
        out: list[Extension] = []
        if names:
            try:
                loaded = load_entry_point_extensions(names)
            except Exception as exc:  # import errors of third-party code included
                raise DaemonError(f"extensions: plug-in {', '.join(names)}: {exc}") from exc
            for ext in loaded:
                if ext.code in have:
                    continue
                ext.register(self.registry)
                out.append(ext)
                have.add(ext.code)
        for code in codes:
            if code in have:
                continue
            builtin = builtin_extension(code)
            if builtin is None:
                raise DaemonError(
                    f"extensions: {code} is not a built-in extension; name a third-party one "
                    "as plugin:NAME (its dlep.extensions entry point) or register it with the "
                    "builder's register_extension()"
                )
            builtin.register(self.registry)
            out.append(builtin)
            have.add(code)
        return tuple(out)

    # -- subscriptions ------------------------------------------------------

    def subscribe(
        self,
        maxsize: int = 4096,
        *,
        coalesce_at: int | None = None,
        match: Callable[[DaemonEvent], bool] | None = None,
    ) -> Subscription:
        """A new bounded event stream of at most ``maxsize`` waiting events;
        from ``coalesce_at`` waiting events on (default: half of ``maxsize``)
        updates of one destination merge. See :class:`Subscription`. With
        ``match``, only the events it accepts are queued (to wait for one
        answer however busy the daemon is: :class:`FilteredSubscription`)."""
        sub = (
            Subscription(maxsize, coalesce_at=coalesce_at)
            if match is None
            else FilteredSubscription(maxsize, match, coalesce_at=coalesce_at)
        )
        if self._closing:
            sub.close()
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        if sub in self._subs:
            self._subs.remove(sub)
            self._ended_subs_dropped += sub.dropped_total
            self._ended_subs_coalesced += sub.coalesced_total
        sub.close()

    def subscriber_events(self) -> dict[str, int]:
        """Events subscribers did not get one by one, since the daemon started
        (every subscription, ended ones included): ``dropped`` (lost to a full
        queue) and ``coalesced`` (merged into a newer update of the same
        destination)."""
        dropped, coalesced = self._ended_subs_dropped, self._ended_subs_coalesced
        for sub in self._subs:
            dropped += sub.dropped_total
            coalesced += sub.coalesced_total
        return {"dropped": dropped, "coalesced": coalesced}

    def _publish(self, event: DaemonEvent) -> None:
        for sub in self._subs:
            sub.offer(event)

    # -- sessions -----------------------------------------------------------

    def _session_config(
        self, extensions: Iterable[int], *, init_timeout_ms: int | None = None, **kw: Any
    ) -> SessionConfig:
        t = self.cfg.timers
        if init_timeout_ms is None:
            init_timeout_ms = t.init_timeout_ms
        return SessionConfig(
            heartbeat_interval_ms=t.heartbeat_interval_ms,
            extensions=tuple(sorted(set(extensions) | set(self._extra_extensions))),
            registry=self.registry,
            plugins=self._plugins,
            missed_heartbeats=t.missed_heartbeats,
            init_timeout_ms=init_timeout_ms,
            max_peer_heartbeat_interval_ms=t.max_peer_heartbeat_interval_ms,
            link_characteristics_timeout_ms=t.link_characteristics_timeout_ms,
            **kw,
        )

    def _new_protocol(
        self, session: Session, peer: str, tls: bool, origin: Any, name: str | None = None
    ) -> SessionProtocol:
        sid = str(self._next_id)
        self._next_id += 1
        proto = SessionProtocol(
            session,
            self._on_engine_events,
            self._on_closed,
            max_write_buffer=self.cfg.network.max_write_buffer_kib * 1024,
            write_high_water=self.cfg.network.write_high_water_kib * 1024,
            trace=self._trace_message,
            trace_log=self.log,
        )
        conn = _Conn(sid, peer, proto, tls, origin, name)
        self._conns[sid] = conn
        self._by_proto[id(proto)] = conn
        return proto

    def _conn_of(self, proto: SessionProtocol) -> _Conn | None:
        return self._by_proto.get(id(proto))

    def _forget_protocol(self, proto: SessionProtocol) -> None:
        """A protocol made for a connection that never came up."""
        conn = self._by_proto.pop(id(proto), None)
        if conn is not None:
            self._conns.pop(conn.id, None)

    def _on_engine_events(self, proto: SessionProtocol, events: list[Event]) -> None:
        conn = self._conn_of(proto)
        if conn is None:
            return
        # Looked up once per batch: at info, state changes are logged; the
        # metric updates that come every second per destination only at debug.
        log_on = self.log.isEnabledFor(logging.INFO)
        debug_on = log_on and self.log.isEnabledFor(logging.DEBUG)
        updates_on = debug_on or (log_on and self.cfg.logging.metric_updates)
        for ev in events:
            if isinstance(ev, SessionUp):
                conn.up_since = time.time()
            elif isinstance(ev, SessionTerminated):
                key = status_name(ev.status) if ev.status is not None else "NONE"
                self.sessions_ended[key] = self.sessions_ended.get(key, 0) + 1
                if ev.status == StatusCode.TIMED_OUT and conn.up_since is not None:
                    # by_peer: the peer missed our heartbeats; else we missed its.
                    self.heartbeat_timeouts["peer" if ev.by_peer else "local"] += 1
            if isinstance(ev, DestinationDown):
                self._count_destination_flap(conn.name, ev.key)
            elif isinstance(ev, DestinationLimitReached):
                # A peer past the limit may send thousands: counted, and
                # logged once per interval rather than once each.
                self._count_refusal("max_destinations_per_session")
                if self._loop is not None:
                    self._dest_limit_log.note(
                        f"session {conn.id} holds its limit of {ev.limit} destinations",
                        conn.peer,
                        self._loop,
                    )
            elif (
                isinstance(ev, SessionTerminated)
                and conn.up_since is None
                and self.role is Role.MODEM
                and self._loop is not None
            ):
                # A connection that never completed Session Initialization:
                # a client churning connections must not cost a line each.
                why = status_name(ev.status) if ev.status is not None else "closed by peer"
                self._pre_session_log.note(why, conn.peer.rsplit(":", 1)[0], self._loop)
            elif log_on and (updates_on or type(ev) not in _METRIC_UPDATES):
                self._log_event(conn, ev)
            try:
                self._handle_event(conn, ev)
            except Exception:
                # A bug of ours in a reaction must not cost the peer its
                # session, nor the subscribers the events after this one.
                self.log.exception("session %s: handling %s failed", conn.id, type(ev).__name__)
            if self._subs:
                self._publish(SessionEvent(conn.id, conn.peer, ev))

    def _handle_event(self, conn: _Conn, ev: Event) -> None:
        """Role-specific reaction to an engine event (override)."""

    def _count_destination_flap(self, peer: str, key: DestKey) -> None:
        flaps = self._dest_flaps
        at = (peer, key)
        n = flaps.get(at)
        if n is not None:
            flaps[at] = n + 1
        elif len(flaps) < MAX_FLAP_DESTINATIONS:
            flaps[at] = 1

    def _on_closed(self, proto: SessionProtocol) -> None:
        conn = self._by_proto.pop(id(proto), None)
        if conn is None:
            return
        self._conns.pop(conn.id, None)
        for code, n in conn.proto.session.error_counts.items():
            name = status_name(code)
            self.ended_errors[name] = self.ended_errors.get(name, 0) + n
        flaps = self.session_flaps
        # Bounded: a modem open to many addresses must not grow without end.
        if (
            conn.up_since is not None
            and not self._closing
            and (conn.name in flaps or len(flaps) < MAX_FLAP_PEERS)
        ):
            flaps[conn.name] = flaps.get(conn.name, 0) + 1
        self._session_closed(conn)

    def _session_closed(self, conn: _Conn) -> None:
        """Role-specific clean-up after a connection ended (override)."""

    def _call(self, conn: _Conn, fn: Callable[[float], T]) -> T:
        """Run an engine API call at the event loop's current time and push
        its output out. ``fn`` gets ``now`` (the engine never keeps a time)."""
        try:
            return fn(self._time())
        finally:
            conn.proto.flush()

    def _time(self) -> float:
        """The clock the engines run on: the event loop's monotonic time."""
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _wall_offset(self) -> float | None:
        """What turns the engines' times into Unix time (added); None before
        the daemon runs."""
        return time.time() - self._time() if self._loop is not None else None

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("task %s failed: %r", task.get_name(), task.exception())

    def _log_event(self, conn: _Conn, ev: Event) -> None:
        if isinstance(ev, Inconsistency):
            level = logging.WARNING
        elif type(ev) in _METRIC_UPDATES and not self.cfg.logging.metric_updates:
            level = logging.DEBUG
        else:
            level = logging.INFO
        self.log.log(
            level,
            "session %s (%s) %s",
            conn.id,
            conn.peer,
            fmt.describe(ev, self.extension_names),
            extra=fmt.log_fields(ev, session=conn.id, peer=conn.peer),
        )

    def _trace_message(self, proto: SessionProtocol, kind: str, raw: bytes) -> None:
        """``--log-level debug``: one decoded line per message sent or received."""
        conn = self._conn_of(proto)
        sid, peer = (conn.id, conn.peer) if conn is not None else ("-", str(proto.peername))
        try:
            msg = proto.session.decode(raw)
        except (DecodeError, ValueError) as exc:  # a trace line must never fail
            text = f"{len(raw)} octets, undecodable ({exc})"
            fields: dict[str, Any] = {}
        else:
            text = fmt.message(msg, self.extension_names)
            fields = fmt.message_fields(msg)
        self.log.debug(
            "session %s (%s) %s %s",
            sid,
            peer,
            kind,
            text,
            extra={"session": sid, "peer": peer, "direction": kind, **fields},
        )

    def _trace_signal(
        self, kind: str, data: bytes, host: object, port: int, ttl: int | None = None
    ) -> None:
        """``--log-level debug``: one decoded line per discovery signal sent
        (``tx``, to ``host``: the group or a router) or received (``rx``,
        from ``host``, with its TTL), as :meth:`_trace_message` does the
        session's messages. Callers check DEBUG first: nothing is decoded
        otherwise."""
        peer = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        try:
            sig = decode_signal(data, self.registry)
        except (DecodeError, ValueError) as exc:  # a trace line must never fail
            text = f"{len(data)} octets, undecodable ({exc})"
            fields: dict[str, Any] = {}
        else:
            text = fmt.signal(sig, self.extension_names)
            fields = {"signal_type": signal_name(sig.type)}
        if ttl is not None:
            text += f" (ttl {ttl})"
            fields["ttl"] = ttl
        self.log.debug(
            "discovery (%s) %s %s",
            peer,
            kind,
            text,
            extra={"session": "discovery", "peer": peer, "direction": kind, **fields},
        )

    @property
    def extension_names(self) -> dict[int, str]:
        """Names of the extensions this daemon offers, by code."""
        return extension_names(self._plugins)

    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The extensions this daemon offers (registered and configured)."""
        return self._plugins

    # -- snapshots ------------------------------------------------------------

    def sessions(self) -> list[SessionInfo]:
        """Snapshot of every live session."""
        out: list[SessionInfo] = []
        # The engines' clock is the loop's monotonic one: convert to Unix time.
        wall = time.time() - self._time() if self._loop is not None else None
        for conn in self._conns.values():
            s = conn.proto.session
            pt = s.peer_type or PeerType("")
            l3 = s.peer_addresses
            out.append(
                SessionInfo(
                    conn.id,
                    conn.peer,
                    s.role.value,
                    s.state.value,
                    conn.tls,
                    pt.description,
                    pt.secured_medium,
                    tuple(sorted(s.extensions)),
                    s.config.heartbeat_interval_ms,
                    s.peer_heartbeat_ms,
                    conn.started,
                    conn.up_since,
                    s.destination_count if s.state is State.IN_SESSION else 0,
                    s.session_metrics,
                    {message_name(k): v for k, v in s.tx_counts.items()},
                    {message_name(k): v for k, v in s.rx_counts.items()},
                    {status_name(k): v for k, v in s.error_counts.items()},
                    last_heard=s.last_heard + wall if wall is not None else None,
                    flaps=self.session_flaps.get(conn.name, 0),
                    peer_name=conn.name,
                    peer_ipv4=tuple(sorted(str(a) for a in l3.ipv4)),
                    peer_ipv6=tuple(sorted(str(a) for a in l3.ipv6)),
                    peer_ipv4_subnets=tuple(sorted(str(a) for a in l3.ipv4_subnets)),
                    peer_ipv6_subnets=tuple(sorted(str(a) for a in l3.ipv6_subnets)),
                    output_queued=conn.proto.output_queued,
                    output_peak=conn.proto.write_buffer_peak,
                    backpressure_pauses=conn.proto.backpressure_pauses,
                    backpressure_now=conn.proto.backpressure,
                )
            )
        return out

    def extension_gauges(self) -> tuple[list[GaugeSpec], list[tuple[str, str, GaugeSample]]]:
        """The gauges the offered extensions export, and their values per
        live session (``(session_id, peer name, sample)``; see
        :attr:`SessionInfo.peer_name`), for the metrics."""
        specs: dict[str, GaugeSpec] = {}
        for ext in self._plugins:
            for spec in ext.gauges:
                specs.setdefault(spec.name, spec)
        samples = [
            (conn.id, conn.name, g)
            for conn in self._conns.values()
            for g in conn.proto.session.plugins.gauge_samples(conn.proto.session)
        ]
        return list(specs.values()), samples

    def destinations(self, session_id: str | None = None) -> list[tuple[str, DestinationInfo]]:
        """Destinations per session: ``[(session_id, info), ...]``; their
        ``up_since`` and ``last_update`` in Unix time."""
        out: list[tuple[str, DestinationInfo]] = []
        wall = self._wall_offset()
        for conn in self._conns.values():
            if session_id is not None and conn.id != session_id:
                continue
            infos = conn.proto.session.destinations.values()
            if wall is None:
                out.extend((conn.id, info) for info in infos)
            else:
                out.extend((conn.id, info.on_clock(wall)) for info in infos)
        return out

    def session_states(self) -> dict[str, str]:
        """Every live session's state by id (``in-session``, ...): what
        :meth:`sessions` says of them, without counting their destinations."""
        return {conn.id: conn.proto.session.state.value for conn in self._conns.values()}

    def destination_keys(
        self, session_id: str | None = None
    ) -> list[tuple[str, list[bytes | DestKey]]]:
        """The keys of every session's destinations, as :meth:`destinations`
        lists them but without a snapshot each (a paged listing of a large
        table orders the keys and snapshots one page): ``[(session_id,
        keys), ...]``, a key being the MAC (bytes) of a destination without
        identity items, else its :class:`DestKey`."""
        return [
            (conn.id, conn.proto.session.destination_keys())
            for conn in self._conns.values()
            if session_id is None or conn.id == session_id
        ]

    def destination(self, session_id: str, key: bytes | DestKey) -> DestinationInfo | None:
        """The snapshot of one destination of a session (times in Unix
        time), or None if the session or the destination is not there."""
        conn = self._conns.get(session_id)
        if conn is None:
            return None
        info = conn.proto.session.destination(key)
        wall = self._wall_offset()
        return info if info is None or wall is None else info.on_clock(wall)

    def destination_flaps(self, session_id: str, key: DestKey) -> int:
        """How often destination ``key`` went down (Destination Down, either
        side's) in sessions with the peer of ``session_id``, since the
        daemon started; 0 if never, or if that session is gone. Counted
        per peer, not per session: a destination that goes down in one
        session and comes back in the next (same peer) has flapped once.
        Sessions that end take their destinations without a Destination
        Down: those count in :attr:`session_flaps`, not here."""
        conn = self._conns.get(session_id)
        if conn is None or not self._dest_flaps:
            return 0
        return self._dest_flaps.get((conn.name, key), 0)

    async def drain(self) -> None:
        """Wait until every session's peer has read all but a little of what
        was sent to it (returns at once when none is behind).

        For an application that produces updates faster than routers read
        them (a radio's burst, a replayed trace): ``await daemon.drain()``
        between batches keeps memory flat. Without it the daemon queues
        what a peer has not read, up to ``network.max_write_buffer_kib``
        (64 MiB) per session, and then drops that session (the peer is not
        reading)."""
        for conn in list(self._conns.values()):
            await conn.proto.drain()

    def _get_conn(self, session_id: str | None) -> _Conn:
        if session_id is None:
            live = [c for c in self._conns.values() if c.proto.session.state is State.IN_SESSION]
            if len(live) == 1:
                return live[0]
            if not live:
                raise DaemonError("no session is up")
            raise DaemonError(
                f"{len(live)} sessions are up; say which: "
                + ", ".join(f"{c.id} ({c.peer})" for c in live)
            )
        conn = self._conns.get(str(session_id))
        if conn is None:
            raise UnknownSessionError(f"no session {session_id}")
        return conn

    # -- shutdown -------------------------------------------------------------

    async def shutdown(self) -> None:
        """End every session with Session Termination (bounded wait) and stop
        (each role's daemon defines it)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Shut down when the ``async with`` block is left, also by an
        exception or a cancellation: Ctrl-C under :func:`asyncio.run` cancels
        the main task, and the peers must still get Session Termination
        rather than a reset connection. The exception goes on."""
        await self.shutdown()

    async def terminate_session(
        self, session_id: str, status: int = StatusCode.SHUTTING_DOWN, text: str = ""
    ) -> None:
        """End one session with Session Termination (waits for it, bounded)."""
        conn = self._get_conn(session_id)
        session = conn.proto.session
        try:
            self._call(conn, lambda now: session.terminate(status, text, now=now))
        except InvalidArgumentError as exc:
            raise DaemonArgumentError(str(exc), exc.field) from None
        await self._wait_closed([conn])

    async def _wait_closed(self, conns: list[_Conn]) -> None:
        timeout = self.cfg.timers.shutdown_timeout_ms / 1000.0
        waits = [c.proto.closed.wait() for c in conns]
        if not waits:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            for c in conns:
                if not c.proto.closed.is_set():
                    self.log.warning(
                        "session %s (%s): no Session Termination Response within %.1f s; closing",
                        c.id,
                        c.peer,
                        timeout,
                    )
                    c.proto.abort()

    async def _shutdown_sessions(self) -> None:
        conns = list(self._conns.values())
        for conn in conns:
            s = conn.proto.session
            if s.state is State.IN_SESSION or s.state is State.INITIALIZING:
                self._call(
                    conn,
                    lambda now, s=s: s.terminate(  # type: ignore[misc]
                        StatusCode.SHUTTING_DOWN, "shutting down", now=now
                    ),
                )
        await self._wait_closed(conns)

    async def _stop_tasks(self) -> None:
        self._dest_limit_log.close()
        self._pre_session_log.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for sub in list(self._subs):
            sub.close()


def _bind_error(exc: OSError, port: int) -> str:
    """``exc`` of a bind as a line that says what to do when the cause is a
    privileged port (DLEP's 854) without the capability to bind it."""
    text = str(exc.strerror or exc)
    if exc.errno == errno.EACCES and 0 < port < 1024:
        text += (
            f" (port {port} is privileged: the daemon needs CAP_NET_BIND_SERVICE; run it "
            "under systemd with AmbientCapabilities=CAP_NET_BIND_SERVICE (contrib/systemd), "
            "or as root, or use a port of 1024 or above)"
        )
    return text


def _mac_key(mac: bytes | str | DestKey) -> bytes:
    """``mac`` as 6 or 8 octets; a malformed address is a :class:`DaemonArgumentError`."""
    if isinstance(mac, DestKey):
        return mac.mac
    if type(mac) is bytes and (len(mac) == 6 or len(mac) == 8):
        return mac  # the common case, without the cost of the checks below
    try:
        return mac_bytes(mac)
    except InvalidArgumentError as exc:
        raise DaemonArgumentError(str(exc), "mac") from None


def tls_settings(config: AnyConfig) -> TlsSettings:
    """The TLS settings of a daemon configuration's ``[tls]`` table (what
    the daemon loads its certificates with; ``--check`` loads them too)."""
    t = config.tls
    return TlsSettings(
        cert=Path(t.cert) if t.cert else None,
        key=Path(t.key) if t.key else None,
        ca=Path(t.ca) if t.ca else None,
        verify_peer=t.verify_peer,
        require_client_cert=t.require_client_cert,
        server_name=t.server_name,
    )
