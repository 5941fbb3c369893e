"""The router side: discover modems, hold one session per modem."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..ext.profiles import ProfileError, profile_by_name
from ..fsm import (
    ConnectionPoint,
    DestinationInfo,
    DestKey,
    Metrics,
    PeerOffered,
    Role,
    RouterDiscovery,
    Session,
    State,
)
from ..transport import (
    DiscoverySocket,
    SessionProtocol,
    client_context,
    set_ttl_255,
)
from ..transport.sockopts import interface_index
from ..wire import DataItem, PeerType, StatusCode
from .base import (
    BuilderBase,
    DaemonArgumentError,
    DaemonBase,
    DaemonError,
    DestinationNotFoundError,
    _bind_error,
    _Conn,
    _mac_key,
)
from .events import ConnectFailed, PeerDiscovered, SessionConnected

if TYPE_CHECKING:
    from ..config import RouterConfig, StaticPeerConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Seconds one connection attempt (TCP, then TLS) may take.
CONNECT_TIMEOUT = 5.0
#: RFC 8305 §5 "Connection Attempt Delay": the next connection point is
#: tried this long after the previous one started, unless it failed sooner.
ATTEMPT_DELAY = 0.25


def _fmt_peer(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


class RouterDaemonBuilder(BuilderBase["RouterConfig"]):
    """Fluent construction: ``await RouterDaemon.builder().config(cfg).spawn()``."""

    async def spawn(self) -> RouterDaemon:
        """Start the daemon: discovery (if configured) and static peers."""
        if self._cfg is None:
            from ..config import RouterConfig

            self._cfg = RouterConfig()
        d = RouterDaemon(self._cfg, **self._common())
        await d.start()
        return d


class RouterDaemon(DaemonBase):
    """A DLEP router: one session per modem, discovery, static peers.

    Build with :meth:`builder`. Read state with :meth:`sessions` and
    :meth:`destinations`; follow changes with :meth:`subscribe`.
    """

    role = Role.ROUTER
    log = logging.getLogger("dlep.router")

    def __init__(self, config: RouterConfig, **common: Any) -> None:
        """``common``: registry, extensions, tls, use_tls, ssl_context and
        plugins, as :class:`DaemonBase` takes them (the builder fills them)."""
        super().__init__(config, **common)
        self.rcfg = config
        self._discovery: RouterDiscovery | None = None
        self._disc_socks: list[DiscoverySocket] = []
        self._disc_task: asyncio.Task[Any] | None = None
        self._busy_modems: set[str] = set()  # discovered modems being served
        self._static: dict[tuple[str, int], asyncio.Task[Any]] = {}
        #: What each static peer was connected with: (tls, profile), so a
        #: reload can tell a changed peer from an unchanged one.
        self._static_opts: dict[tuple[str, int], tuple[bool, str | None]] = {}
        #: Per-peer interoperability profile names, by (address, port).
        self._peer_profiles: dict[tuple[str, int], str] = {}

    @classmethod
    def builder(cls) -> RouterDaemonBuilder:
        """Start building a router daemon."""
        return RouterDaemonBuilder()

    async def start(self) -> None:
        """Connect to the static peers and start discovery (``spawn()`` calls this)."""
        self._loop = asyncio.get_running_loop()
        self._setup_tls(client_context)
        r = self.rcfg.router
        for peer in r.static_peers:
            # use_tls (config, or the builder's no_tls/with_tls) is a master switch.
            tls = self.use_tls and (peer.tls if peer.tls is not None else True)
            self.connect_static(peer.address, peer.port, tls=tls, profile=peer.profile)
        if r.discovery:
            await self.start_discovery()
        self.log.info(
            "router started: discovery %s, %d static peer(s), TLS %s",
            "on" if r.discovery else "off",
            len(r.static_peers),
            "on" if self.use_tls else "off",
        )

    # -- discovery -------------------------------------------------------------

    async def start_discovery(self) -> None:
        """Send Peer Discovery on the configured interface and connect to
        every modem that answers."""
        if self._discovery is not None:
            return
        net = self.cfg.network
        self._discovery = RouterDiscovery(
            self.cfg.timers.discovery_interval_ms,
            peer_type=PeerType(self.rcfg.router.peer_type),
            prefer_tls=self.use_tls,
            default_port=net.tcp_port,
            registry=self.registry,
            allow_fast=self.cfg.timers.allow_fast_timers,
        )
        errors: list[str] = []
        for enabled, family, group in (
            (net.discovery_v6, socket.AF_INET6, net.discovery_v6_group),
            (net.discovery_v4, socket.AF_INET, net.discovery_v4_group),
        ):
            if not enabled:
                continue
            try:
                ds = DiscoverySocket(
                    family, str(group), net.discovery_port, interface=net.interface, join=False
                )
            except (OSError, ValueError) as exc:
                why = _bind_error(exc, net.discovery_port) if isinstance(exc, OSError) else exc
                errors.append(f"IPv{6 if family == socket.AF_INET6 else 4}: {why}")
                continue
            assert self._loop is not None
            ds.start(self._loop, self._on_datagram)
            self._disc_socks.append(ds)
        if not self._disc_socks:
            self._discovery = None
            raise DaemonError(
                f"discovery could not start on interface {net.interface!r} port "
                f"{net.discovery_port}: " + "; ".join(errors or ["no address family enabled"])
            )
        for err in errors:
            self.log.warning("discovery: %s", err)
        self._disc_task = self._spawn(self._discovery_loop(), "router-discovery")
        self.log.info(
            "discovery on %s port %d every %d ms",
            net.interface or "any interface",
            net.discovery_port,
            self.cfg.timers.discovery_interval_ms,
        )

    async def stop_discovery(self) -> None:
        """Stop sending Peer Discovery (sessions stay up)."""
        if self._disc_task is not None:
            self._disc_task.cancel()
            self._disc_task = None
        for ds in self._disc_socks:
            ds.close()
        self._disc_socks.clear()
        self._discovery = None

    async def _discovery_loop(self) -> None:
        loop = asyncio.get_running_loop()
        engine = self._discovery
        assert engine is not None
        engine.start(loop.time())
        while True:
            for data in engine.datagrams_to_send():
                for ds in self._disc_socks:
                    try:
                        ds.send_group(data)
                    except OSError as exc:
                        self.log.warning("Peer Discovery send failed: %s", exc)
            when = engine.get_timer()
            if when is None:
                return
            await asyncio.sleep(max(0.0, when - loop.time()))
            engine.handle_timer(loop.time())

    def _on_datagram(self, data: bytes, src: IPAddress, port: int, ttl: int | None) -> None:
        engine = self._discovery
        if engine is None:
            return
        engine.counters.last_error = ""  # so the log below names this datagram's fault
        offer = engine.receive_datagram(data, src, port, ttl)
        if offer is None:
            if engine.counters.last_error:
                self.log.debug("ignored signal from %s: %s", src, engine.counters.last_error)
            return
        self._publish(
            PeerDiscovered(
                offer.source,
                offer.peer_type,
                tuple(
                    _fmt_peer(p.address, p.port) + (" tls" if p.tls else "")
                    for p in offer.connection_points
                ),
            )
        )
        key = str(offer.source)
        if key in self._busy_modems or self._closing:
            return
        self._busy_modems.add(key)
        self.log.info(
            "Peer Offer from %s (%s): %s",
            offer.source,
            offer.peer_type.description if offer.peer_type else "no peer type",
            ", ".join(_fmt_peer(p.address, p.port) for p in offer.connection_points),
        )
        self._spawn(self._serve_offer(key, offer), f"connect-{key}")

    async def _serve_offer(self, key: str, offer: PeerOffered) -> None:
        try:
            proto = await self._connect_any(offer.connection_points, ("discovered", key))
            if proto is not None:
                await proto.closed.wait()
        finally:
            self._busy_modems.discard(key)

    # -- static peers ------------------------------------------------------------

    def connect_static(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: bool | None = None,
        profile: str | None = None,
    ) -> None:
        """Keep a session with the modem at ``host:port`` (reconnects).

        ``profile``: interoperability profile name for this modem (None =
        ``router.profile``).
        """
        port = port if port is not None else self.cfg.network.tcp_port
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            raise DaemonArgumentError(f"static peer {host!r}: not an IP address", "host") from None
        key = (str(addr), port)
        if profile is not None:
            try:
                profile_by_name(profile)
            except ProfileError as exc:
                raise DaemonArgumentError(f"static peer {host!r}: {exc}", "profile") from None
            self._peer_profiles[key] = profile
        if key in self._static:
            return
        use_tls = self.use_tls if tls is None else tls
        self._static_opts[key] = (use_tls, profile)
        self._static[key] = self._spawn(
            self._static_loop(ConnectionPoint(addr, port, use_tls)),
            f"static-{_fmt_peer(addr, port)}",
        )

    def static_peers(self) -> list[tuple[str, int]]:
        """The static peers the daemon keeps sessions with: ``(address, port)``."""
        return list(self._static)

    async def disconnect_static(
        self, host: str, port: int | None = None, *, text: str = "static peer removed"
    ) -> None:
        """Stop keeping a session with the static peer ``host:port``: no more
        reconnects, and its session (if any) ends with Session Termination
        (bounded wait, as :meth:`shutdown`)."""
        port = port if port is not None else self.cfg.network.tcp_port
        try:
            key = (str(ipaddress.ip_address(host)), port)
        except ValueError:
            raise DaemonArgumentError(f"static peer {host!r}: not an IP address", "host") from None
        task = self._static.pop(key, None)
        if task is None:
            raise DaemonArgumentError(f"no static peer {host}:{port}", "host")
        self._static_opts.pop(key, None)
        self._peer_profiles.pop(key, None)
        task.cancel()
        conns = [
            c
            for c in self._conns.values()
            if c.origin[0] == "static" and (str(c.origin[1].address), c.origin[1].port) == key
        ]
        for conn in conns:
            s = conn.proto.session
            if s.state is State.IN_SESSION or s.state is State.INITIALIZING:
                self._call(
                    conn,
                    lambda now, s=s: s.terminate(  # type: ignore[misc]
                        StatusCode.SHUTTING_DOWN, text, now=now
                    ),
                )
            else:
                conn.proto.abort()
        await self._wait_closed(conns)

    async def set_static_peers(self, peers: Iterable[StaticPeerConfig]) -> tuple[int, int]:
        """Make the static peers these (a configuration reload): peers no
        longer listed are disconnected (Session Termination), new ones are
        connected, and the sessions of unchanged peers are left alone. A peer
        whose TLS or profile changed is reconnected: both are negotiated when
        the session starts. Returns ``(connected, disconnected)`` counts."""
        net = self.cfg.network
        wanted: dict[tuple[str, int], tuple[bool, str | None]] = {}
        for p in peers:
            port = p.port if p.port is not None else net.tcp_port
            try:
                key = (str(ipaddress.ip_address(p.address)), port)
            except ValueError:
                raise DaemonArgumentError(
                    f"static peer {p.address!r}: not an IP address", "host"
                ) from None
            if p.profile is not None:
                try:
                    profile_by_name(p.profile)
                except ProfileError as exc:
                    raise DaemonArgumentError(
                        f"static peer {p.address!r}: {exc}", "profile"
                    ) from None
            wanted[key] = (self.use_tls and (p.tls if p.tls is not None else True), p.profile)
        gone = [k for k in self._static if self._static_opts.get(k) != wanted.get(k)]
        for host, port in gone:
            self.log.info(
                "static peer %s removed or changed: disconnecting",
                _fmt_peer(ipaddress.ip_address(host), port),
            )
            await self.disconnect_static(host, port)
        added = 0
        for (host, port), (tls, profile) in wanted.items():
            if (host, port) not in self._static:
                self.connect_static(host, port, tls=tls, profile=profile)
                added += 1
        return added, len(gone)

    async def _static_loop(self, cp: ConnectionPoint) -> None:
        delay = self.cfg.timers.reconnect_interval_ms / 1000.0
        while not self._closing:
            proto = await self._connect_any((cp,), ("static", cp))
            if proto is not None:
                await proto.closed.wait()
            if self._closing:
                return
            await asyncio.sleep(delay)

    # -- connecting ----------------------------------------------------------------

    async def _connect_any(
        self, points: Iterable[ConnectionPoint], origin: Any
    ) -> SessionProtocol | None:
        """Connect to the first connection point that answers.

        The points are raced Happy-Eyeballs style (RFC 8305): one attempt
        starts every :data:`ATTEMPT_DELAY` seconds (at once when one fails),
        address families interleaved; the first TCP connection wins and the
        others are abandoned, so a dead point never delays the session.
        """
        reasons: list[str] = []
        usable: list[ConnectionPoint] = []
        last_peer = ""
        for cp in points:
            last_peer = _fmt_peer(cp.address, cp.port)
            if cp.tls and not self.use_tls:
                reasons.append(f"{last_peer} wants TLS, which is not configured here")
            elif not cp.tls and self.use_tls:
                msg = f"{last_peer} offers plaintext but TLS is required; refused"
                self.log.warning(msg)
                reasons.append(msg)
            else:
                usable.append(cp)
        won: tuple[ConnectionPoint, socket.socket] | None = None
        if usable:
            won = await self._race(_interleave(usable), reasons)
        if won is not None:
            cp, sock = won
            try:
                return await self._open(cp, sock, origin)
            except TimeoutError:
                reasons.append(f"{_fmt_peer(cp.address, cp.port)}: TLS handshake timed out")
            except (OSError, ssl.SSLError, DaemonError) as exc:
                reasons.append(f"{_fmt_peer(cp.address, cp.port)}: {exc or type(exc).__name__}")
        if reasons and not self._closing:
            # Counted under the name the operator knows: a static peer as
            # configured, a discovered modem by its address.
            name = (
                _fmt_peer(origin[1].address, origin[1].port)
                if origin[0] == "static"
                else (str(origin[1]))
            )
            self.connect_failures[name] = self.connect_failures.get(name, 0) + 1
            reason = "; ".join(reasons)
            self.log.warning("could not connect to modem: %s", reason)
            self._publish(ConnectFailed(last_peer, reason))
        return None

    async def _race(
        self, points: list[ConnectionPoint], reasons: list[str]
    ) -> tuple[ConnectionPoint, socket.socket] | None:
        """Staggered TCP connects (RFC 8305 §5); the first to succeed wins."""
        waiting = list(points)
        running: dict[asyncio.Task[socket.socket], ConnectionPoint] = {}
        won: tuple[ConnectionPoint, socket.socket] | None = None
        try:
            while won is None and (waiting or running):
                if waiting:
                    cp = waiting.pop(0)
                    running[asyncio.ensure_future(self._tcp_connect(cp))] = cp
                done, _ = await asyncio.wait(
                    running,
                    timeout=ATTEMPT_DELAY if waiting else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in done:
                    cp = running.pop(task)
                    peer = _fmt_peer(cp.address, cp.port)
                    exc = task.exception()
                    if exc is None:
                        if won is None:
                            won = (cp, task.result())
                        else:
                            task.result().close()  # a second winner in the same turn
                    elif isinstance(exc, TimeoutError):
                        why = f"no answer within {CONNECT_TIMEOUT:g} s"
                        if self.cfg.network.gtsm_enforce:
                            # IP_MINTTL also drops the kernel's RST (TTL 64) for a
                            # closed port, so "refused" looks like silence.
                            why += (
                                " (gtsm_enforce drops replies sent with TTL < 255, even a refusal)"
                            )
                        reasons.append(f"{peer}: {why}")
                    else:
                        reasons.append(f"{peer}: {exc or type(exc).__name__}")
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(BaseException):
                    sock = await task
                    sock.close()
        return won

    async def _tcp_connect(self, cp: ConnectionPoint) -> socket.socket:
        """One TCP connection attempt, with our socket options (GTSM)."""
        loop = asyncio.get_running_loop()
        net = self.cfg.network
        family = socket.AF_INET6 if cp.address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            set_ttl_255(sock, enforce=net.gtsm_enforce)
            if family == socket.AF_INET6:
                scope = interface_index(net.interface) if cp.address.is_link_local else 0
                target: tuple[Any, ...] = (str(cp.address), cp.port, 0, scope)
            else:
                target = (str(cp.address), cp.port)
            await asyncio.wait_for(loop.sock_connect(sock, target), CONNECT_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _open(self, cp: ConnectionPoint, sock: socket.socket, origin: Any) -> SessionProtocol:
        """Run TLS (if asked) and the session on a connected socket."""
        loop = asyncio.get_running_loop()
        made: list[SessionProtocol] = []
        try:
            peer = _fmt_peer(cp.address, cp.port)
            session = Session(Role.ROUTER, self._router_session_config((str(cp.address), cp.port)))

            def factory() -> SessionProtocol:
                proto = self._new_protocol(session, peer, cp.tls, origin)
                # Announce the connection from connection_made: the session
                # can come up before this coroutine resumes, and subscribers
                # must see SessionConnected before SessionUp.
                proto.on_connected = lambda p: self._connected(p, cp.tls)
                made.append(proto)
                return proto

            ctx = self._ssl_ctx if cp.tls else None
            server_name = (self.tls_settings.server_name or str(cp.address)) if ctx else None
            _, proto = await asyncio.wait_for(
                loop.create_connection(factory, sock=sock, ssl=ctx, server_hostname=server_name),
                CONNECT_TIMEOUT,
            )
        except BaseException:
            for p in made:  # the protocol exists but never got a connection
                self._forget_protocol(p)
            sock.close()
            raise
        return proto

    def _connected(self, proto: SessionProtocol, tls: bool) -> None:
        conn = self._conn_of(proto)
        if conn is not None:
            self.log.info(
                "session %s: connected to %s%s", conn.id, conn.peer, " over TLS" if tls else ""
            )
            self._publish(SessionConnected(conn.id, conn.peer, tls))

    def _router_session_config(self, peer: tuple[str, int] | None = None) -> Any:
        r = self.rcfg.router
        name = self._peer_profiles.get(peer, r.profile) if peer is not None else r.profile
        return self._session_config(
            r.extensions,
            peer_type=PeerType(r.peer_type),
            auto_accept_destinations=r.auto_accept_destinations,
            wire_translation=profile_by_name(name),
        )

    # -- API -------------------------------------------------------------------

    async def request_link_characteristics(
        self,
        mac: bytes | str | DestKey,
        *,
        cdrr: int | None = None,
        cdrt: int | None = None,
        latency: int | None = None,
        extra: Sequence[DataItem] = (),
        session_id: str | None = None,
    ) -> None:
        """Send a Link Characteristics Request; the answer arrives as a
        ``LinkCharacteristicsResponse`` event. ``extra``: items of negotiated
        extensions (e.g. RFC 8629 Hop Control) and identity items."""
        conn, key = self._conn_for(mac, session_id, extra=extra)
        s = conn.proto.session
        rest = [i for i in extra if i not in key.ident]
        self._call(
            conn,
            lambda now: s.request_link_characteristics(
                key, cdrr=cdrr, cdrt=cdrt, latency=latency, extra=rest, now=now
            ),
        )

    async def announce_destination(
        self,
        mac: bytes | str,
        *,
        addresses: Iterable[str] = (),
        extra: Sequence[DataItem] = (),
        session_id: str | None = None,
    ) -> None:
        """Send Destination Announce (e.g. a multicast destination)."""
        key = _mac_key(mac)
        conn = self._get_conn(session_id)
        s = conn.proto.session
        self._call(
            conn,
            lambda now: s.announce_destination(
                key, addresses=list(addresses), extra=list(extra), now=now
            ),
        )

    async def drop_destination(
        self,
        mac: bytes | str | DestKey,
        *,
        extra: Sequence[DataItem] = (),
        session_id: str | None = None,
    ) -> None:
        """Tell the modem we no longer want this destination (``extra``: its
        identity items, RFC 8703)."""
        conn, key = self._conn_for(mac, session_id, extra=extra)
        s = conn.proto.session
        self._call(conn, lambda now: s.drop_destination(key, now=now))

    async def respond_destination_up(
        self,
        mac: bytes | str | DestKey,
        accept: bool,
        *,
        extra: Sequence[DataItem] = (),
        session_id: str | None = None,
    ) -> None:
        """Answer a ``DestinationUpRequested`` (auto-accept off)."""
        conn, key = self._conn_for(mac, session_id, any_state=True, extra=extra)
        s = conn.proto.session
        self._call(conn, lambda now: s.respond_destination_up(key, accept, now=now))

    def pending_destinations(
        self, session_id: str | None = None
    ) -> list[tuple[str, DestinationInfo]]:
        """Destinations the modem reported up that await our answer
        (``router.auto_accept_destinations = false``): ``[(session_id,
        info), ...]``. Answer each with :meth:`respond_destination_up`."""
        out: list[tuple[str, DestinationInfo]] = []
        for conn in self._conns.values():
            if session_id is not None and conn.id != session_id:
                continue
            out.extend((conn.id, info) for info in conn.proto.session.awaiting_decision.values())
        return out

    async def update_session(
        self,
        *,
        add: Iterable[str] = (),
        drop: Iterable[str] = (),
        extra: Sequence[DataItem] = (),
        session_id: str | None = None,
    ) -> None:
        """Announce changes of the router's own addresses and/or send items of
        negotiated extensions (e.g. RFC 8629 Hop Control) in a Session Update."""
        targets = [self._get_conn(session_id)] if session_id else list(self._conns.values())
        for conn in targets:
            s = conn.proto.session
            self._call(
                conn,
                lambda now, s=s: s.update_session(  # type: ignore[misc]
                    add=list(add), drop=list(drop), extra=list(extra), now=now
                ),
            )

    def _conn_for(
        self,
        mac: bytes | str | DestKey,
        session_id: str | None,
        *,
        any_state: bool = False,
        extra: Sequence[DataItem] = (),
    ) -> tuple[_Conn, DestKey]:
        """The session that carries a destination, and its key there."""
        if isinstance(mac, DestKey):
            key = mac
        else:
            ids = self.registry.identity_items
            key = DestKey(_mac_key(mac), tuple(i for i in extra if i.TYPE in ids))
        if session_id is not None:
            return self._get_conn(session_id), key
        for conn in self._conns.values():
            s = conn.proto.session
            if s.is_up(key) or (any_state and s.knows(key)):
                return conn, key
        raise DestinationNotFoundError(f"mac: no destination {key}")

    async def shutdown(self) -> None:
        """End every session with Session Termination (bounded wait), stop."""
        if self._closing:
            return
        self._closing = True
        await self.stop_discovery()
        for task in self._static.values():
            task.cancel()
        await self._shutdown_sessions()
        await self._stop_tasks()
        self.log.info("router stopped")

    @property
    def discovery(self) -> RouterDiscovery | None:
        """The discovery engine while discovery runs (counters live here)."""
        return self._discovery


def _interleave(points: list[ConnectionPoint]) -> list[ConnectionPoint]:
    """Alternate address families (RFC 8305 §4), keeping the offered order
    within each and starting with the family the modem listed first."""
    first = points[0].address.version
    a = [p for p in points if p.address.version == first]
    b = [p for p in points if p.address.version != first]
    out: list[ConnectionPoint] = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


__all__ = ["ATTEMPT_DELAY", "CONNECT_TIMEOUT", "Metrics", "RouterDaemon", "RouterDaemonBuilder"]
