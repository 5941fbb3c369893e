"""``dlep-router``: the DLEP router daemon."""

from __future__ import annotations

import logging
import sys

from .common import (
    EXIT_OK,
    fail_config,
    init_logging,
    make_parser,
    overrides_from,
    run_daemon,
)

log = logging.getLogger("dlep.router")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-router``."""
    args = make_parser(
        "router",
        "DLEP router: discovers modems (RFC 8175 Peer Discovery) or connects to static\n"
        "peers, and logs every session and destination event with its metrics.",
    ).parse_args(argv)
    from ..config import ConfigError, load_router_config

    try:
        cfg = load_router_config(args.config, overrides=overrides_from(args))
    except ConfigError as exc:
        return fail_config(exc)
    if args.check:
        r = cfg.router
        peers = ", ".join(f"{p.address}:{p.port}" for p in r.static_peers) or "none"
        print(
            f"{args.config}: OK (router; discovery {'on' if r.discovery else 'off'}, "
            f"static peers {peers}, heartbeat {cfg.timers.heartbeat_interval_ms} ms, "
            f"TLS {'on' if cfg.network.use_tls else 'off'})"
        )
        return EXIT_OK
    init_logging(cfg, "router")
    from ..daemon import RouterDaemon

    async def start() -> RouterDaemon:
        b = RouterDaemon.builder().config(cfg)
        if args.no_tls:
            b = b.no_tls()
        return await b.spawn()

    return run_daemon(start, log)


if __name__ == "__main__":
    sys.exit(main())
