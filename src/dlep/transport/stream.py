"""asyncio adapter: one TCP (or TLS) connection driving one :class:`Session`.

The engine does all protocol work; this class moves bytes, keeps a single
timer armed at the engine's next deadline, and hands events to the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from ..fsm import Event, Session

log = logging.getLogger("dlep.transport")

#: Octets collected from a burst of API calls before they are written anyway.
COALESCE_LIMIT = 16 * 1024
#: Messages of one read handled before their events are delivered. One read
#: can bring thousands of messages; delivering their events in small steps
#: lets each event die young, before the garbage collector's older
#: generations ever see it (a read's worth of events kept alive together
#: made full collections, tens of milliseconds each, 30-50 % of the time
#: spent on a burst of Destination Updates; see docs/performance.md).
RECEIVE_STEP = 32
#: Queued output above which :meth:`SessionProtocol.drain` waits (until it is
#: back under a quarter of it): a burst of API calls is written in large
#: chunks, yet an application that outpaces its peer learns it early.
DRAIN_HIGH_WATER = 1024 * 1024


class SessionProtocol(asyncio.Protocol):
    """Moves bytes between a transport and a sans-I/O :class:`Session`.

    Args:
        session: the engine (not yet started).
        on_events: called with each batch of engine events, in order.
        on_closed: called once when the connection is gone.
        max_write_buffer: if the peer stops reading and this many octets are
            queued, the connection is dropped (bounded memory).
        trace: called with each message's octets, ``"rx"`` or ``"tx"``,
            while ``trace_log`` is enabled for DEBUG (see :attr:`Session.trace`).
    """

    def __init__(
        self,
        session: Session,
        on_events: Callable[[SessionProtocol, list[Event]], None],
        on_closed: Callable[[SessionProtocol], None],
        *,
        max_write_buffer: int = 64 * 1024 * 1024,
        trace: Callable[[SessionProtocol, str, bytes], None] | None = None,
        trace_log: logging.Logger | None = None,
    ) -> None:
        self.session = session
        # Every message in and out goes to ``trace`` while ``trace_log`` is
        # enabled for DEBUG; looked up once per read (and per timer), never
        # per message: the receive path is the benchmarked hot path.
        self._trace: Callable[[str, bytes], None] | None = None
        if trace is not None:
            self._trace = lambda kind, raw: trace(self, kind, raw)
        self._trace_log = trace_log or log
        self._on_events = on_events
        self._on_closed = on_closed
        self._max_write = max_write_buffer
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.peername: Any = None
        self.closed = asyncio.Event()
        #: Called once the transport is up, before the engine starts (so an
        #: observer hears of the connection before any of its events).
        self.on_connected: Callable[[SessionProtocol], None] | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        #: Why the connection was lost (``connection_lost``'s exception, e.g.
        #: an ``ssl.SSLError`` when the peer rejected our certificate), or None.
        self.close_exc: Exception | None = None
        # Output of later flushes in the same event-loop pass, written together.
        self._pending: list[bytes] | None = None
        self._pending_size = 0
        self._writable = asyncio.Event()
        self._writable.set()

    # -- asyncio callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=DRAIN_HIGH_WATER)
        _no_delay(transport)
        self.peername = transport.get_extra_info("peername")
        if self.on_connected is not None:
            self.on_connected(self)
        self._update_trace()
        self.session.start(self._loop.time())
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        session = self.session
        if self._trace is not None:
            self._update_trace()
        now = self._loop.time()
        more = session.receive_data(data, now, limit=RECEIVE_STEP)
        while more:
            if session.has_events:
                self._deliver(session.events())
            more = session.receive_more(now, RECEIVE_STEP)
        self.flush()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def eof_received(self) -> bool | None:
        return False  # the peer closed its side: close ours too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._pending = None
        self.close_exc = exc
        if not self.session.closed:
            why = f"connection lost: {exc}" if exc else "connection closed by peer"
            self.session.connection_lost(self._loop.time(), why)
        events = self.session.events()
        if events:
            self._deliver(events)
        self.transport = None
        self._writable.set()  # nothing left to wait for
        self.closed.set()
        self._on_closed(self)

    # -- driving ------------------------------------------------------------

    async def drain(self) -> None:
        """Write what is queued, then wait while the socket holds more than
        :data:`DRAIN_HIGH_WATER` octets the peer has not read (returns at
        once if it does not, or if the connection is gone)."""
        if self._pending is not None:
            self._write_pending()
        await self._writable.wait()

    def flush(self) -> None:
        """Write what the engine queued, deliver its events, re-arm the timer.

        Call after every API call made on :attr:`session`.
        """
        session = self.session
        data = session.data_to_send()
        if data:
            # The first output is written at once (no added latency); what
            # further API calls queue before the event loop gets control back
            # is collected and written in one go by a call_soon callback (or
            # every COALESCE_LIMIT octets), so a burst of N calls costs a
            # few send()s instead of N.
            pending = self._pending
            if pending is None:
                self._pending = []
                self._pending_size = 0
                self._write(data)
                self._loop.call_soon(self._write_pending)
            else:
                pending.append(data)
                self._pending_size += len(data)
                if self._pending_size >= COALESCE_LIMIT:
                    # A long burst: keep the peer busy meanwhile (it may
                    # run on another core), with few large writes.
                    self._pending = []
                    self._pending_size = 0
                    self._write(b"".join(pending))
        if session.has_events:
            self._deliver(session.events())
        if session.closed:
            self._cancel_timer()
            self._write_pending()
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.close()  # flushes pending writes first
            return
        self._arm()

    def _deliver(self, events: list[Event]) -> None:
        """Hand events to the application, which must not break the session.

        A handler's exception, escaping from ``data_received``, would make
        asyncio abort the connection in the middle of a read: the rest of
        the read lost, a reset instead of the termination exchange, and the
        peer's protocol state gone with it. The engine is consistent whatever
        the handler did, so the error is logged and the session goes on.
        """
        try:
            self._on_events(self, events)
        except Exception:
            log.exception("%s: event handler failed; the session continues", self.peername)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.bytes_out += len(data)
        transport.write(data)
        if transport.get_write_buffer_size() > self._max_write:
            log.warning("%s: peer is not reading; dropping the connection", self.peername)
            transport.abort()

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            self._write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _arm(self) -> None:
        when = self.session.get_timer()
        at = self._timer_at
        # Re-arm only when the deadline moved earlier: a timer that fires
        # early is harmless (handle_timer does nothing), while cancelling and
        # re-creating a handle on every message is not free.
        if when is None:
            self._cancel_timer()
        elif at is None or when < at:
            self._cancel_timer()
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _update_trace(self) -> None:
        on = self._trace is not None and self._trace_log.isEnabledFor(logging.DEBUG)
        self.session.trace = self._trace if on else None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._trace is not None:
            self._update_trace()
        self.session.handle_timer(self._loop.time())
        self.flush()

    def abort(self) -> None:
        """Drop the connection at once (no termination exchange)."""
        if self.transport is not None:
            self.transport.abort()


def _no_delay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off: DLEP messages are small and each should
    leave at once. asyncio does this itself only for sockets whose protocol
    number is IPPROTO_TCP, and a connection accepted on a listening socket
    made with protocol 0 (as ours are) is not one: its small writes then
    waited for the peer's delayed ACK, up to 40 ms on Linux."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:  # not fatal: only slower
        log.debug("TCP_NODELAY not set: %s", exc)
