"""``dlep-router``: the DLEP router daemon."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import run_role

if TYPE_CHECKING:
    from ..config import RouterConfig
    from ..daemon import RouterDaemonBuilder

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


def _load(path: Path, *, overrides: Mapping[str, object] | None = None) -> RouterConfig:
    from ..config import load_router_config

    return load_router_config(path, overrides=overrides)


class _LazyRouterDaemon:
    """:class:`~dlep.daemon.RouterDaemon` for :func:`run_role`, imported only
    when the daemon starts: ``--help``, ``--version`` and ``--check`` never
    need the daemon (nor, but for ``--check``, pydantic and the configuration)."""

    @staticmethod
    def builder() -> RouterDaemonBuilder:
        from ..daemon import RouterDaemon

        return RouterDaemon.builder()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-router``."""
    return run_role("router", DESCRIPTION, argv, _load, _summary, _LazyRouterDaemon)


if __name__ == "__main__":
    sys.exit(main())
