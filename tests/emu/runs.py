"""Running ``dlep-emu run`` as a subprocess for the root tests.

Safety: every address the scenarios use lives inside namespaces the run
creates (``emu<pid>-<node>``) and is removed with them; the emulators talk
UDP on 127.0.0.1 only (or, in the multi-host test, inside two namespaces the
test creates). Each test checks that nothing is left: no namespace of the
run, no process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def root_unavailable() -> str | None:
    """Why the root tests cannot run here (None: they can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces and TAP interfaces); CI runs it as root"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun for TAP interfaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip) to run test commands in the namespaces"
    return None


def need_root() -> None:
    why = root_unavailable()
    if why is not None:
        pytest.skip(why)


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"needs {name} (Debian package {package})")
    return path


class EmuRun:
    """One ``dlep-emu run`` subprocess; :meth:`stop` ends it (SIGTERM)."""

    def __init__(
        self, scenario: Path, run_dir: Path, *args: str, prefix: Sequence[str] = ()
    ) -> None:
        self.run_dir = run_dir
        self.log_path = run_dir.parent / f"{run_dir.name}.out"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [
            *prefix,
            sys.executable,
            "-m",
            "dlep.cli.emu",
            "run",
            str(scenario),
            "--no-view",
            "--keep",
            "--run-dir",
            str(run_dir),
            *args,
        ]
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO),
        )
        self.info: dict[str, Any] = {}

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = 40.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        path = self.run_dir / "run.json"
        while not path.exists():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dlep-emu run exited ({self.proc.returncode}):\n{self.text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"dlep-emu run did not start:\n{self.text()}")
            time.sleep(0.05)
        time.sleep(0.05)
        self.info = json.loads(path.read_text())
        return self.info

    def netns(self, node: str) -> str:
        ns = self.info["nodes"][node]["netns"]
        assert isinstance(ns, str)
        return ns

    def ns_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        """``argv`` inside the node's namespace. Entered through the emulator's
        pid rather than the name: a run started under ``ip netns exec`` (the
        multi-host test) has a mount namespace of its own, where its named
        namespaces live."""
        pid = self.info["nodes"][node]["pids"]["emulator"]
        return ["nsenter", f"--net=/proc/{pid}/ns/net", *argv]

    def ns_run(self, node: str, argv: Sequence[str], timeout: float = 30.0) -> str:
        res = subprocess.run(
            self.ns_argv(node, argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if res.returncode != 0:
            raise AssertionError(f"{argv} in {node} failed: {res.stderr}{res.stdout}")
        return res.stdout

    def ns_popen(self, node: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.ns_argv(node, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def pids(self) -> list[int]:
        return [p for n in self.info.get("nodes", {}).values() for p in n["pids"].values()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return False


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def assert_clean(run: EmuRun, timeout: float = 10.0) -> None:
    """No process and no namespace of ``run`` is left."""
    pids = run.pids()
    ns = {n["netns"] for n in run.info.get("nodes", {}).values() if n["netns"]}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids) and not (ns & namespaces()):
            return
        time.sleep(0.1)
    raise AssertionError(
        f"left behind: pids {[p for p in pids if alive(p)]}, namespaces {ns & namespaces()}"
    )


@contextlib.contextmanager
def emu_run(scenario: Path, run_dir: Path, *args: str) -> Iterator[EmuRun]:
    run = EmuRun(scenario, run_dir, *args)
    try:
        yield run
    finally:
        run.stop()
        # Whatever happened, nothing of ours stays.
        for name in {n["netns"] for n in run.info.get("nodes", {}).values() if n["netns"]}:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        for pid in run.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def router_destinations(socket_path: str) -> dict[str, Any]:
    """MAC -> pb.Destination at the router serving ``socket_path``."""
    from dlep.api.client import ManagementClient

    async with ManagementClient.unix(socket_path, timeout=3.0) as client:
        return {d.mac: d for d in await client.list_destinations()}


async def wait_router(
    run: EmuRun, node: str, cond: Any, timeout: float, what: str
) -> tuple[float, Any]:
    """Poll node's router (every 50 ms) until ``cond(dests)``; returns (time.time(), dests)."""
    path = run.info["nodes"][node]["sockets"]["router"]
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = await router_destinations(path)
            if cond(last):
                return time.time(), last
        if run.proc.poll() is not None:
            raise AssertionError(f"dlep-emu run exited:\n{run.text()}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node}'s router: no {what} within {timeout} s; last view {last}")
