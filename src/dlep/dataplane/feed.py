"""Modem side: the JSON-lines feed of destination changes (stdin, or UDP on loopback).

A shell script or another program writes one record (a JSON object) or one
batch (a JSON array of records) per line; each line is answered with one
line. The records, their checks and the all-or-nothing batches are the
library API's: :meth:`dlep.daemon.ModemDaemon.apply_destination_changes`
(the record format is in :mod:`dlep.daemon.changes`), which the management
API's streaming ``FeedDestinations`` call uses as well::

    {"op": "up", "mac": "02:00:00:00:00:05", "id": "r1",
     "metrics": {"cdrt": "20M", "mdrt": "54M", "latency": "2ms", "rlqt": 90},
     "addresses": ["10.0.0.5", "192.168.5.0/24"], "ext": {"hop_count": 2}}
    {"op": "update", "mac": "02:00:00:00:00:05", "metrics": {"cdrt": 5000000}}
    {"op": "down", "mac": "02:00:00:00:00:05"}
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from ..daemon import ChangeResult, ModemDaemon
from .tasks import cancel_all

__all__ = ["JsonLinesFeed"]

log = logging.getLogger("dlep.dataplane.feed")


def _answer(results: list[ChangeResult]) -> dict[str, Any]:
    return {"ok": all(r.ok for r in results), "results": [r.as_json() for r in results]}


class JsonLinesFeed:
    """Reads JSON lines (stdin or loopback UDP) and answers each line.

    A line holds one record (an object) or a batch (an array of records).
    The answer is one line: ``{"ok": true, "results": [{"index": 0, "ok":
    true}, ...]}``; a line that is not JSON gets ``{"ok": false, "error":
    "..."}``.
    """

    def __init__(self, modem: ModemDaemon, *, max_batch: int = 1000) -> None:
        self.modem = modem
        self.max_batch = max_batch
        self._tasks: list[asyncio.Task[Any]] = []
        self._transport: asyncio.DatagramTransport | None = None
        self.lines = 0

    async def handle_line(self, line: str | bytes) -> dict[str, Any] | None:
        """The answer to one line (None for a blank line)."""
        text = line.decode(errors="replace") if isinstance(line, bytes) else line
        if not text.strip():
            return None
        self.lines += 1
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return {"ok": False, "error": f"not JSON: {exc}"}
        batch = data if isinstance(data, list) else [data]
        results = await self.modem.apply_destination_changes(batch, max_batch=self.max_batch)
        return _answer(results)

    # -- stdin -----------------------------------------------------------------

    async def start_stdin(
        self,
        reader: asyncio.StreamReader | None = None,
        write: Callable[[bytes], Any] | None = None,
    ) -> None:
        """Read lines from standard input (or ``reader``); answers to stdout."""
        loop = asyncio.get_running_loop()
        if reader is None:
            reader = asyncio.StreamReader(limit=1 << 20)
            proto = asyncio.StreamReaderProtocol(reader)
            await loop.connect_read_pipe(lambda: proto, sys.stdin)
        out = write or _stdout_write
        self._tasks.append(loop.create_task(self._read_stream(reader, out), name="feed-stdin"))

    async def _read_stream(
        self, reader: asyncio.StreamReader, write: Callable[[bytes], Any]
    ) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line longer than the limit
                write(b'{"ok": false, "error": "line longer than 1 MiB"}\n')
                continue
            if not line:
                log.info("feed: end of standard input")
                return
            answer = await self.handle_line(line)
            if answer is not None:
                write((json.dumps(answer) + "\n").encode())

    # -- UDP -----------------------------------------------------------------------

    async def start_udp(self, host: str, port: int) -> tuple[str, int]:
        """Listen on loopback ``host:port``; answers go back to the sender."""
        addr = ipaddress.ip_address(host)
        if not addr.is_loopback:
            raise ValueError(f"{host}: the UDP feed listens on loopback only")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpFeed(self), local_addr=(host, port)
        )
        self._transport = transport
        bound = transport.get_extra_info("sockname")
        log.info("feed: JSON lines on udp %s:%d", bound[0], bound[1])
        return str(bound[0]), int(bound[1])

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` until :meth:`stop` (the UDP worker)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    async def stop(self) -> None:
        """Stop reading."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        tasks, self._tasks = list(self._tasks), []
        await cancel_all(*tasks)


def _stdout_write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


class _UdpFeed(asyncio.DatagramProtocol):
    def __init__(self, feed: JsonLinesFeed) -> None:
        self.feed = feed
        self.transport: asyncio.DatagramTransport | None = None
        # Datagrams are answered in order: one batch at a time.
        self._queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue(1024)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.feed.spawn(self._worker())

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self._queue.put_nowait((data, addr))
        except asyncio.QueueFull:
            if self.transport is not None:
                self.transport.sendto(
                    b'{"ok": false, "error": "feed busy; datagram dropped"}\n', addr
                )

    async def _worker(self) -> None:
        while True:
            data, addr = await self._queue.get()
            out: list[bytes] = []
            for line in data.splitlines():
                answer = await self.feed.handle_line(line)
                if answer is not None:
                    out.append((json.dumps(answer) + "\n").encode())
            if out and self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(b"".join(out), addr)
