"""The router data plane: one task that follows a RouterDaemon's events.

::

    daemon = await RouterDaemon.builder().config(cfg).spawn()
    dp = RouterDataplane(daemon, cfg.router.kernel, cfg.router.hooks,
                         interface="eth1")
    await dp.start()         # flushes stale state, then follows the daemon
    ...
    await dp.stop()          # removes what it installed

It reads the daemon only through its public API: one bounded
``subscribe()`` stream, and the ``destinations()`` snapshot when that
stream reports it lagged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..daemon import RouterDaemon
from .hooks import HookFn, HookRunner
from .kernel import KernelApplier
from .table import Change, DestinationTable
from .tasks import cancel_all

if TYPE_CHECKING:
    from ..config import HooksConfig, KernelConfig

__all__ = ["RouterDataplane"]

log = logging.getLogger("dlep.dataplane")


class RouterDataplane:
    """Applies a router daemon's destinations to the kernel and/or hooks."""

    def __init__(
        self,
        daemon: RouterDaemon,
        kernel: KernelConfig | None,
        hooks: HooksConfig | None = None,
        *,
        interface: str | None = None,
        hook_function: HookFn | None = None,
    ) -> None:
        self.daemon = daemon
        self.table = DestinationTable()
        self.kernel: KernelApplier | None = None
        if kernel is not None and kernel.enabled:
            name = kernel.interface or interface
            if not name:
                raise ValueError("router.kernel.interface: required (the modem-facing interface)")
            self.kernel = KernelApplier(kernel, name)
        self.hooks: HookRunner | None = None
        if hooks is not None and (hooks.enabled or hook_function is not None):
            from ..config import RouteMetricConfig

            metric_cfg = kernel.metric if kernel is not None else RouteMetricConfig()
            self.hooks = HookRunner(hooks, metric_cfg, function=hook_function)
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.changes = 0

    async def start(self) -> None:
        """Flush stale kernel state, then follow the daemon's events."""
        sub = self.daemon.subscribe()
        if self.kernel is not None:
            try:
                await self.kernel.start()
            except BaseException:
                self.daemon.unsubscribe(sub)
                raise
        if self.hooks is not None:
            self.hooks.start()
        # Destinations that came up before we subscribed.
        await self._apply(self.table.resync(self.daemon.destinations()))
        self._task = asyncio.get_running_loop().create_task(
            self._follow(sub), name="dlep-dataplane"
        )

    async def stop(self) -> None:
        """Stop following; remove the kernel state; stop the hooks."""
        task, self._task = self._task, None
        await cancel_all(task)
        if self.hooks is not None:
            await self.hooks.drain(2.0)
            await self.hooks.stop()
        if self.kernel is not None:
            await self.kernel.stop()

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait until every event received so far has been applied (tests, tools)."""
        await asyncio.sleep(0)
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _follow(self, sub: object) -> None:
        from ..daemon import Subscription

        assert isinstance(sub, Subscription)
        try:
            async for ev in sub:
                self._idle.clear()
                if self.table.needs_resync(ev):
                    log.warning("dataplane: fell behind the daemon's events; resynchronising")
                    changes = self.table.resync(self.daemon.destinations())
                else:
                    changes = self.table.handle(ev)
                await self._apply(changes)
                if sub.pending() == 0:
                    self._idle.set()
        finally:
            self._idle.set()
            self.daemon.unsubscribe(sub)

    async def _apply(self, changes: list[Change]) -> None:
        for ch in changes:
            self.changes += 1
            if self.kernel is not None:
                await self.kernel.apply(ch)
            if self.hooks is not None:
                self.hooks.submit(ch)
