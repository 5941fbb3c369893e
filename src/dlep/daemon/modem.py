"""The modem side: listen for routers, answer discovery, report destinations."""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from ..ext.profiles import profile_by_name
from ..fsm import (
    DestinationAnnounceRequested,
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
from ..fsm.session import _dest_key
from ..transport import (
    DiscoverySocket,
    interface_addresses,
    server_context,
    set_ttl_255,
)
from ..wire import (
    DataItem,
    Ipv4ConnectionPoint,
    Ipv6ConnectionPoint,
    PeerType,
    StatusCode,
    format_mac,
)
from .base import BuilderBase, DaemonBase, DaemonError, _Conn, _mac_key
from .events import ConnectionRefused, SessionConnected

if TYPE_CHECKING:
    from ..config import ModemConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """A router's Link Characteristics Request, as given to the handler."""

    session_id: str
    mac: bytes
    cdrr: int | None
    cdrt: int | None
    latency: int | None
    current: Metrics


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
    return LinkDecision(status, Metrics(cdrr=cdrr, cdrt=cdrt, latency=latency), text)


@dataclass(slots=True)
class _Dest:
    """The modem application's view of one destination."""

    mac: bytes
    metrics: Metrics
    addresses: list[str]
    up: bool = True
    extra: list[DataItem] = field(default_factory=list)


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
        await d._start()
        return d


class ModemDaemon(DaemonBase):
    """A DLEP modem serving one or more routers (``modem.max_sessions``).

    The daemon keeps the application's destination table: every router
    session is told about every destination, including sessions that come up
    later.
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
        self._dests: dict[bytes, _Dest] = {}
        self.session_metrics = config.modem.session_metrics.to_metrics()
        self.listening: list[tuple[str, int]] = []

    @classmethod
    def builder(cls) -> ModemDaemonBuilder:
        """Start building a modem daemon."""
        return ModemDaemonBuilder()

    # -- start -------------------------------------------------------------------

    async def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._setup_tls(server_context)
        for d in self.mcfg.modem.destinations:
            self._dests[d.mac_bytes()] = _Dest(
                d.mac_bytes(), self.session_metrics.merged(d.metrics.to_metrics()), d.addresses()
            )
        await self._listen()
        self._start_discovery()
        sim = self.mcfg.modem.simulate
        if sim.enabled:
            self._spawn(self._simulate(), "modem-simulate")
        self.log.info(
            "modem listening on %s%s; %d destination(s) configured%s",
            ", ".join(f"{h}:{p}" for h, p in self.listening),
            " (TLS)" if self.use_tls else "",
            len(self._dests),
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
                server = await loop.create_server(
                    lambda: self._accept(), sock=sock, ssl=self._ssl_ctx
                )
            except OSError as exc:
                sock.close()
                errors.append(f"{addr} port {net.tcp_port}: {exc.strerror or exc}")
                continue
            self._servers.append(server)
            bound = sock.getsockname()
            self.listening.append((str(bound[0]), int(bound[1])))
        if not self._servers:
            raise DaemonError("could not listen: " + "; ".join(errors))
        for err in errors:
            self.log.warning("not listening on %s", err)

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
        if not points:
            for a in interface_addresses(net.interface):
                if a.is_loopback and net.interface != "lo":
                    continue
                cls = Ipv6ConnectionPoint if a.version == 6 else Ipv4ConnectionPoint
                points.append(cls(a, net.tcp_port, self.use_tls))  # type: ignore[arg-type]
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
                    exc,
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
        self.log.info("Peer Discovery from %s port %d: sending Peer Offer", src, port)
        try:
            ds.send_to(req.reply, src, port)
        except OSError as exc:
            self.log.warning("Peer Offer to %s failed: %s", src, exc)

    # -- sessions -------------------------------------------------------------------

    def _accept(self) -> Any:
        live = sum(1 for c in self._conns.values() if not c.proto.session.closed)
        if self._closing or live >= self.mcfg.modem.max_sessions:
            return _Refuser(self, "shutting down" if self._closing else "max_sessions reached")
        m = self.mcfg.modem
        session = Session(
            Role.MODEM,
            self._session_config(
                m.extensions,
                peer_type=PeerType(m.peer_type, m.secured_medium),
                session_metrics=self.session_metrics,
                profile=profile_by_name(m.profile),
            ),
        )
        return _Deferred(self, session)

    def _handle_event(self, conn: _Conn, ev: Any) -> None:
        s = conn.proto.session
        if isinstance(ev, SessionUp):
            # Tell the new router about everything we know.
            for d in self._dests.values():
                if d.up:
                    try:
                        s.add_destination(d.mac, d.metrics, addresses=d.addresses, extra=d.extra)
                    except SessionError as exc:
                        self.log.warning("destination %s not sent: %s", format_mac(d.mac), exc)
            conn.proto.flush()
        elif isinstance(ev, LinkCharacteristicsRequested):
            self._spawn(self._answer_link(conn, ev), f"lcr-{conn.id}")
        elif isinstance(ev, DestinationAnnounceRequested):
            known = None if ev.ident else self._dests.get(ev.mac)
            if known is not None and known.up:
                k = known
                self._call(
                    conn,
                    lambda: s.respond_destination_announce(
                        ev.mac, True, k.metrics, addresses=k.addresses
                    ),
                )
            else:
                self._call(
                    conn,
                    lambda: s.respond_destination_announce(
                        ev.mac, False, text="destination not reachable", extra=ev.ident
                    ),
                )

    async def _answer_link(self, conn: _Conn, ev: LinkCharacteristicsRequested) -> None:
        s = conn.proto.session
        info = s.destination(ev.mac)
        current = info.metrics if info is not None else self.session_metrics
        req = LinkRequest(conn.id, ev.mac, ev.cdrr, ev.cdrt, ev.latency, current)
        try:
            result = self._link_handler(req)
            decision = await result if inspect.isawaitable(result) else result
            assert isinstance(decision, LinkDecision)
        except Exception as exc:
            self.log.exception("link characteristics handler failed")
            decision = LinkDecision(StatusCode.REQUEST_DENIED, Metrics(), f"handler error: {exc}")
        try:
            self._call(
                conn,
                lambda: s.respond_link_characteristics(
                    ev.mac,
                    decision.status,
                    decision.metrics,
                    text=decision.text,
                    extra=(*ev.ident, *decision.extra),
                ),
            )
        except SessionClosedError:
            return
        d = self._dests.get(ev.mac)
        if d is not None:
            d.metrics = d.metrics.merged(decision.metrics)

    # -- API ----------------------------------------------------------------------------

    def _each_session(self, fn: Callable[[Session], Any]) -> None:
        for conn in list(self._conns.values()):
            s = conn.proto.session
            if s.state is not State.IN_SESSION:
                continue
            try:
                self._call(conn, lambda s=s: fn(s))  # type: ignore[misc]
            except SessionClosedError:
                continue
            except SessionError as exc:
                self.log.warning("session %s: %s", conn.id, exc)

    async def add_destination(
        self,
        mac: bytes | str,
        metrics: Metrics | None = None,
        *,
        addresses: Sequence[str] = (),
        extra: Sequence[DataItem] = (),
    ) -> None:
        """A new destination is reachable: Destination Up to every router.

        ``extra``: items of negotiated extensions (kept, and sent again to
        routers that connect later); identity items (RFC 8703 Link
        Identifier) make it a separate destination behind the same MAC.
        """
        gw = _mac_key(mac)
        key = self._key(gw, extra)
        if key in self._dests:
            raise DaemonError(f"destination {format_mac(gw)} already exists")
        metrics = metrics or Metrics()
        try:
            metrics.validate()
        except ValueError as exc:
            raise DaemonError(str(exc)) from None
        d = _Dest(gw, self.session_metrics.merged(metrics), list(addresses), extra=list(extra))
        self._dests[key] = d
        self._each_session(
            lambda s: s.add_destination(gw, d.metrics, addresses=d.addresses, extra=d.extra)
        )

    async def update_destination(
        self,
        mac: bytes | str,
        metrics: Metrics | None = None,
        *,
        add: Sequence[str] = (),
        drop: Sequence[str] = (),
        extra: Sequence[DataItem] = (),
    ) -> None:
        """New metrics, address changes and/or extension items for a destination."""
        gw = _mac_key(mac)
        key = self._key(gw, extra)
        d = self._dests.get(key)
        if d is None:
            raise DaemonError(f"no destination {format_mac(gw)}")
        metrics = metrics or Metrics()
        try:
            metrics.validate()
        except ValueError as exc:
            raise DaemonError(str(exc)) from None
        d.metrics = d.metrics.merged(metrics)
        d.addresses = [a for a in d.addresses if a not in drop] + [
            a for a in add if a not in d.addresses
        ]
        # Replayed to routers that connect later: keep the lasting items given
        # at add time (identity, Hop Count, ...) current, but never store
        # one-off items (Pause, credit grants) that an update carried.
        kept = {i.TYPE: i for i in d.extra}
        for item in extra:
            if item.TYPE in kept:
                kept[item.TYPE] = item
        d.extra = list(kept.values())
        if d.up:
            self._each_session(
                lambda s: s.update_destination(
                    gw, metrics, add=list(add), drop=list(drop), extra=list(extra)
                )
            )

    async def drop_destination(self, mac: bytes | str, *, extra: Sequence[DataItem] = ()) -> None:
        """The destination is gone: Destination Down to every router
        (``extra``: its identity items, RFC 8703)."""
        gw = _mac_key(mac)
        key = self._key(gw, extra)
        d = self._dests.pop(key, None)
        if d is None:
            raise DaemonError(f"no destination {format_mac(gw)}")
        ident = self._ident(extra)
        if d.up:
            self._each_session(
                lambda s: s.drop_destination(gw, extra=ident) if key in s._dests else None
            )

    async def update_session_metrics(
        self, metrics: Metrics, *, extra: Sequence[DataItem] = ()
    ) -> None:
        """Session-wide metrics (and/or ``extra`` extension items) changed:
        Session Update to every router."""
        try:
            metrics.validate()
        except ValueError as exc:
            raise DaemonError(str(exc)) from None
        self.session_metrics = self.session_metrics.merged(metrics)
        # §12.7: session-wide values override every destination's; keep our
        # table equal to what routers hold, so a router that connects later
        # is told the same values.
        for d in self._dests.values():
            d.metrics = d.metrics.merged(metrics)
        self._each_session(lambda s: s.update_session(metrics, extra=list(extra)))

    def _key(self, gw: bytes, extra: Sequence[DataItem]) -> bytes:
        return _dest_key(gw, self._ident(extra))

    def _ident(self, extra: Sequence[DataItem]) -> tuple[DataItem, ...]:
        ids = self.registry.identity_items
        return tuple(i for i in extra if i.TYPE in ids) if ids else ()

    def _resend(self, d: _Dest) -> None:
        def up(s: Session) -> None:
            s.add_destination(d.mac, d.metrics, addresses=d.addresses, extra=d.extra)

        self._each_session(up)

    def known_destinations(self) -> dict[bytes, Metrics]:
        """The application's destination table (whether or not a router listens)."""
        return {mac: d.metrics for mac, d in self._dests.items() if d.up}

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
        for server in self._servers:
            await server.wait_closed()
        self.log.info("modem stopped")

    # -- simulation -------------------------------------------------------------------

    async def _simulate(self) -> None:
        sim = self.mcfg.modem.simulate
        rng = random.Random(sim.seed)
        period = sim.interval_ms / 1000.0
        down_until: dict[bytes, float] = {}
        loop = asyncio.get_running_loop()
        base = {mac: d.metrics for mac, d in self._dests.items()}
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for mac, until in list(down_until.items()):
                if now >= until:
                    del down_until[mac]
                    d = self._dests.get(mac)
                    if d is not None and not d.up:
                        d.up = True
                        self._each_session(
                            lambda s, d=d: s.add_destination(
                                d.mac, d.metrics, addresses=d.addresses
                            )  # type: ignore[misc]
                        )
            for mac, d in list(self._dests.items()):
                if not d.up:
                    continue
                if sim.flap_probability and rng.random() < sim.flap_probability:
                    d.up = False
                    down_until[mac] = now + sim.down_ms / 1000.0
                    ident = self._ident(d.extra)
                    self._each_session(
                        lambda s, mac=mac, d=d, ident=ident: (
                            s.drop_destination(d.mac, extra=ident)  # type: ignore[misc]
                            if mac in s._dests
                            else None
                        )
                    )
                    continue
                new = _walk(rng, d.metrics, base.get(mac, d.metrics), sim.walk_percent)
                changed = d.metrics.changed_in(new)
                if changed.is_empty():
                    continue
                d.metrics = d.metrics.merged(changed)
                ident = self._ident(d.extra)
                self._each_session(
                    lambda s, d=d, ch=changed, ident=ident: s.update_destination(  # type: ignore[misc]
                        d.mac, ch, extra=ident
                    )
                )


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
    """Creates the session protocol once the peer address is known."""

    def __init__(self, daemon: ModemDaemon, session: Session) -> None:
        self._daemon = daemon
        self._session = session
        self._inner: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        d = self._daemon
        peername = transport.get_extra_info("peername")
        host, port = peername[0], peername[1]
        peer = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        tls = transport.get_extra_info("sslcontext") is not None
        self._inner = d._new_protocol(self._session, peer, tls, ("accepted", peer))
        conn = d._conn_of(self._inner)
        d.log.info("connection from %s%s", peer, " over TLS" if tls else "")
        if conn is not None:
            d._publish(SessionConnected(conn.id, conn.peer, tls))
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return bool(self._inner.eof_received()) if self._inner else False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._inner.connection_lost(exc)


class _Refuser(asyncio.Protocol):
    """Closes a connection the modem will not serve (sends nothing: §7.2)."""

    def __init__(self, daemon: ModemDaemon, reason: str) -> None:
        self._daemon = daemon
        self._reason = reason

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if peer else "?"
        self._daemon.log.warning("refusing connection from %s: %s", peer_s, self._reason)
        self._daemon._publish(ConnectionRefused(peer_s, self._reason))
        transport.close()


__all__ = [
    "LinkDecision",
    "LinkRequest",
    "ModemDaemon",
    "ModemDaemonBuilder",
    "grant_what_is_possible",
]
