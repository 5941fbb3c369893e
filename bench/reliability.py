"""Reliability suite (issue 14): hostile peers, floods and kill -9 against the
real daemons, with a well-behaved session measured meanwhile.

Run: ``.venv/bin/python bench/reliability.py`` (a few minutes; ``make
reliability``), ``--quick`` (under a minute; what
``tests/integration/test_reliability.py`` runs), ``--json FILE`` to keep
every figure. Prints a table with PASS/FAIL per target of the issue; the
exit status is 0 whatever the figures (``--strict``: 1 if a target fails).

What runs. ``dlep-modem`` and ``dlep-router`` as subprocesses (``python -m
dlep.cli.modem`` / ``dlep.cli.router``, the console entry points), with
configurations written to a temporary directory: loopback only (127.0.0.x,
free high ports), plain TCP, ``network.gtsm_enforce = false`` (the hostile
clients need not set TTL 255), heartbeats of 1 s (the RFC's minimum; a
session silent for 4 of them ends), fast reconnects (50-100 ms, so that a
restarted peer is back at once), the management API on a Unix socket
in the temporary directory and the Prometheus endpoint on 127.0.0.1. The
router's static peer is the modem: that session is the *well-behaved* one.

Each attack gets a fresh modem and router. While it runs, a probe:

* asks the router's API for a Link Characteristics Request on the
  well-behaved session every 20 ms (``RequestLinkCharacteristics`` with
  ``wait_ms``): the round trip API -> router -> modem -> router -> API, i.e.
  both daemons' event loops, plus about a millisecond of gRPC (measured
  idle before each attack, printed as ``idle p50``);
* lists the router's sessions every 250 ms: the well-behaved session must
  keep its id and stay in session (``lost`` counts the times it did not);
* samples both daemons' VmRSS (``/proc/PID/status``) every 50 ms.

After the attack: both processes must still run, their logs must hold no
``Traceback``, and the well-behaved session must be the same one.

The attacks (numbers: the items of issue 14):

* ``fuzz-modem``: hostile routers connect to the modem (each from its own
  127.0.0.x, a few at a time) and send random, mutated (bit flips of valid
  messages), truncated and oversized messages, at initialisation and in
  session. Every session must end with the RFC's reaction: a Session
  Termination with a status (answered with a Session Termination
  Response), or the connection closed (garbage before initialisation,
  RFC 8175 §7.2; a message cut short, then our close).
* ``fuzz-router``: the router accepts nothing inbound, so the hostile side is
  a set of fake modems the router has as static peers: each connection
  gets a valid or a hostile Session Initialization Response, then hostile
  messages; the router reconnects after each end.
* ``discovery`` (11): valid, mutated, random, truncated and oversized Peer
  Discovery datagrams at full speed to the modem's discovery port
  (unicast to 127.0.0.1; the modem listens on ``lo``).
* ``churn`` (2): clients reopening every closed connection to the modem's
  TCP port (``tests/integration/test_bounds.py``'s churner, from the
  router's own address); a second router started during the churn must
  get its session (``late router``).
* ``busy-modem`` (3): a hostile router floods the modem with Destination
  Announces (each one answered) and Heartbeats and never reads the answers
  (receive buffer of 4 KiB).
* ``busy-router`` (3): a fake modem sends the router a burst of 100,000
  Destination Ups and never reads the Destination Up Responses.
* ``tables`` (9): a second modem (added to the router with
  ``ConnectStatic``) gets 100,000 destinations through its API
  (``FeedDestinations``) and brings them up at the router over its own
  session; then ``ListDestinations`` of every page on the router's and the
  second modem's APIs in a loop. The probed session is the other one.
* ``watch`` (10): 32 ``WatchEvents`` streams on each daemon's API that are
  never read, while destinations are added through the modem's API.
* ``kill-modem`` / ``kill-router``: 200 cycles of kill -9 of one peer and its
  restart, the other (the survivor, a real daemon) keeping on; a cycle
  counts as re-established when the survivor's API lists a *new* session
  in session within 10 s. The survivor's open fds (``/proc/PID/fd``) and
  asyncio tasks (the ``dlep_asyncio_tasks`` gauge of its Prometheus
  endpoint) are taken after the first session and after the last one.
  The restarted peer comes from a fork server (a process that imports
  dlep once and forks a child per cycle that runs the daemon's ``main``,
  API off): a fresh interpreter per cycle would spend most of the run
  importing.

Targets (issue 14): at least 100,000 hostile inputs per daemon per run
(TCP fuzz, plus the malformed discovery datagrams for the modem); 0
crashes; 0 tracebacks; the well-behaved session never lost; its LCR round
trip p99 under 50 ms during every attack; peak RSS under 2x idle; 100 %
of kill cycles re-established; no fd or task growth in the survivor.

Caveats. The figures are one run on whatever machine runs it: the
daemons, the hostile clients and the probe share the CPUs, and the
harness (one Python process) is often the limit of the input rate. The
RSS target is the issue's; in ``tables`` the router holds 100,000 more
destinations by design (within the 2x target), and the second modem's own
table is stated, not judged. Everything sends to
loopback only, every loop is bounded in count and time, and every process
started here is killed on any exit (and dies with its parent:
``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The harness starts processes (preexec_fn: fork) after it has loaded gRPC;
# gRPC's fork handlers would only warn that they are skipped. The daemons
# are started without this variable (their environment is the caller's).
_CALLER_ENV = dict(os.environ)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.integration's helpers (configurations, churner)

from dlep.wire import (  # noqa: E402
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    HeartbeatInterval,
    Ipv4Address,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    Message,
    MessageFramer,
    MessageType,
    PeerType,
    Signal,
    SignalType,
    Status,
    StatusCode,
    decode_message,
    encode_message,
    encode_signal,
    status_name,
)

MT = MessageType
V4 = "127.0.0.1"
MAC1 = "02:00:00:00:00:01"
HB_MS = 1000  # the RFC minimum (with 4 missed: a session stalled 4 s ends)

# -- targets (issue 14) --------------------------------------------------------------
TARGET_INPUTS = 100_000
TARGET_P99_MS = 50.0
TARGET_RSS_RATIO = 2.0
TARGET_CYCLES = 200

PROBE_EVERY = 0.02  # s between two LCRs of the well-behaved session
LCR_WAIT_MS = 2000  # an LCR not answered within this counts as a miss (and as 2000 ms)
SESSION_EVERY = 0.25
RSS_EVERY = 0.05
CYCLE_BOUND = 10.0  # s for a killed peer's session to be re-established


@dataclass
class Plan:
    """How much of each attack (full run or --quick)."""

    fuzz_inputs: int
    fuzz_seconds: float
    discovery: int
    churn_seconds: float
    busy_seconds: float
    burst: int
    table: int
    watch_streams: int
    watch_adds: int
    cycles: int


FULL = Plan(
    fuzz_inputs=100_000,
    fuzz_seconds=75.0,
    discovery=100_000,
    churn_seconds=10.0,
    busy_seconds=10.0,
    burst=100_000,
    table=100_000,
    watch_streams=32,
    watch_adds=20_000,
    cycles=TARGET_CYCLES,
)
QUICK = Plan(
    fuzz_inputs=3_000,
    fuzz_seconds=12.0,
    discovery=3_000,
    churn_seconds=2.0,
    busy_seconds=2.0,
    burst=5_000,
    table=5_000,
    watch_streams=8,
    watch_adds=1_000,
    cycles=10,
)


# ------------------------------------------------------------------------------------
# Processes: every one we start dies with us
# ------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_libc: Any = None


def die_with_parent() -> None:
    """In a child: SIGKILL when the parent goes, however it goes."""
    global _libc
    with contextlib.suppress(Exception):
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_ALL: list[subprocess.Popen[bytes]] = []


def kill_all() -> None:
    """Kill every process this harness started (idempotent)."""
    for p in _ALL:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGCONT)
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid`` (-1 if gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def scrape(url: str, name: str) -> float | None:
    """One sample (no labels) of ``name`` from a Prometheus endpoint."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


class Daemon:
    """``dlep-<role>`` as a subprocess: config in ``tmp``, log in a file."""

    def __init__(self, tmp: Path, name: str, role: str, data: dict[str, Any]) -> None:
        from tests.integration.conftest import free_port, write_toml

        self.name = name
        self.role = role
        self.sock = tmp / f"{name}.sock"
        self.metrics_port = free_port()
        data = dict(data)
        data["api"] = {"socket": str(self.sock)}
        data["metrics"] = {"listen": f"{V4}:{self.metrics_port}"}
        self.cfg = write_toml(tmp / f"{name}.toml", data)
        self.log_path = tmp / f"{name}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child holds it
        self.popen = subprocess.Popen(
            [sys.executable, "-m", f"dlep.cli.{role}", "--config", str(self.cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(_CALLER_ENV, PYTHONUNBUFFERED="1"),
            cwd=str(REPO),
            preexec_fn=die_with_parent,
        )
        log.close()
        _ALL.append(self.popen)
        self.pid = self.popen.pid
        self._api: Any = None

    @property
    def metrics_url(self) -> str:
        return f"http://{V4}:{self.metrics_port}/metrics"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tracebacks(self) -> int:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return text.count("Traceback")

    def api(self) -> Any:
        from dlep.api.client import ManagementClient

        if self._api is None:
            self._api = ManagementClient.unix(self.sock, timeout=15.0)
        return self._api

    async def wait_api(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            if self.sock.exists():
                try:
                    await self.api().get_info()
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: API not up in {timeout} s")
            await asyncio.sleep(0.05)

    async def tasks(self) -> int:
        v = await asyncio.to_thread(scrape, self.metrics_url, "dlep_asyncio_tasks")
        return -1 if v is None else int(v)

    def log_tail(self, n: int = 30) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])

    async def stop(self) -> None:
        if self._api is not None:
            with contextlib.suppress(Exception):
                await self._api.close()
            self._api = None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            for _ in range(100):  # 5 s for a graceful shutdown
                if self.popen.poll() is not None:
                    break
                await asyncio.sleep(0.05)
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)


# ------------------------------------------------------------------------------------
# Configurations (tests/integration/conftest.py's, plus what the suite needs)
# ------------------------------------------------------------------------------------


def _timers() -> dict[str, Any]:
    return {
        "reconnect_interval_ms": 50,
        "reconnect_max_interval_ms": 100,
        "init_timeout_ms": 2000,
    }


def modem_cfg(port: int, **extra: Any) -> dict[str, Any]:
    from tests.integration.conftest import _merge, modem_data

    base = modem_data(port, V4, hb_ms=HB_MS)
    base = _merge(
        base,
        {
            "network": {"gtsm_enforce": False},
            "timers": _timers(),
            # Room for the fuzzers' 24 sessions besides the well-behaved one.
            "modem": {"max_sessions": 32, "pending_timeout_ms": 2000},
        },
    )
    return _merge(base, extra)


def router_cfg(port: int, extra_peers: list[int] = (), **extra: Any) -> dict[str, Any]:  # type: ignore[assignment]
    from tests.integration.conftest import _merge, router_data

    base = router_data(port, V4, hb_ms=HB_MS)
    base = _merge(base, {"network": {"gtsm_enforce": False}, "timers": _timers()})
    for p in extra_peers:
        base["router"]["static_peers"].append({"address": V4, "port": p})
    return _merge(base, extra)


# ------------------------------------------------------------------------------------
# Hostile inputs
# ------------------------------------------------------------------------------------


def _mac(rng: random.Random) -> MacAddress:
    return MacAddress(
        bytes([2, 0, 0xAA, rng.randrange(256), rng.randrange(256), rng.randrange(256)])
    )


def _metrics() -> tuple[Any, ...]:
    return (
        MaximumDataRateReceive(100_000_000),
        MaximumDataRateTransmit(100_000_000),
        CurrentDataRateReceive(50_000_000),
        CurrentDataRateTransmit(50_000_000),
        Latency(1000),
    )


def router_messages(rng: random.Random) -> list[bytes]:
    """Valid messages a router may send in session (mutation seeds)."""
    import ipaddress

    out = []
    for m in (
        Message(MT.HEARTBEAT),
        Message(MT.DESTINATION_ANNOUNCE, (_mac(rng),)),
        Message(
            MT.DESTINATION_ANNOUNCE, (_mac(rng), Ipv4Address(ipaddress.IPv4Address("10.1.2.3")))
        ),
        Message(
            MT.LINK_CHARACTERISTICS_REQUEST, (MacAddress.parse(MAC1), CurrentDataRateReceive(10**6))
        ),
        Message(MT.LINK_CHARACTERISTICS_REQUEST, (_mac(rng), Latency(500))),
        Message(MT.DESTINATION_UP_RESPONSE, (_mac(rng), Status(StatusCode.SUCCESS))),
        Message(MT.DESTINATION_DOWN, (_mac(rng),)),
        Message(MT.DESTINATION_DOWN_RESPONSE, (_mac(rng), Status(StatusCode.SUCCESS))),
        Message(MT.SESSION_UPDATE_RESPONSE, (Status(StatusCode.SUCCESS),)),
    ):
        with contextlib.suppress(Exception):  # a rule of the codec: not a seed then
            out.append(encode_message(m))
    return out


def modem_messages(rng: random.Random) -> list[bytes]:
    """Valid messages a modem may send in session (mutation seeds)."""
    import ipaddress

    out = []
    for m in (
        Message(MT.HEARTBEAT),
        Message(MT.DESTINATION_UP, (_mac(rng), *_metrics())),
        Message(
            MT.DESTINATION_UP,
            (_mac(rng), Ipv4Address(ipaddress.IPv4Address("10.9.8.7")), CurrentDataRateReceive(5)),
        ),
        Message(MT.DESTINATION_UPDATE, (_mac(rng), CurrentDataRateReceive(12345))),
        Message(MT.DESTINATION_DOWN, (_mac(rng),)),
        Message(MT.SESSION_UPDATE, (CurrentDataRateReceive(777), Latency(2000))),
        Message(MT.DESTINATION_ANNOUNCE_RESPONSE, (_mac(rng), Status(StatusCode.SUCCESS))),
        Message(MT.LINK_CHARACTERISTICS_RESPONSE, (_mac(rng), *_metrics())),
    ):
        with contextlib.suppress(Exception):
            out.append(encode_message(m))
    return out


def session_init() -> bytes:
    return encode_message(
        Message(MT.SESSION_INITIALIZATION, (HeartbeatInterval(1000), PeerType("hostile router")))
    )


def session_init_response() -> bytes:
    return encode_message(
        Message(
            MT.SESSION_INITIALIZATION_RESPONSE,
            (
                Status(StatusCode.SUCCESS),
                HeartbeatInterval(1000),
                PeerType("hostile modem"),
                *_metrics(),
            ),
        )
    )


def flip(rng: random.Random, data: bytes, nbits: int) -> bytes:
    b = bytearray(data)
    for _ in range(nbits):
        i = rng.randrange(len(b) * 8)
        b[i >> 3] ^= 1 << (i & 7)
    return bytes(b)


def hostile(rng: random.Random, seeds: list[bytes]) -> tuple[str, bytes]:
    """One hostile input: (kind, bytes). Truncated ones are left to
    :func:`session_plan` (they must come last: the daemon waits for the rest)."""
    r = rng.random()
    if r < 0.70:
        return "mutated", flip(rng, rng.choice(seeds), rng.choice((1, 1, 1, 2, 3)))
    if r < 0.85:
        n = rng.randrange(4, 64)
        if rng.random() < 0.5:  # a plausible header with a random body
            body = rng.randbytes(n)
            return "random", struct.pack("!HH", rng.randrange(1, 20), len(body)) + body
        return "random", rng.randbytes(n)
    # Oversized: the largest message the 16-bit length allows, or a header
    # promising it and a valid message type with far too many items.
    if rng.random() < 0.5:
        body = rng.randbytes(65535)
        return "oversized", struct.pack("!HH", rng.choice((7, 9, 13, 14, 200)), 65535) + body
    item = struct.pack("!HH", 8, 5) + bytes([1, 10, 0, 0, 1])  # IPv4 Address, 9 octets
    body = (struct.pack("!HH", 7, 6) + bytes(6)) + item * 7000
    body = body[:65535]
    return "oversized", struct.pack("!HH", rng.choice((7, 9, 13)), len(body)) + body


def session_plan(rng: random.Random, seeds: list[bytes], first: bytes) -> list[tuple[str, bytes]]:
    """What one hostile session sends: the initialisation message (valid in
    three of four sessions, hostile otherwise), then 1-24 hostile inputs, the
    last one possibly truncated."""
    plan: list[tuple[str, bytes]] = []
    if rng.random() < 0.25:
        plan.append(hostile(rng, [first]))
    else:
        plan.append(("init", first))
    for _ in range(rng.randrange(1, 25)):
        plan.append(hostile(rng, seeds))
    if rng.random() < 0.15:
        whole = rng.choice(seeds)
        plan.append(("truncated", whole[: rng.randrange(1, len(whole))]))
    return plan


@dataclass
class Tally:
    """Inputs sent and how the hostile sessions ended."""

    inputs: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    #: Tracebacks in the logs of daemons an attack starts itself.
    tracebacks: int = 0

    @property
    def total(self) -> int:
        return sum(v for k, v in self.inputs.items() if k != "init")


class Reader:
    """Reads a hostile connection until the daemon ends it: records the
    status of its Session Termination (answering it), or that it closed."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = MessageFramer()
        self.ending: str | None = None
        self.done = asyncio.Event()
        self.got_init_response = asyncio.Event()
        self.got_init = asyncio.Event()

    async def run(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.ending = self.ending or "closed"
                    return
                for raw in self.framer.feed(data):
                    try:
                        msg = decode_message(raw)
                    except Exception:
                        continue
                    if msg.type == MT.SESSION_INITIALIZATION_RESPONSE:
                        self.got_init_response.set()
                    elif msg.type == MT.SESSION_INITIALIZATION:
                        self.got_init.set()
                    elif msg.type == MT.SESSION_TERMINATION_RESPONSE:
                        self.done.set()  # to our own Session Termination
                    elif msg.type == MT.SESSION_TERMINATION and self.ending is None:
                        st = msg.get(Status)
                        self.ending = f"termination {status_name(st.code) if st else '?'}"
                        self.done.set()
                        with contextlib.suppress(Exception):
                            self.writer.write(
                                encode_message(Message(MT.SESSION_TERMINATION_RESPONSE))
                            )
        except (ConnectionError, OSError):
            self.ending = self.ending or "reset"
        finally:
            self.done.set()
            self.got_init.set()
            self.got_init_response.set()


async def drive(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    plan: list[tuple[str, bytes]],
    tally: Tally,
    *,
    wait_first: str | None,
) -> None:
    """Send ``plan`` on a connection, a few inputs at a time, until the
    daemon ends the session; then wait for its end (bounded)."""
    rd = Reader(reader, writer)
    task = asyncio.create_task(rd.run())
    at = "in session: " if plan and plan[0][0] == "init" else "hostile init: "
    try:
        if wait_first == "init":  # fake modem: the router speaks first
            try:
                await asyncio.wait_for(rd.got_init.wait(), 10.0)
            except TimeoutError:
                rd.ending = "no Session Initialization from the router in 10 s"
                raise
        for i, (kind, data) in enumerate(plan):
            if rd.done.is_set():
                break
            writer.write(data)
            tally.inputs[kind] += 1
            if kind == "init" and wait_first == "response":
                # a hostile router: let the modem answer before the rest
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rd.got_init_response.wait(), 2.0)
            elif i % 4 == 3:
                await writer.drain()
                await asyncio.sleep(0)
        eof = False
        if plan and plan[-1][0] == "truncated" and not rd.done.is_set():
            with contextlib.suppress(OSError):
                writer.write_eof()  # the rest never comes: the daemon sees the close
                eof = True
        await writer.drain()
        try:
            await asyncio.wait_for(rd.done.wait(), 0.3)
        except TimeoutError:
            # No reaction: every input was harmless enough to keep the
            # session, or the daemon waits for the rest of a message whose
            # length field grew (it would time out). End it ourselves.
            if at == "in session: " and not eof:
                writer.write(
                    encode_message(Message(MT.SESSION_TERMINATION, (Status(StatusCode.SUCCESS),)))
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rd.done.wait(), 1.0)
            rd.ending = "no reaction in 0.3 s (we ended it)"
    except ConnectionError:
        rd.ending = rd.ending or "reset"  # the daemon closed with unread input: RST
    except (OSError, TimeoutError, RuntimeError) as exc:
        rd.ending = rd.ending or f"error {type(exc).__name__}"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    tally.sessions += 1
    tally.endings[at + (rd.ending or "?")] += 1


async def fuzz_modem(port: int, plan: Plan, rng: random.Random, tally: Tally) -> None:
    """Hostile routers against the modem: 24 at a time, 3 per source address."""
    seeds = router_messages(rng)
    init = session_init()
    deadline = time.monotonic() + plan.fuzz_seconds

    async def client(i: int) -> None:
        src = f"127.0.0.{20 + i // 3}"
        while tally.total < plan.fuzz_inputs and time.monotonic() < deadline:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(V4, port, local_addr=(src, 0)), 3.0
                )
            except (OSError, TimeoutError) as exc:
                tally.errors[f"connect {type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)
                continue
            await drive(r, w, session_plan(rng, seeds, init), tally, wait_first="response")

    await asyncio.gather(*(client(i) for i in range(24)))


class FakeModems:
    """Listening sockets the router has as static peers; each connection is
    served by ``handler``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.servers: list[asyncio.AbstractServer] = []
        self.ports: list[int] = []
        self.handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> list[int]:
        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if self.handler is None:
                w.close()
                return
            t = asyncio.current_task()
            assert t is not None
            self.tasks.add(t)  # type: ignore[arg-type]
            try:
                await self.handler(r, w)
            except asyncio.CancelledError:
                w.close()  # close() of the fakes at the end of the attack
            finally:
                self.tasks.discard(t)  # type: ignore[arg-type]

        for _ in range(self.n):
            srv = await asyncio.start_server(serve, V4, 0)
            self.servers.append(srv)
            self.ports.append(srv.sockets[0].getsockname()[1])
        return self.ports

    async def close(self) -> None:
        self.handler = None
        for s in self.servers:
            s.close()
        for t in list(self.tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 5)


async def fuzz_router(fakes: FakeModems, plan: Plan, rng: random.Random, tally: Tally) -> None:
    """Hostile modems against the router, as long as the budget lasts."""
    seeds = modem_messages(rng)
    init = session_init_response()
    deadline = time.monotonic() + plan.fuzz_seconds
    finished = asyncio.Event()

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if tally.total >= plan.fuzz_inputs or time.monotonic() >= deadline:
            finished.set()
            w.close()
            return
        await drive(r, w, session_plan(rng, seeds, init), tally, wait_first="init")

    fakes.handler = handler
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), plan.fuzz_seconds + 5)
    fakes.handler = None


# -- discovery -----------------------------------------------------------------------


def discovery_inputs(rng: random.Random, n: int) -> Iterator[tuple[str, bytes]]:
    valid = encode_signal(Signal(SignalType.PEER_DISCOVERY, (PeerType("flood"),)))
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            yield "valid", valid
        elif r < 0.7:
            yield "mutated", flip(rng, valid, rng.choice((1, 2, 3)))
        elif r < 0.85:
            yield "random", rng.randbytes(rng.randrange(1, 64))
        elif r < 0.95:
            yield "truncated", valid[: rng.randrange(1, len(valid))]
        else:
            body = rng.randbytes(rng.randrange(1000, 65000))
            yield "oversized", valid[:4] + struct.pack("!HH", 1, len(body)) + body


async def discovery_flood(dport: int, plan: Plan, rng: random.Random, tally: Tally) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)  # §12.1: else ignored
    s.setblocking(False)
    s.bind((V4, 0))
    deadline = time.monotonic() + max(10.0, plan.fuzz_seconds / 2)
    try:
        for i, (kind, data) in enumerate(discovery_inputs(rng, plan.discovery)):
            if time.monotonic() > deadline:
                break
            for _ in range(50):  # bounded retries on a full socket buffer
                try:
                    s.sendto(data, (V4, dport))
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.001)
            else:
                tally.errors["send buffer full"] += 1
                continue
            tally.inputs[kind] += 1
            if i % 64 == 63:
                with contextlib.suppress(BlockingIOError, OSError):
                    while s.recv(65536):  # the Peer Offers (rate-limited)
                        tally.endings["peer offer"] += 1
                await asyncio.sleep(0)
    finally:
        s.close()


# -- busy peers ------------------------------------------------------------------------


async def busy_router(port: int, plan: Plan, rng: random.Random, tally: Tally) -> None:
    """A router that floods the modem with requests and never reads: it
    accepts the modem's Destination Ups first (so that its Link
    Characteristics Requests for MAC1 are valid), then only writes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    sock.bind(("127.0.0.9", 0))
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.sock_connect(sock, (V4, port)), 3.0)
    try:
        await loop.sock_sendall(sock, session_init())
        framer = MessageFramer()
        ups: list[bytes] = []
        deadline = time.monotonic() + 3.0
        while len(ups) < 2 and time.monotonic() < deadline:  # the 2 configured destinations
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(loop.sock_recv(sock, 65536), 0.5)
                if not data:
                    raise ConnectionError("modem closed the connection")
                for raw in framer.feed(data):
                    msg = decode_message(raw)
                    mac = msg.get(MacAddress)
                    if msg.type == MT.DESTINATION_UP and mac is not None:
                        ups.append(
                            encode_message(
                                Message(
                                    MT.DESTINATION_UP_RESPONSE,
                                    (mac, Status(StatusCode.SUCCESS)),
                                )
                            )
                        )
        await loop.sock_sendall(sock, b"".join(ups))
        # Destination Announces, each answered (Destination Announce Response,
        # "not reachable"), and Heartbeats. Not Link Characteristics
        # Requests: a second one for a destination whose first is unanswered
        # ends the session (RFC 8175 §8), and so would end the flood.
        hb = encode_message(Message(MT.HEARTBEAT))
        pool = [
            b"".join(
                encode_message(Message(MT.DESTINATION_ANNOUNCE, (_mac(rng),))) for _ in range(127)
            )
            + hb
            for _ in range(64)
        ]
        deadline = time.monotonic() + plan.busy_seconds
        for i in range(20_000):  # bounded: 2.56 M messages at most
            if time.monotonic() > deadline:
                break
            try:
                await asyncio.wait_for(loop.sock_sendall(sock, pool[i % len(pool)]), 0.5)
            except TimeoutError:
                tally.endings["blocked (modem stopped reading)"] += 1
                continue
            except OSError as exc:
                tally.endings[f"ended: {type(exc).__name__}"] += 1
                break
            tally.inputs["flood"] += 128
    finally:
        sock.close()
    tally.sessions += 1


async def burst_modem(fakes: FakeModems, plan: Plan, rng: random.Random, tally: Tally) -> None:
    """A fake modem: valid initialisation, then ``plan.burst`` Destination
    Ups at once, never reading the Destination Up Responses."""
    done = asyncio.Event()
    started = [False]

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if started[0]:
            w.close()
            return
        started[0] = True
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            await asyncio.wait_for(r.read(4096), 3.0)  # the Session Initialization
            w.write(session_init_response())
            m = _metrics()
            batch: list[bytes] = []
            for i in range(plan.burst):
                mac = MacAddress(bytes([2, 0xBB, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255]))
                batch.append(encode_message(Message(MT.DESTINATION_UP, (mac, *m))))
                if len(batch) == 1000:
                    w.write(b"".join(batch))
                    tally.inputs["destination up"] += len(batch)
                    batch = []
                    await asyncio.wait_for(w.drain(), plan.busy_seconds + 10)
            if batch:
                w.write(b"".join(batch))
                tally.inputs["destination up"] += len(batch)
            await asyncio.wait_for(w.drain(), plan.busy_seconds + 10)
            await asyncio.sleep(plan.busy_seconds)  # and still never reads
            tally.endings["burst sent"] += 1
        except (OSError, TimeoutError) as exc:
            tally.endings[f"ended: {type(exc).__name__}"] += 1
        finally:
            tally.sessions += 1
            w.close()
            done.set()

    fakes.handler = handler
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), plan.busy_seconds * 3 + 60)
    fakes.handler = None


# ------------------------------------------------------------------------------------
# The probe: the well-behaved session, measured
# ------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


@dataclass
class Probe:
    """LCR round trips, session continuity and RSS, while an attack runs."""

    router: Daemon
    modem: Daemon
    modem_port: int
    rtts: list[float] = field(default_factory=list)
    missed: int = 0
    api_errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    session_id: str = ""
    rss_peak: dict[str, int] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def session(self) -> str | None:
        want = f"{V4}:{self.modem_port}"
        for s in await self.router.api().list_sessions():
            if s.peer == want and s.state == "in-session":
                return str(s.id)
        return None

    async def wait_session(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for d in (self.router, self.modem):
                if not d.alive():
                    raise RuntimeError(f"{d.name} exited:\n{d.log_tail()}")
            sid = await self.session()
            if sid:
                self.session_id = sid
                return sid
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no session in {timeout} s\n{self.router.log_tail()}")

    async def lcr(self) -> float | None:
        t = time.monotonic()
        r = await self.router.api().request_link_characteristics(
            MAC1, latency=1000, session_id=self.session_id, wait_ms=LCR_WAIT_MS
        )
        dt = (time.monotonic() - t) * 1000
        return dt if r.answered else None

    async def _lcr_loop(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                dt = await self.lcr()
                if dt is None:
                    self.missed += 1
                    self.rtts.append(float(LCR_WAIT_MS))
                else:
                    self.rtts.append(dt)
            except Exception as exc:
                self.api_errors[type(exc).__name__] += 1
                self.rtts.append(float(LCR_WAIT_MS))
                await asyncio.sleep(0.2)
            await asyncio.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - t)))

    async def _session_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sid = await self.session()
                if sid != self.session_id:
                    self.lost += 1
                    if sid:
                        self.session_id = sid
            except Exception as exc:
                self.api_errors[f"ListSessions {type(exc).__name__}"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), SESSION_EVERY)

    async def _rss_loop(self) -> None:
        while not self._stop.is_set():
            for d in (self.modem, self.router):
                self.rss_peak[d.role] = max(self.rss_peak.get(d.role, 0), rss_kib(d.pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RSS_EVERY)

    def start(self) -> None:
        self._stop.clear()
        self.rtts, self.missed, self.lost, self.rss_peak = [], 0, 0, {}
        self.api_errors = Counter()
        self._tasks = [
            asyncio.create_task(self._lcr_loop()),
            asyncio.create_task(self._session_loop()),
            asyncio.create_task(self._rss_loop()),
        ]

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 10)
        for t in self._tasks:
            t.cancel()


# ------------------------------------------------------------------------------------
# One attack on a fresh pair
# ------------------------------------------------------------------------------------


@dataclass
class Ctx:
    tmp: Path
    plan: Plan
    rng: random.Random
    modem: Daemon
    router: Daemon
    modem_port: int
    dport: int
    fakes: FakeModems
    probe: Probe


@contextlib.asynccontextmanager
async def pair(
    tmp: Path, name: str, plan: Plan, rng: random.Random, nfakes: int = 0, **modem_extra: Any
) -> AsyncIterator[Ctx]:
    from tests.integration.conftest import free_port

    fakes = FakeModems(nfakes)
    ports = await fakes.start()
    # After the fakes have bound theirs: free_port() only finds a port free now.
    port = free_port()
    while port in ports:
        port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((V4, 0))
        dport = int(s.getsockname()[1])
    mdata = modem_cfg(
        port,
        network={
            "interface": "lo",
            "discovery_port": dport,
            "discovery_v4": True,
            "discovery_v6": False,
        },
        **modem_extra,
    )
    modem = Daemon(tmp, f"{name}-modem", "modem", mdata)
    router = Daemon(tmp, f"{name}-router", "router", router_cfg(port, ports))
    probe = Probe(router, modem, port)
    try:
        await asyncio.gather(modem.wait_api(), router.wait_api())
        await probe.wait_session()
        yield Ctx(tmp, plan, rng, modem, router, port, dport, fakes, probe)
    finally:
        await probe.stop()
        await fakes.close()
        await asyncio.gather(modem.stop(), router.stop())


@dataclass
class Row:
    """One attack's figures."""

    name: str
    target: str  # the daemon under attack
    #: False: the harness could not run it (set-up failed; see errors).
    ran: bool = True
    inputs: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    sessions: int = 0
    endings: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    alive: bool = True
    tracebacks: int = 0
    session_kept: bool = True
    lost: int = 0
    lcr_n: int = 0
    lcr_missed: int = 0
    lcr_idle_p50: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    api_errors: dict[str, int] = field(default_factory=dict)
    rss_idle: dict[str, int] = field(default_factory=dict)
    rss_peak: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: CPU seconds used during the attack by each daemon and by this harness.
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


async def run_attack(
    tmp: Path,
    name: str,
    target: str,
    plan: Plan,
    rng: random.Random,
    attack: Callable[[Ctx, Tally], Any],
    *,
    nfakes: int = 0,
    note: str = "",
    **modem_extra: Any,
) -> Row:
    row = Row(name, target, note=note)
    tally = Tally()
    print(f"  {name} ...", end="", flush=True)
    async with pair(tmp, name, plan, rng, nfakes, **modem_extra) as c:
        await asyncio.sleep(0.5)  # settle after start-up
        idle = []
        for _ in range(10):
            dt = await c.probe.lcr()
            if dt is not None:
                idle.append(dt)
        row.lcr_idle_p50 = pct(idle, 50)
        row.rss_idle = {"modem": rss_kib(c.modem.pid), "router": rss_kib(c.router.pid)}
        sid0 = c.probe.session_id
        cpu0 = {"modem": cpu_seconds(c.modem.pid), "router": cpu_seconds(c.router.pid)}
        cpu0["harness"] = time.process_time()
        c.probe.start()
        t0 = time.monotonic()
        try:
            await attack(c, tally)
        except Exception as exc:  # the harness's own trouble: shown, not hidden
            row.errors[f"harness: {type(exc).__name__}: {exc}"[:120]] = 1
        row.seconds = time.monotonic() - t0
        row.cpu = {
            "modem": round(cpu_seconds(c.modem.pid) - cpu0["modem"], 1),
            "router": round(cpu_seconds(c.router.pid) - cpu0["router"], 1),
            "harness": round(time.process_time() - cpu0["harness"], 1),
        }
        await asyncio.sleep(0.5)  # the tail of the attack, still probed
        await c.probe.stop()
        row.lost = c.probe.lost
        final = None
        with contextlib.suppress(Exception):
            final = await c.probe.session()
        row.session_kept = row.lost == 0 and final == sid0
        rtts = c.probe.rtts
        row.lcr_n, row.lcr_missed = len(rtts), c.probe.missed
        row.p50, row.p99 = pct(rtts, 50), pct(rtts, 99)
        row.max = max(rtts) if rtts else float("nan")
        row.api_errors = dict(c.probe.api_errors)
        row.rss_peak = dict(c.probe.rss_peak)
        row.alive = c.modem.alive() and c.router.alive()
        mods = {"modem": c.modem, "router": c.router}
        daemons_ = list(mods.values())
    row.tracebacks = sum(d.tracebacks() for d in daemons_) + tally.tracebacks
    row.inputs = tally.total
    row.kinds = dict(tally.inputs)
    row.sessions = tally.sessions
    row.endings = dict(tally.endings)
    row.errors |= dict(tally.errors)
    print(f" {row.inputs} inputs, {row.seconds:.0f} s, p99 {row.p99:.1f} ms", flush=True)
    return row


# -- the attacks ---------------------------------------------------------------------


async def a_fuzz_modem(c: Ctx, t: Tally) -> None:
    await fuzz_modem(c.modem_port, c.plan, c.rng, t)


async def a_fuzz_router(c: Ctx, t: Tally) -> None:
    await fuzz_router(c.fakes, c.plan, c.rng, t)


async def a_discovery(c: Ctx, t: Tally) -> None:
    await discovery_flood(c.dport, c.plan, c.rng, t)


async def a_churn(c: Ctx, t: Tally) -> None:
    from tests.integration.test_bounds import _churn

    counter = [0]
    until = time.monotonic() + c.plan.churn_seconds
    churners = [
        asyncio.create_task(
            _churn(V4, c.modem_port, hold=h, max_conns=200_000, until=until, counter=counter)
        )
        for h in (1.0, 1.0, 0.0, 0.0)
    ]
    # A second router, started while the churn runs, must get in.
    await asyncio.sleep(min(1.0, c.plan.churn_seconds / 3))
    late = Daemon(
        c.tmp, "churn-late-router", "router", router_cfg(c.modem_port, api={"enabled": False})
    )
    t0 = time.monotonic()
    got = None
    try:
        while time.monotonic() - t0 < 15 and late.alive():
            ss = await c.modem.api().list_sessions()
            if sum(1 for s in ss if s.state == "in-session") >= 2:
                got = time.monotonic() - t0
                break
            await asyncio.sleep(0.05)
        await asyncio.gather(*churners)
    finally:
        for ch in churners:
            ch.cancel()
        await late.stop()
    t.inputs["connection"] += counter[0]
    t.sessions = counter[0]
    t.endings["late router in (s)"] = -1 if got is None else round(got, 2)  # type: ignore[assignment]
    t.errors["late router tracebacks"] = late.tracebacks()


async def a_busy_modem(c: Ctx, t: Tally) -> None:
    await busy_router(c.modem_port, c.plan, c.rng, t)


async def a_busy_router(c: Ctx, t: Tally) -> None:
    await burst_modem(c.fakes, c.plan, c.rng, t)


async def feed(d: Daemon, prefix: str, n: int, batch: int, t: Tally, key: str) -> None:
    """``n`` new destinations through ``d``'s FeedDestinations, ``batch`` a message."""
    from dlep.api._pb import management_pb2 as pb

    async def batches() -> AsyncIterator[Any]:
        for start in range(0, n, batch):
            recs = [
                pb.FeedRecord(
                    op="up",
                    mac=f"{prefix}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}:00",
                    metrics=pb.Metrics(cdrr=1000 + i),
                )
                for i in range(start, min(n, start + batch))
            ]
            yield pb.FeedBatch(records=recs)

    async for res in d.api().feed(batches()):
        if not res.ok:
            t.errors["feed batch refused"] += 1
        else:
            t.inputs[key] += len(res.results) or batch


async def a_tables(c: Ctx, t: Tally) -> None:
    """Item 9: a second modem brings up ``plan.table`` destinations (fed
    through its API) over its own session with the router, and both APIs
    list them in full, while the well-behaved session is probed. The second
    modem is the attacker: its own table is the operator's load (stated,
    not judged); the router is the daemon under attack."""
    from tests.integration.conftest import free_port

    n = c.plan.table
    port2 = free_port()
    while port2 == c.modem_port:
        port2 = free_port()
    big = Daemon(c.tmp, "tables-modem2", "modem", modem_cfg(port2))
    try:
        await big.wait_api()
        before = (await c.router.api().get_info()).destinations
        await c.router.api().connect_static(V4, port2, gtsm_enforce=False)
        await feed(big, "02:cc", n, 1000, t, "destination (API feed)")
        # Until the router holds them all (bounded).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = await c.router.api().get_info()
            if info.destinations - before >= n:
                break
            await asyncio.sleep(0.2)
        t.endings["router destinations"] = int(info.destinations)
        # The table's own cost, before ListDestinations adds its transient one.
        t.endings["router RSS MiB with the table"] = rss_kib(c.router.pid) // 1024
        t.endings["second modem RSS MiB with its table"] = rss_kib(big.pid) // 1024
        # Then ListDestinations on both APIs, in turn, for a while (at least
        # 3 times each; bounded).
        deadline = time.monotonic() + c.plan.busy_seconds
        for i in range(1000):
            if i >= 3 and time.monotonic() > deadline:
                break
            for d in (c.router, big):
                role = "second modem" if d is big else d.role
                t0 = time.monotonic()
                try:
                    got = await d.api().list_destinations()
                    t.endings[f"{role} ListDestinations rows"] = len(got)
                    t.inputs["ListDestinations"] += 1
                except Exception as exc:
                    code = getattr(exc, "code_name", type(exc).__name__)
                    t.errors[f"{role} ListDestinations: {code}"] += 1
                ms = int((time.monotonic() - t0) * 1000)
                key = f"{role} ListDestinations max ms"
                t.endings[key] = max(t.endings.get(key, 0), ms)
        t.endings["second modem RSS MiB peak"] = rss_kib(big.pid) // 1024
    finally:
        t.tracebacks += big.tracebacks()
        await big.stop()


async def a_watch(c: Ctx, t: Tally) -> None:
    import grpc

    from dlep.api._pb import management_pb2 as pb

    chans = []
    calls = []
    try:
        for d in (c.modem, c.router):
            for _ in range(c.plan.watch_streams):
                ch = grpc.aio.insecure_channel(f"unix:{d.sock}")
                chans.append(ch)
                call = ch.unary_stream(
                    "/dlep.v1.Management/WatchEvents",
                    request_serializer=pb.WatchEventsRequest.SerializeToString,
                    response_deserializer=pb.Event.FromString,
                )(pb.WatchEventsRequest())
                calls.append(call)  # never read
        await asyncio.sleep(0.3)
        t.endings["watch streams (modem)"] = (await c.modem.api().get_info()).watch_streams
        # Destinations added through the modem's API, one AddDestination
        # call each (16 in flight): each one an event for every stream on
        # both daemons, sent one by one (a FeedDestinations batch arrives
        # faster, and its events overflow the streams' queues rather than
        # fill the never-read HTTP/2 windows).
        api = c.modem.api()
        sem = asyncio.Semaphore(16)

        async def add(i: int) -> None:
            async with sem:
                mac = f"02:dd:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}:00"
                try:
                    await api.add_destination(mac)
                    t.inputs["AddDestination"] += 1
                except Exception as exc:
                    t.errors[f"AddDestination {type(exc).__name__}"] += 1

        await asyncio.gather(*(add(i) for i in range(c.plan.watch_adds)))
        await asyncio.sleep(1.0)
        await asyncio.sleep(1.0)
    finally:
        for call in calls:
            call.cancel()
        for ch in chans:
            with contextlib.suppress(Exception):
                await ch.close()


# ------------------------------------------------------------------------------------
# kill -9 cycles, with a fork server
# ------------------------------------------------------------------------------------


def fork_server() -> None:
    """``--fork-server``: import dlep once, then fork a daemon per request.

    Lines on stdin: ``spawn ROLE CONFIG LOG`` -> the child's pid;
    ``kill PID`` -> SIGKILL, reap, the wait status. Children run the
    daemon's ``main`` with the API off and die with this process."""
    die_with_parent()
    import dlep.cli.modem as cm
    import dlep.cli.router as cr

    mains = {"modem": cm.main, "router": cr.main}
    # What main imports lazily, imported here once.
    import dlep.api.startup
    import dlep.cli.reload
    import dlep.config
    import dlep.daemon
    import dlep.dataplane.service  # noqa: F401

    out = sys.stdout
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "spawn":
            role, cfg, log = parts[1], parts[2], parts[3]
            pid = os.fork()
            if pid == 0:
                try:
                    die_with_parent()
                    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    null = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(null, 0)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    code = mains[role](["--config", cfg, "--no-api"])
                except BaseException:
                    import traceback

                    traceback.print_exc()
                    code = 70
                finally:
                    with contextlib.suppress(Exception):
                        sys.stdout.flush()
                        sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 0)
            out.write(f"{pid}\n")
        elif parts[0] == "kill":
            pid = int(parts[1])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            out.write(f"{status}\n")
        out.flush()


class ForkServer:
    def __init__(self) -> None:
        self.p = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--fork-server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(REPO),
            preexec_fn=die_with_parent,
        )
        _ALL.append(self.p)

    async def _ask(self, line: str) -> str:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        out = await asyncio.wait_for(asyncio.to_thread(self.p.stdout.readline), 30)
        if not out:
            raise RuntimeError("fork server gone")
        return out.decode().strip()

    async def spawn(self, role: str, cfg: Path, log: Path) -> int:
        return int(await self._ask(f"spawn {role} {cfg} {log}"))

    async def kill(self, pid: int) -> int:
        return int(await self._ask(f"kill {pid}"))

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


async def kill_cycles(tmp: Path, victim: str, plan: Plan, fs: ForkServer) -> Row:
    """``plan.cycles`` times: kill -9 the ``victim`` daemon, start a new one;
    the survivor (a real daemon subprocess) must re-establish each time."""
    from tests.integration.conftest import free_port, write_toml

    survivor_role = "router" if victim == "modem" else "modem"
    row = Row(f"kill-{victim}", survivor_role)
    print(f"  kill-{victim} ...", end="", flush=True)
    port = free_port()
    if victim == "modem":
        survivor = Daemon(tmp, f"kill-{victim}-survivor", "router", router_cfg(port))
        vdata = modem_cfg(port)
    else:
        survivor = Daemon(
            tmp, f"kill-{victim}-survivor", "modem", modem_cfg(port, modem={"max_sessions": 1})
        )
        vdata = router_cfg(port)
    vcfg = write_toml(tmp / f"kill-{victim}-victim.toml", vdata)
    vlog = tmp / f"kill-{victim}-victim.log"
    vlog.write_text("")

    async def in_session() -> set[str]:
        return {s.id for s in await survivor.api().list_sessions() if s.state == "in-session"}

    ok = 0
    times: list[float] = []
    pid = 0
    t_start = time.monotonic()
    try:
        await survivor.wait_api()
        seen: set[str] = set()
        before: dict[str, int] = {}
        for cycle in range(plan.cycles):
            t0 = time.monotonic()
            pid = await fs.spawn(victim, vcfg, vlog)
            new = False
            while time.monotonic() - t0 < CYCLE_BOUND:
                ids = await in_session()
                if ids - seen:
                    seen |= ids
                    new = True
                    break
                await asyncio.sleep(0.01)
            if new:
                ok += 1
                times.append(time.monotonic() - t0)
            if cycle == 0:
                await asyncio.sleep(0.5)  # settle: the reference state, one session
                before = {
                    "fds": fd_count(survivor.pid),
                    "tasks": await survivor.tasks(),
                    "rss": rss_kib(survivor.pid),
                }
                row.rss_idle = {survivor_role: before["rss"]}
            if cycle == plan.cycles - 1:
                break  # the last one stays up: the survivor's state with one session
            await fs.kill(pid)
            pid = 0
            if not survivor.alive():
                break
        await asyncio.sleep(0.5)
        after = {
            "fds": fd_count(survivor.pid),
            "tasks": await survivor.tasks(),
            "rss": rss_kib(survivor.pid),
        }
        row.rss_peak = {survivor_role: after["rss"]}
        row.extra = {
            "cycles": plan.cycles,
            "reestablished": ok,
            "fds_before": before.get("fds", -1),
            "fds_after": after["fds"],
            "tasks_before": before.get("tasks", -1),
            "tasks_after": after["tasks"],
            "cycle_p50_s": round(pct(times, 50), 3),
            "cycle_max_s": round(max(times), 3) if times else None,
        }
        row.alive = survivor.alive()
    finally:
        if pid:
            with contextlib.suppress(Exception):
                await fs.kill(pid)
        await survivor.stop()
    row.seconds = time.monotonic() - t_start
    row.tracebacks = survivor.tracebacks() + vlog.read_text(errors="replace").count("Traceback")
    row.inputs = plan.cycles
    print(f" {ok}/{plan.cycles} re-established, {row.seconds:.0f} s", flush=True)
    return row


# ------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------


def verdicts(rows: list[Row], plan: Plan) -> list[tuple[str, bool, str]]:
    """(target, passed, figure) per target of issue 14."""
    out: list[tuple[str, bool, str]] = []
    attacks = [r for r in rows if r.ran and not r.name.startswith("kill-")]
    kills = [r for r in rows if r.ran and r.name.startswith("kill-")]
    want = plan.fuzz_inputs
    hostile_kinds = ("mutated", "random", "truncated", "oversized")
    modem_in = sum(r.inputs for r in rows if r.name == "fuzz-modem") + sum(
        v for r in rows if r.name == "discovery" for k, v in r.kinds.items() if k in hostile_kinds
    )
    router_in = sum(r.inputs for r in rows if r.name == "fuzz-router")
    out.append((f"hostile inputs to the modem >= {want:,}", modem_in >= want, f"{modem_in:,}"))
    out.append((f"hostile inputs to the router >= {want:,}", router_in >= want, f"{router_in:,}"))
    broken = [r.name for r in rows if not r.ran]
    out.append(("every attack ran", not broken, ", ".join(broken) or "all"))
    dead = [r.name for r in rows if not r.alive]
    out.append(("0 crashes", not dead, ", ".join(dead) or "0"))
    tb = sum(r.tracebacks for r in rows)
    out.append(("0 tracebacks", tb == 0, str(tb)))
    lost = [r.name for r in attacks if not r.session_kept]
    out.append(("well-behaved session never lost", not lost, ", ".join(lost) or "kept"))
    for r in attacks:
        out.append(
            (
                f"LCR p99 < {TARGET_P99_MS:.0f} ms during {r.name}",
                r.p99 < TARGET_P99_MS,
                f"{r.p99:.1f} ms",
            )
        )
    for r in attacks:
        for role in ("modem", "router"):
            idle, peak = r.rss_idle.get(role, 0), r.rss_peak.get(role, 0)
            ratio = peak / idle if idle else float("nan")
            out.append(
                (
                    f"{role} RSS < {TARGET_RSS_RATIO:.0f}x idle during {r.name}",
                    ratio < TARGET_RSS_RATIO,
                    f"{ratio:.2f}x ({idle // 1024}->{peak // 1024} MiB)",
                )
            )
    for r in kills:
        e = r.extra
        if not e:
            out.append((f"{r.name}: cycles ran", False, "harness failure"))
            continue
        out.append(
            (
                f"{r.name}: 100 % re-established",
                e["reestablished"] == e["cycles"],
                f"{e['reestablished']}/{e['cycles']}",
            )
        )
        out.append(
            (
                f"{r.name}: survivor fds not grown",
                0 <= e["fds_after"] <= e["fds_before"],
                f"{e['fds_before']}->{e['fds_after']}",
            )
        )
        out.append(
            (
                f"{r.name}: survivor tasks not grown",
                0 <= e["tasks_after"] <= e["tasks_before"],
                f"{e['tasks_before']}->{e['tasks_after']}",
            )
        )
    return out


def mib(r: Row, role: str) -> str:
    """``idle->peak`` RSS of ``role`` in MiB."""
    return f"{r.rss_idle.get(role, 0) / 1024:.0f}->{r.rss_peak.get(role, 0) / 1024:.0f}"


def print_report(rows: list[Row], plan: Plan, elapsed: float) -> list[tuple[str, bool, str]]:
    print()
    hdr = (
        f"{'attack':<12} {'target':<6} {'inputs':>8} {'sess':>6} {'alive':>5} {'tb':>3} "
        f"{'kept':>4} {'lcr n':>6} {'miss':>4} {'idle':>5} {'p50':>6} {'p99':>7} {'max':>7} "
        f"{'modem RSS MiB':>14} {'router RSS MiB':>15} {'secs':>5}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        if r.name.startswith("kill-"):
            continue
        m, rt = mib(r, "modem"), mib(r, "router")
        print(
            f"{r.name:<12} {r.target:<6} {r.inputs:>8} {r.sessions:>6} "
            f"{'yes' if r.alive else 'NO':>5} {r.tracebacks:>3} "
            f"{'yes' if r.session_kept else 'NO':>4} {r.lcr_n:>6} "
            f"{r.lcr_missed:>4} {r.lcr_idle_p50:>5.1f} {r.p50:>6.1f} {r.p99:>7.1f} {r.max:>7.1f} "
            f"{m:>14} {rt:>15} {r.seconds:>5.0f}"
        )
    print("  (LCR round trip in ms via the router's API, idle = p50 before the attack)")
    for r in rows:
        if r.name.startswith("kill-"):
            continue
        detail = []
        if r.kinds:
            detail.append("inputs " + ", ".join(f"{k} {v}" for k, v in sorted(r.kinds.items())))
        if r.endings:
            detail.append("endings " + ", ".join(f"{k}: {v}" for k, v in sorted(r.endings.items())))
        if r.errors:
            detail.append("errors " + ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())))
        if r.cpu:
            detail.append("CPU s " + ", ".join(f"{k} {v}" for k, v in r.cpu.items()))
        if r.api_errors:
            detail.append("probe errors " + ", ".join(f"{k}: {v}" for k, v in r.api_errors.items()))
        print(f"  {r.name}: " + "; ".join(detail))
    kills = [r for r in rows if r.name.startswith("kill-")]
    if kills:
        print()
        print(
            f"{'kill -9':<12} {'survivor':<8} {'cycles':>6} {'re-est.':>8} {'fds':>9} {'tasks':>9} "
            f"{'RSS MiB':>9} {'tb':>3} {'cycle p50/max s':>16} {'secs':>5}"
        )
        for r in kills:
            e = r.extra or {}
            rss = mib(r, r.target)
            print(
                f"{r.name:<12} {r.target:<8} {e.get('cycles', 0):>6} "
                f"{100 * e.get('reestablished', 0) / max(1, e.get('cycles', 1)):>7.0f}% "
                f"{e.get('fds_before', '?')!s:>4}->{e.get('fds_after', '?')!s:<4}"
                f"{e.get('tasks_before', '?')!s:>4}->{e.get('tasks_after', '?')!s:<4}"
                f"{rss:>9} {r.tracebacks:>3} "
                f"{e.get('cycle_p50_s', 0)!s:>7}/{e.get('cycle_max_s', 0)!s:<8} {r.seconds:>5.0f}"
            )
    print()
    v = verdicts(rows, plan)
    for what, ok, fig in v:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}: {fig}")
    load = os.getloadavg()
    print(
        f"\n{len([x for x in v if x[1]])}/{len(v)} targets met; {elapsed:.0f} s; "
        f"load average {load[0]:.1f} on {os.cpu_count()} CPUs (figures are noisy under load)"
    )
    return v


# ------------------------------------------------------------------------------------


ATTACKS: list[tuple[str, str, Callable[[Ctx, Tally], Any], dict[str, Any]]] = [
    ("fuzz-modem", "modem", a_fuzz_modem, {}),
    ("fuzz-router", "router", a_fuzz_router, {"nfakes": 32}),
    ("discovery", "modem", a_discovery, {}),
    ("churn", "modem", a_churn, {}),
    ("busy-modem", "modem", a_busy_modem, {}),
    ("busy-router", "router", a_busy_router, {"nfakes": 1}),
    ("tables", "router", a_tables, {}),
    ("watch", "modem", a_watch, {}),
]


async def main_async(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    only = set(args.only.split(",")) if args.only else None
    t0 = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dlep-rel-") as d:
        tmp = Path(d)
        kind = "quick" if args.quick else "full"
        print(f"reliability suite ({kind}), seed {args.seed}, logs in {tmp}")
        for name, target, fn, kw in ATTACKS:
            if only and name not in only:
                continue
            try:
                rows.append(await run_attack(tmp, name, target, plan, rng, fn, **kw))
            except Exception as exc:  # set-up failed: shown as such, the rest still runs
                print(f" harness failure: {exc}", flush=True)
                rows.append(Row(name, target, ran=False, errors={f"harness: {exc}"[:300]: 1}))
        fs = ForkServer()
        try:
            for victim in ("modem", "router"):
                if only and f"kill-{victim}" not in only:
                    continue
                try:
                    rows.append(await kill_cycles(tmp, victim, plan, fs))
                except Exception as exc:
                    print(f" harness failure: {exc}", flush=True)
                    rows.append(
                        Row(
                            f"kill-{victim}", victim, ran=False, errors={f"harness: {exc}"[:300]: 1}
                        )
                    )
        finally:
            fs.close()
        if args.keep_logs:
            import shutil

            shutil.copytree(tmp, args.keep_logs, dirs_exist_ok=True)
        v = print_report(rows, plan, time.monotonic() - t0)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "quick": args.quick,
                    "rows": [r.__dict__ for r in rows],
                    "verdicts": [{"target": a, "pass": b, "figure": c} for a, b, c in v],
                },
                indent=1,
                default=str,
            )
        )
    return 1 if args.strict and not all(ok for _, ok, _ in v) else 0


def main() -> int:
    if "--fork-server" in sys.argv:
        fork_server()
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short run (what the test runs)")
    p.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    p.add_argument("--seed", type=int, default=14, help="random seed of the hostile inputs")
    p.add_argument("--only", metavar="A,B", help="only these attacks (names as in the table)")
    p.add_argument("--keep-logs", metavar="DIR", help="copy the daemons' logs and configs here")
    p.add_argument("--strict", action="store_true", help="exit 1 if a target is not met")
    args = p.parse_args()

    def on_signal(signum: int, frame: Any) -> None:
        # Not asyncio.run's own SIGINT handling: it cancels the main task,
        # and a gRPC call turns that cancellation into an RPC error the
        # suite would record and go on. KeyboardInterrupt stops the loop;
        # asyncio.run then unwinds every task (daemons stopped, bounded
        # waits) and kill_all() below kills whatever is left.
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return asyncio.run(main_async(args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        kill_all()


if __name__ == "__main__":
    sys.exit(main())
