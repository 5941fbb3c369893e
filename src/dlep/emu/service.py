"""The emulator process of one node: its UDP socket, TAP, modem and status.

Started by ``dlep-emu run`` as ``dlep-emu node SCENARIO --node NAME ...``
(one process per node, so one node's crash or load stays its own). In
order, because namespaces are per thread and sockets keep the namespace
they were made in:

1. ask to die with the runner (``PR_SET_PDEATHSIG``);
2. bind the emulator's UDP socket and the Prometheus endpoint in the
   host's namespace (where the other emulators and Prometheus are);
3. enter the node's namespace; create and configure the TAP there;
4. start the node, then the DLEP modem (a :class:`~dlep.daemon.ModemDaemon`
   listening on the namespace's loopback; its Link Characteristics
   Requests are answered by the node), then the status socket;
5. on SIGTERM/SIGINT stop in reverse order. The TAP goes away with its fd.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import parse_modem_config
from ..daemon import ModemDaemon
from .configs import modem_config_data, socket_paths
from .node import EmuNode, TapDevice
from .prom import EmuMetricsServer
from .scenario import Topology
from .status import StatusServer
from .system import enter_netns, open_tap, set_parent_death_signal

__all__ = ["ModemHook", "NodeOptions", "run_nodes_in_process", "serve_node"]

log = logging.getLogger("dlep.emu")

#: Called with the started modem; returns a coroutine function that undoes
#: whatever it set up (the CLI starts the modem's management API here).
ModemHook = Callable[[ModemDaemon], Awaitable[Callable[[], Awaitable[None]]]]


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """How to run one node."""

    node: str
    run_dir: Path
    netns: str | None = None
    t0_epoch: float | None = None
    radios_only: bool = False
    parent: int | None = None
    modem: bool = True


def serve_node(topo: Topology, opts: NodeOptions, on_modem: ModemHook | None = None) -> int:
    """Run one node until SIGTERM/SIGINT; returns an exit code."""
    if opts.parent is not None:
        set_parent_death_signal(opts.parent)
    me = topo.nodes[topo.by_name[opts.node]]
    host = me.address[0]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(me.address)
    except OSError as exc:
        sock.close()
        log.error("%s: cannot bind %s:%d: %s", me.name, host, me.address[1], exc)
        return 1
    # Big buffers: a burst of frames from several peers must not overflow them.
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
    metrics: EmuMetricsServer | None = None
    if me.metrics_listen is not None:
        metrics = EmuMetricsServer(*me.metrics_listen)
        try:
            metrics.start()
        except OSError as exc:
            log.error("%s: metrics endpoint %s:%d: %s", me.name, *me.metrics_listen, exc)
            sock.close()
            return 1
    tap: TapDevice | None = None
    try:
        if opts.netns is not None:
            enter_netns(opts.netns)
        if not opts.radios_only:
            mtu = max((p.mtu for (s, _d), p in topo.links.items() if s == me.index), default=1500)
            fd = open_tap(me.tap, me.mac, mtu, [*me.ipv4, *me.ipv6], loopback=me.loopback)
            tap = TapDevice(fd, me.tap)
        return asyncio.run(_main(topo, opts, sock, tap, metrics, on_modem))
    except KeyboardInterrupt:
        return 0
    finally:
        if tap is not None:
            tap.close()
        if metrics is not None:
            metrics.close()
        sock.close()


async def _main(
    topo: Topology,
    opts: NodeOptions,
    sock: socket.socket,
    tap: TapDevice | None,
    metrics: EmuMetricsServer | None,
    on_modem: ModemHook | None,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    idx = topo.by_name[opts.node]
    me = topo.nodes[idx]
    t0 = loop.time() + ((opts.t0_epoch - time.time()) if opts.t0_epoch is not None else 0.0)
    node = EmuNode(topo, idx, t0=t0)
    await node.start(sock, tap)
    if metrics is not None:
        metrics.collector.bind(loop, node.snapshot)
    modem: ModemDaemon | None = None
    undo: Callable[[], Awaitable[None]] | None = None
    status = StatusServer(socket_paths(opts.run_dir, me)["emu"], node.snapshot)
    try:
        if opts.modem:
            data = modem_config_data(topo, me, run_dir=opts.run_dir, radios_only=opts.radios_only)
            cfg = parse_modem_config(data, source=f"{me.name} modem")
            modem = await (
                ModemDaemon.builder().config(cfg).link_characteristics_handler(node.link_request)
            ).spawn()
            node.attach_modem(modem)
            if on_modem is not None:
                undo = await on_modem(modem)
        await status.start()
        log.info(
            "%s: emulating on %s:%d%s", me.name, *me.address, f", TAP {tap.name}" if tap else ""
        )
        await stop.wait()
    finally:
        await status.stop()
        if undo is not None:
            with contextlib.suppress(Exception):
                await undo()
        if modem is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(modem.shutdown(), 5.0)
        await node.stop()
    return 0


@contextlib.asynccontextmanager
async def run_nodes_in_process(topo: Topology, indexes: list[int]) -> AsyncIterator[list[EmuNode]]:
    """For benchmarks and tests: nodes without TAP or modem on this loop
    (the radios-only mode at scale); yields the started nodes."""
    nodes: list[EmuNode] = []
    socks: list[socket.socket] = []
    try:
        for i in indexes:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(topo.nodes[i].address)
            n = EmuNode(topo, i)
            await n.start(s)
            nodes.append(n)
        yield nodes
    finally:
        for n in nodes:
            await n.stop()
        for s in socks:
            s.close()
