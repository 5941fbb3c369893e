"""The router side: discover modems, hold one session per modem."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import random
import socket
import ssl
import time
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
    SessionTerminated,
    SessionUp,
    State,
)
from ..transport import (
    DiscoverySocket,
    SessionProtocol,
    client_context,
    describe_tls_error,
    peer_ttl,
    set_ttl_255,
)
from ..transport.sockopts import interface_index
from ..wire import DataItem, PeerType, status_name
from .base import (
    BuilderBase,
    DaemonArgumentError,
    DaemonBase,
    DaemonError,
    DestinationNotFoundError,
    UnknownPeerError,
    _bind_error,
    _Conn,
    _mac_key,
)
from .events import ConnectFailed, PeerDiscovered, SessionConnected
from .peers import Backoff, Peer, PeerInfo, classify, describe
from .repeats import Repeats

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
        #: Every configured peer (static, API, discovered), in session or
        #: not: the one place their state lives (peers() snapshots it).
        self._peers: dict[tuple[str, int], Peer] = {}
        t = config.timers
        self._repeats = Repeats(self.log)
        #: Reconnect delays; ``rng`` is replaceable for deterministic tests.
        self.backoff = Backoff(
            t.reconnect_interval_ms / 1000.0,
            t.reconnect_max_interval_ms / 1000.0,
            t.reconnect_jitter_percent / 100.0,
            random.Random(),
        )
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
            self.connect_static(
                peer.address,
                peer.port,
                tls=tls,
                profile=peer.profile,
                gtsm_enforce=peer.gtsm_enforce,
            )
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
                    key = ("discovery-send", ds.family)
                    try:
                        ds.send_group(data)
                        if self.log.isEnabledFor(logging.DEBUG):
                            self._trace_signal("tx", data, ds.group, ds.port)
                    except OSError as exc:
                        self._repeats.report(key, logging.WARNING, self._send_failed(ds, exc))
                    else:
                        self._repeats.clear(key, f"Peer Discovery to {ds.group} is sent again")
            when = engine.get_timer()
            if when is None:
                return
            await asyncio.sleep(max(0.0, when - loop.time()))
            engine.handle_timer(loop.time())

    def _send_failed(self, ds: DiscoverySocket, exc: OSError) -> str:
        why = exc.strerror or str(exc)
        if ds.family == socket.AF_INET6 and exc.errno == errno.EADDRNOTAVAIL:
            why = (
                f"interface {self.cfg.network.interface or '(any)'} has no IPv6 link-local "
                "address (yet?); Peer Discovery over IPv6 needs one"
            )
        return f"Peer Discovery to {ds.group} not sent: {why}"

    def _on_datagram(self, data: bytes, src: IPAddress, port: int, ttl: int | None) -> None:
        engine = self._discovery
        if engine is None:
            return
        if self.log.isEnabledFor(logging.DEBUG):
            self._trace_signal("rx", data, src, port, ttl)
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
        if key in self._busy_modems or self._closing or not offer.connection_points:
            return
        self._busy_modems.add(key)
        pkey = (key, offer.connection_points[0].port)
        peer = self._peers.get(pkey)
        if peer is None:
            peer = Peer(
                key,
                pkey[1],
                "discovered",
                any(p.tls for p in offer.connection_points),
                self._gtsm_for(pkey, None),
                self._time(),
            )
            self._peers[pkey] = peer
        self.log.info(
            "Peer Offer from %s (%s): %s",
            offer.source,
            offer.peer_type.description if offer.peer_type else "no peer type",
            ", ".join(_fmt_peer(p.address, p.port) for p in offer.connection_points),
        )
        peer.task = self._spawn(self._serve_offer(key, offer, peer), f"connect-{key}")

    async def _serve_offer(self, key: str, offer: PeerOffered, peer: Peer) -> None:
        try:
            peer.set_state("connecting", self._time())
            peer.next_retry = None
            proto = await self._connect_any(offer.connection_points, peer)
            if proto is not None:
                await proto.closed.wait()
            # A discovered modem is tried again when it next offers itself.
            peer.set_state("failed", self._time())
        finally:
            peer.task = None
            self._busy_modems.discard(key)

    # -- static peers ------------------------------------------------------------

    def connect_static(
        self,
        host: str,
        port: int | None = None,
        *,
        tls: bool | None = None,
        profile: str | None = None,
        gtsm_enforce: bool | None = None,
        origin: str = "static",
    ) -> None:
        """Keep a session with the modem at ``host:port``: reconnect, backing
        off exponentially while it fails (see :meth:`peers`).

        ``profile``: interoperability profile name for this modem (None =
        ``router.profile``). ``gtsm_enforce``: drop its packets sent with a
        TTL below 255 (None: the profile's choice, else
        ``network.gtsm_enforce``). ``origin``: ``"static"`` or ``"api"``, as
        :attr:`PeerInfo.origin` shows it.
        """
        port = port if port is not None else self.cfg.network.tcp_port
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            raise DaemonArgumentError(f"static peer {host!r}: not an IP address", "host") from None
        key = (str(addr), port)
        known = self._peers.get(key)
        limit = self.rcfg.router.max_api_peers
        if (
            origin == "api"
            and (known is None or known.origin == "discovered")
            and sum(p.origin == "api" for p in self._peers.values()) >= limit
        ):
            self._count_refusal("max_api_peers")
            raise DaemonError(
                f"{limit} peers were added through the API already (router.max_api_peers); "
                "disconnect one first"
            )
        if profile is not None:
            try:
                profile_by_name(profile)
            except ProfileError as exc:
                raise DaemonArgumentError(f"static peer {host!r}: {exc}", "profile") from None
            self._peer_profiles[key] = profile
        old = self._peers.get(key)
        if old is not None and old.origin != "discovered":
            return
        use_tls = self.use_tls if tls is None else tls
        peer = Peer(key[0], port, origin, use_tls, self._gtsm_for(key, gtsm_enforce), self._time())
        self._peers[key] = peer
        peer.task = self._spawn(
            self._static_loop(ConnectionPoint(addr, port, use_tls), peer),
            f"static-{_fmt_peer(addr, port)}",
        )

    def _gtsm_for(self, key: tuple[str, int], explicit: bool | None) -> bool:
        """GTSM for one peer: its own setting, else its profile's, else the network's."""
        if explicit is not None:
            return explicit
        name = self._peer_profiles.get(key, self.rcfg.router.profile)
        profile = profile_by_name(name)
        by_profile = profile.gtsm_enforce if profile is not None else None
        return self.cfg.network.gtsm_enforce if by_profile is None else by_profile

    async def _static_loop(self, cp: ConnectionPoint, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            peer.set_state("connecting", loop.time())
            peer.next_retry = None
            proto = await self._connect_any((cp,), peer)
            if proto is not None:
                await proto.closed.wait()
            if self._closing:
                return
            # failures is 0 after a session that was up: the base interval.
            delay = self.backoff.delay(peer.failures)
            peer.next_retry = loop.time() + delay
            peer.set_state("backing-off", loop.time())
            await asyncio.sleep(delay)

    # -- the peer table -----------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        """Snapshot of every configured peer (static, ``api`` = added with
        :meth:`connect_static` through the management API, and discovered
        modems), whether or not it is in session."""
        out: list[PeerInfo] = []
        # Peer times are the loop's monotonic clock: convert to Unix time.
        wall = time.time() - self._time() if self._loop is not None else 0.0
        for p in self._peers.values():
            conn = self._conn_of(p.proto) if p.proto is not None else None
            state = p.state
            if conn is not None:
                state = conn.proto.session.state.value
            addr = ipaddress.ip_address(p.address)
            out.append(
                PeerInfo(
                    peer=_fmt_peer(addr, p.port),
                    address=p.address,
                    port=p.port,
                    origin=p.origin,
                    tls=p.tls,
                    state=state,
                    failure=p.failure,
                    last_error=p.last_error,
                    failures=p.failures,
                    next_retry=p.next_retry + wall if p.next_retry is not None else None,
                    session_id=conn.id if conn is not None else None,
                    since=p.since + wall,
                    gtsm_enforce=p.gtsm_enforce,
                )
            )
        return out

    async def disconnect(self, host: str, port: int | None = None) -> PeerInfo:
        """Forget a configured peer: stop reconnecting to it and end its
        session (Session Termination) if it has one. ``port`` None matches the
        peer's address alone (an error if two peers share it). A discovered
        modem is connected to again when it next answers Peer Discovery.
        Returns the peer as it was."""
        try:
            addr = str(ipaddress.ip_address(host.strip().strip("[]")))
        except ValueError:
            raise DaemonArgumentError(f"host: {host!r} is not an IP address", "host") from None
        found = [p for p in self._peers.values() if p.address == addr and port in (None, p.port)]
        if not found:
            raise UnknownPeerError(
                f"peer: no configured peer {addr}" + (f" port {port}" if port else "")
            )
        if len(found) > 1:
            raise DaemonArgumentError(
                f"peer: {len(found)} peers at {addr}; say which port: "
                + ", ".join(str(p.port) for p in found),
                "port",
            )
        peer = found[0]
        before = next(i for i in self.peers() if (i.address, i.port) == peer.key)
        del self._peers[peer.key]
        self._peer_profiles.pop(peer.key, None)
        if peer.task is not None:
            peer.task.cancel()
        conn = self._conn_of(peer.proto) if peer.proto is not None else None
        if conn is not None and not conn.proto.closed.is_set():
            if conn.proto.session.state in (State.IN_SESSION, State.INITIALIZING):
                await self.terminate_session(conn.id)
            else:
                conn.proto.abort()
        self.log.info("peer %s (%s) forgotten", before.peer, peer.origin)
        return before

    def static_peers(self) -> list[tuple[str, int]]:
        """The static peers (from the configuration) the daemon keeps
        sessions with: ``(address, port)``."""
        return [p.key for p in self._peers.values() if p.origin == "static"]

    async def disconnect_static(self, host: str, port: int | None = None) -> None:
        """Stop keeping a session with the static peer ``host:port``: no more
        reconnects, and its session (if any) ends with Session Termination
        (bounded wait). DaemonArgumentError if it is not a static peer."""
        port = port if port is not None else self.cfg.network.tcp_port
        try:
            key = (str(ipaddress.ip_address(host)), port)
        except ValueError:
            raise DaemonArgumentError(f"static peer {host!r}: not an IP address", "host") from None
        peer = self._peers.get(key)
        if peer is None or peer.origin != "static":
            raise DaemonArgumentError(f"no static peer {host}:{port}", "host")
        await self.disconnect(key[0], port)

    async def set_static_peers(self, peers: Iterable[StaticPeerConfig]) -> tuple[int, int]:
        """Make the static peers these (a configuration reload): peers no
        longer listed are disconnected (Session Termination), new ones are
        connected, and the sessions of unchanged peers are left alone. A peer
        whose TLS, profile or GTSM setting changed is reconnected: they apply
        when the session starts. Returns ``(connected, disconnected)`` counts."""
        net = self.cfg.network
        wanted: dict[tuple[str, int], StaticPeerConfig] = {}
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
            wanted[key] = p

        def same(peer: Peer, p: StaticPeerConfig) -> bool:
            tls = self.use_tls and (p.tls if p.tls is not None else True)
            return (
                peer.tls == tls
                and self._peer_profiles.get(peer.key) == p.profile
                and peer.gtsm_enforce == self._gtsm_for(peer.key, p.gtsm_enforce)
            )

        gone = [
            peer
            for peer in self._peers.values()
            if peer.origin == "static"
            and (peer.key not in wanted or not same(peer, wanted[peer.key]))
        ]
        for peer in gone:
            self.log.info(
                "static peer %s removed or changed: disconnecting",
                _fmt_peer(ipaddress.ip_address(peer.address), peer.port),
            )
            await self.disconnect(peer.address, peer.port)
        added = 0
        for (host, port), p in wanted.items():
            if (host, port) not in self._peers:
                tls = self.use_tls and (p.tls if p.tls is not None else True)
                self.connect_static(
                    host, port, tls=tls, profile=p.profile, gtsm_enforce=p.gtsm_enforce
                )
                added += 1
        return added, len(gone)

    # -- connecting ----------------------------------------------------------------

    async def _connect_any(
        self, points: Iterable[ConnectionPoint], peer: Peer
    ) -> SessionProtocol | None:
        """Connect to the first connection point that answers.

        The points are raced Happy-Eyeballs style (RFC 8305): one attempt
        starts every :data:`ATTEMPT_DELAY` seconds (at once when one fails),
        address families interleaved; the first TCP connection wins and the
        others are abandoned, so a dead point never delays the session.
        A failure is recorded in ``peer`` (kind, error); the session, once
        open, in ``peer.proto``.
        """
        reasons: list[str] = []
        kinds: list[str] = []
        usable: list[ConnectionPoint] = []
        last_peer = ""
        for cp in points:
            last_peer = _fmt_peer(cp.address, cp.port)
            if cp.tls and not self.use_tls:
                reasons.append(f"{last_peer} wants TLS, which is not configured here")
                kinds.append("tls-failed")
            elif not cp.tls and self.use_tls:
                msg = f"{last_peer} offers plaintext but TLS is required; refused"
                self.log.warning(msg)
                reasons.append(msg)
                kinds.append("tls-failed")
            else:
                usable.append(cp)
        won: tuple[ConnectionPoint, socket.socket] | None = None
        silent: list[ConnectionPoint] = []
        if usable:
            won = await self._race(_interleave(usable), reasons, kinds, peer.gtsm_enforce, silent)
        if won is None and silent and peer.gtsm_enforce and not self._closing:
            found = await self._diagnose_gtsm(silent[0], peer)
            if found is not None:
                kinds.insert(0, found[0])
                reasons.insert(0, found[1])
        if won is not None:
            cp, sock = won
            where = _fmt_peer(cp.address, cp.port)
            try:
                proto = await self._open(cp, sock, peer)
            except TimeoutError:
                reasons.append(f"{where}: TLS handshake timed out")
                kinds.append("tls-failed")
            except (OSError, ssl.SSLError, DaemonError) as exc:
                kinds.append(classify(exc, tls_stage=cp.tls))
                reasons.append(f"{where}: {describe_tls_error(exc) if cp.tls else describe(exc)}")
            else:
                return proto
        if reasons and not self._closing:
            reason = "; ".join(reasons)
            self._publish(ConnectFailed(last_peer, reason))
            # Counted under the name the operator knows (a static peer as
            # configured), the one the metrics' peer label uses.
            name = _fmt_peer(ipaddress.ip_address(peer.address), peer.port)
            self.connect_failures[name] = self.connect_failures.get(name, 0) + 1
            # The most telling kind: a TLS failure over a dead alternative.
            kind = "tls-failed" if "tls-failed" in kinds else (kinds[0] if kinds else "error")
            repeated = reason == peer.last_error
            peer.failed(kind, reason, self._time())
            n = peer.failures
            if not repeated:
                self.log.warning("could not connect to modem: %s", reason)
            elif n & (n - 1) == 0:
                # The same failure again: a summary at 2, 4, 8... attempts,
                # not a line per retry (dlepctl peers has every detail).
                self.log.warning("still cannot connect to modem (%d attempts): %s", n, reason)
            else:
                self.log.debug("could not connect to modem (attempt %d): %s", n, reason)
        return None

    async def _race(
        self,
        points: list[ConnectionPoint],
        reasons: list[str],
        kinds: list[str],
        gtsm_enforce: bool,
        silent: list[ConnectionPoint],
    ) -> tuple[ConnectionPoint, socket.socket] | None:
        """Staggered TCP connects (RFC 8305 §5); the first to succeed wins."""
        waiting = list(points)
        running: dict[asyncio.Task[socket.socket], ConnectionPoint] = {}
        won: tuple[ConnectionPoint, socket.socket] | None = None
        try:
            while won is None and (waiting or running):
                if waiting:
                    cp = waiting.pop(0)
                    running[asyncio.ensure_future(self._tcp_connect(cp, gtsm_enforce))] = cp
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
                        kinds.append("timeout")
                        silent.append(cp)
                        why = f"no answer within {CONNECT_TIMEOUT:g} s"
                        if gtsm_enforce:
                            # IP_MINTTL also drops the kernel's RST (TTL 64) for a
                            # closed port, so "refused" looks like silence.
                            why += (
                                " (gtsm_enforce drops replies sent with TTL < 255, even a refusal)"
                            )
                        reasons.append(f"{peer}: {why}")
                    else:
                        kinds.append(classify(exc))
                        reasons.append(f"{peer}: {describe(exc)}")
        finally:
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(BaseException):
                    sock = await task
                    sock.close()
        return won

    async def _diagnose_gtsm(self, cp: ConnectionPoint, peer: Peer) -> tuple[str, str] | None:
        """After silence with GTSM on: does the modem answer with a lower TTL?

        Independent DLEP implementations commonly send TCP with TTL 64; with
        GTSM the kernel drops all of it and the attempt just times out. A
        few diagnostic connections without the minimum (and with varying
        ones) find the TTL it uses. Logged once per peer and TTL (every
        retry re-checks, quietly); returns the failure kind and text, None
        if the modem does not answer at all (then it is simply unreachable).
        """
        scope = 0
        if cp.address.version == 6 and cp.address.is_link_local:
            scope = interface_index(self.cfg.network.interface)
        where = _fmt_peer(cp.address, cp.port)
        try:
            seen = await peer_ttl(cp.address, cp.port, scope=scope)
        except (OSError, ValueError) as exc:
            self.log.debug("GTSM diagnosis of %s failed: %s", where, exc)
            return None
        if seen is None or seen[0] >= 255:
            return None
        ttl, refused = seen
        if refused:
            # Its kernel's reset (TTL < 255) was dropped: the port is closed,
            # which says nothing about whether the modem implements GTSM.
            return "refused", (
                f"{where}: connection refused (nothing listens on that port; the reset "
                f"came with TTL {ttl}, which GTSM drops, hence the silence)"
            )
        short = f"{where}: answers with TTL {ttl}, not 255: GTSM (gtsm_enforce) drops its packets"
        if peer.gtsm_ttl_logged != ttl:
            peer.gtsm_ttl_logged = ttl
            if peer.origin == "static":
                fix = "set gtsm_enforce = false on its router.static_peers entry"
            elif peer.origin == "api":
                fix = "configure it as a static peer with gtsm_enforce = false"
            else:
                fix = (
                    "make it a static peer with gtsm_enforce = false, or give "
                    "router.profile a profile that relaxes GTSM"
                )
            self.log.error(
                "GTSM: modem %s answers with TTL %d, not 255 (RFC 8175 §3 wants 255), so "
                "every packet from it is dropped and no session can start. It does not "
                "implement GTSM. To accept it, %s (this modem only; network.gtsm_enforce "
                "= false would relax it for every peer).",
                where,
                ttl,
                fix,
            )
        return "gtsm-dropped", short

    async def _tcp_connect(self, cp: ConnectionPoint, gtsm_enforce: bool) -> socket.socket:
        """One TCP connection attempt, with our socket options (GTSM)."""
        loop = asyncio.get_running_loop()
        net = self.cfg.network
        family = socket.AF_INET6 if cp.address.version == 6 else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            set_ttl_255(sock, enforce=gtsm_enforce)
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

    async def _open(self, cp: ConnectionPoint, sock: socket.socket, peer: Peer) -> SessionProtocol:
        """Run TLS (if asked) and the session on a connected socket."""
        loop = asyncio.get_running_loop()
        made: list[SessionProtocol] = []
        try:
            where = _fmt_peer(cp.address, cp.port)
            session = Session(Role.ROUTER, self._router_session_config((str(cp.address), cp.port)))

            def factory() -> SessionProtocol:
                proto = self._new_protocol(session, where, cp.tls, ("peer", peer.key))
                # Before any event: the session may come up before _open returns.
                peer.proto = proto
                # Announce the connection from connection_made: the session
                # can come up before this coroutine resumes, and subscribers
                # must see SessionConnected before SessionUp.
                proto.on_connected = lambda p: self._connected(p, cp.tls)
                made.append(proto)
                return proto

            ctx = self._ssl_ctx if cp.tls else None
            server_name = (self.tls_settings.server_name or str(cp.address)) if ctx else None
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    factory,
                    sock=sock,
                    ssl=ctx,
                    server_hostname=server_name,
                    ssl_handshake_timeout=(
                        self.cfg.tls.handshake_timeout_ms / 1000.0 if ctx else None
                    ),
                ),
                CONNECT_TIMEOUT,
            )
        except BaseException:
            for p in made:  # the protocol exists but never got a connection
                self._forget_protocol(p)
            peer.proto = None
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

    def _handle_event(self, conn: _Conn, ev: Any) -> None:
        # Only the peer table's book-keeping: which peer, if any, the session is with.
        if not isinstance(ev, SessionUp | SessionTerminated) or not isinstance(conn.origin, tuple):
            return
        peer = self._peers.get(conn.origin[1])
        if peer is None or peer.proto is not conn.proto:
            return
        if isinstance(ev, SessionUp):
            peer.failures = 0
            peer.failure = ""  # last_error stays: what went wrong before
            peer.set_state("in-session", self._time())
            return
        status = status_name(ev.status) if ev.status is not None else "no Session Termination"
        text = f"session {conn.id} ended ({status}): {ev.reason}"
        now = self._time()
        if conn.up_since is not None:
            # It was up: the peer works, so the next attempt starts from the base delay.
            peer.failures = 0
            peer.failure, peer.last_error, peer.since = "closed", text, now
        else:
            lost = conn.proto.close_exc
            kind = "closed"
            why = ""
            if isinstance(lost, ssl.SSLError):
                # TLS 1.3: the modem checks our certificate after our side
                # of the handshake completed, so its refusal arrives here.
                why = describe_tls_error(lost)
            elif conn.tls and ev.status is None and ev.by_peer:
                # The same refusal without an alert (the modem just closed).
                why = "the modem closed the connection before the session started: it " + (
                    "probably requires a client certificate, and we have none (tls.cert)"
                    if self.tls_settings.cert is None
                    else "probably rejected our certificate (check its tls.ca)"
                )
            if why:
                kind, text = "tls-failed", f"TLS failed: {why}"
                if text != peer.last_error:  # once, not per retry
                    self.log.warning("TLS with modem %s failed: %s", conn.peer, why)
            peer.failed(kind, text, now)

    def _router_session_config(self, peer: tuple[str, int] | None = None) -> Any:
        r = self.rcfg.router
        name = self._peer_profiles.get(peer, r.profile) if peer is not None else r.profile
        return self._session_config(
            r.extensions,
            peer_type=PeerType(r.peer_type),
            auto_accept_destinations=r.auto_accept_destinations,
            max_peer_destinations=r.max_destinations_per_session,
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
        wall = self._wall_offset()
        for conn in self._conns.values():
            if session_id is not None and conn.id != session_id:
                continue
            for info in conn.proto.session.awaiting_decision.values():
                out.append((conn.id, info if wall is None else info.on_clock(wall)))
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
        for peer in self._peers.values():
            if peer.task is not None:
                peer.task.cancel()
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
