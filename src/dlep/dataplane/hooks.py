"""``[router.hooks]``: tell another program about every destination change.

Each change becomes one JSON object (see :func:`change_json` and
docs/dataplane.md) handed, in order, to

* a command (an argv list, no shell): started once per change with the
  object and a newline on its standard input, and ``DLEP_EVENT`` /
  ``DLEP_MAC`` in its environment; or
* a plug-in: a callable published under the ``dlep.hooks`` entry-point
  group, called with the object as a dict (it may be a coroutine function).

Changes wait in a bounded queue; one slow or hanging hook cannot stall the
router (it is killed after ``timeout_ms``, and changes beyond the queue are
dropped and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Final

from .metric import route_metric
from .table import Change
from .tasks import cancel_all

if TYPE_CHECKING:
    from ..config import HooksConfig, RouteMetricConfig

__all__ = ["ENTRY_POINT_GROUP", "HookError", "HookRunner", "change_json", "load_hook"]

log = logging.getLogger("dlep.dataplane.hooks")

ENTRY_POINT_GROUP: Final = "dlep.hooks"
HookFn = Callable[[dict[str, Any]], Any]


class HookError(Exception):
    """The hook cannot be set up (entry point missing or not callable)."""


def change_json(
    change: Change, metric_cfg: RouteMetricConfig, now: float | None = None
) -> dict[str, Any]:
    """The JSON object a hook receives for ``change``."""
    d = change.dest if change.dest is not None else change.before
    assert d is not None
    out: dict[str, Any] = {
        "event": change.kind,
        "time": time.time() if now is None else now,
        "destination": d.as_json(),
        "route_metric": route_metric(metric_cfg, d.metrics, d.hops),
    }
    if change.key.ident:
        out["link_id"] = [str(i) for i in change.key.ident]
    if change.before is not None and change.dest is not None:
        out["previous"] = {
            "metrics": change.before.metrics.as_dict(),
            "route_metric": route_metric(metric_cfg, change.before.metrics, change.before.hops),
            "paused": change.before.paused,
        }
    return out


def load_hook(name: str) -> HookFn:
    """The callable published as ``name`` in the ``dlep.hooks`` group."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        raise HookError(f"router.hooks.entry_point: no {ENTRY_POINT_GROUP!r} entry point {name!r}")
    try:
        fn = found[0].load()
    except Exception as exc:
        raise HookError(f"router.hooks.entry_point {name!r}: {exc}") from exc
    if not callable(fn):
        raise HookError(f"router.hooks.entry_point {name!r}: {fn!r} is not callable")
    return fn  # type: ignore[no-any-return]


class HookRunner:
    """Runs the configured hook for each change, in order, one at a time."""

    def __init__(
        self,
        cfg: HooksConfig,
        metric_cfg: RouteMetricConfig,
        *,
        function: HookFn | None = None,
    ) -> None:
        self.cfg = cfg
        self.metric_cfg = metric_cfg
        self._fn = function
        if self._fn is None and cfg.entry_point is not None:
            self._fn = load_hook(cfg.entry_point)
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(cfg.queue)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.failed = 0
        self.ran = 0

    def start(self) -> None:
        """Start the worker task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._worker(), name="dlep-hooks")

    def submit(self, change: Change) -> None:
        """Queue ``change`` (dropped, and counted, when the queue is full)."""
        try:
            self._queue.put_nowait(change_json(change, self.metric_cfg))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("hooks: queue full, %d change(s) dropped so far", self.dropped)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued change was handed to the hook."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    async def stop(self) -> None:
        """Stop the worker (a running hook is given its timeout to finish)."""
        task, self._task = self._task, None
        await cancel_all(task)

    async def _worker(self) -> None:
        while True:
            obj = await self._queue.get()
            try:
                await self._run(obj)
                self.ran += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed += 1
                log.error("hooks: %s %s: %s", obj["event"], obj["destination"]["mac"], exc)
            finally:
                self._queue.task_done()

    async def _run(self, obj: dict[str, Any]) -> None:
        timeout = self.cfg.timeout_ms / 1000.0
        if self._fn is not None:
            result = self._fn(obj)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, timeout)
            return
        if not self.cfg.command:
            return
        env = dict(os.environ, DLEP_EVENT=obj["event"], DLEP_MAC=obj["destination"]["mac"])
        proc = await asyncio.create_subprocess_exec(
            *self.cfg.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        try:
            _, err = await asyncio.wait_for(proc.communicate(data), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(
                f"{self.cfg.command[0]} did not finish within {self.cfg.timeout_ms} ms; killed"
            ) from None
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            raise RuntimeError(
                f"{self.cfg.command[0]} exited with {proc.returncode}"
                + (f": {tail[0]}" if tail else "")
            )
