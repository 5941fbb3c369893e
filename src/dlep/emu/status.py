"""Each emulator's status service: JSON over a Unix socket.

One request per connection: the client writes one JSON object and a
newline (``{"cmd": "status"}``), the server answers with one JSON object
and closes. Commands: ``status`` (the node's whole snapshot: neighbours,
links with their counters, drops, the MAC table, recent events) and
``ping``. The socket is created 0600: only the user that runs the emulator
(root, usually) can read it.

Why not the daemons' gRPC service: the emulator is not a DLEP daemon, its
state (channels, MAC tables, drop counters) has no place in
``management.proto``, and a line of JSON is all ``dlep-emu status``,
``dlepctl emu`` and a test need. See docs/emulator.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["StatusServer", "query"]

MAX_REQUEST = 4096


class StatusServer:
    """Serves ``snapshot()`` on ``path``."""

    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._snapshot = snapshot
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind (replacing a stale socket file) and serve."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            try:
                req = json.loads(line[:MAX_REQUEST] or b"{}")
                cmd = req.get("cmd", "status") if isinstance(req, dict) else None
            except ValueError:
                cmd = None
            if cmd == "status":
                answer: dict[str, Any] = {"ok": True, "status": self._snapshot()}
            elif cmd == "ping":
                answer = {"ok": True}
            else:
                answer = {"ok": False, "error": "unknown command (status, ping)"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Stop serving and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def query(path: Path | str, cmd: str = "status", timeout: float = 5.0) -> dict[str, Any]:
    """Ask the emulator at ``path`` (blocking); returns its ``status`` object.

    Raises OSError if nobody serves there, ValueError if it answers an error.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        chunks: list[bytes] = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks) or b"{}")
    if not isinstance(answer, dict) or not answer.get("ok"):
        err = answer.get("error") if isinstance(answer, dict) else "bad answer"
        raise ValueError(f"{path}: {err}")
    status = answer.get("status", {})
    return status if isinstance(status, dict) else {}
