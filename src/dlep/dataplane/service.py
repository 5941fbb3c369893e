"""Start the data plane parts a daemon's configuration asks for.

``dlep-router`` and ``dlep-modem`` call :func:`start_dataplane` after
``spawn()`` and :meth:`Dataplane.stop` before ``shutdown()``; a library user
may do the same, or build the parts (:class:`RouterDataplane`,
:class:`JsonLinesFeed`, :class:`Nl80211Source`) directly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, cast

from ..fsm import Role

if TYPE_CHECKING:
    # Only for types: a router process never imports the modem daemon (nor the
    # other way round) just to tell which one it runs; see start_dataplane.
    from ..daemon import ModemDaemon, RouterDaemon

__all__ = ["Dataplane", "DataplaneError", "start_dataplane"]

log = logging.getLogger("dlep.dataplane")


class DataplaneError(Exception):
    """A configured part could not start (the message says which and why)."""


class _Part(Protocol):
    async def stop(self) -> None: ...


class Dataplane:
    """The running parts; :meth:`stop` stops them in reverse order."""

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def add(self, part: _Part) -> None:
        """Remember a started part."""
        self.parts.append(part)

    async def stop(self) -> None:
        """Stop every part (errors are logged, the others still stop)."""
        for part in reversed(self.parts):
            try:
                await part.stop()
            except Exception as exc:
                log.error("dataplane: stopping %s: %s", type(part).__name__, exc)
        self.parts.clear()


async def start_dataplane(daemon: RouterDaemon | ModemDaemon) -> Dataplane | None:
    """Start what ``[router.kernel]``/``[router.hooks]`` or ``[modem.feed]``/
    ``[modem.nl80211]`` configure; None when nothing is configured."""
    dp = Dataplane()
    try:
        if daemon.role is Role.ROUTER:
            await _router(cast("RouterDaemon", daemon), dp)
        else:
            await _modem(cast("ModemDaemon", daemon), dp)
    except BaseException:
        await dp.stop()
        raise
    return dp if dp.parts else None


async def _router(daemon: RouterDaemon, dp: Dataplane) -> None:
    r = daemon.rcfg.router
    if not (r.kernel.enabled or r.hooks.enabled):
        return
    from .hooks import HookError
    from .router import RouterDataplane

    try:
        part = RouterDataplane(daemon, r.kernel, r.hooks, interface=daemon.cfg.network.interface)
        await part.start()
    except (OSError, LookupError, RuntimeError, ValueError, HookError) as exc:
        raise DataplaneError(f"router.kernel: {exc}") from exc
    except Exception as exc:  # netlink errors from pyroute2
        raise DataplaneError(f"router.kernel: {type(exc).__name__}: {exc}") from exc
    dp.add(part)


async def _modem(daemon: ModemDaemon, dp: Dataplane) -> None:
    m = daemon.mcfg.modem
    if m.feed.stdin or m.feed.udp is not None:
        from .feed import JsonLinesFeed

        feed = JsonLinesFeed(daemon, max_batch=m.feed.max_batch)
        dp.add(feed)
        try:
            if m.feed.stdin:
                await feed.start_stdin()
            addr = m.feed.udp_address()
            if addr is not None:
                await feed.start_udp(*addr)
        except (OSError, ValueError) as exc:
            raise DataplaneError(f"modem.feed: {exc}") from exc
    if m.nl80211.enabled:
        from .nl80211 import Nl80211Source

        src = Nl80211Source(daemon, m.nl80211)
        try:
            await src.start()
        except Exception as exc:
            raise DataplaneError(f"modem.nl80211: {type(exc).__name__}: {exc}") from exc
        dp.add(src)
