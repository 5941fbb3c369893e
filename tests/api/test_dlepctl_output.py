"""``dlepctl`` output is true and readable: full values in a pipe, whole
columns (never parts of values) left out on a narrow terminal."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import socket
import struct
import sys
import termios
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from dlep.cli.dlepctl import (
    Unreachable,
    _command_role,
    build_parser,
    resolve_target,
    socket_state,
)
from dlep.cli.tables import render_table

from .conftest import MAC1, MAC2, Live, dlepctl, until

pytestmark = pytest.mark.timeout(120)

#: Many addresses: a row and an event line far longer than 200 characters.
MANY = [f"fd00::{n:x}" for n in range(0x100, 0x118)]
LONG_MAC = "02:00:00:00:00:77"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def R(live: Live) -> tuple[str, str]:
    return ("--socket", str(live.router_sock))


async def _add_long(live: Live) -> None:
    res = await dlepctl(
        "--socket",
        str(live.modem_sock),
        "destination",
        "add",
        LONG_MAC,
        "--cdrr",
        "46.5M",
        "--mdrr",
        "54M",
        *(x for a in MANY for x in ("--ipv6", a)),
    )
    assert res.code == 0, res
    await until(lambda: LONG_MAC in live.router_macs(), what="long destination at the router")


async def test_pipe_prints_every_value_in_full(live: Live) -> None:
    await _add_long(live)
    res = await dlepctl(*R(live), "destinations")
    assert res.code == 0, res
    assert "…" not in res.out and "\x1b" not in res.out
    row = next(ln for ln in res.out.splitlines() if LONG_MAC in ln)
    assert len(row) > 200  # no width cap
    assert "46.5 Mb/s" in row and "54 Mb/s" in row
    for a in MANY:
        assert a in row
    for mac in (MAC1, MAC2):
        assert mac in res.out
    header = res.out.splitlines()[0]
    for col in ("SESSION", "MAC", "CDRR", "MDRT", "RLQT", "MTU", "EXT", "ADDRESSES"):
        assert col in header.split()


async def test_no_headers(live: Live) -> None:
    after, before, info = await asyncio.gather(
        dlepctl(*R(live), "destinations", "--no-headers"),
        dlepctl(*R(live), "--no-headers", "sessions"),
        dlepctl(*R(live), "info", "--no-headers"),
    )
    for res in (after, before, info):
        assert res.code == 0, res
        assert "─" not in res.out
    lines = after.out.splitlines()
    assert len(lines) == 2 and lines[0].split()[:2] == ["1", MAC1]
    assert lines[1].split()[:2] == ["1", MAC2]
    (row,) = before.out.splitlines()
    assert row.split()[0] == "1" and "in-session" in row
    assert info.out.splitlines()[0].split() == ["role", "router"]


async def test_watch_in_a_pipe_keeps_long_lines_whole(live: Live) -> None:
    async def later() -> None:
        await until(lambda: len(live.router_api.watchers) == 1, what="the watch stream")
        await _add_long(live)

    res, _ = await asyncio.gather(dlepctl(*R(live), "watch", "--count", "1"), later())
    assert res.code == 0, res
    (line,) = res.out.splitlines()
    assert len(line) > 200 and LONG_MAC in line
    for a in MANY:
        assert a in line


async def _in_pty(*argv: str, columns: int = 80) -> str:
    """Run dlepctl with stdout on a pseudo-terminal ``columns`` wide."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dlep.cli.dlepctl",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=slave,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    os.close(slave)

    def read_all() -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    loop = asyncio.get_running_loop()
    try:
        out = await asyncio.wait_for(loop.run_in_executor(None, read_all), 30)
        _, err = await proc.communicate()
    finally:
        os.close(master)
    assert proc.returncode == 0, err
    return ANSI.sub("", out.decode()).replace("\r\n", "\n")


async def test_narrow_terminal_drops_whole_columns(live: Live) -> None:
    out = await _in_pty(*R(live), "destinations", columns=80)
    lines = out.splitlines()
    assert "…" not in out
    for ln in lines:
        assert cell_len(ln) <= 80, ln
    header = lines[0].split()
    assert header[:3] == ["SESSION", "MAC", "CDRR"] and "ADDRESSES" in header
    assert "MTU" not in header and "RES" not in header  # dropped whole
    row1 = next(ln for ln in lines if MAC1 in ln)
    assert "36 Mb/s" in row1 and "10.0.0.11, fd00::11" in row1
    assert "hidden, too narrow" in lines[-1] and "MTU" in lines[-1]
    sessions = await _in_pty(*R(live), "sessions", columns=80)
    assert all(cell_len(ln) <= 80 for ln in sessions.splitlines()), sessions
    header = sessions.splitlines()[0].split()
    assert header[:3] == ["ID", "PEER", "STATE"] and "ERRORS" in header
    assert "in-session" in sessions and f"127.0.0.1:{live.modem.listening[0][1]}" in sessions
    # A wide terminal shows everything.
    wide = await _in_pty(*R(live), "destinations", columns=250)
    assert "too narrow" not in wide and "MTU" in wide.splitlines()[0]


def test_render_folds_rather_than_cuts() -> None:
    addrs = ", ".join(MANY)
    cols = ("SESSION", "MAC", "CDRR", "MTU", "ADDRESSES")
    rows = [("1", LONG_MAC, "46.5 Mb/s", "1500", addrs)]
    r = render_table(cols, rows, width=60, right=frozenset({"CDRR"}), drop_rank={"MTU": 1})
    assert r.hidden == ["MTU"]
    lines = r.header + r.body
    assert all(cell_len(ln) <= 60 for ln in lines)
    assert LONG_MAC in r.body[0] and "46.5 Mb/s" in r.body[0]
    # The folded cell, read back in order, is the whole value.
    start = r.header[0].index("ADDRESSES")
    assert " ".join(ln[start:].strip() for ln in r.body) == addrs
    unlimited = render_table(cols, rows, width=None)
    assert unlimited.hidden == [] and addrs in unlimited.body[0]
    bare = render_table(cols, rows, headers=False)
    assert bare.header == [] and len(bare.body) == 1


# ---------------------------------------------------------------------------
# Detail views
# ---------------------------------------------------------------------------


async def test_session_detail(live: Live) -> None:
    table, js, missing = await asyncio.gather(
        dlepctl(*R(live), "session", "1"),
        dlepctl(*R(live), "session", "1", "--json"),
        dlepctl(*R(live), "session", "9"),
    )
    assert table.code == 0, table
    block = table.out.split("\n\n")[0].splitlines()[2:]
    rows = dict(re.split(r"\s{2,}", ln.strip(), maxsplit=1) for ln in block)
    assert rows["session"] == "1" and rows["state"] == "in-session"
    assert rows["our role"] == "router" and rows["peer type"] == "test modem"
    assert rows["peer"] == f"127.0.0.1:{live.modem.listening[0][1]}"
    assert rows["heartbeat"] == "ours 200 ms, peer's 200 ms"
    assert "ago)" in rows["connected"] and "ago)" in rows["in session since"]
    assert rows["destinations"] == "2"
    assert "mdrr=100 Mb/s" in rows["session metrics"]
    assert "DESTINATION_UP" in table.out and "SESSION_INITIALIZATION" in table.out
    assert "ago)" in rows["last heard"]
    assert rows["flaps"].startswith("0 earlier session(s)")
    assert js.code == 0 and js.json()["id"] == "1" and "up_since" in js.json()
    assert js.json()["last_heard"] >= js.json()["up_since"]
    assert missing.code == 1 and "no such session (sessions: 1)" in missing.err


async def test_session_detail_counts_flaps(live: Live) -> None:
    await live.router.terminate_session("1")

    def again() -> bool:
        return any(s.state == "in-session" for s in live.router.sessions())

    await until(again, what="the router's new session with the modem")
    (s,) = live.router.sessions()
    res = await dlepctl(*R(live), "session", s.id, "--json")
    assert res.code == 0, res
    assert res.json()["flaps"] == 1
    text = await dlepctl(*R(live), "session", s.id)
    assert "1 earlier session(s) with this address went down" in text.out


async def test_destination_show(live: Live) -> None:
    router, modem, js, upper, missing, bad = await asyncio.gather(
        dlepctl(*R(live), "destination", "show", MAC1),
        dlepctl("--socket", str(live.modem_sock), "destination", "show", MAC2),
        dlepctl(*R(live), "destination", "show", MAC2, "--json"),
        dlepctl(*R(live), "destination", "show", MAC1.upper().replace(":", "-")),
        dlepctl(*R(live), "destination", "show", "02:00:00:00:00:55"),
        dlepctl(*R(live), "destination", "show", "zz"),
    )
    assert router.code == 0, router
    text = router.out
    for want in (
        MAC1,
        "current data rate receive",
        "36 Mb/s",
        "24 Mb/s",
        "2 ms",
        "10.0.0.11",
        "fd00::11",
    ):
        assert want in text, want
    assert modem.code == 0 and "192.168.12.0/24" in modem.out and "60%" in modem.out
    assert js.code == 0 and js.json()[0]["metrics"]["cdrr"] == 5_500_000
    assert upper.code == 0 and MAC1 in upper.out
    assert missing.code == 1 and "no destination 02:00:00:00:00:55" in missing.err
    assert bad.code == 2


def _row(text: str, key: str) -> str:
    """The value of row ``key`` of a KEY/VALUE table."""
    for line in text.splitlines():
        if line.startswith(key + "  "):
            return line[len(key) :].strip()
    raise AssertionError(f"no row {key!r} in:\n{text}")


async def test_destination_show_times_and_flaps(live: Live) -> None:
    M = ("--socket", str(live.modem_sock))
    start = time.time()
    shown = await dlepctl(*R(live), "destination", "show", MAC1, "--json")
    first_up = shown.json()[0]["up_since"]
    assert first_up <= start and shown.json()[0]["flaps"] == 0
    # A flap: the modem drops MAC1 and adds it again.
    assert (await dlepctl(*M, "destination", "drop", MAC1)).code == 0
    await until(lambda: MAC1 not in live.router_macs(), what="MAC1 gone at the router")
    await until(
        lambda: all(i.mac_str != MAC1 for _, i in live.modem.destinations()),
        what="MAC1 gone at the modem",
    )
    assert (await dlepctl(*M, "destination", "add", MAC1, "--cdrr", "10M")).code == 0
    await until(lambda: MAC1 in live.router_macs(), what="MAC1 back at the router")
    await asyncio.sleep(0.05)  # the update comes visibly later than the Up
    assert (await dlepctl(*M, "destination", "update", MAC1, "--cdrr", "12M")).code == 0

    def updated() -> bool:
        return any(
            i.mac_str == MAC1 and i.metrics.cdrr == 12_000_000
            for _, i in live.router.destinations()
        )

    await until(updated, what="the update at the router")
    end = time.time()
    router, rjs, modem, mjs, other = await asyncio.gather(
        dlepctl(*R(live), "destination", "show", MAC1),
        dlepctl(*R(live), "destination", "show", MAC1, "--json"),
        dlepctl(*M, "destination", "show", MAC1),
        dlepctl(*M, "destination", "show", MAC1, "--json"),
        dlepctl(*R(live), "destination", "show", MAC2, "--json"),
    )
    for res in (router, rjs, modem, mjs, other):
        assert res.code == 0, res
    for js in (rjs, mjs):
        d = js.json()[0]
        # Unix times, in order: back up after the drop, updated after that.
        assert start - 1 < d["up_since"] < d["last_update"] <= end + 1, d
        assert d["up_since"] > first_up and d["flaps"] == 1, d
        assert d["updates"] == 1, d  # since it came back up
    assert other.json()[0]["flaps"] == 0
    assert other.json()[0]["up_since"] == pytest.approx(first_up, abs=1)
    for text in (router.out, modem.out):
        assert _row(text, "flaps").startswith("1 ")
        assert _row(text, "updates").startswith("1 Destination Updates since up")
        for key in ("up since", "last update"):
            value = _row(text, key)
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(.+ ago\)", value), value


# ---------------------------------------------------------------------------
# Exit codes
# ---------------------------------------------------------------------------


async def _raw(*argv: str, stdout: int) -> tuple[int, str]:
    """dlepctl with ``stdout`` as given; (exit code, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dlep.cli.dlepctl",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_broken_pipe_is_silent(live: Live) -> None:
    for argv in (
        (*R(live), "destinations"),
        (*R(live), "sessions", "--json"),
        (*R(live), "watch"),  # the first event's line hits the closed pipe
        ("--help",),
    ):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before anything is written
        try:
            task = asyncio.ensure_future(_raw(*argv, stdout=write))
            if "watch" in argv:
                await until(lambda: len(live.router_api.watchers) == 1, what="watch")
                await live.modem.update_destination(MAC1, _metrics(cdrr=7_000_000))
            code, err = await task
        finally:
            os.close(write)
        # (argparse's --help swallows the error itself and exits 0)
        assert (code, err) == (0 if argv == ("--help",) else 141, ""), argv


async def test_pipe_to_head_says_nothing(live: Live) -> None:
    cmd = " ".join(
        [
            sys.executable,
            "-m",
            "dlep.cli.dlepctl",
            *R(live),
            "sessions",
            "--counters",
            "|",
            "head",
            "-0",
        ]
    )
    proc = await asyncio.create_subprocess_shell(
        cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert out == b"" and err == b""  # no "[Errno 32]", no "cannot reach"


async def test_timeout_has_its_own_exit_code(tmp_path: Path) -> None:
    # Something listens but never speaks: the call runs into --timeout.
    path = tmp_path / "mute.sock"
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(path))
    mute.listen(8)
    try:
        res = await dlepctl("--socket", str(path), "--timeout", "0.5", "info")
    finally:
        mute.close()
    assert res.code == 4, res
    assert "no answer from" in res.err and "within 0.5s" in res.err and res.out == ""


async def test_watch_fails_when_the_daemon_goes_away(live: Live) -> None:
    async def stop() -> None:
        await until(lambda: len(live.modem_api.watchers) == 1, what="the watch stream")
        await live.modem_api.stop(0.2)

    res, _ = await asyncio.gather(dlepctl("--socket", str(live.modem_sock), "watch"), stop())
    assert res.code == 3, res
    assert "watch:" in res.err and str(live.modem_sock) in res.err


async def test_top_needs_a_daemon_and_a_terminal(live: Live, tmp_path: Path) -> None:
    gone, piped = await asyncio.gather(
        dlepctl("--socket", str(tmp_path / "none.sock"), "top"),
        dlepctl(*R(live), "top"),
    )
    assert gone.code == 3 and "cannot reach dlep daemon" in gone.err
    assert piped.code == 2 and "needs a terminal" in piped.err
    assert piped.out == ""  # no escape codes in the pipe


def _metrics(**kw: int) -> object:
    from dlep.fsm import Metrics

    return Metrics(**kw)


# ---------------------------------------------------------------------------
# Which daemon
# ---------------------------------------------------------------------------


def _stale_socket(path: Path) -> None:
    """A socket file as a daemon that died leaves it: nobody listens."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def _isolated(monkeypatch: pytest.MonkeyPatch, run: Path) -> None:
    """Default sockets only in ``run`` (this machine may run daemons of its
    own on the /tmp defaults)."""
    import dlep.api.paths

    monkeypatch.setattr(
        dlep.api.paths,
        "candidate_socket_paths",
        lambda role: [run / f"dlep-{role}.sock", run / f"dlep-{role}-other.sock"],
    )
    monkeypatch.delenv("DLEP_SOCKET", raising=False)


async def test_stale_socket_does_not_hide_a_live_daemon(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _isolated(monkeypatch, run)
    _stale_socket(run / "dlep-router.sock")
    (run / "dlep-modem.sock").symlink_to(live.modem_sock)
    assert socket_state(run / "dlep-router.sock") == "stale"
    assert socket_state(run / "dlep-modem.sock") == "live"
    assert socket_state(run / "nothing.sock") == "none"
    args = build_parser().parse_args(["info"])
    client, name = resolve_target(args)
    assert client.display == str(run / "dlep-modem.sock") and name == "dlep-modem"
    # A live router at its second default path wins over its stale first one.
    (run / "dlep-router-other.sock").symlink_to(live.router_sock)
    client, name = resolve_target(args)
    assert client.display == str(run / "dlep-router-other.sock") and name == "dlep-router"
    client, _ = resolve_target(build_parser().parse_args(["--router", "info"]))
    assert client.display == str(run / "dlep-router-other.sock")


def test_only_a_stale_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _isolated(monkeypatch, tmp_path)
    _stale_socket(tmp_path / "dlep-router.sock")
    with pytest.raises(Unreachable) as err:
        resolve_target(build_parser().parse_args(["sessions"]))
    assert f"nothing listens on {tmp_path / 'dlep-router.sock'}" in str(err.value)
    assert "left by a daemon that died" in str(err.value)


async def test_socket_that_is_a_file_or_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    d, f, env = await asyncio.gather(
        dlepctl("--socket", str(tmp_path), "info"),
        dlepctl("--socket", str(tmp_path / "file"), "info"),
        dlepctl("info", env={"DLEP_SOCKET": str(tmp_path / "file")}),
    )
    assert d.code == 2 and f"--socket {tmp_path} is a directory" in d.err
    assert f.code == 2 and "is a regular file, not the daemon's socket" in f.err
    assert env.code == 2 and "$DLEP_SOCKET" in env.err and "regular file" in env.err


async def test_destination_commands_go_to_the_modem_with_both_running(
    live: Live, tmp_path: Path
) -> None:
    """Operations issue, item 1: with both daemons on their default sockets,
    `destination drop` (and show) reached the router, which printed "dropped"
    while the modem kept the destination; every destination command now
    goes to the modem (`drop --session` names a router session: router)."""
    run = tmp_path / "xdg"
    run.mkdir()
    (run / "dlep-router.sock").symlink_to(live.router_sock)
    (run / "dlep-modem.sock").symlink_to(live.modem_sock)
    env = {"XDG_RUNTIME_DIR": str(run), "DLEP_SOCKET": ""}
    show = await dlepctl("destination", "show", MAC2, env=env)
    assert show.code == 0, show
    res = await dlepctl("destination", "drop", MAC2, env=env)
    assert res.code == 0, res
    assert "dropped" in res.out
    # The modem no longer has it, so it is gone at the router too.
    assert MAC2 not in {k.mac_str for k in live.modem.known_destinations()}
    await until(lambda: live.router_macs() == {MAC1}, what="MAC2 gone at the router")
    for argv in (["destination", "drop", MAC1], ["destination", "show", MAC1]):
        assert _command_role(build_parser().parse_args(argv)) == "modem", argv
    args = build_parser().parse_args(["destination", "drop", MAC1, "--session", "1"])
    assert _command_role(args) == "router"
