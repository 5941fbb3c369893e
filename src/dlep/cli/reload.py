"""SIGHUP: re-read the configuration file and apply what can change live.

What can change without dropping a session (:data:`LIVE_KEYS`) is applied
through the daemons' public methods; every other changed key is named in one
log line and waits for a restart. A file that does not validate changes
nothing: the daemon keeps running with the configuration it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from .logs import set_level

#: Keys (and the sections under them) a reload applies live.
LIVE_KEYS: Final = (
    "logging.level",
    "metrics",
    "router.static_peers",
    "modem.destinations",
    "modem.simulate",
)


def _flatten(prefix: str, value: object) -> Iterator[tuple[str, object]]:
    # Arrays are leaves: "router.static_peers" changed, whichever element did.
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(f"{prefix}.{k}" if prefix else str(k), v)
    else:
        yield prefix, value


def changed_keys(old: Any, new: Any) -> list[str]:
    """Dotted keys whose values differ between two configurations."""
    a = dict(_flatten("", old.model_dump(mode="json")))
    b = dict(_flatten("", new.model_dump(mode="json")))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def is_live(key: str) -> bool:
    """True if a reload applies ``key`` without a restart."""
    return any(key == live or key.startswith(live + ".") for live in LIVE_KEYS)


class Reloader:
    """Holds the configuration as applied, and the parts a reload swaps
    (the metrics endpoint); :meth:`reload` runs on the daemon's loop."""

    def __init__(
        self,
        daemon: Any,
        config: Any,
        load: Callable[[], Any],
        log: logging.Logger,
        metrics: Any = None,
    ) -> None:
        self.daemon = daemon
        self.config = config
        self.load = load
        self.log = log
        self.metrics = metrics

    async def reload(self) -> bool:
        """Re-read and apply; False (and the running configuration kept)
        if the file has errors."""
        from ..config import ConfigError

        try:
            new = self.load()
        except ConfigError as exc:
            self.log.error(
                "configuration reload failed, still running with the previous configuration: %s",
                "; ".join(str(exc).splitlines()),
            )
            return False
        keys = changed_keys(self.config, new)
        if not keys:
            self.log.info("configuration reloaded: nothing changed")
            return True
        applied: list[str] = []
        failed: list[str] = []
        cur = self.config
        if cur.logging.level != new.logging.level:
            set_level(new.logging.level)
            cur = cur.model_copy(
                update={"logging": cur.logging.model_copy(update={"level": new.logging.level})}
            )
            applied.append("logging.level")
        # After the level changed, so a reload to debug shows it at once.
        self.log.debug("configuration reload: changed keys: %s", ", ".join(keys))
        if cur.metrics != new.metrics:
            if await self._swap_metrics(new.metrics):
                cur = cur.model_copy(update={"metrics": new.metrics})
                applied.append("metrics")
            else:
                failed.append("metrics")
        if hasattr(cur, "router"):
            cur = await self._router(cur, new, applied, failed)
        else:
            cur = await self._modem(cur, new, applied, failed)
        self.config = cur
        restart = [k for k in keys if not is_live(k)]
        self.log.info(
            "configuration reloaded: applied %s",
            ", ".join(applied) or "nothing",
        )
        if restart:
            self.log.warning(
                "configuration reload: changed but only applied at a restart: %s",
                ", ".join(restart),
            )
        return not failed

    async def _router(self, cur: Any, new: Any, applied: list[str], failed: list[str]) -> Any:
        from ..daemon import DaemonError

        if cur.router.static_peers == new.router.static_peers:
            return cur
        try:
            added, removed = await self.daemon.set_static_peers(new.router.static_peers)
        except DaemonError as exc:
            self.log.error("configuration reload: router.static_peers: %s", exc)
            failed.append("router.static_peers")
            return cur
        applied.append(f"router.static_peers (+{added} -{removed})")
        return cur.model_copy(
            update={
                "router": cur.router.model_copy(update={"static_peers": new.router.static_peers})
            }
        )

    async def _modem(self, cur: Any, new: Any, applied: list[str], failed: list[str]) -> Any:
        from ..daemon import DaemonError

        m = cur.modem
        if m.destinations != new.modem.destinations:
            try:
                n = await self.daemon.set_configured_destinations(new.modem.destinations)
            except DaemonError as exc:
                # The message names the entry: modem.destinations[1].metrics.cdrr: ...
                self.log.error("configuration reload: %s", exc)
                failed.append("modem.destinations")
            else:
                applied.append(f"modem.destinations ({n} changed)")
                m = m.model_copy(update={"destinations": new.modem.destinations})
        if m.simulate != new.modem.simulate:
            await self.daemon.set_simulation(new.modem.simulate)
            applied.append("modem.simulate")
            m = m.model_copy(update={"simulate": new.modem.simulate})
        return cur.model_copy(update={"modem": m})

    async def _swap_metrics(self, cfg: Any) -> bool:
        from ..api.startup import MetricsSetupError, start_metrics_server

        old = self.metrics
        if old is not None:
            # Closed first: the new endpoint may want the same address.
            await old.aclose()
            self.metrics = None
        try:
            self.metrics = await start_metrics_server(self.daemon, cfg)
        except (OSError, MetricsSetupError) as exc:
            self.log.error("configuration reload: metrics.listen %s: %s", cfg.listen, exc)
            if old is not None:
                try:
                    self.metrics = await start_metrics_server(self.daemon, self.config.metrics)
                except (OSError, MetricsSetupError) as exc2:
                    self.log.error("metrics endpoint not restored: %s", exc2)
            return False
        return True
