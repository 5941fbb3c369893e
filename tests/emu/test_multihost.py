"""One scenario on two hosts: two namespaces joined by a veth pair stand in
for the hosts; ``dlep-emu run --only-host`` runs in each. The emulators talk
UDP across the veth; each host's router learns the other host's node."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .runs import EmuRun, assert_clean, need_root, need_tool, wait_router

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

SCENARIO = """
[scenario]
name = "twohosts"
[emulator]
keepalive_interval_ms = 100
[[nodes]]
name = "a"
host = "ha"
address = "10.93.0.1:47000"
ipv4 = ["10.94.0.1/24"]
[[nodes]]
name = "b"
host = "hb"
address = "10.93.0.2:47000"
ipv4 = ["10.94.0.2/24"]
[[links]]
a = "a"
b = "b"
rate = "10M"
latency = "4ms"
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


@contextlib.contextmanager
def two_hosts() -> Iterator[tuple[str, str]]:
    pid = os.getpid()
    ha, hb = f"dlepHA{pid}", f"dlepHB{pid}"
    try:
        ip("netns", "add", ha)
        ip("netns", "add", hb)
        # Both veth ends are born inside the host namespaces: nothing in ours.
        ip("link", "add", "h0", "netns", ha, "type", "veth", "peer", "name", "h1", "netns", hb)
        for ns, dev, addr in ((ha, "h0", "10.93.0.1/24"), (hb, "h1", "10.93.0.2/24")):
            ip("-n", ns, "addr", "add", addr, "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield ha, hb
    finally:
        for ns in (ha, hb):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


async def test_two_hosts(tmp_path: Path) -> None:
    need_root()
    ping = need_tool("ping", "iputils-ping")
    sc = tmp_path / "sc.toml"
    sc.write_text(SCENARIO)
    start = str(time.time() + 3)
    with two_hosts() as (ha, hb):
        runs = [
            EmuRun(
                sc,
                tmp_path / f"run-{h}",
                "--only-host",
                h,
                "--start-at",
                start,
                prefix=["ip", "netns", "exec", ns],
            )
            for h, ns in (("ha", ha), ("hb", hb))
        ]
        try:
            for r in runs:
                r.wait_started()
            _, da = await wait_router(runs[0], "a", lambda d: "02:e0:00:00:00:02" in d, 20, "b")
            _, db = await wait_router(runs[1], "b", lambda d: "02:e0:00:00:00:01" in d, 20, "a")
            assert da["02:e0:00:00:00:02"].metrics.mdrt == 10_000_000
            assert "10.94.0.1" in db["02:e0:00:00:00:01"].ipv4
            runs[0].ns_run("a", [ping, "-c", "3", "-i", "0.1", "-W", "1", "10.94.0.2"])
            assert [r.stop() for r in runs] == [0, 0]
            for r in runs:
                assert_clean(r)
        finally:
            for r in runs:
                r.stop(signal.SIGTERM)
