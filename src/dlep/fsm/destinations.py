"""The destinations of one session: keys, records, their state machine, the table.

Every rule RFC 8175 gives for one destination lives here, in
:data:`TRANSITIONS`: for each destination state and each input (a message
from the peer, a call of the application) the state it moves to and the
action that carries it out. Anything not in the table is refused: an input
from the peer ends the session (131 Invalid Destination, or 129 Unexpected
Message for the transaction rules of §8, checked before the table), a call
of the application raises a :class:`~dlep.fsm.errors.SessionError`.

docs/architecture.md draws this state machine.

The table does no I/O: it sends, emits and reports departures through
callables the session gives it, and it never reads a clock — time comes
in as ``now`` where a deadline is set or checked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, NamedTuple, NoReturn

from ..wire import (
    DataItem,
    Ipv4Address,
    Ipv6Address,
    MessageType,
    Status,
    StatusCode,
    message_name,
)
from .addresses import EMPTY, AddressIndex, AddressSet, L3Item, coalesce
from .calls import Clock
from .errors import (
    DestinationExistsError,
    PeerError,
    SessionArgumentError,
    SessionError,
    TransactionInProgressError,
    UnknownDestinationError,
)
from .events import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationLimitReached,
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
    Event,
    Inconsistency,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    LinkCharacteristicsTimeout,
    ResponseStatus,
)
from .keys import DestinationInfo, DestKey, new_destination_info
from .metrics import FIELD_OF_TYPE, Metrics
from .parts import NO_METRICS, Parts

M = MessageType

__all__ = [
    "TRANSITIONS",
    "DestInput",
    "DestKey",
    "DestState",
    "Destination",
    "DestinationInfo",
    "DestinationTable",
]


class DestState(enum.Enum):
    """Where one destination stands in its session."""

    #: Not in the table (the start, and where a destination ends).
    ABSENT = "absent"
    #: Our Destination Up (modem) or Destination Announce (router) awaits its response.
    ANNOUNCING = "announcing"
    #: The peer's Destination Up (router, auto-accept off) or Destination
    #: Announce (modem) awaits the application's decision.
    DECIDING = "deciding"
    #: Shared by both sides: metrics and addresses flow.
    UP = "up"
    #: Our Destination Down awaits its response.
    GOING_DOWN = "going-down"

    # Members are singletons: hash by identity (Enum's default hashes the
    # name in Python, on every table lookup of the hot path).
    __hash__ = object.__hash__


class DestInput(enum.Enum):
    """What can happen to a destination."""

    # -- from the peer -------------------------------------------------------
    PEER_UP = "Destination Up"
    PEER_UP_HELD = "Destination Up (auto-accept off)"
    PEER_ANNOUNCE = "Destination Announce"
    PEER_UPDATE = "Destination Update"
    PEER_DOWN = "Destination Down"
    PEER_LINK_REQUEST = "Link Characteristics Request"
    UP_ACCEPTED = "Destination Up Response (success)"
    UP_REFUSED = "Destination Up Response (refused)"
    ANNOUNCE_ACCEPTED = "Destination Announce Response (success)"
    ANNOUNCE_REFUSED = "Destination Announce Response (refused)"
    DOWN_ANSWERED = "Destination Down Response"
    LINK_ANSWERED = "Link Characteristics Response"
    # -- from the application -----------------------------------------------
    ADD = "add_destination"
    ANNOUNCE = "announce_destination"
    UPDATE = "update_destination"
    DROP = "drop_destination"
    ACCEPT_UP = "respond_destination_up(accept)"
    REFUSE_UP = "respond_destination_up(refuse)"
    ACCEPT_ANNOUNCE = "respond_destination_announce(accept)"
    REFUSE_ANNOUNCE = "respond_destination_announce(refuse)"
    REQUEST_LINK = "request_link_characteristics"
    ANSWER_LINK = "respond_link_characteristics"

    __hash__ = object.__hash__  # see DestState


S = DestState
I = DestInput  # noqa: E741 - the table below reads better with short names

#: (state, input) -> (next state, action). The action is a method of
#: :class:`DestinationTable` named ``_a_<action>``; §-references are RFC 8175.
TRANSITIONS: Final[dict[tuple[DestState, DestInput], tuple[DestState, str]]] = {
    # Destination Up from the modem (§12.11): accepted at once, or held for
    # the application; a repeat of a known one is a refresh. Crossing our own
    # Announce it wins, and our Announce stays open until answered.
    (S.ABSENT, I.PEER_UP): (S.UP, "peer_up"),
    (S.ABSENT, I.PEER_UP_HELD): (S.DECIDING, "peer_up"),
    (S.ANNOUNCING, I.PEER_UP): (S.UP, "peer_up"),
    (S.ANNOUNCING, I.PEER_UP_HELD): (S.DECIDING, "peer_up"),
    (S.UP, I.PEER_UP): (S.UP, "refresh"),
    (S.UP, I.PEER_UP_HELD): (S.UP, "refresh"),
    (S.ANNOUNCING, I.UP_ACCEPTED): (S.UP, "up_accepted"),
    (S.ANNOUNCING, I.UP_REFUSED): (S.ABSENT, "refused"),
    (S.DECIDING, I.ACCEPT_UP): (S.UP, "accept_up"),
    (S.DECIDING, I.REFUSE_UP): (S.ABSENT, "refuse_up"),
    # Destination Announce from the router (§12.13): the modem answers a
    # known destination at once; a new one waits for the application.
    (S.ABSENT, I.PEER_ANNOUNCE): (S.DECIDING, "peer_announce"),
    (S.ANNOUNCING, I.PEER_ANNOUNCE): (S.ANNOUNCING, "answer_known_announce"),
    (S.UP, I.PEER_ANNOUNCE): (S.UP, "answer_known_announce"),
    (S.GOING_DOWN, I.PEER_ANNOUNCE): (S.GOING_DOWN, "deny_announce"),
    (S.DECIDING, I.ACCEPT_ANNOUNCE): (S.UP, "accept_announce"),
    (S.DECIDING, I.REFUSE_ANNOUNCE): (S.ABSENT, "refuse_announce"),
    (S.ANNOUNCING, I.ANNOUNCE_ACCEPTED): (S.UP, "announce_accepted"),
    (S.ANNOUNCING, I.ANNOUNCE_REFUSED): (S.ABSENT, "refused"),
    # ... a Destination Up crossed our Announce: its answer only ends our transaction.
    (S.UP, I.ANNOUNCE_ACCEPTED): (S.UP, "announce_answered_late"),
    (S.UP, I.ANNOUNCE_REFUSED): (S.UP, "announce_answered_late"),
    (S.DECIDING, I.ANNOUNCE_ACCEPTED): (S.DECIDING, "announce_answered_late"),
    (S.DECIDING, I.ANNOUNCE_REFUSED): (S.DECIDING, "announce_answered_late"),
    # Destination Update (§12.17): only about a destination that is up; one
    # crossing our Destination Down is moot.
    (S.UP, I.PEER_UPDATE): (S.UP, "peer_update"),
    (S.GOING_DOWN, I.PEER_UPDATE): (S.GOING_DOWN, "ignore"),
    # Destination Down (§12.15), either side; both at once: each answers.
    (S.UP, I.PEER_DOWN): (S.ABSENT, "peer_down"),
    (S.GOING_DOWN, I.PEER_DOWN): (S.GOING_DOWN, "answer_crossed_down"),
    (S.GOING_DOWN, I.DOWN_ANSWERED): (S.ABSENT, "down_answered"),
    # Link Characteristics (§12.18, §12.19); a request crossing our Down is
    # dropped with the destination.
    (S.UP, I.PEER_LINK_REQUEST): (S.UP, "link_requested"),
    (S.GOING_DOWN, I.PEER_LINK_REQUEST): (S.GOING_DOWN, "ignore"),
    (S.UP, I.LINK_ANSWERED): (S.UP, "link_answered"),
    (S.UP, I.REQUEST_LINK): (S.UP, "request_link"),
    (S.UP, I.ANSWER_LINK): (S.UP, "answer_link"),
    (S.GOING_DOWN, I.ANSWER_LINK): (S.GOING_DOWN, "forget_link_request"),
    # The application's own changes. What it asks for while our Up/Announce
    # is unanswered is held and sent once it succeeds (§8: one request at
    # a time; §12.1: nothing about a destination before it is up).
    (S.ABSENT, I.ADD): (S.ANNOUNCING, "send_up"),
    (S.ABSENT, I.ANNOUNCE): (S.ANNOUNCING, "send_announce"),
    (S.UP, I.UPDATE): (S.UP, "send_update"),
    (S.ANNOUNCING, I.UPDATE): (S.ANNOUNCING, "hold_update"),
    (S.UP, I.DROP): (S.GOING_DOWN, "send_down"),
    (S.ANNOUNCING, I.DROP): (S.ANNOUNCING, "hold_down"),
    (S.GOING_DOWN, I.DROP): (S.GOING_DOWN, "ignore"),
}
del S, I

#: Peer requests: at most one per destination may be open (§8).
_PEER_REQUESTS: Final = frozenset(
    {
        DestInput.PEER_UP,
        DestInput.PEER_UP_HELD,
        DestInput.PEER_ANNOUNCE,
        DestInput.PEER_DOWN,
        DestInput.PEER_LINK_REQUEST,
    }
)
#: Peer responses and the request of ours each one answers (§8).
_ANSWERS: Final = {
    DestInput.UP_ACCEPTED: M.DESTINATION_UP,
    DestInput.UP_REFUSED: M.DESTINATION_UP,
    DestInput.ANNOUNCE_ACCEPTED: M.DESTINATION_ANNOUNCE,
    DestInput.ANNOUNCE_REFUSED: M.DESTINATION_ANNOUNCE,
    DestInput.DOWN_ANSWERED: M.DESTINATION_DOWN,
    DestInput.LINK_ANSWERED: M.LINK_CHARACTERISTICS_REQUEST,
}
#: Application answers and the peer request each one answers.
_DECISIONS: Final = {
    DestInput.ACCEPT_UP: M.DESTINATION_UP,
    DestInput.REFUSE_UP: M.DESTINATION_UP,
    DestInput.ACCEPT_ANNOUNCE: M.DESTINATION_ANNOUNCE,
    DestInput.REFUSE_ANNOUNCE: M.DESTINATION_ANNOUNCE,
    DestInput.ANSWER_LINK: M.LINK_CHARACTERISTICS_REQUEST,
}
#: Peer inputs that may name a destination not in the table yet.
_CREATING: Final = frozenset({DestInput.PEER_UP, DestInput.PEER_UP_HELD, DestInput.PEER_ANNOUNCE})
#: Peer messages whose input is their type alone (the others: _input_of).
_RECEIVED: Final[dict[int, DestInput]] = {
    M.DESTINATION_ANNOUNCE: DestInput.PEER_ANNOUNCE,
    M.DESTINATION_UPDATE: DestInput.PEER_UPDATE,
    M.DESTINATION_DOWN: DestInput.PEER_DOWN,
    M.LINK_CHARACTERISTICS_REQUEST: DestInput.PEER_LINK_REQUEST,
    M.DESTINATION_DOWN_RESPONSE: DestInput.DOWN_ANSWERED,
    M.LINK_CHARACTERISTICS_RESPONSE: DestInput.LINK_ANSWERED,
}
_UP: Final = DestState.UP
_GOING_DOWN: Final = DestState.GOING_DOWN
#: Messages by the names people use for them (in errors).
_NAME: Final[dict[int, str]] = {
    M.DESTINATION_UP: "Destination Up",
    M.DESTINATION_ANNOUNCE: "Destination Announce",
    M.DESTINATION_DOWN: "Destination Down",
    M.LINK_CHARACTERISTICS_REQUEST: "Link Characteristics Request",
}
_EMPTY_METRICS: Final = Metrics()
#: Items are immutable: one Success status serves every response.
_SUCCESS: Final = Status(StatusCode.SUCCESS)


_NO_ITEMS: Final[list[DataItem]] = []  # read-only default (never appended to)
_NO_L3: Final[list[L3Item]] = []  # read-only default


class _Held:
    """What the application asked for while our Destination Up or Announce
    was unanswered."""

    __slots__ = ("down", "extra", "l3", "metrics")

    def __init__(self) -> None:
        self.metrics: Metrics | None = None
        self.l3: list[L3Item] = _NO_L3
        self.extra: list[DataItem] = _NO_ITEMS
        self.down = False


class Destination:
    """The engine's record of one destination.

    Attributes:
        mac, ident: its key (:attr:`key`): MAC and identity items.
        state: a :class:`DestState` other than ABSENT.
        up_since: the ``now`` of the engine call that created it or
            brought it up (None without a clock).
        last_update: the ``now`` of the last Destination Update received
            (router) or sent (modem); None if none yet.
        updates: how many Destination Updates were received (router) or
            sent (modem) about it since it came up (the RFC lets only the
            modem send them, so one count serves both sides).
        metrics: every metric known for it, session-wide ones included.
        addresses: its addresses and attached subnets.
        extra: the latest non-core item of each type (extensions').
        out_req: our request about it awaiting the peer's response (§8).
        peer_req: the peer's request about it awaiting our response.
        held: what the application asked for while our Destination Up or
            Announce was unanswered, sent when it succeeds (None: nothing);
            read through ``held_metrics``, ``held_l3``, ``held_extra``,
            ``held_down``.
    """

    __slots__ = (
        "addresses",
        "extra",
        "held",
        "ident",
        "last_update",
        "mac",
        "metrics",
        "out_req",
        "peer_req",
        "state",
        "up_since",
        "updates",
    )

    # Memory: a router may hold 100,000 of these. The key is kept as its
    # parts (the table's dict is keyed by the MAC itself when there are no
    # identity items), and what is held is one optional object, not four
    # slots that are empty for nearly every destination. The two times are
    # the float the engine was given (one object per read, shared by every
    # message in it): 8 octets each per destination, no float of its own.
    # ``updates`` is the twelfth slot: the object is 16-octet aligned, so
    # 11 slots (120 octets with the GC header) already took 128 and this one
    # is free; its count is a cached small int up to 256, then one int of
    # 32 octets (docs/performance.md).

    def __init__(
        self, key: DestKey, state: DestState, metrics: Metrics, now: float | None = None
    ) -> None:
        self.mac = key.mac
        self.ident = key.ident
        self.state = state
        self.metrics = metrics
        self.addresses = EMPTY  # shared until the first address arrives
        self.extra: dict[int, DataItem] = _NO_EXTRA
        self.out_req: int | None = None
        self.peer_req: int | None = None
        self.held: _Held | None = None
        self.up_since = now
        self.last_update: float | None = None
        self.updates = 0

    @property
    def key(self) -> DestKey:
        """Its key (MAC and identity items)."""
        return DestKey(self.mac, self.ident)

    def hold(self) -> _Held:
        """What is held for it (created on first use)."""
        held = self.held
        if held is None:
            held = self.held = _Held()
        return held

    @property
    def held_metrics(self) -> Metrics | None:
        return None if self.held is None else self.held.metrics

    @property
    def held_l3(self) -> list[L3Item]:
        return _NO_L3 if self.held is None else self.held.l3

    @property
    def held_extra(self) -> list[DataItem]:
        return _NO_ITEMS if self.held is None else self.held.extra

    @property
    def held_down(self) -> bool:
        return self.held is not None and self.held.down

    @property
    def visible(self) -> bool:
        """Up in the session (a destination going down still is, until answered)."""
        st = self.state
        return st is _UP or st is _GOING_DOWN

    def info(self) -> DestinationInfo:
        """A snapshot for the application."""
        a = self.addresses
        return new_destination_info(
            self.mac,
            self.metrics,
            a.v4,
            a.v6,
            a.v4net,
            a.v6net,
            tuple(self.extra.values()) if self.extra else (),
            self.ident,
            self.up_since,
            self.last_update,
            self.updates,
        )


_NO_EXTRA: Final[dict[int, DataItem]] = {}  # read-only default: see _remember


def _remember(rec: Destination, items: Iterable[DataItem]) -> None:
    """Keep the latest item of each type (the shared empty dict is replaced,
    never written)."""
    extra = rec.extra
    for item in items:
        if extra is _NO_EXTRA:
            extra = rec.extra = {}
        extra[item.TYPE] = item


def _slot(key: DestKey) -> bytes | DestKey:
    """Where ``key`` sits in the table's dict: its MAC if it has no identity items."""
    return key if key.ident else key.mac


class _Call(NamedTuple):
    """An application call, for the actions."""

    metrics: Metrics = _EMPTY_METRICS
    l3: list[L3Item] = _NO_ITEMS  # type: ignore[assignment]
    new_addresses: AddressSet | None = None
    extra: list[DataItem] = _NO_ITEMS
    status: Status | None = None
    declared: frozenset[int] = frozenset()
    deadline: float | None = None
    full: Metrics | None = None


class DestinationTable:
    """Every destination of one session and the one place that changes them.

    Args:
        send: encode and queue a message (SessionError if it cannot be sent).
        check: the same without sending (to refuse now what is held for later).
        emit: queue an event for the application.
        gone: a destination left the table (extensions drop its state).
        session_metrics: the session-wide metrics now (a new destination's defaults).
        declared: the metric types in use (the complete set some responses carry).
        addresses: the session's address ownership index.
        auto_accept: router: answer a Destination Up with Success at once.
        max_peer_destinations: refuse a Destination Up for a new destination
            ('Request Denied') while this many are held (None: no bound).
        ack: send a response with Success naming a destination (default:
            ``send`` with its identity items and a Success Status); the
            session's is quicker for the responses a router sends all day.
        send_metrics: send a Destination Up or Update carrying only metrics
            (default: ``send``); the session's encodes by template.
        clock: the session's :class:`~dlep.fsm.calls.Clock`, whose ``now``
            (the time of the engine call in progress) stamps a destination's
            ``up_since`` and ``last_update`` (default: a clock of its own,
            always None: no times).
    """

    def __init__(
        self,
        *,
        send: Callable[[int, Sequence[DataItem]], None],
        check: Callable[[int, Sequence[DataItem]], object],
        emit: Callable[[Event], None],
        gone: Callable[[DestKey], None],
        session_metrics: Callable[[], Metrics],
        declared: Callable[[], frozenset[int]],
        addresses: AddressIndex,
        auto_accept: bool = True,
        max_peer_destinations: int | None = None,
        ack: Callable[[int, DestKey], None] | None = None,
        send_metrics: Callable[[int, DestKey, Metrics], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._send = send
        self._clock = clock if clock is not None else Clock()
        self._send_metrics = send_metrics or (
            lambda mtype, key, m: send(mtype, [*key.ids(), *m.items()])
        )
        self._ack = ack or (lambda mtype, key: send(mtype, [*key.ids(), _SUCCESS]))
        self._check = check
        self._emit = emit
        self._gone = gone
        self._session_metrics = session_metrics
        self._declared = declared
        self._addresses = addresses
        self._auto_accept = auto_accept
        self._max_peer = max_peer_destinations
        #: Destination Ups refused because of ``max_peer_destinations``.
        self.refused_over_limit = 0
        # Keyed by the MAC alone when a destination has no identity items
        # (nearly always): no key object per destination (see _slot).
        self._recs: dict[bytes | DestKey, Destination] = {}
        #: Open Link Characteristics Requests of ours with a report deadline.
        self._lcr_deadline: dict[DestKey, float] = {}
        #: Octets of every MAC in this session, once the first one is seen (§13.7).
        self.mac_len: int | None = None

    # -- queries -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._recs)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, DestKey) and _slot(key) in self._recs

    def get(self, key: DestKey) -> Destination | None:
        """The record of ``key`` in any state, or None."""
        return self._recs.get(_slot(key))

    def visible(self) -> Iterator[Destination]:
        """The destinations that are up (or going down) in the session."""
        return (r for r in self._recs.values() if (r.state is _UP or r.state is _GOING_DOWN))

    def visible_keys(self) -> list[bytes | DestKey]:
        """The keys of the destinations that are up, without building a key
        or a snapshot per destination: the MAC (bytes) of one without
        identity items (nearly all), else its :class:`DestKey`."""
        return [k for k, r in self._recs.items() if (r.state is _UP or r.state is _GOING_DOWN)]

    def count_visible(self) -> int:
        """How many destinations are up (without building snapshots)."""
        return sum(1 for r in self._recs.values() if (r.state is _UP or r.state is _GOING_DOWN))

    def info(self, key: DestKey) -> DestinationInfo | None:
        """The snapshot of ``key`` if it is up, else None."""
        rec = self._recs.get(_slot(key))
        return rec.info() if rec is not None and rec.visible else None

    def snapshot(self) -> dict[DestKey, DestinationInfo]:
        """Snapshots of every destination that is up."""
        return {
            r.key: r.info()
            for r in self._recs.values()
            if (r.state is _UP or r.state is _GOING_DOWN)
        }

    def awaiting_up_decision(self) -> dict[DestKey, DestinationInfo]:
        """Router (auto-accept off): the peer's Destination Ups that await
        the application's answer (:meth:`answer_up`), by key."""
        return {
            r.key: r.info()
            for r in self._recs.values()
            if r.state is DestState.DECIDING and r.peer_req == M.DESTINATION_UP
        }

    # -- deadlines (the router's report of a slow Link Characteristics Response) --

    def next_deadline(self) -> float | None:
        """The earliest deadline of an open Link Characteristics Request, or None."""
        return min(self._lcr_deadline.values()) if self._lcr_deadline else None

    def expire(self, now: float) -> None:
        """Report the Link Characteristics Requests overdue at ``now``.

        §8: transactions do not time out, so the request stays open; the
        application only learns that it is slow.
        """

        if not self._lcr_deadline:
            return
        for key, at in list(self._lcr_deadline.items()):
            if at <= now:
                del self._lcr_deadline[key]
                self._emit(LinkCharacteristicsTimeout(key.mac, key.ident))

    # -- the MAC format of the session (§13.7) ----------------------------------

    def check_mac(self, mac: bytes, what: str, *, from_peer: bool) -> None:
        """Refuse a MAC whose length differs from the session's."""
        n = self.mac_len
        if n is not None and len(mac) != n:
            text = f"{what}: {len(mac)}-octet MAC in a session using {n}-octet MACs (§13.7)"
            if from_peer:
                raise PeerError(text, StatusCode.INVALID_DATA)
            raise SessionArgumentError(text, "mac")

    # -- input from the peer -----------------------------------------------------

    def receive(self, mtype: int, key: DestKey, parts: Parts) -> None:
        """A destination message arrived (already decoded and checked by the session)."""
        inp = _RECEIVED.get(mtype) or self._input_of(mtype, parts)
        rec = self._recs.get(_slot(key))
        if rec is None and inp not in _CREATING:
            raise PeerError(
                f"{message_name(mtype)} for unannounced destination {key.mac_str}"
                + (" (with its identity items)" if key.ident else ""),
                StatusCode.INVALID_DESTINATION,
            )
        elif rec is not None:
            asked = _ANSWERS.get(inp)
            if asked is not None and rec.out_req != asked:
                raise PeerError(
                    f"{message_name(mtype)} for {key} without a request: no {_NAME[asked]} "
                    "of ours is open",
                    StatusCode.UNEXPECTED_MESSAGE,
                )
            if inp in _PEER_REQUESTS and rec.peer_req is not None:
                raise PeerError(
                    f"{message_name(mtype)} for {key} while its {_NAME[rec.peer_req]} "
                    "is still unanswered (§8)",
                    StatusCode.UNEXPECTED_MESSAGE,
                )
        self._fire(key, rec, inp, parts)

    def _input_of(self, mtype: int, parts: Parts) -> DestInput:
        """The input of a message whose input depends on more than its type."""
        if mtype == M.DESTINATION_UP:
            return DestInput.PEER_UP if self._auto_accept else DestInput.PEER_UP_HELD
        ok = parts.status is not None and parts.status.code == StatusCode.SUCCESS
        if mtype == M.DESTINATION_UP_RESPONSE:
            return DestInput.UP_ACCEPTED if ok else DestInput.UP_REFUSED
        return DestInput.ANNOUNCE_ACCEPTED if ok else DestInput.ANNOUNCE_REFUSED

    # -- input from the application ---------------------------------------------

    def add(
        self, key: DestKey, metrics: Metrics, full: Metrics, l3: list[L3Item], extra: list[DataItem]
    ) -> None:
        """Modem: a new destination (Destination Up). ``metrics`` are what the
        application gave (sent), ``full`` those merged with the session's (kept)."""
        new = self._check_addresses(key, EMPTY, l3, "add_destination") if l3 else EMPTY
        call = _Call(metrics, l3, new, extra, full=full)
        self._fire(key, self._recs.get(_slot(key)), DestInput.ADD, call)

    def announce(
        self, key: DestKey, l3: list[L3Item], extra: list[DataItem], session_metrics: Metrics
    ) -> None:
        """Router: ask the modem about a destination (Destination Announce)."""
        call = _Call(l3=l3, extra=extra, full=session_metrics)
        self._fire(key, self._recs.get(_slot(key)), DestInput.ANNOUNCE, call)

    def update(
        self, key: DestKey, metrics: Metrics, l3: list[L3Item], extra: list[DataItem]
    ) -> bool:
        """Modem: changes for a destination; False if nothing changed."""
        rec = self._require(key)
        changed = rec.metrics.changed_in(metrics)
        new = self._check_addresses(key, rec.addresses, l3, "update_destination") if l3 else None
        if changed.is_empty() and not l3 and not extra:
            # Nothing to send; still refuse what the state would not allow.
            if TRANSITIONS.get((rec.state, DestInput.UPDATE)) is None:
                self._refuse(key, rec.state, DestInput.UPDATE)
            if rec.held_down:
                raise SessionError(f"destination {key} is going down")
            return False
        self._fire(key, rec, DestInput.UPDATE, _Call(changed, l3, new, extra))
        return True

    def update_many(self, entries: Sequence[tuple[DestKey, Metrics]]) -> int:
        """Modem: new metrics for several destinations, in order, refused as
        a whole (before anything is sent, the error naming ``updates[i]``) if
        one of them cannot take an update now or would get a current data
        rate above its maximum (§13.14-13.15; a destination named again sees
        the batch's earlier metrics for it); how many were sent or held.
        Each metric's own range is the caller's to check."""
        recs = self._recs
        found: list[Destination] = []
        # Per destination, the batch's changes so far (merged), so that one
        # named again is checked against what it will have by then.
        so_far: dict[Destination, Metrics] = {}
        for i, (key, metrics) in enumerate(entries):
            rec = recs.get(key if key.ident else key.mac)
            if rec is None:
                raise UnknownDestinationError(f"updates[{i}]: no destination {key} in this session")
            if TRANSITIONS.get((rec.state, DestInput.UPDATE)) is None:
                try:
                    self._refuse(key, rec.state, DestInput.UPDATE)
                except SessionError as exc:
                    raise type(exc)(f"updates[{i}]: {exc}") from None
            if rec.held is not None and rec.held.down:
                raise SessionError(f"updates[{i}]: destination {key} is going down")
            earlier = so_far.get(rec)
            if earlier is None:
                base = rec.metrics
                so_far[rec] = metrics
            else:
                base = rec.metrics.merged(earlier)
                so_far[rec] = earlier.merged(metrics)
            problem = base.rate_conflict(metrics)
            if problem is not None:
                raise SessionArgumentError(
                    f"updates[{i}]: {problem} (together with {key}'s current metrics)",
                    f"updates[{i}].{problem.split(':')[0]}",
                )
            found.append(rec)
        sent = 0
        update = DestInput.UPDATE
        up, send = DestState.UP, self._send_metrics
        now = self._clock.now
        for (key, metrics), rec in zip(entries, found, strict=True):
            changed = rec.metrics.changed_in(metrics)
            if changed.is_empty():
                continue
            if rec.state is up:
                # The table's cell (UP, UPDATE) -> UP, send_update, for a
                # metrics-only change: taken directly, a batch's hot path.
                send(M.DESTINATION_UPDATE, key, changed)
                rec.metrics = rec.metrics.merged(changed)
                rec.last_update = now
                rec.updates += 1
            else:
                self._fire(key, rec, update, _Call(changed))
            sent += 1
        return sent

    def drop(self, key: DestKey) -> None:
        """Destination Down (modem: unreachable; router: no longer wanted)."""
        self._fire(key, self._require(key), DestInput.DROP, None)

    def answer_up(self, key: DestKey, accept: bool) -> None:
        """Router: the application's decision on a held Destination Up."""
        inp = DestInput.ACCEPT_UP if accept else DestInput.REFUSE_UP
        self._fire(key, self._require(key), inp, None)

    def answer_announce(
        self,
        key: DestKey,
        status: Status,
        metrics: Metrics,
        l3: list[L3Item],
        extra: list[DataItem],
        declared: frozenset[int],
    ) -> None:
        """Modem: the application's answer to a Destination Announce."""
        rec = self._require(key)
        if status.code != StatusCode.SUCCESS:
            self._fire(key, rec, DestInput.REFUSE_ANNOUNCE, _Call(status=status))
            return
        new = self._check_addresses(key, rec.addresses, l3, "respond_destination_announce")
        call = _Call(metrics, l3, new, extra, status, declared)
        self._fire(key, rec, DestInput.ACCEPT_ANNOUNCE, call)

    def request_link(self, key: DestKey, items: list[DataItem], deadline: float | None) -> None:
        """Router: send a Link Characteristics Request (``items`` after the ids)."""
        self._fire(
            key, self._require(key), DestInput.REQUEST_LINK, _Call(extra=items, deadline=deadline)
        )

    def answer_link(
        self,
        key: DestKey,
        status: Status,
        metrics: Metrics,
        extra: list[DataItem],
        declared: frozenset[int],
    ) -> None:
        """Modem: answer the router's Link Characteristics Request."""
        call = _Call(metrics, extra=extra, status=status, declared=declared)
        self._fire(key, self._require(key), DestInput.ANSWER_LINK, call)

    # -- session-wide changes ----------------------------------------------------

    def check_session_metrics(self, changed: Metrics) -> None:
        """Refuse session-wide metrics that would make a destination's
        metrics break the RFC's rules (§12.7: they apply to every one)."""
        for rec in self._recs.values():
            try:
                rec.metrics.merged(changed).validate()
            except ValueError as exc:
                raise SessionArgumentError(
                    f"{exc} for destination {rec.key} once the session-wide values apply "
                    "(§12.7); change that destination first",
                    "metrics",
                ) from None

    def apply_session_metrics(self, changed: Metrics, *, sent_by_us: bool) -> None:
        """§12.7: session-wide metrics apply to every destination.

        ``sent_by_us`` (modem): held changes of the same fields are now
        stale, the Session Update overrides them on the wire too.
        """
        for rec in self._recs.values():
            rec.metrics = rec.metrics.merged(changed)
            held = rec.held
            if sent_by_us and held is not None and held.metrics is not None:
                left = {
                    n: v for n, v in held.metrics.as_dict().items() if getattr(changed, n) is None
                }
                held.metrics = Metrics(**left) if left else None

    def clear(self, *, tell_gone: bool = True) -> tuple[DestKey, ...]:
        """Session Reset: forget everything; return the keys that were up.
        ``tell_gone`` False: nobody listens to ``gone`` (no extension is
        active), so it is not called for each destination."""
        recs = list(self._recs.values())
        # One key per record, made once: at 100,000 destinations a Session
        # Reset is one step of the event loop, and two keys per record (and
        # a call per record that nobody listens to) made it 170 ms.
        keys = [DestKey(r.mac, r.ident) for r in recs]
        if tell_gone:
            for key in keys:
                self._gone(key)
        self._recs.clear()
        self._lcr_deadline.clear()
        return tuple(
            [k for k, r in zip(keys, recs, strict=True) if r.state is _UP or r.state is _GOING_DOWN]
        )

    # -- the machine ---------------------------------------------------------------

    def _fire(
        self, key: DestKey, rec: Destination | None, inp: DestInput, arg: Parts | _Call | None
    ) -> None:
        state = rec.state if rec is not None else DestState.ABSENT
        if rec is not None:
            asked = _DECISIONS.get(inp)
            if asked is not None and rec.peer_req != asked:
                raise SessionError(f"no {_NAME[asked]} pending for {key}")
        cell = _CELLS.get((state, inp))
        if cell is None:
            self._refuse(key, state, inp)
        nxt, action = cell
        if rec is not None:
            rec.state = nxt
        try:
            done = action(self, key, rec, arg, nxt)
        except BaseException:
            if rec is not None and rec.state is nxt:
                rec.state = state
            raise
        if done is False and rec is not None:
            rec.state = state  # the action declined (e.g. inconsistent addresses)

    def _refuse(self, key: DestKey, state: DestState, inp: DestInput) -> NoReturn:
        if inp.name.startswith(("PEER_", "UP_", "ANNOUNCE_", "DOWN_", "LINK_")):
            what = inp.value.split(" (")[0]
            if state is DestState.DECIDING and inp is DestInput.PEER_UPDATE:
                why = "before it was accepted"
            else:
                why = "which is not up"
            raise PeerError(f"{what} for {key}, {why}", StatusCode.INVALID_DESTINATION)
        if state is DestState.ABSENT:
            raise UnknownDestinationError(f"no destination {key} in this session")
        if inp is DestInput.ADD:
            raise DestinationExistsError(f"destination {key} already exists in this session")
        if inp is DestInput.ANNOUNCE:
            raise DestinationExistsError(f"destination {key} is already known in this session")
        if state is DestState.GOING_DOWN:
            raise SessionError(f"destination {key} is going down")
        if state is DestState.DECIDING and inp is DestInput.UPDATE:
            raise SessionError(f"destination {key} is not up (answer its Destination Announce)")
        if inp in _DECISIONS:
            raise SessionError(f"no {_NAME[_DECISIONS[inp]]} pending for {key}")
        raise SessionError(f"destination {key} is not up")

    def _require(self, key: DestKey) -> Destination:
        rec = self._recs.get(_slot(key))
        if rec is None:
            raise UnknownDestinationError(f"no destination {key} in this session")
        return rec

    def _check_addresses(
        self, key: DestKey, current: AddressSet, l3: list[L3Item], call: str
    ) -> AddressSet:
        new, problems = self._addresses.apply(key, current, l3)
        if problems:
            raise SessionArgumentError(f"{call} {key}: " + "; ".join(problems), "addresses")
        return new

    def _create(self, key: DestKey, state: DestState, metrics: Metrics) -> Destination:
        rec = Destination(key, state, metrics, self._clock.now)
        self._recs[_slot(key)] = rec
        if self.mac_len is None:
            self.mac_len = len(key.mac)
        return rec

    def _set_addresses(self, rec: Destination, new: AddressSet) -> None:
        self._addresses.commit(rec.key, rec.addresses, new)
        rec.addresses = new

    def _remove(self, rec: Destination) -> None:
        self._gone(rec.key)
        self._addresses.release(rec.key, rec.addresses)
        self._lcr_deadline.pop(rec.key, None)
        del self._recs[rec.mac if not rec.ident else rec.key]

    def _apply_partial(self, rec: Destination, mtype: int, l3: list[L3Item]) -> None:
        """Addresses from a message that has no response to refuse them in:
        §13.8.1 says skip the inconsistent ones and carry on."""

        if not l3:
            return
        new, problems = self._addresses.apply(rec.key, rec.addresses, l3)
        self._set_addresses(rec, new)
        if problems:
            self._emit(Inconsistency(mtype, "; ".join(problems), rec.mac, rec.ident))

    def _flush_held(self, rec: Destination) -> None:
        """Send what was held while our Destination Up/Announce was open."""
        m = rec.held_metrics or _EMPTY_METRICS
        if not m.is_empty() or rec.held_l3 or rec.held_extra:
            # The latest value of each extension item (repeats are not allowed).
            extra = list({item.TYPE: item for item in rec.held_extra}.values())
            self._send(M.DESTINATION_UPDATE, [*rec.key.ids(), *m.items(), *rec.held_l3, *extra])
            rec.last_update = self._clock.now
            rec.updates += 1
        down = rec.held_down
        rec.held = None
        if down:
            self._fire(rec.key, rec, DestInput.DROP, None)

    # -- actions: the peer's requests ------------------------------------------------

    def _a_peer_up(self, key: DestKey, rec: Destination | None, rx: Parts, nxt: DestState) -> bool:
        p = rx
        ids = key.ids()
        cap = self._max_peer
        if rec is None and cap is not None and len(self._recs) >= cap:
            # Each destination costs memory for the session's lifetime: a
            # peer may not make it grow without bound. §12.12: after a
            # status other than Success the modem sends nothing more about
            # it; 'Request Denied' (§13.1: "The receiver refuses to complete
            # the request") says it is our refusal, not a lack of interest.
            self.refused_over_limit += 1
            text = f"destination limit of this session ({cap}) reached"
            self._send(M.DESTINATION_UP_RESPONSE, [*ids, Status(StatusCode.REQUEST_DENIED, text)])
            self._emit(DestinationLimitReached(key.mac, cap, self.refused_over_limit, key.ident))
            return False
        current = rec.addresses if rec is not None else EMPTY
        new, problems = self._addresses.apply(key, current, p.l3) if p.l3 else (current, None)
        if problems:
            # §13.8.1: MAY answer 'Inconsistent Data'; the destination is not added.
            text = "; ".join(problems)
            self._emit(Inconsistency(rx.mtype, text, key.mac, key.ident))
            self._send(
                M.DESTINATION_UP_RESPONSE, [*ids, Status(StatusCode.INCONSISTENT_DATA, text[:200])]
            )
            return False
        metrics = self._session_metrics().merged(p.metrics)
        if rec is None:
            rec = self._create(key, nxt, metrics)
        else:
            rec.metrics = metrics  # crossing our Announce: the modem's view wins
            rec.up_since = self._clock.now
        if new is not current:
            self._set_addresses(rec, new)
        _remember(rec, p.extra)
        if nxt is DestState.UP:
            self._ack(M.DESTINATION_UP_RESPONSE, key)
            self._emit(DestinationUp(rec.info()))
        else:
            rec.peer_req = M.DESTINATION_UP
            self._emit(DestinationUpRequested(rec.info()))
        return True

    def _a_refresh(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:
        # A repeated Destination Up, not a Destination Update: not counted
        # (taken back before _a_peer_update counts it and snapshots).
        rec.updates -= 1
        self._a_peer_update(key, rec, rx, nxt)
        self._ack(M.DESTINATION_UP_RESPONSE, key)

    def _a_peer_announce(self, key: DestKey, rec: None, rx: Parts, nxt: DestState) -> None:

        rec2 = self._create(key, nxt, self._session_metrics())
        rec2.peer_req = M.DESTINATION_ANNOUNCE
        l3 = rx.l3
        v4 = frozenset(i.address for i in l3 if isinstance(i, Ipv4Address))
        v6 = frozenset(i.address for i in l3 if isinstance(i, Ipv6Address))
        self._emit(DestinationAnnounceRequested(key.mac, v4, v6, key.ident))

    def _a_answer_known_announce(
        self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState
    ) -> None:
        if rec.held_down:
            self._a_deny_announce(key, rec, rx, nxt)
            return
        self._send(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            [
                *key.ids(),
                _SUCCESS,
                *rec.metrics.restricted(self._declared()).items(),
                *rec.addresses.items(),
            ],
        )

    def _a_deny_announce(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:
        self._send(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            [*key.ids(), Status(StatusCode.REQUEST_DENIED, "destination going down")],
        )

    def _a_peer_update(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:
        p = rx
        changed = p.metrics
        if changed is not NO_METRICS:
            rec.metrics = rec.metrics.merged(changed)
        if p.l3:
            self._apply_partial(rec, rx.mtype, p.l3)
        if p.extra:
            _remember(rec, p.extra)
        rec.last_update = self._clock.now
        rec.updates += 1
        self._emit(DestinationUpdate(rec.info(), changed))

    def _a_ignore(self, key: DestKey, rec: Destination, arg: object, nxt: DestState) -> None:
        pass

    def _a_peer_down(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:

        self._remove(rec)
        self._ack(M.DESTINATION_DOWN_RESPONSE, key)
        self._emit(DestinationDown(key.mac, by_peer=True, ident=key.ident))

    def _a_answer_crossed_down(
        self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState
    ) -> None:
        # Both sides sent Destination Down (§12.15 lets either): answer; the
        # record goes when the response to ours arrives.
        self._ack(M.DESTINATION_DOWN_RESPONSE, key)

    def _a_link_requested(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:

        rec.peer_req = M.LINK_CHARACTERISTICS_REQUEST
        m = rx.metrics
        ident_types = {type(i) for i in key.ident}
        extra = tuple(i for i in rx.extra if type(i) not in ident_types)
        self._emit(
            LinkCharacteristicsRequested(key.mac, m.cdrr, m.cdrt, m.latency, key.ident, extra)
        )

    # -- actions: the peer's responses -------------------------------------------------

    def _a_up_accepted(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:

        rec.out_req = None
        rec.up_since = self._clock.now
        self._emit(DestinationUp(rec.info()))
        self._flush_held(rec)

    def _a_refused(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:

        # §12.12 / §12.14: no further messages about this destination.
        st = rx.status
        assert st is not None
        self._remove(rec)
        self._emit(DestinationRefused(key.mac, st.code, st.text, key.ident))

    def _a_announce_accepted(
        self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState
    ) -> None:
        p = rx
        rec.out_req = None
        rec.metrics = rec.metrics.merged(p.metrics)
        self._apply_partial(rec, rx.mtype, p.l3)
        _remember(rec, p.extra)
        rec.up_since = self._clock.now
        self._emit(DestinationUp(rec.info(), announced=True))
        self._flush_held(rec)  # a drop_destination() held back meanwhile

    def _a_announce_answered_late(
        self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState
    ) -> None:

        rec.out_req = None
        st = rx.status
        assert st is not None
        if st.code != StatusCode.SUCCESS:
            self._emit(ResponseStatus(rx.mtype, st.code, st.text, key.mac, key.ident))
        if nxt is DestState.UP:
            self._flush_held(rec)

    def _a_down_answered(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:

        st = rx.status
        assert st is not None
        self._remove(rec)
        if st.code != StatusCode.SUCCESS:
            self._emit(ResponseStatus(rx.mtype, st.code, st.text, key.mac, key.ident))
        self._emit(DestinationDown(key.mac, by_peer=False, ident=key.ident))

    def _a_link_answered(self, key: DestKey, rec: Destination, rx: Parts, nxt: DestState) -> None:
        p = rx
        rec.out_req = None
        self._lcr_deadline.pop(key, None)
        st = p.status
        assert st is not None
        rec.metrics = rec.metrics.merged(p.metrics)
        _remember(rec, p.extra)
        self._emit(LinkCharacteristicsResponse(key.mac, st.code, rec.metrics, st.text, key.ident))

    # -- actions: the application's calls ------------------------------------------------

    def _a_send_up(self, key: DestKey, rec: None, c: _Call, nxt: DestState) -> None:
        assert c.full is not None and c.new_addresses is not None
        # Sent first: a message the codec or an extension refuses changes nothing.
        if c.l3 or c.extra:
            self._send(M.DESTINATION_UP, [*key.ids(), *c.metrics.items(), *c.l3, *c.extra])
        else:
            self._send_metrics(M.DESTINATION_UP, key, c.metrics)
        new = self._create(key, nxt, c.full)
        if c.new_addresses is not EMPTY:
            self._set_addresses(new, c.new_addresses)
        _remember(new, (*key.ident, *c.extra))
        new.out_req = M.DESTINATION_UP

    def _a_send_announce(self, key: DestKey, rec: None, c: _Call, nxt: DestState) -> None:
        self._send(M.DESTINATION_ANNOUNCE, [*key.ids(), *c.l3, *c.extra])
        new = self._create(key, nxt, c.full or _EMPTY_METRICS)
        new.out_req = M.DESTINATION_ANNOUNCE

    def _a_send_update(self, key: DestKey, rec: Destination, c: _Call, nxt: DestState) -> None:
        if c.l3 or c.extra:
            self._send(M.DESTINATION_UPDATE, [*key.ids(), *c.metrics.items(), *c.l3, *c.extra])
        else:
            self._send_metrics(M.DESTINATION_UPDATE, key, c.metrics)
        self._commit_change(rec, c)
        rec.last_update = self._clock.now
        rec.updates += 1

    def _a_hold_update(self, key: DestKey, rec: Destination, c: _Call, nxt: DestState) -> None:
        if rec.held_down:
            raise SessionError(f"destination {key} is going down")
        # Refuse now what could not be sent later.
        self._check(M.DESTINATION_UPDATE, [*key.ids(), *c.metrics.items(), *c.l3, *c.extra])
        held = rec.hold()
        held.metrics = c.metrics if held.metrics is None else held.metrics.merged(c.metrics)
        held.l3 = coalesce(held.l3, c.l3)
        held.extra = [*held.extra, *c.extra]
        self._commit_change(rec, c)

    def _commit_change(self, rec: Destination, c: _Call) -> None:
        if c.new_addresses is not None:
            self._set_addresses(rec, c.new_addresses)
        rec.metrics = rec.metrics.merged(c.metrics)
        if c.extra:
            _remember(rec, c.extra)

    def _a_send_down(self, key: DestKey, rec: Destination, c: None, nxt: DestState) -> None:
        self._start_request(rec, M.DESTINATION_DOWN)
        self._send(M.DESTINATION_DOWN, key.ids())
        rec.out_req = M.DESTINATION_DOWN

    def _a_hold_down(self, key: DestKey, rec: Destination, c: None, nxt: DestState) -> None:
        rec.hold().down = True

    def _a_accept_up(self, key: DestKey, rec: Destination, c: None, nxt: DestState) -> None:

        self._ack(M.DESTINATION_UP_RESPONSE, key)
        rec.peer_req = None
        rec.up_since = self._clock.now
        self._emit(DestinationUp(rec.info()))
        if rec.out_req is None:
            self._flush_held(rec)

    def _a_refuse_up(self, key: DestKey, rec: Destination, c: None, nxt: DestState) -> None:
        self._send(M.DESTINATION_UP_RESPONSE, [*key.ids(), Status(StatusCode.NOT_INTERESTED)])
        self._remove(rec)

    def _a_accept_announce(self, key: DestKey, rec: Destination, c: _Call, nxt: DestState) -> None:

        assert c.status is not None and c.new_addresses is not None
        metrics = rec.metrics.merged(c.metrics)
        self._send(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            [
                *key.ids(),
                c.status,
                *metrics.restricted(c.declared).items(),
                *c.new_addresses.items(),
                *c.extra,
            ],
        )
        rec.peer_req = None
        self._commit_change(rec, c)
        rec.up_since = self._clock.now
        self._emit(DestinationUp(rec.info(), announced=True))

    def _a_refuse_announce(self, key: DestKey, rec: Destination, c: _Call, nxt: DestState) -> None:
        assert c.status is not None
        self._send(M.DESTINATION_ANNOUNCE_RESPONSE, [*key.ids(), c.status])
        self._remove(rec)

    def _a_request_link(self, key: DestKey, rec: Destination, c: _Call, nxt: DestState) -> None:
        self._start_request(rec, M.LINK_CHARACTERISTICS_REQUEST)
        self._send(M.LINK_CHARACTERISTICS_REQUEST, [*key.ids(), *c.extra])
        rec.out_req = M.LINK_CHARACTERISTICS_REQUEST
        if c.deadline is not None:
            self._lcr_deadline[key] = c.deadline

    def _a_answer_link(self, key: DestKey, rec: Destination, c: _Call, nxt: DestState) -> None:
        assert c.status is not None
        # §12.19: the response carries the complete declared set, as now.
        metrics = rec.metrics.merged(c.metrics)
        self._send(
            M.LINK_CHARACTERISTICS_RESPONSE,
            [*key.ids(), c.status, *metrics.restricted(c.declared).items(), *c.extra],
        )
        rec.peer_req = None
        self._commit_change(rec, c)

    def _a_forget_link_request(
        self, key: DestKey, rec: Destination, c: _Call, nxt: DestState
    ) -> None:
        # Our Destination Down went out first: the router drops the
        # destination and its request with it, so an answer now would be a
        # message about a downed destination (§12.1). Nothing to send.
        rec.peer_req = None

    def _start_request(self, rec: Destination, mtype: int) -> None:
        if rec.out_req is not None:
            raise TransactionInProgressError(
                f"destination {rec.key}: {_NAME[rec.out_req]} still unanswered"
            )


#: TRANSITIONS with each action resolved to its method, once.
_CELLS: Final = {
    cell: (nxt, getattr(DestinationTable, "_a_" + action))
    for cell, (nxt, action) in TRANSITIONS.items()
}
# update_many takes this cell directly for metrics-only changes.
assert TRANSITIONS[(DestState.UP, DestInput.UPDATE)] == (DestState.UP, "send_update")


def declared_problem(metrics: Metrics, declared: frozenset[int], mtype: int) -> str | None:
    """Why ``metrics`` may not appear in a received message: a metric the
    Session Initialization Response did not declare (§12.6)."""
    undeclared = metrics.types() - declared
    if not undeclared:
        return None
    name = FIELD_OF_TYPE[min(undeclared)].upper()
    return (
        f"{message_name(mtype)} carries metric {name} that the Session Initialization "
        "Response did not declare (§12.6)"
    )


def extra_without_ident(extra: Iterable[DataItem], ident_types: frozenset[int]) -> list[DataItem]:
    """``extra`` without identity items (those go in the key)."""
    if not ident_types:
        return list(extra)
    return [i for i in extra if i.TYPE not in ident_types]
