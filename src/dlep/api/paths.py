"""Where the management API listens by default (shared by daemons and dlepctl)."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = [
    "candidate_socket_paths",
    "default_socket_path",
    "ensure_private_dir",
    "private_tmp_dir",
]


def private_tmp_dir() -> Path:
    """``/tmp/dlep-<uid>``: where the sockets go without ``XDG_RUNTIME_DIR``.

    A directory of our own (mode 0700, checked before use) rather than a
    file name in /tmp itself: in a world-writable directory another local
    user could create the socket path first, and either stop the daemon
    from starting or receive what ``dlepctl`` sends.
    """
    return Path("/tmp") / f"dlep-{os.getuid()}"


def default_socket_path(role: str) -> Path:
    """The Unix socket a daemon of ``role`` ("router" / "modem") serves on
    when ``api.socket`` is not set.

    ``$XDG_RUNTIME_DIR/dlep-<role>.sock`` when that directory exists (a
    per-user directory that only the user can enter), otherwise
    ``/tmp/dlep-<uid>/dlep-<role>.sock`` (:func:`private_tmp_dir`). Neither
    needs root.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return Path(xdg) / f"dlep-{role}.sock"
    return private_tmp_dir() / f"dlep-{role}.sock"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700, or check that the one there is a
    directory of ours that no other user can enter; PermissionError naming
    the problem otherwise (we never use a directory someone else controls)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{path} exists and is not a directory; not using it")
    if st.st_uid != os.geteuid():
        raise PermissionError(
            f"{path} belongs to uid {st.st_uid}, not to us ({os.geteuid()}); "
            "another user may control it: not using it"
        )
    if st.st_mode & 0o077:
        raise PermissionError(
            f"{path} is open to other users (mode {stat.S_IMODE(st.st_mode):o}); "
            "make it 0700 or remove it"
        )


def candidate_socket_paths(role: str) -> list[Path]:
    """Every default path a daemon of ``role`` may be using, most likely first.

    dlepctl tries them in turn, so it finds a daemon started from a shell
    whose ``XDG_RUNTIME_DIR`` differed from its own.
    """
    out = [
        default_socket_path(role),
        Path(f"/run/user/{os.getuid()}") / f"dlep-{role}.sock",  # the usual XDG_RUNTIME_DIR
        private_tmp_dir() / f"dlep-{role}.sock",
    ]
    return list(dict.fromkeys(out))
