"""Faults: processes that die or freeze, and peers that send garbage.

The modem (or router) under fault runs as a real ``dlep-modem`` /
``dlep-router`` subprocess, so SIGKILL and SIGSTOP hit a real process; its
counterpart runs in-process so the test can follow its events.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from dlep.config import RouterConfig
from dlep.daemon import ConnectionRefused, ModemDaemon, SessionConnected
from dlep.fsm import (
    DestinationUp,
    DestinationUpdate,
    DestKey,
    Metrics,
    SessionTerminated,
    SessionUp,
)
from dlep.transport import set_ttl_255
from dlep.wire import (
    HeartbeatInterval,
    MacAddress,
    Message,
    MessageFramer,
    MessageType,
    PeerType,
    Status,
    StatusCode,
    decode_message,
    encode_message,
    parse_mac,
)

from .conftest import (
    MAC1,
    MAC2,
    MAC3,
    V4,
    V6,
    Daemons,
    Events,
    Procs,
    modem_config,
    modem_data,
    need_host,
    router_config,
    router_data,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

MT = MessageType
HB_MS = 1000  # the subprocess modem's heartbeat, as a real deployment would use
HB = HB_MS / 1000.0


def slow_router(port: int) -> RouterConfig:
    """In-process router, heartbeat 1000 ms, allowed 2 missed peer heartbeats."""
    return router_config(port, hb_ms=HB_MS, timers={"missed_heartbeats": 2})


# --------------------------------------------------------------------------
# The modem process dies or freezes
# --------------------------------------------------------------------------


async def test_modem_killed_then_replaced(daemons: Daemons, procs: Procs, port: int) -> None:
    modem = procs.start("modem", modem_data(port, hb_ms=HB_MS), name="modem1")
    router = await daemons.router(slow_router(port))  # retries until the modem listens
    rev = Events(router.subscribe(), "router")
    await rev.next(SessionUp, timeout=20, alive=modem)
    for _ in range(2):
        await rev.next(DestinationUp)
    assert len(router.destinations()) == 2

    t0 = time.monotonic()
    modem.signal(signal.SIGKILL)
    term = await rev.next(SessionTerminated, timeout=2 * HB + 1.0)
    assert time.monotonic() - t0 <= 2 * HB + 1.0
    assert term.by_peer
    assert set(term.destinations) == {DestKey(parse_mac(MAC1)), DestKey(parse_mac(MAC2))}
    assert router.destinations() == []
    assert [s for s in router.sessions() if s.state == "in-session"] == []
    assert await modem.wait_exit() == -signal.SIGKILL

    # A new modem on the same port: the static peer is re-established.
    data = modem_data(port, hb_ms=HB_MS, destinations=[{"mac": MAC3, "ipv4": ["10.0.0.13"]}])
    modem2 = procs.start("modem", data, name="modem2")
    await rev.next(SessionUp, timeout=20, alive=modem2)
    up = await rev.next(DestinationUp)
    assert up.info.mac_str == MAC3
    assert {str(a) for a in up.info.ipv4} == {"10.0.0.13"}
    assert [i.mac_str for _, i in router.destinations()] == [MAC3]


async def test_modem_frozen_heartbeat_timeout(daemons: Daemons, procs: Procs, port: int) -> None:
    """SIGSTOP keeps the TCP connection open: only the heartbeat timer can
    notice. After 2 of the modem's intervals of silence the router sends
    Session Termination 'Timed Out' (132) and resets the session at once:
    the destinations go then, not after another 4 intervals of waiting for a
    response from a modem already known to be unresponsive (issue 14)."""
    modem = procs.start("modem", modem_data(port, hb_ms=HB_MS), name="modem")
    router = await daemons.router(slow_router(port))
    rev = Events(router.subscribe(), "router")
    await rev.next(SessionUp, timeout=20, alive=modem)
    for _ in range(2):
        await rev.next(DestinationUp)

    t0 = time.monotonic()
    modem.signal(signal.SIGSTOP)

    term = await rev.next(SessionTerminated, timeout=2 * HB + 1.5)
    elapsed = time.monotonic() - t0
    assert HB * 0.9 <= elapsed <= 2 * HB + 1.5, elapsed
    assert term.status == StatusCode.TIMED_OUT
    assert not term.by_peer
    assert "2 heartbeat intervals" in term.reason
    assert set(term.destinations) == {DestKey(parse_mac(MAC1)), DestKey(parse_mac(MAC2))}
    assert router.destinations() == []
    await wait_until(lambda: router.sessions() == [], 2, "router session freed")
    assert router.sessions_ended.get("TIMED_OUT") == 1
    assert router.heartbeat_timeouts["local"] == 1

    modem.signal(signal.SIGKILL)
    assert await modem.wait_exit() == -signal.SIGKILL


# --------------------------------------------------------------------------
# The router process dies
# --------------------------------------------------------------------------


async def test_router_killed_modem_accepts_next(daemons: Daemons, procs: Procs, port: int) -> None:
    """max_sessions = 1: a second router only gets in once the modem has freed
    the session of the killed one."""
    modem = await daemons.modem(modem_config(port, hb_ms=HB_MS))
    mev = Events(modem.subscribe(), "modem")
    router1 = procs.start("router", router_data(port, hb_ms=HB_MS), name="router1")
    await mev.next(SessionUp, timeout=20, alive=router1)
    await router1.wait_log("destination 02:00:00:00:00:02 up")

    router2 = await daemons.router(router_config(port))
    r2ev = Events(router2.subscribe(), "router2")
    refused = await mev.next(ConnectionRefused, alive=router1)
    assert "max_sessions" in refused.reason
    assert [s.state for s in router2.sessions() if s.state == "in-session"] == []

    router1.signal(signal.SIGKILL)
    term = await mev.next(SessionTerminated, timeout=2 * HB + 1.0)
    assert term.by_peer and term.status is None
    await r2ev.next(SessionUp, timeout=5)
    for _ in range(2):
        await r2ev.next(DestinationUp)
    (ms,) = modem.sessions()
    assert ms.state == "in-session"
    (rs,) = [s for s in router2.sessions() if s.state == "in-session"]
    assert rs.destinations == 2
    assert await router1.wait_exit() == -signal.SIGKILL


# --------------------------------------------------------------------------
# Garbage on the stream (raw TCP client against an in-process modem)
# --------------------------------------------------------------------------


class Raw:
    """A hand-driven TCP client speaking bytes to the modem (TTL 255)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = MessageFramer()
        self.pending: list[bytes] = []

    def send(self, data: bytes | Message) -> None:
        self.writer.write(encode_message(data) if isinstance(data, Message) else data)

    async def recv(self, timeout: float = 5.0) -> Message:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("connection closed")
            self.pending.extend(self.framer.feed(data))
        return decode_message(self.pending.pop(0))

    async def recv_until(self, mtype: int, timeout: float = 5.0) -> Message:
        """Next message of ``mtype``, skipping heartbeats and the like."""
        for _ in range(50):  # bounded
            msg = await self.recv(timeout)
            if msg.type == mtype:
                return msg
        raise AssertionError(f"no {mtype} in 50 messages")

    async def closed(self, timeout: float = 5.0) -> bytes:
        """Read until EOF; return whatever arrived before it."""
        got = b""
        for _ in range(100):  # bounded
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return got
            got += data
        raise AssertionError("peer kept sending")

    async def init(self) -> Message:
        """Session Initialization -> the modem's Session Initialization Response."""
        self.send(
            Message(
                MT.SESSION_INITIALIZATION, (HeartbeatInterval(HB_MS), PeerType("raw test client"))
            )
        )
        resp = await self.recv_until(MT.SESSION_INITIALIZATION_RESPONSE)
        st = resp.get(Status)
        assert st is not None and st.code == StatusCode.SUCCESS
        return resp


@asynccontextmanager
async def raw_client(
    host: str, port: int, *, ttl255: bool = True, connect_timeout: float = 2.0
) -> AsyncIterator[Raw]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    if ttl255:
        set_ttl_255(sock, enforce=False)  # the modem enforces GTSM (RFC 8175 §12.1)
    try:
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), connect_timeout)
        reader, writer = await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        yield Raw(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 2)


def unknown_message() -> bytes:
    return struct.pack("!HH", 200, 0)  # message type 200: not in RFC 8175


def malformed_item() -> bytes:
    # A Destination Update whose MAC Address item is 3 octets long.
    body = struct.pack("!HH", 7, 3) + b"\x02\x00\x00"
    return struct.pack("!HH", MT.DESTINATION_UPDATE, len(body)) + body


@dataclass
class Busy:
    modem: ModemDaemon
    mev: Events
    still_fine: Callable[[], Awaitable[None]]


@pytest.fixture
async def busy_modem(daemons: Daemons, port: int) -> AsyncIterator[Busy]:
    """A modem (max_sessions = 2) with one healthy router session up, and a
    check that this session is unharmed (same id, still updated)."""
    modem = await daemons.modem(modem_config(port, modem={"max_sessions": 2}))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port))
    rev = Events(router.subscribe(), "router")
    await rev.next(SessionUp)
    for _ in range(2):
        await rev.next(DestinationUp)
    await mev.next(SessionUp)
    (healthy,) = router.sessions()
    cdrr = [1_000_000]

    async def still_fine() -> None:
        cdrr[0] += 1000
        await modem.update_destination(MAC1, Metrics(cdrr=cdrr[0]))
        upd = await rev.next(DestinationUpdate)
        assert upd.info.metrics.cdrr == cdrr[0]
        (now,) = router.sessions()
        assert (now.id, now.state) == (healthy.id, "in-session")

    yield Busy(modem, mev, still_fine)


@pytest.mark.parametrize(
    ("payload", "status"),
    [(unknown_message(), StatusCode.UNKNOWN_MESSAGE), (malformed_item(), StatusCode.INVALID_DATA)],
    ids=["unknown-message-128", "malformed-item-130"],
)
async def test_garbage_in_session_gets_termination(
    busy_modem: Busy,
    port: int,
    payload: bytes,
    status: int,
) -> None:
    modem, mev, still_fine = busy_modem.modem, busy_modem.mev, busy_modem.still_fine
    async with raw_client(V4, port) as raw:
        await raw.init()
        await mev.next(SessionUp)
        raw.send(payload)
        term = await raw.recv_until(MT.SESSION_TERMINATION)
        st = term.get(Status)
        assert st is not None and st.code == status, term
        raw.send(Message(MT.SESSION_TERMINATION_RESPONSE))
        await raw.closed()
    ev = await mev.next(SessionTerminated)
    # We sent the Session Termination (the peer's fault, named in the reason).
    assert ev.status == status and not ev.by_peer
    await wait_until(lambda: len(modem.sessions()) == 1, 5, "raw session freed")
    await still_fine()


async def test_truncated_message_then_close(busy_modem: Busy, port: int) -> None:
    modem, mev, still_fine = busy_modem.modem, busy_modem.mev, busy_modem.still_fine
    async with raw_client(V4, port) as raw:
        await raw.init()
        await mev.next(SessionUp)
        whole = encode_message(Message(MT.DESTINATION_UPDATE, (MacAddress.parse(MAC1),)))
        raw.send(whole[:-3])  # header promises more than ever comes
        await raw.writer.drain()
        await asyncio.sleep(0.1)
        assert len(modem.sessions()) == 2
    ev = await mev.next(SessionTerminated)
    assert ev.status is None and ev.by_peer
    await wait_until(lambda: len(modem.sessions()) == 1, 5, "raw session freed")
    await still_fine()


@pytest.mark.parametrize("host", [V4, V6], ids=["ipv4", "ipv6"])
async def test_garbage_first_gets_nothing_back(daemons: Daemons, port: int, host: str) -> None:
    """RFC 8175 §7.2: a modem receiving anything but Session Initialization
    first sends nothing and closes."""
    need_host(host)
    modem = await daemons.modem(modem_config(port, host, timers={"init_timeout_ms": 300}))
    mev = Events(modem.subscribe(), "modem")
    cases = [
        (unknown_message(), StatusCode.UNKNOWN_MESSAGE),
        (malformed_item(), StatusCode.INVALID_DATA),
        (encode_message(Message(MT.HEARTBEAT)), StatusCode.UNEXPECTED_MESSAGE),
        # Not DLEP at all; its "header" announces a long message that never
        # completes, so the initialisation timeout ends it.
        (b"GET / HTTP/1.0\r\n\r\n", StatusCode.TIMED_OUT),
    ]
    for junk, status in cases:
        async with raw_client(host, port) as raw:
            await mev.next(SessionConnected)
            raw.send(junk)
            assert await raw.closed() == b""
        ev = await mev.next(SessionTerminated)
        assert ev.status == status, ev
        assert not ev.destinations
    await wait_until(lambda: modem.sessions() == [], 5, "modem sessions freed")


async def test_silent_client_times_out_initialisation(daemons: Daemons, port: int) -> None:
    """A client that connects and says nothing is dropped after init_timeout_ms,
    silently (no session exists yet), and frees its max_sessions slot."""
    modem = await daemons.modem(modem_config(port, timers={"init_timeout_ms": 300}))
    mev = Events(modem.subscribe(), "modem")
    async with raw_client(V4, port) as raw:
        t0 = time.monotonic()
        assert await raw.closed(timeout=5) == b""
        assert 0.2 <= time.monotonic() - t0 <= 3.0
    ev = await mev.next(SessionTerminated)
    assert ev.status == StatusCode.TIMED_OUT
    # The slot is free again: a real router gets in.
    router = await daemons.router(router_config(port))
    await Events(router.subscribe()).next(SessionUp)


async def test_gtsm_drops_low_ttl_connections(daemons: Daemons, port: int) -> None:
    """With gtsm_enforce (the default) the kernel drops segments whose TTL is
    below 255 (RFC 5082): a client with the default TTL cannot even connect."""
    await daemons.modem(modem_config(port))
    with pytest.raises((TimeoutError, OSError)):
        async with raw_client(V4, port, ttl255=False, connect_timeout=1.0):
            pass
    async with raw_client(V4, port) as raw:  # TTL 255: welcome
        await raw.init()
