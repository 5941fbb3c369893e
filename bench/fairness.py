"""Fairness: a well-behaved session's round trip while another peer is busy.

Run: ``.venv/bin/python bench/fairness.py`` (about 20 s; ``--quick`` about
12 s). Prints figures, never fails. Issue 14 item 3: one busy peer must not
starve the others (aim: the second session's Link Characteristics Request
-> Response round trip under 50 ms p99, and its session never lost).

Set-up. The router is a ``RouterDaemon`` (the library) in this process,
plain TCP on 127.0.0.1, heartbeat 1 s and 3 missed (a 3 s timeout, as in the
issue), GC tuned as ``dlep-router`` does; the application is a task on the
router's loop that sends a Link Characteristics Request to the good modem
every 10 ms and waits for the ``LinkCharacteristicsResponse`` event: the
round trip is measured where a router application sees it. The router's
three static peers are separate processes (forked before the router
starts), so none shares the router's core time beyond what the kernel does:

* the good modem: a ``ModemDaemon`` with one destination, answering each
  request at once;
* the burst modem: raw sockets, bench/ingest.py's pre-encoded messages: on
  a signal it writes N Destination Ups (MAC and all nine metrics) as fast as
  the router reads them, and reads the answers in a thread;
* the flooder: raw sockets, a 4 KiB receive buffer; on a signal it writes
  bare Session Updates (each answered with a Session Update Response) and
  never reads, for a bounded time and count.

Phases: (0) idle; (a) the burst of N = 100,000 Destination Ups; (b) the
flooder. For each: the LCR round trip p50 / p99 / max over the samples of
the phase, and whether the good session lasted. For (b) also the most output
the router ever queued for the flooder and how often it stopped reading it
(``SessionInfo.output_peak`` / ``backpressure_pauses``; before issue 14
item 3 it queued up to 64 MiB and never stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import statistics
import sys
import time
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon, tune_gc
from dlep.fsm import LinkCharacteristicsResponse
from dlep.transport import set_ttl_255
from dlep.wire import MacAddress, MessageFramer, MessageType
from ingest import (
    SESSION_INIT_RESPONSE,
    Answers,
    encode,
    mac_of,
    marker_of,
    metrics,
    send_all,
)

M = MessageType
GOOD_MAC = "02:00:00:00:00:01"
TIMEOUT = 60.0  # every wait is bounded


def _listener(rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    set_ttl_255(s, enforce=False)  # the router enforces GTSM (RFC 8175 §12.1)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def _handshake(listener: socket.socket) -> socket.socket:
    listener.settimeout(TIMEOUT)
    sock, _ = listener.accept()
    sock.settimeout(TIMEOUT)
    framer = MessageFramer()
    for _ in range(100):  # bounded: the Session Initialization comes first
        if list(framer.feed(sock.recv(65536))):
            break
    sock.sendall(SESSION_INIT_RESPONSE)
    return sock


def burst_modem(listener: socket.socket, go: MpEvent, n: int) -> None:
    """N Destination Ups on ``go``, then wait for the marker's answer."""
    sock = _handshake(listener)
    ups = b"".join(encode(M.DESTINATION_UP, MacAddress(mac_of(i)), *metrics(i)) for i in range(n))
    ups += encode(M.DESTINATION_UP, MacAddress(marker_of(1)), *metrics(0))
    answers = Answers(sock)
    answers.start()
    go.wait(TIMEOUT)
    send_all(sock, ups)
    answers.wait(marker_of(1))
    time.sleep(TIMEOUT)  # keep the session until the parent ends us


def flooder(listener: socket.socket, go: MpEvent, seconds: float, sent: Any) -> None:
    """Session Updates on ``go`` for ``seconds`` at most; never reads."""
    sock = _handshake(listener)
    chunk = encode(M.SESSION_UPDATE) * 4096  # 16 KiB
    go.wait(TIMEOUT)
    sock.settimeout(0.5)
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # bounded in time
        try:
            sock.sendall(chunk)
        except TimeoutError:
            continue  # the router stopped reading us: keep trying until the end
        with sent.get_lock():
            sent.value += 4096
    time.sleep(TIMEOUT)  # keep the connection (unread) until the parent ends us


def good_modem(port: int) -> None:
    cfg = parse_modem_config(
        {
            "network": {"listen_addresses": ["127.0.0.1"], "tcp_port": port},
            "timers": {"heartbeat_interval_ms": 1000, "missed_heartbeats": 3},
            "logging": {"level": "error"},
            "modem": {
                "peer_type": "good modem",
                "session_metrics": {
                    "mdrr": "100M",
                    "mdrt": "100M",
                    "cdrr": "50M",
                    "cdrt": "50M",
                    "latency": "1ms",
                },
                "destinations": [{"mac": GOOD_MAC}],
            },
        },
        source="<fairness good modem>",
    )

    async def run() -> None:
        modem = await ModemDaemon.builder().config(cfg).spawn()
        tune_gc()
        await asyncio.sleep(TIMEOUT * 2)
        await modem.shutdown()

    asyncio.run(run())


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def line(name: str, rtts: list[float]) -> str:
    if not rtts:
        return f"  {name:<44} no samples"
    ms = [r * 1e3 for r in rtts]
    return (
        f"  {name:<44} p50 {statistics.median(ms):6.1f} ms  p99 {pct(ms, 99):6.1f} ms  "
        f"max {max(ms):6.1f} ms  ({len(ms)} requests)"
    )


async def main_async(args: argparse.Namespace) -> None:
    n = args.n
    ctx = mp.get_context("fork")
    good_port_sock = _listener()
    good_port = good_port_sock.getsockname()[1]
    good_port_sock.close()  # the modem binds it itself (SO_REUSEADDR)
    burst_l, flood_l = _listener(), _listener(rcvbuf=4096)
    go_burst, go_flood = ctx.Event(), ctx.Event()
    sent = ctx.Value("q", 0)
    children = [
        ctx.Process(target=good_modem, args=(good_port,), daemon=True),
        ctx.Process(target=burst_modem, args=(burst_l, go_burst, n), daemon=True),
        ctx.Process(target=flooder, args=(flood_l, go_flood, args.flood_s, sent), daemon=True),
    ]
    for c in children:
        c.start()
    burst_port, flood_port = burst_l.getsockname()[1], flood_l.getsockname()[1]
    burst_l.close()
    flood_l.close()
    time.sleep(0.5)  # the good modem listening
    peers = [
        {"address": "127.0.0.1", "port": p, "tls": False}
        for p in (good_port, burst_port, flood_port)
    ]
    rcfg = parse_router_config(
        {
            "timers": {"heartbeat_interval_ms": 1000, "missed_heartbeats": 3},
            "logging": {"level": "error"},
            "router": {"peer_type": "fairness router", "discovery": False, "static_peers": peers},
        },
        source="<fairness router>",
    )
    router = await RouterDaemon.builder().config(rcfg).spawn()
    tune_gc()
    sub = router.subscribe(maxsize=1_000_000)
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + TIMEOUT
        while len([s for s in router.sessions() if s.state == "in-session"]) < 3:
            if loop.time() > deadline:
                raise SystemExit("the three sessions did not come up")
            await asyncio.sleep(0.05)

        def of(port: int) -> Any:
            return next((s for s in router.sessions() if s.peer_name.endswith(f":{port}")), None)

        good = of(good_port)
        while of(good_port).destinations < 1:  # bounded by the three sessions' heartbeats
            await asyncio.sleep(0.05)
        responses: asyncio.Queue[float] = asyncio.Queue()

        async def watch() -> None:
            async for ev in sub:
                e = getattr(ev, "event", None)
                if isinstance(e, LinkCharacteristicsResponse):
                    responses.put_nowait(time.perf_counter())

        watcher = asyncio.create_task(watch())

        async def sample(seconds: float, stop: asyncio.Event | None = None) -> list[float]:
            out: list[float] = []
            end = loop.time() + seconds
            while loop.time() < end and not (stop is not None and stop.is_set()):
                t0 = time.perf_counter()
                await router.request_link_characteristics(
                    GOOD_MAC, cdrr=1_000_000, session_id=good.id
                )
                t1 = await asyncio.wait_for(responses.get(), 10)
                out.append(t1 - t0)
                await asyncio.sleep(0.01)
            return out

        def good_alive() -> bool:
            return any(s.id == good.id and s.state == "in-session" for s in router.sessions())

        print(
            f"dlep fairness benchmark: Python {sys.version.split()[0]}, "
            f"{os.cpu_count()} CPU(s); load average {os.getloadavg()[0]:.2f} at start"
        )
        print(line("(0) idle", await sample(args.idle_s)))

        burst = of(burst_port)
        done = asyncio.Event()

        async def burst_done() -> None:
            t0 = loop.time()
            while loop.time() - t0 < TIMEOUT:  # bounded
                info = next((s for s in router.sessions() if s.id == burst.id), None)
                if info is None or info.rx.get("DESTINATION_UP", 0) >= n + 1:
                    break
                await asyncio.sleep(0.02)
            done.set()

        t0 = time.perf_counter()
        go_burst.set()
        waiter = asyncio.create_task(burst_done())
        rtts = await sample(TIMEOUT, done)
        await waiter
        took = time.perf_counter() - t0
        print(line(f"(a) during {n:,} Destination Ups ({took:.1f} s)", rtts))
        print(f"      good session {'kept' if good_alive() else 'LOST'}")

        go_flood.set()
        rtts = await sample(args.flood_s)
        flood = of(flood_port)
        print(line(f"(b) during a flooder that never reads ({args.flood_s:.0f} s)", rtts))
        print(f"      good session {'kept' if good_alive() else 'LOST'}")
        if flood is not None:
            peak = getattr(flood, "output_peak", None)  # None: a dlep before issue 14 item 3
            print(
                f"      flooder: {sent.value:,} Session Updates written, "
                f"{flood.rx.get('SESSION_UPDATE', 0):,} read by the router; session {flood.state}"
            )
            if peak is not None:
                print(
                    f"      router output queued for it (beyond the kernel's socket buffers): "
                    f"peak {peak / 1024:,.0f} KiB, now {flood.output_queued / 1024:,.0f} KiB; "
                    f"reading paused {flood.backpressure_pauses} time(s), "
                    f"paused now: {flood.backpressure_now}"
                )
        else:
            print("      flooder: session gone")
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
        watcher.cancel()
    finally:
        await router.shutdown()
        for c in children:
            c.kill()
            c.join(5)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="shorter phases (same burst size)")
    args = p.parse_args()
    args.n = 100_000
    args.idle_s = 0.5 if args.quick else 2.0
    args.flood_s = 4.0 if args.quick else 10.0
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
