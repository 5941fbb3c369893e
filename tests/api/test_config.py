"""``[api]``: defaults, validation, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlep.api.paths import candidate_socket_paths, default_socket_path
from dlep.config import ConfigError, load_modem_config, parse_modem_config, parse_router_config


def test_defaults() -> None:
    api = parse_router_config({}).api
    assert api.enabled is True
    assert api.socket is None
    assert api.tcp_listen is None
    assert api.tcp_address() is None
    assert api.watch_queue == 1024


@pytest.mark.parametrize(
    "missing",
    [("tls_cert",), ("tls_key",), ("tls_client_ca",), ("tls_cert", "tls_key", "tls_client_ca")],
)
def test_tcp_listen_needs_all_three_tls_files(tmp_path: Path, missing: tuple[str, ...]) -> None:
    api: dict[str, object] = {"tcp_listen": "127.0.0.1:9000"}
    for name in ("tls_cert", "tls_key", "tls_client_ca"):
        if name not in missing:
            f = tmp_path / f"{name}.pem"
            f.write_text("x")
            api[name] = str(f)
    with pytest.raises(ConfigError) as ei:
        parse_modem_config({"api": api})
    assert sorted(ei.value.keys) == sorted(f"api.{m}" for m in missing)
    for m in missing:
        assert f"api.{m}: required" in str(ei.value)
    assert "mutual TLS" in str(ei.value)


def test_tcp_listen_with_tls_files(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text("x")
    cfg = parse_router_config(
        {
            "api": {
                "tcp_listen": "[::1]:9000",
                "tls_cert": "c.pem",
                "tls_key": "k.pem",
                "tls_client_ca": "ca.pem",
                "socket": "run/r.sock",
            }
        },
        base_dir=tmp_path,
    )
    assert cfg.api.tcp_listen == "[::1]:9000"
    assert cfg.api.tcp_address() == ("::1", 9000)
    assert cfg.api.tls_cert == tmp_path / "c.pem"  # relative to the file's directory
    assert cfg.api.socket == tmp_path / "run" / "r.sock"


@pytest.mark.parametrize(
    ("api", "key", "text"),
    [
        ({"tcp_listen": "127.0.0.1"}, "api.tcp_listen", "port is required"),
        ({"tcp_listen": "127.0.0.1:99999"}, "api.tcp_listen", "out of range"),
        ({"tcp_listen": 9000}, "api.tcp_listen", "expected 'host:port'"),
        ({"socket": ""}, "api.socket", "empty path"),
        ({"enabled": "yes"}, "api.enabled", "boolean"),
        ({"watch_queue": 2}, "api.watch_queue", "16"),
        ({"sockett": "/x"}, "api.sockett", "did you mean 'socket'"),
        (
            {
                "tcp_listen": "127.0.0.1:9",
                "tls_cert": "/nonexistent/c",
                "tls_key": "/nonexistent/k",
                "tls_client_ca": "/nonexistent/ca",
            },
            "api.tls_cert",
            "file not found",
        ),
    ],
)
def test_bad_values_name_the_key(api: dict[str, object], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_modem_config({"api": api})
    assert key in ei.value.keys
    assert text in str(ei.value)


def test_file_error_names_file_and_key(tmp_path: Path) -> None:
    f = tmp_path / "modem.toml"
    f.write_text('[api]\ntcp_listen = "127.0.0.1:9443"\ntls_cert = "c.pem"\n')
    with pytest.raises(ConfigError) as ei:
        load_modem_config(f)
    text = str(ei.value)
    assert f"{f}: api.tls_key: required" in text
    assert f"{f}: api.tls_client_ca: required" in text
    assert "api.tls_cert: file not found" in text


def test_default_socket_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_socket_path("modem") == tmp_path / "dlep-modem.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    import os

    tmp_default = Path(f"/tmp/dlep-{os.getuid()}/dlep-router.sock")
    assert default_socket_path("router") == tmp_default
    assert tmp_default in candidate_socket_paths("router")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert default_socket_path("router") == tmp_default  # XDG dir must exist
