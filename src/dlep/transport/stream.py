"""asyncio adapter: one TCP (or TLS) connection driving one :class:`Session`.

The engine does all protocol work; this class moves bytes, keeps a single
timer armed at the engine's next deadline, and hands events to the daemon.
It also keeps one connection from starving the others: a bounded share of
each read per event-loop turn, no reading from a peer that does not read
its answers, and heartbeat timeouts judged by when the peer's data arrived.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import termios
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
#: Messages of one connection handled per event-loop turn. A read brings up
#: to 256 KiB (about 18,000 small messages, a quarter of a second of work):
#: handled in one go, it held every other session's messages and timers
#: back that long. The rest of the read waits for the next turn (reading
#: from that peer paused meanwhile), after the other connections' callbacks
#: and the timers that fell due. A few hundred microseconds per step of 1024
#: is far above the cost of the turn itself (see docs/performance.md).
RECEIVE_BUDGET = 1024
#: And at most this long (seconds) per turn: messages that make the
#: application answer (a Destination Announce, say) cost ten times a
#: Destination Update, and an answer made by a task takes a few turns.
#: Another session's request crosses the loop several times (an API call
#: through gRPC, the request out, the answer in, the API's reply), waiting
#: up to one slice each time: with 5 ms a Link Characteristics round trip
#: took 75-90 ms while a 100,000-destination burst was handled; with 1 ms,
#: 26-33 ms p99, and the burst's own rate does not change (the turn costs
#: tens of microseconds; bench/ingest.py, make reliability).
RECEIVE_SLICE = 0.001
#: Default queued output above which :meth:`SessionProtocol.drain` waits
#: (until it is back under a quarter of it), and above which a peer that
#: keeps sending requests without reading their answers is no longer read
#: (``network.write_high_water_kib``).
WRITE_HIGH_WATER = 256 * 1024
#: Default queued output at which a peer that does not read is dropped
#: (``network.max_write_buffer_kib``): only output the application
#: originates can get there (answers stop at the high-water mark).
MAX_WRITE_BUFFER = 64 * 1024 * 1024


class SessionProtocol(asyncio.Protocol):
    """Moves bytes between a transport and a sans-I/O :class:`Session`.

    Args:
        session: the engine (not yet started).
        on_events: called with each batch of engine events, in order.
        on_closed: called once when the connection is gone.
        max_write_buffer: if the peer stops reading and this many octets are
            queued, the connection is dropped (bounded memory).
        write_high_water: queued output above which :meth:`drain` waits and,
            once answers to the peer's requests keep adding to it, the peer
            is no longer read (backpressure) until the output is back under
            a quarter of this mark.
        receive_slice: and seconds spent on them per turn (checked every
            :data:`RECEIVE_STEP` messages).
        receive_budget: messages handled per event-loop turn; the rest of a
            read waits for the next turn (reading paused meanwhile).
        trace: called with each message's octets, ``"rx"`` or ``"tx"``,
            while ``trace_log`` is enabled for DEBUG (see :attr:`Session.trace`).
    """

    def __init__(
        self,
        session: Session,
        on_events: Callable[[SessionProtocol, list[Event]], None],
        on_closed: Callable[[SessionProtocol], None],
        *,
        max_write_buffer: int = MAX_WRITE_BUFFER,
        write_high_water: int = WRITE_HIGH_WATER,
        receive_budget: int = RECEIVE_BUDGET,
        receive_slice: float = RECEIVE_SLICE,
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
        self._high_water = write_high_water
        # Answers queued after the output passed the high-water mark, beyond
        # which the peer is no longer read (see _backpressure).
        self._answer_allowance = max(write_high_water // 4, 1)
        self._budget = max(receive_budget, 1)
        self._slice = max(receive_slice, 0.0)
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
        # Receive scheduling: a continuation of a read is queued (_backlog),
        # reading is paused for backpressure (_blocked), the transport is
        # paused by us (_paused); when the last read was (the receive time
        # of a backlog) and the engine's answer count when the output last
        # passed the high-water mark.
        self._backlog = False
        self._blocked = False
        self._paused = False
        self._read_at = 0.0
        self._answers_at_high = 0
        # Octets the transport had handed on to the kernel at the last
        # heartbeat check made while blocked: progress means the peer reads.
        self._drained_at_check = 0
        #: How often reading was paused because the peer did not read its
        #: answers, and the most output ever queued for it (octets).
        self.backpressure_pauses = 0
        self.write_buffer_peak = 0

    # -- asyncio callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self._high_water, low=self._high_water // 4)
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
        now = self._loop.time()
        self._read_at = now
        if self._backlog or self._blocked:
            # Earlier messages still wait (a TLS layer or _Deferred may
            # deliver after pause_reading): queued behind them, in order.
            session.receive_data(data, now, limit=0)
            return
        if self._trace is not None:
            self._update_trace()
        self._receive(session.receive_data(data, now, limit=RECEIVE_STEP), now, RECEIVE_STEP)

    def _receive(self, more: bool, now: float, handled: int) -> None:
        """Handle the engine's backlog up to the budget of this turn, then
        decide: continue next turn, stop for backpressure, or read again."""
        session = self.session
        budget = self._budget
        clock = self._loop.time
        until = now + self._slice
        while more:
            if session.has_events:
                self._deliver(session.events())
            if handled >= budget or clock() >= until:
                break
            more = session.receive_more(now, RECEIVE_STEP)
            handled += RECEIVE_STEP
        self.flush()
        transport = self.transport
        if transport is None or session.closed:
            return
        if self._backpressure():
            self._blocked = True
            self.backpressure_pauses += 1
            self._drained_at_check = self._delivered(transport)
            self._pause()
        elif more:
            self._backlog = True
            self._pause()
            self._loop.call_soon(self._continue)
        else:
            self._resume()

    def _continue(self) -> None:
        """The next turn's share of a read (scheduled by :meth:`_receive`)."""
        self._backlog = False
        if self.transport is None or self.session.closed or self._blocked:
            return
        if self._trace is not None:
            self._update_trace()
        now = self._loop.time()
        self._receive(self.session.receive_more(now, RECEIVE_STEP), now, RECEIVE_STEP)

    def _backpressure(self) -> bool:
        """True when the output is above the high-water mark (the transport
        paused our writing) and answers to the peer's requests added more
        than a quarter of the mark since: the peer sends requests and does
        not read the answers. Output the application originates (a modem's
        burst of Destination Ups at session start) never stops reading:
        the answers to it that the peer sends must still be read, or two
        daemons each waiting for the other to read would deadlock."""
        return (
            not self._writable.is_set()
            and self.session.response_octets - self._answers_at_high > self._answer_allowance
        )

    def _pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self._writable.clear()
        self._answers_at_high = self.session.response_octets

    def resume_writing(self) -> None:
        self._writable.set()
        if self._blocked:
            # The peer read its answers: read it again (the backlog first).
            self._blocked = False
            if self.session.pending_messages and not self._backlog:
                self._backlog = True
                self._loop.call_soon(self._continue)
            elif not self._backlog:
                self._resume()

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

    @property
    def output_queued(self) -> int:
        """Octets queued for the peer and not yet taken by the kernel."""
        transport = self.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    @property
    def backpressure(self) -> bool:
        """True while the peer is not read because it does not read the
        answers to its requests."""
        return self._blocked

    # -- driving ------------------------------------------------------------

    async def drain(self) -> None:
        """Write what is queued, then wait while more than the high-water
        mark (``write_high_water``, :data:`WRITE_HIGH_WATER` by default) is
        queued for the peer, until it is back under a quarter of it
        (returns at once if it is not, or if the connection is gone)."""
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
        size = transport.get_write_buffer_size()
        if size > self.write_buffer_peak:
            self.write_buffer_peak = size
        if size > self._max_write:
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
        now = self._loop.time()
        session = self.session
        if session.peer_silent(now):
            # Judged by receive time: data of the peer waiting for us is
            # proof of life (docs/conformance.md).
            alive = self._peer_alive_at(now)
            if alive is not None:
                session.note_peer_alive(alive)
        session.handle_timer(now)
        self.flush()

    def _delivered(self, transport: asyncio.Transport) -> int:
        """Octets of output the peer's side has taken: written, minus what
        asyncio and the kernel still hold (the kernel's send queue counts
        until the peer acknowledges, which it does as its application
        reads). Over TLS a rough figure (records add overhead), good to
        tell progress from none."""
        return self.bytes_out - transport.get_write_buffer_size() - _ioctl_int(transport, _OUTQ)

    def _peer_alive_at(self, now: float) -> float | None:
        """When the peer was last known alive from data not yet handled:
        the receive time of a backlog; now, for bytes waiting in the socket
        while we read (the loop was busy); now, while reading is paused for
        backpressure, if the peer read some of its output since the last
        check (a dead peer's stale bytes in the socket prove nothing, and a
        peer that reads nothing for the whole silence period is as good as
        silent). None if nothing says the peer is alive."""
        transport = self.transport
        if transport is None:
            return None
        if self._blocked:
            drained = self._delivered(transport)
            progressed = drained > self._drained_at_check
            self._drained_at_check = drained
            if progressed:
                return now
        elif _unread(transport):
            return now
        if self.session.pending_messages:
            return self._read_at
        return None

    def abort(self) -> None:
        """Drop the connection at once (no termination exchange)."""
        if self.transport is not None:
            self.transport.abort()


def _unread(transport: asyncio.Transport) -> bool:
    """True if the peer's data waits unread: in the socket (FIONREAD; the
    TLS transport's socket too) or in a TLS layer's encrypted input."""
    buffered = getattr(transport, "get_read_buffer_size", None)  # TLS transports only
    if buffered is not None and buffered() > 0:
        return True
    return _ioctl_int(transport, termios.FIONREAD) > 0


#: Octets in a TCP socket's send queue, not yet acknowledged by the peer
#: (SIOCOUTQ, which Linux numbers as TIOCOUTQ).
_OUTQ = termios.TIOCOUTQ


def _ioctl_int(transport: asyncio.Transport, request: int) -> int:
    """An ioctl that reads an int from the transport's socket (FIONREAD:
    octets received and unread; SIOCOUTQ); 0 if there is no socket."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


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
