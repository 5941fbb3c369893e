"""``dlep-emu run`` end to end: the data plane across TAPs (one hop only),
status and Prometheus, and nothing left behind after SIGTERM, a crashed
child, or a killed runner. The radios-only run needs no root."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import free_base_port, free_ports
from .runs import alive, assert_clean, emu_run, namespaces, need_root, need_tool, wait_router

pytestmark = pytest.mark.timeout(90)

LINE3 = """
[scenario]
name = "line3"
base_port = {base}
[emulator]
keepalive_interval_ms = 100
metrics_base_port = {metrics}
[[nodes]]
name = "n1"
ipv4 = ["10.92.0.1/24"]
[[nodes]]
name = "n2"
ipv4 = ["10.92.0.2/24"]
[[nodes]]
name = "n3"
ipv4 = ["10.92.0.3/24"]
[[links]]
a = "n1"
b = "n2"
latency = "2ms"
[[links]]
a = "n2"
b = "n3"
latency = "2ms"
mtu = 1000
"""

MAC1, MAC2, MAC3 = "02:e0:00:00:00:01", "02:e0:00:00:00:02", "02:e0:00:00:00:03"


def write(tmp: Path, text: str) -> Path:
    path = tmp / "sc.toml"
    path.write_text(text)
    return path


def emu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlep.cli.emu", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.root
async def test_run_data_plane_status_and_clean_stop(tmp_path: Path) -> None:
    need_root()
    ping = need_tool("ping", "iputils-ping")
    metrics = free_ports(3)[0]
    sc = write(tmp_path, LINE3.format(metrics=metrics, base=free_base_port(3)))
    with emu_run(sc, tmp_path / "run") as run:
        run.wait_started()
        await wait_router(run, "n2", lambda d: MAC1 in d and MAC3 in d, 15, "n1 and n3")
        _, d1 = await wait_router(run, "n1", lambda d: MAC2 in d, 5, "n2")
        assert "10.92.0.2" in d1[MAC2].ipv4  # learned from n2's gratuitous ARP
        run.ns_run("n1", [ping, "-c", "3", "-i", "0.1", "-W", "1", "10.92.0.2"])
        # One hop: n1 does not reach n3 through n2 (nothing is relayed).
        res = subprocess.run(
            run.ns_argv("n1", [ping, "-c", "2", "-i", "0.2", "-W", "1", "10.92.0.3"]),
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert res.returncode != 0
        # Too big for the n2-n3 MTU (1000): dropped and counted on that link.
        subprocess.run(
            run.ns_argv("n2", [ping, "-c", "1", "-W", "1", "-s", "1200", "10.92.0.3"]),
            capture_output=True,
            timeout=20,
            check=False,
        )
        out = emu("status", "--json", "--run-dir", str(run.run_dir))
        assert out.returncode == 0, out.stderr
        st = json.loads(out.stdout)
        macs_n2 = {m["mac"]: m["owner"] for m in st["n2"]["macs"]}
        assert macs_n2[MAC1] == "n1" and macs_n2[MAC3] == "n3" and macs_n2[MAC2] == "local"
        to_n3 = next(ln for ln in st["n2"]["links"] if ln["peer"] == "n3")
        assert to_n3["drops"].get("mtu", 0) >= 1
        table = subprocess.run(
            [
                sys.executable,
                "-m",
                "dlep.cli.dlepctl",
                "emu",
                "macs",
                "--run-dir",
                str(run.run_dir),
                "--node",
                "n2",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert table.returncode == 0 and MAC1 in table.stdout
        scrape = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics + 1}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
        assert 'dlep_emu_drops_total{node="n2",peer="n3",reason="mtu"}' in scrape
        assert 'dlep_emu_neighbour_up{node="n2",peer="n1"} 1.0' in scrape
        assert run.stop() == 0
        assert "namespaces, TAPs and processes removed" in run.text()
        assert_clean(run)


@pytest.mark.root
async def test_a_crashed_router_stops_the_whole_run(tmp_path: Path) -> None:
    need_root()
    sc = write(tmp_path, LINE3.format(metrics=0, base=free_base_port(3)))
    with emu_run(sc, tmp_path / "run") as run:
        info = run.wait_started()
        await wait_router(run, "n1", lambda d: MAC2 in d, 15, "n2")
        os.kill(info["nodes"]["n3"]["pids"]["router"], signal.SIGKILL)
        run.proc.wait(30)
        assert run.proc.returncode == 1
        assert "the router of n3 exited" in run.text()
        assert_clean(run)


@pytest.mark.root
def test_a_killed_runner_leaves_no_process_and_cleanup_removes_its_namespaces(
    tmp_path: Path,
) -> None:
    need_root()
    sc = write(tmp_path, LINE3.format(metrics=0, base=free_base_port(3)))
    with emu_run(sc, tmp_path / "run") as run:
        info = run.wait_started()
        ns = {n["netns"] for n in info["nodes"].values()}
        run.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in run.pids()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in run.pids())  # they died with the runner
        assert ns <= namespaces()  # only namespaces can outlive a SIGKILL ...
        out = emu("cleanup")
        assert out.returncode == 0, out.stderr
        assert not (ns & namespaces())  # ... and cleanup (or the next run) removes them


async def test_radios_only_needs_no_root(tmp_path: Path) -> None:
    ports = free_ports(2)
    sc = write(
        tmp_path,
        f"""
[emulator]
keepalive_interval_ms = 100
[[nodes]]
name = "a"
address = "127.0.0.1:{ports[0]}"
[[nodes]]
name = "b"
address = "127.0.0.1:{ports[1]}"
[[links]]
a = "a"
b = "b"
latency = "3ms"
""",
    )
    with emu_run(sc, tmp_path / "run", "--radios-only") as run:
        run.wait_started()
        _, dests = await wait_router(run, "a", lambda d: "02:e0:00:00:00:02" in d, 20, "b")
        assert dests["02:e0:00:00:00:02"].metrics.latency > 2000
        assert run.stop() == 0
        assert_clean(run)


TWO = """
[scenario]
name = "cmds"
[emulator]
keepalive_interval_ms = 100
[[commands]]
argv = ["sleep", "300"]
[[nodes]]
name = "n1"
address = "127.0.0.1:{p1}"
ipv4 = ["10.92.0.1/24"]
loopback = ["10.93.0.1/32"]
{extra}
[[nodes]]
name = "n2"
address = "127.0.0.1:{p2}"
ipv4 = ["10.92.0.2/24"]
[[links]]
a = "n1"
b = "n2"
"""


def two(extra: str) -> str:
    """TWO on free ports, with ``extra`` in n1's table."""
    p1, p2 = free_ports(2)
    return TWO.replace("{extra}", extra).replace("{p1}", str(p1)).replace("{p2}", str(p2))


@pytest.mark.root
def test_commands_run_in_the_namespaces_and_are_stopped(tmp_path: Path) -> None:
    need_root()
    sc = write(tmp_path, two(""))
    with emu_run(sc, tmp_path / "run") as run:
        info = run.wait_started()
        for node in ("n1", "n2"):
            pids = info["nodes"][node]["pids"]
            want = os.readlink(f"/proc/{pids['emulator']}/ns/net")
            deadline = time.monotonic() + 10  # the helper enters the namespace, then execs
            while os.readlink(f"/proc/{pids['sleep (command 1)']}/ns/net") != want:
                assert time.monotonic() < deadline, f"{node}'s command is not in its namespace"
                time.sleep(0.05)
        assert "10.93.0.1/32" in run.ns_run("n1", ["ip", "-o", "addr", "show", "dev", "lo"])
        assert run.stop() == 0
        assert_clean(run)


@pytest.mark.root
def test_a_command_that_exits_ends_the_run_and_a_missing_one_stops_it_first(
    tmp_path: Path,
) -> None:
    need_root()
    extra = 'commands = [{ argv = ["sh", "-c", "echo {node} in {run_dir}; exit 3"] }]'
    sc = write(tmp_path, two(extra))
    with emu_run(sc, tmp_path / "run") as run:
        run.wait_started()
        run.proc.wait(30)
        assert run.proc.returncode == 1
        assert "the sh (command 2) of n1 exited (3)" in run.text()
        assert f"n1 in {tmp_path / 'run'}" in run.text()  # placeholders expanded; its log
        assert_clean(run)
    before = namespaces()
    sc.write_text(two('commands = [{ argv = ["no-such-program-here"] }]'))
    out = emu("run", str(sc), "--no-view")
    assert out.returncode != 0
    assert "n1: command 2 (no-such-program-here): no-such-program-here not found" in out.stderr
    assert namespaces() <= before
