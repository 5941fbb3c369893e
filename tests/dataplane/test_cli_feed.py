"""A shell script drives dlep-modem: JSON lines on its standard input, one
answer line per input line on its standard output (the log goes to stderr).
Loopback only."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from dlep.daemon import RouterDaemon
from tests.integration.conftest import REPO, free_port, modem_data, router_config, write_toml

from .conftest import until


async def test_modem_cli_reads_json_lines_from_stdin(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_toml(
        tmp_path / "modem.toml",
        modem_data(port, destinations=[], modem={"feed": {"stdin": True}}, api={"enabled": False}),
    )
    log = open(tmp_path / "modem.log", "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dlep.cli.modem",
        "--config",
        str(cfg),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        cwd=str(REPO),
    )
    router = await RouterDaemon.builder().config(router_config(port)).spawn()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await until(lambda: any(s.state == "in-session" for s in router.sessions()), timeout=20)
        lines = [
            {"op": "up", "mac": "02:00:00:00:00:09", "metrics": {"cdrt": "3M"}, "id": "a"},
            {"op": "update", "mac": "02:00:00:00:00:09", "metrics": {"cdrt": "nope"}},
            [{"op": "up", "mac": "02:00:00:00:00:0a"}, {"op": "down", "mac": "02:00:00:00:00:0b"}],
        ]
        answers = []
        for obj in lines:
            proc.stdin.write((json.dumps(obj) + "\n").encode())
            await proc.stdin.drain()
            answers.append(json.loads(await asyncio.wait_for(proc.stdout.readline(), 10)))
        assert answers[0] == {"ok": True, "results": [{"index": 0, "ok": True, "id": "a"}]}
        assert answers[1]["results"][0]["error"].startswith("records[0].metrics.cdrt:")
        assert answers[2]["ok"] is False
        assert (
            answers[2]["results"][1]["error"] == "records[1].mac: no destination 02:00:00:00:00:0b"
        )
        await until(lambda: len(router.destinations()) == 1, what="one destination at the router")
        [(_, info)] = router.destinations()
        assert info.mac_str == "02:00:00:00:00:09" and info.metrics.cdrt == 3_000_000
    finally:
        await router.shutdown()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()
