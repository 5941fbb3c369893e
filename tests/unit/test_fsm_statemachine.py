"""Stateful property test: a router and a modem Session under random
interleavings of API calls (valid and invalid), partial and delayed byte
delivery in both directions, injected garbage, clock jumps and transport
closes.

Invariants checked after every step:

* no exception other than :class:`SessionError` escapes any API call, and
  nothing at all escapes ``receive_data``, ``handle_timer`` or
  ``connection_lost``;
* once a side is RESET (and its last bytes were drained) it never sends
  another byte;
* ``SessionTerminated`` is emitted exactly once per side, when it reaches
  RESET, and never before;
* ``get_timer()`` is None only in RESET; ``handle_timer`` changes nothing
  before ``get_timer()`` and always does something at or after it;
* whenever both sides are In-Session and nothing is in flight, the router's
  destination table equals the modem's set of up destinations -- and, as
  long as no garbage was injected, the two views agree field by field
  (metrics, addresses, subnets).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from dlep.fsm import (
    DestinationAnnounceRequested,
    DestinationUpRequested,
    LinkCharacteristicsRequested,
    Metrics,
    Role,
    Session,
    SessionConfig,
    SessionError,
    SessionTerminated,
    State,
)
from dlep.wire import PeerType

SIDES = ("router", "modem")
MACS = [bytes([2, 0, 0, 0, 0, i]) for i in range(1, 5)]
EUI64 = bytes([2, 0, 0, 0xFF, 0xFE, 0, 0, 1])
DECLARED = Metrics(
    mdrr=100_000_000, mdrt=100_000_000, cdrr=50_000_000, cdrt=50_000_000, latency=1000, rlqr=100
)

# Disjoint address pools, so only the engines' own rules decide conflicts.
DEST_ADDRS = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.3",
    "10.1.0.0/16",
    "2001:db8::1",
    "2001:db8:1::/48",
    "127.0.0.1",  # never forwardable: always refused by the API
]
ROUTER_ADDRS = ["192.0.2.1", "192.0.2.2", "2001:db8:ffff::1"]
MODEM_ADDRS = ["198.51.100.1", "198.51.100.0/24"]
ANNOUNCE_ADDRS = ["10.0.0.9", "2001:db8::9", "10.9.0.0/16"]  # the subnet is refused

# Mostly EUI-48; an EUI-64 now and then (fatal once the session picked EUI-48).
macs = st.sampled_from([*MACS, *MACS, *MACS, EUI64])
small = st.one_of(st.none(), st.integers(0, 2_000_000))
metrics = st.builds(
    Metrics,
    cdrr=small,
    cdrt=small,
    latency=small,
    rlqr=st.one_of(st.none(), st.integers(0, 101)),  # 101: out of range
    mtu=st.one_of(st.none(), st.none(), st.just(1500)),  # MTU is never declared
)
dest_addrs = st.lists(st.sampled_from(DEST_ADDRS), max_size=2, unique=True)
statuses = st.sampled_from([0, 1, 2, 3, 100, 127])


def snapshot(s: Session) -> tuple[object, ...]:
    """What handle_timer can change: state, messages sent, events, the timer."""
    return (s.state, sum(s.tx_counts.values()), len(s._events), s.get_timer())


class SessionPair(RuleBasedStateMachine):
    """Two engines, two one-way byte pipes, one clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.sessions: dict[str, Session] = {}
        #: bytes sent by a side and not yet delivered to its peer
        self.flight: dict[str, bytearray] = {s: bytearray() for s in SIDES}
        self.reset_drained = dict.fromkeys(SIDES, False)
        self.terminated = dict.fromkeys(SIDES, 0)
        self.closed = dict.fromkeys(SIDES, False)
        self.tainted = False  # garbage was injected
        #: requests the application was asked to answer, by kind
        self.asked: dict[type, set[bytes]] = {
            DestinationUpRequested: set(),
            DestinationAnnounceRequested: set(),
            LinkCharacteristicsRequested: set(),
        }

    # -- plumbing ---------------------------------------------------------

    def peer(self, side: str) -> str:
        return "modem" if side == "router" else "router"

    def collect(self, side: str) -> None:
        """Drain a side's bytes into its pipe and its events into checks."""
        s = self.sessions[side]
        out = s.data_to_send()
        if self.reset_drained[side]:
            assert out == b"", f"{side} sent {out!r} after RESET"
        self.flight[side] += out
        for ev in s.events():
            if isinstance(ev, DestinationUpRequested):
                self.asked[DestinationUpRequested].add(ev.info.mac)
            elif isinstance(ev, DestinationAnnounceRequested | LinkCharacteristicsRequested):
                self.asked[type(ev)].add(ev.mac)
            if isinstance(ev, SessionTerminated):
                self.terminated[side] += 1
                assert self.terminated[side] == 1, f"{side}: second SessionTerminated"
                assert s.state is State.RESET
        if s.state is State.RESET:
            self.reset_drained[side] = True
            assert self.terminated[side] == 1, f"{side}: RESET without SessionTerminated"

    def call(self, side: str, fn: Callable[[Session], object]) -> None:
        """An API call: it may refuse with SessionError, nothing else."""
        with contextlib.suppress(SessionError):
            fn(self.sessions[side])
        self.collect(side)

    def feed(self, side: str, fn: Callable[[Session], object]) -> None:
        """Input from the transport or the clock: must never raise."""
        fn(self.sessions[side])
        self.collect(side)

    def pick(self, data: st.DataObject, kind: type) -> bytes:
        """A MAC the application was asked about (else any MAC)."""
        asked = sorted(self.asked[kind])
        mac = data.draw(st.sampled_from(asked) if asked else macs)
        self.asked[kind].discard(mac)
        return mac

    def deliver(self, side: str, n: int | None) -> None:
        """Deliver up to ``n`` in-flight bytes from ``side`` to its peer."""
        buf = self.flight[side]
        if not buf:
            return
        n = len(buf) if n is None else min(n, len(buf))
        chunk = bytes(buf[:n])
        del buf[:n]
        to = self.peer(side)
        if self.closed[to]:
            return
        self.feed(to, lambda s: s.receive_data(chunk, self.now))

    # -- setup ------------------------------------------------------------

    @initialize(
        auto=st.booleans(),
        rhb=st.sampled_from([1000, 1500]),
        mhb=st.sampled_from([1000, 2000]),
        lcr=st.sampled_from([None, 1500]),
        settle=st.integers(0, 4),
    )
    def start(self, auto: bool, rhb: int, mhb: int, lcr: int | None, settle: int) -> None:
        self.sessions["router"] = Session(
            Role.ROUTER,
            SessionConfig(
                heartbeat_interval_ms=rhb,
                auto_accept_destinations=auto,
                link_characteristics_timeout_ms=lcr,
                peer_type=PeerType("r"),
            ),
        )
        self.sessions["modem"] = Session(
            Role.MODEM, SessionConfig(heartbeat_interval_ms=mhb, session_metrics=DECLARED)
        )
        for side in SIDES:
            self.sessions[side].start(self.now)
            self.collect(side)
        if settle:  # usually start In-Session; sometimes explore initialisation
            self.settle()

    # -- delivery, garbage, time, transport -------------------------------

    @rule(side=st.sampled_from(SIDES), n=st.one_of(st.none(), st.integers(1, 48)))
    def deliver_bytes(self, side: str, n: int | None) -> None:
        self.deliver(side, n)

    @rule(side=st.sampled_from(SIDES))
    def deliver_all(self, side: str) -> None:
        self.deliver(side, None)

    @rule()
    def settle_also(self) -> None:
        self.settle()  # a second rule: delivery is picked more often

    @rule()
    def settle(self) -> None:
        """Deliver everything both ways until quiet (a quiescent point)."""
        for _ in range(50):
            if not self.flight["router"] and not self.flight["modem"]:
                return
            for side in SIDES:
                self.deliver(side, None)

    @rule(side=st.sampled_from(SIDES), data=st.binary(min_size=1, max_size=12), p=st.integers(0, 4))
    def inject_garbage(self, side: str, data: bytes, p: int) -> None:
        if p:
            return  # keep garbage rare
        self.tainted = True
        self.flight[side] += data

    def timer(self, side: str) -> None:
        """handle_timer(now) for one side, checking the get_timer() contract:
        nothing happens before it is due, something happens when it is."""
        s = self.sessions[side]
        due = s.get_timer()
        before = snapshot(s)
        self.feed(side, lambda s: s.handle_timer(self.now))
        if due is None or self.now < due:
            assert snapshot(s) == before, f"{side}: handle_timer acted before get_timer()"
        else:
            assert snapshot(s) != before, f"{side}: handle_timer at get_timer() did nothing"

    @rule(dt=st.sampled_from([0.001, 0.05, 0.25, 0.5, 0.05, 0.25, 0.5, 0.999, 1.0, 1.5, 2.5, 4.0]))
    def tick(self, dt: float) -> None:
        self.now += dt
        for side in SIDES:
            self.timer(side)

    @rule()
    def tick_to_timer(self) -> None:
        """Jump to the earliest timer exactly (the deadline edge)."""
        due = [t for s in self.sessions.values() if (t := s.get_timer()) is not None]
        if due:
            self.now = max(self.now, min(due))
            for side in SIDES:
                self.timer(side)

    @precondition(
        lambda self: any(
            s.state is State.RESET and not self.closed[self.peer(n)]
            for n, s in self.sessions.items()
        )
    )
    @rule()
    def close_transport(self) -> None:
        """A RESET side closes the connection: its peer sees EOF after the
        bytes already in flight."""
        for side in SIDES:
            if self.sessions[side].state is State.RESET and not self.closed[self.peer(side)]:
                self.deliver(side, None)
                other = self.peer(side)
                self.closed[other] = True
                self.feed(other, lambda s: s.connection_lost(self.now))
                self.flight[other].clear()

    @rule(p=st.integers(0, 9))
    def connection_drops(self, p: int) -> None:
        """The TCP connection breaks mid-session (rare): both sides see it."""
        if p:
            return
        for side in SIDES:
            self.flight[side].clear()
            self.closed[side] = True
            self.feed(side, lambda s: s.connection_lost(self.now, "reset by peer"))

    # -- API: both ----------------------------------------------------------

    @rule(side=st.sampled_from(SIDES), code=st.sampled_from([132, 255, 300]), p=st.integers(0, 9))
    def terminate(self, side: str, code: int, p: int) -> None:
        if p:
            return  # rare: it ends the run's interesting part
        self.call(side, lambda s: s.terminate(code, now=self.now))

    @rule(add=st.lists(st.sampled_from(ROUTER_ADDRS), max_size=2, unique=True), drop=st.booleans())
    def router_update_session(self, add: list[str], drop: bool) -> None:
        if drop:
            self.call("router", lambda s: s.update_session(drop=add, now=self.now))
        else:
            self.call("router", lambda s: s.update_session(add=add, now=self.now))

    @rule(m=metrics, add=st.lists(st.sampled_from(MODEM_ADDRS), max_size=1), drop=st.booleans())
    def modem_update_session(self, m: Metrics, add: list[str], drop: bool) -> None:
        kw = {"drop": add} if drop else {"add": add}
        self.call("modem", lambda s: s.update_session(m, now=self.now, **kw))  # type: ignore[arg-type]

    @rule(side=st.sampled_from(SIDES), mac=macs)
    def drop_destination(self, side: str, mac: bytes) -> None:
        self.call(side, lambda s: s.drop_destination(mac, now=self.now))

    # -- API: modem -----------------------------------------------------------

    @rule(mac=macs, m=metrics, addrs=dest_addrs)
    def add_destination(self, mac: bytes, m: Metrics, addrs: list[str]) -> None:
        self.call("modem", lambda s: s.add_destination(mac, m, addresses=addrs, now=self.now))

    @rule(mac=macs, m=metrics, add=dest_addrs, drop=dest_addrs)
    def update_destination(self, mac: bytes, m: Metrics, add: list[str], drop: list[str]) -> None:
        self.call("modem", lambda s: s.update_destination(mac, m, add=add, drop=drop, now=self.now))

    @rule(data=st.data(), code=statuses, m=metrics)
    def respond_link_characteristics(self, data: st.DataObject, code: int, m: Metrics) -> None:
        mac = self.pick(data, LinkCharacteristicsRequested)
        self.call("modem", lambda s: s.respond_link_characteristics(mac, code, m, now=self.now))

    @rule(data=st.data(), accept=st.booleans(), m=metrics, addrs=dest_addrs)
    def respond_destination_announce(
        self, data: st.DataObject, accept: bool, m: Metrics, addrs: list[str]
    ) -> None:
        mac = self.pick(data, DestinationAnnounceRequested)
        self.call(
            "modem",
            lambda s: s.respond_destination_announce(mac, accept, m, addresses=addrs, now=self.now),
        )

    # -- API: router ----------------------------------------------------------

    @rule(mac=macs, addrs=st.lists(st.sampled_from(ANNOUNCE_ADDRS), max_size=1))
    def announce_destination(self, mac: bytes, addrs: list[str]) -> None:
        self.call("router", lambda s: s.announce_destination(mac, addresses=addrs, now=self.now))

    @rule(mac=macs, cdrr=small, latency=small)
    def request_link_characteristics(
        self, mac: bytes, cdrr: int | None, latency: int | None
    ) -> None:
        self.call(
            "router",
            lambda s: s.request_link_characteristics(mac, cdrr=cdrr, latency=latency, now=self.now),
        )

    @rule(data=st.data(), accept=st.booleans())
    def respond_destination_up(self, data: st.DataObject, accept: bool) -> None:
        mac = self.pick(data, DestinationUpRequested)
        self.call("router", lambda s: s.respond_destination_up(mac, accept, now=self.now))

    # -- invariants -----------------------------------------------------------

    @invariant()
    def timer_none_only_in_reset(self) -> None:
        for side, s in self.sessions.items():
            assert (s.get_timer() is None) == (s.state is State.RESET), (side, s.state)

    @invariant()
    def terminated_once_exactly_at_reset(self) -> None:
        for side, s in self.sessions.items():
            assert self.terminated[side] == (1 if s.state is State.RESET else 0), side

    @invariant()
    def tables_agree_when_quiescent(self) -> None:
        if not self.sessions:
            return
        r, m = self.sessions["router"], self.sessions["modem"]
        if r.state is not State.IN_SESSION or m.state is not State.IN_SESSION:
            return
        if self.flight["router"] or self.flight["modem"]:
            return
        # Bytes held by a framer (a partial message, e.g. after garbage) have
        # not been delivered either.
        if r._framer.pending or m._framer.pending:
            return
        assert set(r.destinations) == set(m.destinations)
        if not self.tainted:
            assert r.destinations == m.destinations
            assert r.session_metrics == m.session_metrics


SessionPair.TestCase.settings = settings(
    # ~15-20 s. Offline runs with 3000 examples x 200 steps also pass.
    max_examples=600,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSessionPair = SessionPair.TestCase
