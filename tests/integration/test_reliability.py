"""Issue 14: the reliability suite (``bench/reliability.py``) in its short form.

Runs ``bench/reliability.py --quick`` (real ``dlep-modem`` / ``dlep-router``
subprocesses on loopback: a few thousand hostile inputs against each, the
floods of items 2, 3, 9, 10 and 11, 10 kill -9 cycles of each peer) and
checks what can be counted: no daemon died, no traceback in any log, the
well-behaved session was never lost, every kill cycle re-established its
session, and the survivor holds no more fds and tasks after the cycles than
before. Never the wall-clock figures (round trips, RSS): those depend on the
machine and are printed by ``make reliability`` instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("reliability") / "report.json"
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "reliability.py"), "--quick", "--json", str(out)],
        cwd=str(REPO),
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data: dict[str, Any] = json.loads(Path(out).read_text())
    data["stdout"] = proc.stdout
    return data


def _rows(report: dict[str, Any], kill: bool) -> list[dict[str, Any]]:
    return [r for r in report["rows"] if r["name"].startswith("kill-") == kill]


def test_every_attack_ran(report: dict[str, Any]) -> None:
    names = {r["name"] for r in report["rows"]}
    assert names == {
        "fuzz-modem",
        "fuzz-router",
        "discovery",
        "churn",
        "busy-modem",
        "busy-router",
        "tables",
        "watch",
        "kill-modem",
        "kill-router",
    }, report["stdout"]
    assert all(r["ran"] for r in report["rows"]), report["stdout"]
    for r in _rows(report, kill=False):
        assert r["inputs"] > 0, r
        assert not [k for k in r["errors"] if k.startswith("harness")], r["errors"]
        assert r["lcr_n"] > 0, r  # the probe ran during the attack


def test_hostile_inputs_counted(report: dict[str, Any]) -> None:
    """A few thousand hostile inputs reached each daemon, of every kind."""
    rows = {r["name"]: r for r in report["rows"]}
    for name in ("fuzz-modem", "fuzz-router"):
        kinds = rows[name]["kinds"]
        assert rows[name]["inputs"] >= 3000, rows[name]
        assert {"mutated", "random", "oversized"} <= set(kinds), kinds
    assert rows["discovery"]["inputs"] >= 2000, rows["discovery"]


def test_no_crash_no_traceback(report: dict[str, Any]) -> None:
    for r in report["rows"]:
        assert r["alive"], (r["name"], report["stdout"])
        assert r["tracebacks"] == 0, (r["name"], report["stdout"])


def test_well_behaved_session_never_lost(report: dict[str, Any]) -> None:
    for r in _rows(report, kill=False):
        assert r["session_kept"] and r["lost"] == 0, (r["name"], report["stdout"])


def test_hostile_sessions_end_as_the_rfc_says(report: dict[str, Any]) -> None:
    """Every hostile session ended with a Session Termination (with a
    status), a close, or no reaction to inputs that were still valid:
    never an error of ours nor an unanswered connect."""
    allowed = ("termination ", "closed", "reset", "no reaction")
    for name in ("fuzz-modem", "fuzz-router"):
        (r,) = [x for x in report["rows"] if x["name"] == name]
        for ending in r["endings"]:
            kind = ending.split(": ", 1)[1]
            assert kind.startswith(allowed), (name, ending)


def test_kill_cycles_reestablish_without_leaks(report: dict[str, Any]) -> None:
    """10 kill -9 cycles of each peer: every one re-established, and the
    survivor's fds and asyncio tasks (``dlep_asyncio_tasks``) are back to
    what they were with the first session: exactly, as both are taken with
    one session up and nothing else in flight."""
    kills = _rows(report, kill=True)
    assert len(kills) == 2
    for r in kills:
        e = r["extra"]
        assert e["reestablished"] == e["cycles"] == 10, (r["name"], e)
        assert 0 < e["fds_after"] <= e["fds_before"], (r["name"], e)
        assert 0 < e["tasks_after"] <= e["tasks_before"], (r["name"], e)
