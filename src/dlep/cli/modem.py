"""``dlep-modem``: the DLEP modem daemon (and simulator)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import run_role

if TYPE_CHECKING:
    from ..config import ModemConfig
    from ..daemon import ModemDaemonBuilder

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


def _load(path: Path, *, overrides: Mapping[str, object] | None = None) -> ModemConfig:
    from ..config import load_modem_config

    return load_modem_config(path, overrides=overrides)


class _LazyModemDaemon:
    """:class:`~dlep.daemon.ModemDaemon` for :func:`run_role`, imported only
    when the daemon starts: ``--help``, ``--version`` and ``--check`` never
    need the daemon (nor, but for ``--check``, pydantic and the configuration)."""

    @staticmethod
    def builder() -> ModemDaemonBuilder:
        from ..daemon import ModemDaemon

        return ModemDaemon.builder()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-modem``."""
    return run_role("modem", DESCRIPTION, argv, _load, _summary, _LazyModemDaemon)


if __name__ == "__main__":
    sys.exit(main())
