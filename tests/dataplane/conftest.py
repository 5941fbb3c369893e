"""Fixtures for the data-plane tests.

``pair`` links a modem and a router in-process over loopback (fast timers,
the extensions the feeds and the pause tests need), with the management API
of each on a socket in ``tmp_path``. The namespace fixtures are in
``netns.py``; every test that needs root skips with the reason when it
cannot have it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dlep.api.server import ManagementServer
from dlep.daemon import ModemDaemon, RouterDaemon
from tests.integration.conftest import free_port, modem_config, router_config
from tests.integration.conftest import wait_until as until

EXTS = ["multi-hop", "pause", "latency-range", "link-identifier"]
MAC1 = "02:00:00:00:00:01"


@dataclass
class Pair:
    modem: ModemDaemon
    router: RouterDaemon
    modem_api: ManagementServer

    def router_dests(self) -> dict[str, Any]:
        return {info.mac_str: info for _, info in self.router.destinations()}


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    port = free_port()
    mcfg = modem_config(
        port, destinations=[], modem={"extensions": EXTS}, api={"socket": str(tmp_path / "m.sock")}
    )
    rcfg = router_config(port, router={"extensions": EXTS})
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    api = ManagementServer(modem, mcfg.api)
    await api.start()
    try:
        await until(
            lambda: any(s.state == "in-session" for s in modem.sessions()), what="session up"
        )
        yield Pair(modem, router, api)
    finally:
        await api.stop(0.2)
        await router.shutdown()
        await modem.shutdown()
