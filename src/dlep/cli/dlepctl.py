"""``dlepctl``: operate a running ``dlep-router`` / ``dlep-modem`` through its
management API.

Read commands print aligned tables with human units that never cut a value
(or JSON with ``--json``); write commands print one line saying what was
done (or a JSON object). See ``dlepctl --help`` and docs/api.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__

EXIT_OK = 0
EXIT_ERROR = 1  # the daemon refused or failed the call
EXIT_USAGE = 2  # bad command line (argparse's code)
EXIT_UNREACHABLE = 3  # no daemon at the address, or it went away
EXIT_TIMEOUT = 4  # no answer in time (--timeout, or the modem's to --wait)
EXIT_BROKEN_PIPE = 141  # stdout's reader went away (128 + SIGPIPE, as the shell reports it)

#: Which daemon a command needs (None: either).
COMMAND_ROLE: dict[str, str | None] = {
    "info": None,
    "sessions": None,
    "session": None,
    "destinations": None,
    "session-metrics": None,
    "destination": "modem",
    "link-request": "router",
    "announce": "router",
    "connect": "router",
    "peers": "router",
    "disconnect": "router",
    "terminate": None,
    "watch": None,
    "top": None,
}

_EPILOG = """\
which daemon:
  --socket PATH          the daemon's Unix socket (api.socket in its configuration)
  --server HOST:PORT     its TCP listener (api.tcp_listen), with --cert/--key/--ca
  neither                $DLEP_SOCKET if set, else the default socket of the role
                         the command needs: modem for `destination ...` (router
                         for `destination pending|accept|refuse` and `drop
                         --session`), router for `link-request`, `announce`,
                         `connect`, `peers`, `disconnect`; for the other
                         commands the router's if it is running, else the modem's.
                         Defaults: $XDG_RUNTIME_DIR/dlep-<role>.sock, or
                         /tmp/dlep-<uid>/dlep-<role>.sock. --modem / --router pick one.

examples (with `make demo` running):
  dlepctl sessions                      the router's session with the modem
  dlepctl session 1                     that session in detail
  dlepctl destination show 02:00:00:00:00:01   one destination in detail
  dlepctl destinations --no-headers     rows only, for scripts (a pipe never cuts values)
  dlepctl destinations --json           the destinations it learned, as JSON
  dlepctl --modem destinations          the modem's view
  dlepctl destination add 02:00:00:00:00:99 --cdrr 20M --mdrr 54M --latency 3ms --ipv4 10.0.0.99
  dlepctl link-request 02:00:00:00:00:01 --cdrr 10M
  dlepctl peers                         the router's configured modems, up or not
  dlepctl disconnect 10.0.0.2:854       stop reconnecting to one, end its session
  dlepctl watch                         follow every event (Ctrl-C stops)
  dlepctl --socket /tmp/dlep-modem-tls.sock info
  source <(dlepctl completion bash)     shell completion (also zsh; see docs/api.md)

the radio-link emulator (dlep-emu run):
  dlepctl emu [summary|links|neighbours|macs|drops] [--node N] [--json]
                                        its links, neighbours, MAC tables and drops
                                        (dlep-emu status; each node's modem also
                                        serves this API: --socket RUN/<node>.modem.sock)

exit status: 0 ok, 1 the daemon (or the modem) refused the call, 2 usage error,
  3 daemon not reachable or gone, 4 timeout, 141 stdout closed (`| head`): silent.
"""


# ---------------------------------------------------------------------------
# Value parsing for flags
# ---------------------------------------------------------------------------


def _rate(text: str) -> int:
    from ..config import parse_rate

    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _latency(text: str) -> int:
    from ..config import parse_latency

    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _percent(text: str) -> int:
    raw = text.strip().removesuffix("%").strip()
    if not raw.isdigit() or not 0 <= int(raw) <= 100:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a percentage 0-100")
    return int(raw)


def _mtu(text: str) -> int:
    if not text.strip().isdigit() or int(text) > 0xFFFF:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an MTU 0-65535 (octets)")
    return int(text)


#: The longest --wait of link-request: the daemon refuses more
#: (dlep.api.server.MAX_WAIT_MS, not imported: dlepctl stays free of the server).
MAX_WAIT_S = 60.0


def _wait_seconds(text: str) -> float:
    """--wait: finite seconds 0..MAX_WAIT_S (1e9 overflowed the request's
    uint32 wait_ms with a traceback; nan and inf are no durations)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= MAX_WAIT_S:  # also False for nan
        raise argparse.ArgumentTypeError(
            f"{text[:64]!r}: expected seconds from 0 to {MAX_WAIT_S:g}"
        )
    return value


def _status(text: str) -> int:
    if not text.strip().isdigit() or int(text) > 255:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a status code 0-255")
    return int(text)


def _family(version: int, subnet: bool) -> Callable[[str], str]:
    import ipaddress

    def check(text: str) -> str:
        try:
            if subnet:
                net = ipaddress.ip_network(text.strip(), strict=False)
                return str(net)
            addr = ipaddress.ip_address(text.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if addr.version != version:
            raise argparse.ArgumentTypeError(f"{text!r} is not an IPv{version} address")
        return str(addr)

    return check


_METRIC_FLAGS: tuple[tuple[str, Callable[[str], int], str, str], ...] = (
    ("cdrr", _rate, "RATE", "Current Data Rate Receive, e.g. 50M (bits/s)"),
    ("cdrt", _rate, "RATE", "Current Data Rate Transmit"),
    ("mdrr", _rate, "RATE", "Maximum Data Rate Receive"),
    ("mdrt", _rate, "RATE", "Maximum Data Rate Transmit"),
    ("latency", _latency, "TIME", "Latency, e.g. 2ms, 300us (a bare number is µs)"),
    ("resources", _percent, "PCT", "Resources, percent"),
    ("rlqr", _percent, "PCT", "Relative Link Quality Receive, percent"),
    ("rlqt", _percent, "PCT", "Relative Link Quality Transmit, percent"),
    ("mtu", _mtu, "OCTETS", "MTU"),
)


def _add_metric_flags(p: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    g = p.add_argument_group("metrics")
    for name, typ, metavar, help_ in _METRIC_FLAGS:
        if only is None or name in only:
            g.add_argument(f"--{name}", type=typ, metavar=metavar, help=help_)


def _metrics_from(args: argparse.Namespace) -> Any:
    from ..fsm import Metrics

    return Metrics(**{n: getattr(args, n, None) for n, *_ in _METRIC_FLAGS})


def _add_address_flags(p: argparse.ArgumentParser, *, drop: bool = False) -> None:
    g = p.add_argument_group("addresses")
    g.add_argument(
        "--ipv4",
        action="append",
        default=[],
        type=_family(4, False),
        metavar="ADDR",
        help="IPv4 address of the destination (repeatable)",
    )
    g.add_argument(
        "--ipv6",
        action="append",
        default=[],
        type=_family(6, False),
        metavar="ADDR",
        help="IPv6 address (repeatable)",
    )
    g.add_argument(
        "--subnet",
        action="append",
        default=[],
        type=_family(0, True),
        metavar="NET",
        help="attached subnet, e.g. 192.168.1.0/24 (repeatable)",
    )
    if drop:
        g.add_argument(
            "--drop",
            action="append",
            default=[],
            metavar="ADDR",
            help="address or subnet to remove (repeatable)",
        )


# ---------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------


def _output_flags(sp: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the command name they set the global flags' value,
    # left out they do not reset it.
    sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    sp.add_argument(
        "--no-headers",
        action="store_true",
        default=argparse.SUPPRESS,
        help="tables without their header line and rule (for scripts)",
    )


#: Shell commands that list what completes session ids and MACs: the
#: default daemon's, briefly (a completion must not hang on a stuck daemon).
# Numeric ids only: a router's `sessions` also lists its peers not in session.
_SESSION_IDS = (
    "dlepctl --timeout 1 sessions --no-headers 2>/dev/null | awk '$1 ~ /^[0-9]+$/ {print $1}'"
)
_MACS = "dlepctl --timeout 1 destinations --no-headers 2>/dev/null | awk '{print $2}'"


def build_parser(*, with_top: bool = False, completion: bool = False) -> argparse.ArgumentParser:
    """The whole command tree (``with_top``: also the flags of ``top``,
    which imports the full-screen UI; ``completion``: arguments marked for
    the completion script)."""
    from .completion import Completer

    comp = Completer(completion)
    p = argparse.ArgumentParser(
        prog="dlepctl",
        description="Operate a running dlep-router or dlep-modem through its management API.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tgt = p.add_argument_group("daemon address (default: see 'which daemon' below)")
    comp.files(
        tgt.add_argument("--socket", metavar="PATH", help="the daemon's Unix socket (api.socket)")
    )
    tgt.add_argument("--modem", action="store_true", help="the modem's default socket")
    tgt.add_argument("--router", action="store_true", help="the router's default socket")
    tgt.add_argument("--server", metavar="HOST:PORT", help="TCP listener (mutual TLS)")
    comp.files(
        tgt.add_argument(
            "--cert", metavar="FILE", help="our client certificate (PEM), with --server"
        )
    )
    comp.files(tgt.add_argument("--key", metavar="FILE", help="its private key (PEM)"))
    comp.files(
        tgt.add_argument("--ca", metavar="FILE", help="CA that signed the daemon's certificate")
    )
    tgt.add_argument("--server-name", metavar="NAME", help="name the daemon's certificate carries")
    p.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="per call (default 10)"
    )
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument(
        "--no-headers",
        action="store_true",
        help="tables without their header line and rule (for scripts)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def cmd(name: str, help_: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        if json_flag:
            _output_flags(sp)
        return sp

    cmd("info", "daemon role, version, uptime and health")
    sp = cmd("sessions", "sessions with state, peer, heartbeats, uptime and counters")
    sp.add_argument(
        "-c", "--counters", action="store_true", help="also message and error counters by type"
    )
    sp = cmd("session", "one session in detail: times, peer, extensions, counters by type")
    comp.command(_SESSION_IDS, sp.add_argument("session_id", metavar="SESSION"))
    sp = cmd("destinations", "destinations with their metrics and addresses")
    comp.command(
        _SESSION_IDS, sp.add_argument("-s", "--session", metavar="ID", help="only this session's")
    )
    comp.command(
        _MACS,
        sp.add_argument(
            "-m",
            "--mac",
            metavar="MAC",
            help="only those with this MAC (or the one with this key, MAC#hex)",
        ),
    )
    sp = cmd("session-metrics", "session-wide metrics; `set` changes them (modem)")
    sp.add_argument("action", nargs="?", choices=("show", "set"), default="show")
    comp.command(
        _SESSION_IDS,
        sp.add_argument("-s", "--session", metavar="ID", help="only this session's (show)"),
    )
    _add_metric_flags(sp)

    sp = cmd(
        "destination",
        "show a destination; add, update, drop or release one (modem)",
        json_flag=False,
    )
    dsub = sp.add_subparsers(dest="action", metavar="ACTION")
    dsub.required = True
    d = dsub.add_parser("add", help="a new destination: Destination Up to every router")
    _output_flags(d)
    d.add_argument("mac", metavar="MAC")
    _add_metric_flags(d)
    _add_address_flags(d)
    d = dsub.add_parser("update", help="new metrics or addresses: Destination Update")
    _output_flags(d)
    comp.command(_MACS, d.add_argument("mac", metavar="MAC"))
    _add_metric_flags(d)
    _add_address_flags(d, drop=True)
    d = dsub.add_parser(
        "show",
        help="one destination in detail (either role): metrics, addresses, up since, "
        "last update, update count, flaps",
    )
    _output_flags(d)
    comp.command(_MACS, d.add_argument("mac", metavar="MAC"))
    comp.command(
        _SESSION_IDS, d.add_argument("-s", "--session", metavar="ID", help="only in this session")
    )
    d = dsub.add_parser("drop", help="the destination is gone: Destination Down")
    _output_flags(d)
    comp.command(_MACS, d.add_argument("mac", metavar="MAC"))
    comp.command(
        _SESSION_IDS,
        d.add_argument(
            "-s", "--session", metavar="ID", help="a router session (sends this to the router)"
        ),
    )

    d = dsub.add_parser(
        "release",
        help="hand a destination set by hand back to the simulator (modem)",
        description="A destination added, updated or dropped through dlepctl or the API is "
        "the operator's: the modem's simulator ([modem.simulate]) neither moves its metrics "
        "nor flaps it. This hands it back: its metrics walk from their current values again.",
    )
    _output_flags(d)
    comp.command(_MACS, d.add_argument("mac", metavar="MAC"))

    d = dsub.add_parser(
        "pending",
        help="the modem's Destination Ups awaiting an answer (router, auto-accept off)",
    )
    _output_flags(d)
    comp.command(
        _SESSION_IDS, d.add_argument("-s", "--session", metavar="ID", help="only this session's")
    )
    for verb, what in (("accept", "Success"), ("refuse", "Not Interested")):
        d = dsub.add_parser(
            verb,
            help=f"answer a pending Destination Up with {what} (router, auto-accept off)",
        )
        _output_flags(d)
        comp.command(_MACS, d.add_argument("mac", metavar="MAC"))
        comp.command(
            _SESSION_IDS,
            d.add_argument("-s", "--session", metavar="ID", help="the session it is pending in"),
        )

    sp = cmd("link-request", "Link Characteristics Request (router)", json_flag=True)
    comp.command(_MACS, sp.add_argument("mac", metavar="MAC"))
    _add_metric_flags(sp, only=("cdrr", "cdrt", "latency"))
    comp.command(
        _SESSION_IDS,
        sp.add_argument(
            "-s", "--session", metavar="ID", help="session (default: the one with MAC)"
        ),
    )
    sp.add_argument(
        "--wait",
        type=_wait_seconds,
        default=5.0,
        metavar="SECONDS",
        help="wait this long for the modem's answer (0: don't; at most 60; default 5)",
    )
    sp = cmd("announce", "Destination Announce (router), waiting for the modem's answer")
    sp.add_argument("mac", metavar="MAC")
    sp.add_argument("--ipv4", action="append", default=[], type=_family(4, False), metavar="ADDR")
    sp.add_argument("--ipv6", action="append", default=[], type=_family(6, False), metavar="ADDR")
    comp.command(
        _SESSION_IDS,
        sp.add_argument("-s", "--session", metavar="ID", help="session (default: the only one up)"),
    )
    sp.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wait this long for the modem's answer (0: don't; default 5)",
    )
    sp = cmd("terminate", "end a session with Session Termination")
    comp.command(_SESSION_IDS, sp.add_argument("session_id", metavar="SESSION"))
    sp.add_argument("--status", type=_status, metavar="CODE", help="status code (default 255)")
    sp.add_argument("--text", default="", help="status text sent to the peer")
    sp = cmd("connect", "connect to a modem and keep the session (router)")
    sp.add_argument("peer", metavar="HOST[:PORT]", help="IP address, '[v6]:port' for IPv6")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--tls", dest="tls", action="store_const", const=True, help="use TLS")
    g.add_argument("--no-tls", dest="tls", action="store_const", const=False, help="plain TCP")
    g = sp.add_mutually_exclusive_group()
    g.add_argument(
        "--no-gtsm",
        dest="gtsm",
        action="store_const",
        const=False,
        help="accept this modem's packets whatever their TTL (it does not send 255; "
        "default: its profile's choice, else network.gtsm_enforce)",
    )
    g.add_argument(
        "--gtsm", dest="gtsm", action="store_const", const=True, help="require TTL 255 of it"
    )
    cmd("peers", "configured modems (static, connect, discovered): state, last error, next retry")
    sp = cmd("disconnect", "forget a configured modem: no more reconnects, its session ends")
    sp.add_argument(
        "peer", metavar="HOST[:PORT]", help="IP address ('[v6]:port' for IPv6); no port: any"
    )
    sp = cmd("watch", "follow the daemon's events (Ctrl-C stops)")
    comp.command(
        _SESSION_IDS,
        sp.add_argument("-s", "--session", metavar="ID", help="only this session's events"),
    )
    sp.add_argument("-n", "--count", type=int, default=0, metavar="N", help="stop after N events")
    sp = cmd("top", "live full-screen view of sessions and destinations (q quits)", json_flag=False)
    if with_top:
        from . import top

        top.add_arguments(sp)
    sp = cmd("completion", "print a shell completion script (generated by shtab)", json_flag=False)
    sp.add_argument("shell", choices=("bash", "zsh"))
    return p


# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``192`` -> ``3m12s``; ``7380`` -> ``2h03m``; ``90000`` -> ``1d01h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _ms(ms: int) -> str:
    return f"{ms / 1000:g}s" if ms % 100 == 0 else f"{ms}ms"


class Out:
    """Where results go: aligned tables or JSON on stdout.

    On a terminal, tables fit its width by leaving out whole columns (and
    folding cells as a last resort); anywhere else (a pipe, a file) lines are
    plain, unstyled and as long as the values need: a value is never cut.
    """

    def __init__(self, as_json: bool, *, headers: bool = True) -> None:
        self.json = as_json
        self.headers = headers
        self.tty = sys.stdout.isatty()
        self._console: Any = None

    @property
    def width(self) -> int | None:
        """The terminal's width; None (unlimited) when not a terminal."""
        if not self.tty:
            return None
        import shutil

        return shutil.get_terminal_size().columns

    def _styled(self, text: str, style: str) -> None:
        if not self.tty:
            print(text)
            return
        if self._console is None:
            from rich.console import Console

            # soft_wrap: the terminal wraps long lines; rich must not re-cut them.
            self._console = Console(highlight=False, soft_wrap=True, emoji=False, markup=False)
        self._console.print(text, style=style or None)

    def dump(self, value: Any) -> None:
        print(json.dumps(value, indent=2, sort_keys=False))

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[str]], title: str = "") -> None:
        from .tables import render_table

        if title:
            self._styled(title, "bold")
        r = render_table(
            columns,
            list(rows),
            width=self.width,
            headers=self.headers,
            right=_RIGHT,
            drop_rank=_DROP_RANK,
        )
        for ln in r.header[:1]:
            self._styled(ln, "bold")
        for ln in [*r.header[1:], *r.body]:
            self._styled(ln, "")
        if r.hidden:
            self._styled(
                f"(hidden, too narrow: {', '.join(r.hidden)}; --json has all)",
                "dim",
            )

    def line(self, text: str) -> None:
        self._styled(text, "")

    def done(self, text: str, value: dict[str, Any]) -> None:
        """What a write command did: ``text`` for people, ``value`` as JSON."""
        if self.json:
            self.dump({"ok": True, **value})
        else:
            self.line(text)


_METRIC_COLUMNS = ("CDRR", "CDRT", "MDRR", "MDRT", "LATENCY", "RES", "RLQR", "RLQT", "MTU")
_RIGHT = frozenset(("ID", "DESTS", "TX", "RX", "ERRORS", "UPTIME", "SESSION", *_METRIC_COLUMNS))
#: Which columns a narrow terminal loses first (highest rank first; the
#: others are always shown).
_DROP_RANK: dict[str, int] = {
    "PEER TYPE": 5,
    "TLS": 4,
    "HEARTBEAT": 4,
    "EXTENSIONS": 3,
    "TX": 2,
    "RX": 2,
    "MTU": 6,
    "RES": 6,
    "RLQT": 5,
    "RLQR": 5,
    "MDRT": 4,
    "MDRR": 3,
    "CDRT": 2,
    "EXT": 1,
}


def _metric_cells(m: Any) -> list[str]:
    from ..daemon import fmt

    def get(name: str) -> int | None:
        return int(getattr(m, name)) if m.HasField(name) else None

    cells: list[str] = []
    for name in ("cdrr", "cdrt", "mdrr", "mdrt"):
        v = get(name)
        cells.append(fmt.rate(v) if v is not None else "-")
    lat = get("latency")
    cells.append(fmt.latency(lat) if lat is not None else "-")
    for name in ("resources", "rlqr", "rlqt"):
        v = get(name)
        cells.append(f"{v}%" if v is not None else "-")
    mtu = get("mtu")
    cells.append(str(mtu) if mtu is not None else "-")
    return cells


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


class Ctx:
    """What a command gets: the client, the output, the parsed args."""

    def __init__(self, client: Any, out: Out, args: argparse.Namespace) -> None:
        self.client = client
        self.out = out
        self.args = args


async def cmd_info(c: Ctx) -> int:
    from ..api.convert import to_dict

    info = await c.client.get_info()
    if c.out.json:
        c.out.dump(to_dict(info))
        return EXIT_OK
    d = to_dict(info)
    rows = [
        ("role", d["role"]),
        ("version", d["version"]),
        ("pid", str(d["pid"])),
        ("uptime", duration(d["uptime"])),
        ("health", f"{d['health']} ({d['health_detail']})"),
        ("sessions", f"{d['sessions_up']} up / {d['sessions']}"),
        ("destinations", str(d["destinations"])),
        ("tls", "yes" if d["tls"] else "no"),
        ("peer type", d["peer_type"] or "-"),
    ]
    if d["listening"]:
        rows.append(("listening", ", ".join(d["listening"])))
    rows.append(("watch streams", str(d["watch_streams"])))
    rows.append(("api", c.client.display))
    c.out.table(("KEY", "VALUE"), rows)
    return EXIT_OK


async def cmd_sessions(c: Ctx) -> int:
    from ..api.convert import role_name, to_dict

    sessions = await c.client.list_sessions()
    if c.out.json:
        c.out.dump([to_dict(s) for s in sessions])
        return EXIT_OK
    down = [p for p in await _router_peers(c) if p.state != "in-session"]
    if not sessions:
        if down:
            _peer_table(c, down, "configured peers not in session")
        else:
            c.out.line("no sessions")
        return EXIT_OK
    rows = []
    for s in sessions:
        peer_hb = _ms(s.peer_heartbeat_ms) if s.HasField("peer_heartbeat_ms") else "?"
        errors = sum(s.errors.values())
        rows.append(
            (
                s.id,
                s.peer,
                s.state,
                "yes" if s.tls else "no",
                s.peer_type or "-",
                ",".join(s.extension_names) or "-",
                f"{_ms(s.heartbeat_ms)}/{peer_hb}",
                duration(s.uptime) if s.HasField("up_since") else "-",
                str(s.destinations),
                str(sum(s.tx_messages.values())),
                str(sum(s.rx_messages.values())),
                str(errors),
            )
        )
    c.out.table(
        (
            "ID",
            "PEER",
            "STATE",
            "TLS",
            "PEER TYPE",
            "EXTENSIONS",
            "HEARTBEAT",
            "UPTIME",
            "DESTS",
            "TX",
            "RX",
            "ERRORS",
        ),
        rows,
    )
    if getattr(c.args, "counters", False):
        for s in sessions:
            names = sorted(set(s.tx_messages) | set(s.rx_messages))
            c.out.table(
                ("MESSAGE", "TX", "RX"),
                [(n, str(s.tx_messages.get(n, 0)), str(s.rx_messages.get(n, 0))) for n in names],
                title=f"session {s.id} ({role_name(s.role)} side, peer {s.peer}): messages",
            )
            if s.errors:
                c.out.table(
                    ("STATUS", "COUNT"),
                    [(k, str(v)) for k, v in sorted(s.errors.items())],
                    title=f"session {s.id}: errors by status",
                )
    if down:
        _peer_table(c, down, "configured peers not in session")
    return EXIT_OK


async def _router_peers(c: Ctx) -> list[Any]:
    """The router's configured peers; none from a modem (it has no peer table)."""
    from ..api.client import ApiError

    try:
        peers: list[Any] = await c.client.list_peers()
    except ApiError as exc:
        if exc.code.name in ("FAILED_PRECONDITION", "UNIMPLEMENTED"):
            return []  # a modem, or an older router
        raise
    return peers


def _peer_table(c: Ctx, peers: Sequence[Any], title: str = "") -> None:
    rows = []
    for p in peers:
        if p.HasField("next_retry"):
            retry = "in " + duration(max(0.0, p.next_retry - time.time()))
        else:
            retry = "-"
        rows.append(
            (
                p.peer,
                p.origin,
                p.state,
                p.failure or "-",
                str(p.failures),
                retry,
                p.session_id if p.HasField("session_id") else "-",
                p.last_error or "-",
            )
        )
    c.out.table(
        ("PEER", "ORIGIN", "STATE", "FAILURE", "FAILS", "RETRY", "SESSION", "LAST ERROR"),
        rows,
        title=title if c.out.headers else "",
    )


async def cmd_peers(c: Ctx) -> int:
    from ..api.convert import to_dict

    peers = await c.client.list_peers()
    if c.out.json:
        c.out.dump([to_dict(p) for p in peers])
        return EXIT_OK
    if not peers:
        c.out.line("no configured peers")
        return EXIT_OK
    _peer_table(c, peers)
    return EXIT_OK


async def cmd_disconnect(c: Ctx) -> int:
    from ..api.convert import to_dict
    from ..config import parse_peer

    try:
        host, port = parse_peer(c.args.peer, 0)
    except ValueError as exc:
        return _usage(f"disconnect: {exc}")
    before = await c.client.disconnect_peer(host, port)
    c.out.done(
        f"peer {before.peer} ({before.origin}) forgotten"
        + (f"; session {before.session_id} ended" if before.HasField("session_id") else ""),
        {"disconnected": to_dict(before)},
    )
    return EXIT_OK


def _when(t: float) -> str:
    """A Unix time for people: local date and time, and how long ago."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    return f"{stamp} ({duration(max(0.0, time.time() - t))} ago)"


async def cmd_session(c: Ctx) -> int:
    from ..api.convert import metrics_from_pb, role_name, to_dict
    from ..daemon import fmt

    sid = c.args.session_id
    sessions = await c.client.list_sessions()
    s = next((x for x in sessions if x.id == sid), None)
    if s is None:
        known = ", ".join(x.id for x in sessions) or "none"
        print(f"dlepctl: session {sid}: no such session (sessions: {known})", file=sys.stderr)
        return EXIT_ERROR
    if c.out.json:
        c.out.dump(to_dict(s))
        return EXIT_OK
    exts = [f"{name} ({code})" for code, name in zip(s.extensions, s.extension_names, strict=False)]
    peer_hb = f"{s.peer_heartbeat_ms} ms" if s.HasField("peer_heartbeat_ms") else "not yet known"
    rows = [
        ("session", s.id),
        ("peer", s.peer),
        ("our role", role_name(s.role)),
        ("state", s.state),
        ("tls", "yes" if s.tls else "no"),
        ("peer type", (s.peer_type or "-") + (" [secured medium]" if s.secured_medium else "")),
        ("extensions", ", ".join(exts) or "none"),
        ("heartbeat", f"ours {s.heartbeat_ms} ms, peer's {peer_hb}"),
        ("connected", _when(s.started_at)),
        ("in session since", _when(s.up_since) if s.HasField("up_since") else "-"),
        ("uptime", duration(s.uptime) if s.HasField("up_since") else "-"),
        ("last heard", _when(s.last_heard) if s.HasField("last_heard") else "-"),
        ("flaps", f"{s.flaps} earlier session(s) with this address went down"),
        ("destinations", str(s.destinations)),
        ("session metrics", fmt.metrics(metrics_from_pb(s.session_metrics))),
        ("messages", f"{sum(s.tx_messages.values())} sent, {sum(s.rx_messages.values())} received"),
        ("errors", str(sum(s.errors.values()))),
    ]
    c.out.table(("KEY", "VALUE"), rows)
    names = sorted(set(s.tx_messages) | set(s.rx_messages))
    if names:
        c.out.line("")
        c.out.table(
            ("MESSAGE", "TX", "RX"),
            [(n, str(s.tx_messages.get(n, 0)), str(s.rx_messages.get(n, 0))) for n in names],
        )
    if s.errors:
        c.out.line("")
        c.out.table(("STATUS", "COUNT"), [(k, str(v)) for k, v in sorted(s.errors.items())])
    return EXIT_OK


async def _destination_show(c: Ctx) -> int:
    from ..api.convert import to_dict
    from ..wire.items import parse_mac

    a = c.args
    try:
        parse_mac(a.mac.partition("#")[0])
    except ValueError as exc:
        return _usage(f"destination show: {exc}")
    # The daemon filters: at 100k destinations only the one asked for travels.
    dests = await c.client.list_destinations(a.session, mac=a.mac)
    if not dests:
        where = f" in session {a.session}" if a.session else ""
        print(f"dlepctl: no destination {a.mac}{where}", file=sys.stderr)
        return EXIT_ERROR
    if c.out.json:
        c.out.dump([to_dict(d) for d in dests])
        return EXIT_OK
    labels = (
        ("cdrr", "current data rate receive"),
        ("cdrt", "current data rate transmit"),
        ("mdrr", "maximum data rate receive"),
        ("mdrt", "maximum data rate transmit"),
        ("latency", "latency"),
        ("resources", "resources"),
        ("rlqr", "relative link quality receive"),
        ("rlqt", "relative link quality transmit"),
        ("mtu", "mtu"),
    )
    for n, d in enumerate(dests):
        if n:
            c.out.line("")
        rows = [("destination", d.key or d.mac), ("session", d.session_id or "- (no session)")]
        if d.session_id:
            rows += [
                ("up since", _when(d.up_since) if d.HasField("up_since") else "-"),
                (
                    "last update",
                    _when(d.last_update) if d.HasField("last_update") else "none since up",
                ),
                (
                    "updates",
                    f"{d.updates} Destination Updates since up (modem: sent, router: received)",
                ),
                ("flaps", f"{d.flaps} (went down and came back, in sessions with this peer)"),
            ]
        cells = dict(zip((x for x, _ in labels), _metric_cells(d.metrics), strict=True))
        rows += [(label, cells[name]) for name, label in labels]
        rows += [
            ("ipv4", ", ".join(d.ipv4) or "-"),
            ("ipv6", ", ".join(d.ipv6) or "-"),
            ("ipv4 subnets", ", ".join(d.ipv4_subnets) or "-"),
            ("ipv6 subnets", ", ".join(d.ipv6_subnets) or "-"),
        ]
        rows += [(f"ext {e.name}", e.text) for e in d.extensions]
        c.out.table(("KEY", "VALUE"), rows)
    return EXIT_OK


async def cmd_destinations(c: Ctx) -> int:
    from ..wire.items import parse_mac

    a = c.args
    if a.mac:
        try:
            parse_mac(a.mac.partition("#")[0])
        except ValueError as exc:
            return _usage(f"destinations --mac: {exc}")
    return await _destinations_table(c, await c.client.list_destinations(a.session, mac=a.mac))


async def _destinations_table(c: Ctx, dests: Sequence[Any], empty: str = "no destinations") -> int:
    from ..api.convert import to_dict

    if c.out.json:
        c.out.dump([to_dict(d) for d in dests])
        return EXIT_OK
    if not dests:
        c.out.line(empty)
        return EXIT_OK
    from ..ext.display import compact

    rows = []
    for d in dests:
        addrs = [*d.ipv4, *d.ipv6, *d.ipv4_subnets, *d.ipv6_subnets]
        ext = compact((e.name, e.text) for e in d.extensions) or "-"
        rows.append(
            (d.session_id or "-", d.mac, *_metric_cells(d.metrics), ext, ", ".join(addrs) or "-")
        )
    c.out.table(("SESSION", "MAC", *_METRIC_COLUMNS, "EXT", "ADDRESSES"), rows)
    return EXIT_OK


async def cmd_session_metrics(c: Ctx) -> int:
    from ..api.convert import to_dict

    if c.args.action == "set":
        m = _metrics_from(c.args)
        if m.is_empty():
            return _usage("session-metrics set: give at least one metric (--cdrr 40M ...)")
        await c.client.update_session_metrics(m)
        c.out.done("session metrics updated", {"updated": "session_metrics"})
        return EXIT_OK
    r = await c.client.get_session_metrics(c.args.session)
    if c.out.json:
        c.out.dump(to_dict(r))
        return EXIT_OK
    rows = [(s.session_id, s.peer, *_metric_cells(s.metrics)) for s in r.sessions]
    if r.HasField("defaults"):
        rows.append(("-", "(modem defaults)", *_metric_cells(r.defaults)))
    if not rows:
        c.out.line("no sessions")
        return EXIT_OK
    c.out.table(("SESSION", "PEER", *_METRIC_COLUMNS), rows)
    return EXIT_OK


async def cmd_destination(c: Ctx) -> int:
    a = c.args
    if a.action == "show":
        return await _destination_show(c)
    if a.action == "drop":
        await c.client.drop_destination(a.mac, session_id=a.session)
        c.out.done(f"destination {a.mac} dropped", {"dropped": a.mac})
        return EXIT_OK
    if a.action == "pending":
        pending = await c.client.list_pending_destinations(a.session)
        return await _destinations_table(c, pending, "no destination awaits an answer")
    if a.action in ("accept", "refuse"):
        accept = a.action == "accept"
        await c.client.respond_destination_up(a.mac, accept, session_id=a.session)
        c.out.done(
            f"destination {a.mac} {'accepted' if accept else 'refused (Not Interested)'}",
            {"accepted" if accept else "refused": a.mac},
        )
        return EXIT_OK
    if a.action == "release":
        if await c.client.release_destination(a.mac):
            c.out.done(
                f"destination {a.mac} released: the simulator moves it again",
                {"released": a.mac, "simulated": True},
            )
        else:
            c.out.done(
                f"destination {a.mac}: the simulator is off, nothing moves it",
                {"released": a.mac, "simulated": False},
            )
        return EXIT_OK
    m = _metrics_from(a)
    addrs = [*a.ipv4, *a.ipv6, *a.subnet]
    if a.action == "add":
        await c.client.add_destination(a.mac, m, addresses=addrs)
        c.out.done(f"destination {a.mac} added", {"added": a.mac})
    else:
        if m.is_empty() and not addrs and not a.drop:
            return _usage("destination update: give metrics (--cdrr ...) or addresses")
        await c.client.update_destination(a.mac, m, add=addrs, drop=a.drop)
        c.out.done(f"destination {a.mac} updated", {"updated": a.mac})
    return EXIT_OK


async def cmd_link_request(c: Ctx) -> int:
    from ..api.convert import to_dict

    a = c.args
    if a.cdrr is None and a.cdrt is None and a.latency is None:
        return _usage("link-request: give --cdrr, --cdrt and/or --latency")
    wait_ms = max(0, int(a.wait * 1000))
    r = await c.client.request_link_characteristics(
        a.mac, cdrr=a.cdrr, cdrt=a.cdrt, latency=a.latency, session_id=a.session, wait_ms=wait_ms
    )
    code = EXIT_OK
    if wait_ms and not r.answered:
        code = EXIT_TIMEOUT
        print(
            f"dlepctl: link characteristics request for {a.mac} sent; no answer within {a.wait:g}s",
            file=sys.stderr,
        )
    elif wait_ms and r.status != 0:
        code = EXIT_ERROR
        why = f": {r.text}" if r.text else ""
        print(f"dlepctl: {a.mac}: the modem answered {r.status_name}{why}", file=sys.stderr)
    if c.out.json:
        c.out.dump(to_dict(r))
    elif not wait_ms:
        c.out.line(f"link characteristics request for {a.mac} sent (session {r.session_id})")
    elif r.answered:
        from ..api.convert import metrics_from_pb
        from ..daemon import fmt

        text = f" ({r.text})" if r.text else ""
        c.out.line(f"{a.mac}: {r.status_name}{text}; now {fmt.metrics(metrics_from_pb(r.metrics))}")
    return code


async def cmd_announce(c: Ctx) -> int:
    from ..api.convert import to_dict

    a = c.args
    wait_ms = max(0, int(a.wait * 1000))
    r = await c.client.announce_destination(
        a.mac, addresses=[*a.ipv4, *a.ipv6], session_id=a.session, wait_ms=wait_ms
    )
    if not wait_ms:
        code, text = EXIT_OK, f"destination announce for {a.mac} sent (session {r.session_id})"
    elif not r.answered:
        code = EXIT_TIMEOUT
        text = f"destination announce for {a.mac} sent; no answer within {a.wait:g}s"
    elif r.status == 0:
        code, text = EXIT_OK, f"destination {a.mac} announced: up (session {r.session_id})"
    else:
        code = EXIT_ERROR
        why = f": {r.text}" if r.text else ""
        text = f"destination announce for {a.mac} refused by the modem: {r.status_name}{why}"
    if c.out.json:
        c.out.dump(to_dict(r))
    elif code == EXIT_OK:
        c.out.line(text)
    if code != EXIT_OK:
        print(f"dlepctl: {text}", file=sys.stderr)
    return code


async def cmd_terminate(c: Ctx) -> int:
    a = c.args
    await c.client.terminate_session(a.session_id, status=a.status, text=a.text)
    c.out.done(f"session {a.session_id} terminated", {"terminated": a.session_id})
    return EXIT_OK


async def cmd_connect(c: Ctx) -> int:
    from ..config import parse_peer

    a = c.args
    try:
        host, port = parse_peer(a.peer, 0)
    except ValueError as exc:
        return _usage(f"connect: {exc}")
    await c.client.connect_static(host, port, tls=a.tls, gtsm_enforce=a.gtsm)
    where = f"{host}:{port}" if port else f"{host} (default port)"
    if a.gtsm is False:
        where += ", any TTL accepted (no GTSM)"
    # Not "the session is up": the address may be dead. The router keeps
    # trying, backing off; `peers` / `sessions` show how it goes.
    c.out.done(
        f"peer {where} added; the router connects and retries while it fails "
        "(dlepctl peers shows its state)",
        {"connecting": {"host": host, "port": port}},
    )
    return EXIT_OK


async def cmd_watch(c: Ctx) -> int:
    from ..api.client import DaemonUnreachable, event_kind
    from ..api.convert import to_dict

    n = 0
    try:
        async for ev in c.client.watch(c.args.session):
            if c.out.json:
                d = {"kind": event_kind(ev), **to_dict(ev)}
                print(json.dumps(d), flush=True)
            else:
                c.out.line(format_event(ev))
                sys.stdout.flush()
            n += 1
            if c.args.count and n >= c.args.count:
                return EXIT_OK
    except DaemonUnreachable as exc:
        if not n:
            raise
        raise Unreachable(f"watch: lost the daemon at {exc.target}: {_why(exc.details)}") from None
    # The stream only ends by itself when the daemon stops serving it.
    raise Unreachable(
        f"watch: the daemon at {c.client.display} ended the event stream (it stopped)"
    )


def format_event(ev: Any) -> str:
    """One line for people: time, session, and the daemon's own words for
    the event (``Event.text``, the same as its log line)."""
    from ..api.client import event_kind

    t = time.localtime(ev.time)
    stamp = time.strftime("%H:%M:%S", t) + f".{int(ev.time * 1000) % 1000:03d}"
    who = f"session {ev.session_id} ({ev.peer})" if ev.session_id else (ev.peer or "daemon")
    text = ev.text or event_kind(ev) or "unknown event"
    return f"{stamp}  {who}  {text}"


# ---------------------------------------------------------------------------
# Plumbing
# ---------------------------------------------------------------------------


class UsageError(Exception):
    """A command-line problem found after parsing."""


class Unreachable(Exception):
    """No daemon answers at the address, or it went away (exit 3).

    Not the built-in ``ConnectionError``: that is also what a closed stdout
    raises (``BrokenPipeError``), which must not read as a lost daemon.
    """


def _usage(message: str) -> NoReturn:
    raise UsageError(message)


COMMANDS: dict[str, Callable[[Ctx], Any]] = {
    "info": cmd_info,
    "sessions": cmd_sessions,
    "session": cmd_session,
    "destinations": cmd_destinations,
    "session-metrics": cmd_session_metrics,
    "destination": cmd_destination,
    "link-request": cmd_link_request,
    "announce": cmd_announce,
    "terminate": cmd_terminate,
    "connect": cmd_connect,
    "peers": cmd_peers,
    "disconnect": cmd_disconnect,
    "watch": cmd_watch,
}


def _command_role(args: argparse.Namespace) -> str | None:
    role = COMMAND_ROLE.get(args.command)
    if args.command == "destination" and args.action == "drop" and args.session:
        # --session names one of the router's sessions: only a router drops
        # a destination in one session (Destination Down to that modem).
        return "router"
    # Every other destination command goes to the modem, as --help and the
    # README say: with both daemons running, a `drop` that reached the router
    # printed "dropped" while the modem kept reporting the destination.
    if args.command == "destination" and args.action in ("pending", "accept", "refuse"):
        return "router"  # the router decides on the modem's Destination Ups
    if args.command == "session-metrics" and args.action == "set":
        return "modem"
    return role


def resolve_target(args: argparse.Namespace) -> tuple[Any, str]:
    """The client for the chosen daemon and the daemon's name for messages.

    Raises:
        UsageError: inconsistent flags.
        Unreachable: no socket where one was expected (message says where).
    """
    from ..api.client import ManagementClient
    from ..api.paths import candidate_socket_paths

    chosen = [f for f in ("socket", "server") if getattr(args, f)]
    if args.modem or args.router:
        chosen.append("modem" if args.modem else "router")
    if len(chosen) > 1:
        _usage("give only one of --socket, --server, --modem, --router")
    if args.server:
        missing = [f"--{f}" for f in ("cert", "key", "ca") if not getattr(args, f)]
        if missing:
            _usage(f"--server needs {', '.join(missing)} (the TCP listener is mutual TLS only)")
        try:
            client = ManagementClient.tcp(
                args.server,
                cert=args.cert,
                key=args.key,
                ca=args.ca,
                server_name=args.server_name,
                timeout=args.timeout,
            )
        except OSError as exc:
            _usage(f"cannot read {exc.filename}: {exc.strerror}")
        return client, "the dlep daemon"
    need = _command_role(args)
    if args.modem or args.router:
        role = "modem" if args.modem else "router"
        return _unix_client(candidate_socket_paths(role), args, role)
    path = args.socket or os.environ.get("DLEP_SOCKET")
    if path:
        p = Path(path).expanduser()
        _must_be_socket(p, "--socket" if args.socket else "$DLEP_SOCKET")
        return ManagementClient.unix(p, timeout=args.timeout), _name_of(need, p)
    roles = [need] if need else ["router", "modem"]
    candidates = [p for r in roles for p in candidate_socket_paths(r)]
    states = {p: socket_state(p) for p in candidates}
    # A live daemon wins over a socket file a dead one left behind, whatever
    # the order: a crashed router must not hide a running modem.
    for want in ("live", "busy"):
        for p in candidates:
            if states[p] == want:
                return ManagementClient.unix(p, timeout=args.timeout), _name_of(need, p)
    daemon = f"dlep-{need}" if need else "dlep-router or dlep-modem"
    stale = [p for p in candidates if states[p] == "stale"]
    if stale:
        raise Unreachable(
            f"cannot reach a dlep daemon: nothing listens on {' or '.join(map(str, stale))} "
            f"(left by a daemon that died); is {daemon} running? "
            "(give --socket PATH if its [api] socket is elsewhere)"
        )
    raise Unreachable(
        f"cannot reach a dlep daemon: no socket at {' or '.join(map(str, candidates))}; "
        f"is {daemon} running? (give --socket PATH if its [api] socket is elsewhere)"
    )


def socket_state(path: Path) -> str:
    """``"live"`` (a process accepts connections on it), ``"stale"`` (a
    socket file nobody listens on: its daemon died), ``"busy"`` (there, but
    we cannot tell: no permission, a slow accept), ``"foreign"`` (another
    user's: never used), ``"none"`` (no socket)."""
    import socket
    import stat

    try:
        st = path.stat()
    except OSError:
        return "none"
    if not stat.S_ISSOCK(st.st_mode):
        return "none"
    if st.st_uid != os.geteuid():
        # Found by looking, not named with --socket: a socket another user
        # put where ours would be must not receive our commands.
        return "foreign"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(str(path))
    except ConnectionRefusedError:
        return "stale"
    except OSError:
        return "busy"
    finally:
        s.close()
    return "live"


def _must_be_socket(path: Path, flag: str) -> None:
    """A path that exists but is no socket is a mistake worth naming (a
    missing one is reported as "no such socket" when the call fails)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        _usage(f"{flag} {path} is a directory, not the daemon's socket (api.socket)")
    if not stat.S_ISSOCK(mode):
        kind = "a regular file" if stat.S_ISREG(mode) else "not a socket"
        _usage(f"{flag} {path} is {kind}, not the daemon's socket (api.socket)")


def _unix_client(paths: list[Path], args: argparse.Namespace, role: str) -> tuple[Any, str]:
    from ..api.client import ManagementClient

    states = {p: socket_state(p) for p in paths}
    found = next(
        (p for want in ("live", "busy", "stale") for p in paths if states[p] == want), paths[0]
    )
    return ManagementClient.unix(found, timeout=args.timeout), f"dlep-{role}"


def _name_of(need: str | None, path: Path) -> str:
    if need:
        return f"dlep-{need}"
    for role in ("modem", "router"):
        if role in path.name:
            return f"dlep-{role}"
    return "the dlep daemon"


def _check_socket(client: Any, daemon: str) -> None:
    if client.target.startswith("unix:") and not Path(client.target[5:]).exists():
        raise Unreachable(
            f"cannot reach dlep daemon at {client.display}: no such socket; "
            f"is {daemon} running? (give --socket PATH if its [api] socket is elsewhere)"
        )


def _unreachable(exc: Any, daemon: str) -> Unreachable:
    return Unreachable(
        f"cannot reach dlep daemon at {exc.target}: {_why(exc.details)}; is {daemon} "
        "running? (give --socket PATH if its [api] socket is elsewhere)"
    )


def _timed_out(exc: Any, daemon: str, timeout: float) -> str:
    return (
        f"dlepctl: no answer from {daemon} at {exc.target} within {timeout:g}s "
        "(--timeout SECONDS allows longer)"
    )


def _api_error(exc: Any, daemon: str, timeout: float) -> int:
    """Say why the daemon refused a call (an ``ApiError``); the exit code."""
    if exc.code_name == "DEADLINE_EXCEEDED":
        print(_timed_out(exc, daemon, timeout), file=sys.stderr)
        return EXIT_TIMEOUT
    print(f"dlepctl: {exc.details} ({exc.code_name})", file=sys.stderr)
    return EXIT_ERROR


async def _run(args: argparse.Namespace, out: Out) -> int:
    from ..api.client import ApiError, DaemonUnreachable

    client, daemon = resolve_target(args)
    _check_socket(client, daemon)
    try:
        result: int = await COMMANDS[args.command](Ctx(client, out, args))
        return result
    except DaemonUnreachable as exc:
        raise _unreachable(exc, daemon) from None
    except ApiError as exc:
        return _api_error(exc, daemon, args.timeout)
    finally:
        await client.close()


async def _probe(client: Any) -> None:
    """One call, so ``top`` fails at once (not behind its full screen)."""
    try:
        await client.get_info()
    finally:
        await client.close()


def _run_top(argv: list[str]) -> int:
    from ..api.client import ApiError, DaemonUnreachable
    from . import top

    args = build_parser(with_top=True).parse_args(argv)
    client, daemon = resolve_target(args)
    _check_socket(client, daemon)
    import asyncio

    try:
        asyncio.run(_probe(client))
    except DaemonUnreachable as exc:
        raise _unreachable(exc, daemon) from None
    except ApiError as exc:
        return _api_error(exc, daemon, args.timeout)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _usage(
            "top is a full-screen view and needs a terminal; in scripts use "
            "`dlepctl sessions`, `dlepctl destinations` or `dlepctl watch`"
        )
    code = int(top.main(args, client))
    if code == top.EXIT_LOST:
        print(f"dlepctl: top: lost {daemon} at {client.display}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return code


def _why(details: str) -> str:
    """gRPC's connection error, said briefly."""
    low = details.lower()
    if "connection refused" in low:
        return "connection refused (nothing listens there: a socket left by a daemon that died?)"
    if "no such file" in low:
        return "no such socket"
    if "permission denied" in low:
        return "permission denied (the socket is mode 0600: run dlepctl as the daemon's user)"
    if "handshake" in low or "ssl" in low or "certificate" in low:
        return f"TLS handshake failed ({details})"
    return details


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlepctl``."""
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        # Here, not at interpreter exit: a reader that went away must end
        # up in the handler below, not in "Exception ignored" on stderr.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # `dlepctl ... | head`: the reader has what it wanted. Nothing more
        # can be written; stdout goes to /dev/null so the final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE


def _main(argv: list[str]) -> int:
    if argv[:1] == ["emu"]:  # the radio-link emulator's status (dlep-emu status)
        from .emu import status_main

        return status_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "completion":
        from .completion import completion_script

        parser = build_parser(with_top=True, completion=True)
        print(completion_script(parser, args.shell), end="")
        return EXIT_OK
    try:
        if args.command == "top":
            return _run_top(argv)
        out = Out(bool(args.json), headers=not args.no_headers)
        import asyncio  # here: --help, usage errors and completion never need it

        try:
            return asyncio.run(_run(args, out))
        except KeyboardInterrupt:
            return EXIT_OK
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"dlepctl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Unreachable as exc:
        print(f"dlepctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
