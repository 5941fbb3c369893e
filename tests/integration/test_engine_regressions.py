"""Regression tests for the engine bugs of the "one owner per piece of state"
issue, end to end: a modem and a router daemon over TCP on 127.0.0.1.

Each test names the bug it pins; the engine-level twins (fake clock, no
sockets) are in ``tests/unit/test_fsm_regressions.py``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from dlep.api import convert
from dlep.daemon import (
    DaemonArgumentError,
    LinkDecision,
    LinkRequest,
    SessionEvent,
)
from dlep.ext.link_id import LinkIdentifier, LinkIdExtension
from dlep.ext.multihop import (
    HopControlAction,
    HopCount,
    HopCountReported,
    hop_control_request_items,
)
from dlep.ext.pause import PauseExtension, QueuesPaused, pause
from dlep.fsm import (
    DestinationDown,
    DestinationUp,
    DestKey,
    LinkCharacteristicsResponse,
    LinkCharacteristicsTimeout,
    Metrics,
    SessionTerminated,
    SessionUp,
)
from dlep.wire import Message, MessageType, Status, StatusCode, parse_mac

from .conftest import (
    MAC1,
    V4,
    Daemons,
    Events,
    modem_config,
    router_config,
    session_pair,
)
from .test_faults import raw_client, unknown_message

pytestmark = pytest.mark.timeout(60)

M = 1_000_000


# -- 1. stale clock ------------------------------------------------------------


async def test_link_request_long_after_the_last_message_is_not_reported_slow(
    daemons: Daemons, port: int
) -> None:
    """Bug 1: the engine took 'now' from the last received message, so a Link
    Characteristics Request made more than link_characteristics_timeout after
    the router last heard from the modem was reported slow at once."""
    answered = asyncio.Event()

    async def slow_handler(req: LinkRequest) -> LinkDecision:
        await asyncio.sleep(0.3)  # well inside the 1 s report time
        answered.set()
        return LinkDecision(StatusCode.SUCCESS, Metrics(cdrr=req.cdrr))

    timers = {"timers": {"link_characteristics_timeout_ms": 1000}}
    modem = await daemons.modem(
        modem_config(port, hb_ms=5000),
        lambda b: b.link_characteristics_handler(slow_handler),
    )
    router = await daemons.router(router_config(port, hb_ms=5000, **timers))
    rev = Events(router.subscribe(), "router")
    await rev.next(SessionUp)
    await rev.next(DestinationUp)
    await rev.next(DestinationUp)
    # Silence: heartbeats are 5 s apart, so nothing arrives for 1.5 s.
    await asyncio.sleep(1.5)
    await router.request_link_characteristics(MAC1, cdrr=20 * M)
    resp = await rev.next(LinkCharacteristicsResponse, timeout=5)
    assert resp.status == StatusCode.SUCCESS and resp.metrics.cdrr == 20 * M
    assert answered.is_set()
    slow = [e for e in rev.seen if isinstance(e, SessionEvent)]
    assert not any(isinstance(e.event, LinkCharacteristicsTimeout) for e in slow), slow
    assert modem.sessions()[0].state == "in-session"


def _router_session(router: Any) -> Any:
    """The router's one session engine (tests may look inside)."""
    (conn,) = router._conns.values()
    return conn.proto.session


# -- 2. MAC vs table key ----------------------------------------------------------


async def test_link_id_destinations_are_named_by_key_and_pause_state_goes_with_them(
    daemons: Daemons, port: int
) -> None:
    """Bug 2: with RFC 8703 the table key is (MAC, link id). Events and the API
    published key bytes as a MAC, and pause state (RFC 8651) was stored under
    the MAC but dropped under the key, so it outlived Destination Down."""
    rpause = PauseExtension()

    def with_router_exts(b: Any) -> Any:
        return b.register_extension(LinkIdExtension()).register_extension(rpause)

    def with_modem_exts(b: Any) -> Any:
        return b.register_extension(LinkIdExtension()).register_extension(PauseExtension())

    modem = await daemons.modem(modem_config(port, destinations=[]), with_modem_exts)
    router = await daemons.router(router_config(port), with_router_exts)
    rev = Events(router.subscribe(), "router")
    up = await rev.next(SessionUp)
    assert up.extensions == frozenset({2, 3})
    lid = LinkIdentifier.from_int(7)
    key = DestKey(parse_mac(MAC1), (lid,))
    await modem.add_destination(MAC1, addresses=["10.9.0.1"], extra=[lid])
    got = await rev.next(DestinationUp)
    assert got.info.mac == parse_mac(MAC1) and got.info.key == key
    await modem.update_destination(MAC1, extra=[lid, pause(0)])
    paused = await rev.next(QueuesPaused)
    assert paused.dest == key
    assert rpause.paused(_router_session(router), key) == {0}
    session = router.sessions()[0].id
    [(sid, info)] = router.destinations()
    assert sid == session and info.key == key
    # The pause state is the destination's; it goes with it.
    await modem.drop_destination(MAC1, extra=[lid])
    down = await rev.next(DestinationDown)
    assert down.key == key and down.mac == parse_mac(MAC1)
    _specs, samples = router.extension_gauges()
    assert not [s for s in samples if s[2].name == "dlep_destination_paused_queues"], samples
    assert rpause.state(_router_session(router)).dest_paused == {}
    # When the session ends, the API names the destination by its key, never
    # as a 10-octet "MAC".
    await modem.add_destination("02:00:00:00:00:02", addresses=["10.9.0.2"], extra=[lid])
    await rev.next(DestinationUp)
    key = DestKey(parse_mac("02:00:00:00:00:02"), (lid,))
    await modem.shutdown()
    ended = await rev.next(SessionTerminated)
    assert ended.destinations == (key,)
    assert rev.last_wrapper is not None
    msg = convert.event_to_pb(rev.last_wrapper)
    assert list(msg.session_down.destinations) == ["02:00:00:00:00:02#00000007"]
    assert "by peer" in msg.text


# -- 3. RFC 8629 §3.2: Hop Count in the answer to a Hop Control ------------------------


@pytest.mark.parametrize("profile", [None, "ll-dlep"], ids=["standard", "ll-dlep"])
async def test_hop_control_request_is_answered_with_a_hop_count(
    daemons: Daemons, port: int, profile: str | None
) -> None:
    """Bug 3: a Link Characteristics Request carrying Hop Control was answered
    without the Hop Count RFC 8629 §3.2 requires, and the modem's handler was
    not told it was a Hop Control request."""
    seen: list[LinkRequest] = []

    def handler(req: LinkRequest) -> LinkDecision:
        seen.append(req)
        return LinkDecision(StatusCode.SUCCESS, Metrics())  # no Hop Count given

    exts: dict[str, Any] = {"extensions": ["multi-hop"]}
    if profile is not None:
        exts["profile"] = profile
    modem = await daemons.modem(
        modem_config(port, destinations=[], modem=exts),
        lambda b: b.link_characteristics_handler(handler),
    )
    router = await daemons.router(router_config(port, router=exts))
    rev = Events(router.subscribe(), "router")
    up = await rev.next(SessionUp)
    assert up.extensions == frozenset({1})
    await modem.add_destination(MAC1, extra=[HopCount(3, True)])
    await rev.next(DestinationUp)
    await router.request_link_characteristics(
        MAC1, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION)
    )
    resp = await rev.next(LinkCharacteristicsResponse)
    assert resp.status == StatusCode.SUCCESS
    reported = [
        e.event
        for e in rev.seen
        if isinstance(e, SessionEvent) and isinstance(e.event, HopCountReported)
    ]
    answer = [r for r in reported if r.message_type == MessageType.LINK_CHARACTERISTICS_RESPONSE]
    assert answer and answer[0].hop_count.hops == 3, reported
    assert len(seen) == 1 and seen[0].hop_control is not None
    assert seen[0].hop_control.action == HopControlAction.DIRECT_CONNECTION


async def test_default_link_handler_answers_hop_control(daemons: Daemons, port: int) -> None:
    """The default handler cannot change hops: it says so, with the Hop Count."""
    exts = {"extensions": ["multi-hop"]}
    modem = await daemons.modem(modem_config(port, destinations=[], modem=exts))
    router = await daemons.router(router_config(port, router=exts))
    rev = Events(router.subscribe(), "router")
    await rev.next(SessionUp)
    await modem.add_destination(MAC1, extra=[HopCount(2)])
    await rev.next(DestinationUp)
    await router.request_link_characteristics(
        MAC1, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION)
    )
    resp = await rev.next(LinkCharacteristicsResponse)
    assert resp.status == StatusCode.REQUEST_DENIED and "Hop Control" in resp.text
    hops = [
        e.event.hop_count.hops
        for e in rev.seen
        if isinstance(e, SessionEvent)
        and isinstance(e.event, HopCountReported)
        and e.event.message_type == MessageType.LINK_CHARACTERISTICS_RESPONSE
    ]
    assert hops == [2]


# -- 4. the modem keeps only what it can send -------------------------------------------


async def test_session_metrics_that_would_break_a_destination_are_refused(
    daemons: Daemons, port: int
) -> None:
    """Bug 4: update_session_metrics merged a session CDRR above a destination's
    MDRR into the table; the destination then failed the sender-side check at
    the next session and silently disappeared from it."""
    modem, _router, _mev, _rev = await session_pair(
        daemons, port, modem_kw={"modem": {"max_sessions": 2}}
    )
    with pytest.raises(DaemonArgumentError, match=r"cdrr.*02:00:00:00:00:01") as err:
        await modem.update_session_metrics(Metrics(cdrr=60 * M))  # MAC1's MDRR is 54M
    assert err.value.field == "metrics.cdrr"
    assert modem.session_metrics.cdrr == 50 * M
    # A router that comes later still learns every destination.
    router2 = await daemons.router(router_config(port))
    rev2 = Events(router2.subscribe(), "router2")
    await rev2.next(SessionUp)
    got = {(await rev2.next(DestinationUp)).info.mac_str for _ in range(2)}
    assert MAC1 in got
    # What can be applied still is.
    await modem.update_session_metrics(Metrics(cdrr=10 * M))
    assert modem.session_metrics.cdrr == 10 * M


async def test_destination_changes_that_could_not_be_sent_are_refused(
    daemons: Daemons, port: int
) -> None:
    """The modem's table refuses at call time, naming the field, what a session
    could never carry (and takes nothing of it)."""
    modem, _router, _mev, rev = await session_pair(daemons, port)
    with pytest.raises(DaemonArgumentError, match="cdrr") as err:
        await modem.update_destination(MAC1, Metrics(cdrr=60 * M))  # above its 54M MDRR
    assert err.value.field == "metrics.cdrr"
    with pytest.raises(DaemonArgumentError, match="already belongs") as err:
        await modem.add_destination("02:00:00:00:00:09", addresses=["10.0.0.11"])
    assert err.value.field == "addresses"
    with pytest.raises(DaemonArgumentError, match="8 octets") as err:
        await modem.add_destination("02:00:00:ff:fe:00:00:09")
    assert err.value.field == "mac"
    assert set(modem.known_destinations()) == {
        DestKey(parse_mac(MAC1)),
        DestKey(parse_mac("02:00:00:00:00:02")),
    }
    await rev.none_of(DestinationUp, within=0.3)


# -- 6. who ended the session ------------------------------------------------------------


async def test_termination_we_send_is_logged_as_ours(
    daemons: Daemons, port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Bug 6: logs said "ended (..., by peer)" for terminations we sent because
    of the peer's fault."""
    caplog.set_level(logging.INFO, logger="dlep")
    modem = await daemons.modem(modem_config(port, destinations=[]))
    mev = Events(modem.subscribe(), "modem")
    async with raw_client(V4, port) as raw:
        await raw.init()
        await mev.next(SessionUp)
        raw.send(unknown_message())
        term = await raw.recv_until(MessageType.SESSION_TERMINATION)
        assert term.get(Status) == Status(StatusCode.UNKNOWN_MESSAGE, term.get(Status).text)  # type: ignore[union-attr]
        raw.send(Message(MessageType.SESSION_TERMINATION_RESPONSE))
        ended = await mev.next(SessionTerminated)
    assert ended.status == StatusCode.UNKNOWN_MESSAGE and not ended.by_peer
    lines = [r.getMessage() for r in caplog.records if "ended (" in r.getMessage()]
    assert lines and "(UNKNOWN_MESSAGE, by us)" in lines[0], lines
    # ... and a termination the peer sends is the peer's.
    async with raw_client(V4, port) as raw:
        await raw.init()
        await mev.next(SessionUp)
        raw.send(Message(MessageType.SESSION_TERMINATION, (Status(StatusCode.SHUTTING_DOWN),)))
        await raw.recv_until(MessageType.SESSION_TERMINATION_RESPONSE)
        ended = await mev.next(SessionTerminated)
    assert ended.by_peer
    lines = [r.getMessage() for r in caplog.records if "ended (" in r.getMessage()]
    assert "(SHUTTING_DOWN, by peer)" in lines[-1], lines


# -- 5. connection points -------------------------------------------------------------


def test_offered_points_are_listen_addresses_on_the_interface() -> None:
    """Bug 5 (the no-root half; tests/integration/test_netns_discovery.py has
    the end-to-end one): a Peer Offer never names a point nobody listens on."""
    from ipaddress import ip_address

    from dlep.daemon import ModemDaemon
    from dlep.daemon.router import _interleave
    from dlep.fsm import ConnectionPoint

    cfg = modem_config(854, destinations=[], network={"interface": "lo"})
    addrs = [ip_address(a) for a in ("127.0.0.1", "::1", "192.0.2.7", "fe80::1")]
    modem = ModemDaemon(cfg)
    modem.listening = [("127.0.0.1", 854)]
    assert [str(p.address) for p in modem.offered_points(addrs)] == ["127.0.0.1"]
    modem.listening = [("0.0.0.0", 854), ("::", 855)]
    got = [(str(p.address), p.port) for p in modem.offered_points(addrs)]
    assert got == [("127.0.0.1", 854), ("192.0.2.7", 854), ("::1", 855), ("fe80::1", 855)]
    # The router tries them with the address families interleaved (RFC 8305 §4).
    points = [ConnectionPoint(ip_address(a), 854, False) for a, _ in got]
    order = [str(p.address) for p in _interleave(points)]
    assert order == ["127.0.0.1", "::1", "192.0.2.7", "fe80::1"]
