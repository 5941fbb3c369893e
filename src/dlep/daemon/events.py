"""Daemon-level events and the bounded subscription queue."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..fsm import Event
from ..wire import PeerType


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
    """This subscriber fell behind and ``dropped`` events were discarded."""

    dropped: int


_CLOSED = object()


class Subscription:
    """A bounded event queue; iterate with ``async for``.

    When the queue is full new events are dropped and counted; the next read
    then yields :class:`Lagged` first, so a slow consumer learns it missed
    something instead of the daemon growing without bound.
    """

    def __init__(self, maxsize: int) -> None:
        self._q: asyncio.Queue[object] = asyncio.Queue(maxsize)
        self.dropped = 0
        self._closed = False

    def offer(self, event: DaemonEvent) -> None:
        """Daemon side: queue ``event`` (dropped and counted when full)."""
        if self._closed:
            return
        try:
            self._q.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def close(self) -> None:
        """Daemon side: no more events; the reader ends once it has drained the queue."""
        if self._closed:
            return
        self._closed = True
        # If full, the reader notices _closed once it has drained the queue.
        with contextlib.suppress(asyncio.QueueFull):
            self._q.put_nowait(_CLOSED)

    def __aiter__(self) -> AsyncIterator[DaemonEvent]:
        return self

    async def __anext__(self) -> DaemonEvent:
        if self.dropped:
            n, self.dropped = self.dropped, 0
            return Lagged(n)
        if self._closed and self._q.empty():
            raise StopAsyncIteration
        item = await self._q.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        assert isinstance(item, DaemonEvent)
        return item

    async def get(self, timeout: float | None = None) -> DaemonEvent:
        """Next event, waiting at most ``timeout`` seconds (TimeoutError)."""
        return await asyncio.wait_for(self.__anext__(), timeout)

    def pending(self) -> int:
        """Events queued and not yet read."""
        return self._q.qsize()
