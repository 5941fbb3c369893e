"""What ``--check`` verifies beyond the schema: that the files and places
the configuration names can be used as the daemon will use them."""

from __future__ import annotations

from typing import Any


def problems(role: str, cfg: Any) -> list[str]:
    """Each problem as ``key: why``; empty when the daemon could start.

    The TLS files are loaded into the same SSL context the daemon builds (a
    CA that is not PEM, a key that does not match its certificate), and the
    management API's socket must be creatable (its directory exists, the
    path is not a directory)."""
    out: list[str] = []
    if cfg.network.use_tls:
        from ..daemon.base import tls_settings
        from ..transport import TlsSetupError, client_context, server_context

        make = server_context if role == "modem" else client_context
        try:
            make(tls_settings(cfg))
        except TlsSetupError as exc:
            out.append(str(exc))
    if cfg.api.enabled:
        from ..api.paths import default_socket_path, private_tmp_dir

        path = cfg.api.socket if cfg.api.socket is not None else default_socket_path(role)
        if path.is_dir():
            out.append(f"api.socket: {path} is a directory")
        elif not path.parent.is_dir() and path.parent != private_tmp_dir():
            # (the daemon creates its private directory in /tmp itself)
            out.append(f"api.socket: directory {path.parent} does not exist")
    return out
