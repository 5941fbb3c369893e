"""``dlep-modem``: the DLEP modem daemon (and simulator)."""

from __future__ import annotations

import sys
from typing import Any

from .common import run_role

DESCRIPTION = (
    "DLEP modem: answers Peer Discovery, serves router sessions, and reports the\n"
    "destinations of its configuration (optionally with simulated, changing metrics)."
)


def _summary(cfg: Any) -> str:
    m = cfg.modem
    listen = ", ".join(str(a) for a in cfg.network.listen_addresses)
    return (
        f"listening on {listen} port {cfg.network.tcp_port}, "
        f"{len(m.destinations)} destination(s), "
        f"simulation {'on' if m.simulate.enabled else 'off'}, "
        f"TLS {'on' if cfg.network.use_tls else 'off'}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-modem``."""
    from ..config import load_modem_config
    from ..daemon import ModemDaemon

    return run_role("modem", DESCRIPTION, argv, load_modem_config, _summary, ModemDaemon)


if __name__ == "__main__":
    sys.exit(main())
