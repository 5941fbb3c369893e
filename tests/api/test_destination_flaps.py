"""The daemon counts a destination's flaps (Destination Down, then up
again) per peer and destination key, in a bounded table."""

from __future__ import annotations

import pytest

import dlep.daemon.base
from dlep.fsm import DestKey
from dlep.wire.items import parse_mac

from .conftest import MAC1, MAC2, Live, until

pytestmark = pytest.mark.timeout(60)

K1, K2 = DestKey(parse_mac(MAC1)), DestKey(parse_mac(MAC2))


async def _flap(live: Live, mac: str) -> None:
    await live.modem.drop_destination(mac)
    await until(lambda: mac not in live.router_macs(), what=f"{mac} gone at the router")
    await until(
        lambda: all(i.mac_str != mac for _, i in live.modem.destinations()),
        what=f"{mac} gone at the modem",
    )
    await live.modem.add_destination(mac)
    await until(lambda: mac in live.router_macs(), what=f"{mac} back at the router")


async def test_flaps_counted_per_destination_and_bounded(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlep.daemon.base, "MAX_FLAP_DESTINATIONS", 1)
    (rs,) = live.router.sessions()
    (ms,) = live.modem.sessions()
    assert live.router.destination_flaps(rs.id, K1) == 0
    await _flap(live, MAC1)
    await _flap(live, MAC1)
    assert live.router.destination_flaps(rs.id, K1) == 2
    assert live.modem.destination_flaps(ms.id, K1) == 2
    # The table is full (one key): MAC2's flap is not counted.
    await _flap(live, MAC2)
    assert live.router.destination_flaps(rs.id, K2) == 0
    assert live.router.destination_flaps("no such session", K1) == 0
