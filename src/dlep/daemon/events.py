"""Daemon-level events and the bounded subscription queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..fsm import (
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
    DestKey,
    Event,
    Metrics,
)
from ..wire import DataItem, PeerType


class DaemonEvent:
    """Base class of what :meth:`subscribe` yields."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SessionEvent(DaemonEvent):
    """An engine event (``dlep.fsm`` event types) from one session."""

    session_id: str
    peer: str
    event: Event


@dataclass(frozen=True, slots=True)
class SessionConnected(DaemonEvent):
    """TCP (and TLS) is up; session initialisation starts."""

    session_id: str
    peer: str
    tls: bool


@dataclass(frozen=True, slots=True)
class PeerDiscovered(DaemonEvent):
    """Router: a Peer Offer arrived."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    peer_type: PeerType | None
    connection_points: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConnectFailed(DaemonEvent):
    """Router: no connection point of a modem could be reached."""

    peer: str
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionRefused(DaemonEvent):
    """Modem: an incoming connection was turned away (e.g. max_sessions)."""

    peer: str
    reason: str


@dataclass(frozen=True, slots=True)
class Lagged(DaemonEvent):
    """This subscriber fell behind.

    ``dropped`` events were discarded (lost: rebuild what you keep from a
    snapshot), and ``coalesced`` Destination Updates were merged into an
    earlier queued update of the same destination (nothing lost: the merged
    update carries the newest snapshot and every changed field; see
    :class:`Subscription`). ``Lagged(n)`` still means n dropped, none coalesced.
    """

    dropped: int
    coalesced: int = 0


#: A destination's key as the queue indexes it: (MAC, identity items), the
#: shape of :class:`DestKey`.
_Key = tuple[bytes, tuple[DataItem, ...]]


class _Open:
    """A Destination Update queued while its subscriber lags, open to merging.

    It stays in the subscriber's index until it is read, or until another
    event for the same destination (or a session-wide one) is queued behind
    it: a later update must never overtake that event. Merging only keeps
    the newest event and the union of the changed fields; the merged event
    is built once, when it is read.
    """

    __slots__ = ("changed", "event", "key", "sid")

    def __init__(self, event: SessionEvent, sid: str, key: _Key) -> None:
        self.event = event
        #: The union of the merged updates' ``changed`` (None: nothing merged).
        self.changed: Metrics | None = None
        self.sid = sid
        self.key = key

    def merge(self, newer: SessionEvent, changed: Metrics) -> None:
        """Take ``newer`` (its ``changed`` is ``changed``) in place of the queued update."""
        older = self.changed
        if older is None:
            inner = self.event.event
            assert isinstance(inner, DestinationUpdate)
            older = inner.changed
        self.changed = older.merged(changed)
        self.event = newer

    def take(self) -> SessionEvent:
        """The event to deliver."""
        if self.changed is None:
            return self.event
        ev = self.event
        inner = ev.event
        assert isinstance(inner, DestinationUpdate)
        return SessionEvent(
            ev.session_id, ev.peer, dataclasses.replace(inner, changed=self.changed)
        )


def _dest_key(ev: Event) -> DestKey | None:
    """The destination an engine event is about; None for session-wide ones."""
    if isinstance(ev, DestinationUp | DestinationUpRequested):
        return ev.info.key
    key = getattr(ev, "key", None)
    return key if isinstance(key, DestKey) else None


class Subscription:
    """A bounded event queue; iterate with ``async for``.

    At most ``maxsize`` events wait in the queue; a slow reader costs that
    much memory and never slows the daemon down. What happens when the reader
    falls behind:

    * **Coalescing.** Once ``coalesce_at`` events are waiting (default: half
      of ``maxsize``), the subscriber counts as lagging. A Destination Update
      queued from then on stays open to merging until it is read: a newer
      update of the same destination (same session, same :class:`DestKey`)
      replaces it in place instead of taking a second slot. The merged event
      carries the newer snapshot (``info``) and the union of both updates'
      ``changed`` fields, newer values winning, so the reader still learns
      every field that changed and ends with the producer's newest values.
      An update never moves past another event of its destination (Up,
      Down, Link Characteristics, ...) nor past a session-wide event of its
      session (Session Update, termination): such an event closes the open
      update to merging, and the next update takes a new slot behind it.
      Nothing else is ever merged.
    * **Dropping.** When ``maxsize`` events are waiting and the new event
      cannot merge, it is discarded.

    Both are counted (:attr:`dropped`, :attr:`coalesced`); the next read
    yields :class:`Lagged` with the counts before anything else, and resets
    them. Every event offered is thus delivered, merged into a delivered one,
    or counted as dropped. ``coalesce_at >= maxsize`` turns merging off.
    """

    def __init__(self, maxsize: int, *, coalesce_at: int | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, not {maxsize}")
        #: The most events that wait in the queue.
        self.maxsize = maxsize
        #: From this many waiting events on, updates are merged (at most
        #: ``maxsize``, which the fast path in :meth:`offer` relies on).
        at = maxsize // 2 if coalesce_at is None else coalesce_at
        self.coalesce_at = min(maxsize, max(0, at))
        #: Events discarded since the last :class:`Lagged` the reader got.
        self.dropped = 0
        #: Updates merged into a queued one since the last :class:`Lagged`.
        self.coalesced = 0
        #: Since the subscription began (never reset).
        self.dropped_total = 0
        self.coalesced_total = 0
        self._q: deque[DaemonEvent | _Open] = deque()
        # Updates open to merging: session id -> destination -> its slot.
        # Empty whenever the reader keeps up, which keeps offer() cheap.
        self._open: dict[str, dict[_Key, _Open]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def offer(self, event: DaemonEvent) -> None:
        """Daemon side: queue ``event`` (merged, or dropped and counted, when
        the reader lags; see the class)."""
        if self._closed:
            return
        q = self._q
        if self._open or len(q) >= self.coalesce_at:
            self._offer_lagging(event)
            return
        # The common case, kept short: runs per event per subscriber.
        q.append(event)
        if self._waiters:
            self._wake()

    def _offer_lagging(self, event: DaemonEvent) -> None:
        q = self._q
        n = len(q)
        lagging = n >= self.coalesce_at
        ev = event.event if isinstance(event, SessionEvent) else None
        if isinstance(ev, DestinationUpdate):
            assert isinstance(event, SessionEvent)
            info = ev.info
            # A plain tuple: equal to, and hashed like, the DestKey other events carry.
            sid, key = event.session_id, (info.mac, info.ident)
            dests = self._open.get(sid)
            slot = dests.get(key) if dests is not None else None
            if slot is not None:
                if lagging:
                    slot.merge(event, ev.changed)
                    self.coalesced += 1
                    self.coalesced_total += 1
                    return
                # Caught up meanwhile: queue it plainly, and close the older
                # one so no later update jumps back over this one.
                self._close_slot(slot)
            if n >= self.maxsize:
                self._drop()
                return
            if lagging:
                slot = _Open(event, sid, key)
                self._open.setdefault(sid, {})[key] = slot
                q.append(slot)
            else:
                q.append(event)
        else:
            # Whatever this event is about, no update queued before it may
            # absorb a later one: close them (the event's destination, or the
            # whole session for a session-wide event).
            of_session = getattr(event, "session_id", None)
            if isinstance(of_session, str) and of_session in self._open:
                dest = _dest_key(ev) if ev is not None else None
                if dest is None:
                    del self._open[of_session]
                else:
                    open_slot = self._open[of_session].get(dest)
                    if open_slot is not None:
                        self._close_slot(open_slot)
            if n >= self.maxsize:
                self._drop()
                return
            q.append(event)
        if self._waiters:
            self._wake()

    def _drop(self) -> None:
        self.dropped += 1
        self.dropped_total += 1

    def _close_slot(self, slot: _Open) -> None:
        """No more merging into ``slot`` (read, or something queued behind it)."""
        dests = self._open.get(slot.sid)
        if dests is not None and dests.get(slot.key) is slot:
            del dests[slot.key]
            if not dests:
                del self._open[slot.sid]

    def _wake(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def close(self) -> None:
        """Daemon side: no more events; the reader ends once it has drained the queue."""
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)

    def get_nowait(self) -> DaemonEvent:
        """The next event without waiting (:class:`Lagged` first, if due);
        ``asyncio.QueueEmpty`` if none is queued."""
        if self.dropped or self.coalesced:
            lag = Lagged(self.dropped, self.coalesced)
            self.dropped = self.coalesced = 0
            return lag
        if not self._q:
            raise asyncio.QueueEmpty
        item = self._q.popleft()
        if isinstance(item, _Open):
            self._close_slot(item)
            return item.take()
        return item

    def __aiter__(self) -> AsyncIterator[DaemonEvent]:
        return self

    async def __anext__(self) -> DaemonEvent:
        while True:
            if self._q or self.dropped or self.coalesced:
                return self.get_nowait()
            if self._closed:
                raise StopAsyncIteration
            w = asyncio.get_running_loop().create_future()
            self._waiters.append(w)
            try:
                await w
            except BaseException:  # cancelled, e.g. by get()'s timeout
                w.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(w)  # or it would stay until the next event
                if self._q:
                    self._wake()  # we may have been woken: pass it on to another reader
                raise

    async def get(self, timeout: float | None = None) -> DaemonEvent:
        """Next event, waiting at most ``timeout`` seconds (TimeoutError)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    def pending(self) -> int:
        """Events queued and not yet read."""
        return len(self._q)


class FilteredSubscription(Subscription):
    """A :class:`Subscription` that queues only the events ``match`` accepts.

    For a caller waiting for one particular event (the answer to a request)
    while the daemon is busy with others: the events it ignores never take a
    slot, so a burst of thousands of unrelated events (a modem bringing up
    100,000 destinations) cannot push the awaited one out of a small queue.
    """

    def __init__(
        self,
        maxsize: int,
        match: Callable[[DaemonEvent], bool],
        *,
        coalesce_at: int | None = None,
    ) -> None:
        super().__init__(maxsize, coalesce_at=coalesce_at)
        #: The test an event must pass to be queued.
        self.match = match

    def offer(self, event: DaemonEvent) -> None:
        """Queue ``event`` if it matches (see :class:`Subscription`)."""
        if self.match(event):
            super().offer(event)
