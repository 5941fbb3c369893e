"""What ``dlep-router`` and ``dlep-modem`` share: flags, config loading, run loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .. import __version__
from .logs import LEVELS, setup_logging

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_RUNTIME = 1


def make_parser(role: str, description: str) -> argparse.ArgumentParser:
    """The flags of target-system.txt plus --check and --log-format."""
    p = argparse.ArgumentParser(
        prog=f"dlep-{role}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Flags override the matching keys of the configuration file.\n"
            f"Example: dlep-{role} --config examples/{role}.toml --log-level debug\n"
            "Port 854 needs CAP_NET_BIND_SERVICE (or root); the examples use 8854."
        ),
    )
    p.add_argument(
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
        "--check", action="store_true", help="validate the configuration, print a summary, exit"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    return out


def run_daemon(
    start: Callable[[], Awaitable[Any]],
    log: logging.Logger,
) -> int:
    """Run until SIGINT/SIGTERM, then shut down gracefully. Returns exit code."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            daemon = await start()
        except Exception as exc:  # configuration / environment problems
            log.error("%s", exc)
            return EXIT_RUNTIME
        await stop.wait()
        log.info("signal received, shutting down")
        await daemon.shutdown()
        return EXIT_OK

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return EXIT_OK


def fail_config(exc: Exception) -> int:
    """Print a configuration error the way people expect, return exit code."""
    print(f"configuration error:\n{exc}", file=sys.stderr)
    return EXIT_CONFIG


def init_logging(cfg: Any, role: str) -> None:
    """Logging from the (already overridden) configuration."""
    setup_logging(cfg.logging.level, cfg.logging.format, prefix=role)
