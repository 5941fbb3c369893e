"""DestinationTable: daemon events in, data-plane changes out (no kernel)."""

from __future__ import annotations

import ipaddress

from dlep.daemon import Lagged, SessionEvent
from dlep.dataplane.table import DestinationTable
from dlep.ext.link_id import LinkIdentifier
from dlep.ext.multihop import HopCount
from dlep.ext.pause import (
    QueueParameter,
    QueueParameters,
    QueueParametersChanged,
    QueuesPaused,
    QueuesRestarted,
)
from dlep.fsm import (
    DestinationDown,
    DestinationInfo,
    DestinationUp,
    DestinationUpdate,
    DestKey,
    Metrics,
    SessionTerminated,
)

MAC = bytes.fromhex("020000000001")
MAC2 = bytes.fromhex("020000000002")
LID = LinkIdentifier(bytes.fromhex("00000007"))
KEY, KEY2, KEY_LID = DestKey(MAC), DestKey(MAC2), DestKey(MAC, (LID,))


def info(mac: bytes = MAC, cdrt: int = 10_000_000, **kw: object) -> DestinationInfo:
    return DestinationInfo(
        mac=mac,
        metrics=Metrics(cdrt=cdrt, latency=1000),
        ipv4=frozenset({ipaddress.IPv4Address("10.0.0.1")}),
        **kw,  # type: ignore[arg-type]
    )


def ev(e: object, sid: str = "1") -> SessionEvent:
    return SessionEvent(sid, "127.0.0.1:1", e)  # type: ignore[arg-type]


def test_up_update_down() -> None:
    t = DestinationTable()
    [c] = t.handle(ev(DestinationUp(info())))
    assert c.kind == "up" and c.before is None and c.dest is not None
    assert c.key == KEY
    assert c.dest.metrics.cdrt == 10_000_000
    [c] = t.handle(ev(DestinationUpdate(info(cdrt=5_000_000), Metrics(cdrt=5_000_000))))
    assert c.kind == "update" and c.before is not None and c.dest is not None
    assert (c.before.metrics.cdrt, c.dest.metrics.cdrt) == (10_000_000, 5_000_000)
    # The same state again is no change.
    assert t.handle(ev(DestinationUpdate(info(cdrt=5_000_000)))) == []
    [c] = t.handle(ev(DestinationDown(MAC, by_peer=True)))
    assert c.kind == "down" and c.dest is None and len(t) == 0
    assert t.handle(ev(DestinationDown(MAC, by_peer=True))) == []


def test_session_loss_removes_only_that_sessions_destinations() -> None:
    t = DestinationTable()
    t.handle(ev(DestinationUp(info(MAC)), "1"))
    t.handle(ev(DestinationUp(info(MAC2)), "2"))
    changes = t.handle(ev(SessionTerminated(None, "gone", True, (KEY,)), "1"))
    assert [(c.kind, c.key) for c in changes] == [("down", KEY)]
    assert [d.mac for d in t.all()] == [MAC2]


def test_link_identifier_destinations_are_separate() -> None:
    t = DestinationTable()
    t.handle(ev(DestinationUp(info(MAC))))
    [c] = t.handle(ev(DestinationUp(info(MAC, extra=(HopCount(3),), ident=(LID,)))))
    assert c.key == KEY_LID and c.dest is not None
    assert c.dest.layer3 and c.dest.hops == 3
    assert str(c.key) == "02:00:00:00:00:01#00000007"
    assert len(t) == 2
    [c] = t.handle(ev(DestinationDown(MAC, by_peer=True, ident=(LID,))))
    assert c.key == KEY_LID
    assert t.get(KEY) is not None


def test_pause_and_restart_per_destination_and_session() -> None:
    t = DestinationTable()
    t.handle(ev(DestinationUp(info(MAC))))
    t.handle(ev(DestinationUp(info(MAC2))))
    [c] = t.handle(ev(QueuesPaused(KEY, frozenset({255}), frozenset({255}))))
    assert c.kind == "pause" and c.dest is not None and c.dest.paused
    assert not t.get(KEY2).paused  # type: ignore[union-attr]
    [c] = t.handle(ev(QueuesRestarted(KEY, frozenset({255}), frozenset())))
    assert c.kind == "restart" and c.dest is not None and not c.dest.paused
    # Session-wide pause reaches every destination of the session.
    changes = t.handle(ev(QueuesPaused(None, frozenset({0}), frozenset({0}))))
    assert sorted(c.kind for c in changes) == ["pause", "pause"]
    changes = t.handle(ev(QueuesRestarted(None, frozenset({255}), frozenset())))
    assert sorted(c.kind for c in changes) == ["restart", "restart"]


def test_partial_queue_pause_is_not_a_stop() -> None:
    t = DestinationTable()
    t.handle(ev(DestinationUp(info(MAC))))
    params = QueueParameters((QueueParameter(0), QueueParameter(1), QueueParameter(2)))
    assert t.handle(ev(QueueParametersChanged(params))) == []
    [c] = t.handle(ev(QueuesPaused(KEY, frozenset({1}), frozenset({1}))))
    assert c.kind == "update" and c.dest is not None
    assert not c.dest.paused and c.dest.paused_queues == {1}
    [c] = t.handle(ev(QueuesPaused(KEY, frozenset({0, 2}), frozenset({0, 1, 2}))))
    assert c.kind == "pause"
    # A pause survives a metrics update.
    [c] = t.handle(ev(DestinationUpdate(info(cdrt=1_000_000))))
    assert c.dest is not None and c.dest.paused


def test_resync_after_lag() -> None:
    t = DestinationTable()
    t.handle(ev(DestinationUp(info(MAC))))
    t.handle(ev(DestinationUp(info(MAC2))))
    assert t.needs_resync(Lagged(3))
    assert t.needs_resync(Lagged(3, coalesced=2))
    # Merged updates lose nothing: no resync for them alone.
    assert not t.needs_resync(Lagged(0, coalesced=5))
    changes = t.resync([("1", info(MAC, cdrt=1_000_000))])
    kinds = sorted((c.kind, c.key) for c in changes)
    assert kinds == [("down", KEY2), ("update", KEY)]


def test_json_form() -> None:
    t = DestinationTable()
    [c] = t.handle(ev(DestinationUp(info(MAC, extra=(HopCount(2),)))))
    assert c.dest is not None
    j = c.dest.as_json()
    assert j["mac"] == "02:00:00:00:00:01"
    assert j["ipv4"] == ["10.0.0.1"]
    assert j["metrics"] == {"cdrt": 10_000_000, "latency": 1000}
    assert j["ext"] == {"hop_count": 2}
    assert j["paused"] is False
