"""The subscriber queue (dlep.daemon.Subscription): bounded, lag notices, and
updates of one destination merged while the reader lags — never reordered
past another event of that destination or its session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from dlep.daemon import (
    ConnectFailed,
    DaemonEvent,
    Lagged,
    SessionConnected,
    SessionEvent,
    Subscription,
)
from dlep.ext.link_id import LinkIdentifier
from dlep.fsm import (
    DestinationDown,
    DestinationInfo,
    DestinationUp,
    DestinationUpdate,
    DestKey,
    Metrics,
    SessionTerminated,
    SessionUpdated,
)
from dlep.wire import DataItem

A = b"\x02\x00\x00\x00\x00\x0a"
B = b"\x02\x00\x00\x00\x00\x0b"
LINK = (LinkIdentifier(b"\x00\x00\x00\x01"),)


def upd(
    mac: bytes = A,
    sid: str = "1",
    ident: tuple[DataItem, ...] = (),
    info: Metrics | None = None,
    **changed: int,
) -> SessionEvent:
    m = Metrics(**changed)
    return SessionEvent(
        sid, "peer", DestinationUpdate(DestinationInfo(mac, info or m, ident=ident), m)
    )


def up(mac: bytes = A, sid: str = "1", ident: tuple[DataItem, ...] = ()) -> SessionEvent:
    return SessionEvent(sid, "peer", DestinationUp(DestinationInfo(mac, ident=ident)))


def down(mac: bytes = A, sid: str = "1") -> SessionEvent:
    return SessionEvent(sid, "peer", DestinationDown(mac, by_peer=True))


def drain(sub: Subscription) -> list[DaemonEvent]:
    out: list[DaemonEvent] = []
    while True:
        try:
            out.append(sub.get_nowait())
        except asyncio.QueueEmpty:
            return out


def changed_of(ev: DaemonEvent) -> Metrics:
    assert isinstance(ev, SessionEvent) and isinstance(ev.event, DestinationUpdate)
    return ev.event.changed


def filler(n: int) -> list[DaemonEvent]:
    """Events of no session: they make the reader lag and never merge."""
    return [ConnectFailed(f"192.0.2.{i}:854", "x") for i in range(n)]


def test_lagged_keeps_its_old_form() -> None:
    assert Lagged(5) == Lagged(5, 0) == Lagged(dropped=5, coalesced=0)
    assert Lagged(5).coalesced == 0


def test_reader_keeping_up_gets_everything_in_order() -> None:
    sub = Subscription(8)
    evs = [upd(cdrr=i) for i in range(1, 4)]  # below half of maxsize: nothing merges
    for ev in evs:
        sub.offer(ev)
    assert drain(sub) == evs
    assert sub.dropped_total == sub.coalesced_total == 0


def test_newest_wins_and_changed_fields_are_the_union() -> None:
    sub = Subscription(4)  # merging from 2 waiting events on
    first, second = upd(cdrr=1), upd(cdrr=2)
    sub.offer(first)
    sub.offer(second)
    sub.offer(upd(cdrr=3, latency=7))
    newest = upd(info=Metrics(cdrr=4, latency=7, mtu=1500), cdrr=4, mtu=1500)
    sub.offer(newest)
    assert sub.pending() == 3 and sub.coalesced == 1
    lag, a, b, merged = drain(sub)
    assert lag == Lagged(0, coalesced=1)
    assert (a, b) == (first, second)
    assert isinstance(merged, SessionEvent) and isinstance(merged.event, DestinationUpdate)
    assert merged.event.info is newest.event.info  # type: ignore[attr-defined]
    # latency only in the older update, cdrr in both (newer wins), mtu only in the newer.
    assert merged.event.changed == Metrics(cdrr=4, latency=7, mtu=1500)
    assert sub.coalesced == 0 and sub.coalesced_total == 1


def test_a_full_queue_still_merges_updates() -> None:
    sub = Subscription(3, coalesce_at=2)
    for ev in filler(2):
        sub.offer(ev)
    sub.offer(upd(cdrr=1))  # third slot: open to merging
    for i in range(2, 100):
        sub.offer(upd(cdrr=i))
    assert sub.pending() == 3
    assert (sub.dropped, sub.coalesced) == (0, 98)
    *_, last = drain(sub)
    assert changed_of(last) == Metrics(cdrr=99)


def test_non_update_events_are_never_merged_but_dropped_when_full() -> None:
    sub = Subscription(4)
    evs = [down(bytes([2, 0, 0, 0, 0, i])) for i in range(10)]
    for ev in evs:
        sub.offer(ev)
    assert sub.pending() == 4
    assert drain(sub) == [Lagged(6), *evs[:4]]
    assert (sub.dropped_total, sub.coalesced_total) == (6, 0)


def test_an_update_never_overtakes_a_down_or_up_of_its_destination() -> None:
    sub = Subscription(100, coalesce_at=0)  # lagging from the start
    seq = [upd(cdrr=1), down(), up(), upd(cdrr=2), upd(cdrr=3), down(), upd(cdrr=4)]
    for ev in seq:
        sub.offer(ev)
    got = drain(sub)
    assert got[0] == Lagged(0, coalesced=1)
    kinds = [(type(e.event).__name__, getattr(e.event, "changed", None)) for e in got[1:]]  # type: ignore[attr-defined]
    assert kinds == [
        ("DestinationUpdate", Metrics(cdrr=1)),
        ("DestinationDown", None),
        ("DestinationUp", None),
        ("DestinationUpdate", Metrics(cdrr=3)),  # 2 and 3 merged: nothing between them
        ("DestinationDown", None),
        ("DestinationUpdate", Metrics(cdrr=4)),
    ]


def test_session_wide_events_close_every_open_update_of_their_session() -> None:
    for barrier in (
        SessionEvent("1", "peer", SessionUpdated(Metrics(cdrr=5), Metrics(cdrr=5))),
        SessionEvent("1", "peer", SessionTerminated(None, "gone", True, (DestKey(A),))),
        SessionConnected("1", "peer", False),
    ):
        sub = Subscription(100, coalesce_at=0)
        for ev in (upd(A, cdrr=1), upd(B, cdrr=1), upd(A, sid="2", cdrr=1), barrier):
            sub.offer(ev)
        for ev in (upd(A, cdrr=2), upd(B, cdrr=2), upd(A, sid="2", cdrr=2)):
            sub.offer(ev)
        # Session 1's updates took new slots behind the barrier; session 2's merged.
        assert sub.pending() == 6 and sub.coalesced == 1


def test_destinations_are_told_apart_by_session_mac_and_identity() -> None:
    sub = Subscription(100, coalesce_at=0)
    for cdrr in (1, 2):
        sub.offer(upd(A, cdrr=cdrr))
        sub.offer(upd(A, ident=LINK, cdrr=cdrr))
        sub.offer(upd(B, cdrr=cdrr))
        sub.offer(upd(A, sid="2", cdrr=cdrr))
    assert sub.pending() == 4 and sub.coalesced == 4
    # A Down of one of them closes only its own open update.
    sub.offer(SessionEvent("1", "peer", DestinationDown(A, True, ident=LINK)))
    sub.offer(upd(A, ident=LINK, cdrr=3))
    sub.offer(upd(A, cdrr=3))
    assert sub.pending() == 6 and sub.coalesced == 5


def test_an_update_queued_plainly_is_not_overtaken_by_a_later_merge() -> None:
    """The reader catches up below the merging point while an open update is
    still queued; the next update is queued plainly behind it, so a later
    (lagging) update must not merge back into the older one."""
    sub = Subscription(8, coalesce_at=2)
    for ev in filler(2):
        sub.offer(ev)
    sub.offer(upd(cdrr=1))  # open
    drain_n = [sub.get_nowait() for _ in range(2)]
    assert drain_n == filler(2)
    sub.offer(upd(cdrr=2))  # 1 waiting: plain
    sub.offer(upd(cdrr=3))  # 2 waiting: lagging again
    assert [changed_of(e).cdrr for e in drain(sub)] == [1, 2, 3]


def test_merging_can_be_turned_off() -> None:
    sub = Subscription(4, coalesce_at=4)
    for i in range(10):
        sub.offer(upd(cdrr=i))
    assert drain(sub)[0] == Lagged(6)


def test_memory_stays_bounded() -> None:
    sub = Subscription(16)
    macs = [bytes([2, 0, 0, 0, i // 256, i % 256]) for i in range(500)]
    for i in range(20_000):
        mac = macs[i % 500]
        ev = down(mac) if i % 7 == 0 else upd(mac, cdrr=i)
        sub.offer(ev)
        assert sub.pending() <= 16
        assert sum(len(d) for d in sub._open.values()) <= sub.pending()
        if i % 1000 == 999:
            drain(sub)
    drain(sub)
    assert sub._open == {}
    assert sub.dropped_total > 0 and sub.coalesced_total > 0


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Subscription(0)


async def test_reader_waits_then_ends_after_close() -> None:
    sub = Subscription(4)
    got: list[DaemonEvent] = []

    async def read() -> None:
        async for ev in sub:
            got.append(ev)

    task = asyncio.ensure_future(read())
    await asyncio.sleep(0)
    sub.offer(upd(cdrr=1))
    await asyncio.sleep(0)
    assert len(got) == 1
    sub.offer(upd(cdrr=2))
    sub.close()
    sub.offer(upd(cdrr=3))  # after close: ignored
    await asyncio.wait_for(task, 1)
    assert [changed_of(e).cdrr for e in got] == [1, 2]


async def test_timed_out_reads_leave_no_waiters_behind() -> None:
    sub = Subscription(4)
    for _ in range(50):
        with pytest.raises(TimeoutError):
            await sub.get(timeout=0.001)
    assert not sub._waiters
    sub.offer(upd(cdrr=1))
    assert changed_of(await sub.get(timeout=1)).cdrr == 1


async def test_two_readers_share_the_events() -> None:
    sub = Subscription(16)
    got: list[DaemonEvent] = []

    async def read() -> None:
        while len(got) < 6:
            try:
                got.append(await sub.get(timeout=1))
            except TimeoutError:
                return

    tasks = [asyncio.ensure_future(read()) for _ in range(2)]
    await asyncio.sleep(0)
    for i in range(6):
        sub.offer(upd(cdrr=i))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(changed_of(e).cdrr or 0 for e in got) == list(range(6))


# -- property: a random stream, a small queue, reads interleaved ---------------

SESSIONS = ("1", "2")
KEYS = (DestKey(A), DestKey(A, LINK), DestKey(B))
FIELDS = ("cdrr", "cdrt", "latency")


@dataclass
class Producer:
    """The daemon's side of the stream, with what each destination is."""

    view: dict[tuple[str, DestKey], dict[str, int]] = field(default_factory=dict)
    offered: list[DaemonEvent] = field(default_factory=list)
    seq: dict[int, int] = field(default_factory=dict)  # id(info or event) -> offer index

    def make(self, kind: str, sid: str, key: DestKey, values: dict[str, int]) -> DaemonEvent:
        dest = (sid, key)
        if kind == "update" and dest in self.view:
            self.view[dest].update(values)
            m = Metrics(**self.view[dest])
            info = DestinationInfo(key.mac, m, ident=key.ident)
            ev: DaemonEvent = SessionEvent(sid, "p", DestinationUpdate(info, Metrics(**values)))
            self.seq[id(info)] = len(self.offered)
        elif kind in ("update", "up"):
            self.view[dest] = dict(values)
            info = DestinationInfo(key.mac, Metrics(**values), ident=key.ident)
            ev = SessionEvent(sid, "p", DestinationUp(info))
            self.seq[id(ev)] = len(self.offered)
        elif kind == "down":
            self.view.pop(dest, None)
            ev = SessionEvent(sid, "p", DestinationDown(key.mac, True, ident=key.ident))
            self.seq[id(ev)] = len(self.offered)
        elif kind == "session":
            m = Metrics(**values)
            ev = SessionEvent(sid, "p", SessionUpdated(m, m))
            self.seq[id(ev)] = len(self.offered)
        else:
            ev = ConnectFailed("192.0.2.1:854", "other")
            self.seq[id(ev)] = len(self.offered)
        self.offered.append(ev)
        return ev


@dataclass
class Reader:
    """An application that mirrors destinations from the events it reads."""

    view: dict[tuple[str, DestKey], dict[str, int]] = field(default_factory=dict)
    changed_view: dict[tuple[str, DestKey], dict[str, int]] = field(default_factory=dict)
    got: list[DaemonEvent] = field(default_factory=list)
    dropped: int = 0
    coalesced: int = 0

    def read(self, ev: DaemonEvent) -> None:
        if isinstance(ev, Lagged):
            assert ev.dropped or ev.coalesced
            self.dropped += ev.dropped
            self.coalesced += ev.coalesced
            return
        self.got.append(ev)
        if not isinstance(ev, SessionEvent):
            return
        e = ev.event
        if isinstance(e, DestinationUp):
            dest = (ev.session_id, e.info.key)
            self.view[dest] = dict(e.info.metrics)
            self.changed_view[dest] = dict(e.info.metrics)
        elif isinstance(e, DestinationUpdate):
            dest = (ev.session_id, e.info.key)
            self.view[dest] = dict(e.info.metrics)
            self.changed_view.setdefault(dest, {}).update(dict(e.changed))
        elif isinstance(e, DestinationDown):
            dest = (ev.session_id, e.key)
            self.view.pop(dest, None)
            self.changed_view.pop(dest, None)


Op = tuple[str, str, DestKey, dict[str, int]] | tuple[str, int]

values_st = st.dictionaries(st.sampled_from(FIELDS), st.integers(0, 1000), min_size=1)
# Skewed towards one destination of one session, so that its updates, Ups
# and Downs interleave often enough to matter.
offer_st = st.tuples(
    st.sampled_from(["update"] * 10 + ["up", "up", "down", "down", "down", "session", "other"]),
    st.sampled_from(["1", "1", "1", "2"]),
    st.sampled_from([KEYS[0]] * 4 + list(KEYS[1:])),
    values_st,
)
read_st = st.tuples(st.just("read"), st.integers(1, 4))
# Three offers to a read, so that the queue fills now and then.
op_st = st.one_of(offer_st, offer_st, offer_st, read_st)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Small queues drop; a queue larger than the stream only merges, so the
    # reader's view must then be exactly the producer's.
    maxsize=st.sampled_from([1, 2, 3, 4, 6, 100, 100, 100]),
    coalesce_at=st.sampled_from([None, 0, 1, 2, 2, 3, 3]),
    ops=st.lists(op_st, min_size=20, max_size=80),
)
def test_random_streams(maxsize: int, coalesce_at: int | None, ops: list[Op]) -> None:
    dropped, coalesced = check_stream(maxsize, coalesce_at, ops)
    note(f"dropped {dropped}, coalesced {coalesced}")
    event("dropped" if dropped else "merged, none dropped" if coalesced else "plain")


def check_stream(maxsize: int, coalesce_at: int | None, ops: list[Op]) -> tuple[int, int]:
    """Offer and read as ``ops`` say; check what the reader got. Returns the
    (dropped, coalesced) counts."""
    sub = Subscription(maxsize, coalesce_at=coalesce_at)
    prod, reader = Producer(), Reader()
    for op in ops:
        if op[0] == "read":
            for _ in range(op[1]):
                try:
                    reader.read(sub.get_nowait())
                except asyncio.QueueEmpty:
                    break
        else:
            sub.offer(prod.make(*op))
        assert sub.pending() <= maxsize
        assert sum(len(d) for d in sub._open.values()) <= sub.pending()
    for ev in drain(sub):
        reader.read(ev)
    assert sub._open == {} and sub.pending() == 0

    # Every event is delivered, merged into a delivered one, or counted dropped.
    assert len(reader.got) + reader.dropped + reader.coalesced == len(prod.offered)
    assert (reader.dropped, reader.coalesced) == (sub.dropped_total, sub.coalesced_total)

    # Nothing is reordered where order matters: events of one destination,
    # a session-wide event and anything of its session, and the events that
    # are never merged (delivered first in first out).
    placed = [_placed(prod, ev) for ev in reader.got]
    for i, (n1, sid1, dest1, upd1) in enumerate(placed):
        for n2, sid2, dest2, upd2 in placed[i + 1 :]:
            same_dest = dest1 is not None and dest1 == dest2
            session_wide = sid1 is not None and sid1 == sid2 and (dest1 is None or dest2 is None)
            if same_dest or session_wide or not (upd1 or upd2):
                assert n1 < n2, f"offered #{n2} delivered before #{n1}"

    if reader.dropped == 0:
        # Nothing lost: the reader's view of each destination is the producer's,
        # from the snapshots and from the changed fields alike.
        assert reader.view == prod.view
        assert reader.changed_view == prod.view
    return reader.dropped, reader.coalesced


def _placed(
    prod: Producer, ev: DaemonEvent
) -> tuple[int, str | None, tuple[str, DestKey] | None, bool]:
    """Where a delivered event was offered (a merged update: its newest part),
    its session, its destination, and whether it is an update."""
    if not isinstance(ev, SessionEvent):
        return prod.seq[id(ev)], None, None, False
    e = ev.event
    if isinstance(e, DestinationUpdate):
        return prod.seq[id(e.info)], ev.session_id, (ev.session_id, e.info.key), True
    # Anything else is delivered as it was offered, never rebuilt.
    if isinstance(e, DestinationUp):
        return prod.seq[id(ev)], ev.session_id, (ev.session_id, e.info.key), False
    if isinstance(e, DestinationDown):
        return prod.seq[id(ev)], ev.session_id, (ev.session_id, e.key), False
    return prod.seq[id(ev)], ev.session_id, None, False
