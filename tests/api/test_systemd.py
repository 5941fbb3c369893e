"""Running under systemd: the notify protocol, the unit files, and the error
line for a privileged port without CAP_NET_BIND_SERVICE."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlep.cli import sdnotify

from .conftest import V4, free_port, until
from .daemon_proc import DaemonProc

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "contrib" / "systemd"


def _modem_toml(port: int) -> str:
    return f"""
[network]
listen_addresses = ["{V4}"]
tcp_port = {port}
discovery_v4 = false
discovery_v6 = false

[api]
enabled = false

[[modem.destinations]]
mac = "02:00:00:00:00:01"
"""


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def _received(sock: socket.socket) -> list[str]:
    out: list[str] = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


async def test_daemon_notifies_ready_watchdog_reloading_stopping(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    cfg = tmp_path / "modem.toml"
    cfg.write_text(_modem_toml(free_port()))
    env = {"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "200000"}
    proc = await DaemonProc.start("modem", cfg, env=env)
    got: list[str] = []
    try:

        def seen(state: str) -> bool:
            got.extend(_received(notify_socket))
            return any(state in m.split("\n") for m in got)

        await until(lambda: seen("READY=1"), timeout=10, what="READY=1")
        # Ready means serving: the modem listens by now.
        assert "modem listening on" in proc.output
        got.clear()
        await until(lambda: seen("WATCHDOG=1"), timeout=5, what="WATCHDOG=1")
        proc.send(signal.SIGHUP)
        await until(lambda: seen("RELOADING=1"), timeout=5, what="RELOADING=1")
        at = next(i for i, m in enumerate(got) if "RELOADING=1" in m)
        assert "MONOTONIC_USEC=" in got[at]
        del got[: at + 1]  # READY=1 may already have come with it
        await until(lambda: seen("READY=1"), timeout=5, what="READY=1 after the reload")
    finally:
        code = await proc.stop(signal.SIGTERM)
    assert code == 0, proc.output
    got.extend(_received(notify_socket))
    assert any("STOPPING=1" in m.split("\n") for m in got), got


def test_notify_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"dlep-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify("READY=1", "STATUS=x")
        assert sock.recv(100) == b"READY=1\nSTATUS=x"


def test_notify_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")  # not supported: ignored
    assert not sdnotify.notify("READY=1")


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # another process's
    assert sdnotify.watchdog_interval() is None


@pytest.mark.parametrize("role", ["router", "modem"])
def test_unit_files(role: str, tmp_path: Path) -> None:
    text = (UNITS / f"dlep-{role}.service").read_text()
    for line in (
        "Type=notify",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RuntimeDirectory=dlep",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text.splitlines(), line
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart= is executable: point it at this checkout's.
    script = Path(sys.executable).parent / f"dlep-{role}"
    if not script.exists():
        pytest.skip(f"{script} not installed")
    unit = tmp_path / f"dlep-{role}.service"
    unit.write_text(text.replace(f"/usr/local/bin/dlep-{role}", str(script)))
    res = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


def _nobody() -> tuple[int, int] | None:
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


async def test_privileged_port_names_the_capability() -> None:
    """Binding 127.0.0.1:854 as an unprivileged user fails with one error
    line that names CAP_NET_BIND_SERVICE."""
    ids = _nobody()
    if os.geteuid() != 0 or ids is None or shutil.which("setpriv") is None:
        pytest.skip("needs root (to drop to nobody) and setpriv")
    start = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    if start.exists() and int(start.read_text()) <= 854:
        pytest.skip("port 854 is not privileged on this host")
    # A world-readable directory: nobody must read the configuration.
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        cfg = Path(d) / "modem.toml"
        cfg.write_text(_modem_toml(854))
        os.chmod(cfg, 0o644)
        proc = await asyncio.create_subprocess_exec(
            "setpriv",
            f"--reuid={ids[0]}",
            f"--regid={ids[1]}",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-m",
            "dlep.cli.modem",
            "--config",
            str(cfg),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=d,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert proc.returncode == 1, text
    errors = [line for line in text.splitlines() if "ERROR" in line]
    assert len(errors) == 1, text
    assert "127.0.0.1 port 854" in errors[0] and "CAP_NET_BIND_SERVICE" in errors[0], text
    assert "Traceback" not in text
