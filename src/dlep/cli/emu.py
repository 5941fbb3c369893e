"""``dlep-emu``: the radio-link emulator's command line.

::

    dlep-emu run examples/line4.toml            # as root: namespaces, TAPs, routers, live view
    dlep-emu run examples/line4.toml --radios-only   # no root: radios and DLEP only
    dlep-emu check examples/line4.toml          # validate, print a summary
    dlep-emu status [macs|drops|links|neighbours] [--node N] [--json]
    dlep-emu cleanup                            # namespaces a killed run left behind

``dlepctl emu ...`` is the same as ``dlep-emu status ...``. The wiring to the
management API (each node's modem serves the standard gRPC API, and the live
view reads each router's destinations through it) lives here, in the CLI
layer, so ``dlep.emu`` itself depends only on the library API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import __version__
from .logs import LEVELS, setup_logging

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

log = logging.getLogger("dlep.emu")

_EPILOG = """\
examples:
  sudo dlep-emu run examples/line4.toml          the whole scenario with a live view
  sudo dlep-emu run examples/line4.toml --no-view --duration 60
  dlep-emu run examples/line4.toml --radios-only no root: emulated radios and DLEP only
  dlep-emu status                                 the running scenario's nodes
  dlep-emu status macs --node n2                  one node's MAC table
  dlepctl --socket /tmp/dlep-emu-line4-PID/n1.router.sock destinations

Every scenario key is documented in docs/emulator.md.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``dlep-emu`` argument parser."""
    p = argparse.ArgumentParser(
        prog="dlep-emu",
        description="Radio-link emulator: TAPs joined by emulated radio links, one DLEP "
        "modem per node reporting what the links measure.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a scenario (root unless --radios-only)")
    r.add_argument("scenario", type=Path, help="scenario TOML file")
    r.add_argument("--only-host", metavar="HOST", help="start only the nodes with host = HOST")
    r.add_argument(
        "--radios-only",
        action="store_true",
        help="no namespaces and no TAPs (no root needed): emulated radios and DLEP only",
    )
    r.add_argument("--run-dir", type=Path, help="sockets, logs, run.json (default: a temp dir)")
    r.add_argument("--no-view", action="store_true", help="print events instead of a live view")
    r.add_argument(
        "--duration",
        type=float,
        help="stop after this many seconds (default: the scenario's duration; 0: never)",
    )
    r.add_argument(
        "--start-at",
        type=float,
        metavar="EPOCH",
        help="timeline time 0 as a Unix time (align the hosts of a multi-host run)",
    )
    r.add_argument("--keep", action="store_true", help="keep the run directory (logs) afterwards")
    r.add_argument("--log-level", choices=LEVELS, default="info", help="of every process")

    c = sub.add_parser("check", help="validate a scenario and print a summary")
    c.add_argument("scenario", type=Path)

    s = sub.add_parser("status", help="the running scenario's emulators")
    _status_args(s)

    sub.add_parser("cleanup", help="remove namespaces left by runs that were killed")

    n = sub.add_parser("node", help="(internal) run one node's emulator; dlep-emu run uses it")
    n.add_argument("scenario", type=Path)
    n.add_argument("--node", required=True)
    n.add_argument("--run-dir", type=Path, required=True)
    n.add_argument("--netns")
    n.add_argument("--t0", type=float)
    n.add_argument("--parent", type=int)
    n.add_argument("--radios-only", action="store_true")
    n.add_argument("--no-modem", action="store_true")
    n.add_argument("--log-level", choices=LEVELS, default="info")
    return p


def _status_args(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "what",
        nargs="?",
        default="summary",
        choices=("summary", "links", "neighbours", "macs", "drops"),
    )
    s.add_argument("--run-dir", type=Path, help="the run's directory (default: the newest run)")
    s.add_argument("--node", action="append", help="only this node (repeatable)")
    s.add_argument("--json", action="store_true", help="the raw status objects as JSON")


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------


def _load(path: Path) -> Any:
    from ..config import ConfigError
    from ..emu.scenario import load_scenario

    try:
        return load_scenario(path).topology()
    except ConfigError as exc:
        print(f"scenario error:\n{exc}", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    """``dlep-emu check``."""
    topo = _load(args.scenario)
    if topo is None:
        return EXIT_USAGE
    print(
        f"{args.scenario}: OK ({topo.name}: {len(topo.nodes)} nodes on "
        f"{', '.join(topo.hosts())}, {len(topo.links) // 2} links, "
        f"{len(topo.timeline)} timeline changes)"
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """``dlep-emu run``."""
    from ..emu.runner import RunError, Runner

    topo = _load(args.scenario)
    if topo is None:
        return EXIT_USAGE
    setup_logging(args.log_level, "text", prefix="emu")
    run_dir = args.run_dir or Path(tempfile.gettempdir()) / f"dlep-emu-{topo.name}-{os.getpid()}"
    runner = Runner(
        scenario_path=args.scenario.resolve(),
        topo=topo,
        run_dir=run_dir.resolve(),
        only_host=args.only_host,
        radios_only=args.radios_only,
        log_level=args.log_level,
        start_at=args.start_at,
        keep_run_dir=args.keep,
    )
    try:
        runner.check()
    except RunError as exc:
        print(f"dlep-emu: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    # SIGTERM during set-up must still tear down: turn it into KeyboardInterrupt.
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        try:
            runner.start()
        except (RunError, OSError) as exc:
            print(f"dlep-emu: {exc}", file=sys.stderr)
            print(f"dlep-emu: logs kept in {runner.run_dir}", file=sys.stderr)
            return EXIT_RUNTIME
        print(f"dlep-emu: {topo.name} running; sockets, logs and run.json in {runner.run_dir}")
        # The scenario's own duration applies unless --duration overrides it.
        duration = args.duration if args.duration is not None else topo.duration or None
        code = asyncio.run(_watch(runner, view=not args.no_view, duration=duration))
    except KeyboardInterrupt:
        code = EXIT_OK
    except BaseException:
        runner.failed = True
        raise
    finally:
        signal.signal(signal.SIGTERM, old)
        with contextlib.suppress(KeyboardInterrupt):
            runner.teardown()
    if runner.failed:
        print(f"dlep-emu: logs kept in {runner.run_dir}", file=sys.stderr)
    else:
        print("dlep-emu: stopped; namespaces, TAPs and processes removed")
    return code


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


async def _watch(runner: Any, *, view: bool, duration: float | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    topo = runner.topo
    names = {n.mac: n.name for n in topo.nodes}
    deadline = loop.time() + duration if duration else None
    seen: set[tuple[float, str, str]] = set()
    live: Any = None
    if view:
        from rich.live import Live

        live = Live(refresh_per_second=2, transient=False)
        live.start()
    try:
        while not stop.is_set():
            crashed = runner.exited()
            if crashed is not None:
                runner.failed = True
                if live is not None:
                    live.stop()
                    live = None
                print(
                    f"dlep-emu: the {crashed.name} of {crashed.node} exited "
                    f"({crashed.popen.returncode}); stopping everything. Its log:\n"
                    f"{crashed.tail()}",
                    file=sys.stderr,
                )
                return EXIT_RUNTIME
            statuses = await asyncio.to_thread(_statuses, runner.status_paths())
            if live is not None:
                from ..emu.view import live_view

                dests = await _router_destinations(runner)
                live.update(live_view(topo.name, statuses, dests, names))
            else:
                for name, st in statuses.items():
                    for e in st.get("events", []):
                        key = (e["at"], name, e["text"])
                        if key not in seen:
                            seen.add(key)
                            print(f"{name}: {e['text']}", flush=True)
            if deadline is not None and loop.time() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        if live is not None:
            live.stop()
    return EXIT_OK


def _statuses(paths: dict[str, Path]) -> dict[str, dict[str, Any]]:
    from ..emu.status import query

    out: dict[str, dict[str, Any]] = {}
    for name, path in paths.items():
        try:
            out[name] = query(path, timeout=2.0)
        except (OSError, ValueError):
            out[name] = {"node": name}
    return out


async def _router_destinations(runner: Any) -> dict[str, list[dict[str, Any]] | str]:
    from ..api.client import ApiError, ManagementClient

    out: dict[str, list[dict[str, Any]] | str] = {}
    for n in runner.local_nodes():
        if not n.router:
            continue
        path = runner.run_dir / f"{n.name}.router.sock"
        try:
            async with ManagementClient.unix(path, timeout=2.0) as client:
                dests = await client.list_destinations()
        except (ApiError, OSError) as exc:
            out[n.name] = f"router not reachable ({exc.__class__.__name__})"
            continue
        out[n.name] = [
            {
                "mac": d.mac,
                "metrics": {f: getattr(d.metrics, f) for f in _METRICS if d.metrics.HasField(f)},
                "ipv4": list(d.ipv4),
                "ipv6": list(d.ipv6),
            }
            for d in dests
        ]
    return out


_METRICS = ("mdrr", "mdrt", "cdrr", "cdrt", "latency", "resources", "rlqr", "rlqt", "mtu")


# ---------------------------------------------------------------------------
# node (internal)
# ---------------------------------------------------------------------------


def cmd_node(args: argparse.Namespace) -> int:
    """``dlep-emu node``: one node's emulator process."""
    from ..emu.service import NodeOptions, serve_node

    setup_logging(args.log_level, "text", prefix=f"emu {args.node}")
    topo = _load(args.scenario)
    if topo is None:
        return EXIT_USAGE
    if args.node not in topo.by_name:
        print(f"dlep-emu node: no node {args.node!r} in {args.scenario}", file=sys.stderr)
        return EXIT_USAGE
    opts = NodeOptions(
        node=args.node,
        run_dir=args.run_dir,
        netns=args.netns,
        t0_epoch=args.t0,
        radios_only=args.radios_only,
        parent=args.parent,
        modem=not args.no_modem,
    )
    return serve_node(topo, opts, _modem_api)


async def _modem_api(modem: Any) -> Callable[[], Awaitable[None]]:
    """Serve the modem's management API and metrics as its configuration says."""
    from ..api.startup import ApiSetupError, start_api_server, start_metrics_server

    api = None
    try:
        api = await start_api_server(modem)
    except ApiSetupError as exc:
        log.warning("modem API not served: %s", exc)
    metrics = await start_metrics_server(modem)

    async def undo() -> None:
        if api is not None:
            await api.stop()
        if metrics is not None:
            await metrics.aclose()

    return undo


# ---------------------------------------------------------------------------
# status, cleanup
# ---------------------------------------------------------------------------


def find_run_dir() -> Path | None:
    """The newest run directory whose ``dlep-emu run`` is still alive."""
    best: tuple[float, Path] | None = None
    for info in Path(tempfile.gettempdir()).glob("dlep-emu-*/run.json"):
        try:
            pid = int(json.loads(info.read_text())["pid"])
            os.kill(pid, 0)
        except (OSError, ValueError, KeyError):
            continue
        mtime = info.stat().st_mtime
        if best is None or mtime > best[0]:
            best = (mtime, info.parent)
    return best[1] if best else None


def cmd_status(args: argparse.Namespace) -> int:
    """``dlep-emu status`` / ``dlepctl emu``."""
    run_dir = args.run_dir or find_run_dir()
    if run_dir is None:
        print("dlep-emu status: no running scenario found (give --run-dir)", file=sys.stderr)
        return 3
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError) as exc:
        print(f"dlep-emu status: {run_dir}/run.json: {exc}", file=sys.stderr)
        return 3
    nodes = info["nodes"]
    wanted = args.node or list(nodes)
    unknown = [n for n in wanted if n not in nodes]
    if unknown:
        print(f"dlep-emu status: no node {unknown[0]!r} in this run", file=sys.stderr)
        return EXIT_USAGE
    paths = {n: Path(nodes[n]["sockets"]["emu"]) for n in wanted}
    statuses = _statuses(paths)
    if args.json:
        print(json.dumps(statuses, indent=2))
        return EXIT_OK
    from rich.console import Console

    from ..emu import view

    console = Console()
    tables = {
        "links": [view.links_table],
        "neighbours": [view.neighbours_table],
        "macs": [view.macs_table],
        "drops": [view.drops_table],
        "summary": [view.links_table, view.neighbours_table, view.drops_table],
    }[args.what]
    for make in tables:
        console.print(make(statuses))
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace) -> int:
    """``dlep-emu cleanup``."""
    from ..emu.system import missing_privileges, remove_netns, stale_namespaces

    why = missing_privileges(tun=False)
    if why is not None:
        print(f"dlep-emu cleanup: {why}", file=sys.stderr)
        return EXIT_RUNTIME
    stale = stale_namespaces()
    for name in stale:
        remove_netns(name)
        print(f"removed namespace {name}")
    if not stale:
        print("nothing to remove")
    return EXIT_OK


def status_main(argv: list[str]) -> int:
    """``dlepctl emu ...``: the emulator status commands."""
    p = argparse.ArgumentParser(prog="dlepctl emu", description="dlep-emu status of a run")
    _status_args(p)
    return cmd_status(p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-emu``."""
    args = build_parser().parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "check": cmd_check,
        "status": cmd_status,
        "cleanup": cmd_cleanup,
        "node": cmd_node,
    }
    start = time.monotonic()
    code = handlers[args.command](args)
    log.debug("%s took %.1f s", args.command, time.monotonic() - start)
    return code


if __name__ == "__main__":
    sys.exit(main())
