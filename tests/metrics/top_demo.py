"""``python tests/metrics/top_demo.py``: ``dlepctl top`` on a canned client.

Used by the tmux test (a real terminal); metrics change at every poll so the
sparklines move. Exits with ``run_top``'s exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from dlep.cli.top import run_top


class CannedClient:
    def __init__(self) -> None:
        self.n = 0

    def list_sessions(self) -> list[dict[str, Any]]:
        return [
            {
                "id": "1",
                "peer": "127.0.0.1:8854",
                "role": "router",
                "state": "in-session",
                "uptime": 3725.0,
                "destinations": 2,
                "tx_messages": {"HEARTBEAT": 10 + self.n},
                "rx_messages": {"HEARTBEAT": 9 + self.n, "DESTINATION_UP": 2},
                "errors": {},
                "peer_type": "canned modem",
            }
        ]

    def list_destinations(self) -> list[dict[str, Any]]:
        self.n += 1
        k = self.n % 8
        return [
            {
                "session_id": "1",
                "mac": "02:00:00:00:00:01",
                "metrics": {
                    "mdrr": 54_000_000,
                    "cdrr": 10_000_000 + k * 5_000_000,
                    "latency": 2000 + k * 500,
                    "rlqr": 90,
                    "rlqt": 85,
                },
            },
            {
                "session_id": "1",
                "mac": "02:00:00:00:00:02",
                "metrics": {"mdrr": 11_000_000, "cdrr": 5_500_000, "latency": 8000, "mtu": 1400},
            },
        ]

    def watch(self) -> list[Any]:
        return []


if __name__ == "__main__":
    sys.exit(run_top(CannedClient(), refresh=0.2))
