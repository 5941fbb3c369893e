"""Modem side: destination changes from another program (external feeds).

One record format serves the JSON-lines feed (standard input, or UDP on
loopback) and the management API's streaming ``FeedDestinations`` call::

    {"op": "up", "mac": "02:00:00:00:00:05", "id": "r1",
     "metrics": {"cdrt": "20M", "mdrt": "54M", "latency": "2ms", "rlqt": 90},
     "addresses": ["10.0.0.5", "192.168.5.0/24"],
     "ext": {"hop_count": 2}}
    {"op": "update", "mac": "02:00:00:00:00:05", "metrics": {"cdrt": 5000000},
     "add": ["fd00::5"], "drop": ["10.0.0.5"], "ext": {"pause": [255]}}
    {"op": "down", "mac": "02:00:00:00:00:05"}
    {"op": "session", "metrics": {"latency": 3000}}

A batch (a JSON array on one line, or one ``FeedBatch`` message) is applied
all or nothing: every record is checked first — its fields (as strictly as
the management API), and against the modem's table as the earlier records
of the batch leave it (``up`` of a destination that exists, ``update`` of
one that does not, an address another destination owns, a current rate
above the maximum once merged, an extension the modem does not offer) —
and only if all pass is any applied. The answer has one result per record;
when one fails, the others say they were not applied.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..daemon import DaemonError, ModemDaemon
from ..ext.display import extension_name
from ..ext.values import ExtensionValues, parse_extension_values
from ..fsm import Metrics
from ..fsm.metrics import METRIC_FIELDS
from ..wire import DataItem, MacAddress, format_mac
from .tasks import cancel_all

__all__ = [
    "FeedApplier",
    "FeedError",
    "JsonLinesFeed",
    "Record",
    "RecordResult",
    "parse_record",
]

log = logging.getLogger("dlep.dataplane.feed")

Op = Literal["up", "update", "down", "session"]
_OPS: Final = ("up", "update", "down", "session")
_KEYS: Final = {
    "up": {"op", "mac", "id", "metrics", "addresses", "ext"},
    "update": {"op", "mac", "id", "metrics", "add", "drop", "ext"},
    "down": {"op", "mac", "id", "ext"},
    "session": {"op", "id", "metrics", "ext"},
}
_RATES: Final = ("mdrr", "mdrt", "cdrr", "cdrt")
_PERCENT: Final = ("resources", "rlqr", "rlqt")


class FeedError(ValueError):
    """A record is not acceptable; the message starts with its key path."""


@dataclass(frozen=True, slots=True)
class Record:
    """One checked destination change."""

    op: Op
    mac: bytes | None
    metrics: Metrics = field(default_factory=Metrics)
    addresses: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    ext: ExtensionValues = field(default_factory=ExtensionValues)
    id: str | None = None

    @property
    def key(self) -> bytes:
        """The modem's table key: MAC, then the encoded identity items."""
        assert self.mac is not None
        return self.mac + b"".join(i.encode() for i in self.ext.identity())


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The answer for one record."""

    index: int
    ok: bool
    error: str = ""
    id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """``{"index": 0, "ok": true}`` (+ ``id``, ``error``)."""
        out: dict[str, Any] = {"index": self.index, "ok": self.ok}
        if self.id is not None:
            out["id"] = self.id
        if self.error:
            out["error"] = self.error
        return out


# --------------------------------------------------------------------------
# Parsing one record
# --------------------------------------------------------------------------


def _metric_value(name: str, value: object, where: str) -> int:
    from ..config import parse_latency, parse_rate

    try:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if name in _RATES and isinstance(value, str | int | float):
            return parse_rate(value)
        if name == "latency" and isinstance(value, str | int | float):
            return parse_latency(value)
        if isinstance(value, str) and name in _PERCENT and value.strip().endswith("%"):
            value = int(value.strip()[:-1])
        if not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    except ValueError as exc:
        raise FeedError(f"{where}.{name}: {exc}") from None


def _metrics(data: object, where: str) -> Metrics:
    if data is None:
        return Metrics()
    if not isinstance(data, Mapping):
        raise FeedError(f"{where}: expected an object of metrics")
    unknown = sorted(set(data) - set(METRIC_FIELDS))
    if unknown:
        raise FeedError(f"{where}.{unknown[0]}: unknown metric (known: {', '.join(METRIC_FIELDS)})")
    m = Metrics(**{k: _metric_value(k, v, where) for k, v in data.items() if v is not None})
    try:
        m.validate()
    except ValueError as exc:
        raise FeedError(str(exc).replace("metrics.", f"{where}.", 1)) from None
    return m


def _address_list(data: object, where: str, *, subnets: bool = True) -> tuple[str, ...]:
    if data is None:
        return ()
    if not isinstance(data, list | tuple):
        raise FeedError(f"{where}: expected a list of addresses")
    out: list[str] = []
    for i, text in enumerate(data):
        if not isinstance(text, str):
            raise FeedError(f"{where}[{i}]: expected an address string, got {text!r}")
        try:
            if "/" in text:
                if not subnets:
                    raise ValueError("subnets are not allowed here")
                out.append(str(ipaddress.ip_network(text.strip(), strict=False)))
            else:
                out.append(str(ipaddress.ip_address(text.strip())))
        except ValueError as exc:
            raise FeedError(f"{where}[{i}]: {text!r}: {exc}") from None
    if len(set(out)) != len(out):
        raise FeedError(f"{where}: an address is listed twice")
    return tuple(out)


def parse_record(obj: object, where: str = "record") -> Record:
    """Check one record (a JSON object); :class:`FeedError` names the bad key."""
    if not isinstance(obj, Mapping):
        raise FeedError(f"{where}: expected an object with an 'op'")
    op = obj.get("op")
    if op not in _OPS:
        raise FeedError(f"{where}.op: expected one of {', '.join(_OPS)}, got {op!r}")
    unknown = sorted(set(obj) - _KEYS[op])
    if unknown:
        raise FeedError(
            f"{where}.{unknown[0]}: not a key of an {op!r} record "
            f"(keys: {', '.join(sorted(_KEYS[op]))})"
        )
    rid = obj.get("id")
    if rid is not None and not isinstance(rid, str | int):
        raise FeedError(f"{where}.id: expected a string or a number")
    mac: bytes | None = None
    if op != "session":
        text = obj.get("mac")
        if not isinstance(text, str) or not text.strip():
            raise FeedError(f"{where}.mac: required (e.g. '02:00:00:00:00:01')")
        try:
            mac = MacAddress.parse(text.strip()).address
        except ValueError as exc:
            raise FeedError(f"{where}.mac: {text!r} is not a MAC address ({exc})") from None
    try:
        ext = parse_extension_values(obj.get("ext"), f"{where}.ext")
    except ValueError as exc:
        raise FeedError(str(exc)) from None
    if op == "up" and (ext.pause or ext.restart):
        raise FeedError(f"{where}.ext: pause/restart go in an 'update' (RFC 8651 §3.2)")
    if op == "session" and ext.link_id is not None:
        raise FeedError(f"{where}.ext.link_id: names a destination, not the session")
    metrics = _metrics(obj.get("metrics"), f"{where}.metrics")
    rec = Record(
        op=op,
        mac=mac,
        metrics=metrics,
        addresses=_address_list(obj.get("addresses"), f"{where}.addresses"),
        add=_address_list(obj.get("add"), f"{where}.add"),
        drop=_address_list(obj.get("drop"), f"{where}.drop"),
        ext=ext,
        id=None if rid is None else str(rid),
    )
    if op == "update":
        other = set(ext.extensions_needed()) - {"link_id"}
        if metrics.is_empty() and not rec.add and not rec.drop and not other:
            raise FeedError(f"{where}: nothing to update (metrics, add, drop or ext)")
        both = set(rec.add) & set(rec.drop)
        if both:
            raise FeedError(f"{where}.drop: {min(both)} is also in add")
    if op == "session" and metrics.is_empty() and ext.is_empty():
        raise FeedError(f"{where}: nothing to update (metrics or ext)")
    return rec


# --------------------------------------------------------------------------
# Applying a batch
# --------------------------------------------------------------------------


class FeedApplier:
    """Checks and applies batches of records to a :class:`ModemDaemon`."""

    def __init__(self, modem: ModemDaemon, *, max_batch: int = 1000) -> None:
        self.modem = modem
        self.max_batch = max_batch
        self.batches = 0
        self.rejected = 0
        # One batch at a time: a batch checked against the table must be
        # applied before the next one is checked.
        self._lock = asyncio.Lock()

    async def apply(self, objs: Sequence[object]) -> list[RecordResult]:
        """Check every record of the batch, then apply all of them or none."""
        async with self._lock:
            return await self._apply(objs)

    async def _apply(self, objs: Sequence[object]) -> list[RecordResult]:
        if not objs:
            return []
        if len(objs) > self.max_batch:
            msg = f"batch of {len(objs)} records exceeds max_batch {self.max_batch}"
            self.rejected += 1
            return [RecordResult(i, False, msg, _id_of(o)) for i, o in enumerate(objs)]
        records: list[Record | None] = []
        errors: dict[int, str] = {}
        for i, obj in enumerate(objs):
            try:
                records.append(parse_record(obj, f"records[{i}]"))
            except FeedError as exc:
                records.append(None)
                errors[i] = str(exc)
        self._check_against_table(records, errors)
        if errors:
            self.rejected += 1
            return [
                RecordResult(
                    i,
                    False,
                    errors.get(i, "not applied: another record of the batch has errors"),
                    r.id if r is not None else _id_of(objs[i]),
                )
                for i, r in enumerate(records)
            ]
        results: list[RecordResult] = []
        for i, rec in enumerate(records):
            assert rec is not None
            try:
                await self._apply_one(rec)
                results.append(RecordResult(i, True, id=rec.id))
            except DaemonError as exc:  # the checks above should make this unreachable
                log.error("feed: record %d failed after checking: %s", i, exc)
                results.append(RecordResult(i, False, f"records[{i}]: {exc}", rec.id))
        self.batches += 1
        return results

    def _check_against_table(self, records: list[Record | None], errors: dict[int, str]) -> None:
        modem = self.modem
        table: dict[bytes, Metrics] = dict(modem.known_destinations())
        owners = _address_owners(modem)
        session = modem.session_metrics
        offered = modem.registry.items
        declared = set(session.as_dict())
        live = [s for s in modem.sessions() if s.state == "in-session"]
        for i, rec in enumerate(records):
            if rec is None:
                continue
            where = f"records[{i}]"
            try:
                undeclared = sorted(set(rec.metrics.as_dict()) - declared)
                if undeclared:
                    raise FeedError(
                        f"{where}.metrics.{undeclared[0]}: not declared in "
                        "modem.session_metrics; RFC 8175 §12.6 allows only metrics the "
                        "Session Initialization Response declared"
                    )
                for name in rec.ext.extensions_needed():
                    item_type = _ITEM_OF_KEY[name]
                    code = _EXT_OF_ITEM[item_type]
                    if item_type not in offered:
                        raise FeedError(
                            f"{where}.ext.{name}: extension {extension_name(code)} ({code}) is "
                            "not offered by this modem (add it to modem.extensions)"
                        )
                    for s in live:
                        if code not in s.extensions:
                            raise FeedError(
                                f"{where}.ext.{name}: session {s.id} ({s.peer}) did not "
                                f"negotiate extension {extension_name(code)} ({code})"
                            )
                if rec.op == "session":
                    _check_merged(session, rec.metrics, f"{where}.metrics")
                    session = session.merged(rec.metrics)
                    table = {k: m.merged(rec.metrics) for k, m in table.items()}
                    continue
                key, mac_text = rec.key, format_mac(rec.mac or b"")
                if rec.op == "up":
                    if key in table:
                        raise FeedError(f"{where}.mac: destination {mac_text} already exists")
                    _check_merged(session, rec.metrics, f"{where}.metrics")
                    _claim(owners, key, rec.addresses, f"{where}.addresses")
                    table[key] = session.merged(rec.metrics)
                elif key not in table:
                    raise FeedError(f"{where}.mac: no destination {mac_text}")
                elif rec.op == "update":
                    _check_merged(table[key], rec.metrics, f"{where}.metrics")
                    _claim(owners, key, rec.add, f"{where}.add")
                    for a in rec.drop:
                        if owners.get(a) == key:
                            del owners[a]
                    table[key] = table[key].merged(rec.metrics)
                else:  # down
                    del table[key]
                    for a in [a for a, k in owners.items() if k == key]:
                        del owners[a]
            except FeedError as exc:
                errors[i] = str(exc)

    async def _apply_one(self, rec: Record) -> None:
        m = self.modem
        extra: list[DataItem] = rec.ext.items()
        if rec.op == "up":
            await m.add_destination(
                rec.mac or b"", rec.metrics, addresses=rec.addresses, extra=extra
            )
        elif rec.op == "update":
            await m.update_destination(
                rec.mac or b"", rec.metrics, add=rec.add, drop=rec.drop, extra=extra
            )
        elif rec.op == "down":
            await m.drop_destination(rec.mac or b"", extra=list(rec.ext.identity()))
        else:
            await m.update_session_metrics(rec.metrics, extra=extra)


_ITEM_OF_KEY: Final = {
    "hop_count": 21,
    "latency_range": 28,
    "link_id": 27,
    "pause": 24,
    "restart": 25,
}
_EXT_OF_ITEM: Final = {21: 1, 24: 2, 25: 2, 27: 3, 28: 4}


def _id_of(obj: object) -> str | None:
    if isinstance(obj, Mapping):
        rid = obj.get("id")
        if isinstance(rid, str | int) and not isinstance(rid, bool):
            return str(rid)
    return None


def _check_merged(base: Metrics, change: Metrics, where: str) -> None:
    try:
        base.merged(change).validate()
    except ValueError as exc:
        raise FeedError(f"{where}: {exc} (together with the current metrics)") from None


def _address_owners(modem: ModemDaemon) -> dict[str, bytes]:
    """Address or subnet text -> key of the destination that has it (as the
    routers were told)."""
    out: dict[str, bytes] = {}
    ident_types = modem.registry.identity_items
    for _sid, info in modem.destinations():
        key = info.mac + b"".join(i.encode() for i in info.extra if i.TYPE in ident_types)
        for a in (*info.ipv4, *info.ipv6, *info.ipv4_subnets, *info.ipv6_subnets):
            out[str(a)] = key
    return out


def _claim(owners: dict[str, bytes], key: bytes, addresses: Iterable[str], where: str) -> None:
    for i, a in enumerate(addresses):
        other = owners.get(a)
        if other is not None and other != key:
            raise FeedError(
                f"{where}[{i}]: {a} already belongs to destination {format_mac(other[:6])}"
            )
    for a in addresses:
        owners[a] = key


# --------------------------------------------------------------------------
# JSON lines: standard input or loopback UDP
# --------------------------------------------------------------------------


def _answer(results: list[RecordResult]) -> dict[str, Any]:
    return {"ok": all(r.ok for r in results), "results": [r.as_json() for r in results]}


class JsonLinesFeed:
    """Reads JSON lines (stdin or loopback UDP) and answers each line.

    A line holds one record (an object) or a batch (an array of records).
    The answer is one line: ``{"ok": true, "results": [{"index": 0, "ok":
    true}, ...]}``; a line that is not JSON gets ``{"ok": false, "error":
    "..."}``.
    """

    def __init__(self, applier: FeedApplier) -> None:
        self.applier = applier
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
        return _answer(await self.applier.apply(batch))

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

    def _spawn(self, coro: Any) -> None:
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
        self.feed._spawn(self._worker())

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
