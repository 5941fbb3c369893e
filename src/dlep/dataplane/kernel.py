"""Router side: make the kernel follow the destination table.

For each destination the applier works out what should be installed — the
*plan*: neighbour entries, routes with their metric, a shaping class — and
changes only the difference from what it installed before. Destination Up,
Update, Down, Pause/Restart and the end of a session all go through the same
path (a Down is an empty plan), so there is one place where kernel state is
decided. See docs/dataplane.md.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..fsm import DestKey
from .metric import metric_changed, route_metric, shaping_rate
from .netlink import MAX_MINOR, FlushReport, Netlink
from .table import Change, DestState

if TYPE_CHECKING:
    from ..config import KernelConfig

__all__ = ["KernelApplier", "Plan", "plan_for"]

log = logging.getLogger("dlep.dataplane")

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
RouteKey = tuple[IPNetwork, IPAddr | None]
"""(destination prefix, gateway or None for on-link)."""


@dataclass(slots=True)
class Plan:
    """What the kernel should hold for one destination."""

    neighbours: set[IPAddr] = field(default_factory=set)
    routes: set[RouteKey] = field(default_factory=set)
    metric: int = 0
    #: Shaping rate in bits/s (None: no class for this destination).
    rate: int | None = None
    #: Its traffic is held back (RFC 8651 Pause).
    paused: bool = False


def plan_for(d: DestState, cfg: KernelConfig, gateways: dict[bytes, DestState]) -> Plan:
    """The plan of destination ``d``.

    ``gateways``: the Layer 2 destination of each MAC (where RFC 8703
    destinations behind that MAC are routed through).
    """
    p = Plan(metric=route_metric(cfg.metric, d.metrics, d.hops))
    if cfg.neighbours and not d.layer3:
        p.neighbours = set(d.ipv4) | set(d.ipv6)
    if cfg.routes:
        if d.layer3:
            # Behind a gateway: every address and subnet goes via the
            # gateway's own address of that family, if it has one.
            gw = gateways.get(d.mac)
            via4 = min(gw.ipv4) if gw is not None and gw.ipv4 else None
            via6 = min(gw.ipv6) if gw is not None and gw.ipv6 else None
        else:
            via4 = min(d.ipv4) if d.ipv4 else None
            via6 = min(d.ipv6) if d.ipv6 else None
            for a4 in d.ipv4:
                p.routes.add((ipaddress.IPv4Network(a4), None))
            for a6 in d.ipv6:
                p.routes.add((ipaddress.IPv6Network(a6), None))
        if d.layer3:
            for a4 in d.ipv4:
                if via4 is not None:
                    p.routes.add((ipaddress.IPv4Network(a4), via4))
            for a6 in d.ipv6:
                if via6 is not None:
                    p.routes.add((ipaddress.IPv6Network(a6), via6))
        for n4 in d.ipv4_subnets:
            if via4 is not None:
                p.routes.add((n4, via4))
        for n6 in d.ipv6_subnets:
            if via6 is not None:
                p.routes.add((n6, via6))
    if cfg.shaping and not d.layer3 and len(d.mac) == 6:
        p.rate = shaping_rate(d.metrics, cfg.rate_percent, cfg.default_rate)
        p.paused = d.paused
    return p


@dataclass(slots=True)
class _Installed:
    neighbours: set[IPAddr] = field(default_factory=set)
    routes: set[RouteKey] = field(default_factory=set)
    metric: int | None = None
    minor: int | None = None
    rate: int | None = None
    paused: bool = False


class KernelApplier:
    """Applies :class:`Change` values to the kernel through :class:`Netlink`.

    Call :meth:`start` once (it flushes whatever a predecessor left), then
    :meth:`apply` for each change, and :meth:`stop` at the end (it removes
    everything it installed). Errors of one change are logged and counted;
    they do not stop the applier.
    """

    def __init__(self, cfg: KernelConfig, interface: str, nl: Netlink | None = None) -> None:
        self.cfg = cfg
        self.interface = interface
        self.nl = nl or Netlink(
            protocol=cfg.route_protocol,
            table=cfg.route_table,
            qdisc_major=cfg.qdisc_handle,
            netns=cfg.netns,
        )
        self.ifindex = 0
        self._installed: dict[DestKey, _Installed] = {}
        self._gateways: dict[bytes, DestState] = {}
        self._minors: dict[bytes, int] = {}
        self._next_minor = 1
        self.errors = 0
        self.flushed_at_start = FlushReport()

    async def start(self) -> FlushReport:
        """Open netlink, flush stale state, set up shaping. Returns what was flushed."""
        await self.nl.open()
        try:
            self.ifindex = await self.nl.ifindex(self.interface)
            self.flushed_at_start = await self.nl.flush()
            if self.flushed_at_start.total:
                log.warning("kernel: removed %s left by an earlier run", self.flushed_at_start)
            if self.cfg.shaping:
                await self.nl.shaping_setup(self.ifindex, self.cfg.queue_limit)
        except BaseException:
            await self.nl.close()
            raise
        log.info(
            "kernel: applying DLEP on %s%s (route protocol %d, table %d, qdisc %x:)",
            self.interface,
            f" in netns {self.cfg.netns}" if self.cfg.netns else "",
            self.cfg.route_protocol,
            self.cfg.route_table,
            self.cfg.qdisc_handle,
        )
        return self.flushed_at_start

    async def stop(self) -> None:
        """Remove everything installed, close netlink (a second call does nothing)."""
        if not self.nl.is_open:
            return
        try:
            report = await self.nl.flush()
            log.info("kernel: removed %s at shutdown", report)
        finally:
            self._installed.clear()
            await self.nl.close()

    async def apply(self, change: Change) -> None:
        """Bring the kernel in line with ``change`` (errors are logged)."""
        d = change.dest
        if d is not None and not d.layer3:
            self._gateways[d.mac] = d
        elif d is None and change.before is not None and not change.before.layer3:
            self._gateways.pop(change.before.mac, None)
        try:
            await self._reconcile(change.key, d)
        except Exception as exc:  # netlink errors: one change fails, the rest go on
            self.errors += 1
            log.error("kernel: %s %s: %s", change.kind, change.key, exc)

    async def _reconcile(self, key: DestKey, d: DestState | None) -> None:
        inst = self._installed.setdefault(key, _Installed())
        plan = plan_for(d, self.cfg, self._gateways) if d is not None else Plan()
        mac = key.mac
        # Neighbours first, so new routes resolve at once.
        for ip in plan.neighbours:
            if ip not in inst.neighbours:
                await self.nl.neigh_set(self.ifindex, ip, mac)
                inst.neighbours.add(ip)
        # Routes: a metric change is a new route (the metric is part of a
        # route's identity in the kernel), then the old one goes.
        old = inst.metric
        metric = plan.metric
        if old is not None and not metric_changed(
            old, plan.metric, self.cfg.metric.hysteresis_percent
        ):
            metric = old
        for rk in plan.routes:
            if rk not in inst.routes or metric != old:
                await self.nl.route_set(rk[0], self.ifindex, rk[1], metric)
        for rk in inst.routes:
            if old is not None and (rk not in plan.routes or metric != old):
                await self.nl.route_del(rk[0], self.ifindex, rk[1], old)
        if old is not None and metric != old and plan.routes:
            log.info("kernel: %s route metric %d -> %d", key, old, metric)
        inst.routes = set(plan.routes)
        inst.metric = metric if plan.routes else None
        for ip in list(inst.neighbours):
            if ip not in plan.neighbours:
                await self.nl.neigh_del(self.ifindex, ip)
                inst.neighbours.discard(ip)
        await self._shape(key, inst, plan)
        if d is None:
            del self._installed[key]

    async def _shape(self, key: DestKey, inst: _Installed, plan: Plan) -> None:
        mac, rate = key.mac, plan.rate
        if rate is None:
            if inst.minor is not None:
                await self.nl.class_del(self.ifindex, inst.minor)
                self._minors.pop(mac, None)
                inst.minor = inst.rate = None
                inst.paused = False
            return
        if inst.minor is None:
            minor = self._alloc_minor(mac)
            await self.nl.class_set(
                self.ifindex, minor, rate, create=True, queue_limit=self.cfg.queue_limit
            )
            await self.nl.filter_add(self.ifindex, minor, mac)
            inst.minor, inst.rate = minor, rate
            log.info("kernel: %s shaped to %d bit/s", key, rate)
        elif inst.rate != rate:
            await self.nl.class_set(
                self.ifindex, inst.minor, rate, create=False, queue_limit=self.cfg.queue_limit
            )
            log.info("kernel: %s shaped to %d bit/s", key, rate)
            inst.rate = rate
        if plan.paused and not inst.paused:
            await self.nl.filter_add(self.ifindex, inst.minor, mac, hold=True)
            inst.paused = True
            log.info("kernel: %s paused", key)
        elif inst.paused and not plan.paused:
            await self.nl.filter_del(self.ifindex, inst.minor, hold=True)
            inst.paused = False
            log.info("kernel: %s restarted", key)

    def _alloc_minor(self, mac: bytes) -> int:
        # One class per MAC; minors are not reused while the MAC has one.
        used = set(self._minors.values())
        for _ in range(MAX_MINOR):
            m = self._next_minor
            self._next_minor = m % MAX_MINOR + 1
            if m not in used:
                self._minors[mac] = m
                return m
        raise RuntimeError(f"no free HTB class id ({MAX_MINOR} destinations shaped)")

    def installed(self) -> dict[DestKey, tuple[int | None, int | None, bool]]:
        """Per destination: (route metric, shaping rate, paused) as installed."""
        return {k: (v.metric, v.rate, v.paused) for k, v in self._installed.items()}
