"""One emulated radio on asyncio: TAP <-> channel <-> UDP, and its DLEP modem.

:class:`EmuNode` is the single owner of everything about one node: its
channels (one per outgoing link), its neighbour table, its MAC table, its
counters and the DLEP reporting state. It is a thin asyncio adapter around
the sans-I/O parts (:mod:`.channel`, :mod:`.neighbours`, :mod:`.mactable`,
:mod:`.report`): it moves bytes, reads the loop's clock and keeps one timer
per channel, one for neighbour expiry and one periodic probe task.

Frame path (node A to node B)::

    A's TAP --read--> MAC lookup --> channel A->B (MTU, queue, rate, loss,
    latency) --UDP--> B: learn source MAC and claimed addresses --> B's TAP

Group and unknown destinations are flooded to every node in range (each
through its own channel); a frame that came in over UDP only ever goes to
the TAP (a radio is one hop, nothing is relayed).

DLEP: a neighbour that turns two-way becomes a destination (Destination Up
with its TAP MAC, its addresses learned so far and the metrics of
:func:`~dlep.emu.report.link_metrics`); every keepalive interval the
:class:`~dlep.emu.report.Reporter` decides whether a Destination Update is
due; a neighbour that is gone gets Destination Down. Calls to the
:class:`~dlep.daemon.ModemDaemon` go through one queue and one task, so
they reach the routers in the order they happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..daemon import DaemonError, LinkDecision, LinkRequest, ModemDaemon
from ..fsm import Metrics
from ..wire import StatusCode
from .channel import Channel, ChannelParams, DropReason
from .counters import DropCounts, LinkCounters
from .frames import claimed_addresses, is_group, l2_payload_length, parse_header
from .mactable import LOCAL, MacTable
from .neighbours import NeighbourDown, NeighbourTable, NeighbourUp
from .packet import Kind, PacketError, Probe, decode, encode_data, encode_probe
from .report import Reporter, Thresholds, link_metrics
from .scenario import ResolvedNode, TimelineChange, Topology

__all__ = ["EmuNode", "TapDevice"]

log = logging.getLogger("dlep.emu")

#: Frames read from the TAP per wake-up before yielding to the loop.
TAP_BATCH = 64
#: Addresses remembered per neighbour (beyond this, new ones are ignored).
MAX_ADDRESSES = 16
#: Largest frame read from a TAP.
MAX_FRAME = 65536


class TapDevice:
    """What the node needs of a TAP: a non-blocking fd that reads and writes
    whole Ethernet frames (see :mod:`dlep.emu.system` for opening one)."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name

    def close(self) -> None:
        """Close the fd (the kernel removes a non-persistent TAP with it)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass(slots=True)
class _Link:
    """Our side of the link to one peer."""

    peer: int
    address: tuple[str, int]
    channel: Channel[bytes]
    counters: LinkCounters = field(default_factory=LinkCounters)
    timer: asyncio.TimerHandle | None = None
    timer_at: float = math.inf
    #: Rate we ask the peer to grant on its link to us (0: none).
    want_rate: int = 0
    addresses: list[str] = field(default_factory=list)
    #: Addresses it claimed that another neighbour already holds (noted once).
    contested: set[str] = field(default_factory=set)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, node: EmuNode) -> None:
        self.node = node

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.node.datagram_received(data)

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable from a peer that is not running: the channel
        # already counted the frame as sent; nothing else to do.
        log.debug("%s: UDP error: %s", self.node.me.name, exc)


class EmuNode:
    """One emulated radio (see the module doc).

    ``clock``: the loop's ``time`` (tests may pass a fake one with a
    matching loop). ``t0``: the scenario's start on that clock.
    """

    def __init__(self, topo: Topology, index: int, *, t0: float | None = None) -> None:
        self.topo = topo
        self.me: ResolvedNode = topo.nodes[index]
        self.index = index
        self.mac = bytes.fromhex(self.me.mac.replace(":", ""))
        em = topo.emulator
        self.interval = em.keepalive_interval_ms / 1000.0
        self.neighbours = NeighbourTable(
            topo.peers(index),
            interval=self.interval,
            dead_intervals=em.dead_intervals,
            loss_window=em.loss_window,
            rtt_smoothing=em.rtt_smoothing,
        )
        self.macs = MacTable(em.mac_aging, em.mac_table_size)
        d = topo.dlep
        self.reporter = Reporter(
            Thresholds(
                update_interval=d.update_interval_ms / 1000.0,
                rate_percent=d.rate_change_percent,
                latency_percent=d.latency_change_percent,
                latency_min_us=d.latency_change_min,
                rlq_points=d.rlq_change,
                resources_points=d.resources_change,
            )
        )
        self.links: dict[int, _Link] = {}
        for peer in topo.peers(index):
            rng = random.Random(f"{topo.seed}:{index}:{peer}")
            self.links[peer] = _Link(
                peer, topo.nodes[peer].address, Channel(topo.links[(index, peer)], rng)
            )
        self.drops = DropCounts()
        self.tap_frames_in = 0
        self.tap_frames_out = 0
        self.t0 = t0
        self.modem: ModemDaemon | None = None
        self.reported: set[int] = set()
        self._mac_to_peer = {
            bytes.fromhex(topo.nodes[p].mac.replace(":", "")): p for p in self.links
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tap: TapDevice | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._timeline: list[asyncio.TimerHandle] = []
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf
        self._dlep_q: asyncio.Queue[Callable[[ModemDaemon], Any]] = asyncio.Queue()
        #: Recent events (wall time, text) for the status view.
        self.events: list[tuple[float, str]] = []

    # -- life cycle ------------------------------------------------------------

    @property
    def now(self) -> float:
        """The loop's clock."""
        assert self._loop is not None
        return self._loop.time()

    async def start(self, sock: socket.socket, tap: TapDevice | None = None) -> None:
        """Serve on the bound UDP socket ``sock`` (and ``tap`` if given)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        if self.t0 is None:
            self.t0 = loop.time()
        sock.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=sock)
        self._udp = transport
        self._tap = tap
        if tap is not None:
            loop.add_reader(tap.fd, self._on_tap_readable)
        for ch in self.topo.timeline:
            if ch.src == self.index:
                self._timeline.append(loop.call_at(self.t0 + ch.at, self._apply_change, ch))
        self._tasks.append(asyncio.create_task(self._probe_loop(), name=f"probe-{self.me.name}"))
        self._tasks.append(asyncio.create_task(self._dlep_loop(), name=f"dlep-{self.me.name}"))

    def attach_modem(self, modem: ModemDaemon) -> None:
        """Drive ``modem``: neighbours become its destinations from now on."""
        self.modem = modem
        for peer in self.neighbours.up():
            self._destination_up(peer)

    async def stop(self) -> None:
        """Stop timers, tasks and I/O (the TAP fd stays with its owner)."""
        for h in self._timeline:
            h.cancel()
        for link in self.links.values():
            if link.timer is not None:
                link.timer.cancel()
        if self._expiry is not None:
            self._expiry.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._tap is not None and self._loop is not None:
            self._loop.remove_reader(self._tap.fd)
        if self._udp is not None:
            self._udp.close()

    def _note(self, text: str) -> None:
        self.events.append((time.time(), text))
        del self.events[:-200]
        log.info("%s: %s", self.me.name, text)

    def name_of(self, index: int) -> str:
        """A node's name from its index."""
        return self.topo.nodes[index].name

    # -- timeline and link changes ----------------------------------------------

    def _apply_change(self, ch: TimelineChange) -> None:
        link = self.links[ch.dst]
        link.channel.set_params(link.channel.params.updated(ch.changes))
        what = ", ".join(f"{k}={v}" for k, v in ch.changes.items())
        self._note(f"timeline t={ch.at:g}s: link to {self.name_of(ch.dst)}: {what}")

    def set_link(self, peer: int, **changes: Any) -> ChannelParams:
        """Change our link to ``peer`` now (scenario key names); returns the result."""
        link = self.links[peer]
        link.channel.set_params(link.channel.params.updated(changes))
        return link.channel.params

    # -- probes and neighbours ---------------------------------------------------

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        # Spread nodes over the interval so N nodes do not all wake at once.
        nxt = loop.time() + self.interval * ((self.index * 0.618) % 1.0)
        while True:
            await asyncio.sleep(max(0.0, nxt - loop.time()))
            now = loop.time()
            nxt += self.interval
            if nxt < now:  # we fell behind (a stalled loop): do not burst
                nxt = now + self.interval
            self._send_probes(now)
            self._report(now)
            self.macs.expire(now)

    def _send_probes(self, now: float) -> None:
        for peer, link in self.links.items():
            p = link.channel.params
            if not p.up:
                continue
            st = self.neighbours.stamp(peer, now)
            probe = Probe(
                seq=st.seq,
                ts=now,
                echo_ts=st.echo_ts,
                dwell=st.dwell,
                rx_loss=st.rx_loss,
                rate=p.rate,
                granted_rate=p.granted_rate,
                loss=p.loss,
                latency_us=p.latency_us,
                mtu=p.mtu,
                up=p.up,
                want_rate=link.want_rate,
                mac=self.mac,
                name=self.me.name,
            )
            kind = Kind.HELLO if st.hello else Kind.KEEPALIVE
            data = encode_probe(kind, self.index, peer, probe)
            if link.channel.send_control(data, now) is None:
                link.counters.control_out += 1
                self._arm(link)

    def _on_probe(self, peer: int, probe: Probe, now: float) -> None:
        link = self.links[peer]
        link.counters.control_in += 1
        want = probe.want_rate or None
        if want != link.channel.params.granted_rate:
            link.channel.set_params(link.channel.params.updated({"granted_rate": want}))
            self._note(
                f"{self.name_of(peer)} asked for {want or 'no'} bit/s on our link to it: granted"
            )
        self.macs.learn(probe.mac, peer, now)
        for ev in self.neighbours.receive(peer, probe, now):
            self._neighbour_event(ev, now)
        self._arm_expiry()

    def _neighbour_event(self, ev: NeighbourUp | NeighbourDown, now: float) -> None:
        if isinstance(ev, NeighbourUp):
            ps = self.neighbours.peers[ev.peer]
            rtt = f"{ps.rtt * 1000:.1f} ms" if ps.rtt is not None else "?"
            self._note(f"neighbour {self.name_of(ev.peer)} up (RTT {rtt})")
            if self.modem is not None:
                self._destination_up(ev.peer)
        else:
            self._note(f"neighbour {self.name_of(ev.peer)} gone ({ev.reason})")
            self.macs.forget_owner(ev.peer)
            self.links[ev.peer].addresses.clear()
            self.links[ev.peer].contested.clear()
            if ev.peer in self.reported:
                self.reported.discard(ev.peer)
                self.reporter.forget(ev.peer)
                mac = self.topo.nodes[ev.peer].mac
                self._dlep(lambda m: m.drop_destination(mac))

    def _arm_expiry(self) -> None:
        d = self.neighbours.next_deadline()
        if d is None or self._loop is None or d >= self._expiry_at:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = d
        self._expiry = self._loop.call_at(d, self._on_expiry)

    def _on_expiry(self) -> None:
        self._expiry, self._expiry_at = None, math.inf
        now = self.now
        for ev in self.neighbours.expire(now):
            self._neighbour_event(ev, now)
        self._arm_expiry()

    # -- DLEP ---------------------------------------------------------------------

    def metrics_for(self, peer: int, now: float) -> Metrics:
        """What the link to ``peer`` measures now, as DLEP metrics."""
        link = self.links[peer]
        return link_metrics(
            link.channel.params,
            self.neighbours.peers[peer],
            self.topo.emulator.loss_window,
            link.channel.queue_fill(now),
        )

    def _destination_up(self, peer: int) -> None:
        now = self.now
        metrics = self.metrics_for(peer, now)
        self.reporter.started(peer, metrics, now)
        self.reported.add(peer)
        mac = self.topo.nodes[peer].mac
        addrs = list(self.links[peer].addresses)
        self._dlep(lambda m: m.add_destination(mac, metrics, addresses=addrs))

    def _report(self, now: float) -> None:
        for peer in list(self.reported):
            change = self.reporter.decide(peer, self.metrics_for(peer, now), now)
            if change is not None:
                self._dlep_update(self.topo.nodes[peer].mac, change)

    def _dlep_update(self, mac: str, change: Metrics) -> None:
        self._dlep(lambda m: m.update_destination(mac, change))

    def _dlep(self, call: Callable[[ModemDaemon], Any]) -> None:
        self._dlep_q.put_nowait(call)

    async def _dlep_loop(self) -> None:
        while True:
            call = await self._dlep_q.get()
            if self.modem is None:
                continue
            try:
                await call(self.modem)
            except DaemonError as exc:
                log.warning("%s: modem refused: %s", self.me.name, exc)
            except Exception:  # keep reporting: one failed call must not end DLEP
                log.exception("%s: modem call failed", self.me.name)

    def link_request(self, req: LinkRequest) -> LinkDecision:
        """Answer a router's Link Characteristics Request from the channel model.

        CDRT sets a grant on our link to the destination, CDRR asks the
        destination (in our next probes) to grant it on its link to us;
        both are capped at the link's configured rate (then the answer is
        Request Denied with what the link now does). A latency below what
        the link measures cannot be granted. Our destinations are named by
        MAC alone (no RFC 8703 link identifier). An RFC 8629 Hop Control
        other than Reset is answered Request Denied: an emulated radio is
        one hop and has nothing to change (the modem adds the Hop Count).
        """
        peer = self._mac_to_peer.get(req.mac)
        if peer is None or peer not in self.reported or req.ident:
            return LinkDecision(StatusCode.REQUEST_DENIED, Metrics(), "no such destination")
        link = self.links[peer]
        now = self.now
        capped = False
        texts: list[str] = []
        if req.cdrt is not None:
            p = link.channel.params
            raw = math.ceil(req.cdrt / max(1e-9, 1.0 - p.loss)) if p.loss < 1.0 else p.rate
            grant = min(raw, p.rate)
            capped |= raw > p.rate
            link.channel.set_params(p.updated({"granted_rate": max(1, grant)}))
            self._note(f"router asked CDRT {req.cdrt} to {self.name_of(peer)}: rate now {grant}")
        if req.cdrr is not None:
            info = self.neighbours.peers[peer].info
            rate = info.rate if info is not None else link.channel.params.rate
            loss = info.loss if info is not None else 0.0
            raw = math.ceil(req.cdrr / max(1e-9, 1.0 - loss)) if loss < 1.0 else rate
            link.want_rate = max(1, min(raw, rate))
            capped |= raw > rate
            self._note(f"router asked CDRR {req.cdrr} from {self.name_of(peer)}: asking it")
        current = self.metrics_for(peer, now)
        if req.cdrr is not None and (info := self.neighbours.peers[peer].info) is not None:
            expect = ChannelParams(rate=info.rate, loss=info.loss, granted_rate=link.want_rate)
            current = current.merged(Metrics(cdrr=min(expect.goodput, current.mdrr or 0)))
        if (
            req.latency is not None
            and current.latency is not None
            and req.latency < current.latency
        ):
            capped = True
            texts.append("latency is set by the channel")
        if capped:
            texts.insert(0, "capped at what the link can do")
        hop = req.hop_control
        if hop is not None and hop.action != 0:  # 0: Reset, nothing to reset
            capped = True
            texts.append(f"Hop Control {hop.name}: an emulated radio is one hop")
        # With the maximum rates: an MDR change the reporter still holds back
        # (update interval) goes out with the answer, so the answer's current
        # rates never exceed what the router was last told is the maximum
        # (the session refuses such a response, RFC 8175 §13.14-13.15).
        answer = Metrics(
            mdrr=current.mdrr,
            mdrt=current.mdrt,
            cdrr=current.cdrr,
            cdrt=current.cdrt,
            latency=current.latency,
        )
        # The modem sends the answer's metrics with the response: the router knows them.
        self.reporter.note_sent(peer, answer, now)
        status = StatusCode.REQUEST_DENIED if capped else StatusCode.SUCCESS
        return LinkDecision(status, answer, "; ".join(texts))

    # -- data path --------------------------------------------------------------------

    def _on_tap_readable(self) -> None:
        tap = self._tap
        if tap is None:
            return
        now = self.now
        for _ in range(TAP_BATCH):
            try:
                frame = os.read(tap.fd, MAX_FRAME)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    return
                self.drops.add(DropReason.TAP_READ)
                return
            self.tap_frames_in += 1
            self.send_frame(frame, now)

    def send_frame(self, frame: bytes, now: float) -> None:
        """A frame from our side of the radio (the TAP): send it to the air."""
        hdr = parse_header(frame)
        if hdr is None:
            self.drops.add(DropReason.TAP_READ)
            return
        dst, src, _etype, _off = hdr
        self.macs.learn(src, LOCAL, now)
        payload = l2_payload_length(frame)
        if is_group(dst):
            targets = [link for link in self.links.values() if link.channel.params.up]
        else:
            owner = self.macs.lookup(dst, now)
            if owner is None:  # unknown unicast: flood
                targets = [link for link in self.links.values() if link.channel.params.up]
            elif owner == LOCAL:
                return  # both ends on our side: nothing goes on the air
            else:
                link = self.links[owner]
                if not link.channel.params.up:
                    link.counters.drops.add(DropReason.NO_NEIGHBOUR)
                    return
                targets = [link]
        size = len(frame)
        for link in targets:
            data = encode_data(self.index, link.peer, frame)
            reason = link.channel.send_data(data, size, payload, now)
            if reason is not None:
                link.counters.drops.add(reason)
            else:
                self._arm(link)

    def _arm(self, link: _Link) -> None:
        d = link.channel.next_deadline()
        if d is None or d >= link.timer_at or self._loop is None:
            return
        if link.timer is not None:
            link.timer.cancel()
        link.timer_at = d
        link.timer = self._loop.call_at(d, self._flush, link)

    def _flush(self, link: _Link) -> None:
        link.timer, link.timer_at = None, math.inf
        udp = self._udp
        if udp is None:
            return
        c = link.counters
        for data in link.channel.due(self.now):
            udp.sendto(data, link.address)
            if data[3] == Kind.DATA:
                c.frames_out += 1
                c.octets_out += len(data) - 8
        self._arm(link)

    def datagram_received(self, data: bytes) -> None:
        """An emulator packet arrived over UDP."""
        try:
            _kind, src, dst, body = decode(data)
        except PacketError as exc:
            self.drops.add(DropReason.MALFORMED)
            log.debug("%s: malformed packet: %s", self.me.name, exc)
            return
        link = self.links.get(src)
        if link is None or dst != self.index:
            self.drops.add(DropReason.NO_NEIGHBOUR)
            return
        now = self.now
        if isinstance(body, Probe):
            self._on_probe(src, body, now)
            return
        self._on_data(link, body, now)

    def _on_data(self, link: _Link, frame: bytes, now: float) -> None:
        c = link.counters
        c.frames_in += 1
        c.octets_in += len(frame)
        src = frame[6:12]
        self.macs.learn(src, link.peer, now)
        if self._mac_to_peer.get(src) == link.peer:
            self._learn_addresses(link, frame)
        tap = self._tap
        if tap is None:
            return
        try:
            os.write(tap.fd, frame)
            self.tap_frames_out += 1
        except OSError:
            c.drops.add(DropReason.TAP_WRITE)

    def _learn_addresses(self, link: _Link, frame: bytes) -> None:
        new = [a for a in claimed_addresses(frame) if a not in link.addresses]
        if not new or len(link.addresses) >= MAX_ADDRESSES:
            return
        # An address another neighbour holds stays with it (RFC 8175 §13.8.1:
        # one owner per address; the modem refuses a second one), until that
        # neighbour is gone.
        held = {a for other in self.links.values() if other is not link for a in other.addresses}
        for a in [a for a in new if a in held]:
            new.remove(a)
            if a not in link.contested:
                link.contested.add(a)
                self._note(f"{self.name_of(link.peer)} claims {a}, held by another neighbour")
        if not new:
            return
        new = new[: MAX_ADDRESSES - len(link.addresses)]
        link.addresses.extend(new)
        self._note(f"learned {', '.join(new)} of {self.name_of(link.peer)}")
        if link.peer in self.reported:
            mac = self.topo.nodes[link.peer].mac
            self._dlep(lambda m: m.update_destination(mac, add=new))

    # -- status -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything about this node, JSON-friendly (status socket, Prometheus)."""
        now = self.now
        assert self.t0 is not None
        neighbours = []
        for peer, ps in self.neighbours.peers.items():
            neighbours.append(
                {
                    "peer": self.name_of(peer),
                    "mac": self.topo.nodes[peer].mac,
                    "state": str(ps.state),
                    "since": None if ps.since is None else round(now - ps.since, 3),
                    "rtt_ms": None if ps.rtt is None else round(ps.rtt * 1000, 3),
                    "rx_loss": ps.rx_loss(self.topo.emulator.loss_window),
                    "tx_loss": ps.tx_loss,
                    "probes_in": ps.probes_in,
                    "addresses": list(self.links[peer].addresses),
                    "reported": (
                        m.as_dict() if (m := self.reporter.last(peer)) is not None else None
                    ),
                }
            )
        links = []
        for peer, link in self.links.items():
            p = link.channel.params
            links.append(
                {
                    "peer": self.name_of(peer),
                    "up": p.up,
                    "rate": p.rate,
                    "granted_rate": p.granted_rate,
                    "latency_us": p.latency_us,
                    "jitter_us": p.jitter_us,
                    "loss": p.loss,
                    "mtu": p.mtu,
                    "queue_size": p.queue_size,
                    "queue_bytes": link.channel.backlog(now),
                    "in_flight": link.channel.in_flight(),
                    **link.counters.as_dict(),
                }
            )
        macs = [
            {
                "mac": e.mac,
                "owner": "local" if e.owner == LOCAL else self.name_of(e.owner),
                "idle": round(e.idle, 3),
            }
            for e in self.macs.entries(now)
        ]
        return {
            "node": self.me.name,
            "index": self.index,
            "mac": self.me.mac,
            "tap": self._tap.name if self._tap is not None else None,
            "time": round(now - self.t0, 3),
            "neighbours": neighbours,
            "links": links,
            "drops": self.drops.as_dict(),
            "tap_frames_in": self.tap_frames_in,
            "tap_frames_out": self.tap_frames_out,
            "macs": macs,
            "mac_table": {
                "size": len(self.macs),
                "learned": self.macs.learned,
                "moved": self.macs.moved,
                "aged_out": self.macs.aged_out,
                "evicted": self.macs.evicted,
            },
            "dlep": {"updates": self.reporter.updates, "held": self.reporter.held},
            "events": [{"at": t, "text": s} for t, s in self.events[-20:]],
        }
