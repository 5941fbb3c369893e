"""``dlep-modem``: the DLEP modem daemon (and simulator)."""

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

log = logging.getLogger("dlep.modem")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``dlep-modem``."""
    args = make_parser(
        "modem",
        "DLEP modem: answers Peer Discovery, serves router sessions, and reports the\n"
        "destinations of its configuration (optionally with simulated, changing metrics).",
    ).parse_args(argv)
    from ..config import ConfigError, load_modem_config

    try:
        cfg = load_modem_config(args.config, overrides=overrides_from(args))
    except ConfigError as exc:
        return fail_config(exc)
    if args.check:
        m = cfg.modem
        tls = "on" if cfg.network.use_tls else "off"
        print(
            f"{args.config}: OK (modem; listening on "
            f"{', '.join(str(a) for a in cfg.network.listen_addresses)} port "
            f"{cfg.network.tcp_port}, {len(m.destinations)} destination(s), simulation "
            f"{'on' if m.simulate.enabled else 'off'}, TLS {tls})"
        )
        return EXIT_OK
    init_logging(cfg, "modem")
    from ..daemon import ModemDaemon

    async def start() -> ModemDaemon:
        b = ModemDaemon.builder().config(cfg)
        if args.no_tls:
            b = b.no_tls()
        return await b.spawn()

    return run_daemon(start, log)


if __name__ == "__main__":
    sys.exit(main())
