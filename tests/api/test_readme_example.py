"""The README's library example, run as a program against a modem and
stopped with Ctrl-C (SIGINT): it exits 0 without a traceback, and the modem
gets Session Termination (status 255, Shutting Down) from it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from dlep.config import parse_modem_config
from dlep.daemon import ModemDaemon, SessionEvent
from dlep.fsm import SessionTerminated
from dlep.wire import StatusCode

from .conftest import DESTINATIONS, SESSION_METRICS, V4, free_port, until

pytestmark = pytest.mark.timeout(60)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    """The first Python block after "## Using the library"."""
    text = README.read_text()
    section = text[text.index("## Using the library") :]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m is not None
    return m.group(1)


async def test_readme_example_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    code = readme_example()
    assert "127.0.0.1:8854" in code
    script = tmp_path / "example.py"
    script.write_text(code.replace("127.0.0.1:8854", f"{V4}:{port}"))
    cfg = parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": port},
            "modem": {"session_metrics": dict(SESSION_METRICS), "destinations": DESTINATIONS},
        }
    )
    modem = await ModemDaemon.builder().config(cfg).spawn()
    events: list[object] = []
    sub = modem.subscribe()

    async def collect() -> None:
        async for ev in sub:
            events.append(ev)

    reader = asyncio.ensure_future(collect())
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        # The example prints the destinations it learns: the session is up.
        first = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert b"02:00:00:00:00:0" in first, first
        await until(lambda: any(s.state == "in-session" for s in modem.sessions()), timeout=5)
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await until(lambda: not modem.sessions(), timeout=5, what="the session closed")
        await modem.shutdown()
        reader.cancel()
    assert proc.returncode == 0, err.decode()
    assert "Traceback" not in err.decode(), err.decode()
    ends = [
        e.event
        for e in events
        if isinstance(e, SessionEvent) and isinstance(e.event, SessionTerminated)
    ]
    assert len(ends) == 1, events
    assert ends[0].by_peer and ends[0].status == StatusCode.SHUTTING_DOWN
