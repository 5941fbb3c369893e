"""Where the management API listens by default (shared by daemons and dlepctl)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["candidate_socket_paths", "default_socket_path"]


def default_socket_path(role: str) -> Path:
    """The Unix socket a daemon of ``role`` ("router" / "modem") serves on
    when ``api.socket`` is not set.

    ``$XDG_RUNTIME_DIR/dlep-<role>.sock`` when that directory exists (a
    per-user directory that only the user can enter), otherwise
    ``/tmp/dlep-<role>-<uid>.sock``. Neither needs root.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / f"dlep-{role}.sock"
    return Path("/tmp") / f"dlep-{role}-{os.getuid()}.sock"


def candidate_socket_paths(role: str) -> list[Path]:
    """Every default path a daemon of ``role`` may be using, most likely first.

    dlepctl tries them in turn, so it finds a daemon started from a shell
    whose ``XDG_RUNTIME_DIR`` differed from its own.
    """
    out = [
        default_socket_path(role),
        Path(f"/run/user/{os.getuid()}") / f"dlep-{role}.sock",  # the usual XDG_RUNTIME_DIR
        Path("/tmp") / f"dlep-{role}-{os.getuid()}.sock",
    ]
    return list(dict.fromkeys(out))
