"""The collector on fake daemon snapshots (no sockets), the [metrics]
configuration, and the endpoint's lifecycle in ``dlep-modem``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from dlep.api.metrics import DaemonCollector, MetricsServer, start_metrics_server
from dlep.config import ConfigError, parse_modem_config, parse_router_config
from dlep.daemon import SessionInfo
from dlep.fsm import DestinationInfo, Metrics, Role
from dlep.wire import parse_mac

from .conftest import V4, free_port, samples, scrape, value

REPO = Path(__file__).resolve().parents[2]


def info(sid: str, state: str = "in-session", **kw: Any) -> SessionInfo:
    base: dict[str, Any] = {
        "id": sid,
        "peer": f"192.0.2.{sid}:854",
        "role": "router",
        "state": state,
        "tls": False,
        "peer_type": "fake",
        "secured_medium": False,
        "extensions": (),
        "heartbeat_ms": 1000,
        "peer_heartbeat_ms": 1000,
        "started_at": 1000.0,
        "up_since": 1001.0 if state == "in-session" else None,
        "destinations": 0,
        "session_metrics": Metrics(mdrr=10, cdrr=5),
    }
    base.update(kw)
    return SessionInfo(**base)


class FakeDaemon:
    """Just what the collector reads."""

    role = Role.ROUTER

    def __init__(
        self, sessions: list[SessionInfo], dests: list[tuple[str, DestinationInfo]]
    ) -> None:
        self._sessions = sessions
        self._dests = dests
        self.heartbeat_timeouts = {"local": 2, "peer": 1}
        self.sessions_ended: dict[str, int] = {}
        self.ended_errors: dict[str, int] = {}
        self.session_flaps: dict[str, int] = {}
        self.connect_failures: dict[str, int] = {}
        self.gtsm_drops: int | None = None
        self.bound_refusals: dict[str, int] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.calls: list[str] = []
        self.extension_names: dict[int, str] = {}

    def extension_gauges(self) -> tuple[list[Any], list[Any]]:
        return [], []

    def subscriber_events(self) -> dict[str, int]:
        return {"dropped": 5, "coalesced": 7}

    def sessions(self) -> list[SessionInfo]:
        self.calls.append(threading.current_thread().name)
        return list(self._sessions)

    def destinations(self) -> list[tuple[str, DestinationInfo]]:
        return list(self._dests)


def parse(collector: DaemonCollector) -> dict[str, Any]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    text = generate_latest(reg).decode()
    return {m.name: m for m in text_string_to_metric_families(text)}


def mac(n: int) -> bytes:
    return parse_mac(f"02:00:00:00:00:{n:02x}")


def test_errors_states_and_units() -> None:
    sessions = [
        info("1", errors={"INVALID_MESSAGE": 2, "UNEXPECTED_MESSAGE": 1}, destinations=1),
        info("2", state="initializing"),
    ]
    dests = [("1", DestinationInfo(mac(1), Metrics(latency=1500, resources=55, mtu=9000)))]
    fake = FakeDaemon(sessions, dests)
    fake.sessions_ended = {"TIMED_OUT": 3, "NONE": 1}
    fake.ended_errors = {"INVALID_MESSAGE": 5, "INVALID_DATA": 1}
    fams = parse(DaemonCollector(fake))  # type: ignore[arg-type]
    assert value(fams, "dlep_errors_total", session="1", status="INVALID_MESSAGE") == 2
    # Daemon-wide: ended sessions plus live ones.
    assert value(fams, "dlep_protocol_errors_total", status="INVALID_MESSAGE") == 7
    assert value(fams, "dlep_protocol_errors_total", status="INVALID_DATA") == 1
    assert value(fams, "dlep_protocol_errors_total", status="UNEXPECTED_MESSAGE") == 1
    assert value(fams, "dlep_sessions_ended_total", status="TIMED_OUT") == 3
    assert value(fams, "dlep_sessions_ended_total", status="NONE") == 1
    assert value(fams, "dlep_errors_total", session="1", status="UNEXPECTED_MESSAGE") == 1
    assert value(fams, "dlep_session_up", session="1") == 1
    assert value(fams, "dlep_session_up", session="2") == 0
    assert value(fams, "dlep_session_state", session="2", state="initializing") == 1
    assert value(fams, "dlep_sessions", state="initializing") == 1
    assert value(fams, "dlep_sessions", state="in-session") == 1
    # Not up: no up_since and no session-wide metric gauges.
    assert samples(fams, "dlep_session_up_since_seconds", session="2") == []
    assert samples(fams, "dlep_session_mdrr_bytes_per_second", session="2") == []
    assert value(fams, "dlep_session_mdrr_bytes_per_second", session="1") == 10 / 8
    assert value(fams, "dlep_heartbeat_timeouts_total", by="local") == 2
    assert value(fams, "dlep_heartbeat_timeouts_total", by="peer") == 1
    assert value(fams, "dlep_subscriber_events_total", fate="dropped") == 5
    assert value(fams, "dlep_subscriber_events_total", fate="coalesced") == 7
    # Units: latency us -> s, percent -> ratio; unset metrics have no sample.
    lab = {"session": "1", "peer": "192.0.2.1:854", "mac": "02:00:00:00:00:01"}
    assert value(fams, "dlep_destination_latency_seconds", **lab) == 0.0015
    assert value(fams, "dlep_destination_resources_ratio", **lab) == 0.55
    assert value(fams, "dlep_destination_mtu_bytes", **lab) == 9000
    assert samples(fams, "dlep_destination_cdrr_bytes_per_second") == []
    # Types as Prometheus sees them.
    assert fams["dlep_messages"].type == "counter"
    assert fams["dlep_errors"].type == "counter"
    assert fams["dlep_destination_latency_seconds"].type == "gauge"
    assert fams["dlep_info"].type == "gauge"  # info metrics are gauges in text format


def test_cap_order_is_numeric_by_session_then_mac() -> None:
    sessions = [info(str(i)) for i in (2, 10, 9)]
    dests = [
        (sid, DestinationInfo(mac(n), Metrics(cdrr=n)))
        for sid in ("10", "9", "2")
        for n in (3, 1, 2)
    ]
    fams = parse(
        DaemonCollector(FakeDaemon(sessions, dests), max_destinations=4)  # type: ignore[arg-type]
    )
    got = [
        (lab["session"], lab["mac"])
        for lab, _ in samples(fams, "dlep_destination_cdrr_bytes_per_second")
    ]
    assert got == [
        ("2", "02:00:00:00:00:01"),
        ("2", "02:00:00:00:00:02"),
        ("2", "02:00:00:00:00:03"),
        ("9", "02:00:00:00:00:01"),
    ]
    assert value(fams, "dlep_metrics_destinations_dropped") == 5
    with pytest.raises(ValueError):
        DaemonCollector(FakeDaemon([], []), max_destinations=-1)  # type: ignore[arg-type]


async def test_snapshot_is_taken_on_the_event_loop() -> None:
    fake = FakeDaemon([info("1")], [])
    fake.loop = asyncio.get_running_loop()
    server = MetricsServer(fake, V4, 0, max_destinations=10)  # type: ignore[arg-type]
    server.start()
    try:
        fams = await asyncio.to_thread(scrape, server.url)
    finally:
        await server.aclose()
    assert value(fams, "dlep_session_up", session="1") == 1
    # The scrape ran in the HTTP server's thread, the snapshot on the loop's.
    assert fake.calls == [threading.current_thread().name]
    # Standard process metrics come along.
    assert samples(fams, "process_resident_memory_bytes") or sys.platform != "linux"
    # Stopped: the port no longer answers.
    with pytest.raises(OSError), socket.create_connection((V4, server.port), timeout=2):
        pass


async def test_bind_failure_is_an_oserror() -> None:
    fake = FakeDaemon([], [])
    with socket.socket() as s:
        s.bind((V4, 0))
        s.listen()
        port = s.getsockname()[1]
        server = MetricsServer(fake, V4, port)  # type: ignore[arg-type]
        with pytest.raises(OSError):
            server.start()


async def test_off_by_default() -> None:
    cfg = parse_router_config({})
    assert cfg.metrics.listen is None and cfg.metrics.max_destinations == 1000

    class D:
        pass

    d = D()
    d.cfg = cfg  # type: ignore[attr-defined]
    assert await start_metrics_server(d) is None  # type: ignore[arg-type]


def test_config_section() -> None:
    cfg = parse_modem_config({"metrics": {"listen": "127.0.0.1:9854", "max_destinations": 5}})
    assert cfg.metrics.address() == ("127.0.0.1", 9854)
    assert cfg.metrics.max_destinations == 5
    cfg6 = parse_router_config({"metrics": {"listen": "[::1]:9854"}})
    assert cfg6.metrics.address() == ("::1", 9854)
    assert cfg6.metrics.listen == "[::1]:9854"
    bad = {
        "localhost:9854": "not an IP address",
        "127.0.0.1": "expected 'address:port'",
        "::1:9854": "as '[addr]:port'",
        "127.0.0.1:70000": "port 0-65535",
    }
    for text, why in bad.items():
        with pytest.raises(ConfigError) as err:
            parse_router_config({"metrics": {"listen": text}})
        assert err.value.keys == ["metrics.listen"] and why in str(err.value), str(err.value)
    for cap in (-1, "10", 1.5):
        with pytest.raises(ConfigError) as err:
            parse_router_config({"metrics": {"max_destinations": cap}})
        assert err.value.keys == ["metrics.max_destinations"]
    with pytest.raises(ConfigError) as err:
        parse_router_config({"metrics": {"port": 1}})
    assert err.value.keys == ["metrics.port"]


def _toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, body in data.items():
        lines.append(f"[{section}]")
        for k, v in body.items():
            if isinstance(v, bool):
                lines.append(f"{k} = {'true' if v else 'false'}")
            elif isinstance(v, str):
                lines.append(f'{k} = "{v}"')
            elif isinstance(v, list):
                lines.append(f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]")
            else:
                lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def _modem_file(tmp_path: Path, listen: str) -> Path:
    cfg = tmp_path / "modem.toml"
    cfg.write_text(
        _toml(
            {
                "network": {"listen_addresses": [V4], "tcp_port": free_port()},
                "metrics": {"listen": listen},
                "logging": {"level": "info"},
                # No management API: its default socket could clash with a
                # daemon of another test run.
                "api": {"enabled": False},
            }
        )
    )
    return cfg


def _run(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "dlep.cli.modem", "--config", str(cfg)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO),
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )


def test_daemon_serves_and_stops_the_endpoint(tmp_path: Path) -> None:
    log = tmp_path / "modem.log"
    proc = _run(_modem_file(tmp_path, f"{V4}:0"), log)
    try:
        deadline = time.monotonic() + 15
        url = None
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            m = re.search(r"Prometheus metrics on (http://\S+)", log.read_text())
            url = m.group(1) if m else None
            time.sleep(0.05)
        assert url, log.read_text()
        fams = scrape(url)
        assert value(fams, "dlep_info", role="modem") == 1
        assert value(fams, "dlep_destinations") == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, log.read_text()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(OSError), socket.create_connection((V4, port), timeout=2):
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_daemon_exits_when_the_endpoint_cannot_bind(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind((V4, 0))
        s.listen()
        port = s.getsockname()[1]
        log = tmp_path / "modem.log"
        proc = _run(_modem_file(tmp_path, f"{V4}:{port}"), log)
        try:
            assert proc.wait(timeout=15) == 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert f"metrics endpoint {V4}:{port}" in log.read_text()
