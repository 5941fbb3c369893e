"""Server-side TLS on an accepted connection, with a failed handshake reported.

``loop.create_server(ssl=ctx)`` does the handshake itself and drops a failed
one silently (asyncio reports it only in debug mode): an operator whose
router has the wrong CA, or speaks plaintext, sees nothing on the modem.
:class:`TlsAccept` is the protocol a plain TCP server hands each connection:
it runs the handshake (``loop.start_tls``) and then passes the TLS transport
to the real protocol, or calls ``on_failure`` with the peer and the reason.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

from .tls import describe_tls_error

#: Seconds a handshake may take (asyncio's own default for create_server).
HANDSHAKE_TIMEOUT = 60.0


class TlsAccept(asyncio.Protocol):
    """Runs the server side of a TLS handshake, then hands over.

    Args:
        ctx: the server context.
        inner: the protocol for the TLS connection (gets ``connection_made``
            with the TLS transport once the handshake succeeded).
        on_failure: called with the peer address (``"host:port"``) and the
            reason (:func:`describe_tls_error`) when it failed.
    """

    def __init__(
        self,
        ctx: ssl.SSLContext,
        inner: asyncio.Protocol,
        on_failure: Callable[[str, str], None],
        *,
        timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._ctx = ctx
        self._inner = inner
        self._on_failure = on_failure
        self._timeout = timeout
        self._task: asyncio.Task[Any] | None = None
        # Decrypted data can arrive between the end of the handshake and
        # start_tls returning: kept here, then handed to the inner protocol.
        self._early: list[bytes] = []
        self._eof = False
        self._handed_over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        # Nothing may be read before start_tls takes over (it resumes reading).
        transport.pause_reading()
        self._task = asyncio.ensure_future(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        where = (
            (f"[{peer[0]}]:{peer[1]}" if ":" in str(peer[0]) else f"{peer[0]}:{peer[1]}")
            if peer
            else "?"
        )
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                self,
                self._ctx,
                server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
            transport.abort()
            self._on_failure(where, describe_tls_error(exc))
            return
        if tls is None:  # the connection went away during the handshake
            self._on_failure(where, describe_tls_error(ConnectionResetError()))
            return
        self._handed_over = True
        self._inner.connection_made(tls)
        if tls.get_protocol() is self:  # the inner protocol did not take over itself
            tls.set_protocol(self._inner)
        target = tls.get_protocol()
        assert isinstance(target, asyncio.Protocol)
        for data in self._early:
            target.data_received(data)
        self._early.clear()
        if self._eof and not target.eof_received():
            tls.close()

    # Between the handshake and the hand-over the TLS transport talks to us.

    def data_received(self, data: bytes) -> None:
        self._early.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return True  # decided at the hand-over

    def connection_lost(self, exc: Exception | None) -> None:
        # Before the hand-over the task sees the failure itself; after it,
        # the TLS transport calls the inner protocol directly.
        if self._handed_over:
            self._inner.connection_lost(exc)


__all__ = ["HANDSHAKE_TIMEOUT", "TlsAccept"]
