"""Prometheus metrics of one emulator (its own registry and endpoint).

Each emulator serves its counters on its own ``prometheus_client`` HTTP
endpoint (``metrics_listen`` of the node, or ``emulator.metrics_base_port``
+ node index, bound in the host's namespace so a Prometheus outside the
namespaces can scrape it). The collector takes one snapshot of the node on
its event loop per scrape; nothing is counted twice and an idle endpoint
costs nothing. Series (``node`` and ``peer`` are node names):

* ``dlep_emu_link_frames_total{node,peer,direction}`` /
  ``dlep_emu_link_octets_total{...}`` — frames out (sent to the peer after
  the channel) and in (received from it); ``dlep_emu_link_control_total``
  — probes.
* ``dlep_emu_drops_total{node,peer,reason}`` — every dropped frame by
  reason (``tap_read``, ``tap_write``, ``mtu``, ``channel_loss``,
  ``queue_full``, ``no_neighbour``, ``malformed``); ``peer=""`` for drops
  that belong to no link.
* ``dlep_emu_link_up``, ``dlep_emu_link_rate_bytes_per_second``,
  ``dlep_emu_link_loss_ratio``, ``dlep_emu_link_latency_seconds``,
  ``dlep_emu_queue_bytes`` / ``dlep_emu_queue_size_bytes``.
* ``dlep_emu_neighbour_up``, ``dlep_emu_neighbour_rtt_seconds``,
  ``dlep_emu_neighbour_loss_ratio{direction="rx"|"tx"}``.
* ``dlep_emu_mac_entries`` and ``dlep_emu_mac_events_total{event}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["EmuCollector", "EmuMetricsServer"]

SNAPSHOT_TIMEOUT = 5.0


class EmuCollector(Collector):
    """Turns a node snapshot (see :meth:`EmuNode.snapshot`) into metric families."""

    def __init__(self) -> None:
        self._source: Callable[[], dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, source: Callable[[], dict[str, Any]]) -> None:
        """Take snapshots with ``source`` on ``loop`` from now on."""
        self._loop, self._source = loop, source

    def _snapshot(self) -> dict[str, Any] | None:
        source, loop = self._source, self._loop
        if source is None or loop is None or loop.is_closed():
            return None
        try:
            if threading.current_thread() is threading.main_thread() and loop.is_running():
                return source()
        except RuntimeError:
            pass
        fut: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()

        def take() -> None:
            try:
                fut.set_result(source())
            except Exception as exc:  # reported to the scraper's thread
                fut.set_exception(exc)

        loop.call_soon_threadsafe(take)
        return fut.result(SNAPSHOT_TIMEOUT)

    def describe(self) -> Iterable[Any]:
        """No fixed description (series depend on the node)."""
        return []

    def collect(self) -> Iterator[Any]:
        """One scrape."""
        snap = self._snapshot()
        if snap is not None:
            yield from families(snap)


def families(snap: dict[str, Any]) -> Iterator[Any]:
    """Metric families of one node snapshot."""
    node = snap["node"]
    frames = CounterMetricFamily(
        "dlep_emu_link_frames", "Data frames per link", labels=["node", "peer", "direction"]
    )
    octets = CounterMetricFamily(
        "dlep_emu_link_octets", "Ethernet octets per link", labels=["node", "peer", "direction"]
    )
    control = CounterMetricFamily(
        "dlep_emu_link_control", "Probes per link", labels=["node", "peer", "direction"]
    )
    drops = CounterMetricFamily(
        "dlep_emu_drops", "Frames dropped, by where and why", labels=["node", "peer", "reason"]
    )
    up = GaugeMetricFamily("dlep_emu_link_up", "1 if the link is in range", labels=["node", "peer"])
    rate = GaugeMetricFamily(
        "dlep_emu_link_rate_bytes_per_second",
        "Rate the link sends at now, bytes/s (a grant may cap it)",
        labels=["node", "peer"],
    )
    loss = GaugeMetricFamily(
        "dlep_emu_link_loss_ratio", "Configured loss probability", labels=["node", "peer"]
    )
    lat = GaugeMetricFamily(
        "dlep_emu_link_latency_seconds", "Configured one-way latency", labels=["node", "peer"]
    )
    qb = GaugeMetricFamily(
        "dlep_emu_queue_bytes", "Bytes waiting in the transmit queue", labels=["node", "peer"]
    )
    qs = GaugeMetricFamily(
        "dlep_emu_queue_size_bytes", "Size of the transmit queue", labels=["node", "peer"]
    )
    for ln in snap["links"]:
        peer = ln["peer"]
        for direction in ("out", "in"):
            frames.add_metric([node, peer, direction], ln[f"frames_{direction}"])
            octets.add_metric([node, peer, direction], ln[f"octets_{direction}"])
            control.add_metric([node, peer, direction], ln[f"control_{direction}"])
        for reason, n in ln["drops"].items():
            drops.add_metric([node, peer, reason], n)
        effective = ln["granted_rate"] or ln["rate"]
        up.add_metric([node, peer], 1.0 if ln["up"] else 0.0)
        rate.add_metric([node, peer], min(ln["rate"], effective) / 8.0)  # bits/s -> base unit
        loss.add_metric([node, peer], float(ln["loss"]))
        lat.add_metric([node, peer], ln["latency_us"] / 1e6)
        qb.add_metric([node, peer], float(ln["queue_bytes"]))
        qs.add_metric([node, peer], float(ln["queue_size"]))
    for reason, n in snap["drops"].items():
        drops.add_metric([node, "", reason], n)
    nup = GaugeMetricFamily(
        "dlep_emu_neighbour_up", "1 if the neighbour is two-way", labels=["node", "peer"]
    )
    rtt = GaugeMetricFamily(
        "dlep_emu_neighbour_rtt_seconds", "Smoothed keepalive RTT", labels=["node", "peer"]
    )
    nloss = GaugeMetricFamily(
        "dlep_emu_neighbour_loss_ratio",
        "Measured probe loss (rx: its probes to us; tx: ours to it)",
        labels=["node", "peer", "direction"],
    )
    for nb in snap["neighbours"]:
        peer = nb["peer"]
        nup.add_metric([node, peer], 1.0 if nb["state"] == "up" else 0.0)
        if nb["rtt_ms"] is not None:
            rtt.add_metric([node, peer], nb["rtt_ms"] / 1000.0)
        for direction in ("rx", "tx"):
            if nb[f"{direction}_loss"] is not None:
                nloss.add_metric([node, peer, direction], float(nb[f"{direction}_loss"]))
    macs = GaugeMetricFamily("dlep_emu_mac_entries", "MAC table entries", labels=["node"])
    macs.add_metric([node], float(snap["mac_table"]["size"]))
    mev = CounterMetricFamily("dlep_emu_mac_events", "MAC table changes", labels=["node", "event"])
    for event in ("learned", "moved", "aged_out", "evicted"):
        mev.add_metric([node, event], snap["mac_table"][event])
    yield from (frames, octets, control, drops, up, rate, loss, lat, qb, qs, nup, rtt, nloss)
    yield from (macs, mev)


class EmuMetricsServer:
    """The HTTP endpoint; bind it before entering the node's namespace."""

    def __init__(self, host: str, port: int) -> None:
        self.collector = EmuCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = host, port

    def start(self) -> None:
        """Bind and serve in a thread (OSError if the address is taken)."""
        self._httpd, self._thread = start_http_server(self.port, self.host, self.registry)
        self.port = int(self._httpd.server_address[1])

    def close(self) -> None:
        """Stop serving."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
