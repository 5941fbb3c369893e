"""The API in the daemons' lifecycle: ``dlep-modem`` / ``dlep-router`` processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import sys
from pathlib import Path

import pytest

from dlep.config import load_modem_config, load_router_config

from .conftest import dlepctl, free_port, until

pytestmark = pytest.mark.timeout(60)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _modem_toml(path: Path, port: int, api: str) -> Path:
    path.write_text(
        f"""
[network]
listen_addresses = ["127.0.0.1"]
tcp_port = {port}
discovery_v4 = false
discovery_v6 = false

[timers]
allow_fast_timers = true
heartbeat_interval_ms = 200

[api]
{api}

[[modem.destinations]]
mac = "02:00:00:00:00:01"
metrics = {{ cdrr = "10M", mdrr = "20M" }}
"""
    )
    return path


async def _start(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dlep.cli.modem",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _stop(proc: asyncio.subprocess.Process, *, signal_it: bool = True) -> tuple[int, str]:
    if signal_it and proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_modem_process_serves_the_api(tmp_path: Path) -> None:
    sock = tmp_path / "modem.sock"
    cfg = _modem_toml(tmp_path / "modem.toml", free_port(), f'socket = "{sock.name}"')
    proc = await _start("--config", str(cfg))
    try:
        await until(sock.exists, timeout=10, what="API socket")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        res = await dlepctl("--socket", str(sock), "info", "--json")
        assert res.code == 0, res
        assert res.json()["role"] == "modem" and res.json()["pid"] == proc.pid
        res = await dlepctl("--socket", str(sock), "destinations", "--json")
        assert [d["mac"] for d in res.json()] == ["02:00:00:00:00:01"]
    finally:
        code, out = await _stop(proc)
    assert code == 0, out
    assert "management API on unix:" in out
    assert not sock.exists()  # removed on shutdown


async def test_daemon_freezes_its_start_up_objects(tmp_path: Path) -> None:
    """Once started, the daemon keeps start-up's objects out of later garbage
    collections (dlep.daemon.tune_gc), and says so at debug level."""
    sock = tmp_path / "modem.sock"
    cfg = _modem_toml(tmp_path / "modem.toml", free_port(), f'socket = "{sock.name}"')
    proc = await _start("--config", str(cfg), "--log-level", "debug")
    try:
        await until(sock.exists, timeout=10, what="API socket")
        await asyncio.sleep(0.2)
    finally:
        code, out = await _stop(proc)
    assert code == 0, out
    assert re.search(r"garbage collector: [1-9][0-9]* start-up objects frozen", out), out


async def test_no_api_flag(tmp_path: Path) -> None:
    sock = tmp_path / "modem.sock"
    cfg = _modem_toml(tmp_path / "modem.toml", free_port(), f'socket = "{sock}"')
    proc = await _start("--config", str(cfg), "--no-api")
    try:
        await asyncio.sleep(1.0)
        assert proc.returncode is None
        assert not sock.exists()
    finally:
        code, out = await _stop(proc)
    assert code == 0, out


async def test_api_setup_error_stops_the_daemon(tmp_path: Path) -> None:
    cfg = _modem_toml(tmp_path / "modem.toml", free_port(), 'socket = "missing/dir/m.sock"')
    proc = await _start("--config", str(cfg))
    code, out = await _stop(proc, signal_it=False)  # exits by itself
    assert code == 1
    assert "does not exist" in out and "missing/dir" in out


async def test_bad_api_config_names_the_key(tmp_path: Path) -> None:
    cfg = _modem_toml(tmp_path / "modem.toml", free_port(), 'tcp_listen = "127.0.0.1:9443"')
    proc = await _start("--config", str(cfg), "--check")
    code, out = await _stop(proc, signal_it=False)
    assert code == 2
    assert "api.tls_cert: required" in out
    assert "api.tls_key: required" in out
    assert "api.tls_client_ca: required" in out


def test_examples_configure_the_api() -> None:
    for name in ("modem.toml", "router.toml"):
        cfg = (load_modem_config if "modem" in name else load_router_config)(EXAMPLES / name)
        assert cfg.api.enabled and cfg.api.socket is None  # the role's default: dlepctl finds it
    for name in ("modem-tls.toml", "router-tls.toml"):
        text = (EXAMPLES / name).read_text()
        assert 'socket = "/tmp/dlep-' in text  # beside the plain examples
