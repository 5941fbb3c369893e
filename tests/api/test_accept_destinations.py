"""Operations issue, item 3: with ``router.auto_accept_destinations = false``
the operator sees the modem's pending Destination Ups and accepts or refuses
each (library, API, ``dlepctl destination pending|accept|refuse``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlep.api.client import ManagementClient
from dlep.api.server import ManagementServer
from dlep.cli.dlepctl import _command_role, build_parser
from dlep.config import parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon

from .conftest import MAC1, MAC2, V4, dlepctl, free_port, modem_config, timers, until

pytestmark = pytest.mark.timeout(60)


@dataclass
class Held:
    modem: ModemDaemon
    router: RouterDaemon
    router_sock: Path
    modem_sock: Path

    def pending(self) -> set[str]:
        return {info.mac_str for _, info in self.router.pending_destinations()}

    def up(self) -> set[str]:
        return {info.mac_str for _, info in self.router.destinations()}


@pytest.fixture
async def held(tmp_path: Path) -> AsyncIterator[Held]:
    port = free_port()
    mcfg = modem_config(port, socket=str(tmp_path / "modem.sock"))
    rcfg = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers(),
            "api": {"socket": str(tmp_path / "router.sock")},
            "router": {
                "discovery": False,
                "static_peers": [f"{V4}:{port}"],
                "auto_accept_destinations": False,
            },
        }
    )
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    mapi, rapi = ManagementServer(modem, mcfg.api), ManagementServer(router, rcfg.api)
    await mapi.start()
    await rapi.start()
    h = Held(modem, router, rapi.socket_path, mapi.socket_path)
    try:
        await until(lambda: h.pending() == {MAC1, MAC2}, what="pending destinations")
        yield h
    finally:
        await rapi.stop(0.2)
        await mapi.stop(0.2)
        await router.shutdown()
        await modem.shutdown()


async def test_pending_accept_refuse_with_dlepctl(held: Held) -> None:
    r = ("--socket", str(held.router_sock))
    assert held.up() == set()
    table = await dlepctl(*r, "destination", "pending")
    assert table.code == 0, table
    assert MAC1 in table.out and MAC2 in table.out and "36 Mb/s" in table.out
    js = await dlepctl(*r, "destination", "pending", "--json")
    assert sorted(d["mac"] for d in js.json()) == [MAC1, MAC2]
    res = await dlepctl(*r, "destination", "accept", MAC1)
    assert res.code == 0 and f"destination {MAC1} accepted" in res.out, res
    await until(lambda: held.up() == {MAC1}, what="MAC1 up at the router")
    res = await dlepctl(*r, "destination", "refuse", MAC2, "--json")
    assert res.code == 0 and res.json() == {"ok": True, "refused": MAC2}, res
    await until(lambda: held.pending() == set(), what="nothing pending")
    assert held.up() == {MAC1}
    empty = await dlepctl(*r, "destination", "pending")
    assert empty.code == 0 and "no destination awaits an answer" in empty.out
    # Nothing to answer: the message says so.
    again = await dlepctl(*r, "destination", "accept", MAC2)
    assert again.code == 1 and "awaits an answer" in again.err, again
    # The modem has no such call.
    m = await dlepctl("--socket", str(held.modem_sock), "destination", "accept", MAC2)
    assert m.code == 1 and "router operation" in m.err, m


async def test_api_calls_and_session_filter(held: Held) -> None:
    client = ManagementClient.unix(held.router_sock, timeout=5)
    try:
        pending = await client.list_pending_destinations()
        (sid,) = {d.session_id for d in pending}
        assert {d.mac for d in await client.list_pending_destinations(sid)} == {MAC1, MAC2}
        await client.respond_destination_up(MAC2, True, session_id=sid)
        await until(lambda: held.up() == {MAC2}, what="MAC2 up")
        assert {d.mac for d in await client.list_pending_destinations()} == {MAC1}
    finally:
        await client.close()


def test_pending_commands_go_to_the_router() -> None:
    for argv in (["destination", "pending"], ["destination", "accept", MAC1]):
        assert _command_role(build_parser().parse_args(argv)) == "router"
    assert _command_role(build_parser().parse_args(["destination", "refuse", MAC1])) == "router"
