"""``dlepctl`` (a subprocess) against live daemons: every subcommand, tables and JSON."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dlep.cli.dlepctl import build_parser, duration

from .conftest import MAC1, MAC2, Live, dlepctl, free_port, until

pytestmark = pytest.mark.timeout(120)


def R(live: Live) -> tuple[str, str]:
    return ("--socket", str(live.router_sock))


def M(live: Live) -> tuple[str, str]:
    return ("--socket", str(live.modem_sock))


def ok(res: object) -> None:
    assert getattr(res, "code", None) == 0, res


async def test_info(live: Live) -> None:
    table, js, modem = await asyncio.gather(
        dlepctl(*R(live), "info"), dlepctl(*R(live), "info", "--json"), dlepctl(*M(live), "info")
    )
    ok(table)
    assert "role" in table.out and "router" in table.out
    assert "ok (1 session(s) up)" in table.out
    assert str(live.router_sock) in table.out
    ok(js)
    info = js.json()
    assert info["role"] == "router" and info["sessions_up"] == 1 and info["destinations"] == 2
    ok(modem)
    assert "modem" in modem.out and "listening" in modem.out


async def test_sessions(live: Live) -> None:
    table, js, counters = await asyncio.gather(
        dlepctl(*R(live), "sessions"),
        dlepctl(*R(live), "--json", "sessions"),  # the global flag works too
        dlepctl(*R(live), "sessions", "--counters"),
    )
    ok(table)
    header, rule, row = table.out.splitlines()[:3]
    for col in ("ID", "PEER", "STATE", "HEARTBEAT", "UPTIME", "DESTS", "TX", "RX", "ERRORS"):
        assert col in header
    assert set(rule) == {"─"}
    assert "in-session" in row and "test modem" in row and "0.2s/0.2s" in row
    assert f"127.0.0.1:{live.modem.listening[0][1]}" in row
    ok(js)
    (s,) = js.json()
    assert s["state"] == "in-session" and s["rx_messages"]["DESTINATION_UP"] == 2
    ok(counters)
    assert "SESSION_INITIALIZATION" in counters.out and "DESTINATION_UP" in counters.out


async def test_destinations(live: Live) -> None:
    table, js, one, modem, nope = await asyncio.gather(
        dlepctl(*R(live), "destinations"),
        dlepctl(*R(live), "destinations", "--json"),
        dlepctl(*R(live), "destinations", "--session", "1", "--json"),
        dlepctl(*M(live), "destinations"),
        dlepctl(*R(live), "destinations", "--session", "9"),
    )
    ok(table)
    lines = table.out.splitlines()
    assert lines[0].split()[:3] == ["SESSION", "MAC", "CDRR"]
    row1 = next(ln for ln in lines if MAC1 in ln)
    # Human units: rates, latency, percent, addresses.
    for cell in ("36 Mb/s", "24 Mb/s", "54 Mb/s", "2 ms", "100%", "1500", "10.0.0.11, fd00::11"):
        assert cell in row1, (cell, row1)
    row2 = next(ln for ln in lines if MAC2 in ln)
    assert "5.5 Mb/s" in row2 and "60%" in row2 and "192.168.12.0/24" in row2
    ok(js)
    dests = {d["mac"]: d for d in js.json()}
    assert dests[MAC1]["metrics"]["cdrr"] == 36_000_000
    assert dests[MAC2]["ipv4_subnets"] == ["192.168.12.0/24"]
    ok(one)
    assert len(one.json()) == 2
    ok(modem)
    assert MAC1 in modem.out
    assert nope.code == 1
    assert "no session 9" in nope.err and "NOT_FOUND" in nope.err


async def test_session_metrics(live: Live) -> None:
    table, js, mtable = await asyncio.gather(
        dlepctl(*R(live), "session-metrics"),
        dlepctl(*R(live), "session-metrics", "--json"),
        dlepctl(*M(live), "session-metrics"),
    )
    ok(table)
    assert "50 Mb/s" in table.out and "100 Mb/s" in table.out and "1 ms" in table.out
    ok(js)
    assert js.json()["sessions"][0]["metrics"]["mdrr"] == 100_000_000
    ok(mtable)
    assert "(modem defaults)" in mtable.out
    res = await dlepctl(*M(live), "session-metrics", "set", "--latency", "3ms", "--rlqr", "90%")
    ok(res)
    assert "session metrics updated" in res.out

    def updated() -> bool:
        (s,) = live.router.sessions()
        return s.session_metrics.latency == 3000 and s.session_metrics.rlqr == 90

    await until(updated, what="session update at the router")
    bad = await dlepctl(*M(live), "session-metrics", "set")
    assert bad.code == 2 and "give at least one metric" in bad.err
    wrong = await dlepctl(*R(live), "session-metrics", "set", "--cdrr", "1M")
    assert wrong.code == 1 and "modem operation" in wrong.err


async def test_destination_add_on_modem_appears_at_router(live: Live) -> None:
    mac = "02:00:00:00:00:99"
    res = await dlepctl(
        *M(live),
        "destination",
        "add",
        mac,
        "--cdrr",
        "20M",
        "--mdrr",
        "54M",
        "--cdrt",
        "10M",
        "--mdrt",
        "54M",
        "--latency",
        "3ms",
        "--rlqr",
        "80",
        "--rlqt",
        "70%",
        "--resources",
        "50",
        "--mtu",
        "1400",
        "--ipv4",
        "10.0.0.99",
        "--ipv6",
        "fd00::99",
        "--subnet",
        "192.168.99.0/24",
    )
    ok(res)
    assert f"destination {mac} added" in res.out
    await until(lambda: mac in live.router_macs(), what="destination at the router")
    at_router = (await dlepctl(*R(live), "destinations", "--json")).json()
    d = next(x for x in at_router if x["mac"] == mac)
    assert d["metrics"] == {
        "mdrr": 54_000_000,
        "mdrt": 54_000_000,
        "cdrr": 20_000_000,
        "cdrt": 10_000_000,
        "latency": 3000,
        "resources": 50,
        "rlqr": 80,
        "rlqt": 70,
        "mtu": 1400,
    }
    assert d["ipv4"] == ["10.0.0.99"] and d["ipv6"] == ["fd00::99"]
    assert d["ipv4_subnets"] == ["192.168.99.0/24"]
    table = await dlepctl(*R(live), "destinations")
    assert mac in table.out and "20 Mb/s" in table.out and "3 ms" in table.out

    res = await dlepctl(
        *M(live), "destination", "update", mac, "--cdrr", "30M", "--drop", "10.0.0.99"
    )
    ok(res)

    def updated() -> bool:
        info = next(i for _, i in live.router.destinations() if i.mac_str == mac)
        return info.metrics.cdrr == 30_000_000 and not info.ipv4

    await until(updated, what="update at the router")
    res = await dlepctl(*M(live), "destination", "drop", mac)
    ok(res)
    await until(lambda: mac not in live.router_macs(), what="drop at the router")


async def test_destination_errors(live: Live) -> None:
    dup, bad_mac, bad_rate, router, missing, nothing = await asyncio.gather(
        dlepctl(*M(live), "destination", "add", MAC1),
        dlepctl(*M(live), "destination", "add", "not-a-mac"),
        dlepctl(*M(live), "destination", "add", MAC1, "--cdrr", "fast"),
        dlepctl(*R(live), "destination", "add", "02:00:00:00:00:98"),
        dlepctl(*M(live), "destination", "update", "02:00:00:00:00:55", "--cdrr", "1M"),
        dlepctl(*M(live), "destination", "update", MAC1),
    )
    assert dup.code == 1 and "already exists" in dup.err and "ALREADY_EXISTS" in dup.err
    assert bad_mac.code == 1 and "mac: 'not-a-mac'" in bad_mac.err
    assert bad_rate.code == 2 and "argument --cdrr" in bad_rate.err
    assert router.code == 1 and "modem operation; this daemon is a router" in router.err
    assert missing.code == 1 and "no destination 02:00:00:00:00:55" in missing.err
    assert nothing.code == 2 and "give metrics" in nothing.err


async def test_link_request(live: Live) -> None:
    table, js, nowait = await asyncio.gather(
        dlepctl(*R(live), "link-request", MAC1, "--cdrr", "10M"),
        dlepctl(*R(live), "link-request", MAC2, "--latency", "4ms", "--json"),
        dlepctl(*R(live), "link-request", MAC1, "--cdrt", "5M", "--wait", "0"),
    )
    ok(table)
    assert f"{MAC1}: SUCCESS" in table.out and "cdrr=10 Mb/s" in table.out
    ok(js)
    answer = js.json()
    assert answer["answered"] and answer["status_name"] == "SUCCESS"
    assert answer["metrics"]["latency"] == 4000
    assert nowait.code in (0, 1)  # may collide with the first request (transaction in progress)
    usage = await dlepctl(*R(live), "link-request", MAC1)
    assert usage.code == 2 and "--cdrr" in usage.err
    modem = await dlepctl(*M(live), "link-request", MAC1, "--cdrr", "1M")
    assert modem.code == 1 and "router operation" in modem.err


async def test_announce(live: Live) -> None:
    # The modem does not know this MAC: it answers Request Denied, and that
    # is what dlepctl reports (not "sent").
    res = await dlepctl(*R(live), "announce", "02:00:00:00:00:66", "--ipv4", "10.0.0.66")
    assert res.code == 1, res
    assert res.out == ""
    assert "02:00:00:00:00:66 refused by the modem: REQUEST_DENIED" in res.err
    assert "destination not reachable" in res.err
    js = await dlepctl(*R(live), "announce", "02:00:00:00:00:67", "--json")
    assert js.code == 1
    answer = js.json()
    assert answer["answered"] and answer["status_name"] == "REQUEST_DENIED"
    nowait = await dlepctl(*R(live), "announce", "02:00:00:00:00:68", "--wait", "0")
    ok(nowait)
    assert "destination announce for 02:00:00:00:00:68 sent (session 1)" in nowait.out
    known = await dlepctl(*R(live), "announce", MAC1)
    assert known.code == 1 and "already known" in known.err
    # A MAC the modem has and the router gave up: accepted, the destination is up.
    ok(await dlepctl(*R(live), "destination", "drop", MAC1))
    await until(lambda: MAC1 not in live.router_macs(), what="drop at the router")
    up = await dlepctl(*R(live), "announce", MAC1)
    ok(up)
    assert f"destination {MAC1} announced: up (session 1)" in up.out
    assert MAC1 in live.router_macs()


async def test_write_commands_json(live: Live) -> None:
    mac = "02:00:00:00:00:98"
    add = await dlepctl(*M(live), "destination", "add", mac, "--cdrr", "1M", "--json")
    ok(add)
    assert add.json() == {"ok": True, "added": mac}
    upd, sm = await asyncio.gather(
        dlepctl(*M(live), "--json", "destination", "update", mac, "--cdrr", "2M"),
        dlepctl(*M(live), "session-metrics", "set", "--rlqr", "90", "--json"),
    )
    ok(upd)
    assert upd.json() == {"ok": True, "updated": mac}
    ok(sm)
    assert sm.json() == {"ok": True, "updated": "session_metrics"}
    drop = await dlepctl(*M(live), "destination", "drop", mac, "--json")
    ok(drop)
    assert drop.json() == {"ok": True, "dropped": mac}
    port = live.modem.listening[0][1]
    conn = await dlepctl(*R(live), "connect", f"127.0.0.1:{port}", "--json")
    ok(conn)
    assert conn.json() == {"ok": True, "connecting": {"host": "127.0.0.1", "port": port}}
    term = await dlepctl(*R(live), "terminate", "1", "--json")
    ok(term)
    assert term.json() == {"ok": True, "terminated": "1"}
    # A refusal is not JSON on stdout: the message and code say what failed.
    gone = await dlepctl(*R(live), "terminate", "1", "--json")
    assert gone.code == 1 and gone.out == "" and "no session 1" in gone.err


async def test_connect_and_terminate(live: Live) -> None:
    port = live.modem.listening[0][1]
    res = await dlepctl(*R(live), "connect", f"127.0.0.1:{port}")
    ok(res)
    assert f"peer 127.0.0.1:{port} added" in res.out
    assert "keeps the session up" not in res.out  # the address may be dead
    bad = await dlepctl(*R(live), "connect", "modem.example:854")
    assert bad.code == 1 and "not an IP address" in bad.err
    # --no-gtsm: that peer's packets are taken whatever their TTL.
    res = await dlepctl(*R(live), "connect", "127.0.0.9:1", "--no-gtsm")
    ok(res)
    assert "any TTL accepted (no GTSM)" in res.out
    (p,) = [p for p in live.router.peers() if p.address == "127.0.0.9"]
    assert p.gtsm_enforce is False
    both = await dlepctl(*R(live), "connect", "127.0.0.9:2", "--no-gtsm", "--gtsm")
    assert both.code == 2
    res = await dlepctl(*R(live), "terminate", "1", "--text", "maintenance")
    ok(res)
    assert "session 1 terminated" in res.out
    assert not [s for s in live.router.sessions() if s.id == "1"]
    gone = await dlepctl(*R(live), "terminate", "1")
    assert gone.code == 1 and "no session 1" in gone.err


async def test_watch(live: Live) -> None:
    async def later() -> None:
        await until(lambda: len(live.router_api.watchers) == 2, what="both watch streams")
        await live.modem.update_destination(MAC1, _metrics(cdrr=7_000_000))
        await live.modem.update_destination(MAC2, _metrics(cdrr=3_000_000))

    table, js, _ = await asyncio.gather(
        dlepctl(*R(live), "watch", "--count", "2"),
        dlepctl(*R(live), "watch", "--json", "-n", "2"),
        later(),
    )
    ok(table)
    lines = table.out.splitlines()
    assert len(lines) == 2
    assert "session 1 (127.0.0.1:" in lines[0]
    assert f"destination {MAC1} update: cdrr=7 Mb/s" in lines[0]
    assert f"destination {MAC2} update: cdrr=3 Mb/s" in lines[1]
    ok(js)
    import json

    evs = [json.loads(ln) for ln in js.out.splitlines()]
    assert [e["kind"] for e in evs] == ["destination_update", "destination_update"]
    assert evs[0]["destination_update"]["changed"] == {"cdrr": 7_000_000}
    assert evs[0]["destination_update"]["destination"]["mac"] == MAC1
    assert evs[0]["session_id"] == "1" and evs[0]["time"] > 0


def _metrics(**kw: int) -> object:
    from dlep.fsm import Metrics

    return Metrics(**kw)


async def test_unreachable_daemon(tmp_path: Path) -> None:
    sock = tmp_path / "modem.sock"
    res = await dlepctl("--socket", str(sock), "sessions")
    assert res.code == 3
    assert f"cannot reach dlep daemon at {sock}" in res.err
    assert "is dlep-modem running?" in res.err
    # Nothing at the default sockets either.
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "DLEP_SOCKET": ""}
    # (harmless if some modem of this user does serve on /tmp: that MAC is unknown)
    res = await dlepctl("destination", "update", "02:00:00:00:de:ad", "--cdrr", "1M", env=env)
    if res.code == 3:
        assert "is dlep-modem running?" in res.err and "--socket" in res.err


async def test_default_socket_and_env(live: Live, tmp_path: Path) -> None:
    env = {"DLEP_SOCKET": str(live.modem_sock)}
    res = await dlepctl("info", "--json", env=env)
    ok(res)
    assert res.json()["role"] == "modem"
    # $XDG_RUNTIME_DIR/dlep-<role>.sock is found without any flag.
    (tmp_path / "dlep-router.sock").symlink_to(live.router_sock)
    res = await dlepctl("info", "--json", env={"XDG_RUNTIME_DIR": str(tmp_path)})
    ok(res)
    assert res.json()["role"] == "router"
    res = await dlepctl("--router", "info", "--json", env={"XDG_RUNTIME_DIR": str(tmp_path)})
    ok(res)
    assert res.json()["role"] == "router"


async def test_usage_errors() -> None:
    both, tls, none = await asyncio.gather(
        dlepctl("--socket", "/x", "--server", "127.0.0.1:1", "info"),
        dlepctl("--server", "127.0.0.1:1", "info"),
        dlepctl(),
    )
    assert both.code == 2 and "only one of" in both.err
    assert tls.code == 2 and "--cert, --key, --ca" in tls.err
    assert none.code == 2


def test_help_mentions_socket() -> None:
    text = build_parser().format_help()
    assert "--socket PATH" in text
    assert "make demo" in text
    for cmd in (
        "info",
        "sessions",
        "destinations",
        "destination",
        "link-request",
        "announce",
        "terminate",
        "connect",
        "watch",
        "top",
        "completion",
    ):
        assert cmd in text


def test_duration() -> None:
    assert duration(12.7) == "12s"
    assert duration(192) == "3m12s"
    assert duration(7380) == "2h03m"
    assert duration(90000) == "1d01h"


async def test_peers_sessions_info_and_disconnect(live: Live) -> None:
    """A `connect` target that does not answer is visible (sessions, peers,
    info says degraded) until `disconnect` forgets it."""
    port = live.modem.listening[0][1]
    res = await dlepctl(*R(live), "peers", "--json")
    ok(res)
    (static,) = res.json()
    assert static["origin"] == "static" and static["state"] == "in-session"
    assert static["session_id"] == "1"

    dead = free_port()
    ok(await dlepctl(*R(live), "connect", f"127.0.0.1:{dead}"))
    res = await dlepctl(*R(live), "sessions")
    ok(res)
    assert "configured peers not in session" in res.out
    row = next(ln for ln in res.out.splitlines() if f"127.0.0.1:{dead}" in ln)
    assert " api " in row and ("connecting" in row or "backing-off" in row)
    info = await dlepctl(*R(live), "info", "--json")
    ok(info)
    assert info.json()["health"] == "degraded"
    assert f"127.0.0.1:{dead}" in info.json()["health_detail"]
    # Completion offers session ids only, never the peer rows.
    ids = await dlepctl(*R(live), "sessions", "--no-headers")
    assert [ln.split()[0] for ln in ids.out.splitlines() if ln.split()[0].isdigit()] == ["1"]

    res = await dlepctl(*R(live), "disconnect", f"127.0.0.1:{dead}", "--json")
    ok(res)
    assert res.json()["disconnected"]["peer"] == f"127.0.0.1:{dead}"
    res = await dlepctl(*R(live), "peers")
    ok(res)
    assert f"127.0.0.1:{dead}" not in res.out and f"127.0.0.1:{port}" in res.out
    again = await dlepctl(*R(live), "disconnect", f"127.0.0.1:{dead}")
    assert again.code == 1 and "no configured peer" in again.err
    modem_side = await dlepctl(*M(live), "peers")
    assert modem_side.code != 0
