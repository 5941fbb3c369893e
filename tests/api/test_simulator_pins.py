"""Operations issue, item 2: the simulator never moves what an operator set
by hand; ``release_destination`` / ``ReleaseDestination`` /
``dlepctl destination release`` hand a destination back to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dlep.api.client import ApiError, ManagementClient
from dlep.api.server import ManagementServer
from dlep.config import parse_modem_config
from dlep.daemon import ModemDaemon
from dlep.fsm import DestKey, Metrics
from dlep.wire import MacAddress

from .conftest import (
    DESTINATIONS,
    MAC1,
    MAC2,
    SESSION_METRICS,
    V4,
    dlepctl,
    free_port,
    timers,
    until,
)

pytestmark = pytest.mark.timeout(60)

MAC3 = "02:00:00:00:00:03"


def _key(mac: str) -> DestKey:
    return DestKey(MacAddress.parse(mac).address)


def _config(tmp_path: Path, **sim: Any) -> Any:
    return parse_modem_config(
        {
            "network": {"listen_addresses": [V4], "tcp_port": free_port()},
            "timers": timers(),
            "api": {"socket": str(tmp_path / "modem.sock")},
            "modem": {
                "session_metrics": dict(SESSION_METRICS),
                "destinations": DESTINATIONS,
                "simulate": {"enabled": True, "interval_ms": 20, "seed": 7, **sim},
            },
        }
    )


@pytest.fixture
async def modem(tmp_path: Path) -> AsyncIterator[ModemDaemon]:
    m = await ModemDaemon.builder().config(_config(tmp_path, walk_percent=30.0)).spawn()
    try:
        yield m
    finally:
        await m.shutdown()


def _metrics(m: ModemDaemon, mac: str) -> Metrics:
    for key, metrics, _, _ in m.destination_table():
        if key == _key(mac):
            return metrics
    raise KeyError(mac)


async def _moves(m: ModemDaemon, mac: str, ticks: int = 15) -> bool:
    """Whether ``mac``'s metrics change within ``ticks`` simulator periods."""
    before = _metrics(m, mac)
    for _ in range(ticks):
        await asyncio.sleep(0.02)
        if _metrics(m, mac) != before:
            return True
    return False


async def test_values_set_by_hand_stay(modem: ModemDaemon) -> None:
    assert modem.simulated_destinations() == {_key(MAC1), _key(MAC2)}
    await modem.update_destination(MAC1, Metrics(cdrr=30_000_000))
    assert _key(MAC1) not in modem.simulated_destinations()
    pinned = _metrics(modem, MAC1)
    assert pinned.cdrr == 30_000_000
    await modem.add_destination(MAC3, Metrics(cdrr=1_000_000, mdrr=2_000_000))
    added = _metrics(modem, MAC3)
    assert await _moves(modem, MAC2)  # the simulator runs
    await asyncio.sleep(0.2)  # ten periods
    assert _metrics(modem, MAC1) == pinned
    assert _metrics(modem, MAC3) == added
    # A batch of reports pins too (a feed's values are the radio's, not the simulator's).
    await modem.update_destinations([(MAC2, Metrics(cdrr=1_000_000))])
    assert modem.simulated_destinations() == frozenset()
    assert not await _moves(modem, MAC2, ticks=10)


async def test_release_hands_back(modem: ModemDaemon) -> None:
    await modem.update_destination(MAC1, Metrics(cdrr=30_000_000))
    assert not await _moves(modem, MAC1, ticks=10)
    assert modem.release_destination(MAC1) is True
    assert _key(MAC1) in modem.simulated_destinations()
    assert await _moves(modem, MAC1)
    with pytest.raises(Exception, match="no destination"):
        modem.release_destination("02:00:00:00:00:55")


async def test_pinned_destination_does_not_flap(tmp_path: Path) -> None:
    cfg = _config(tmp_path, flap_probability=0.5, down_ms=30)
    m = await ModemDaemon.builder().config(cfg).spawn()
    try:
        await m.update_destination(MAC1, Metrics(cdrr=30_000_000))
        seen_down = False
        for _ in range(40):
            await asyncio.sleep(0.02)
            up = {k: u for k, _, _, u in m.destination_table()}
            assert up[_key(MAC1)], "the simulator took a pinned destination down"
            seen_down = seen_down or not up[_key(MAC2)]
        assert seen_down  # MAC2 is still the simulator's: it flaps
    finally:
        await m.shutdown()


async def test_release_through_the_api_and_dlepctl(modem: ModemDaemon, tmp_path: Path) -> None:
    api = ManagementServer(modem, modem.mcfg.api)
    await api.start()
    sock = ("--socket", str(api.socket_path))
    try:
        res = await dlepctl(*sock, "destination", "update", MAC1, "--cdrr", "30M")
        assert res.code == 0, res
        assert _key(MAC1) not in modem.simulated_destinations()
        assert not await _moves(modem, MAC1, ticks=10)
        res = await dlepctl(*sock, "destination", "release", MAC1, "--json")
        assert res.code == 0, res
        assert res.json() == {"ok": True, "released": MAC1, "simulated": True}
        await until(lambda: _key(MAC1) in modem.simulated_destinations())
        client = ManagementClient.unix(api.socket_path, timeout=5)
        try:
            with pytest.raises(ApiError, match="no destination"):
                await client.release_destination("02:00:00:00:00:55")
        finally:
            await client.close()
    finally:
        await api.stop(0.2)


async def test_release_without_simulator(tmp_path: Path) -> None:
    cfg = _config(tmp_path, enabled=False)
    m = await ModemDaemon.builder().config(cfg).spawn()
    try:
        assert m.simulated_destinations() == frozenset()
        assert m.release_destination(MAC1) is False
    finally:
        await m.shutdown()


async def test_pins_hold_when_a_reload_starts_the_simulator(tmp_path: Path) -> None:
    """Values set while the simulator is off stay when a reload turns it on;
    a reload that changes a pinned destination's configuration unpins it."""
    from dlep.config import SimulateConfig

    cfg = _config(tmp_path, enabled=False)
    m = await ModemDaemon.builder().config(cfg).spawn()
    try:
        await m.update_destination(MAC1, Metrics(cdrr=30_000_000))
        await m.set_simulation(SimulateConfig(enabled=True, interval_ms=20, walk_percent=30.0))
        assert m.simulated_destinations() == {_key(MAC2)}
        assert await _moves(m, MAC2)
        assert not await _moves(m, MAC1, ticks=10)
        # The configuration gives MAC1 new metrics: they apply, and it is the simulator's again.
        dests = list(cfg.modem.destinations)
        changed = dests[0].model_copy(
            update={"metrics": dests[0].metrics.model_copy(update={"cdrr": 20_000_000})}
        )
        assert await m.set_configured_destinations([changed, dests[1]]) == 1
        assert _key(MAC1) in m.simulated_destinations()
    finally:
        await m.shutdown()
