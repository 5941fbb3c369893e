"""``dlep-router``: the DLEP router daemon."""

from __future__ import annotations

import sys
from typing import Any

from .common import run_role

DESCRIPTION = (
    "DLEP router: discovers modems (RFC 8175 Peer Discovery) or connects to static\n"
    "peers, and logs every session and destination event with its metrics."
)


def _summary(cfg: Any) -> str:
    r = cfg.router
    peers = ", ".join(f"{p.address}:{p.port}" for p in r.static_peers) or "none"
    return (
        f"discovery {'on' if r.discovery else 'off'}, static peers {peers}, "
        f"heartbeat {cfg.timers.heartbeat_interval_ms} ms, "
        f"TLS {'on' if cfg.network.use_tls else 'off'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-router``."""
    from ..config import load_router_config
    from ..daemon import RouterDaemon

    return run_role("router", DESCRIPTION, argv, load_router_config, _summary, RouterDaemon)


if __name__ == "__main__":
    sys.exit(main())
