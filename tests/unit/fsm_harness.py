"""Test harness for :mod:`dlep.fsm`: a router and a modem Session on a fake clock.

:class:`Pair` wires two sans-I/O engines together. Nothing is delivered
behind the test's back: bytes a side queued stay in its outbox until
:meth:`Pair.pump` (deliver everything, both ways, until quiet) or
:meth:`Pair.deliver` (one direction, once) moves them, and every message
that crossed is recorded, decoded, in :attr:`Pair.log`. Tests that want to
play one side by hand use :meth:`Pair.inject` (raw bytes or a
:class:`~dlep.wire.Message` built with :mod:`dlep.wire`) and
:meth:`Pair.sent` (decode what a side queued, without delivering it).

The clock is :attr:`Pair.now`; :meth:`Pair.advance` moves it and runs
``handle_timer`` on each side whose timer is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from dlep.fsm import (
    DestKey,
    Event,
    Metrics,
    Role,
    Session,
    SessionConfig,
    SessionUp,
    State,
)
from dlep.wire import (
    DEFAULT_REGISTRY,
    DataItem,
    HeartbeatInterval,
    MacAddress,
    Message,
    MessageFramer,
    MessageType,
    PeerType,
    Registry,
    Status,
    decode_message,
    encode_message,
)

Side = Literal["router", "modem"]
M = MessageType

MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"
MAC3 = "02:00:00:00:00:03"
MAC1_B = bytes.fromhex("020000000001")
MAC2_B = bytes.fromhex("020000000002")
MAC3_B = bytes.fromhex("020000000003")
EUI64 = "02:00:00:ff:fe:00:00:01"
#: The keys of those destinations in a session (no identity items).
K1, K2, K3 = DestKey(MAC1_B), DestKey(MAC2_B), DestKey(MAC3_B)

#: Session-wide metrics the default modem declares: the five mandatory ones
#: plus RLQR/RLQT. Resources and MTU are deliberately *not* declared, so a
#: test can use them as "metric not declared in the Session Initialization
#: Response".
DECLARED = Metrics(
    mdrr=100_000_000,
    mdrt=100_000_000,
    cdrr=50_000_000,
    cdrt=50_000_000,
    latency=1000,
    rlqr=100,
    rlqt=100,
)
#: All nine metrics declared.
ALL_METRICS = Metrics(
    mdrr=100_000_000,
    mdrt=100_000_000,
    cdrr=50_000_000,
    cdrt=50_000_000,
    latency=1000,
    resources=100,
    rlqr=100,
    rlqt=100,
    mtu=1500,
)

HB_MS = 1000  # default heartbeat interval of both sides in these tests


def router_config(**kw: object) -> SessionConfig:
    """A router config with a 1 s heartbeat unless overridden."""
    kw.setdefault("heartbeat_interval_ms", HB_MS)
    kw.setdefault("peer_type", PeerType("test router"))
    return SessionConfig(**kw)  # type: ignore[arg-type]


def modem_config(**kw: object) -> SessionConfig:
    """A modem config with a 1 s heartbeat and :data:`DECLARED` metrics."""
    kw.setdefault("heartbeat_interval_ms", HB_MS)
    kw.setdefault("peer_type", PeerType("test modem"))
    kw.setdefault("session_metrics", DECLARED)
    return SessionConfig(**kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Building and decoding messages
# --------------------------------------------------------------------------


def msg(mtype: int, *items: DataItem) -> Message:
    """Shorthand for ``Message(mtype, items)``."""
    return Message(mtype, tuple(items))


def raw(mtype: int, *items: DataItem, validate: bool = False) -> bytes:
    """Encoded message; not validated by default, so tests can break the rules."""
    return encode_message(Message(mtype, tuple(items)), validate=validate)


def raw_header(mtype: int, body: bytes) -> bytes:
    """A message with a hand-made body (for malformed items)."""
    return mtype.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def decode_stream(data: bytes, registry: Registry = DEFAULT_REGISTRY) -> list[Message]:
    """Split and decode a byte stream a session produced (every message must
    be valid: an engine never sends something the codec rejects)."""
    framer = MessageFramer()
    out = [decode_message(m, registry) for m in framer.feed(data)]
    assert framer.pending == 0, "engine emitted a partial message"
    return out


def session_init(hb_ms: int = HB_MS, *items: DataItem) -> Message:
    """A Session Initialization as a router would send it."""
    return msg(M.SESSION_INITIALIZATION, HeartbeatInterval(hb_ms), PeerType("fake"), *items)


def session_init_response(
    status: int = 0,
    hb_ms: int = HB_MS,
    metrics: Metrics = DECLARED,
    *items: DataItem,
) -> Message:
    """A Session Initialization Response as a modem would send it."""
    return msg(
        M.SESSION_INITIALIZATION_RESPONSE,
        Status(status),
        PeerType("fake"),
        HeartbeatInterval(hb_ms),
        *metrics.items(),
        *items,
    )


def mac(m: str | bytes) -> MacAddress:
    """MacAddress item from text or bytes."""
    return MacAddress.parse(m) if isinstance(m, str) else MacAddress(m)


def types_of(messages: Iterable[Message]) -> list[int]:
    """Message type codes, in order."""
    return [m.type for m in messages]


def status_of(message: Message) -> int | None:
    """The status code a message carries, if any."""
    st = message.get(Status)
    return None if st is None else st.code


def of_type(events: Iterable[Event], cls: type) -> list[Event]:
    """The events of one class."""
    return [e for e in events if isinstance(e, cls)]


# --------------------------------------------------------------------------
# The pair
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """One message that crossed the connection."""

    sender: Side
    message: Message

    @property
    def type(self) -> int:
        return self.message.type


class Pair:
    """A router and a modem Session connected back to back, fake clock.

    Args:
        router: router config (default :func:`router_config`).
        modem: modem config (default :func:`modem_config`).
        start: call ``start`` on both sides at ``now``.
        now: the initial clock.
    """

    def __init__(
        self,
        router: SessionConfig | None = None,
        modem: SessionConfig | None = None,
        *,
        start: bool = True,
        now: float = 0.0,
    ) -> None:
        self.now = now
        self.router = Session(Role.ROUTER, router or router_config())
        self.modem = Session(Role.MODEM, modem or modem_config())
        self.log: list[Wire] = []
        if start:
            self.router.start(now)
            self.modem.start(now)

    # -- sides ----------------------------------------------------------

    def side(self, name: Side) -> Session:
        """The session playing ``name``."""
        return self.router if name == "router" else self.modem

    def peer(self, name: Side) -> Session:
        """The session at the other end from ``name``."""
        return self.modem if name == "router" else self.router

    # -- moving bytes ---------------------------------------------------

    def deliver(self, sender: Side) -> list[Message]:
        """Move what ``sender`` queued to its peer, once; return it decoded."""
        data = self.side(sender).data_to_send()
        if not data:
            return []
        decoded = decode_stream(data, self.router.config.registry)
        self.log.extend(Wire(sender, m) for m in decoded)
        self.peer(sender).receive_data(data, self.now)
        return decoded

    def pump(self, limit: int = 100) -> list[Wire]:
        """Deliver both ways until neither side has anything to send.

        Returns the messages that crossed, in delivery order.
        """
        start = len(self.log)
        for _ in range(limit):
            a = self.deliver("router")
            b = self.deliver("modem")
            if not a and not b:
                return self.log[start:]
        raise AssertionError("pump did not settle")

    def sent(self, name: Side) -> list[Message]:
        """Drain and decode what ``name`` queued (not delivered)."""
        return decode_stream(self.side(name).data_to_send(), self.router.config.registry)

    def inject(self, to: Side, data: bytes | Message) -> None:
        """Feed raw bytes, or a message (encoded unvalidated), into ``to``."""
        if isinstance(data, Message):
            data = encode_message(data, self.router.config.registry, validate=False)
        self.side(to).receive_data(data, self.now)

    # -- clock ----------------------------------------------------------

    def advance(self, dt: float = 0.0, *, to: float | None = None, pump: bool = False) -> None:
        """Move the clock and run each side's timer if it is due."""
        self.now = to if to is not None else self.now + dt
        for s in (self.router, self.modem):
            t = s.get_timer()
            if t is not None and t <= self.now:
                s.handle_timer(self.now)
        if pump:
            self.pump()

    def run_until(self, t_end: float, *, pump: bool = True) -> None:
        """Jump from timer to timer (both sides) until ``t_end``, pumping
        between steps if asked."""
        for _ in range(100_000):
            due = [x for x in (self.router.get_timer(), self.modem.get_timer()) if x is not None]
            nxt = min(due, default=None)
            if nxt is None or nxt > t_end:
                break
            self.advance(to=max(nxt, self.now), pump=pump)
        self.now = max(self.now, t_end)

    # -- shortcuts ------------------------------------------------------

    def establish(self) -> tuple[SessionUp, SessionUp]:
        """Run session initialisation; return each side's SessionUp event."""
        self.pump()
        assert self.router.state is State.IN_SESSION, self.router.state
        assert self.modem.state is State.IN_SESSION, self.modem.state
        (ru,) = self.router.events()
        (mu,) = self.modem.events()
        assert isinstance(ru, SessionUp) and isinstance(mu, SessionUp)
        return ru, mu

    def events(self) -> tuple[list[Event], list[Event]]:
        """Drain (router events, modem events)."""
        return self.router.events(), self.modem.events()

    def up(self, macs: Iterable[str] = (MAC1,), **kw: object) -> None:
        """Modem announces each MAC; pump; drain events; clear the log."""
        for m in macs:
            self.modem.add_destination(m, now=self.now, **kw)  # type: ignore[arg-type]
        self.pump()
        self.events()
        self.log.clear()


def established(router: SessionConfig | None = None, modem: SessionConfig | None = None) -> Pair:
    """A pair already In-Session, events drained, log cleared."""
    p = Pair(router, modem)
    p.establish()
    p.log.clear()
    return p
