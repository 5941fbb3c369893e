"""A destination's times: ``up_since`` and ``last_update`` come from the
``now`` the engine was given (fake clock), never from a clock of its own;
and its count of Destination Updates, which lives with them."""

from __future__ import annotations

import ipaddress
from dataclasses import fields

from dlep.ext.multihop import HopCount
from dlep.fsm import DestinationInfo, DestinationUp, DestinationUpdate, Metrics
from dlep.fsm.keys import new_destination_info
from dlep.wire import Latency, MessageType

from .fsm_harness import K1, K2, MAC1, MAC2, Pair, established, mac, msg, of_type


def _info(p: Pair, side: str, key: object = K1) -> DestinationInfo:
    s = p.router if side == "router" else p.modem
    return s.destinations[key]  # type: ignore[index]


def test_up_since_is_when_it_came_up_on_each_side() -> None:
    p = established()
    p.now = 10.0
    p.modem.add_destination(MAC1, now=p.now)
    p.deliver("modem")  # the router takes the Destination Up at 10
    p.now = 11.0
    p.deliver("router")  # the modem learns of its acceptance at 11
    rev, mev = p.events()
    (rup,) = of_type(rev, DestinationUp)
    (mup,) = of_type(mev, DestinationUp)
    assert isinstance(rup, DestinationUp) and isinstance(mup, DestinationUp)
    assert rup.info.up_since == 10.0 and rup.info.last_update is None
    assert mup.info.up_since == 11.0 and mup.info.last_update is None
    assert _info(p, "router").up_since == 10.0
    assert _info(p, "modem").up_since == 11.0


def test_last_update_is_when_sent_and_when_received() -> None:
    p = established()
    p.now = 5.0
    p.up([MAC1, MAC2])
    # One update (the table's full path on both sides).
    p.now = 20.0
    p.modem.update_destination(MAC1, Metrics(cdrr=1000), now=p.now)
    assert _info(p, "modem").last_update == 20.0
    p.now = 21.0
    p.pump()
    rev, _ = p.events()
    (upd,) = of_type(rev, DestinationUpdate)
    assert isinstance(upd, DestinationUpdate) and upd.info.last_update == 21.0
    assert _info(p, "router").last_update == 21.0
    assert _info(p, "router").up_since == 5.0  # an update does not move it
    assert _info(p, "router", K2).last_update is None
    # Batches (the modem's hot path, and the router's shortcut for the
    # second message of a shape): each its own time.
    for t in (30.0, 40.0):
        p.now = t
        sent = p.modem.update_destinations(
            [(MAC1, Metrics(cdrr=int(t))), (MAC2, Metrics(cdrr=int(t)))], now=p.now
        )
        assert sent == 2
        assert _info(p, "modem").last_update == t and _info(p, "modem", K2).last_update == t
        p.now = t + 0.5
        p.pump()
        assert _info(p, "router").last_update == t + 0.5
        assert _info(p, "router", K2).last_update == t + 0.5
    assert _info(p, "router").metrics.cdrr == 40


def test_a_destination_back_up_starts_afresh() -> None:
    p = established()
    p.now = 1.0
    p.up([MAC1])
    p.now = 2.0
    p.modem.update_destination(MAC1, Metrics(cdrr=1000), now=p.now)
    p.pump()
    p.now = 3.0
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    assert K1 not in p.router.destinations
    p.now = 4.0
    p.up([MAC1])
    for side in ("router", "modem"):
        info = _info(p, side)
        assert info.up_since == 4.0 and info.last_update is None, side


def test_times_do_not_make_snapshots_differ() -> None:
    a = DestinationInfo(b"\x02\x00\x00\x00\x00\x01", up_since=1.0, last_update=2.0)
    b = DestinationInfo(b"\x02\x00\x00\x00\x00\x01", up_since=3.0)
    assert a == b and hash(a) == hash(b)


def test_the_quick_snapshot_is_the_dataclass() -> None:
    args = (
        b"\x02\x00\x00\x00\x00\x01",
        Metrics(cdrr=1, latency=2),
        frozenset({ipaddress.IPv4Address("10.0.0.1")}),
        frozenset({ipaddress.IPv6Address("fd00::1")}),
        frozenset({ipaddress.IPv4Network("10.1.0.0/16")}),
        frozenset({ipaddress.IPv6Network("fd01::/64")}),
        (HopCount(3),),
        (),
        7.0,
        8.0,
        300,
    )
    quick, slow = new_destination_info(*args), DestinationInfo(*args)
    assert type(quick) is DestinationInfo and quick == slow and hash(quick) == hash(slow)
    for f in fields(DestinationInfo):
        assert getattr(quick, f.name) is getattr(slow, f.name), f.name


def test_updates_are_counted_on_both_sides() -> None:
    p = established()
    p.up([MAC1, MAC2])
    assert _info(p, "router").updates == 0 and _info(p, "modem").updates == 0
    p.modem.update_destination(MAC1, Metrics(cdrr=1000), now=p.now)  # the table's full path
    p.pump()
    rev, _ = p.events()
    (upd,) = of_type(rev, DestinationUpdate)
    assert isinstance(upd, DestinationUpdate) and upd.info.updates == 1  # the event's snapshot
    for n in range(2, 302):  # the batch path, and past the small ints Python caches
        p.modem.update_destinations([(MAC1, Metrics(cdrr=1000 + n))], now=p.now)
        p.pump()
    assert _info(p, "modem").updates == 301 and _info(p, "router").updates == 301
    assert _info(p, "router", K2).updates == 0 and _info(p, "modem", K2).updates == 0
    # Nothing changed: nothing sent, nothing counted.
    p.modem.update_destination(MAC1, Metrics(cdrr=1301), now=p.now)
    assert _info(p, "modem").updates == 301
    # A repeated Destination Up is a refresh, not a Destination Update.
    p.events()
    p.inject("router", msg(MessageType.DESTINATION_UP, mac(MAC1), Latency(42)))
    assert _info(p, "router").updates == 301
    (ev,) = p.router.events()
    assert isinstance(ev, DestinationUpdate) and ev.info.updates == 301


def test_held_update_counts_when_sent_and_a_new_up_starts_at_zero() -> None:
    p = established()
    p.modem.add_destination(MAC1, now=p.now)
    p.modem.update_destination(MAC1, Metrics(cdrr=2000), now=p.now)  # held: Up unanswered
    p.pump()
    assert _info(p, "modem").updates == 1 and _info(p, "router").updates == 1
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    p.up([MAC1])
    assert _info(p, "modem").updates == 0 and _info(p, "router").updates == 0
