"""Operations issue, item 4: logs for people and for machines.

No Python reprs at info; metric updates at debug, state changes at info;
JSON lines carry fields (session, peer, mac, status, metrics); at debug
every message sent and received is one decoded line; off, the trace costs
nothing (the engine's hook is unset).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dlep.cli.logs import JsonFormatter
from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.fsm import Metrics
from dlep.wire import Ipv4ConnectionPoint, PeerType, Signal, SignalType, encode_signal

from .conftest import (
    DESTINATIONS,
    MAC1,
    MAC2,
    SESSION_METRICS,
    V4,
    free_port,
    router_config,
    timers,
    until,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[ModemDaemon, RouterDaemon]]:
    port = free_port()
    mcfg = parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": port},
            "timers": timers(),
            "modem": {
                "session_metrics": dict(SESSION_METRICS),
                "destinations": DESTINATIONS,
                "simulate": {"enabled": True, "interval_ms": 50, "seed": 3},
            },
        }
    )
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(router_config(port)).spawn()
    try:
        yield modem, router
    finally:
        await router.shutdown()
        await modem.shutdown()


def _dlep(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("dlep.")]


async def _run(modem: ModemDaemon, router: RouterDaemon) -> None:
    await until(lambda: len(router.destinations()) == 2, what="destinations at the router")
    await asyncio.sleep(0.3)  # a few simulator ticks: Destination Updates
    await router.announce_destination("02:00:00:00:00:44")  # refused by the modem
    await asyncio.sleep(0.1)


async def test_info_has_state_changes_with_fields_and_no_reprs(
    pair: tuple[ModemDaemon, RouterDaemon], caplog: pytest.LogCaptureFixture
) -> None:
    modem, router = pair
    caplog.set_level(logging.INFO, logger="dlep")
    await _run(modem, router)
    records = _dlep(caplog)
    for r in records:
        text = r.getMessage()
        assert "b'" not in text and "Requested(" not in text and "=<" not in text, text
        assert r.levelno >= logging.INFO
    events = {getattr(r, "event", None) for r in records}
    assert {"SessionUp", "DestinationUp", "DestinationAnnounceRequested"} <= events
    assert "DestinationUpdate" not in events  # metric updates: debug only
    up = next(
        r
        for r in records
        if getattr(r, "event", None) == "DestinationUp" and r.name == "dlep.router"
    )
    assert up.session == "1" and up.peer.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    assert up.mac in (MAC1, MAC2)  # type: ignore[attr-defined]
    assert up.metrics["mdrr"] in (54_000_000, 11_000_000)  # type: ignore[attr-defined]
    refused = next(r for r in records if getattr(r, "event", None) == "DestinationRefused")
    assert refused.status == "REQUEST_DENIED"  # type: ignore[attr-defined]
    # Off at info: the engines' trace hook is unset (no cost per message).
    for daemon in (modem, router):
        for conn in daemon._conns.values():
            assert conn.proto.session.trace is None


async def test_debug_traces_every_message(
    pair: tuple[ModemDaemon, RouterDaemon], caplog: pytest.LogCaptureFixture
) -> None:
    modem, router = pair
    caplog.set_level(logging.DEBUG, logger="dlep")
    await _run(modem, router)
    await modem.update_destination(MAC1, Metrics(cdrr=1_000_000))
    await asyncio.sleep(0.1)
    traced = [r for r in _dlep(caplog) if getattr(r, "direction", None)]
    seen = {(r.name, r.direction, r.message_type) for r in traced}  # type: ignore[attr-defined]
    for name, direction in (("dlep.router", "rx"), ("dlep.modem", "tx")):
        for mtype in (
            "SESSION_INITIALIZATION_RESPONSE",
            "DESTINATION_UP",
            "DESTINATION_UPDATE",
            "DESTINATION_ANNOUNCE_RESPONSE",
        ):
            assert (name, direction, mtype) in seen, (name, direction, mtype)
    for name, direction in (("dlep.router", "tx"), ("dlep.modem", "rx")):
        for mtype in ("SESSION_INITIALIZATION", "DESTINATION_UP_RESPONSE", "HEARTBEAT"):
            assert (name, direction, mtype) in seen, (name, direction, mtype)
    # One decoded line each: units, MACs in colon notation, no reprs.
    line = next(
        r.getMessage()
        for r in traced
        if r.name == "dlep.router"
        and "rx DESTINATION_UPDATE mac=02:00:00:00:00:01 cdrr=1 Mb/s" in r.getMessage()
    )
    assert "b'" not in line and "(" not in line.split(")", 1)[1]
    # Every message the router read has its line (the session counts them).
    (info,) = router.sessions()
    rx_lines = sum(1 for r in traced if r.name == "dlep.router" and r.direction == "rx")  # type: ignore[attr-defined]
    assert rx_lines == sum(info.rx.values())
    # The metric updates are at debug now.
    assert any(
        getattr(r, "event", None) == "DestinationUpdate" and r.levelno == logging.DEBUG
        for r in _dlep(caplog)
    )


def test_json_lines_carry_the_fields() -> None:
    rec = logging.LogRecord("dlep.router", logging.INFO, __file__, 1, "session %s up", ("1",), None)
    for k, v in {
        "session": "1",
        "peer": "127.0.0.1:854",
        "event": "DestinationUp",
        "mac": MAC1,
        "status": "SUCCESS",
        "metrics": {"cdrr": 36_000_000},
    }.items():
        setattr(rec, k, v)
    doc = json.loads(JsonFormatter().format(rec))
    assert doc["msg"] == "session 1 up" and doc["session"] == "1" and doc["mac"] == MAC1
    assert doc["metrics"] == {"cdrr": 36_000_000} and doc["status"] == "SUCCESS"
    plain = logging.LogRecord("dlep.router", logging.INFO, __file__, 1, "plain", (), None)
    assert "session" not in json.loads(JsonFormatter().format(plain))


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((V4, 0))
        return int(s.getsockname()[1])


def _udp_peer() -> socket.socket:
    """A plain UDP socket on loopback sending with TTL 255 (§12.1: else ignored)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
    s.bind((V4, 0))
    s.settimeout(5.0)
    return s


def _signal_lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and hasattr(r, "signal_type")]


async def test_debug_traces_discovery_signals_of_the_modem(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Peer Discovery received and the Peer Offer sent are traced like the
    session's messages (loopback only: unicast to 127.0.0.1)."""
    caplog.set_level(logging.DEBUG, logger="dlep")
    dport = _udp_port()
    cfg = parse_modem_config(
        {
            "network": {
                "listen_addresses": [V4],
                "tcp_port": free_port(),
                "interface": "lo",
                "discovery_port": dport,
                "discovery_v4": True,
                "discovery_v6": False,
            },
            "timers": timers(),
        }
    )
    modem = await ModemDaemon.builder().config(cfg).spawn()
    router = _udp_peer()
    try:
        router.sendto(
            encode_signal(Signal(SignalType.PEER_DISCOVERY, (PeerType("tracer"),))), (V4, dport)
        )
        offer = await asyncio.get_running_loop().run_in_executor(None, router.recv, 2048)
        assert offer.startswith(b"DLEP")
        await until(lambda: len(_signal_lines(caplog, "dlep.modem")) >= 2, what="trace lines")
    finally:
        router.close()
        await modem.shutdown()
    rx, tx = _signal_lines(caplog, "dlep.modem")[:2]
    assert rx.direction == "rx" and tx.direction == "tx"  # type: ignore[attr-defined]
    assert rx.signal_type == "PEER_DISCOVERY" and tx.signal_type == "PEER_OFFER"  # type: ignore[attr-defined]
    assert rx.levelno == tx.levelno == logging.DEBUG
    text = rx.getMessage()
    assert text.startswith(f"discovery ({V4}:") and " rx PEER_DISCOVERY " in text, text
    assert 'peer_type="tracer"' in text or "peer_type=tracer" in text, text
    assert text.endswith("(ttl 255)") and rx.ttl == 255, text  # type: ignore[attr-defined]
    assert " tx PEER_OFFER " in tx.getMessage() and "connection_point" in tx.getMessage()


async def test_debug_traces_discovery_signals_of_the_router(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The router's Peer Discovery sent (when the interface takes it) and a
    Peer Offer received are traced; at info nothing is decoded."""
    dport = _udp_port()

    def cfg() -> Any:
        return parse_router_config(
            {
                "network": {
                    "interface": "lo",
                    "discovery_port": dport,
                    "discovery_v4": True,
                    "discovery_v6": False,
                },
                "timers": {**timers(), "discovery_interval_ms": 200},
                "router": {"discovery": True, "static_peers": []},
            }
        )

    offer = encode_signal(
        Signal(
            SignalType.PEER_OFFER,
            (PeerType("tracer"), Ipv4ConnectionPoint(ipaddress.IPv4Address(V4), 1)),
        )
    )
    modem = _udp_peer()
    try:
        # At info: no discovery trace at all.
        caplog.set_level(logging.INFO, logger="dlep")
        router = await RouterDaemon.builder().config(cfg()).spawn()
        try:
            modem.sendto(offer, (V4, dport))
            await asyncio.sleep(0.3)
        finally:
            await router.shutdown()
        assert not _signal_lines(caplog, "dlep.router")
        caplog.set_level(logging.DEBUG, logger="dlep")
        router = await RouterDaemon.builder().config(cfg()).spawn()
        try:
            modem.sendto(offer, (V4, dport))
            await until(
                lambda: any(
                    r.direction == "rx"  # type: ignore[attr-defined]
                    for r in _signal_lines(caplog, "dlep.router")
                ),
                what="the Peer Offer's trace line",
            )
        finally:
            await router.shutdown()
    finally:
        modem.close()
    lines = _signal_lines(caplog, "dlep.router")
    rx = next(r for r in lines if r.direction == "rx")  # type: ignore[attr-defined]
    assert rx.signal_type == "PEER_OFFER" and rx.ttl == 255  # type: ignore[attr-defined]
    assert "rx PEER_OFFER " in rx.getMessage() and f"{V4}:1" in rx.getMessage()
    sent_ok = not any("not sent" in r.getMessage() for r in caplog.records)
    tx = [r for r in lines if r.direction == "tx"]  # type: ignore[attr-defined]
    if sent_ok:  # lo takes multicast on most hosts; where it does not, nothing is sent
        assert tx and all("tx PEER_DISCOVERY" in r.getMessage() for r in tx)
        assert tx[0].getMessage().startswith("discovery (224.0.0.117:")
