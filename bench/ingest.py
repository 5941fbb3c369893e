"""Router ingest: how fast one ``dlep-router`` process takes in what a modem sends.

Run: ``.venv/bin/python bench/ingest.py`` (about 15 s; ``--quick``, about
10 s, sends fewer Destination Updates). Prints figures, never fails.

Set-up. The router is ``dlep-router`` as an operator runs it (its own
process, plain TCP on 127.0.0.1, log level warning, the management API
serving on a private socket, nobody watching); it connects to this driver as
to a static peer. The driver plays the
modem with raw sockets: it answers the Session Initialization, then writes
**pre-encoded** messages as fast as the router reads them:

(a) N Destination Ups (MAC and all nine metrics), then one marker Destination
    Up; the time until the router's Destination Up Response to the marker
    arrives gives "Destination Ups acknowledged/s" (every Up before it was
    answered in order, so acknowledged).
(b) M Destination Updates (a MAC and all nine metrics, the values changing
    from message to message), round-robin over the N destinations, then a
    marker Destination Up; its response says every update before it was
    consumed (one TCP stream, handled in order).

Both are run with N = 10,000 and N = 100,000. Beside them the driver prints
the codec alone decoding the same Destination Update bytes in this process
(``decode_message``), so the cost above the codec is visible, and the
router's resident memory (``/proc/<pid>/statm``) idle, before any session,
and with N destinations held, and its CPU time (``/proc/<pid>/stat``) per
message.

Idle memory is printed three ways (``/proc/<pid>/smaps_rollup``): RSS, all
pages resident; PSS, each page divided by the number of processes mapping it;
USS, the pages no other process maps (Private_Clean + Private_Dirty), i.e.
what ending this router would free. Shared objects (libpython, the gRPC and
pydantic-core ``.so`` files) count fully in RSS; when several daemons run on
one host they share those pages, so PSS and USS fall and RSS does not. A
second idle router with the management API off (``--no-api``: no gRPC) is
measured the same way.

The driver is never the limit: every byte it sends is encoded before the clock
starts, so during a measurement it only calls ``sendall`` on large buffers
(one system call per 256 KiB) and a reader thread counts the router's
answers. Before the measurements it writes the same bytes into a local
socket pair drained by a thread and prints that rate ("driver alone"): it is
an order of magnitude above what any router figure reaches, and the driver's
CPU time per run is printed too.
"""

from __future__ import annotations

import argparse
import os
import platform
import pstats
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from dlep.transport import set_ttl_255
from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    HeartbeatInterval,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    Message,
    MessageFramer,
    MessageType,
    Mtu,
    PeerType,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Resources,
    Status,
    decode_message,
    encode_message,
)

M = MessageType
TIMEOUT = 120.0  # every wait is bounded
CHUNK = 256 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def mac_of(i: int) -> bytes:
    return b"\x02" + i.to_bytes(5, "big")


def metrics(i: int) -> tuple[Any, ...]:
    """All nine metric items, values moving with ``i``."""
    return (
        MaximumDataRateReceive(100_000_000),
        MaximumDataRateTransmit(100_000_000),
        CurrentDataRateReceive(10_000_000 + (i * 7919) % 80_000_000),
        CurrentDataRateTransmit(10_000_000 + (i * 104_729) % 80_000_000),
        Latency(1000 + i % 5000),
        Resources(i % 101),
        RelativeLinkQualityReceive((i * 3) % 101),
        RelativeLinkQualityTransmit((i * 7) % 101),
        Mtu(1500),
    )


def encode(mtype: int, *items: Any) -> bytes:
    return encode_message(Message(mtype, tuple(items)))


SESSION_INIT_RESPONSE = encode(
    M.SESSION_INITIALIZATION_RESPONSE,
    Status(0),
    PeerType("ingest driver"),
    HeartbeatInterval(60_000),
    MaximumDataRateReceive(100_000_000),
    MaximumDataRateTransmit(100_000_000),
    CurrentDataRateReceive(50_000_000),
    CurrentDataRateTransmit(50_000_000),
    Latency(1000),
    Resources(100),
    RelativeLinkQualityReceive(100),
    RelativeLinkQualityTransmit(100),
    Mtu(1500),
)


# --------------------------------------------------------------------------
# The router, in its own process
# --------------------------------------------------------------------------


TICK = os.sysconf("SC_CLK_TCK")


class Router:
    """``dlep-router`` as an operator runs it, in its own process.

    The configuration is the shipped default apart from what a benchmark
    needs: one static peer (this driver), log level warning, a long
    heartbeat, discovery off, the management API on a private socket.
    """

    def __init__(
        self, port: int, workdir: str, profile: str | None = None, *, api: bool = True
    ) -> None:
        cfg = os.path.join(workdir, "router.toml")
        with open(cfg, "w") as f:
            f.write(
                "[timers]\nheartbeat_interval_ms = 60000\n"
                '[logging]\nlevel = "warning"\n'
                f'[api]\nsocket = "{workdir}/router.sock"\n'
                "[router]\ndiscovery = false\n"
                f'static_peers = [{{ address = "127.0.0.1", port = {port}, tls = false }}]\n'
            )
        if profile is None:
            cmd = [os.path.join(os.path.dirname(sys.executable), "dlep-router")]
        else:
            cmd = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "dlep.cli.router"]
        flags = [] if api else ["--no-api"]
        self.proc = subprocess.Popen(
            [*cmd, "--config", cfg, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE

    def memory(self) -> dict[str, int]:
        """Bytes: ``rss``, ``pss`` and ``uss`` (Private_Clean + Private_Dirty)."""
        kib: dict[str, int] = {}
        with open(f"/proc/{self.proc.pid}/smaps_rollup") as f:
            for line in f:
                key, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    kib[key] = int(value.split()[0])
        return {
            "rss": kib["Rss"] * 1024,
            "pss": kib["Pss"] * 1024,
            "uss": (kib["Private_Clean"] + kib["Private_Dirty"]) * 1024,
        }

    def cpu(self) -> float:
        """User + system CPU seconds the router process has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def stop(self) -> str:
        """SIGTERM, wait; returns what the router wrote to stderr."""
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")


# --------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------


class Answers(threading.Thread):
    """Reads the router's messages; notes when the response to a marker MAC arrives."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.framer = MessageFramer()
        self.lock = threading.Condition()
        self.answered: set[bytes] = set()
        self.count = 0
        self.done = False

    def run(self) -> None:
        mac_at = 4 + 4  # header, then the MAC Address item's own header
        while not self.done:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            for raw in self.framer.feed(data):
                mtype = struct.unpack_from("!H", raw)[0]
                if mtype == M.DESTINATION_UP_RESPONSE:
                    self.count += 1
                    mac = raw[mac_at : mac_at + 6]
                    if mac[:1] == b"\x03":  # markers: see marker_of()
                        with self.lock:
                            self.answered.add(mac)
                            self.lock.notify_all()

    def wait(self, mac: bytes, timeout: float = TIMEOUT) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: mac in self.answered, timeout):
                raise TimeoutError(f"no answer to marker {mac.hex(':')}")


def marker_of(i: int) -> bytes:
    return b"\x03" + i.to_bytes(5, "big")


def send_all(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    for off in range(0, len(view), CHUNK):
        sock.sendall(view[off : off + CHUNK])


def driver_alone(data: bytes) -> float:
    """Messages/s the driver writes into a local socket pair drained by a thread."""
    a, b = socket.socketpair()

    def drain() -> None:
        while b.recv(1 << 20):
            pass

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    t0 = time.perf_counter()
    send_all(a, data)
    elapsed = time.perf_counter() - t0
    a.close()
    t.join(10)
    b.close()
    return elapsed


def codec_rate(updates: list[bytes]) -> float:
    """Destination Updates/s ``decode_message`` takes alone (best of 3)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for raw in updates:
            decode_message(raw)
        best = min(best, time.perf_counter() - t0)
    return len(updates) / best


def run_size(n: int, m: int, profile: str | None = None) -> dict[str, float]:
    """One router, one session: n Ups then m Updates. Returns the figures."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_ttl_255(listener, enforce=False)  # the router enforces GTSM (RFC 8175 §12.1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    ups = b"".join(encode(M.DESTINATION_UP, MacAddress(mac_of(i)), *metrics(i)) for i in range(n))
    ups += encode(M.DESTINATION_UP, MacAddress(marker_of(1)), *metrics(0))
    update_msgs = [
        encode(M.DESTINATION_UPDATE, MacAddress(mac_of(i % n)), *metrics(i + 1)) for i in range(m)
    ]
    updates = b"".join(update_msgs) + encode(
        M.DESTINATION_UP, MacAddress(marker_of(2)), *metrics(0)
    )
    out: dict[str, float] = {}
    out["driver_alone"] = (n + m) / (driver_alone(ups) + driver_alone(updates))
    out["codec"] = codec_rate(update_msgs[: min(m, 50_000)])
    workdir = tempfile.mkdtemp(prefix="dlep-ingest-")
    router = Router(port, workdir, profile)
    err = ""
    try:
        listener.settimeout(TIMEOUT)
        sock, _ = listener.accept()
        time.sleep(0.5)  # let start-up finish: the idle daemon, API serving, no session yet
        out["rss_idle"] = router.rss()
        idle = router.memory()
        out["pss_idle"], out["uss_idle"] = idle["pss"], idle["uss"]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        framer = MessageFramer()
        got = b""
        while not list(framer.feed(got)):
            got = sock.recv(65536)  # the Session Initialization
        sock.sendall(SESSION_INIT_RESPONSE)
        answers = Answers(sock)
        answers.start()
        out["rss_session"] = router.rss()
        cpu0, d0 = router.cpu(), time.process_time()
        t0 = time.perf_counter()
        send_all(sock, ups)
        answers.wait(marker_of(1))
        out["ups_s"] = n / (time.perf_counter() - t0)
        cpu1 = router.cpu()
        out["up_cpu_us"] = (cpu1 - cpu0) / n * 1e6
        out["rss_held"] = router.rss()
        t0 = time.perf_counter()
        send_all(sock, updates)
        answers.wait(marker_of(2))
        out["updates_s"] = m / (time.perf_counter() - t0)
        out["update_cpu_us"] = (router.cpu() - cpu1) / m * 1e6
        out["driver_cpu_s"] = time.process_time() - d0
        answers.done = True
        sock.close()
    finally:
        err = router.stop()
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if err.strip():
        print("  router stderr:\n    " + err.strip().replace("\n", "\n    "))
    return out


def idle_memory(*, api: bool) -> dict[str, int]:
    """Memory of an idle router (connected to a listener, no session), as in
    :func:`run_size`; ``api`` False runs it with ``--no-api``."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_ttl_255(listener, enforce=False)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    workdir = tempfile.mkdtemp(prefix="dlep-ingest-")
    router = Router(listener.getsockname()[1], workdir, api=api)
    try:
        listener.settimeout(TIMEOUT)
        sock, _ = listener.accept()
        time.sleep(0.5)  # the same settling time as run_size
        mem = router.memory()
        sock.close()
    finally:
        err = router.stop()
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if err.strip():
        print("  router stderr:\n    " + err.strip().replace("\n", "\n    "))
    return mem


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer Destination Updates (both sizes)")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="run the router under cProfile (one size: 10,000 destinations), save the "
        "profile to FILE and print its top functions; the rates are then not comparable",
    )
    args = p.parse_args()
    if args.profile:
        r = run_size(10_000, 200_000, os.path.abspath(args.profile))
        print(f"(profiled) Ups {r['ups_s']:,.0f}/s, Updates {r['updates_s']:,.0f}/s")
        stats = pstats.Stats(args.profile)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(30)
        return 0
    sizes = (
        [(10_000, 50_000), (100_000, 100_000)]
        if args.quick
        else [
            (10_000, 200_000),
            (100_000, 300_000),
        ]
    )
    print(
        f"dlep router ingest benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}, {os.cpu_count()} CPU(s); "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print("\nidle router, before any session (MiB; USS = private, freed if it exits):")
    for api in (True, False):
        mem = idle_memory(api=api)
        label = "management API on " if api else "API off (--no-api)"
        print(
            f"  {label}  RSS {mib(mem['rss']):>5}   PSS {mib(mem['pss']):>5}   "
            f"USS {mib(mem['uss']):>5}"
        )
    for n, m in sizes:
        r = run_size(n, m)
        held = (r["rss_held"] - r["rss_session"]) / n
        print(f"\n{n:,} destinations, then {m:,} Destination Updates:")
        print(
            f"  (a) Destination Ups acknowledged:  {r['ups_s']:>9,.0f} /s   "
            f"router CPU {r['up_cpu_us']:.1f} us/Up   aim >= 60,000/s"
        )
        print(
            f"  (b) Destination Updates consumed: {r['updates_s']:>9,.0f} /s   "
            f"router CPU {r['update_cpu_us']:.1f} us/update   aim >= 80,000/s"
        )
        print(
            f"      the codec alone decodes        {r['codec']:>9,.0f} /s   "
            f"({1e6 / r['codec']:.1f} us/update): the router spends "
            f"{r['update_cpu_us'] - 1e6 / r['codec']:.1f} us above it"
        )
        print(
            f"  router RSS: idle {r['rss_idle'] / 2**20:.1f} MiB "
            f"(PSS {mib(r['pss_idle'])}, USS {mib(r['uss_idle'])}), session up "
            f"{r['rss_session'] / 2**20:.1f} MiB, with {n:,} destinations "
            f"{r['rss_held'] / 2**20:.1f} MiB ({held:.0f} B/destination; aim < 500 "
            f"at 100,000{'' if n >= 100_000 else ': fewer show the arenas the heap rounds up to'})"
        )
        print(
            f"  driver: {r['driver_alone']:,.0f} msg/s into a null sink; "
            f"{r['driver_cpu_s']:.2f} s CPU during the run"
        )
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
