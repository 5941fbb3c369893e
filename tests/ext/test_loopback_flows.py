"""Every extension's RFC flows between a real router and modem daemon on loopback.

One test per flow: both daemons run in-process over TCP on 127.0.0.1 with
the extensions chosen in configuration (``[router]`` / ``[modem]``
``extensions``); parameters a modem declares (queues, latency range, credit
windows) come from an extension registered with the builder.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import LinkDecision, LinkRequest, ModemDaemon, RouterDaemon, SessionEvent
from dlep.ext.credit import (
    CREDIT_CONTROL,
    CREDIT_CONTROL_RESPONSE,
    CreditGranted,
    CreditRequested,
    CreditStatusReceived,
    CreditWindowAssociated,
    CreditWindowInfo,
    CreditWindowInitialization,
    CreditWindowsChanged,
    TrafficClassificationChanged,
    credit_state,
)
from dlep.ext.credit_8021q import Ieee8021qCreditWindow
from dlep.ext.credit_diffserv import DiffservCreditWindow
from dlep.ext.latency_range import (
    LatencyRange,
    LatencyRangeExtension,
    LatencyRangeReported,
    latency_range,
    latency_range_items,
)
from dlep.ext.link_id import LinkIdentifier
from dlep.ext.multihop import (
    HopControlAction,
    HopControlRequested,
    HopCountReported,
    hop_control_request_items,
    hop_control_session_items,
    hop_count,
    hop_count_items,
)
from dlep.ext.pause import (
    PauseExtension,
    QueueParameter,
    QueueParameters,
    QueuesPaused,
    QueuesRestarted,
    pause,
    restart,
)
from dlep.ext.traffic_class import (
    DiffservClassification,
    EthernetClassification,
    TrafficClassification,
)
from dlep.fsm import (
    DestinationDown,
    DestinationUp,
    DestinationUpdate,
    DestKey,
    LinkCharacteristicsResponse,
    Metrics,
    SessionUp,
    State,
)
from dlep.wire import MessageType, StatusCode

M = MessageType
MAC = "02:00:00:00:00:21"
MAC_B = bytes.fromhex("020000000021")
TIMEOUT = 10.0

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configs(port: int, extensions: Sequence[str]) -> tuple[Any, Any]:
    timers = {"heartbeat_interval_ms": 1000}
    modem = parse_modem_config(
        {
            "network": {"tcp_port": port, "listen_addresses": ["127.0.0.1"]},
            "timers": timers,
            "api": {"enabled": False},
            "modem": {"extensions": list(extensions)},
        }
    )
    router = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers,
            "api": {"enabled": False},
            "router": {
                "discovery": False,
                "static_peers": [f"127.0.0.1:{port}"],
                "extensions": list(extensions),
            },
        }
    )
    return router, modem


class Recorder:
    """Every engine event a daemon publishes, kept in order; wait for one."""

    def __init__(self, daemon: ModemDaemon | RouterDaemon) -> None:
        self.events: list[Any] = []
        self._new = asyncio.Event()
        self._sub = daemon.subscribe()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for ev in self._sub:
            if isinstance(ev, SessionEvent):
                self.events.append(ev.event)
                self._new.set()

    async def wait(
        self,
        kind: type,
        pred: Callable[[Any], bool] = lambda _e: True,
        timeout: float = TIMEOUT,
    ) -> Any:
        """The first event of ``kind`` satisfying ``pred`` (already seen or next)."""

        async def loop() -> Any:
            i = 0
            while True:
                while i < len(self.events):
                    ev = self.events[i]
                    i += 1
                    if isinstance(ev, kind) and pred(ev):
                        return ev
                self._new.clear()
                await self._new.wait()

        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            seen = ", ".join(type(e).__name__ for e in self.events)
            raise AssertionError(f"no {kind.__name__} within {timeout} s; saw: {seen}") from None

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def close(self) -> None:
        self._task.cancel()


@dataclass
class Link:
    """A router and a modem daemon in session, with their event recorders."""

    router: RouterDaemon
    modem: ModemDaemon
    rrec: Recorder
    mrec: Recorder
    router_up: SessionUp
    modem_up: SessionUp

    @property
    def rsession(self) -> Any:
        return next(iter(self.router._conns.values())).proto.session

    @property
    def msession(self) -> Any:
        return next(iter(self.modem._conns.values())).proto.session

    def flush(self) -> None:
        """Push out what an engine-level call (credit API) queued."""
        for d in (self.router, self.modem):
            for c in d._conns.values():
                c.proto.flush()

    def router_plugin(self, code: int) -> Any:
        return next(p for p in self.router._plugins if getattr(p, "code", None) == code)

    def assert_negotiated(self, codes: set[int]) -> None:
        assert self.router_up.extensions == frozenset(codes)
        assert self.modem_up.extensions == frozenset(codes)
        assert self.router.sessions()[0].extensions == tuple(sorted(codes))
        assert self.modem.sessions()[0].extensions == tuple(sorted(codes))

    def assert_clean(self) -> None:
        """Both sessions still up, no protocol error counted on either side."""
        for d in (self.router, self.modem):
            (info,) = d.sessions()
            assert info.state == State.IN_SESSION.value, info
            assert not info.errors, info.errors


@asynccontextmanager
async def link(
    extensions: Sequence[str],
    *,
    modem_exts: Sequence[Any] = (),
    link_handler: Any = None,
) -> AsyncIterator[Link]:
    rcfg, mcfg = _configs(_free_port(), extensions)
    mb = ModemDaemon.builder().config(mcfg)
    for ext in modem_exts:
        mb.register_extension(ext)
    if link_handler is not None:
        mb.link_characteristics_handler(link_handler)
    modem = await mb.spawn()
    mrec = Recorder(modem)
    router: RouterDaemon | None = None
    rrec: Recorder | None = None
    try:
        router = await RouterDaemon.builder().config(rcfg).spawn()
        rrec = Recorder(router)
        rup = await rrec.wait(SessionUp)
        mup = await mrec.wait(SessionUp)
        ln = Link(router, modem, rrec, mrec, rup, mup)
        yield ln
        ln.assert_clean()
    finally:
        if router is not None:
            await asyncio.wait_for(router.shutdown(), TIMEOUT)
        await asyncio.wait_for(modem.shutdown(), TIMEOUT)
        mrec.close()
        if rrec is not None:
            rrec.close()


async def _until(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    async def loop() -> None:
        while not cond():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


# --------------------------------------------------------------------------
# RFC 8629 Multi-Hop Forwarding
# --------------------------------------------------------------------------


async def test_multihop_hop_count_on_destination_up_and_update() -> None:
    async with link(["multi-hop"]) as ln:
        ln.assert_negotiated({1})
        await ln.modem.add_destination(MAC, extra=hop_count_items(2, message_type=M.DESTINATION_UP))
        up = await ln.rrec.wait(DestinationUp, lambda e: e.info.mac == MAC_B)
        assert hop_count(up.info) == 2
        rep = await ln.rrec.wait(HopCountReported, lambda e: e.message_type == M.DESTINATION_UP)
        assert (rep.mac, rep.hop_count.hops) == (MAC_B, 2)

        await ln.modem.update_destination(MAC, extra=hop_count_items(4))
        upd = await ln.rrec.wait(DestinationUpdate, lambda e: hop_count(e.info) == 4)
        assert upd.info.mac == MAC_B
        await ln.rrec.wait(
            HopCountReported,
            lambda e: e.message_type == M.DESTINATION_UPDATE and e.hop_count.hops == 4,
        )
        ((_, info),) = ln.router.destinations()
        assert hop_count(info) == 4


async def test_multihop_hop_control_in_link_characteristics_request() -> None:
    requested: asyncio.Future[HopControlRequested] = asyncio.get_running_loop().create_future()
    holder: dict[str, Recorder] = {}

    async def handler(req: LinkRequest) -> LinkDecision:
        hc = await holder["mrec"].wait(HopControlRequested, lambda e: e.mac == req.mac)
        if not requested.done():
            requested.set_result(hc)
        hops = 1 if hc.action == HopControlAction.DIRECT_CONNECTION else 3
        return LinkDecision(
            StatusCode.SUCCESS,
            Metrics(latency=req.current.latency),
            extra=hop_count_items(hops, message_type=M.LINK_CHARACTERISTICS_RESPONSE),
        )

    async with link(["multi-hop"], link_handler=handler) as ln:
        holder["mrec"] = ln.mrec
        ln.assert_negotiated({1})
        await ln.modem.add_destination(
            MAC, extra=hop_count_items(3, True, message_type=M.DESTINATION_UP)
        )
        await ln.rrec.wait(DestinationUp, lambda e: e.info.mac == MAC_B)

        await ln.router.request_link_characteristics(
            MAC, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION)
        )
        resp = await ln.rrec.wait(LinkCharacteristicsResponse)
        assert resp.mac == MAC_B
        hc = await asyncio.wait_for(requested, TIMEOUT)
        assert (hc.mac, hc.action) == (MAC_B, HopControlAction.DIRECT_CONNECTION)
        rep = await ln.rrec.wait(
            HopCountReported, lambda e: e.message_type == M.LINK_CHARACTERISTICS_RESPONSE
        )
        assert (rep.mac, rep.hop_count.hops) == (MAC_B, 1)
        await _until(
            lambda: hop_count(ln.router.destinations()[0][1]) == 1,
            "the router's destination to show Hop Count 1",
        )


async def test_multihop_session_update_hop_control_suppress_forwarding() -> None:
    async with link(["multi-hop"]) as ln:
        ln.assert_negotiated({1})
        await ln.router.update_session(
            extra=hop_control_session_items(HopControlAction.SUPPRESS_FORWARDING)
        )
        hc = await ln.mrec.wait(HopControlRequested)
        assert hc.mac is None
        assert hc.action == HopControlAction.SUPPRESS_FORWARDING
        assert hc.name.lower().replace("_", " ").startswith("suppress")
        # The Session Update was answered; no protocol error on either side.
        await _until(
            lambda: ln.router.sessions()[0].rx.get("SESSION_UPDATE_RESPONSE", 0) >= 1,
            "the Session Update Response",
        )
        for d in (ln.router, ln.modem):
            (info,) = d.sessions()
            assert info.state == State.IN_SESSION.value, info


# --------------------------------------------------------------------------
# RFC 8757 Latency Range
# --------------------------------------------------------------------------


async def test_latency_range_in_session_initialization_response() -> None:
    async with link(
        ["latency-range"], modem_exts=[LatencyRangeExtension(default=(100, 2000))]
    ) as ln:
        ln.assert_negotiated({4})
        rep = await ln.rrec.wait(LatencyRangeReported)
        assert rep.mac is None
        assert rep.message_type == M.SESSION_INITIALIZATION_RESPONSE
        assert rep.latency_range == LatencyRange(100, 2000)
        ext = ln.router_plugin(4)
        assert ext.current(ln.rsession) == LatencyRange(100, 2000)


async def test_latency_range_in_destination_update() -> None:
    async with link(
        ["latency-range"], modem_exts=[LatencyRangeExtension(default=(100, 2000))]
    ) as ln:
        ln.assert_negotiated({4})
        await ln.modem.add_destination(MAC)
        await ln.rrec.wait(DestinationUp)
        await ln.modem.update_destination(MAC, extra=latency_range_items(50, 500))
        rep = await ln.rrec.wait(LatencyRangeReported, lambda e: e.mac == MAC_B)
        assert rep.message_type == M.DESTINATION_UPDATE
        assert rep.latency_range == LatencyRange(50, 500)
        upd = await ln.rrec.wait(DestinationUpdate)
        assert latency_range(upd.info) == LatencyRange(50, 500)
        ext = ln.router_plugin(4)
        assert ext.current(ln.rsession, MAC_B) == LatencyRange(50, 500)
        assert ext.current(ln.rsession) == LatencyRange(100, 2000)


# --------------------------------------------------------------------------
# RFC 8703 Link Identifier
# --------------------------------------------------------------------------


def _lid(info: Any) -> LinkIdentifier | None:
    return next((i for i in info.extra if isinstance(i, LinkIdentifier)), None)


async def test_link_id_two_links_behind_one_gateway() -> None:
    lid1, lid2 = LinkIdentifier.from_int(1), LinkIdentifier.from_int(2)
    async with link(["link-identifier"]) as ln:
        ln.assert_negotiated({3})
        await ln.modem.add_destination(MAC, addresses=["10.0.0.1"], extra=[lid1])
        await ln.modem.add_destination(MAC, addresses=["10.0.0.2"], extra=[lid2])
        await ln.rrec.wait(DestinationUp, lambda e: _lid(e.info) == lid1)
        await ln.rrec.wait(DestinationUp, lambda e: _lid(e.info) == lid2)
        dests = {_lid(info): info for _, info in ln.router.destinations()}
        assert set(dests) == {lid1, lid2}
        assert all(info.mac == MAC_B for info in dests.values())
        assert {str(a) for a in dests[lid1].ipv4} == {"10.0.0.1"}
        assert {str(a) for a in dests[lid2].ipv4} == {"10.0.0.2"}
        # Two links behind one MAC are two distinct metric series.
        labels = {
            lab["mac"] for lab, _ in _samples(ln.router, "dlep_destination_cdrr_bytes_per_second")
        }
        assert len(labels) == 2 and all(lab.startswith("02:") and "#" in lab for lab in labels)

        # The modem drops link 1: link 2 stays.
        await ln.modem.drop_destination(MAC, extra=[lid1])
        down = await ln.rrec.wait(DestinationDown, lambda e: e.ident == (lid1,))
        assert down.mac == MAC_B and down.by_peer
        ((_, left),) = ln.router.destinations()
        assert _lid(left) == lid2

        # The router drops link 2 itself.
        await ln.router.drop_destination(MAC, extra=[lid2])
        mdown = await ln.mrec.wait(DestinationDown, lambda e: e.ident == (lid2,))
        assert mdown.mac == MAC_B
        await _until(lambda: not ln.router.destinations(), "the router's table to empty")


# --------------------------------------------------------------------------
# RFC 8651 Control-Plane-Based Pause
# --------------------------------------------------------------------------

QUEUES = QueueParameters((QueueParameter(0, 1000, ()), QueueParameter(1, 200, (46,))), scale=1)


async def test_pause_queue_parameters_at_init_then_pause_and_restart() -> None:
    async with link(["pause"], modem_exts=[PauseExtension(QUEUES)]) as ln:
        ln.assert_negotiated({2})
        ext = ln.router_plugin(2)
        assert ext.parameters(ln.rsession) == QUEUES

        await ln.modem.add_destination(MAC)
        await ln.rrec.wait(DestinationUp)
        await ln.modem.update_destination(MAC, extra=[pause(1)])
        ev = await ln.rrec.wait(QueuesPaused)
        assert (ev.dest, ev.queues, ev.paused) == (DestKey(MAC_B), frozenset({1}), frozenset({1}))
        assert ext.paused(ln.rsession, MAC_B) == frozenset({1})
        assert ext.is_paused(ln.rsession, MAC_B, dscp=46)
        assert not ext.is_paused(ln.rsession, MAC_B, dscp=0)
        assert ext.paused(ln.rsession) == frozenset()  # not session-wide
        paused = _samples(ln.router, "dlep_destination_paused_queues")
        assert [v for _, v in paused] == [1.0]  # one queue paused for this destination

        await ln.modem.update_destination(MAC, extra=[restart(1)])
        ev = await ln.rrec.wait(QueuesRestarted)
        assert (ev.dest, ev.queues, ev.paused) == (DestKey(MAC_B), frozenset({1}), frozenset())
        assert not ext.is_paused(ln.rsession, MAC_B, dscp=46)


# --------------------------------------------------------------------------
# RFC 9894 / RFC 9895 credit windows (RFC 9892/9893)
# --------------------------------------------------------------------------

KIB = 1024


@dataclass(frozen=True)
class CreditCase:
    name: str
    code: int
    make: Callable[..., Any]
    tc: TrafficClassification
    ef: dict[str, int]  # classify() arguments for traffic into window 10


CREDIT_CASES = [
    CreditCase(
        "credit-diffserv",
        6,
        DiffservCreditWindow,
        TrafficClassification(1, (DiffservClassification(10, (46,)), DiffservClassification(11))),
        {"dscp": 46},
    ),
    CreditCase(
        "credit-8021q",
        5,
        Ieee8021qCreditWindow,
        TrafficClassification(
            1, (EthernetClassification(10, 0, (6, 7)), EthernetClassification(11))
        ),
        {"vid": 3, "pcp": 7},
    ),
]


@pytest.mark.parametrize("case", CREDIT_CASES, ids=lambda c: c.name)
async def test_credit_windows_association_consume_request_grant(case: CreditCase) -> None:
    windows = (
        CreditWindowInitialization.from_octets(10, 4000, 64 * KIB),
        CreditWindowInitialization.from_octets(11, 0, 64 * KIB),
    )
    ext = case.make(classifications=(case.tc,), windows=windows, request_policy=lambda w: 1500)
    async with link([case.name], modem_exts=[ext]) as ln:
        ln.assert_negotiated({case.code})
        # Windows initialised from the Session Initialization Response.
        tcc = await ln.rrec.wait(TrafficClassificationChanged)
        assert tcc.classification == case.tc
        cw = await ln.rrec.wait(CreditWindowsChanged)
        assert cw.message_type == M.SESSION_INITIALIZATION_RESPONSE
        rst, mst = credit_state(ln.rsession), credit_state(ln.msession)
        assert rst.windows() == (
            CreditWindowInfo(10, 4000, 64 * KIB),
            CreditWindowInfo(11, 0, 64 * KIB),
        )

        # A destination associated with traffic class 1, with a grant.
        await ln.modem.add_destination(
            MAC, extra=mst.destination_items(MAC, tid=1, grants={11: 3000})
        )
        assoc = await ln.rrec.wait(CreditWindowAssociated)
        assert (assoc.mac, assoc.tid) == (MAC_B, 1)
        g = await ln.rrec.wait(CreditGranted, lambda e: e.fid == 11)
        assert (g.granted, g.credits, g.message_type) == (3000, 3000, M.DESTINATION_UP)
        # The router's Status for that grant arrives in the Destination Up Response.
        st = await ln.mrec.wait(CreditStatusReceived, lambda e: e.fid == 11)
        assert st.reported == 3000 and not st.mismatch
        assert rst.classify(MAC, **case.ef) == 10
        assert rst.classify(MAC) == 11

        # The router consumes window 10 dry, then asks for more.
        sent = 0
        while rst.consume(10, 1500):
            sent += 1500
        assert sent == 3000 and rst.credits(10) == 1000
        assert rst.request_credits([10], now=asyncio.get_running_loop().time())
        ln.flush()
        req = await ln.mrec.wait(CreditRequested)
        assert req.fids == (10,) and req.granted == ((10, 1500),)
        got = await ln.rrec.wait(
            CreditGranted, lambda e: e.fid == 10 and e.message_type == CREDIT_CONTROL_RESPONSE
        )
        assert got.added == 1500 and rst.credits(10) == 2500

        # The modem grants on its own (Credit Control), the router reports status.
        assert mst.grant(10, 1000, now=asyncio.get_running_loop().time())
        ln.flush()
        got = await ln.rrec.wait(
            CreditGranted, lambda e: e.fid == 10 and e.message_type == CREDIT_CONTROL
        )
        assert got.credits == 3500 == rst.credits(10)
        st = await ln.mrec.wait(
            CreditStatusReceived,
            lambda e: e.fid == 10 and e.message_type == CREDIT_CONTROL_RESPONSE,
        )
        assert st.reported == 3500
        await _until(
            lambda: not rst.channel.outstanding and not mst.channel.outstanding,
            "both credit control channels to be idle",
        )
        # The router's metrics endpoint exports the window (issue 5: values in
        # the metrics).
        samples = _samples(ln.router, "dlep_credit_window_octets")
        assert any(lab["fid"] == "10" and v == 3500 for lab, v in samples)


def _samples(daemon: Any, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one family from the daemon's Prometheus collector."""
    from dlep.api.metrics import DaemonCollector

    out: list[tuple[dict[str, str], float]] = []
    for fam in DaemonCollector(daemon).collect():
        if fam.name == name:
            out += [(dict(smp.labels), smp.value) for smp in fam.samples]
    return out
