"""The modem side: listen for routers, answer discovery, report destinations."""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Self

from ..ext.display import extension_name
from ..ext.multihop import HopControl
from ..ext.profiles import profile_by_name
from ..ext.values import value_key
from ..fsm import (
    DestinationAnnounceRequested,
    DestKey,
    LinkCharacteristicsRequested,
    Metrics,
    ModemDiscovery,
    Role,
    Session,
    SessionClosedError,
    SessionError,
    SessionUp,
    State,
)
from ..transport import (
    DiscoverySocket,
    describe_tls_error,
    interface_addresses,
    min_ttl_drops,
    server_context,
    set_ttl_255,
)
from ..wire import (
    DataItem,
    Ipv4ConnectionPoint,
    Ipv6ConnectionPoint,
    PeerType,
    StatusCode,
)
from .base import (
    BuilderBase,
    DaemonArgumentError,
    DaemonBase,
    DaemonError,
    DestinationExistsError,
    _bind_error,
    _Conn,
    _mac_key,
)
from .changes import (
    NOT_APPLIED,
    ChangeOp,
    ChangeResult,
    DestinationChange,
    check_offered,
    parse_change,
    record_id,
)
from .events import ConnectionRefused, SessionConnected
from .limits import LogSummary, RateLimiter
from .modem_table import ModemDest, ModemTable
from .repeats import Repeats

if TYPE_CHECKING:
    from ..config import DestinationConfig, ModemConfig, SimulateConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Seconds between two reads of the kernel's GTSM drop counter while the
#: modem enforces GTSM (one small /proc read each).
GTSM_WATCH_INTERVAL: Final = 5.0
#: Seconds without new drops after which the condition counts as over.
GTSM_QUIET: Final = 60.0
#: A Peer Discovery at most this old names its router in the GTSM warning
#: (routers repeat it every 60 s by default, RFC 8175 §7.1).
GTSM_RECENT_SIGNAL: Final = 180.0
#: The first octets of a Peer Discovery: the prefix and the signal type.
_PEER_DISCOVERY_HEAD: Final = b"DLEP\x00\x01"


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """A router's Link Characteristics Request, as given to the handler.

    ``extra`` holds the items of negotiated extensions the request carried:
    with an RFC 8629 Hop Control among them, the response must carry an
    updated Hop Count (put it in :attr:`LinkDecision.extra`; if it is
    missing, the destination's current one is sent).
    """

    session_id: str
    mac: bytes
    cdrr: int | None
    cdrt: int | None
    latency: int | None
    current: Metrics
    extra: tuple[DataItem, ...] = ()
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()

    @property
    def hop_control(self) -> HopControl | None:
        """The RFC 8629 Hop Control the request carried, if any."""
        return next((i for i in self.extra if isinstance(i, HopControl)), None)


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """The handler's answer: status and the characteristics after the change."""

    status: int = StatusCode.SUCCESS
    metrics: Metrics = field(default_factory=Metrics)
    text: str = ""
    #: Items of negotiated extensions for the response (e.g. RFC 8629 Hop Count).
    extra: tuple[DataItem, ...] = ()


LinkHandler = Callable[[LinkRequest], "LinkDecision | Awaitable[LinkDecision]"]


def grant_what_is_possible(req: LinkRequest) -> LinkDecision:
    """Default Link Characteristics policy.

    Grant the requested current data rates up to the maximum data rates and
    the requested latency as asked; if a rate had to be capped the answer is
    'Request Denied' (RFC 8175 §12.19) carrying what the link now does.

    A Hop Control (RFC 8629 §3.2) cannot change anything on a modem without
    a radio behind it: Reset is granted (there is nothing to reset), other
    actions are answered 'Request Denied'; either way the response carries
    the destination's current Hop Count, as the RFC requires.
    """
    cur = req.current
    capped = False
    cdrr, cdrt = cur.cdrr, cur.cdrt
    if req.cdrr is not None:
        cdrr = req.cdrr if cur.mdrr is None else min(req.cdrr, cur.mdrr)
        capped |= cdrr != req.cdrr
    if req.cdrt is not None:
        cdrt = req.cdrt if cur.mdrt is None else min(req.cdrt, cur.mdrt)
        capped |= cdrt != req.cdrt
    latency = req.latency if req.latency is not None else cur.latency
    status = StatusCode.REQUEST_DENIED if capped else StatusCode.SUCCESS
    text = "rate capped at the maximum data rate" if capped else ""
    hop = req.hop_control
    if hop is not None and hop.action != 0:  # 0: Reset
        status = StatusCode.REQUEST_DENIED
        text = f"Hop Control {hop.name}: this modem cannot change its hops"
    return LinkDecision(status, Metrics(cdrr=cdrr, cdrt=cdrt, latency=latency), text)


class ModemDaemonBuilder(BuilderBase["ModemConfig"]):
    """Fluent construction: ``await ModemDaemon.builder().config(cfg).spawn()``."""

    def __init__(self) -> None:
        super().__init__()
        self._link_handler: LinkHandler | None = None

    def link_characteristics_handler(self, handler: LinkHandler) -> Self:
        """Decide Link Characteristics Requests (default:
        :func:`grant_what_is_possible`); may be sync or async."""
        self._link_handler = handler
        return self

    async def spawn(self) -> ModemDaemon:
        """Start listening (and answering discovery)."""
        if self._cfg is None:
            from ..config import ModemConfig

            self._cfg = ModemConfig()
        d = ModemDaemon(self._cfg, link_handler=self._link_handler, **self._common())
        await d.start()
        return d


class ModemDaemon(DaemonBase):
    """A DLEP modem serving one or more routers (``modem.max_sessions``).

    The daemon keeps the application's destination table: every router
    session is told about every destination, including sessions that come up
    later. The table only ever holds what can be sent: a call that would
    break one of the RFC's rules is refused with an error naming the field.
    """

    role = Role.MODEM
    log = logging.getLogger("dlep.modem")

    def __init__(
        self, config: ModemConfig, *, link_handler: LinkHandler | None = None, **common: Any
    ) -> None:
        """``common``: registry, extensions, tls, use_tls, ssl_context and
        plugins, as :class:`DaemonBase` takes them (the builder fills them)."""
        super().__init__(config, **common)
        self.mcfg = config
        self._link_handler: LinkHandler = link_handler or grant_what_is_possible
        self._servers: list[asyncio.AbstractServer] = []
        self._disc_socks: list[DiscoverySocket] = []
        self.discovery: ModemDiscovery | None = None
        #: The application's destinations and the session-wide metrics.
        self._table = ModemTable(config.modem.session_metrics.to_metrics())
        # Destinations a router cannot take fail on every update: once, then summaries.
        self._repeats = Repeats(self.log)
        self.listening: list[tuple[str, int]] = []
        #: The destinations of the configuration as last applied, by key: a
        #: reload changes only what differs (set_configured_destinations).
        self._configured: dict[DestKey, DestinationConfig] = {}
        self._sim = config.modem.simulate
        self._sim_task: asyncio.Task[Any] | None = None
        #: Destinations the simulator took down, and when they come back.
        self._sim_down: dict[DestKey, float] = {}
        self._refusal_log = LogSummary(self.log, "refusing connection")
        self._tls_log = LogSummary(self.log, "TLS handshake failed")
        #: TLS handshakes in progress, by source address (pending connections).
        self._handshaking: dict[str, int] = {}
        # Peer Offers: a token bucket per source, and one log line per
        # interval however many Peer Discovery signals arrive.
        self._offer_limit = RateLimiter(
            config.modem.discovery_offer_rate, config.modem.discovery_offer_burst
        )
        self._discovery_log = LogSummary(self.log, "Peer Discovery", level=logging.INFO)
        #: The simulator moves the configured destinations, except those set
        #: by hand: any library (and so API) call that adds, changes or drops
        #: one pins it here, so the simulator never overwrites an operator's
        #: values. :meth:`release_destination` unpins it, or hands over a
        #: destination added through the API (``_released``).
        self._pinned: set[DestKey] = set()
        self._released: set[DestKey] = set()
        self._applying_config = False
        #: The metrics each simulated destination's random walk centres on.
        self._sim_base: dict[DestKey, Metrics] = {}
        #: The last Peer Discovery received: (source, its TTL, loop time),
        #: to name a router whose TCP the kernel drops (GTSM).
        self._last_discovery: tuple[IPAddress, int | None, float] | None = None

    @classmethod
    def builder(cls) -> ModemDaemonBuilder:
        """Start building a modem daemon."""
        return ModemDaemonBuilder()

    @property
    def session_metrics(self) -> Metrics:
        """The session-wide metrics: what a Session Initialization Response
        declares, and the base every destination's metrics are merged on."""
        return self._table.session_metrics

    # -- start -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, answer discovery and start the simulator (``spawn()`` calls this)."""
        self._loop = asyncio.get_running_loop()
        self._setup_tls(server_context)
        for i, d in enumerate(self.mcfg.modem.destinations):
            try:
                self._table.add(DestKey(d.mac_bytes()), d.metrics.to_metrics(), d.addresses(), [])
            except DaemonError as exc:
                raise DaemonError(f"modem.destinations[{i}]: {exc}") from None
            self._configured[DestKey(d.mac_bytes())] = d
        await self._listen()
        if self.cfg.network.gtsm_enforce:
            self._start_gtsm_watch()
        self._start_discovery()
        sim = self._sim
        if sim.enabled:
            self._sim_task = self._spawn(self._simulate(), "modem-simulate")
        self.log.info(
            "modem listening on %s%s; %d destination(s) configured%s",
            ", ".join(f"{h}:{p}" for h, p in self.listening),
            " (TLS)" if self.use_tls else "",
            len(self._table.dests),
            ", simulation on" if sim.enabled else "",
        )

    async def _listen(self) -> None:
        net = self.cfg.network
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        for host in net.listen_addresses:
            addr = ipaddress.ip_address(str(host))
            family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                set_ttl_255(sock, enforce=net.gtsm_enforce)
                sock.bind((str(addr), net.tcp_port))
                sock.listen(64)
                sock.setblocking(False)
                # TLS, if used, is started per connection in _accepted (once
                # the peer's address is known), so a handshake in progress
                # counts toward the pending bounds and has a deadline.
                server = await loop.create_server(lambda: self._accept(), sock=sock)
            except OSError as exc:
                sock.close()
                errors.append(f"{addr} port {net.tcp_port}: {_bind_error(exc, net.tcp_port)}")
                continue
            self._servers.append(server)
            bound = sock.getsockname()
            self.listening.append((str(bound[0]), int(bound[1])))
        if not self._servers:
            raise DaemonError("could not listen: " + "; ".join(errors))
        for err in errors:
            self.log.warning("not listening on %s", err)

    def offered_points(
        self, interface_addrs: Sequence[IPAddress]
    ) -> list[Ipv4ConnectionPoint | Ipv6ConnectionPoint]:
        """The connection points a Peer Offer carries when none are configured:
        the addresses we listen on that the interface has (a wildcard listen
        address stands for every address of its family on the interface),
        each with the port it is bound to. Never a point nobody listens on.
        """
        points: list[Ipv4ConnectionPoint | Ipv6ConnectionPoint] = []
        seen: set[tuple[IPAddress, int]] = set()
        on_lo = self.cfg.network.interface == "lo"
        for host, port in self.listening:
            bound = ipaddress.ip_address(host.split("%", 1)[0])
            for a in interface_addrs:
                if a.version != bound.version or (a.is_loopback and not on_lo):
                    continue
                if not bound.is_unspecified and a != bound:
                    continue
                if (a, port) in seen:
                    continue
                seen.add((a, port))
                cls = Ipv6ConnectionPoint if a.version == 6 else Ipv4ConnectionPoint
                points.append(cls(a, port, self.use_tls))  # type: ignore[arg-type]
        return points

    def _start_discovery(self) -> None:
        net = self.cfg.network
        if not net.interface:
            self.log.info("no interface configured: discovery off (routers must connect directly)")
            return
        points: list[Ipv4ConnectionPoint | Ipv6ConnectionPoint] = []
        for cp in net.connection_points:
            a = ipaddress.ip_address(str(cp.address))
            cls = Ipv6ConnectionPoint if a.version == 6 else Ipv4ConnectionPoint
            port = cp.port if cp.port is not None else net.tcp_port
            tls = self.use_tls and (cp.tls if cp.tls is not None else True)
            points.append(cls(a, port, tls))  # type: ignore[arg-type]
        if not net.connection_points:
            points = self.offered_points(interface_addresses(net.interface))
            if not points:
                self.log.warning(
                    "none of the listen addresses (%s) is on interface %s: Peer Offers carry "
                    "no connection point, so routers connect to the offer's source address "
                    "(RFC 8175 §12.4); set network.connection_points or listen_addresses",
                    ", ".join(h for h, _ in self.listening),
                    net.interface,
                )
        m = self.mcfg.modem
        self.discovery = ModemDiscovery(
            points, peer_type=PeerType(m.peer_type, m.secured_medium), registry=self.registry
        )
        assert self._loop is not None
        for enabled, family, group in (
            (net.discovery_v6, socket.AF_INET6, net.discovery_v6_group),
            (net.discovery_v4, socket.AF_INET, net.discovery_v4_group),
        ):
            if not enabled:
                continue
            try:
                ds = DiscoverySocket(
                    family, str(group), net.discovery_port, interface=net.interface, join=True
                )
            except (OSError, ValueError) as exc:
                self.log.warning(
                    "discovery on %s (IPv%d, port %d) unavailable: %s",
                    net.interface,
                    6 if family == socket.AF_INET6 else 4,
                    net.discovery_port,
                    _bind_error(exc, net.discovery_port) if isinstance(exc, OSError) else exc,
                )
                continue
            ds.start(self._loop, functools.partial(self._on_datagram, ds))
            self._disc_socks.append(ds)
        if self._disc_socks:
            self.log.info(
                "answering Peer Discovery on %s port %d, offering %s",
                net.interface,
                net.discovery_port,
                ", ".join(_fmt_point(p.address, p.port, p.tls) for p in points)
                or "our source address",
            )

    def _on_datagram(
        self, ds: DiscoverySocket, data: bytes, src: IPAddress, port: int, ttl: int | None
    ) -> None:
        engine = self.discovery
        if engine is None:
            return
        if self.log.isEnabledFor(logging.DEBUG):
            self._trace_signal("rx", data, src, port, ttl)
        if data[:6] == _PEER_DISCOVERY_HEAD and self._loop is not None:
            self._last_discovery = (src, ttl, self._loop.time())
        connected = any(_host_of(c.peer) == str(src) for c in self._conns.values())
        engine.counters.last_error = ""  # so the log below names this datagram's fault
        req = engine.receive_datagram(data, src, port, ttl, already_connected=connected)
        if req is None:
            if engine.counters.last_error:
                self.log.debug("ignored signal from %s: %s", src, engine.counters.last_error)
            elif connected:
                self.log.debug(
                    "ignored signal from %s: already in session with it (RFC 8175 §7.1)", src
                )
            return
        assert self._loop is not None
        if not self._offer_limit.allow(src, self._loop.time()):
            # A flood of valid Peer Discovery (50k/s) must not make us a
            # Peer Offer amplifier nor starve the sessions: a real router
            # repeats its discovery every few seconds, so a bucket of a few
            # offers per source loses it nothing.
            self._count_refusal("discovery_offer_rate")
            self._discovery_log.note("not answered (discovery_offer_rate)", str(src), self._loop)
            return
        # The port stays out of the reason: the summary counts by reason.
        self._discovery_log.note("sending Peer Offer", f"{src} port {port}", self._loop)
        try:
            ds.send_to(req.reply, src, port)
            if self.log.isEnabledFor(logging.DEBUG):
                self._trace_signal("tx", req.reply, src, port)
        except OSError as exc:
            self.log.warning("Peer Offer to %s failed: %s", src, exc)

    # -- GTSM: what the kernel drops before we see it ---------------------------------

    def _start_gtsm_watch(self) -> None:
        """Watch the kernel's count of TCP segments dropped for a TTL below
        255 (our listeners' minimum): a router without GTSM trying to
        connect is otherwise invisible here, its SYNs never reach us."""
        base = min_ttl_drops()
        if base is None:
            self.log.debug("GTSM drops not watched: this kernel does not count them")
            return
        self.gtsm_drops = 0
        self._spawn(self._watch_gtsm_drops(base), "modem-gtsm-watch")

    async def _watch_gtsm_drops(self, last: int) -> None:
        loop = asyncio.get_running_loop()
        quiet_since: float | None = None
        key = ("gtsm-drops",)
        while not self._closing:
            await asyncio.sleep(GTSM_WATCH_INTERVAL)
            now = min_ttl_drops()
            if now is None:
                return
            new, last = now - last, now
            if new <= 0:
                # Over once a minute passes without drops (a retrying router
                # sends SYNs every few seconds).
                if key in self._repeats.active():
                    t = loop.time()
                    quiet_since = t if quiet_since is None else quiet_since
                    if t - quiet_since >= GTSM_QUIET:
                        self._repeats.clear(key, "GTSM: no more TCP segments dropped for TTL < 255")
                continue
            quiet_since = None
            self.gtsm_drops = (self.gtsm_drops or 0) + new
            self._repeats.report(key, logging.WARNING, self._gtsm_warning(new, loop.time()))

    def _gtsm_warning(self, new: int, now: float) -> str:
        """The GTSM warning for ``new`` drops: the cause, who (if a Peer
        Discovery says), the fix, and what the count covers."""
        who = ""
        seen = self._last_discovery
        if seen is not None and now - seen[2] <= GTSM_RECENT_SIGNAL:
            src, ttl, at = seen
            if ttl is None:
                how = "its TTL unknown"
            elif ttl == 255:
                how = "with TTL 255, but its TCP need not use 255"
            else:
                how = f"with TTL {ttl}, not 255 (so it was ignored too, RFC 8175 §12.1)"
            who = (
                f"; router {src} sent Peer Discovery {now - at:.0f} s ago {how}: probably that one"
            )
        return (
            f"GTSM: the kernel dropped {new} TCP segment(s) whose TTL/hop limit was below "
            f"255 in the last {GTSM_WATCH_INTERVAL:g} s: this modem requires 255 "
            "(network.gtsm_enforce, RFC 8175 §3), so a router without GTSM (TTL 64 is "
            f"common) is probably trying to connect, and never will{who}. To accept it, "
            "set network.gtsm_enforce = false on this modem (it then accepts any TTL, from "
            "every router), or have the router send TTL 255. The kernel counts per network "
            "namespace (TcpExt TCPMinTTLDrop): other sockets with a minimum TTL here (BGP "
            "with GTSM, ...) count too."
        )

    # -- sessions -------------------------------------------------------------------

    def _accept(self) -> Any:
        # Only sessions count toward max_sessions: a connection that never
        # completes Session Initialization is held to the pending bounds
        # (checked once its address is known) and to pending_timeout_ms.
        if self._closing or self._session_count() >= self.mcfg.modem.max_sessions:
            why = "shutting_down" if self._closing else "max_sessions reached"
            return _Refuser(why, self._refused)
        return _Deferred(self._accepted)

    def _session_count(self) -> int:
        return sum(1 for c in self._conns.values() if c.proto.session.state is State.IN_SESSION)

    def _pending_refusal(self, host: str) -> str | None:
        """Why a new connection from ``host`` may not wait for its Session
        Initialization now, if it may not (TLS handshakes in progress count)."""
        m = self.mcfg.modem
        total = sum(self._handshaking.values())
        same = self._handshaking.get(host, 0)
        for c in self._conns.values():
            if c.proto.session.state is State.INITIALIZING:
                total += 1
                same += _host_of(c.peer) == host
        if total >= m.max_pending_connections:
            return f"max_pending_connections ({m.max_pending_connections}) reached"
        if same >= m.max_pending_per_source:
            return f"max_pending_per_source ({m.max_pending_per_source}) reached"
        return None

    def _accepted(self, transport: asyncio.BaseTransport) -> asyncio.Protocol:
        peername = transport.get_extra_info("peername")
        host, port = peername[0], peername[1]
        peer = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        why = self._pending_refusal(_host_of(peer))
        if why is not None:
            self._refused(transport, why)
            transport.close()
            return asyncio.Protocol()
        if self._ssl_ctx is not None:
            # Nothing is read until start_tls takes over the transport (the
            # ClientHello stays in the socket meanwhile).
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()
            holder = _Deferred(functools.partial(self._start_session, peer=peer))
            self._spawn(self._handshake(transport, holder, peer), f"tls-{peer}")
            return holder
        return self._start_session(transport, peer)

    async def _handshake(self, transport: asyncio.Transport, holder: _Deferred, peer: str) -> None:
        """Run the TLS handshake of an accepted connection, within
        ``tls.handshake_timeout_ms``, counted as pending meanwhile."""
        assert self._ssl_ctx is not None and self._loop is not None
        host = _host_of(peer)
        self._handshaking[host] = self._handshaking.get(host, 0) + 1
        try:
            tls = await self._loop.start_tls(
                transport,
                holder,
                self._ssl_ctx,
                server_side=True,
                ssl_handshake_timeout=self.cfg.tls.handshake_timeout_ms / 1000.0,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            transport.abort()
            # asyncio's own server-side TLS drops a failed handshake silently;
            # the operator must learn why (unknown CA, plaintext peer, ...).
            self._tls_failed(peer, describe_tls_error(exc))
            return
        except asyncio.CancelledError:
            transport.abort()
            raise
        finally:
            left = self._handshaking.get(host, 0) - 1
            if left > 0:
                self._handshaking[host] = left
            else:
                self._handshaking.pop(host, None)
        if tls is None:  # the connection went away meanwhile
            self._tls_failed(peer, describe_tls_error(ConnectionResetError()))
            return
        if self._closing:  # shutdown began during the handshake
            tls.abort()
            return
        holder.connection_made(tls)

    def _start_session(self, transport: asyncio.BaseTransport, peer: str) -> asyncio.Protocol:
        m = self.mcfg.modem
        init_ms = min(self.cfg.timers.effective_init_timeout_ms, m.pending_timeout_ms)
        session = Session(
            Role.MODEM,
            self._session_config(
                m.extensions,
                init_timeout_ms=init_ms,
                peer_type=PeerType(m.peer_type, m.secured_medium),
                session_metrics=self.session_metrics,
                wire_translation=profile_by_name(m.profile),
            ),
        )
        tls = transport.get_extra_info("sslcontext") is not None
        # Named by its address alone: the source port changes with every
        # connection, and metrics labels must not.
        proto = self._new_protocol(session, peer, tls, ("accepted", peer), _host_of(peer))
        conn = self._conn_of(proto)
        # DEBUG: a connection is news once its session is up (that line names
        # the peer); a churning client must not cost a line per connection.
        self.log.debug("connection from %s%s", peer, " over TLS" if tls else "")
        if conn is not None:
            self._publish(SessionConnected(conn.id, conn.peer, tls))
        proto.connection_made(transport)
        return proto

    def _tls_failed(self, peer: str, reason: str) -> None:
        # Once, then one summary per interval: failed handshakes may come
        # by the thousand from a scanner or a misconfigured router.
        assert self._loop is not None
        self._tls_log.note(reason, peer, self._loop)
        self._publish(ConnectionRefused(peer, f"TLS handshake failed: {reason}"))

    def _refused(self, transport: asyncio.BaseTransport, reason: str) -> None:
        peer = transport.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._count_refusal(reason.split(" ", 1)[0])
        # A client that reopens every refused connection at once must not
        # turn each into a log line (105k lines in 15 s): one per interval.
        assert self._loop is not None
        self._refusal_log.note(reason, _host_of(peer_s) if peer else "?", self._loop)
        self._publish(ConnectionRefused(peer_s, reason))

    def _drop_pending(self) -> None:
        """max_sessions is reached: close the connections still waiting for
        their Session Initialization (nothing is sent, §7.2), as a new one
        would be refused now."""
        now = self._time()
        for c in list(self._conns.values()):
            s = c.proto.session
            if s.state is State.INITIALIZING:
                s.terminate(StatusCode.REQUEST_DENIED, "max_sessions reached", now=now)
                c.proto.flush()

    def _handle_event(self, conn: _Conn, ev: Any) -> None:
        s = conn.proto.session
        if s.state is not State.IN_SESSION:
            # A later message of the same read already ended the session
            # (events are delivered after the read): nothing may be sent on
            # it any more (§7.4), and the engine would refuse with
            # SessionClosedError. Its SessionTerminated follows.
            return
        if isinstance(ev, SessionUp):
            if self._session_count() >= self.mcfg.modem.max_sessions:
                self._drop_pending()
            # Tell the new router about everything we know.
            now = self._time()
            for d in self._table.dests.values():
                if d.up:
                    try:
                        s.add_destination(
                            d.key, d.metrics, addresses=d.address_texts, extra=d.extra, now=now
                        )
                    except SessionError as exc:
                        self._repeats.report(
                            ("not-sent", conn.id),
                            logging.WARNING,
                            f"session {conn.id}: destination {d.key} not sent: {exc}",
                        )
            conn.proto.flush()
        elif isinstance(ev, LinkCharacteristicsRequested):
            self._answer_link(conn, ev)
        elif isinstance(ev, DestinationAnnounceRequested):
            self._answer_announce(conn, ev)

    def _answer_announce(self, conn: _Conn, ev: DestinationAnnounceRequested) -> None:
        """Success with the destination's metrics if we have it up, else
        'Request Denied' (§12.14)."""
        s = conn.proto.session
        known = self._table.dests.get(ev.key)
        try:
            if known is not None and known.up:
                k = known
                self._call(
                    conn,
                    lambda now: s.respond_destination_announce(
                        ev.key, True, k.metrics, addresses=k.address_texts, now=now
                    ),
                )
            else:
                self._call(
                    conn,
                    lambda now: s.respond_destination_announce(
                        ev.key, False, text="destination not reachable", now=now
                    ),
                )
        except SessionClosedError:
            return  # ended meanwhile: its SessionTerminated tells the rest
        except SessionError as exc:
            self.log.warning("answer to the announce of %s: %s", ev.key, exc)

    def _answer_link(self, conn: _Conn, ev: LinkCharacteristicsRequested) -> None:
        """Ask the link handler and answer. A handler that answers at once
        (the default) is answered in this step: no task per request, so a
        router sending requests in a flood costs no more than their answers;
        only a handler that returns an awaitable gets a task."""
        s = conn.proto.session
        info = s.destination(ev.key)
        current = info.metrics if info is not None else self.session_metrics
        req = LinkRequest(
            conn.id, ev.mac, ev.cdrr, ev.cdrt, ev.latency, current, ev.extra, ev.ident
        )
        try:
            result = self._link_handler(req)
        except Exception as exc:
            self.log.exception("link characteristics handler failed")
            result = LinkDecision(StatusCode.REQUEST_DENIED, Metrics(), f"handler error: {exc}")
        if inspect.isawaitable(result):
            self._spawn(self._await_link(conn, ev, result), f"lcr-{conn.id}")
        else:
            self._respond_link(conn, ev, result)

    async def _await_link(
        self, conn: _Conn, ev: LinkCharacteristicsRequested, pending: Awaitable[LinkDecision]
    ) -> None:
        try:
            decision = await pending
        except Exception as exc:
            self.log.exception("link characteristics handler failed")
            decision = LinkDecision(StatusCode.REQUEST_DENIED, Metrics(), f"handler error: {exc}")
        self._respond_link(conn, ev, decision)

    def _respond_link(
        self, conn: _Conn, ev: LinkCharacteristicsRequested, decision: LinkDecision
    ) -> None:
        if not isinstance(decision, LinkDecision):
            self.log.error("link characteristics handler returned %r, not a LinkDecision", decision)
            decision = LinkDecision(
                StatusCode.REQUEST_DENIED, Metrics(), "handler error: no decision"
            )
        s = conn.proto.session
        # A Hop Count the decision lacks after a Hop Control (RFC 8629 §3.2)
        # is added by the extension itself.
        extra = decision.extra
        try:
            self._call(
                conn,
                lambda now: s.respond_link_characteristics(
                    ev.key,
                    decision.status,
                    decision.metrics,
                    text=decision.text,
                    extra=extra,
                    now=now,
                ),
            )
        except SessionClosedError:
            return
        except SessionError as exc:
            self.log.warning("answer to the link characteristics request for %s: %s", ev.key, exc)
            return
        d = self._table.dests.get(ev.key)
        if d is not None:
            d.metrics = d.metrics.merged(decision.metrics)

    # -- API ----------------------------------------------------------------------------

    def _each_session(self, fn: Callable[[Session, float], Any], *, first: bool = False) -> None:
        """Run ``fn`` on every live session. With ``first``, a refusal by the
        first session is raised (nothing was sent anywhere), so a change no
        session could carry never enters the table."""
        now: float | None = None
        tried = 0
        for conn in list(self._conns.values()):
            s = conn.proto.session
            if s.state is not State.IN_SESSION:
                continue
            if now is None:
                now = self._time()
            tried += 1
            try:
                fn(s, now)
            except SessionClosedError:
                continue
            except SessionError as exc:
                if first and tried == 1:
                    raise DaemonArgumentError(str(exc)) from None
                self._repeats.report(
                    ("not-sent", conn.id), logging.WARNING, f"session {conn.id}: {exc}"
                )
            finally:
                conn.proto.flush()

    def _key(self, mac: bytes | str | DestKey, extra: Sequence[DataItem]) -> DestKey:
        if isinstance(mac, DestKey):
            return mac
        return DestKey(_mac_key(mac), self._ident(extra) if extra else ())

    def _ident(self, extra: Sequence[DataItem]) -> tuple[DataItem, ...]:
        ids = self.registry.identity_items
        return tuple(i for i in extra if i.TYPE in ids) if ids else ()

    def _change(self, table: ModemTable, ch: DestinationChange, *, send: bool = True) -> None:
        """Apply ``ch`` to ``table``. With ``send`` every live session is told
        (a refusal by the first one leaves the table as it was); without, the
        change is only tried (``table`` is a copy)."""
        key = ch.key
        if send and key is not None:
            self._pin(key)
        if ch.op == "session":

            def tell() -> None:
                self._each_session(
                    lambda s, now: s.update_session(ch.metrics, extra=list(ch.extra), now=now),
                    first=True,
                )

            table.update_session(ch.metrics, tell if send else None)
            return
        assert key is not None
        if ch.op == "up":

            def up(d: ModemDest) -> None:
                self._each_session(
                    lambda s, now: s.add_destination(
                        key, d.metrics, addresses=d.address_texts, extra=d.extra, now=now
                    ),
                    first=True,
                )

            table.add(key, ch.metrics, ch.addresses, list(ch.extra), up if send else None)
        elif ch.op == "update":

            def update(d: ModemDest) -> None:
                if d.up:
                    self._each_session(
                        lambda s, now: s.update_destination(
                            key,
                            ch.metrics,
                            add=list(ch.add),
                            drop=list(ch.drop),
                            extra=list(ch.extra),
                            now=now,
                        ),
                        first=True,
                    )

            table.update(key, ch.metrics, ch.add, ch.drop, ch.extra, update if send else None)
        else:
            d = table.drop(key)
            if send and d.up:
                self._each_session(
                    lambda s, now: s.drop_destination(key, now=now) if s.knows(key) else None
                )

    def _dest_change(
        self,
        op: ChangeOp,
        mac: bytes | str | DestKey,
        metrics: Metrics | None = None,
        extra: Sequence[DataItem] = (),
        **kw: Any,
    ) -> DestinationChange:
        key = self._key(mac, extra)
        rest = tuple(i for i in extra if i not in key.ident)
        return DestinationChange(op, key, metrics or _NO_METRICS, extra=rest, **kw)

    async def add_destination(
        self,
        mac: bytes | str | DestKey,
        metrics: Metrics | None = None,
        *,
        addresses: Sequence[str] = (),
        extra: Sequence[DataItem] = (),
    ) -> None:
        """A new destination is reachable: Destination Up to every router.

        ``extra``: items of negotiated extensions (kept, and sent again to
        routers that connect later); identity items (RFC 8703 Link
        Identifier) make it a separate destination behind the same MAC.
        Refused (with the field named) if it could not be sent.
        """
        ch = self._dest_change("up", mac, metrics, extra, addresses=tuple(addresses))
        self._change(self._table, ch)

    async def update_destination(
        self,
        mac: bytes | str | DestKey,
        metrics: Metrics | None = None,
        *,
        add: Sequence[str] = (),
        drop: Sequence[str] = (),
        extra: Sequence[DataItem] = (),
    ) -> None:
        """New metrics, address changes and/or extension items for a destination."""
        if not add and not drop and not extra:
            # Metrics alone (a radio's report, all day long): the short way.
            key = self._key(mac, ())
            self._pin(key)
            change = metrics or _NO_METRICS
            new = self._table.check_metrics(((key, change),), indexed=False)
            if new[0].up:
                self._each_session(
                    lambda s, now: s.update_destination(key, change, now=now), first=True
                )
            self._table.keep_metrics(new)
            return
        ch = self._dest_change("update", mac, metrics, extra, add=tuple(add), drop=tuple(drop))
        self._change(self._table, ch)

    async def update_destinations(
        self, updates: Iterable[tuple[bytes | str | DestKey, Metrics]]
    ) -> int:
        """New metrics for many destinations in one call (a radio's periodic
        report): ``(mac, metrics)`` pairs, applied in order.

        All or nothing: every pair is checked (its MAC names a destination,
        its metrics are valid and keep the rules with that destination's
        current ones, and with earlier pairs of the batch for the same
        destination) before anything is sent or kept; a refusal names the
        pair (``updates[3].metrics.cdrr``). Each router gets the batch's
        Destination Updates as one write. Address and extension-item changes
        take :meth:`update_destination` or :meth:`apply_destination_changes`.
        Returns how many pairs there were.
        """
        entries: list[tuple[DestKey, Metrics]] = []
        for i, (mac, metrics) in enumerate(updates):
            try:
                entries.append((self._key(mac, ()), metrics or _NO_METRICS))
            except DaemonArgumentError as exc:
                raise DaemonArgumentError(f"updates[{i}].mac: {exc}", f"updates[{i}].mac") from None
        full = self._table.check_metrics(entries)
        if self._configured or self._released:
            for key, _ in entries:
                self._pin(key)
        live = [(key, m) for (key, m), d in zip(entries, full, strict=True) if d.up]
        if live:
            # The table checked every value's range; the sessions check the
            # rest (rates against their own view, §12.6, states).
            self._each_session(
                lambda s, now: s.update_destinations(live, validated=True, now=now), first=True
            )
        self._table.keep_metrics(full)
        return len(entries)

    async def drop_destination(
        self, mac: bytes | str | DestKey, *, extra: Sequence[DataItem] = ()
    ) -> None:
        """The destination is gone: Destination Down to every router
        (``extra``: its identity items, RFC 8703)."""
        self._change(self._table, self._dest_change("down", mac, None, extra))

    async def update_session_metrics(
        self, metrics: Metrics, *, extra: Sequence[DataItem] = ()
    ) -> None:
        """Session-wide metrics (and/or ``extra`` extension items) changed:
        Session Update to every router.

        §12.7: they apply to every destination, so a value that would break a
        destination's metrics (a current rate above its maximum) is refused
        with the destination and field named; change that destination first.
        """
        self._change(self._table, DestinationChange("session", None, metrics, extra=tuple(extra)))

    async def apply_destination_changes(
        self, changes: Sequence[object], *, max_batch: int | None = None
    ) -> list[ChangeResult]:
        """Apply a batch of changes all or nothing; one result per change.

        Each element is a :class:`DestinationChange` or a record in its JSON
        form (checked by :func:`~dlep.daemon.changes.parse_change`). Every
        change is checked before any is applied: its fields; the table's
        rules, against the table as the earlier changes of the batch leave
        it (tried on a copy, by the same code the single calls use); metrics
        declared at session initialisation (§12.6); extension items offered
        by this modem and negotiated by every live session. If one fails,
        none is applied: its result names the record and field
        (``records[1].metrics.cdrt: ...``), the others say
        :data:`~dlep.daemon.changes.NOT_APPLIED`. Nothing is awaited between
        the checks and the end of the batch, so no other call interleaves.
        """
        if max_batch is not None and len(changes) > max_batch:
            msg = f"batch of {len(changes)} records exceeds max_batch {max_batch}"
            return [ChangeResult(i, False, msg, record_id(c)) for i, c in enumerate(changes)]
        parsed: list[DestinationChange | None] = []
        errors: dict[int, str] = {}
        for i, obj in enumerate(changes):
            if isinstance(obj, DestinationChange):
                parsed.append(obj)
                continue
            try:
                parsed.append(parse_change(obj, f"records[{i}]"))
            except DaemonError as exc:
                parsed.append(None)
                errors[i] = str(exc)
        trial = self._table.copy()
        declared = frozenset(self.session_metrics.as_dict())
        live = [c for c in self._conns.values() if c.proto.session.state is State.IN_SESSION]
        for i, ch in enumerate(parsed):
            if ch is None:
                continue
            try:
                self._change(trial, ch, send=False)
                self._check_sendable(ch, declared, live)
            except DaemonError as exc:
                errors[i] = f"records[{i}].{exc}"
        if errors:
            return [
                ChangeResult(i, False, errors.get(i, NOT_APPLIED), record_id(obj))
                for i, obj in enumerate(changes)
            ]
        results: list[ChangeResult] = []
        for i, ch in enumerate(parsed):
            assert ch is not None
            try:
                self._change(self._table, ch)
            except DaemonError as exc:  # the trial makes this unreachable
                self.log.error("change %d of a batch failed after its checks: %s", i, exc)
                results.append(ChangeResult(i, False, f"records[{i}].{exc}", ch.id))
                continue
            results.append(ChangeResult(i, True, id=ch.id))
        return results

    def _check_sendable(
        self, ch: DestinationChange, declared: frozenset[str], live: Sequence[_Conn]
    ) -> None:
        """Refuse what the ``live`` sessions would: metrics not declared at
        session initialisation, items of extensions not offered or not
        negotiated, and a Destination Up for a key a session still holds (its
        Destination Down is not answered yet; also when the batch dropped it)."""
        undeclared = sorted(set(ch.metrics.as_dict()) - declared)
        if undeclared:
            raise DaemonArgumentError(
                f"metrics.{undeclared[0]}: not declared in modem.session_metrics; "
                "RFC 8175 §12.6 allows only metrics the Session Initialization "
                "Response declared",
                f"metrics.{undeclared[0]}",
            )
        items = ch.items()
        check_offered(self.registry, items)
        for conn in live:
            session = conn.proto.session
            if ch.op == "up" and ch.key is not None and session.knows(ch.key):
                raise DestinationExistsError(
                    f"mac: destination {ch.key} is still in session {conn.id}: its "
                    "Destination Down is not answered yet; send the up once it is"
                )
            for item in items:
                owners = self.registry.item_owners.get(item.TYPE, frozenset())
                if owners and owners.isdisjoint(session.extensions):
                    code = min(owners)
                    raise DaemonError(
                        f"ext.{value_key(item)}: session {conn.id} ({conn.peer}) did not "
                        f"negotiate extension {extension_name(code)} ({code})"
                    )

    def _pin(self, key: DestKey) -> None:
        """``key`` was set by hand: the simulator leaves it alone from now on."""
        if self._applying_config:
            return
        if key in self._released:
            self._released.discard(key)
        elif key in self._configured and key not in self._pinned:
            self._pinned.add(key)
        else:
            return
        if self._sim.enabled:
            self.log.info("destination %s set by hand: the simulator leaves it alone", key)

    def _simulates(self, key: DestKey) -> bool:
        return key in self._released or (key in self._configured and key not in self._pinned)

    def release_destination(self, mac: bytes | str | DestKey) -> bool:
        """Hand a destination back to the simulator (``[modem.simulate]``).

        A destination added, changed or dropped through the library or the
        API is the operator's: the simulator neither walks its metrics nor
        flaps it. This undoes that (also for one added through the API):
        from now on its metrics walk around the values they have now.
        Returns whether the simulator runs (if not, it takes the destination
        when a reload starts it); raises DestinationNotFoundError for an
        unknown destination.
        """
        key = self._key(mac, ())
        d = self._table.require(key)
        if key in self._configured:
            self._pinned.discard(key)
        else:
            self._released.add(key)
        self._sim_base[key] = d.metrics
        self.log.info("destination %s released to the simulator", key)
        return self._sim.enabled

    def simulated_destinations(self) -> frozenset[DestKey]:
        """The destinations the simulator moves now (none when it is off)."""
        if not self._sim.enabled:
            return frozenset()
        return frozenset(k for k in self._table.dests if self._simulates(k))

    def known_destinations(self) -> dict[DestKey, Metrics]:
        """The application's destination table (whether or not a router listens)."""
        return {key: d.metrics for key, d in self._table.dests.items() if d.up}

    def destination_table(self) -> list[tuple[DestKey, Metrics, tuple[str, ...], bool]]:
        """Every destination the modem knows: key, metrics, addresses, and
        whether it is up (the simulator takes flapping ones down)."""
        return [(k, d.metrics, tuple(d.address_texts), d.up) for k, d in self._table.dests.items()]

    async def shutdown(self) -> None:
        """Terminate every session (bounded wait) and stop listening."""
        if self._closing:
            return
        self._closing = True
        for server in self._servers:
            server.close()
        for ds in self._disc_socks:
            ds.close()
        await self._shutdown_sessions()
        await self._stop_tasks()
        self._refusal_log.close()
        self._discovery_log.close()
        for server in self._servers:
            await server.wait_closed()
        self.log.info("modem stopped")

    # -- simulation -------------------------------------------------------------------

    async def set_simulation(self, sim: SimulateConfig) -> None:
        """Run the simulator with these settings from now on (a configuration
        reload); ``enabled = false`` stops it. Destinations it had taken down
        come back up at once (sessions stay up)."""
        task, self._sim_task = self._sim_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._sim = sim
        for key in list(self._sim_down):
            del self._sim_down[key]
            self._sim_restore(key)
        if sim.enabled and not self._closing:
            self._sim_task = self._spawn(self._simulate(), "modem-simulate")

    def _sim_restore(self, key: DestKey) -> None:
        """Bring back a destination the simulator took down."""
        d = self._table.dests.get(key)
        if d is not None and not d.up:
            d.up = True
            self._each_session(
                lambda s, t: s.add_destination(
                    d.key, d.metrics, addresses=d.address_texts, extra=d.extra, now=t
                )
            )

    async def set_configured_destinations(self, dests: Sequence[DestinationConfig]) -> int:
        """Make the configured destinations these (a configuration reload):
        what the previous configuration had and this one lacks goes down,
        what is new comes up, what changed is updated (metrics and address
        changes in one Destination Update); the others, and destinations
        added through the API, are left alone. All or nothing, as
        :meth:`apply_destination_changes`: a refusal names the entry
        (``modem.destinations[2].metrics.cdrr: ...``) and nothing changes.
        Returns how many destinations changed."""
        new: dict[DestKey, DestinationConfig] = {}
        index: dict[DestKey, int] = {}
        for i, d in enumerate(dests):
            key = DestKey(d.mac_bytes())
            new[key] = d
            index[key] = i
        changes: list[DestinationChange] = []
        where: list[str] = []
        for key in self._configured:
            if key not in new and key in self._table.dests:
                changes.append(DestinationChange("down", key))
                where.append(f"modem.destinations ({key} removed)")
        for key, d in new.items():
            old_d = self._configured.get(key)
            if old_d == d:
                continue
            addrs = d.addresses()
            if key not in self._table.dests:
                changes.append(
                    DestinationChange("up", key, d.metrics.to_metrics(), addresses=tuple(addrs))
                )
            else:
                have = self._table.dests[key].address_texts
                changes.append(
                    DestinationChange(
                        "update",
                        key,
                        d.metrics.to_metrics(),
                        add=tuple(a for a in addrs if a not in have),
                        drop=tuple(a for a in have if a not in addrs),
                    )
                )
            where.append(f"modem.destinations[{index[key]}]")
        if not changes:
            self._configured = new
            return 0
        self._applying_config = True  # the configuration's changes pin nothing
        try:
            results = await self.apply_destination_changes(changes)
        finally:
            self._applying_config = False
        for res in results:
            if not res.ok and not res.error.startswith(NOT_APPLIED):
                # "records[3].metrics.cdrr: ..." -> "modem.destinations[1].metrics.cdrr: ..."
                rest = res.error.split(".", 1)[1] if "." in res.error else res.error
                raise DaemonArgumentError(f"{where[res.index]}.{rest}", where[res.index])
        self._configured = new
        for key in [k for k in self._sim_down if k not in self._table.dests]:
            del self._sim_down[key]
        # What the configuration changed now has the configuration's values
        # (over any set by hand): the simulator walks it around them.
        for ch in changes:
            if ch.key is not None:
                self._pinned.discard(ch.key)
                self._sim_base.pop(ch.key, None)
        self._pinned &= new.keys()
        return len(changes)

    async def _simulate(self) -> None:
        sim = self._sim
        rng = random.Random(sim.seed)
        period = sim.interval_ms / 1000.0
        down_until = self._sim_down
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for key, until in list(down_until.items()):
                if now >= until:
                    del down_until[key]
                    self._sim_restore(key)
            for key, d in list(self._table.dests.items()):
                if not d.up or not self._simulates(key):
                    continue
                if sim.flap_probability and rng.random() < sim.flap_probability:
                    d.up = False
                    down_until[key] = now + sim.down_ms / 1000.0
                    self._each_session(
                        lambda s, t, key=key: (  # type: ignore[misc]
                            s.drop_destination(key, now=t) if s.knows(key) else None
                        )
                    )
                    continue
                base = self._sim_base.setdefault(key, d.metrics)
                new = _walk(rng, d.metrics, base, sim.walk_percent)
                changed = d.metrics.changed_in(new)
                if changed.is_empty():
                    continue
                d.metrics = d.metrics.merged(changed)
                self._each_session(
                    lambda s, t, key=key, ch=changed: s.update_destination(  # type: ignore[misc]
                        key, ch, now=t
                    )
                )


_NO_METRICS: Final = Metrics()


def _walk(rng: random.Random, cur: Metrics, base: Metrics, pct: float) -> Metrics:
    """One bounded random-walk step of the current metrics.

    Current rates move within [5 %, 100 %] of the maximum rate, latency
    within [50 %, 400 %] of its configured value, link quality and resources
    within 0-100.
    """
    f = pct / 100.0

    def step(v: int | None, lo: float, hi: float, span: float) -> int | None:
        if v is None:
            return None
        nv = v + rng.uniform(-f, f) * span
        return int(min(max(nv, lo), hi))

    out: dict[str, int | None] = {}
    if cur.mdrr:
        out["cdrr"] = step(cur.cdrr, cur.mdrr * 0.05, cur.mdrr, cur.mdrr)
    if cur.mdrt:
        out["cdrt"] = step(cur.cdrt, cur.mdrt * 0.05, cur.mdrt, cur.mdrt)
    if base.latency:
        out["latency"] = step(cur.latency, base.latency * 0.5, base.latency * 4.0, base.latency)
    for name in ("rlqr", "rlqt", "resources"):
        out[name] = step(getattr(cur, name), 0, 100, 100)
    return Metrics(**out)


def _fmt_point(address: IPAddress, port: int | None, tls: bool) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{port}{' tls' if tls else ''}"


def _host_of(peer: str) -> str:
    host = peer.rsplit(":", 1)[0]
    return host.strip("[]").split("%", 1)[0]  # no zone: sources are compared without one


class _Deferred(asyncio.Protocol):
    """Creates the session protocol once the peer address is known (and,
    over TLS, once the handshake is done)."""

    def __init__(self, made: Callable[[asyncio.BaseTransport], asyncio.Protocol]) -> None:
        self._made = made
        self._inner: asyncio.Protocol | None = None
        # Over TLS the first records can be decrypted and delivered between
        # the end of the handshake and connection_made: kept, not lost.
        self._early: list[bytes] = []
        self._lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._lost:
            return
        inner = self._inner = self._made(transport)
        # From now on the transport calls the session protocol itself (no
        # hop per read, and its flow control reaches it: drain()).
        transport.set_protocol(inner)
        early, self._early = self._early, []
        for data in early:
            inner.data_received(data)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        elif sum(map(len, self._early)) < 65536:  # bounded: one Session Initialization
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return bool(self._inner.eof_received()) if self._inner is not None else False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._inner is not None:
            self._inner.connection_lost(exc)


class _Refuser(asyncio.Protocol):
    """Closes a connection the modem will not serve (sends nothing: §7.2)."""

    def __init__(self, reason: str, refused: Callable[[asyncio.BaseTransport, str], None]) -> None:
        self._reason = reason
        self._refused = refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._refused(transport, self._reason)
        transport.close()


__all__ = [
    "LinkDecision",
    "LinkRequest",
    "ModemDaemon",
    "ModemDaemonBuilder",
    "grant_what_is_possible",
]
