"""Issue 14 item 8: the default API socket never lives where another local
user could put it first (a file name in /tmp itself), and a socket another
user owns is neither removed, served beside, nor found by dlepctl."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dlep.api.paths import default_socket_path, ensure_private_dir, private_tmp_dir
from dlep.cli.dlepctl import socket_state

NOBODY = 65534


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user (chown)")


def test_default_path_is_in_a_private_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = default_socket_path("router")
    assert path.parent == private_tmp_dir() == Path(f"/tmp/dlep-{os.getuid()}")


def test_private_dir_created_0700_and_checked(tmp_path: Path) -> None:
    d = tmp_path / "dlep-x"
    ensure_private_dir(d)
    assert (d.stat().st_mode & 0o777) == 0o700
    ensure_private_dir(d)  # ours and private: fine again
    d.chmod(0o777)
    with pytest.raises(PermissionError, match="open to other users"):
        ensure_private_dir(d)
    d.chmod(0o700)
    f = tmp_path / "dlep-file"
    f.write_text("")
    with pytest.raises(PermissionError, match="not a directory"):
        ensure_private_dir(f)


def test_private_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    _need_root()
    d = tmp_path / "dlep-squatted"
    d.mkdir(mode=0o700)
    os.chown(d, NOBODY, NOBODY)
    with pytest.raises(PermissionError, match=f"belongs to uid {NOBODY}"):
        ensure_private_dir(d)


def test_dlepctl_never_uses_another_users_socket(tmp_path: Path) -> None:
    """A live socket owned by someone else, where ours would be, is
    "foreign": dlepctl's search does not send it our commands."""
    _need_root()
    path = tmp_path / "dlep-router.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(str(path))
        srv.listen(1)
        assert socket_state(path) == "live"
        os.chown(path, NOBODY, NOBODY)
        assert socket_state(path) == "foreign"
    finally:
        srv.close()


def test_daemon_does_not_remove_another_users_socket(tmp_path: Path) -> None:
    _need_root()
    path = tmp_path / "api.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # a stale socket file, now someone else's
    os.chown(path, NOBODY, NOBODY)
    cfg = tmp_path / "router.toml"
    cfg.write_text('[router]\ndiscovery = false\n[api]\nsocket = "' + str(path) + '"\n')
    res = subprocess.run(
        [sys.executable, "-m", "dlep.cli.router", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode != 0
    assert f"belongs to uid {NOBODY}" in res.stderr, res.stderr
    assert path.exists()
