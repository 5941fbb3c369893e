"""Figures of the radio-link emulator (prints them; never fails on speed).

Run: ``sudo .venv/bin/python bench/emu.py`` (about a minute). Without root
only the nodes-per-core figure runs (it needs no TAPs).

1. **Throughput** through one emulated link with no impairments (rate
   100 Gb/s, no latency, loss or jitter) between two TAPs, next to the same
   measurement through a plain veth pair between two namespaces (the
   physical reference on this machine): iperf3 UDP with 1400-octet
   datagrams offered at 1 Gb/s (received Mb/s and frames/s), and iperf3 TCP.
2. **Nodes per core**: N emulated radios with no TAPs (``--radios-only``
   style, no DLEP), each linked to its two ring neighbours, exchanging
   keepalives every 200 ms in one process; CPU seconds per second of wall
   time, for N = 10, 100, 1000.
3. **Latency the emulator adds** at zero configured latency: ping RTT
   p50/p99 (500 pings, 10 ms apart) across the emulated link minus the same
   across the veth pair.

The veth namespaces and the emulator's namespaces are created here and
removed at the end (also on failure); all traffic stays inside them or on
127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SCENARIO = """
[scenario]
name = "bench"
[emulator]
keepalive_interval_ms = 200
[[nodes]]
name = "a"
ipv4 = ["10.95.0.1/24"]
router = false
[[nodes]]
name = "b"
ipv4 = ["10.95.0.2/24"]
router = false
[[links]]
a = "a"
b = "b"
rate = "100G"
latency = 0
"""


def sh(argv: list[str], timeout: float = 60) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res.stdout


@contextlib.contextmanager
def veth_pair() -> Iterator[tuple[list[str], list[str]]]:
    """Two namespaces joined by a veth; yields argv prefixes to run in each."""
    pid = os.getpid()
    a, b = f"dlepBA{pid}", f"dlepBB{pid}"
    try:
        sh(["ip", "netns", "add", a])
        sh(["ip", "netns", "add", b])
        sh(
            [
                "ip",
                "link",
                "add",
                "v0",
                "netns",
                a,
                "type",
                "veth",
                "peer",
                "name",
                "v1",
                "netns",
                b,
            ]
        )
        for ns, dev, addr in ((a, "v0", "10.96.0.1/24"), (b, "v1", "10.96.0.2/24")):
            sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        yield ["ip", "netns", "exec", a], ["ip", "netns", "exec", b]
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@contextlib.contextmanager
def emulated_pair() -> Iterator[tuple[list[str], list[str]]]:
    """``dlep-emu run`` of two nodes; yields argv prefixes into their namespaces."""
    tmp = Path(tempfile.mkdtemp(prefix="dlep-emu-bench-"))
    (tmp / "sc.toml").write_text(SCENARIO)
    run_dir = tmp / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dlep.cli.emu",
            "run",
            str(tmp / "sc.toml"),
            "--no-view",
            "--run-dir",
            str(run_dir),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "run.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dlep-emu run did not start")
            time.sleep(0.1)
        time.sleep(2.0)  # neighbours up, ARP/ND announced
        info = json.loads((run_dir / "run.json").read_text())
        pre = [
            ["nsenter", f"--net=/proc/{info['nodes'][n]['pids']['emulator']}/ns/net"]
            for n in ("a", "b")
        ]
        yield pre[0], pre[1]
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


def iperf(client: list[str], server: list[str], dst: str, udp: bool, secs: int) -> dict[str, float]:
    srv = subprocess.Popen(
        [*server, "iperf3", "-s", "-1", "-p", "5210"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        extra = ["-u", "-b", "1G", "-l", "1400"] if udp else []
        out = json.loads(
            sh(
                [*client, "iperf3", "-c", dst, "-p", "5210", "-t", str(secs), "--json", *extra],
                timeout=secs + 30,
            )
        )
    finally:
        srv.kill()
        srv.wait()
    end = out["end"]
    if udp:
        r = end["sum_received"]
        return {
            "mbps": r["bits_per_second"] / 1e6,
            "fps": (r["packets"] - r.get("lost_packets", 0)) / r["seconds"],
            "lost": end["sum"].get("lost_percent", 0.0),
        }
    return {"mbps": end["sum_received"]["bits_per_second"] / 1e6}


def ping_rtts(client: list[str], dst: str, count: int = 500) -> list[float]:
    out = sh([*client, "ping", "-c", str(count), "-i", "0.01", "-W", "1", dst], timeout=60)
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_data_path(secs: int) -> None:
    print("== 1. one link, no impairments, vs a veth pair (iperf3, 1400-octet UDP at 1 Gb/s; TCP)")
    with veth_pair() as (va, vb):
        v_udp = iperf(va, vb, "10.96.0.2", True, secs)
        v_tcp = iperf(va, vb, "10.96.0.2", False, secs)
        v_rtt = ping_rtts(va, "10.96.0.2")
    with emulated_pair() as (ea, eb):
        e_udp = iperf(ea, eb, "10.95.0.2", True, secs)
        e_tcp = iperf(ea, eb, "10.95.0.2", False, secs)
        e_rtt = ping_rtts(ea, "10.95.0.2")
    print(
        f"   veth     UDP {v_udp['mbps']:8.1f} Mb/s {v_udp['fps']:9.0f} frames/s "
        f"(lost {v_udp['lost']:.1f} %)   TCP {v_tcp['mbps']:8.1f} Mb/s"
    )
    print(
        f"   emulated UDP {e_udp['mbps']:8.1f} Mb/s {e_udp['fps']:9.0f} frames/s "
        f"(lost {e_udp['lost']:.1f} %)   TCP {e_tcp['mbps']:8.1f} Mb/s"
    )
    print("== 3. latency added at zero configured latency (ping RTT, 500 x 10 ms)")
    for name, rtts in (("veth", v_rtt), ("emulated", e_rtt)):
        print(
            f"   {name:8s} p50 {pct(rtts, 0.5):.3f} ms  p99 {pct(rtts, 0.99):.3f} ms  "
            f"(n = {len(rtts)})"
        )
    print(
        f"   added    p50 {pct(e_rtt, 0.5) - pct(v_rtt, 0.5):.3f} ms  "
        f"p99 {pct(e_rtt, 0.99) - pct(v_rtt, 0.99):.3f} ms  (round trip: two emulator hops)"
    )


async def idle_cpu(n: int, secs: float) -> tuple[float, int]:
    from dlep.emu.scenario import parse_scenario
    from dlep.emu.service import run_nodes_in_process

    base = 40000
    data = {
        "scenario": {"base_port": base},
        "emulator": {"keepalive_interval_ms": 200},
        "nodes": [{"name": f"n{i}", "router": False} for i in range(n)],
        "links": [{"a": f"n{i}", "b": f"n{(i + 1) % n}"} for i in range(n if n > 2 else 1)],
    }
    topo = parse_scenario(data).topology()
    async with run_nodes_in_process(topo, list(range(n))) as nodes:
        await asyncio.sleep(2.0)  # everyone up
        c0, t0 = time.process_time(), time.monotonic()
        await asyncio.sleep(secs)
        cpu = (time.process_time() - c0) / (time.monotonic() - t0)
        up = sum(len(x.neighbours.up()) for x in nodes)
    return cpu, up


def bench_scale(secs: float) -> None:
    print("== 2. nodes per core: N idle radios (ring, keepalive 200 ms, no TAPs, no DLEP)")
    for n in (10, 100, 1000):
        cpu, up = asyncio.run(idle_cpu(n, secs))
        per_core = n / cpu if cpu > 0 else float("inf")
        print(
            f"   N = {n:5d}: {cpu * 100:6.1f} % of one core, {up} neighbour relations up, "
            f"~{per_core:,.0f} idle nodes per core"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=int, default=4, help="per iperf3 run / CPU sample")
    args = p.parse_args()
    print(f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if os.geteuid() == 0 and shutil.which("iperf3") and shutil.which("ping"):
        bench_data_path(args.seconds)
    else:
        print("== 1 and 3 skipped: need root, iperf3 and ping")
    bench_scale(float(args.seconds))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
