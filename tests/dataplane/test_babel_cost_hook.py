"""examples/hooks/babel-cost.py against a stand-in for babeld's local socket:
the cost per interface, and --shared for an interface reaching several
destinations (the best one counts; one going away does not cut the others)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOOK = Path(__file__).resolve().parents[2] / "examples" / "hooks" / "babel-cost.py"
B, C = "02:e0:00:00:00:02", "02:e0:00:00:00:03"


class FakeBabeld:
    """Answers like babeld's read-write local socket and records each line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"BABEL 1.0\nversion babeld-1.12.1\nok\n")
                buf = b""
                while chunk := conn.recv(4096):
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self.lines.append(line.decode())
                        conn.sendall(b"ok\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def babeld(tmp_path: Path) -> Iterator[FakeBabeld]:
    fake = FakeBabeld(tmp_path / "babel.sock")
    yield fake
    fake.close()


def hook(fake: FakeBabeld, event: str, mac: str, metric: int, *extra: str) -> None:
    change: dict[str, Any] = {"event": event, "destination": {"mac": mac}, "route_metric": metric}
    argv = [sys.executable, str(HOOK), "--socket", str(fake.path), "--interface", "radio0"]
    argv += ["--state", str(fake.path.parent / "state"), *extra]
    res = subprocess.run(
        argv, input=json.dumps(change), capture_output=True, text=True, timeout=20, check=False
    )
    assert res.returncode == 0, res.stderr


def test_one_destination_per_interface(babeld: FakeBabeld) -> None:
    hook(babeld, "up", C, 26)
    hook(babeld, "update", C, 26)  # unchanged: babeld is left alone
    hook(babeld, "down", C, 26)
    assert babeld.lines == [
        "flush interface radio0",
        "interface radio0 rxcost 104",
        "flush interface radio0",
        "interface radio0 rxcost 65535",
    ]


def test_shared_interface_takes_the_best_and_keeps_its_options(babeld: FakeBabeld) -> None:
    shared = ("--shared", "--hysteresis", "50", "--options", "type wireless  rtt-max 70")
    hook(babeld, "up", B, 80, *shared)
    hook(babeld, "up", C, 90, *shared)  # B is better: no change
    hook(babeld, "update", C, 430, *shared)  # C degrades: B still the best
    hook(babeld, "down", C, 430, *shared)  # C goes: B is still there
    hook(babeld, "update", B, 100, *shared)  # within 50 % of 320: left alone
    hook(babeld, "update", B, 200, *shared)
    hook(babeld, "down", B, 200, *shared)  # nobody left
    assert [line for line in babeld.lines if not line.startswith("flush")] == [
        "interface radio0 type wireless rtt-max 70 rxcost 320",
        "interface radio0 type wireless rtt-max 70 rxcost 800",
        "interface radio0 type wireless rtt-max 70 rxcost 65535",
    ]
