"""SIGHUP reloads the configuration of a running ``dlep-modem`` / ``dlep-router``:
the live-changeable parts are applied without dropping the session, the other
changed keys are named in one log line, and a broken file changes nothing."""

from __future__ import annotations

import asyncio
import signal
import urllib.request
from pathlib import Path

import pytest

from dlep.config import parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon, SessionEvent
from dlep.fsm import SessionTerminated

from .conftest import DESTINATIONS, MAC1, MAC2, SESSION_METRICS, V4, free_port, until
from .daemon_proc import DaemonProc

pytestmark = pytest.mark.timeout(60)


def _modem_toml(port: int, *, level: str = "info", hb: int = 200, macs: int = 1) -> str:
    dests = "".join(
        f"""
[[modem.destinations]]
mac = "02:00:00:00:00:0{i + 1}"
metrics = {{ cdrr = "{10 + i}M", mdrr = "54M" }}
"""
        for i in range(macs)
    )
    return f"""
[network]
listen_addresses = ["{V4}"]
tcp_port = {port}
discovery_v4 = false
discovery_v6 = false

[timers]
allow_fast_timers = true
heartbeat_interval_ms = {hb}
missed_heartbeats = 4

[logging]
level = "{level}"

[api]
enabled = false

[modem]
session_metrics = {{ mdrr = "100M", mdrt = "100M", cdrr = "50M", cdrt = "50M", latency = "1ms" }}
{dests}
"""


def _terminations(events: list[object]) -> list[object]:
    return [
        e for e in events if isinstance(e, SessionEvent) and isinstance(e.event, SessionTerminated)
    ]


async def _collect(sub: object, into: list[object]) -> None:
    async for ev in sub:  # type: ignore[attr-defined]
        into.append(ev)


async def test_sighup_reloads_the_modem_without_dropping_the_session(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "modem.toml"
    cfg.write_text(_modem_toml(port))
    proc = await DaemonProc.start("modem", cfg)
    rcfg = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": {
                "allow_fast_timers": True,
                "heartbeat_interval_ms": 200,
                "missed_heartbeats": 4,
                "reconnect_interval_ms": 100,
            },
            "router": {"discovery": False, "static_peers": [f"{V4}:{port}"]},
        }
    )
    router = await RouterDaemon.builder().config(rcfg).spawn()
    events: list[object] = []
    reader = asyncio.ensure_future(_collect(router.subscribe(), events))
    try:
        macs = lambda: {info.mac_str for _, info in router.destinations()}  # noqa: E731
        await until(lambda: macs() == {MAC1}, timeout=10, what="the modem's destination")
        [session] = router.sessions()

        # Live: the log level, a new destination. Not live: the heartbeat interval.
        mark = len(proc.lines)
        cfg.write_text(_modem_toml(port, level="debug", hb=300, macs=2))
        proc.send(signal.SIGHUP)
        await until(lambda: macs() == {MAC1, MAC2}, timeout=10, what="the new destination")
        line = await proc.wait_for("only applied at a restart", after=mark)
        assert "timers.heartbeat_interval_ms" in line
        assert "logging.level" not in line and "modem.destinations" not in line
        applied = await proc.wait_for("configuration reloaded: applied", after=mark)
        assert "logging.level" in applied and "modem.destinations (1 changed)" in applied
        # The debug level is in force: the reload's own debug line shows.
        await proc.wait_for("DEBUG", after=mark)

        # A destination removed from the file goes down; MAC1 is left alone.
        cfg.write_text(_modem_toml(port, level="debug", hb=300, macs=1))
        proc.send(signal.SIGHUP)
        await until(lambda: macs() == {MAC1}, timeout=10, what="the destination gone")

        # A broken file: the daemon keeps running with what it has, and says which key.
        mark = len(proc.lines)
        cfg.write_text(
            _modem_toml(port).replace("heartbeat_interval_ms = 200", "heartbeat_interval_ms = -5")
        )
        proc.send(signal.SIGHUP)
        line = await proc.wait_for("configuration reload failed", after=mark)
        assert "timers.heartbeat_interval_ms" in line
        await asyncio.sleep(0.5)
        assert proc.proc.returncode is None
        assert macs() == {MAC1}

        [after] = router.sessions()
        assert after.id == session.id and after.up_since == session.up_since
        assert after.state == "in-session"
        assert _terminations(events) == []
    finally:
        code = await proc.stop()
        await router.shutdown()
        reader.cancel()
    assert code == 0, proc.output
    assert "Traceback" not in proc.output


def _router_toml(peers: list[int], *, level: str = "info", sock: Path) -> str:
    listed = ", ".join(f'"{V4}:{p}"' for p in peers)
    return f"""
[network]
tcp_port = 1

[timers]
allow_fast_timers = true
heartbeat_interval_ms = 200
missed_heartbeats = 4
reconnect_interval_ms = 100

[logging]
level = "{level}"

[api]
socket = "{sock}"

[router]
discovery = false
static_peers = [{listed}]
"""


async def _modem(port: int) -> ModemDaemon:
    cfg = parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": port},
            "timers": {
                "allow_fast_timers": True,
                "heartbeat_interval_ms": 200,
                "missed_heartbeats": 4,
            },
            "modem": {"session_metrics": dict(SESSION_METRICS), "destinations": DESTINATIONS},
        }
    )
    return await ModemDaemon.builder().config(cfg).spawn()


def _up(modem: ModemDaemon) -> list[str]:
    return [s.id for s in modem.sessions() if s.state == "in-session"]


async def test_sighup_changes_the_routers_static_peers(tmp_path: Path) -> None:
    pa, pb = free_port(), free_port()
    a, b = await _modem(pa), await _modem(pb)
    events: list[object] = []
    reader = asyncio.ensure_future(_collect(a.subscribe(), events))
    cfg = tmp_path / "router.toml"
    sock = tmp_path / "router.sock"
    cfg.write_text(_router_toml([pa], sock=sock))
    proc = await DaemonProc.start("router", cfg)
    try:
        await until(lambda: len(_up(a)) == 1, timeout=10, what="session with modem A")
        [sid] = _up(a)

        # Add modem B; change the API socket (not live).
        mark = len(proc.lines)
        cfg.write_text(_router_toml([pa, pb], sock=tmp_path / "other.sock"))
        proc.send(signal.SIGHUP)
        await until(lambda: len(_up(b)) == 1, timeout=10, what="session with modem B")
        line = await proc.wait_for("only applied at a restart", after=mark)
        assert "api.socket" in line
        assert "router.static_peers (+1 -0)" in await proc.wait_for("applied", after=mark)
        assert _up(a) == [sid] and _terminations(events) == []
        assert sock.exists()  # the API keeps its socket until a restart

        # Drop modem A: its session ends with Session Termination, B's stays.
        [sid_b] = _up(b)
        cfg.write_text(_router_toml([pb], sock=sock))
        proc.send(signal.SIGHUP)
        await until(lambda: not a.sessions(), timeout=10, what="session with A ended")
        [term] = _terminations(events)
        assert term.event.by_peer and term.event.status == 255  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)  # no reconnect to A
        assert not a.sessions() and _up(b) == [sid_b]
    finally:
        code = await proc.stop()
        reader.cancel()
        await a.shutdown()
        await b.shutdown()
    assert code == 0, proc.output
    assert not sock.exists()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://{V4}:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def test_sighup_moves_the_metrics_endpoint(tmp_path: Path) -> None:
    port, pa, pb = free_port(), free_port(), free_port()
    cfg = tmp_path / "modem.toml"
    cfg.write_text(_modem_toml(port) + f'\n[metrics]\nlisten = "{V4}:{pa}"\n')
    proc = await DaemonProc.start("modem", cfg)
    try:
        await proc.wait_for(f"Prometheus metrics on http://{V4}:{pa}/metrics")
        assert "dlep_info" in await asyncio.to_thread(_scrape, pa)
        mark = len(proc.lines)
        cfg.write_text(
            _modem_toml(port)
            + f'\n[metrics]\nlisten = "{V4}:{pb}"\n'
            + "\n[modem.simulate]\nenabled = true\ninterval_ms = 50\n"
        )
        proc.send(signal.SIGHUP)
        line = await proc.wait_for("configuration reloaded: applied", after=mark)
        assert "metrics" in line and "modem.simulate" in line
        assert "dlep_info" in await asyncio.to_thread(_scrape, pb)
        with pytest.raises(OSError):
            await asyncio.to_thread(_scrape, pa)
    finally:
        code = await proc.stop()
    assert code == 0, proc.output
    assert "Traceback" not in proc.output


async def test_set_simulation_brings_back_what_it_took_down() -> None:
    """A reload that stops the simulator: destinations it had flapped down
    come back up at the router, in the same session."""
    port = free_port()
    sim = {"enabled": True, "interval_ms": 20, "flap_probability": 1.0, "down_ms": 60_000}
    mcfg = parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": port},
            "timers": {"allow_fast_timers": True, "heartbeat_interval_ms": 200},
            "modem": {
                "session_metrics": dict(SESSION_METRICS),
                "destinations": DESTINATIONS,
                "simulate": sim,
            },
        }
    )
    rcfg = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": {"allow_fast_timers": True, "heartbeat_interval_ms": 200},
            "router": {"discovery": False, "static_peers": [f"{V4}:{port}"]},
        }
    )
    async with (
        await ModemDaemon.builder().config(mcfg).spawn() as modem,
        await RouterDaemon.builder().config(rcfg).spawn() as router,
    ):
        await until(lambda: router.sessions(), timeout=5, what="session")
        await until(lambda: all(not up for *_, up in modem.destination_table()), what="all down")
        await until(lambda: not router.destinations(), what="none at the router")
        [session] = router.sessions()
        off = parse_modem_config({"modem": {"simulate": {"enabled": False}}}).modem.simulate
        await modem.set_simulation(off)
        macs = lambda: {info.mac_str for _, info in router.destinations()}  # noqa: E731
        await until(lambda: macs() == {MAC1, MAC2}, what="destinations back")
        assert [s.id for s in router.sessions()] == [session.id]
