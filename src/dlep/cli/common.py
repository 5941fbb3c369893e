"""What ``dlep-router`` and ``dlep-modem`` share: flags, config loading, run loop."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import __version__
from .completion import Completer, PrintCompletion
from .examples import PrintExampleConfig
from .logs import LEVELS, setup_logging

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def make_parser(
    role: str, description: str, *, completion: bool = False
) -> argparse.ArgumentParser:
    """The flags of target-system.txt plus --check, --log-format and
    --print-completion (``completion``: mark file arguments for it)."""
    p = argparse.ArgumentParser(
        prog=f"dlep-{role}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Flags override the matching keys of the configuration file.\n"
            f"Example: dlep-{role} --print-example-config > {role}.toml\n"
            f"         dlep-{role} --config {role}.toml --log-level debug\n"
            "Port 854 needs CAP_NET_BIND_SERVICE (or root); the examples use 8854."
        ),
    )
    config = p.add_argument(
        "-c", "--config", type=Path, required=True, metavar="FILE", help="TOML configuration file"
    )
    p.add_argument(
        "-i", "--interface", metavar="IFACE", help="network interface (overrides network.interface)"
    )
    p.add_argument(
        "--log-level", choices=LEVELS, help="log verbosity (overrides logging.level; default info)"
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="text for people (default), json for machines (one object per line)",
    )
    p.add_argument(
        "--no-tls", action="store_true", help="plain TCP whatever the configuration says"
    )
    p.add_argument(
        "--no-api",
        action="store_true",
        help="do not serve the management API (dlepctl); overrides api.enabled",
    )
    p.add_argument(
        "--check", action="store_true", help="validate the configuration, print a summary, exit"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--print-example-config", action=PrintExampleConfig, role=role)
    p.add_argument(
        "--print-completion",
        action=PrintCompletion,
        build=lambda: make_parser(role, description, completion=True),
    )
    Completer(completion).files(config)
    return p


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Config key overrides for the flags that were given."""
    out: dict[str, Any] = {}
    if args.interface:
        out["network.interface"] = args.interface
    if args.log_level:
        out["logging.level"] = args.log_level
    if args.log_format:
        out["logging.format"] = args.log_format
    if args.no_tls:
        out["network.use_tls"] = False
    if getattr(args, "no_api", False):
        out["api.enabled"] = False
    return out


def run_daemon(
    start: Callable[[], Awaitable[Any]],
    log: logging.Logger,
    *,
    config: Any = None,
    load: Callable[[], Any] | None = None,
) -> int:
    """Run until SIGINT/SIGTERM, then shut down gracefully. Returns exit code.

    With ``load`` (re-reads the configuration file; ``config`` is the one the
    daemon started with), SIGHUP reloads the configuration (:mod:`.reload`).
    """
    # Imported here: --help, --version and --check never need the event loop
    # (asyncio with ssl is about 45 ms of start-up).
    import asyncio

    async def main() -> int:
        loop = asyncio.get_running_loop()
        # Signals are queued from the start: a SIGHUP during start-up is a
        # reload once the daemon runs, not the default action (exit without
        # Session Termination, leaving the API socket behind).
        signals: asyncio.Queue[int] = asyncio.Queue()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, AttributeError):
                loop.add_signal_handler(sig, signals.put_nowait, sig)
        try:
            daemon = await start()
        except Exception as exc:  # configuration / environment problems
            log.error("%s", exc)
            return EXIT_RUNTIME
        # dlep.api.startup imports prometheus_client / gRPC only when configured.
        from ..api.startup import MetricsSetupError, start_metrics_server

        try:
            metrics = await start_metrics_server(daemon)  # [metrics] listen; None if off
        except (OSError, MetricsSetupError) as exc:
            log.error("metrics endpoint %s: %s", daemon.cfg.metrics.listen, exc)
            await daemon.shutdown()
            return EXIT_RUNTIME
        from ..api.startup import ApiSetupError, start_api_server

        try:
            api = await start_api_server(daemon)  # [api]; None if api.enabled is false
        except ApiSetupError as exc:
            log.error("%s", exc)
            if metrics is not None:
                await metrics.aclose()
            await daemon.shutdown()
            return EXIT_RUNTIME
        from ..dataplane.service import DataplaneError, start_dataplane
        from .reload import Reloader

        reloader = Reloader(daemon, config, load or (lambda: config), log, metrics)

        async def stop_all() -> None:
            # The data plane first (it removes its kernel state), then the
            # API and the metrics endpoint (a reload may have replaced it),
            # then the daemon.
            if dataplane is not None:
                await dataplane.stop()
            if api is not None:
                await api.stop()
            if reloader.metrics is not None:
                await reloader.metrics.aclose()
            await daemon.shutdown()

        dataplane = None
        try:
            # [router.kernel] / [router.hooks] / [modem.feed] / [modem.nl80211]; None if off
            dataplane = await start_dataplane(daemon)
        except DataplaneError as exc:
            log.error("%s", exc)
            await stop_all()
            return EXIT_RUNTIME
        from ..daemon import tune_gc

        # Start-up is over: keep its objects out of every later collection,
        # whose pauses would otherwise land on updates in flight (tune_gc says why).
        log.debug("garbage collector: %d start-up objects frozen", tune_gc())
        from . import sdnotify

        sdnotify.notify("READY=1", f"STATUS={daemon.role.value} running")
        watchdog = None
        interval = sdnotify.watchdog_interval()
        if interval is not None:
            # On the event loop: a loop that stops turning stops the pings,
            # and systemd restarts the daemon (WatchdogSec=).
            watchdog = asyncio.ensure_future(_watchdog(sdnotify.notify, interval))
        while True:
            got = await signals.get()
            if got == signal.SIGHUP and load is not None:
                log.info("SIGHUP: reloading the configuration")
                sdnotify.reloading()
                await reloader.reload()
                sdnotify.notify("READY=1", f"STATUS={daemon.role.value} running")
                continue
            if got != signal.SIGHUP:
                break
        log.info("signal received, shutting down")
        sdnotify.notify("STOPPING=1", "STATUS=shutting down")
        if watchdog is not None:
            watchdog.cancel()
        await stop_all()
        return EXIT_OK

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return EXIT_OK


async def _watchdog(notify: Callable[..., bool], interval: float) -> None:
    import asyncio

    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def fail_config(exc: Exception) -> int:
    """Print a configuration error the way people expect, return exit code."""
    print(f"configuration error:\n{exc}", file=sys.stderr)
    return EXIT_CONFIG


def init_logging(cfg: Any, role: str) -> None:
    """Logging from the (already overridden) configuration."""
    setup_logging(cfg.logging.level, cfg.logging.format, prefix=role)


def run_role(
    role: str,
    description: str,
    argv: list[str] | None,
    load: Callable[..., Any],
    summary: Callable[[Any], str],
    daemon_cls: Any,
) -> int:
    """The whole life of ``dlep-<role>``: flags, config, ``--check``, run.

    ``load`` reads the configuration (``load_router_config`` /
    ``load_modem_config``), ``summary`` renders the ``--check`` line and
    ``daemon_cls`` is ``RouterDaemon`` or ``ModemDaemon``.
    """
    args = make_parser(role, description).parse_args(argv)
    from ..config import ConfigError

    try:
        cfg = load(args.config, overrides=overrides_from(args))
    except ConfigError as exc:
        return fail_config(exc)
    if args.check:
        from .preflight import problems

        found = problems(role, cfg)
        if found:
            print(f"configuration error:\n{args.config}:", file=sys.stderr)
            for line in found:
                print(f"  {line}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"{args.config}: OK ({role}; {summary(cfg)})")
        return EXIT_OK
    init_logging(cfg, role)

    async def start() -> Any:
        builder = daemon_cls.builder().config(cfg)
        if args.no_tls:
            builder = builder.no_tls()
        return await builder.spawn()

    def reload() -> Any:
        # The flags win over the file on a reload too, as at start-up.
        return load(args.config, overrides=overrides_from(args))

    return run_daemon(start, logging.getLogger(f"dlep.{role}"), config=cfg, load=reload)
