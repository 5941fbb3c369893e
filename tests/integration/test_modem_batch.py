"""ModemDaemon.update_destinations: many destinations' metrics in one call,
over real sockets. All or nothing, in order, and kept for later routers."""

from __future__ import annotations

import asyncio

import pytest

from dlep.daemon import DaemonArgumentError, DestinationNotFoundError
from dlep.fsm import DestinationUp, DestinationUpdate, Metrics
from dlep.wire import format_mac

from .conftest import (
    MAC1,
    MAC2,
    MAC_UNKNOWN,
    Daemons,
    Events,
    router_config,
    session_pair,
)

pytestmark = pytest.mark.timeout(60)


def _router_metrics(router: object, mac: str) -> Metrics:
    for _sid, info in router.destinations():  # type: ignore[attr-defined]
        if format_mac(info.mac) == mac:
            return info.metrics  # type: ignore[no-any-return]
    raise AssertionError(f"router has no {mac}")


async def test_batch_reaches_router_in_order(daemons: Daemons, port: int) -> None:
    """Every pair becomes one Destination Update, in the batch's order, and
    both sides end with the last values."""
    modem, router, _mev, rev = await session_pair(daemons, port)
    pairs = [
        (MAC1, Metrics(cdrr=1_000_001)),
        (MAC2, Metrics(cdrr=2_000_001, latency=9000)),
        (MAC1, Metrics(cdrr=1_000_002, rlqr=50)),
    ]
    assert await modem.update_destinations(pairs) == 3

    seen = []
    for _ in pairs:
        ev = await rev.next(DestinationUpdate)
        seen.append((format_mac(ev.info.mac), ev.info.metrics.cdrr))
    assert seen == [(MAC1, 1_000_001), (MAC2, 2_000_001), (MAC1, 1_000_002)]
    m1 = _router_metrics(router, MAC1)
    assert (m1.cdrr, m1.rlqr, m1.latency) == (1_000_002, 50, 2000)
    assert _router_metrics(router, MAC2).latency == 9000


async def test_unknown_mac_refuses_whole_batch(daemons: Daemons, port: int) -> None:
    """A pair naming no destination refuses the batch before anything is
    sent: the error names the pair, the router hears nothing."""
    modem, router, _mev, rev = await session_pair(daemons, port)
    before = _router_metrics(router, MAC1)
    with pytest.raises(DestinationNotFoundError, match=r"updates\[1\]\.mac"):
        await modem.update_destinations(
            [(MAC1, Metrics(cdrr=1_234_567)), (MAC_UNKNOWN, Metrics(cdrr=1))]
        )
    with pytest.raises(DaemonArgumentError, match=r"updates\[0\]\.mac") as bad:
        await modem.update_destinations([("not-a-mac", Metrics(cdrr=1))])
    assert bad.value.field == "updates[0].mac"
    await rev.none_of(DestinationUpdate, within=0.5)
    assert _router_metrics(router, MAC1) == before


async def test_bad_value_refuses_whole_batch(daemons: Daemons, port: int) -> None:
    """An out-of-range value (RLQ is 0..100) refuses the batch; the field
    named is the pair's, and earlier good pairs are not applied either."""
    modem, router, _mev, rev = await session_pair(daemons, port)
    with pytest.raises(DaemonArgumentError) as bad:
        await modem.update_destinations(
            [(MAC2, Metrics(cdrr=3_000_000)), (MAC1, Metrics(rlqr=101))]
        )
    assert bad.value.field.startswith("updates[1].")
    assert "rlqr" in bad.value.field
    await rev.none_of(DestinationUpdate, within=0.5)
    assert _router_metrics(router, MAC2).cdrr == 5_500_000
    # The modem's table is untouched too: a new router is told the old values
    # (the modem serves one router at a time, so the first one goes).
    await router.shutdown()
    late = await daemons.router(router_config(port))
    lev = Events(late.subscribe(), "late")
    ups = {format_mac((await lev.next(DestinationUp)).info.mac) for _ in range(2)}
    assert ups == {MAC1, MAC2}
    assert _router_metrics(late, MAC2).cdrr == 5_500_000
    assert _router_metrics(late, MAC1).rlqr == 90


async def test_pairs_see_earlier_pairs_of_their_destination(daemons: Daemons, port: int) -> None:
    """Current rate above maximum rate is refused (RFC 8175 §13.x: CDR <= MDR);
    a pair that raises MDR first lets a later pair raise CDR above the old
    maximum, and the reverse order is refused."""
    modem, router, _mev, rev = await session_pair(daemons, port)
    # MAC2: mdrr 11M, cdrr 5.5M.
    with pytest.raises(DaemonArgumentError, match=r"updates\[0\]"):
        await modem.update_destinations([(MAC2, Metrics(cdrr=20_000_000))])
    await modem.update_destinations(
        [(MAC2, Metrics(mdrr=30_000_000)), (MAC2, Metrics(cdrr=20_000_000))]
    )
    await rev.next(DestinationUpdate, lambda e: e.info.metrics.cdrr == 20_000_000)
    m2 = _router_metrics(router, MAC2)
    assert (m2.mdrr, m2.cdrr) == (30_000_000, 20_000_000)


async def test_batch_kept_for_routers_that_connect_later(daemons: Daemons, port: int) -> None:
    """The modem keeps what the batch set: a router that connects afterwards
    gets the new values in its Destination Ups."""
    modem, router, _mev, rev = await session_pair(daemons, port)
    await modem.update_destinations(
        [(MAC1, Metrics(cdrr=7_000_000)), (MAC2, Metrics(latency=12_345))]
    )
    await rev.next(DestinationUpdate, lambda e: format_mac(e.info.mac) == MAC2)
    await router.shutdown()  # the modem serves one router at a time
    late = await daemons.router(router_config(port))
    lev = Events(late.subscribe(), "late")
    for _ in range(2):
        await lev.next(DestinationUp)
    assert _router_metrics(late, MAC1).cdrr == 7_000_000
    assert _router_metrics(late, MAC2).latency == 12_345
    # An empty batch is no error and sends nothing.
    assert await modem.update_destinations([]) == 0


async def test_drain_waits_for_a_router_that_does_not_read(daemons: Daemons, port: int) -> None:
    """``drain()`` returns at once while the router keeps up, waits while it
    has stopped reading and the modem holds more than the high-water mark,
    and returns when it reads again; nothing is lost meanwhile."""
    slow = {"hb_ms": 10_000}  # the router must not time out while it does not read
    modem, router, _mev, rev = await session_pair(daemons, port, modem_kw=slow, router_kw=slow)
    await asyncio.wait_for(modem.drain(), 1)
    (conn,) = router._conns.values()
    assert conn.proto.transport is not None
    conn.proto.transport.pause_reading()
    waiting = None
    sent = 0
    for _ in range(2000):  # bounded: at most 1,000,000 updates (~40 MB)
        await modem.update_destinations(
            [(MAC1, Metrics(cdrr=1_000_000 + sent + i)) for i in range(500)]
        )
        sent += 500
        waiting = asyncio.ensure_future(modem.drain())
        await asyncio.sleep(0.005)
        if not waiting.done():
            break
    assert waiting is not None and not waiting.done(), "drain() never waited"
    conn.proto.transport.resume_reading()
    await asyncio.wait_for(waiting, 20)
    last = 1_000_000 + sent - 1
    await rev.next(DestinationUpdate, lambda e: e.info.metrics.cdrr == last, timeout=20)
