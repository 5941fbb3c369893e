"""Prometheus metrics for a running daemon (``[metrics]`` in the configuration).

:class:`DaemonCollector` is a ``prometheus_client`` custom collector: at each
scrape it takes one snapshot of the daemon (``sessions()``,
``destinations()`` and the daemon-level counters) on the daemon's event loop
and turns it into metric families. Nothing is counted on the protocol path,
so an idle endpoint costs nothing.

:class:`MetricsServer` serves it with ``prometheus_client``'s HTTP server (a
daemon thread) on the configured address::

    server = MetricsServer(daemon, "127.0.0.1", 9854, max_destinations=1000)
    server.start()           # binds now; OSError if the address is taken
    ...
    await server.aclose()

Every series, its labels and its unit are listed in ``docs/metrics.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .. import __version__
from ..ext.display import KNOWN_GAUGES, describe, extension_name
from ..fsm import DestinationInfo, Metrics
from ..fsm.plugins import GaugeSample, GaugeSpec

if TYPE_CHECKING:
    from ..config import MetricsEndpointConfig
    from ..daemon import SessionInfo
    from ..daemon.base import DaemonBase

__all__ = [
    "DEFAULT_MAX_DESTINATIONS",
    "DaemonCollector",
    "MetricsServer",
    "start_metrics_server",
]

log = logging.getLogger("dlep.metrics")

DEFAULT_MAX_DESTINATIONS: Final = 1000
#: How long a scrape waits for the event loop to take the snapshot.
SNAPSHOT_TIMEOUT: Final = 5.0

#: (metric field, series suffix, help, divisor) for the per-destination and
#: per-session metric gauges: value / divisor is in Prometheus base units
#: (bytes, not bits: promtool's lint insists on the base unit).
_METRIC_SERIES: Final[tuple[tuple[str, str, str, float], ...]] = (
    (
        "mdrr",
        "mdrr_bytes_per_second",
        "Maximum Data Rate Receive (bytes/s; DLEP reports bits/s)",
        8.0,
    ),
    (
        "mdrt",
        "mdrt_bytes_per_second",
        "Maximum Data Rate Transmit (bytes/s; DLEP reports bits/s)",
        8.0,
    ),
    (
        "cdrr",
        "cdrr_bytes_per_second",
        "Current Data Rate Receive (bytes/s; DLEP reports bits/s)",
        8.0,
    ),
    (
        "cdrt",
        "cdrt_bytes_per_second",
        "Current Data Rate Transmit (bytes/s; DLEP reports bits/s)",
        8.0,
    ),
    ("latency", "latency_seconds", "Latency (seconds; DLEP reports microseconds)", 1e6),
    ("resources", "resources_ratio", "Resources, 0-1 (DLEP reports percent)", 100.0),
    ("rlqr", "rlqr_ratio", "Relative Link Quality Receive, 0-1 (DLEP reports percent)", 100.0),
    ("rlqt", "rlqt_ratio", "Relative Link Quality Transmit, 0-1 (DLEP reports percent)", 100.0),
    ("mtu", "mtu_bytes", "Maximum Transmission Unit (octets)", 1.0),
)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    role: str
    sessions: list[SessionInfo]
    destinations: list[tuple[str, DestinationInfo]]
    heartbeat_timeouts: dict[str, int]
    sessions_ended: dict[str, int]
    ended_errors: dict[str, int]
    #: Events subscribers did not get one by one (dropped, coalesced).
    subscriber_events: dict[str, int]
    #: What the daemon's bounds turned away, by config key (docs/hardening.md).
    bound_refusals: dict[str, int] = field(default_factory=dict)
    #: Extension Type Value -> name, for the daemon's own (third-party) plug-ins.
    extension_names: dict[int, str] = field(default_factory=dict)
    #: The extensions' own gauges, and their values per session.
    gauge_specs: list[GaugeSpec] = field(default_factory=list)
    gauge_samples: list[tuple[str, str, GaugeSample]] = field(default_factory=list)
    #: Sessions that went down after coming up, and failed connection attempts, by peer.
    session_flaps: dict[str, int] = field(default_factory=dict)
    connect_failures: dict[str, int] = field(default_factory=dict)
    #: Modem enforcing GTSM: TCP segments the kernel dropped for a TTL below
    #: 255 (None: not watched, no series).
    gtsm_drops: int | None = None
    #: Tasks alive on the daemon's event loop (a leak shows as steady growth).
    asyncio_tasks: int = 0


def _counter_by(name: str, doc: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    """A counter with one label: a sample per key of ``counts``, sorted."""
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(counts.items()):
        family.add_metric([key], value)
    return family


def _session_order(sid: str) -> tuple[int, str]:
    """Session ids are decimal counters: order them numerically."""
    return (len(sid), sid)


class DaemonCollector(Collector):
    """The ``dlep_*`` series of one daemon, computed at scrape time.

    ``max_destinations`` caps the per-destination series: destinations are
    taken in a stable order (session id, then MAC) and the rest are only
    counted in ``dlep_metrics_destinations_dropped``.
    """

    def __init__(
        self,
        daemon: DaemonBase,
        *,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if max_destinations < 0:
            raise ValueError("max_destinations must be >= 0")
        self.daemon = daemon
        self.max_destinations = max_destinations
        self.loop = loop

    # -- snapshot ------------------------------------------------------------------

    def _take(self) -> _Snapshot:
        d = self.daemon
        specs, samples = d.extension_gauges()
        return _Snapshot(
            d.role.value,
            d.sessions(),
            d.destinations(),
            dict(d.heartbeat_timeouts),
            dict(d.sessions_ended),
            dict(d.ended_errors),
            d.subscriber_events(),
            dict(d.bound_refusals),
            d.extension_names,
            specs,
            samples,
            dict(d.session_flaps),
            dict(d.connect_failures),
            d.gtsm_drops,
            _task_count(self.loop or d.loop),
        )

    def snapshot(self) -> _Snapshot:
        """Read the daemon's state on its own event loop (thread-safe)."""
        loop = self.loop or self.daemon.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return self._take()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return self._take()
        fut: concurrent.futures.Future[_Snapshot] = concurrent.futures.Future()

        def take() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(self._take())
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(take)
        return fut.result(SNAPSHOT_TIMEOUT)

    # -- families ------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        """No up-front description (the registry would otherwise call collect())."""
        return []

    def collect(self) -> Iterator[Metric]:
        """All ``dlep_*`` families for one scrape."""
        snap = self.snapshot()
        yield from self.families(snap)

    def families(self, snap: _Snapshot) -> Iterator[Metric]:
        """The metric families of one snapshot."""
        info = InfoMetricFamily("dlep", "DLEP daemon role and software version")
        info.add_metric([], {"role": snap.role, "version": __version__})
        yield info

        sl = ["session", "peer"]
        sessions = sorted(snap.sessions, key=lambda s: _session_order(s.id))
        # The peer label is the peer's stable name (no ephemeral port): a
        # reconnect changes the session id, not the peer.
        peers = {s.id: s.peer_name or s.peer for s in sessions}

        count = GaugeMetricFamily("dlep_sessions", "Live sessions by state", labels=["state"])
        by_state: dict[str, int] = {}
        for s in sessions:
            by_state[s.state] = by_state.get(s.state, 0) + 1
        for st, n in sorted(by_state.items()):
            count.add_metric([st], n)
        yield count

        up = GaugeMetricFamily("dlep_session_up", "1 if the session is In-Session", labels=sl)
        state = GaugeMetricFamily(
            "dlep_session_state", "Current session state (1 for that state)", labels=[*sl, "state"]
        )
        since = GaugeMetricFamily(
            "dlep_session_up_since_seconds",
            "Unix time at which the session came up",
            labels=sl,
        )
        ndest = GaugeMetricFamily(
            "dlep_session_destinations", "Destinations in the session", labels=sl
        )
        msgs = CounterMetricFamily(
            "dlep_messages",
            "DLEP messages by type and direction (tx sent, rx received)",
            labels=[*sl, "type", "direction"],
        )
        exts = GaugeMetricFamily(
            "dlep_session_extension",
            "1 for each extension negotiated in the session (in use on both sides)",
            labels=[*sl, "extension"],
        )
        errs = CounterMetricFamily(
            "dlep_errors",
            "Protocol errors detected in this session, by status code name",
            labels=[*sl, "status"],
        )
        pinfo = InfoMetricFamily(
            "dlep_peer",
            "The peer of each session: the address it is connected from or to, and the "
            "addresses and subnets it declared (comma-separated)",
            labels=[*sl, "address", "ipv4", "ipv6", "ipv4_subnets", "ipv6_subnets"],
        )
        for s in sessions:
            lv = [s.id, peers[s.id]]
            pinfo.add_metric(
                lv,
                {
                    "address": _host(s.peer),
                    "ipv4": ",".join(s.peer_ipv4),
                    "ipv6": ",".join(s.peer_ipv6),
                    "ipv4_subnets": ",".join(s.peer_ipv4_subnets),
                    "ipv6_subnets": ",".join(s.peer_ipv6_subnets),
                },
            )
            up.add_metric(lv, 1 if s.state == "in-session" else 0)
            state.add_metric([*lv, s.state], 1)
            if s.up_since is not None:
                since.add_metric(lv, s.up_since)
            ndest.add_metric(lv, s.destinations)
            for code in sorted(s.extensions):
                exts.add_metric([*lv, extension_name(code, snap.extension_names)], 1)
            for direction, counts in (("tx", s.tx), ("rx", s.rx)):
                for mtype, n in sorted(counts.items()):
                    msgs.add_metric([*lv, mtype, direction], n)
            for status, n in sorted(s.errors.items()):
                errs.add_metric([*lv, status], n)
        yield from (pinfo, up, state, since, ndest, exts, msgs, errs)
        yield from _ext_families(snap.gauge_specs, snap.gauge_samples)
        yield from _metric_gauges(
            "dlep_session_",
            "Session-wide ",
            sl,
            (([s.id, peers[s.id]], s.session_metrics) for s in sessions if s.state == "in-session"),
        )

        hb = CounterMetricFamily(
            "dlep_heartbeat_timeouts",
            "Sessions ended by a heartbeat timeout (status 132 after coming up): "
            "by=local when we missed the peer's heartbeats, by=peer when it missed ours",
            labels=["by"],
        )
        for by in ("local", "peer"):
            hb.add_metric([by], snap.heartbeat_timeouts.get(by, 0))
        yield hb
        yield _counter_by(
            "dlep_session_flaps",
            "Sessions that were In-Session and went down (for any reason but this daemon's "
            "own shutdown), by peer",
            "peer",
            snap.session_flaps,
        )
        yield _counter_by(
            "dlep_connect_failures",
            "Router: connection attempts to a modem that failed before a session started "
            "(TCP or TLS), by peer (a static peer as configured, a discovered modem by address)",
            "peer",
            snap.connect_failures,
        )

        if snap.gtsm_drops is not None:
            gtsm = CounterMetricFamily(
                "dlep_gtsm_drops",
                "Modem with network.gtsm_enforce: TCP segments the kernel dropped because "
                "their TTL/hop limit was below 255 since the daemon started (a router without "
                "GTSM trying to connect, typically); read from TcpExt TCPMinTTLDrop, which "
                "counts every socket of the network namespace that has a minimum TTL",
            )
            gtsm.add_metric([], snap.gtsm_drops)
            yield gtsm

        all_errors = dict(snap.ended_errors)
        for s in sessions:
            for status, n in s.errors.items():
                all_errors[status] = all_errors.get(status, 0) + n
        yield _counter_by(
            "dlep_protocol_errors",
            "Protocol errors detected in any session since the daemon started, by status "
            "code name (dlep_errors_total only has those of live sessions)",
            "status",
            all_errors,
        )
        yield _counter_by(
            "dlep_sessions_ended",
            "Sessions ended since the daemon started, by termination status code name "
            "(NONE: the connection closed without one)",
            "status",
            snap.sessions_ended,
        )
        lag = CounterMetricFamily(
            "dlep_subscriber_events",
            "Events a lagging subscriber (API watch stream, data plane, library) did not get "
            "one by one: fate=dropped lost to a full queue, fate=coalesced merged into a newer "
            "update of the same destination",
            labels=["fate"],
        )
        for fate in ("dropped", "coalesced"):
            lag.add_metric([fate], snap.subscriber_events.get(fate, 0))
        yield lag
        yield _counter_by(
            "dlep_bound_refusals",
            "What a bound turned away since the daemon started, by its config key "
            "(docs/hardening.md): connections (max_sessions, max_pending_connections, "
            "max_pending_per_source), Peer Offers (discovery_offer_rate), Destination Ups "
            "(max_destinations_per_session)",
            "bound",
            snap.bound_refusals,
        )

        dests = sorted(snap.destinations, key=lambda d: (_session_order(d[0]), d[1].mac))
        kept = dests[: self.max_destinations]
        total = GaugeMetricFamily("dlep_destinations", "Destinations across all sessions")
        total.add_metric([], len(dests))
        yield total
        cap = GaugeMetricFamily(
            "dlep_metrics_max_destinations",
            "Cap on destinations exported with per-destination series ([metrics] max_destinations)",
        )
        cap.add_metric([], self.max_destinations)
        yield cap
        dropped = GaugeMetricFamily(
            "dlep_metrics_destinations_dropped",
            "Destinations left out of the per-destination series because of the cap",
        )
        dropped.add_metric([], len(dests) - len(kept))
        yield dropped
        tasks = GaugeMetricFamily(
            "dlep_asyncio_tasks",
            "Tasks alive on the daemon's event loop (steady growth means a leak)",
        )
        tasks.add_metric([], snap.asyncio_tasks)
        yield tasks
        yield from _metric_gauges(
            "dlep_destination_",
            "",
            [*sl, "mac"],
            (([sid, peers.get(sid, ""), _dest_label(info)], info.metrics) for sid, info in kept),
        )
        yield from _extension_gauges(
            "dlep_destination_",
            [*sl, "mac"],
            (([sid, peers.get(sid, ""), _dest_label(info)], info) for sid, info in kept),
        )


def _metric_gauges(
    prefix: str,
    help_prefix: str,
    labels: list[str],
    rows: Iterable[tuple[list[str], Metrics]],
) -> Iterator[Metric]:
    """One gauge family per metric field; a row contributes the fields it has."""
    fams = {
        name: GaugeMetricFamily(prefix + suffix, help_prefix + text, labels=labels)
        for name, suffix, text, _ in _METRIC_SERIES
    }
    divisor = {name: d for name, _, _, d in _METRIC_SERIES}
    for values, metrics in rows:
        for name, value in metrics.as_dict().items():
            fam = fams.get(name)
            if fam is not None:
                fam.add_metric(values, value / divisor[name])
    yield from fams.values()


def _extension_gauges(
    prefix: str,
    labels: list[str],
    rows: Iterable[tuple[list[str], DestinationInfo]],
) -> Iterator[Metric]:
    """Gauges of the numeric extension values (:mod:`dlep.ext.display`): the
    built-in ones always (possibly empty), others as they appear."""
    fams = {
        suffix: GaugeMetricFamily(prefix + suffix, text, labels=labels)
        for suffix, text in KNOWN_GAUGES.items()
    }
    for values, info in rows:
        seen: set[str] = set()
        for item in info.extra:
            for g in describe(item).gauges:
                if g.suffix in seen:  # one sample per series and destination
                    continue
                seen.add(g.suffix)
                fam = fams.get(g.suffix)
                if fam is None:
                    fam = fams[g.suffix] = GaugeMetricFamily(
                        prefix + g.suffix, g.help, labels=labels
                    )
                fam.add_metric(values, g.value)
    yield from fams.values()


class MetricsServer:
    """``prometheus_client``'s HTTP server for one daemon's collector."""

    def __init__(
        self,
        daemon: DaemonBase,
        host: str = "127.0.0.1",
        port: int = 9854,
        *,
        max_destinations: int = DEFAULT_MAX_DESTINATIONS,
        process_metrics: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = DaemonCollector(daemon, max_destinations=max_destinations)
        self.registry.register(self.collector)
        if process_metrics:
            ProcessCollector(registry=self.registry)
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve (from the daemon's event loop; OSError if it cannot bind)."""
        if self._httpd is not None:
            return
        with contextlib.suppress(RuntimeError):
            self.collector.loop = asyncio.get_running_loop()
        self._httpd, self._thread = start_http_server(self.port, self.host, self.registry)
        self.port = int(self._httpd.server_address[1])
        log.info("Prometheus metrics on %s", self.url)

    @property
    def url(self) -> str:
        """The scrape URL (``http://host:port/metrics``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving (blocks up to ~0.5 s; use :meth:`aclose` on the loop)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    async def aclose(self) -> None:
        """Stop serving without blocking the event loop."""
        await asyncio.to_thread(self.close)


async def start_metrics_server(
    daemon: DaemonBase, cfg: MetricsEndpointConfig | None = None
) -> MetricsServer | None:
    """Start the endpoint that ``cfg`` (default: ``daemon.cfg.metrics``) asks for.

    Returns None when ``listen`` is not set. Raises OSError if it cannot bind.
    """
    if cfg is None:
        cfg = getattr(daemon.cfg, "metrics", None)
    addr = cfg.address() if cfg is not None else None
    if cfg is None or addr is None:
        return None
    server = MetricsServer(daemon, addr[0], addr[1], max_destinations=cfg.max_destinations)
    server.start()
    return server


def _task_count(loop: asyncio.AbstractEventLoop | None) -> int:
    """Tasks not yet done on ``loop`` (0 without one). Called on the loop
    itself (:meth:`DaemonCollector.snapshot`), where the set is stable."""
    if loop is None or loop.is_closed():
        return 0
    return len(asyncio.all_tasks(loop))


def _ext_families(
    specs: list[GaugeSpec], samples: list[tuple[str, str, GaugeSample]]
) -> Iterator[Metric]:
    """The gauges extensions export (credit windows, paused queues, ...), per
    session; a family for every offered extension's gauge, even when empty."""
    sl = ["session", "peer"]
    fams = {g.name: GaugeMetricFamily(g.name, g.help, labels=[*sl, *g.labels]) for g in specs}
    for sid, peer, g in sorted(samples, key=lambda x: (_session_order(x[0]), x[2].labels)):
        fam = fams.get(g.name)
        if fam is not None:
            fam.add_metric([sid, peer, *g.labels], g.value)
    yield from fams.values()


def _host(peer: str) -> str:
    """The address of an ``address:port`` / ``[address]:port`` peer."""
    host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 or peer.startswith("[") else peer
    return host.strip("[]")


def _dest_label(info: DestinationInfo) -> str:
    """The ``mac`` label: the destination's key -- the MAC, plus ``#<hex>``
    per identity item (RFC 8703), so two links behind one gateway MAC stay
    distinct series."""
    return str(info.key)
