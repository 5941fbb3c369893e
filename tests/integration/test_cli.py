"""``dlep-router`` and ``dlep-modem`` as programs: --check, --help, errors,
two processes finding each other, JSON logs, clean exit on signals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    EXAMPLES,
    REPO,
    V4,
    Certs,
    Procs,
    modem_data,
    peer_str,
    router_data,
    write_toml,
)

pytestmark = pytest.mark.timeout(60)

FLAGS = ("--config", "--interface", "--log-level", "--log-format", "--no-tls", "--check")


def run(role: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"dlep.cli.{role}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
    )


def role_of(path: Path) -> str:
    return "modem" if path.name.startswith("modem") else "router"


# Daemon configurations only: examples/ also holds dlep-emu scenarios (with [[nodes]]),
# which tests/emu/test_scenario.py checks.
EXAMPLE_FILES = sorted(p for p in EXAMPLES.glob("*.toml") if "[[nodes]]" not in p.read_text())


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {"router.toml", "modem.toml", "router-tls.toml", "modem-tls.toml"} <= names


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
def test_check_examples(example: Path, tmp_path: Path, certs: Certs) -> None:
    """Every example passes --check. The TLS ones need examples/certs/, which
    is not committed: they are checked as copies beside trustme certificates."""
    role = role_of(example)
    path = example
    if "tls" in example.stem:
        path = tmp_path / example.name
        shutil.copy(example, path)
        d = tmp_path / "certs"
        d.mkdir()
        shutil.copy(certs.ca, d / "ca.crt")
        for who in ("modem", "router"):
            shutil.copy(getattr(certs, f"{who}_cert"), d / f"{who}.crt")
            shutil.copy(getattr(certs, f"{who}_key"), d / f"{who}.key")
    res = run(role, "--config", str(path), "--check")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, res.stdout
    assert lines[0].startswith(f"{path}: OK ({role};"), lines[0]
    assert ("TLS on" if "tls" in example.stem else "TLS off") in lines[0]
    assert res.stderr == ""


def test_check_tls_example_with_no_tls() -> None:
    """--no-tls is a master switch: the [tls] files are not even checked."""
    res = run("modem", "--config", str(EXAMPLES / "modem-tls.toml"), "--check", "--no-tls")
    assert res.returncode == 0, res.stderr
    assert "TLS off" in res.stdout


def _bad(tmp_path: Path, role: str, data: dict[str, Any]) -> Path:
    return write_toml(tmp_path / f"bad-{role}.toml", data)


BAD_CASES: dict[str, tuple[str, Callable[[], dict[str, Any]], str, str]] = {
    "unknown-key": (
        "router",
        lambda: _merge_router({"router": {"statik_peers": []}}),
        "router.statik_peers",
        "unknown key",
    ),
    "bad-mac": (
        "modem",
        lambda: modem_data(8854, destinations=[{"mac": "02:00:00:00:00"}]),
        "modem.destinations[0].mac",
        "not an EUI-48 or EUI-64 MAC address",
    ),
    "cdrr-above-mdrr": (
        "modem",
        lambda: modem_data(
            8854,
            destinations=[{"mac": "02:00:00:00:00:01", "metrics": {"mdrr": "10M", "cdrr": "20M"}}],
        ),
        "modem.destinations[0].metrics.cdrr",
        "exceeds mdrr",
    ),
    "unknown-key-modem": (
        "modem",
        lambda: modem_data(8854, network={"tcp_prot": 1}),
        "network.tcp_prot",
        "did you mean 'tcp_port'",
    ),
}


def _merge_router(extra: dict[str, Any]) -> dict[str, Any]:
    data = router_data(8854)
    data["router"] = {**data["router"], **extra["router"]}
    return data


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_check_bad_config(case: str, tmp_path: Path) -> None:
    role, make, key, fragment = BAD_CASES[case]
    path = _bad(tmp_path, role, make())
    res = run(role, "--config", str(path), "--check")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert res.stdout == ""
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(f"{path}: {key}: ")]
    assert lines, res.stderr
    assert fragment in lines[0], lines[0]
    # Without --check the daemon refuses to start the same way.
    res2 = run(role, "--config", str(path))
    assert res2.returncode == 2
    assert f"{path}: {key}: " in res2.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    res = run("router", "--config", str(missing), "--check")
    assert res.returncode == 2
    assert str(missing) in res.stderr


@pytest.mark.parametrize("role", ["router", "modem"])
def test_help(role: str) -> None:
    res = run(role, "--help")
    assert res.returncode == 0
    out = res.stdout
    assert out.startswith(f"usage: dlep-{role}")
    for flag in (*FLAGS, "--version", "--help"):
        assert flag in out, flag
    res = run(role, "--version")
    assert res.returncode == 0 and res.stdout.startswith(f"dlep-{role} ")
    res = run(role)  # --config is required
    assert res.returncode == 2 and "--config" in res.stderr


def test_console_scripts_installed() -> None:
    bindir = Path(sys.executable).parent
    for role in ("router", "modem"):
        exe = bindir / f"dlep-{role}"
        if not exe.exists():
            pytest.skip(f"{exe} not installed (no console scripts in this environment)")
        res = subprocess.run(
            [str(exe), "--config", str(EXAMPLES / f"{role}.toml"), "--check"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 0, res.stderr


def _pair(port: int, fmt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    log = {"format": fmt, "level": "info"}
    return (modem_data(port, logging=log), router_data(port, logging=log))


async def test_two_processes_text_logs(procs: Procs, port: int) -> None:
    mdata, rdata = _pair(port, "text")
    modem = procs.start("modem", mdata, name="modem")
    await modem.wait_log("modem listening on")
    router = procs.start("router", rdata, name="router")
    peer = peer_str(V4, port)
    up = await router.wait_log(f"session 1 ({peer}) up: peer 'test modem'")
    assert "router INFO" in up
    d1 = await router.wait_log("destination 02:00:00:00:00:01 up")
    assert "cdrr=36 Mb/s" in d1 and "latency=2 ms" in d1 and "10.0.0.11" in d1, d1
    d2 = await router.wait_log("destination 02:00:00:00:00:02 up")
    assert "192.168.12.0/24" in d2, d2
    await modem.wait_log("up: peer 'test router'")

    router.signal(signal.SIGTERM)
    assert await router.wait_exit(5) == 0
    await router.wait_log("router stopped")
    ended = await modem.wait_log("ended (SHUTTING_DOWN, by peer)")
    assert "2 destination(s) gone" in ended
    modem.signal(signal.SIGTERM)
    assert await modem.wait_exit(5) == 0
    await modem.wait_log("modem stopped")


async def test_two_processes_json_logs(procs: Procs, port: int) -> None:
    mdata, rdata = _pair(port, "text")
    # --log-format overrides the file.
    modem = procs.start("modem", mdata, "--log-format", "json", name="modem")
    router = procs.start("router", rdata, "--log-format", "json", name="router")
    await router.wait_log("destination 02:00:00:00:00:02 up", timeout=20)

    modem.signal(signal.SIGTERM)  # this time the modem goes first
    assert await modem.wait_exit(5) == 0
    await router.wait_log("ended (SHUTTING_DOWN, by peer)")
    router.signal(signal.SIGINT)
    assert await router.wait_exit(5) == 0

    for proc, logger in ((modem, "dlep.modem"), (router, "dlep.router")):
        records = [json.loads(line) for line in proc.text().splitlines() if line.strip()]
        assert records
        for rec in records:
            assert {"ts", "time", "level", "logger", "msg"} <= rec.keys(), rec
        msgs = [r["msg"] for r in records if r["logger"] == logger]
        assert any(" up: peer " in m for m in msgs), msgs
        assert any(m.endswith("stopped") for m in msgs), msgs


async def test_port_in_use_exits_1(procs: Procs, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind((V4, port))
        blocker.listen(1)
        modem = procs.start("modem", modem_data(port), name="modem")
        assert await modem.wait_exit(15) == 1
    assert "could not listen" in modem.text()


def _tls_modem(tmp_path: Path, certs: Certs, ca: Path) -> Path:
    data = modem_data(8854, network={"use_tls": True})
    data["tls"] = certs.modem_tls(ca=str(ca), require_client_cert=True)
    return write_toml(tmp_path / "tls-modem.toml", data)


def test_check_loads_the_tls_files(tmp_path: Path, certs: Certs) -> None:
    """--check loads the certificates as the daemon would: a CA that is not
    PEM, or a key of another certificate, fails there and names the key
    (before, --check said OK and only the start failed)."""
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("this is not a certificate\n")
    res = run("modem", "--config", str(_tls_modem(tmp_path, certs, not_pem)), "--check")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "tls.ca" in res.stderr and res.stdout == "", res.stderr
    data = router_data(8854, network={"use_tls": True})
    data["tls"] = certs.router_tls(client_cert=True) | {"key": str(certs.modem_key)}
    path = write_toml(tmp_path / "tls-router.toml", data)
    res = run("router", "--config", str(path), "--check")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "tls.cert/tls.key" in res.stderr, res.stderr
    res = run("modem", "--config", str(_tls_modem(tmp_path, certs, certs.ca)), "--check")
    assert res.returncode == 0, res.stderr


def test_check_api_socket_directory(tmp_path: Path) -> None:
    """An api.socket in a directory that does not exist (or that is a
    directory itself) fails --check naming api.socket."""
    for sock, why in (
        (tmp_path / "missing" / "r.sock", "does not exist"),
        (tmp_path, "is a directory"),
    ):
        data = router_data(8854, api={"socket": str(sock)})
        path = write_toml(tmp_path / "api-router.toml", data)
        res = run("router", "--config", str(path), "--check")
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert "api.socket" in res.stderr and why in res.stderr, res.stderr
