"""[router.hooks]: a command, or a Python callable, hears every change as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from dlep.config import HooksConfig, RouteMetricConfig
from dlep.dataplane.hooks import HookError, HookRunner, load_hook
from dlep.dataplane.router import RouterDataplane
from dlep.fsm import Metrics

from .conftest import Pair, until

M5 = "02:00:00:00:00:05"

HOOK = """
import json, os, sys
obj = json.loads(sys.stdin.read())
obj["env"] = [os.environ["DLEP_EVENT"], os.environ["DLEP_MAC"]]
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(obj) + "\\n")
"""


async def test_command_hook_gets_every_change(pair: Pair, tmp_path: Path) -> None:
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    out = tmp_path / "changes.jsonl"
    cfg = HooksConfig(command=(sys.executable, str(script), str(out)))
    dp = RouterDataplane(pair.router, None, cfg)
    await dp.start()
    try:
        await pair.modem.add_destination(
            M5, Metrics(cdrt=10_000_000, latency=1000), addresses=["10.5.0.5"]
        )
        await pair.modem.update_destination(M5, Metrics(cdrt=2_000_000))
        await pair.modem.drop_destination(M5)

        def lines() -> list[dict[str, Any]]:
            if not out.exists():
                return []
            return [json.loads(x) for x in out.read_text().splitlines()]

        await until(lambda: len(lines()) == 3, timeout=20, what="three hook runs")
    finally:
        await dp.stop()
    up, update, down = lines()
    assert [x["event"] for x in (up, update, down)] == ["up", "update", "down"]
    assert up["env"] == ["up", M5]
    assert up["destination"]["mac"] == M5 and up["destination"]["ipv4"] == ["10.5.0.5"]
    assert up["destination"]["metrics"]["cdrt"] == 10_000_000
    assert "previous" not in up
    assert update["previous"]["metrics"]["cdrt"] == 10_000_000
    assert update["route_metric"] > update["previous"]["route_metric"]
    assert down["destination"]["mac"] == M5
    assert dp.hooks is not None and dp.hooks.failed == 0


async def test_callable_hook_and_failures(pair: Pair) -> None:
    seen: list[dict[str, Any]] = []

    async def hook(obj: dict[str, Any]) -> None:
        seen.append(obj)
        if obj["event"] == "update":
            raise RuntimeError("routing daemon unreachable")

    dp = RouterDataplane(pair.router, None, HooksConfig(), hook_function=hook)
    await dp.start()
    try:
        await pair.modem.add_destination(M5, Metrics(cdrt=1_000_000))
        await pair.modem.update_destination(M5, Metrics(cdrt=2_000_000))
        await pair.modem.drop_destination(M5)
        await until(lambda: len(seen) == 3, what="three calls")
    finally:
        await dp.stop()
    assert [o["event"] for o in seen] == ["up", "update", "down"]
    assert dp.hooks is not None and dp.hooks.failed == 1


async def test_hanging_command_is_killed(tmp_path: Path) -> None:
    from dlep.daemon import SessionEvent
    from dlep.dataplane.table import DestinationTable
    from dlep.fsm import DestinationInfo, DestinationUp

    runner = HookRunner(
        HooksConfig(command=(sys.executable, "-c", "import time; time.sleep(30)"), timeout_ms=300),
        RouteMetricConfig(),
    )
    runner.start()
    [change] = DestinationTable().handle(
        SessionEvent("1", "p", DestinationUp(DestinationInfo(bytes.fromhex("020000000005"))))
    )
    runner.submit(change)
    await runner.drain(10)
    await runner.stop()
    assert runner.failed == 1 and runner.ran == 0


def test_unknown_entry_point() -> None:
    with pytest.raises(HookError, match=r"no 'dlep\.hooks' entry point 'nope'"):
        load_hook("nope")


def test_hooks_config_errors_name_the_key() -> None:
    from dlep.config import ConfigError, parse_router_config

    with pytest.raises(ConfigError) as exc:
        parse_router_config({"router": {"hooks": {"command": "babel-cost --x"}}})
    assert exc.value.keys == ["router.hooks.command"]
    with pytest.raises(ConfigError) as exc:
        parse_router_config({"router": {"hooks": {"timeout_ms": 0}}})
    assert exc.value.keys == ["router.hooks.timeout_ms"]
