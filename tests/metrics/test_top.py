"""``dlepctl top``: the pure render function, the textual app under its test
pilot against live daemons, and the real thing in a tmux terminal."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType
from textual.widgets import Static

from dlep.cli.top import (
    SPARK_CHARS,
    DestinationRow,
    History,
    SessionRow,
    TopApp,
    destination_row,
    render,
    session_row,
    sparkline,
)
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.fsm import Metrics

from .conftest import Pair, wait_until

HERE = Path(__file__).resolve().parent
MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"


def to_text(renderable: RenderableType, width: int = 220) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


# --------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 50, 100], top=100) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([5, 10]) == "▅█"  # scaled to the largest shown
    assert len(sparkline(range(100), width=20)) == 20
    assert sparkline([200], top=100) == "█"  # clipped
    # Relative: the window's own range, at least 20 % of its maximum.
    assert sparkline([10, 12, 14], relative=True) == "▁▅█"
    assert sparkline([100, 100], relative=True) == "██"
    assert sparkline([90, 100], relative=True) == "▅█"
    assert sparkline([0, 0], relative=True) == "▁▁"


def test_history_is_bounded_and_forgets() -> None:
    h = History(size=5)
    for i in range(12):
        h.record([DestinationRow("1", MAC1, Metrics(cdrr=i, latency=100 + i))])
    assert h.series(("1", MAC1), "cdrr") == [7, 8, 9, 10, 11]
    assert h.series(("1", MAC1), "latency") == [107, 108, 109, 110, 111]
    h.record([DestinationRow("1", MAC2, Metrics())])
    assert h.series(("1", MAC1), "cdrr") == []
    assert h.series(("1", MAC2), "cdrr") == []
    assert set(h.cdrr) == {("1", MAC2)}


def _rows() -> tuple[list[SessionRow], list[DestinationRow], History]:
    sessions = [
        SessionRow("1", "127.0.0.1:8854", "router", "in-session", 3725, 2, 40, 38, 0, "modem"),
        SessionRow("2", "[::1]:8854", "router", "initializing", None, 0, 1, 0, 3, "?"),
    ]
    dests = [
        DestinationRow(
            "1",
            MAC1,
            Metrics(
                mdrr=54_000_000,
                mdrt=54_000_000,
                cdrr=36_000_000,
                cdrt=24_000_000,
                latency=2000,
                resources=80,
                rlqr=90,
                rlqt=85,
                mtu=1500,
            ),
        ),
        DestinationRow("1", MAC2, Metrics(cdrr=5_500_000, latency=8000)),
    ]
    h = History()
    for k in range(6):
        h.record(
            [
                DestinationRow("1", MAC1, Metrics(cdrr=10_000_000 * k, latency=1000 + 500 * k)),
                DestinationRow("1", MAC2, Metrics(cdrr=5_500_000, latency=8000)),
            ]
        )
    return sessions, dests, h


def test_render_sessions_and_destinations() -> None:
    sessions, dests, h = _rows()
    text = to_text(render(sessions, dests, h))
    assert "2 session(s), 1 up, 2 destination(s)" in text
    for s in ("127.0.0.1:8854", "[::1]:8854", "in-session", "initializing", "01:02:05"):
        assert s in text, s
    assert MAC1 in text and MAC2 in text
    for s in ("36 Mb/s", "54 Mb/s", "24 Mb/s", "5.5 Mb/s", "2 ms", "8 ms", "90%/85%", "80%"):
        assert s in text, s
    assert "1500" in text
    # Trends: a rising CDRR (0..50 Mb/s of 54) and latency, and a flat line.
    # CDRR 0..50 Mb/s against its 54 Mb/s maximum; latency 1..3.5 ms, relative.
    assert "▁▂▄▅▆▇" in text, text
    assert "▁▂▄▅▇█" in text, text
    assert "██████" in text  # MAC2's flat series, scaled to itself (no mdrr)
    assert any(c in text for c in SPARK_CHARS)
    # A narrow terminal: shorter sparklines, the less important columns go.
    narrow = to_text(render(sessions, dests, h, width=80), width=80)
    assert all(len(line) <= 80 for line in narrow.splitlines()), narrow
    for s in (MAC1, MAC2, "36 Mb/s", "2 ms", "in-session", "▁▂▄▅▆▇"):
        assert s in narrow, s
    assert "mdrt" not in narrow and "peer type" not in narrow
    # Unknown values are a dash, and no history means no sparkline.
    bare = to_text(render(sessions, [DestinationRow("1", MAC2, Metrics())]))
    assert "-/-" in bare and not any(c in bare for c in SPARK_CHARS)
    empty = to_text(render([], [], status="cannot read from the daemon: gone"))
    assert "no sessions" in empty and "no destinations" in empty
    assert "cannot read from the daemon: gone" in empty


def test_rows_from_every_client_shape() -> None:
    d = {"session_id": "3", "mac": MAC1, "metrics": {"cdrr": 7, "latency": 9}}
    assert destination_row(d) == DestinationRow("3", MAC1, Metrics(cdrr=7, latency=9))
    s = session_row(
        {
            "id": "3",
            "peer": "p",
            "role": "ROLE_MODEM",
            "state": "in-session",
            "uptime": 5.0,
            "tx_messages": {"HEARTBEAT": 2, "DESTINATION_UP": 1},
            "rx_messages": {"HEARTBEAT": 4},
            "errors": {"INVALID_MESSAGE": 1},
        }
    )
    assert (s.role, s.tx, s.rx, s.errors, s.uptime) == ("modem", 3, 4, 1, 5.0)

    pb = pytest.importorskip("dlep.api._pb.management_pb2")
    msg = pb.Destination(session_id="4", mac=MAC2, metrics=pb.Metrics(cdrr=0, mtu=1400))
    # cdrr=0 is set (explicit presence); the others are not reported.
    assert destination_row(msg) == DestinationRow("4", MAC2, Metrics(cdrr=0, mtu=1400))
    sm = pb.Session(id="4", peer="x:1", role=1, state="in-session", uptime=61.0, destinations=2)
    sm.tx_messages["HEARTBEAT"] = 5
    sm.errors["INVALID_MESSAGE"] = 2
    row = session_row(sm)
    assert (row.id, row.role, row.tx, row.rx, row.errors) == ("4", "router", 5, 0, 2)
    assert (row.uptime, row.destinations) == (61.0, 2)
    resp = pb.ListDestinationsResponse(destinations=[msg])
    assert MAC2 in to_text(render([sm], resp.destinations))


# --------------------------------------------------------------------------
# The app, under textual's pilot, against live daemons
# --------------------------------------------------------------------------


class DaemonClient:
    """A stand-in for the management client that reads a daemon directly
    (sync methods) and streams its events (an async iterator)."""

    def __init__(self, daemon: RouterDaemon | ModemDaemon) -> None:
        self.daemon = daemon
        self.calls = 0

    def list_sessions(self) -> Any:
        self.calls += 1
        return self.daemon.sessions()

    def list_destinations(self) -> Any:
        return self.daemon.destinations()

    def watch(self) -> AsyncIterator[Any]:
        return self.daemon.subscribe().__aiter__()


async def test_top_app_live_and_quits_on_q(pair: Pair) -> None:
    modem, router, _ms, _rs = await pair.start()
    client = DaemonClient(router)
    app = TopApp(client, refresh=0.1)
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_until(lambda: app.polls >= 4, what="four refreshes")
        (sid, _), _ = router.destinations()
        assert len(app.history.series((sid, MAC1), "cdrr")) >= 3
        view = app.query_one("#view", Static)
        text = to_text(view.content)  # type: ignore[arg-type]
        assert MAC1 in text and MAC2 in text
        assert "36 Mb/s" in text and "5.5 Mb/s" in text and "2 ms" in text
        assert "in-session" in text
        assert any(c in text for c in SPARK_CHARS)

        # Updates in place: a new rate shows without any key pressed.
        await modem.update_destination(MAC1, Metrics(cdrr=12_000_000))
        await wait_until(
            lambda: "12 Mb/s" in to_text(view.content),  # type: ignore[arg-type]
            what="the new rate on screen",
        )
        await pilot.press("p")
        assert app.paused
        await pilot.press("p")
        await pilot.press("q")
    assert app.return_code == 0
    assert not app.is_running


async def test_events_refresh_at_once_and_errors_show() -> None:
    class AsyncClient:
        def __init__(self) -> None:
            self.events: asyncio.Queue[object] = asyncio.Queue()
            self.fail = False
            self.polls = 0

        async def list_sessions(self) -> list[SessionRow]:
            self.polls += 1
            if self.fail:
                raise ConnectionError("daemon gone")
            return [SessionRow("1", "peer:1", state="in-session")]

        async def list_destinations(self) -> dict[str, Any]:
            return {"destinations": [DestinationRow("1", MAC1, Metrics(cdrr=1000))]}

        async def watch(self) -> AsyncIterator[object]:
            while True:
                yield await self.events.get()

    client = AsyncClient()
    app = TopApp(client, refresh=60)  # only the first poll and event-driven ones
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_until(lambda: app.polls == 1, what="first poll")
        await client.events.put("destination up")
        await wait_until(lambda: app.polls == 2, what="a refresh triggered by the event")
        # Event-driven refreshes update the numbers but take no trend sample.
        assert app.history.series(("1", MAC1), "cdrr") == [1000]
        client.fail = True
        await pilot.press("r")
        await wait_until(lambda: "daemon gone" in app.status, what="the error line")
        text = to_text(app.query_one("#view", Static).content)  # type: ignore[arg-type]
        assert "cannot read from the daemon: daemon gone" in text
        assert MAC1 in text  # the last good data stays
        await pilot.press("q")
    assert app.return_code == 0


# --------------------------------------------------------------------------
# A real terminal: tmux
# --------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_top_in_tmux_starts_and_quits_on_q(tmp_path: Path) -> None:
    sock = f"dlep-top-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    rc_file = tmp_path / "rc"
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    cmd = f"{sys.executable} {HERE / 'top_demo.py'}; echo $? > {rc_file}; sleep 30"
    env = dict(os.environ, TERM="xterm-256color")
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "200", "-y", "40", "-s", "top", cmd],
        check=True,
        env=env,
    )
    try:

        def screen() -> str:
            out = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", "top"], capture_output=True, text=True
            )
            return out.stdout

        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = screen()
            if MAC2 in text and "Mb/s" in text and any(c in text for c in SPARK_CHARS[1:]):
                break
            time.sleep(0.2)
        assert MAC1 in text and MAC2 in text, text
        assert "in-session" in text and "canned modem" in text, text
        assert "ms" in text and "Mb/s" in text, text
        subprocess.run([*tmux, "send-keys", "-t", "top", "q"], check=True)
        deadline = time.monotonic() + 15
        while not rc_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc_file.exists(), screen()
        assert rc_file.read_text().strip() == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


# --------------------------------------------------------------------------
# Against the management API (gRPC over a Unix socket)
# --------------------------------------------------------------------------


async def test_top_over_the_management_api(pair: Pair) -> None:
    server_mod = pytest.importorskip("dlep.api.server")
    client_mod = pytest.importorskip("dlep.api.client")
    modem, router, _ms, _rs = await pair.start()
    sock_dir = Path(tempfile.mkdtemp(prefix="dlep-top-", dir="/tmp"))
    api = server_mod.ManagementServer(router, socket_path=sock_dir / "router.sock")
    await api.start()
    client = client_mod.ManagementClient.unix(sock_dir / "router.sock")
    try:
        app = TopApp(client, refresh=0.2)
        async with app.run_test(size=(200, 40)) as pilot:
            await wait_until(lambda: app.polls >= 2, what="two refreshes over gRPC")
            view = app.query_one("#view", Static)
            text = to_text(view.content)  # type: ignore[arg-type]
            assert MAC1 in text and MAC2 in text and "36 Mb/s" in text, text
            assert "in-session" in text and "router" in text
            # An event (over WatchEvents) refreshes before the next poll is due.
            await modem.update_destination(MAC2, Metrics(cdrr=7_000_000))
            await wait_until(
                lambda: "7 Mb/s" in to_text(view.content),  # type: ignore[arg-type]
                what="the update on screen",
            )
            await pilot.press("q")
        assert app.return_code == 0
    finally:
        await client.close()
        await api.stop()
        shutil.rmtree(sock_dir, ignore_errors=True)


async def test_top_fetches_one_page_and_says_how_many_are_left_out() -> None:
    """A refresh asks a client that can for the first MAX_ROWS destinations
    and the total, never the whole table: at 100k destinations fetching all
    of them cost the daemon about 1.8 s of CPU per refresh (issue 14)."""
    from dlep.cli.top import MAX_ROWS

    class PagedClient:
        def __init__(self) -> None:
            self.limits: list[int] = []

        async def list_sessions(self) -> list[SessionRow]:
            return [SessionRow("1", "peer:1", state="in-session")]

        async def list_destinations(self) -> list[DestinationRow]:
            raise AssertionError("top fetched the whole table")

        async def first_destinations(self, limit: int) -> tuple[list[DestinationRow], int]:
            self.limits.append(limit)
            return [DestinationRow("1", MAC1, Metrics(cdrr=1000))], 100_000

        def watch(self) -> Any:
            raise NotImplementedError

    client = PagedClient()
    app = TopApp(client, refresh=60, watch=False)
    async with app.run_test(size=(200, 40)) as pilot:
        await wait_until(lambda: app.polls == 1, what="first poll")
        text = to_text(app.query_one("#view", Static).content)  # type: ignore[arg-type]
        assert "100,000 destination(s) (first 1 shown" in text, text
        assert MAC1 in text
        await pilot.press("q")
    assert client.limits == [MAX_ROWS]
    assert "first" not in to_text(render([], [DestinationRow("1", MAC1, Metrics())], total=1))
