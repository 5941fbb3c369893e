"""`make demo` (python -m dlep.cli.demo): a modem and a router on loopback,
stopped with both daemons whatever signal ends the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import EXAMPLES, free_port

pytestmark = pytest.mark.timeout(90)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_demo_runs_and_takes_its_daemons_down(tmp_path: Path, sig: signal.Signals) -> None:
    """The demo shows destinations and changing metrics; on SIGTERM/SIGHUP
    (kill, timeout, a closed terminal) as on Ctrl-C it stops both daemons,
    which run in sessions of their own (before the fix they outlived it)."""
    port = str(free_port())
    for name in ("modem", "router"):
        text = (EXAMPLES / f"{name}.toml").read_text().replace("8854", port)
        (tmp_path / f"{name}.toml").write_text(text)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    out = tmp_path / "demo.log"
    with out.open("w") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "dlep.cli.demo", "--examples", str(tmp_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "update:" not in out.read_text():
            assert demo.poll() is None, out.read_text()
            time.sleep(0.2)
        text = out.read_text()
        assert "session 1" in text and "update:" in text, text
        children = subprocess.run(
            ["pgrep", "-f", "--", f"--config {tmp_path}/"], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2, children
        demo.send_signal(sig)
        assert demo.wait(timeout=20) == 0, out.read_text()
        assert "demo stopped cleanly" in out.read_text()
        for pid in children:
            assert not _alive(int(pid)), f"daemon {pid} outlived the demo"
    finally:
        if demo.poll() is None:
            demo.kill()
        subprocess.run(["pkill", "-f", "--", f"--config {tmp_path}/"], check=False)
