"""``dlepctl top``: a live full-screen view of a daemon's sessions and destinations.

Polls the management API every ``refresh`` seconds (and at once when
``watch()`` reports an event), and redraws in place: one table of sessions
(state, uptime, destinations, message and error counters) and one of
destinations with their metrics and a sparkline trend of the current data
rate (CDRR) and latency. ``q`` quits.

The pieces, for ``dlepctl`` and for tests:

* :func:`run_top` / :func:`run_top_async` run the textual app against a
  client (anything with ``list_sessions()``, ``list_destinations()`` and
  ``watch()``, sync or async: see :class:`TopClient`);
* :func:`render` is pure: rows and history in, a ``rich`` renderable out,
  no terminal needed;
* :class:`History` keeps the last samples per destination for the sparklines.

The client's results may be the management API's protobuf messages, the
daemon's own snapshots (:class:`dlep.daemon.SessionInfo`,
``(session_id, DestinationInfo)`` pairs) or plain dicts (the ``--json``
shape); :func:`session_row` and :func:`destination_row` read all three.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Static

from ..daemon import fmt
from ..fsm import Metrics
from ..wire import format_mac

if TYPE_CHECKING:
    from ..api.client import ManagementClient

__all__ = [
    "SPARK_CHARS",
    "DestinationRow",
    "History",
    "SessionRow",
    "TopApp",
    "TopClient",
    "add_arguments",
    "destination_row",
    "main",
    "render",
    "run_top",
    "run_top_async",
    "session_row",
    "sparkline",
]

SPARK_CHARS = "▁▂▃▄▅▆▇█"
#: Samples kept per destination (one per refresh).
HISTORY = 30
#: Destinations fetched and shown per refresh (the first, by session and
#: MAC): a page the daemon answers in milliseconds whatever its table's
#: size, while a screen never shows more anyway; the title gives the total.
MAX_ROWS = 1000
#: Width of a sparkline in the destinations table.
SPARK_WIDTH = 20
#: Coalesce event-triggered refreshes to at most one per this many seconds.
EVENT_DEBOUNCE = 0.2
#: Seconds before a failed or ended event stream is opened again.
WATCH_RETRY = 2.0


class TopClient(Protocol):
    """What ``top`` needs from the management client.

    Each method may be synchronous or return an awaitable; ``watch()`` may
    return a sync or async iterable of events (only their arrival matters)
    or raise if the client cannot stream.
    """

    def list_sessions(self) -> Any:
        """Every session (protobuf ``Session``, ``SessionInfo`` or dict)."""

    def list_destinations(self) -> Any:
        """Every destination (protobuf ``Destination``, ``(sid, DestinationInfo)`` or dict).

        A client that also has ``first_destinations(limit)`` (returning the
        first ``limit`` destinations and the total, as
        :class:`dlep.api.client.ManagementClient` does) is asked that
        instead, so a refresh costs the daemon one page however large its
        table is."""

    def watch(self) -> Any:
        """The daemon's event stream."""


if TYPE_CHECKING:

    def _management_client_is_a_top_client(c: ManagementClient) -> TopClient:
        return c  # mypy checks that the management client fits the protocol


# --------------------------------------------------------------------------
# Rows: one shape whatever the client returns
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as ``top`` shows it."""

    id: str
    peer: str
    role: str = ""
    state: str = ""
    uptime: float | None = None
    destinations: int = 0
    tx: int = 0
    rx: int = 0
    errors: int = 0
    peer_type: str = ""
    tls: bool = False


@dataclass(frozen=True, slots=True)
class DestinationRow:
    """One destination as ``top`` shows it."""

    session_id: str
    mac: str
    metrics: Metrics = field(default_factory=Metrics)
    addresses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """History key: (session id, MAC)."""
        return (self.session_id, self.mac)


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` that ``obj`` has set (dict key, attribute,
    protobuf field with presence)."""
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj and obj[name] is not None:
                return obj[name]
            continue
        has_field = getattr(obj, "HasField", None)
        if has_field is not None:
            try:
                if not has_field(name):
                    continue
            except ValueError:  # a field without presence (or no such field)
                if name not in _field_names(obj):
                    continue
            return getattr(obj, name)
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


def _field_names(msg: Any) -> set[str]:
    desc = getattr(msg, "DESCRIPTOR", None)
    return {f.name for f in getattr(desc, "fields", ())}


def _metrics_of(obj: Any) -> Metrics:
    if isinstance(obj, Metrics):
        return obj
    if obj is None:
        return Metrics()
    vals: dict[str, int] = {}
    for name in Metrics.field_names():
        v = _get(obj, name)
        if v is not None:
            vals[name] = int(v)
    return Metrics(**vals)


def _total(counts: Any) -> int:
    if not counts:
        return 0
    if isinstance(counts, Mapping) or hasattr(counts, "values"):
        return sum(int(v) for v in counts.values())
    return int(counts)


def _role_text(value: Any) -> str:
    if isinstance(value, str):
        return value.lower().removeprefix("role_")
    if isinstance(value, int):  # protobuf enum number
        return {1: "router", 2: "modem"}.get(value, "")
    return str(getattr(value, "value", value or ""))


def session_row(obj: Any) -> SessionRow:
    """A :class:`SessionRow` from a protobuf ``Session``, a ``SessionInfo`` or a dict."""
    if isinstance(obj, SessionRow):
        return obj
    uptime = _get(obj, "uptime")
    if uptime is None or (not uptime and _get(obj, "up_since")):
        up_since = _get(obj, "up_since")
        uptime = max(0.0, time.time() - float(up_since)) if up_since else None
    state = str(_get(obj, "state", default=""))
    return SessionRow(
        id=str(_get(obj, "id", "session_id", default="?")),
        peer=str(_get(obj, "peer", default="")),
        role=_role_text(_get(obj, "role", default="")),
        state=state,
        uptime=float(uptime) if uptime is not None and state == "in-session" else None,
        destinations=int(_get(obj, "destinations", default=0)),
        tx=_total(_get(obj, "tx_messages", "tx", default=None)),
        rx=_total(_get(obj, "rx_messages", "rx", default=None)),
        errors=_total(_get(obj, "errors", default=None)),
        peer_type=str(_get(obj, "peer_type", default="")),
        tls=bool(_get(obj, "tls", default=False)),
    )


def destination_row(obj: Any) -> DestinationRow:
    """A :class:`DestinationRow` from a protobuf ``Destination``,
    ``(session_id, DestinationInfo)`` or a dict."""
    if isinstance(obj, DestinationRow):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        sid, info = obj
        addrs = [str(a) for a in sorted(getattr(info, "ipv4", ()))]
        addrs += [str(a) for a in sorted(getattr(info, "ipv6", ()))]
        return DestinationRow(
            str(sid), format_mac(info.mac), _metrics_of(info.metrics), tuple(addrs)
        )
    mac = _get(obj, "mac", default="")
    if isinstance(mac, bytes):
        mac = format_mac(mac)
    addrs = [str(a) for a in _get(obj, "ipv4", default=())]
    addrs += [str(a) for a in _get(obj, "ipv6", default=())]
    return DestinationRow(
        str(_get(obj, "session_id", "session", default="")),
        str(mac),
        _metrics_of(_get(obj, "metrics")),
        tuple(addrs),
    )


def _unwrap(result: Any, attr: str) -> list[Any]:
    """A list from a response message (``.sessions``), a dict or a sequence."""
    if result is None:
        return []
    if isinstance(result, Mapping):
        result = result.get(attr, [])
    elif not isinstance(result, Sequence) and hasattr(result, attr):
        result = getattr(result, attr)
    return list(result)


def _session_order(sid: str) -> tuple[int, str]:
    return (len(sid), sid)


# --------------------------------------------------------------------------
# History and sparklines
# --------------------------------------------------------------------------


class History:
    """Last ``size`` samples of CDRR and latency per destination.

    :meth:`record` is called once per refresh; destinations no longer present
    are forgotten, so memory follows the live destination set.
    """

    def __init__(self, size: int = HISTORY) -> None:
        self.size = size
        self.cdrr: dict[tuple[str, str], deque[int]] = {}
        self.latency: dict[tuple[str, str], deque[int]] = {}

    def record(self, destinations: Iterable[DestinationRow]) -> None:
        """Append one sample per destination (metrics it does not report are skipped)."""
        seen: set[tuple[str, str]] = set()
        for d in destinations:
            seen.add(d.key)
            for store, value in ((self.cdrr, d.metrics.cdrr), (self.latency, d.metrics.latency)):
                q = store.get(d.key)
                if q is None:
                    q = store[d.key] = deque(maxlen=self.size)
                if value is not None:
                    q.append(value)
        for store in (self.cdrr, self.latency):
            for key in [k for k in store if k not in seen]:
                del store[key]

    def series(self, key: tuple[str, str], what: str) -> list[int]:
        """The samples of ``what`` (``"cdrr"`` or ``"latency"``) for one destination."""
        store = self.cdrr if what == "cdrr" else self.latency
        return list(store.get(key, ()))


def sparkline(
    values: Sequence[int | float],
    width: int = SPARK_WIDTH,
    *,
    top: float | None = None,
    relative: bool = False,
) -> str:
    """``values`` (the last ``width``) as block characters.

    Scaled to 0..``top`` (default: the largest value shown); with
    ``relative``, to the window's own min..max instead (at least a span of
    20 % of the maximum, so noise does not look like a swing) — for latency,
    whose changes matter more than its distance from zero.
    """
    vals = list(values)[-width:]
    if not vals:
        return ""
    hi = top if top is not None and top > 0 else max(vals)
    lo = 0.0
    if relative:
        hi = max(vals)
        lo = min(vals, default=0.0)
        if hi - lo < 0.2 * hi:
            lo = 0.8 * hi
    if hi <= lo:
        return SPARK_CHARS[0] * len(vals)
    last = len(SPARK_CHARS) - 1
    out = []
    for v in vals:
        frac = min(max((v - lo) / (hi - lo), 0.0), 1.0)
        out.append(SPARK_CHARS[round(frac * last)])
    return "".join(out)


# --------------------------------------------------------------------------
# Rendering (pure)
# --------------------------------------------------------------------------

_STATE_STYLE = {
    "in-session": "bold green",
    "initializing": "yellow",
    "terminating": "magenta",
    "reset": "red",
}


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def _opt(value: int | None, f: Callable[[int], str]) -> str:
    return "-" if value is None else f(value)


def _pct(v: int) -> str:
    return f"{v}%"


#: Per column: header, justification, drop rank (columns with the highest
#: rank go first when the terminal is too narrow; 0 = always shown).
_SESSION_COLS: Final = (
    ("id", "right", 0),
    ("peer", "left", 0),
    ("role", "left", 3),
    ("state", "left", 0),
    ("uptime", "right", 0),
    ("dests", "right", 0),
    ("tx msgs", "right", 2),
    ("rx msgs", "right", 2),
    ("errors", "right", 0),
    ("peer type", "left", 4),
)
_DEST_COLS: Final = (
    ("sid", "right", 0),
    ("mac", "left", 0),
    ("cdrr", "right", 0),
    ("cdrr trend", "left", 0),
    ("mdrr", "right", 3),
    ("cdrt", "right", 2),
    ("mdrt", "right", 5),
    ("latency", "right", 0),
    ("latency trend", "left", 0),
    ("rlq r/t", "right", 1),
    ("res", "right", 4),
    ("mtu", "right", 4),
)
_SPARK_COLS: Final = frozenset({"cdrr trend", "latency trend"})
#: Columns padding plus separator, per column.
_COL_OVERHEAD: Final = 3
MIN_SPARK_WIDTH: Final = 8


def _fit(
    cols: Sequence[tuple[str, str, int]],
    rows: Sequence[Sequence[str | Text]],
    width: int | None,
    spark: int,
) -> tuple[list[int], int]:
    """Which columns fit in ``width`` (indexes) and the sparkline width."""
    natural = []
    for i, (name, _, _) in enumerate(cols):
        if name in _SPARK_COLS:
            natural.append(max(len(name), spark))
            continue
        natural.append(max([len(name), *(len(str(r[i])) for r in rows)]))
    keep = list(range(len(cols)))
    if width is None:
        return keep, spark

    def total(idx: list[int], sw: int) -> int:
        out = 0
        for i in idx:
            name = cols[i][0]
            out += (max(len(name), sw) if name in _SPARK_COLS else natural[i]) + _COL_OVERHEAD
        return out

    sw = spark
    while total(keep, sw) > width and sw > MIN_SPARK_WIDTH:
        sw -= 1
    for rank in sorted({c[2] for c in cols if c[2]}, reverse=True):
        if total(keep, sw) <= width:
            break
        keep = [i for i in keep if cols[i][2] != rank]
    return keep, sw


def _table(
    title: str,
    cols: Sequence[tuple[str, str, int]],
    rows: Sequence[Sequence[str | Text]],
    keep: Sequence[int],
    empty: str,
) -> Table:
    t = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for i in keep:
        name, just, _ = cols[i]
        t.add_column(name, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(*(r[i] for i in keep))
    if not rows:
        t.add_row(*[Text(empty, style="dim") if n == 1 else "" for n in range(len(keep))])
    return t


def render(
    sessions: Iterable[Any],
    destinations: Iterable[Any],
    history: History | None = None,
    *,
    status: str = "",
    width: int | None = None,
    spark_width: int = SPARK_WIDTH,
    total: int | None = None,
) -> RenderableType:
    """The whole view as one ``rich`` renderable.

    ``sessions`` / ``destinations`` are rows or anything
    :func:`session_row` / :func:`destination_row` accept; ``history``
    supplies the sparklines (none without it); ``status`` is a line shown
    under the title (e.g. a connection error). With ``width`` (the terminal's
    columns) sparklines shrink and the least important columns are left out
    so the tables fit; without it everything is shown. ``total``: how many
    destinations the daemon has, when ``destinations`` are only the first
    of them (the title says so).
    """
    srows = sorted((session_row(s) for s in sessions), key=lambda r: _session_order(r.id))
    drows = sorted(
        (destination_row(d) for d in destinations),
        key=lambda r: (_session_order(r.session_id), r.mac),
    )
    hist = history or History()
    up = sum(1 for s in srows if s.state == "in-session")

    shown = len(drows)
    all_dests = max(total or 0, shown)
    title = Text.assemble(
        ("dlep top", "bold"),
        f"  {len(srows)} session(s), {up} up, {all_dests:,} destination(s)",
        (f" (first {shown:,} shown; dlepctl destinations lists all)" if all_dests > shown else ""),
        ("   q quit", "dim"),
    )
    parts: list[RenderableType] = [title]
    if status:
        parts.append(Text(status, style="bold red"))

    scells: list[list[str | Text]] = [
        [
            s.id,
            s.peer + (" (tls)" if s.tls else ""),
            s.role,
            Text(s.state, style=_STATE_STYLE.get(s.state, "")),
            _uptime(s.uptime),
            str(s.destinations),
            str(s.tx),
            str(s.rx),
            Text(str(s.errors), style="bold red" if s.errors else ""),
            s.peer_type,
        ]
        for s in srows
    ]
    keep, _ = _fit(_SESSION_COLS, scells, width, 0)
    parts.append(_table("Sessions", _SESSION_COLS, scells, keep, "no sessions"))

    dtext: list[list[str]] = []
    for d in drows:
        m = d.metrics
        dtext.append(
            [
                d.session_id or "-",
                d.mac,
                _opt(m.cdrr, fmt.rate),
                "",
                _opt(m.mdrr, fmt.rate),
                _opt(m.cdrt, fmt.rate),
                _opt(m.mdrt, fmt.rate),
                _opt(m.latency, fmt.latency),
                "",
                f"{_opt(m.rlqr, _pct)}/{_opt(m.rlqt, _pct)}",
                _opt(m.resources, _pct),
                _opt(m.mtu, str),
            ]
        )
    keep, sw = _fit(_DEST_COLS, dtext, width, spark_width)
    dcells: list[list[str | Text]] = []
    for d, cells in zip(drows, dtext, strict=True):
        row: list[str | Text] = list(cells)
        row[3] = Text(sparkline(hist.series(d.key, "cdrr"), sw, top=d.metrics.mdrr), "cyan")
        row[8] = Text(sparkline(hist.series(d.key, "latency"), sw, relative=True), "yellow")
        dcells.append(row)
    parts.append(Text(""))
    parts.append(_table("Destinations", _DEST_COLS, dcells, keep, "no destinations"))
    return Group(*parts)


# --------------------------------------------------------------------------
# The live view
# --------------------------------------------------------------------------


async def _call(fn: Callable[[], Any]) -> Any:
    result = fn()
    if inspect.isawaitable(result):
        result = await result
    return result


class TopApp(App[int]):
    """The textual application behind ``dlepctl top``."""

    TITLE = "dlep top"
    CSS = "#view { height: auto; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "toggle_pause", "Pause"),
    ]

    def __init__(self, client: TopClient, *, refresh: float = 1.0, watch: bool = True) -> None:
        super().__init__()
        self.client = client
        self.refresh_interval = max(0.1, refresh)
        self.history = History()
        self.sessions: list[SessionRow] = []
        self.destinations: list[DestinationRow] = []
        #: How many destinations the daemon has (more than are shown beyond MAX_ROWS).
        self.total_destinations = 0
        self.status = ""
        #: The last poll failed: the daemon is gone (or not answering).
        self.lost = False
        self.paused = False
        self.polls = 0
        self._use_watch = watch
        self._poll_lock = asyncio.Lock()
        self._poke_pending = False
        self._record_pending = False
        self._watch_stream: Any = None
        self._watch_thread: threading.Thread | None = None
        self._closing = False

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="view")
        yield Footer()

    async def on_mount(self) -> None:
        await self.poll()
        self.set_interval(self.refresh_interval, self.poll)
        if self._use_watch:
            self._start_watch()

    async def on_unmount(self) -> None:
        self._closing = True
        cancel = getattr(self._watch_stream, "cancel", None)
        if callable(cancel):
            with contextlib.suppress(Exception):
                cancel()
        # An asyncio client (the management API's) holds a channel bound to
        # this event loop: close it while the loop still runs.
        close = getattr(self.client, "close", None)
        if inspect.iscoroutinefunction(close):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), 2)

    # -- data ------------------------------------------------------------------

    async def poll(self, record: bool = True) -> None:
        """Fetch sessions and destinations once and redraw; ``record`` adds a
        sparkline sample (only the periodic polls do, so the trend has an even
        time axis; event-triggered ones just update the numbers)."""
        if self.paused or self._closing:
            return
        if self._poll_lock.locked():
            # One is in flight: it takes the sample if this one was to.
            self._record_pending = self._record_pending or record
            return
        async with self._poll_lock:
            record, self._record_pending = record or self._record_pending, False
            try:
                sessions = _unwrap(await _call(self.client.list_sessions), "sessions")
                first = getattr(self.client, "first_destinations", None)
                if callable(first):
                    page, total = await _call(lambda: first(MAX_ROWS))
                    dests = list(page)
                else:
                    dests = _unwrap(await _call(self.client.list_destinations), "destinations")
                    total = len(dests)
            except Exception as exc:  # the daemon went away, a timeout, ...
                self.status = f"cannot read from the daemon: {_describe_error(exc)}"
                self.lost = True
            else:
                self.lost = False
                self.sessions = [session_row(s) for s in sessions]
                self.destinations = [destination_row(d) for d in dests]
                self.total_destinations = total
                if record:
                    self.history.record(self.destinations)
                self.status = ""
                self.polls += 1
            self._redraw()

    def _redraw(self) -> None:
        status = self.status or ("paused (p to resume)" if self.paused else "")
        width = max(40, self.size.width - 2)  # room for a scroll bar
        view = render(
            self.sessions,
            self.destinations,
            self.history,
            status=status,
            width=width,
            total=self.total_destinations,
        )
        for widget in self.query("#view").results(Static):
            widget.update(view)

    def on_resize(self) -> None:
        self._redraw()

    def action_refresh_now(self) -> None:
        """Poll now (``r``)."""
        self.run_worker(self.poll(record=False), exclusive=False)

    def action_toggle_pause(self) -> None:
        """Stop / resume refreshing (``p``)."""
        self.paused = not self.paused
        self._redraw()

    # -- events ----------------------------------------------------------------

    def _poke(self) -> None:
        """An event arrived: refresh soon (coalesced)."""
        if self._poke_pending or self._closing:
            return
        self._poke_pending = True

        def fire() -> None:
            self._poke_pending = False
            self.run_worker(self.poll(record=False), exclusive=False)

        self.set_timer(EVENT_DEBOUNCE, fire)

    def _start_watch(self) -> None:
        """Follow ``client.watch()`` to refresh as soon as something happens.

        Async streams run as a worker, sync ones in a daemon thread (a blocked
        stream must not hold up exit); a stream that fails or ends is opened
        again after :data:`WATCH_RETRY` seconds.
        """
        try:
            first = self.client.watch()
        except Exception:
            return  # this client cannot stream: polling alone
        if hasattr(first, "__aiter__") or inspect.isawaitable(first):
            self.run_worker(self._watch_async(first), exclusive=False)
        elif hasattr(first, "__iter__"):
            t = threading.Thread(target=self._watch_sync, args=(first,), daemon=True)
            self._watch_thread = t
            t.start()

    async def _watch_async(self, stream: Any) -> None:
        while not self._closing:
            try:
                if inspect.isawaitable(stream):
                    stream = await stream
                self._watch_stream = stream
                async for _ in stream:
                    self._poke()
            except Exception:
                pass
            await asyncio.sleep(WATCH_RETRY)
            try:
                stream = self.client.watch()
            except Exception:
                return

    def _watch_sync(self, stream: Iterable[Any]) -> None:
        while not self._closing:
            self._watch_stream = stream
            with contextlib.suppress(Exception):
                for _ in stream:
                    if self._closing:
                        return
                    with contextlib.suppress(Exception):
                        self.call_from_thread(self._poke)
            time.sleep(WATCH_RETRY)
            try:
                stream = self.client.watch()
            except Exception:
                return


def _describe_error(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):  # grpc.RpcError
        with contextlib.suppress(Exception):
            return str(details())
    return str(exc) or type(exc).__name__


#: Exit code of a view that was left while the daemon could not be read.
EXIT_LOST: Final = 3


async def run_top_async(client: TopClient, *, refresh: float = 1.0) -> int:
    """Run the live view in the current event loop until ``q``; exit code
    (:data:`EXIT_LOST` if the daemon was unreachable at the end)."""
    app = TopApp(client, refresh=refresh)
    await app.run_async()
    return app.return_code or (EXIT_LOST if app.lost else 0)


def run_top(client: TopClient, *, refresh: float = 1.0) -> int:
    """Run the live view (its own event loop) until ``q``; exit code
    (:data:`EXIT_LOST` if the daemon was unreachable at the end)."""
    app = TopApp(client, refresh=refresh)
    app.run()
    return app.return_code or (EXIT_LOST if app.lost else 0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``dlepctl top``."""
    p.add_argument(
        "--refresh",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between refreshes (default 1; events also refresh at once)",
    )


def main(args: argparse.Namespace, client: TopClient) -> int:
    """``dlepctl top`` with parsed ``args`` (see :func:`add_arguments`)."""
    return run_top(client, refresh=float(getattr(args, "refresh", 1.0) or 1.0))
