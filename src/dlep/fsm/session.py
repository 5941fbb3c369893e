"""The DLEP session engine (RFC 8175 §7-§8, §12), router or modem, sans I/O.

A :class:`Session` is fed stream bytes (:meth:`Session.receive_data`), API
calls and the current time; it produces bytes to write
(:meth:`Session.data_to_send`), typed events (:meth:`Session.next_event`) and
the next time it must be woken (:meth:`Session.get_timer` /
:meth:`Session.handle_timer`). It never reads a clock and never touches a
socket: the asyncio layer is a thin adapter around it.

Which received message is legal in which state is the explicit table
:data:`TRANSITIONS`; anything not listed there is an *unexpected message*
(status 129), except where RFC 8175 prescribes otherwise (a modem that is
still waiting for Session Initialization closes silently, §7.2; a session that
is terminating ignores everything but the termination exchange, §7.4).
"""

from __future__ import annotations

import enum
import ipaddress
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias

from ..wire import (
    DEFAULT_REGISTRY,
    DataItem,
    DecodeError,
    EncodeError,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
    Ipv6AttachedSubnet,
    ItemFormatError,
    MacAddress,
    Message,
    MessageFramer,
    MessageType,
    PeerType,
    Registry,
    Status,
    StatusCode,
    UnitSpec,
    UnknownItem,
    decode_message,
    encode_message,
    format_mac,
    is_terminate,
    message_name,
    status_name,
)
from ..wire.items import MANDATORY_METRICS, MetricItem
from .events import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationInfo,
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
    SessionTerminated,
    SessionUp,
    SessionUpdated,
)
from .metrics import FIELD_OF_TYPE, METRIC_TYPES, Metrics

if TYPE_CHECKING:
    from ..ext.profiles import Profile

M = MessageType
L3Item: TypeAlias = Ipv4Address | Ipv6Address | Ipv4AttachedSubnet | Ipv6AttachedSubnet
L3Key: TypeAlias = (
    ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network
)
_L3_TYPES: Final = frozenset(
    c.TYPE for c in (Ipv4Address, Ipv6Address, Ipv4AttachedSubnet, Ipv6AttachedSubnet)
)
_MANDATORY_TYPES: Final = frozenset(c.TYPE for c in MANDATORY_METRICS)
_PEER: Final = b"<peer>"  # owner key of the peer's own addresses in the index
_SELF: Final = b"<self>"


class Role(enum.Enum):
    """Which side of the session this engine plays."""

    ROUTER = "router"
    MODEM = "modem"


class State(enum.Enum):
    """Session states of RFC 8175 §7 (Peer Discovery lives in :mod:`.discovery`)."""

    INITIALIZING = "initializing"
    IN_SESSION = "in-session"
    TERMINATING = "terminating"
    RESET = "reset"


class SessionError(Exception):
    """An API call the session cannot honour (bad argument, wrong state)."""


class SessionClosedError(SessionError):
    """The session has terminated; nothing more can be sent."""


class UnknownDestinationError(SessionError, KeyError):
    """No destination with that MAC address in this session."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown destination"


class TransactionInProgressError(SessionError):
    """RFC 8175 §8: one request per destination at a time."""


class ProtocolViolation(Exception):
    """Raised by a plugin hook: the peer broke an extension's rules.

    The engine ends the session with ``status`` (default 130 Invalid Data).
    With ``respond`` and a request that has a response (e.g. Destination
    Up), the response carrying that status goes out first (RFC 8703 §2).
    """

    def __init__(
        self, reason: str, status: int = StatusCode.INVALID_DATA, *, respond: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = int(status)
        self.reason = reason
        self.respond = respond


class SessionPlugin(Protocol):
    """What the engine calls on a negotiated extension (see :mod:`dlep.ext`)."""

    @property
    def code(self) -> int:
        """Extension Type Value."""
        ...

    @property
    def messages(self) -> Sequence[UnitSpec]:
        """Message specs the extension defines (dispatched to on_message)."""
        ...

    def new_state(self, session: Session) -> Any:
        """Per-session state, created at negotiation."""
        ...

    def init_items(self, session: Session) -> Sequence[DataItem]:
        """Items for our Session Initialization Response (modem)."""
        ...

    def on_peer_init(self, session: Session, msg: Message) -> None:
        """Check the peer's Session Initialization (Response)."""
        ...

    def on_items(
        self, session: Session, msg: Message, dest: bytes | None, items: Sequence[DataItem]
    ) -> None:
        """The extension's items arrived in a core message."""
        ...

    def response_items(
        self, session: Session, message_type: int, dest: bytes | None
    ) -> Sequence[DataItem]:
        """Items to add to a response we send."""
        ...

    def on_message(self, session: Session, msg: Message) -> None:
        """One of the extension's own messages arrived."""
        ...

    def on_destination_gone(self, session: Session, dest: bytes) -> None:
        """A destination left the session."""
        ...


#: Requests and the response that answers them.
_RESPONSE_OF: Final = {
    MessageType.SESSION_UPDATE: MessageType.SESSION_UPDATE_RESPONSE,
    MessageType.DESTINATION_UP: MessageType.DESTINATION_UP_RESPONSE,
    MessageType.DESTINATION_ANNOUNCE: MessageType.DESTINATION_ANNOUNCE_RESPONSE,
    MessageType.DESTINATION_DOWN: MessageType.DESTINATION_DOWN_RESPONSE,
    MessageType.LINK_CHARACTERISTICS_REQUEST: MessageType.LINK_CHARACTERISTICS_RESPONSE,
}

_RESPONSES: Final = frozenset(
    {
        MessageType.SESSION_UPDATE_RESPONSE,
        MessageType.DESTINATION_UP_RESPONSE,
        MessageType.DESTINATION_ANNOUNCE_RESPONSE,
        MessageType.DESTINATION_DOWN_RESPONSE,
        MessageType.LINK_CHARACTERISTICS_RESPONSE,
    }
)


@dataclass(frozen=True)
class SessionConfig:
    """Engine parameters; times in milliseconds.

    Attributes:
        heartbeat_interval_ms: our Heartbeat Interval (RFC: ≥ 1000, default 60 s).
        peer_type: our Peer Type item.
        extensions: extension type codes we offer.
        registry: codec registry (core plus registered extensions).
        missed_heartbeats: peer heartbeat intervals of silence before we
            terminate with 132 (RFC 8175 §7.3.1: at least 2).
        init_timeout_ms: how long to wait for Session Initialization (Response);
            default 4 heartbeat intervals.
        termination_intervals: heartbeat intervals to wait for a Session
            Termination Response (RFC 8175 §7.4 suggests 4).
        link_characteristics_timeout_ms: router: when to report a slow Link
            Characteristics Response (the request stays open, §8).
        auto_accept_destinations: router: answer Destination Up with Success
            at once; if False the application decides
            (:meth:`Session.respond_destination_up`).
        session_metrics: modem: the session-wide defaults declared in the
            Session Initialization Response; must set mdrr, mdrt, cdrr, cdrt
            and latency (§12.6). Optional fields set here are "in use".
        ipv4_addresses ... ipv6_subnets: our own layer-3 information, sent in
            Session Initialization (Response).
        required_extensions: modem: refuse a router that does not offer all
            of these (Session Initialization Response 'Request Denied', B.2).
        plugins: extension objects; their hooks run once negotiated.
    """

    heartbeat_interval_ms: int = 60_000
    peer_type: PeerType = field(default_factory=lambda: PeerType("dlep"))
    extensions: tuple[int, ...] = ()
    registry: Registry = DEFAULT_REGISTRY
    missed_heartbeats: int = 2
    init_timeout_ms: int | None = None
    termination_intervals: int = 4
    link_characteristics_timeout_ms: int | None = 10_000
    auto_accept_destinations: bool = True
    session_metrics: Metrics = field(
        default_factory=lambda: Metrics(mdrr=0, mdrt=0, cdrr=0, cdrt=0, latency=0)
    )
    ipv4_addresses: tuple[ipaddress.IPv4Address, ...] = ()
    ipv6_addresses: tuple[ipaddress.IPv6Address, ...] = ()
    ipv4_subnets: tuple[ipaddress.IPv4Network, ...] = ()
    ipv6_subnets: tuple[ipaddress.IPv6Network, ...] = ()
    required_extensions: frozenset[int] = frozenset()
    #: Extension objects (:class:`dlep.ext.Extension`) whose hooks run when
    #: negotiated; their codes are offered too.
    plugins: tuple[SessionPlugin, ...] = ()
    #: Interoperability profile (:class:`dlep.ext.profiles.Profile`) mapping
    #: standard codes to a peer's non-standard ones at the wire boundary;
    #: None = standard codes.
    profile: Profile | None = None

    @property
    def offered_extensions(self) -> tuple[int, ...]:
        """Extension codes we list in Extensions Supported."""
        return tuple(sorted(set(self.extensions) | {p.code for p in self.plugins}))

    def __post_init__(self) -> None:
        if not isinstance(self.heartbeat_interval_ms, int) or not (
            1 <= self.heartbeat_interval_ms <= 0xFFFFFFFF
        ):
            raise ValueError(
                f"heartbeat_interval_ms: {self.heartbeat_interval_ms!r} must be 1..4294967295"
            )
        if self.missed_heartbeats < 2:
            raise ValueError(
                f"missed_heartbeats: {self.missed_heartbeats} is below the RFC 8175 §7.3.1 "
                "minimum of 2"
            )
        if self.termination_intervals < 1:
            raise ValueError("termination_intervals: must be at least 1")
        if self.init_timeout_ms is not None and self.init_timeout_ms <= 0:
            raise ValueError("init_timeout_ms: must be positive")
        for ext in self.extensions:
            if not 0 < ext < 0xFFFF:
                raise ValueError(f"extensions: {ext} is not a valid extension type code")
        self.session_metrics.validate()

    def validate_for_modem(self) -> None:
        """Raise ValueError unless the mandatory session metrics are set."""
        missing = [FIELD_OF_TYPE[t] for t in _MANDATORY_TYPES - self.session_metrics.types()]
        if missing:
            raise ValueError(
                "session_metrics: a modem must declare "
                + ", ".join(sorted(missing))
                + " (RFC 8175 §12.6)"
            )


class _L3:
    """Layer-3 information of one owner (a destination, us, or the peer)."""

    __slots__ = ("v4", "v4net", "v6", "v6net")

    def __init__(self) -> None:
        self.v4: set[ipaddress.IPv4Address] = set()
        self.v6: set[ipaddress.IPv6Address] = set()
        self.v4net: set[ipaddress.IPv4Network] = set()
        self.v6net: set[ipaddress.IPv6Network] = set()

    def copy(self) -> _L3:
        new = _L3()
        new.v4, new.v6 = set(self.v4), set(self.v6)
        new.v4net, new.v6net = set(self.v4net), set(self.v6net)
        return new

    def all_keys(self) -> set[L3Key]:
        out: set[L3Key] = set()
        out.update(self.v4, self.v6, self.v4net, self.v6net)
        return out

    def items(self, add: bool = True) -> list[DataItem]:
        out: list[DataItem] = [Ipv4Address(a, add) for a in sorted(self.v4)]
        out += [Ipv6Address(a, add) for a in sorted(self.v6)]
        out += [Ipv4AttachedSubnet(n.network_address, n.prefixlen, add) for n in sorted(self.v4net)]
        out += [Ipv6AttachedSubnet(n.network_address, n.prefixlen, add) for n in sorted(self.v6net)]
        return out


def _key_of(item: L3Item) -> tuple[L3Key, str]:
    if isinstance(item, Ipv4Address):
        return item.address, "v4"
    if isinstance(item, Ipv6Address):
        return item.address, "v6"
    if isinstance(item, Ipv4AttachedSubnet):
        return item.network, "v4net"
    return item.network, "v6net"


def _senseless(key: L3Key) -> bool:
    """RFC 8175 §13.8.1: an address that 'makes no sense' (not forwardable).

    Only unspecified, loopback and multicast are refused: link-local
    destination addresses (fe80::/10) are common on MANET radios.
    """
    if isinstance(key, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return key.network_address.is_multicast or key.network_address.is_loopback
    return key.is_unspecified or key.is_loopback or key.is_multicast


class _DState(enum.Enum):
    PENDING_UP = 1  # modem: Destination Up sent / router: Announce sent
    AWAITING_DECISION = 2  # router: Destination Up received, app decides
    UP = 3
    PENDING_DOWN = 4  # we sent Destination Down


class _Dest:
    """Mutable per-destination record owned by the engine."""

    __slots__ = (
        "deferred_down",
        "deferred_extra",
        "deferred_l3",
        "deferred_metrics",
        "extra",
        "gw",
        "ident",
        "l3",
        "lcr_deadline",
        "mac",
        "metrics",
        "out_req",
        "peer_req",
        "state",
    )

    def __init__(
        self,
        mac: bytes,
        state: _DState,
        metrics: Metrics,
        gw: bytes | None = None,
        ident: tuple[DataItem, ...] = (),
    ) -> None:
        # ``mac`` is the table key: the MAC, plus the encoded identity items
        # (RFC 8703 Link Identifier) when an extension defines them; ``gw``
        # is the MAC Address item's value.
        self.mac = mac
        self.gw = gw if gw is not None else mac
        self.ident = ident
        self.state = state
        self.metrics = metrics
        # Shared until the first address arrives: _l3_apply never mutates
        # its input, so ~0.9 KiB of empty sets per destination are saved.
        self.l3 = _NO_L3
        self.extra: dict[int, DataItem] = {}
        self.out_req: int | None = None  # our request awaiting the peer's response
        self.peer_req: int | None = None  # the peer's request awaiting our response
        self.deferred_metrics: Metrics | None = None
        self.deferred_l3: list[L3Item] = []
        self.deferred_extra: list[DataItem] = []
        self.deferred_down = False
        self.lcr_deadline: float | None = None

    def ids(self) -> list[DataItem]:
        """The items that name this destination in a message."""
        return [MacAddress(self.gw), *self.ident]

    def info(self) -> DestinationInfo:
        l3 = self.l3
        return DestinationInfo(
            self.gw,
            self.metrics,
            frozenset(l3.v4),
            frozenset(l3.v6),
            frozenset(l3.v4net),
            frozenset(l3.v6net),
            tuple(self.extra.values()),
        )


@dataclass(slots=True)
class _Parts:
    """A destination/session message split by item kind (one pass)."""

    mac: bytes | None = None
    status: Status | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    l3: list[L3Item] = field(default_factory=list)
    extra: list[DataItem] = field(default_factory=list)
    ident: list[DataItem] = field(default_factory=list)

    @property
    def key(self) -> bytes:
        """The destination's table key (MAC, plus identity items)."""
        assert self.mac is not None
        return _dest_key(self.mac, self.ident)

    def ids(self) -> list[DataItem]:
        """The items that name the destination, to echo in a response."""
        assert self.mac is not None
        return [MacAddress(self.mac), *self.ident]


def _dest_key(mac: bytes, ident: Sequence[DataItem]) -> bytes:
    """Table key of a destination: its MAC, plus its encoded identity items."""
    if not ident:
        return mac
    return mac + b"".join(i.encode() for i in ident)


def _split(msg: Message, ident_types: frozenset[int] = frozenset()) -> _Parts:
    parts = _Parts()
    fields_of = FIELD_OF_TYPE
    for item in msg.items:
        if isinstance(item, UnknownItem):
            continue
        t = item.TYPE
        name = fields_of.get(t)
        if name is not None:
            parts.metrics[name] = item.value  # type: ignore[attr-defined]
        elif t == 7:
            parts.mac = item.address  # type: ignore[attr-defined]
        elif t in _L3_TYPES:
            parts.l3.append(item)  # type: ignore[arg-type]
        elif t == 1:
            parts.status = item  # type: ignore[assignment]
        else:
            parts.extra.append(item)
            if t in ident_types:
                parts.ident.append(item)
    return parts


Handler: TypeAlias = Callable[["Session", Message], None]

#: (role, state) -> message type -> handler name. Anything absent is unexpected.
TRANSITIONS: Final[dict[tuple[Role, State], dict[int, str]]] = {
    (Role.ROUTER, State.INITIALIZING): {
        M.SESSION_INITIALIZATION_RESPONSE: "_on_session_init_response",
        M.SESSION_TERMINATION: "_on_termination",
    },
    (Role.MODEM, State.INITIALIZING): {
        M.SESSION_INITIALIZATION: "_on_session_init",
    },
    (Role.ROUTER, State.IN_SESSION): {
        M.SESSION_UPDATE: "_on_session_update",
        M.SESSION_UPDATE_RESPONSE: "_on_session_update_response",
        M.SESSION_TERMINATION: "_on_termination",
        M.DESTINATION_UP: "_on_destination_up",
        M.DESTINATION_ANNOUNCE_RESPONSE: "_on_destination_announce_response",
        M.DESTINATION_DOWN: "_on_destination_down",
        M.DESTINATION_DOWN_RESPONSE: "_on_destination_down_response",
        M.DESTINATION_UPDATE: "_on_destination_update",
        M.LINK_CHARACTERISTICS_RESPONSE: "_on_link_characteristics_response",
        M.HEARTBEAT: "_on_heartbeat",
    },
    (Role.MODEM, State.IN_SESSION): {
        M.SESSION_UPDATE: "_on_session_update",
        M.SESSION_UPDATE_RESPONSE: "_on_session_update_response",
        M.SESSION_TERMINATION: "_on_termination",
        M.DESTINATION_UP_RESPONSE: "_on_destination_up_response",
        M.DESTINATION_ANNOUNCE: "_on_destination_announce",
        M.DESTINATION_DOWN: "_on_destination_down",
        M.DESTINATION_DOWN_RESPONSE: "_on_destination_down_response",
        M.LINK_CHARACTERISTICS_REQUEST: "_on_link_characteristics_request",
        M.HEARTBEAT: "_on_heartbeat",
    },
    # §7.4: while waiting for the response everything else is ignored; a
    # crossing Session Termination is answered so the peer need not time out.
    (Role.ROUTER, State.TERMINATING): {
        M.SESSION_TERMINATION_RESPONSE: "_on_termination_response",
        M.SESSION_TERMINATION: "_on_termination",
    },
    (Role.MODEM, State.TERMINATING): {
        M.SESSION_TERMINATION_RESPONSE: "_on_termination_response",
        M.SESSION_TERMINATION: "_on_termination",
    },
    (Role.ROUTER, State.RESET): {},
    (Role.MODEM, State.RESET): {},
}

#: Requests of RFC 8175 §8 that concern one destination.
_DEST_REQUESTS: Final = frozenset(
    {M.DESTINATION_UP, M.DESTINATION_ANNOUNCE, M.DESTINATION_DOWN, M.LINK_CHARACTERISTICS_REQUEST}
)


class Session:
    """One DLEP session, router or modem role, without I/O.

    Create it when the TCP (and TLS) connection is up and call
    :meth:`start`. Then feed it with :meth:`receive_data`,
    :meth:`handle_timer` and :meth:`connection_lost`, and after every call
    write out :meth:`data_to_send`, process :meth:`events`, and re-arm the
    timer from :meth:`get_timer`. When :attr:`state` is ``State.RESET``,
    close the connection.
    """

    def __init__(self, role: Role, config: SessionConfig | None = None) -> None:
        self.role = role
        self.config = config or SessionConfig()
        if role is Role.MODEM:
            self.config.validate_for_modem()
        self._registry = self.config.registry
        self.state = State.INITIALIZING
        self._framer = MessageFramer()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._now = 0.0
        self._hb = self.config.heartbeat_interval_ms / 1000.0
        self._peer_hb: float | None = None
        self.peer_heartbeat_ms: int | None = None
        self.peer_type: PeerType | None = None
        self._last_rx = 0.0
        self._last_tx = 0.0
        self._deadline: float | None = None  # init or termination deadline
        self._started = False
        self.extensions: frozenset[int] = frozenset()
        self._ext_filter: frozenset[int] | None = None
        self._declared: frozenset[int] = frozenset()  # metric types in use
        self.session_metrics = Metrics()
        self._dests: dict[bytes, _Dest] = {}
        self._mac_len: int | None = None
        self._owner: dict[L3Key, bytes] = {}
        self._peer_l3 = _L3()
        self._own_l3 = _L3()
        self._session_req_out = False  # our Session Update awaiting response
        self._pending_session: tuple[Metrics, list[L3Item], list[DataItem]] | None = None
        self._cause: tuple[int | None, str, bool] | None = None
        self._lcr_pending = 0
        self.tx_counts: dict[int, int] = {}
        self.rx_counts: dict[int, int] = {}
        self.error_counts: dict[int, int] = {}
        self._ident_types = frozenset(self._registry.identity_items)
        self._api_call = False
        self._active: tuple[SessionPlugin, ...] = ()
        self._active_by_code: dict[int, SessionPlugin] = {}
        self._ext_messages: frozenset[int] = frozenset()
        #: Per-extension session state (``plugin.new_state()``), by code.
        self.ext_state: dict[int, Any] = {}
        self._dispatch: dict[State, dict[int, Callable[[Message], None]]] = {
            state: {mt: getattr(self, name) for mt, name in TRANSITIONS[(role, state)].items()}
            for state in State
        }

    # ------------------------------------------------------------------
    # Driving the engine
    # ------------------------------------------------------------------

    def start(self, now: float) -> None:
        """The connection is up: the router sends Session Initialization;
        both sides start the initialisation timeout."""
        if self._started:
            raise SessionError("session already started")
        self._started = True
        self._now = self._last_rx = now
        init = self.config.init_timeout_ms
        self._deadline = now + (init / 1000.0 if init is not None else 4 * self._hb)
        for a in self.config.ipv4_addresses:
            self._own_l3.v4.add(a)
        for b in self.config.ipv6_addresses:
            self._own_l3.v6.add(b)
        for n in self.config.ipv4_subnets:
            self._own_l3.v4net.add(n)
        for n6 in self.config.ipv6_subnets:
            self._own_l3.v6net.add(n6)
        if self.role is Role.ROUTER:
            items: list[DataItem] = [
                HeartbeatInterval(self.config.heartbeat_interval_ms),
                self.config.peer_type,
            ]
            if self.config.offered_extensions:
                items.append(ExtensionsSupported(self.config.offered_extensions))
            items += self._own_l3.items()
            self._send(M.SESSION_INITIALIZATION, items)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes arrived on the connection (any split; framing is handled)."""
        self._now = now
        self._api_call = False
        if self.state is State.RESET:
            return
        for raw in self._framer.feed(data):
            if self.closed:
                break
            self._receive_message(raw)

    def connection_lost(self, now: float, reason: str = "connection lost") -> None:
        """The TCP connection ended (RFC 8175 §7.5.1: straight to Session Reset)."""
        self._now = now
        self._api_call = False
        if self.state is not State.RESET:
            if self._cause is not None and self.state is State.TERMINATING:
                status, why, by_peer = self._cause
                self._reset(status, f"{why} (connection closed before response)", by_peer)
            else:
                self._reset(None, reason, True)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called (None: no timer)."""
        st = self.state
        if st is State.IN_SESSION:
            assert self._peer_hb is not None
            t = min(
                self._last_tx + self._hb,
                self._last_rx + self.config.missed_heartbeats * self._peer_hb,
            )
            if self._lcr_pending:
                for d in self._dests.values():
                    if d.lcr_deadline is not None and d.lcr_deadline < t:
                        t = d.lcr_deadline
            return t
        if st is State.RESET:
            return None
        return self._deadline

    def handle_timer(self, now: float) -> None:
        """Run whatever is due at ``now`` (heartbeats, timeouts)."""
        self._now = now
        self._api_call = False
        st = self.state
        if st is State.IN_SESSION:
            assert self._peer_hb is not None
            # Compare with the same sums get_timer() returns: "now - last >=
            # interval" can be False at exactly get_timer() (float rounding).
            if now >= self._last_rx + self.config.missed_heartbeats * self._peer_hb:
                silent = now - self._last_rx
                self._terminate(
                    StatusCode.TIMED_OUT,
                    f"no message from peer for {silent:.3f} s "
                    f"({self.config.missed_heartbeats} heartbeat intervals)",
                )
                return
            if self._lcr_pending:
                for d in self._dests.values():
                    if d.lcr_deadline is not None and d.lcr_deadline <= now:
                        d.lcr_deadline = None
                        self._lcr_pending -= 1
                        self._events.append(LinkCharacteristicsTimeout(d.gw, d.ident))
            if now >= self._last_tx + self._hb:
                self._send(M.HEARTBEAT, ())
        elif st is State.INITIALIZING:
            if self._deadline is not None and now >= self._deadline:
                # No session exists yet: close without a Session Termination.
                self._reset(
                    StatusCode.TIMED_OUT,
                    "session initialisation timed out",
                    False,
                )
        elif st is State.TERMINATING and self._deadline is not None and now >= self._deadline:
            status, why, by_peer = self._cause or (None, "terminated", False)
            self._reset(status, f"{why} (no Session Termination Response)", by_peer)

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        if not self._out:
            return b""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        """The oldest pending event, or None."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """All pending events, oldest first."""
        out = list(self._events)
        self._events.clear()
        return out

    # ------------------------------------------------------------------
    # Snapshots
    # ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once in Session Reset: close the transport."""
        return self.state is State.RESET

    @property
    def destinations(self) -> dict[bytes, DestinationInfo]:
        """Destinations that are up in this session, by MAC."""
        return {
            mac: d.info()
            for mac, d in self._dests.items()
            if d.state is _DState.UP or d.state is _DState.PENDING_DOWN
        }

    def destination(self, mac: bytes | str) -> DestinationInfo | None:
        """One destination if it is up, else None."""
        d = self._dests.get(_mac_bytes(mac))
        if d is None or d.state not in (_DState.UP, _DState.PENDING_DOWN):
            return None
        return d.info()

    @property
    def peer_addresses(self) -> DestinationInfo:
        """The peer's own layer-3 information (mac empty)."""
        l3 = self._peer_l3
        return DestinationInfo(
            b"",
            self.session_metrics,
            frozenset(l3.v4),
            frozenset(l3.v6),
            frozenset(l3.v4net),
            frozenset(l3.v6net),
        )

    # ------------------------------------------------------------------
    # API: both roles
    # ------------------------------------------------------------------

    def terminate(
        self,
        status: int = StatusCode.SHUTTING_DOWN,
        text: str = "",
        now: float | None = None,
    ) -> None:
        """Send Session Termination and wait (bounded) for the response."""
        self._tick(now)
        if self.state is State.RESET or self.state is State.TERMINATING:
            return
        if not self._started:
            raise SessionError("session not started")
        _status(status, text)  # a bad code or text is the caller's error
        if self.state is State.INITIALIZING and self.role is Role.MODEM:
            # Nothing may be sent before Session Initialization arrives (§7.2).
            self._reset(status, text or "closed by application", False)
            return
        self._terminate(status, text or "closed by application", text=text)

    def update_session(
        self,
        metrics: Metrics | None = None,
        *,
        add: Iterable[L3Item | str] = (),
        drop: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Send a Session Update: session-wide metrics (modem only), our own
        address changes and/or items of negotiated extensions (``extra``).
        Coalesced while one is outstanding (§8)."""
        self._tick(now)
        self._require_in_session()
        self._check_extra(M.SESSION_UPDATE, extra)
        metrics = metrics or Metrics()
        if not metrics.is_empty():
            if self.role is Role.ROUTER:
                raise SessionError("only a modem sends metrics in Session Update (RFC 8175 §12.7)")
            self._check_metrics(metrics)
        l3 = _l3_items(add, True) + _l3_items(drop, False)
        new, problems = self._l3_apply(_SELF, self._own_l3, l3)
        if problems:
            raise SessionError("update_session: " + "; ".join(problems))
        self._l3_commit(_SELF, self._own_l3, new)
        self._own_l3 = new
        if self.role is Role.MODEM:
            metrics = self.session_metrics.changed_in(metrics)
            self.session_metrics = self.session_metrics.merged(metrics)
        if metrics.is_empty() and not l3 and not extra:
            return
        if self._session_req_out:
            if self._pending_session is None:
                self._pending_session = (metrics, list(l3), list(extra))
            else:
                pm, pl, pe = self._pending_session
                self._pending_session = (
                    pm.merged(metrics),
                    _coalesce_l3(pl, l3),
                    pe + list(extra),
                )
            return
        self._send_session_update(metrics, l3, extra)

    def send_message(
        self, message_type: int, items: Iterable[DataItem], *, now: float | None = None
    ) -> None:
        """Send a message defined by a negotiated extension (e.g. Credit Control).

        Refused (SessionError) for core messages, unknown types and
        extensions not in use on this session.
        """
        self._tick(now)
        self._require_in_session()
        spec = self._registry.messages.get(message_type)
        owners = self._registry.message_owners.get(message_type)
        if spec is None or not owners:
            raise SessionError(
                f"send_message is for extension messages; {message_name(message_type)} is not one"
            )
        if owners.isdisjoint(self.extensions):
            names = "/".join(str(o) for o in sorted(owners))
            raise SessionError(
                f"{spec.name} belongs to extension {names}, not negotiated on this session"
            )
        items = list(items)
        self._check_extra(message_type, items)
        self._send(message_type, items)

    def emit(self, event: Event) -> None:
        """Queue an application event (for extension hooks)."""
        self._events.append(event)

    def is_up(self, mac: bytes | str) -> bool:
        """True if the destination is up (or going down) in this session."""
        d = self._dests.get(_mac_bytes(mac))
        return d is not None and (d.state is _DState.UP or d.state is _DState.PENDING_DOWN)

    # ------------------------------------------------------------------
    # API: modem
    # ------------------------------------------------------------------

    def add_destination(
        self,
        mac: bytes | str,
        metrics: Metrics | None = None,
        *,
        addresses: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Modem: announce a reachable destination (Destination Up)."""
        self._tick(now)
        self._require_role(Role.MODEM, "add_destination")
        self._require_in_session()
        gw = self._new_mac(mac)
        ident = self._ident_of(extra)
        key = _dest_key(gw, ident)
        if key in self._dests:
            raise SessionError(f"destination {format_mac(gw)} already exists")
        metrics = metrics or Metrics()
        self._check_metrics(metrics)
        self._check_extra(M.DESTINATION_UP, extra)
        l3 = _l3_items(addresses, True)
        d = _Dest(key, _DState.PENDING_UP, self.session_metrics.merged(metrics), gw, ident)
        new, problems = self._l3_apply(key, d.l3, l3)
        if problems:
            raise SessionError(f"add_destination {format_mac(gw)}: " + "; ".join(problems))
        rest = self._non_ident(extra)
        items: list[DataItem] = [*d.ids(), *metrics.items(), *l3, *rest]
        self._send(M.DESTINATION_UP, items)  # first: a refused message changes nothing
        self._l3_commit(key, d.l3, new)
        d.l3 = new
        for item in extra:
            d.extra[item.TYPE] = item
        d.out_req = M.DESTINATION_UP
        self._dests[key] = d
        if self._mac_len is None:
            self._mac_len = len(gw)

    def update_destination(
        self,
        mac: bytes | str,
        metrics: Metrics | None = None,
        *,
        add: Iterable[L3Item | str] = (),
        drop: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> bool:
        """Modem: report changes (Destination Update). Only metrics that
        changed are sent. Held back (coalesced, extension items included)
        while Destination Up is unanswered.

        Returns True if something was sent or queued.
        """
        self._tick(now)
        self._require_role(Role.MODEM, "update_destination")
        self._require_in_session()
        d = self._get_dest(mac, extra)
        extra = self._non_ident(extra)
        metrics = metrics or Metrics()
        self._check_metrics(metrics)
        self._check_extra(M.DESTINATION_UPDATE, extra)
        l3 = _l3_items(add, True) + _l3_items(drop, False)
        if d.state is _DState.PENDING_DOWN or d.deferred_down:
            raise SessionError(f"destination {format_mac(d.gw)} is going down")
        if d.state is _DState.AWAITING_DECISION:
            # Announced by the router, not yet answered: §12.1 forbids
            # messages about it before the Announce Response.
            raise SessionError(
                f"destination {format_mac(d.gw)} is not up (answer its Destination Announce)"
            )
        changed = d.metrics.changed_in(metrics)
        new, problems = self._l3_apply(d.mac, d.l3, l3)
        if problems:
            raise SessionError(f"update_destination {format_mac(d.gw)}: " + "; ".join(problems))
        if changed.is_empty() and not l3 and not extra:
            return False
        items: list[DataItem] = [*d.ids(), *changed.items(), *l3, *extra]
        if d.state is _DState.PENDING_UP:
            self._encode(M.DESTINATION_UPDATE, items)  # refuse now what could not be sent later
            d.deferred_metrics = (
                changed if d.deferred_metrics is None else d.deferred_metrics.merged(changed)
            )
            d.deferred_l3 = _coalesce_l3(d.deferred_l3, l3)
            d.deferred_extra += extra
        else:
            self._send(M.DESTINATION_UPDATE, items)  # first: a refused message changes nothing
        self._l3_commit(d.mac, d.l3, new)
        d.l3 = new
        d.metrics = d.metrics.merged(changed)
        for item in extra:
            d.extra[item.TYPE] = item
        return True

    def drop_destination(
        self, mac: bytes | str, *, extra: Sequence[DataItem] = (), now: float | None = None
    ) -> None:
        """Send Destination Down (modem: unreachable; router: no longer wanted).

        ``extra`` selects a destination named by identity items too (RFC 8703).
        """
        self._tick(now)
        self._require_in_session()
        d = self._get_dest(mac, extra)
        if d.state is _DState.PENDING_DOWN or d.deferred_down:
            return
        if d.state is _DState.PENDING_UP:
            d.deferred_down = True
            return
        if d.state is not _DState.UP:
            raise SessionError(f"destination {format_mac(d.gw)} is not up")
        if d.out_req is not None:
            raise TransactionInProgressError(
                f"destination {format_mac(d.gw)}: {message_name(d.out_req)} still unanswered"
            )
        d.state = _DState.PENDING_DOWN
        d.out_req = M.DESTINATION_DOWN
        self._send(M.DESTINATION_DOWN, [*d.ids()])

    def respond_link_characteristics(
        self,
        mac: bytes | str,
        status: int = StatusCode.SUCCESS,
        metrics: Metrics | None = None,
        *,
        text: str = "",
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Modem: answer a :class:`LinkCharacteristicsRequested`.

        ``metrics`` are the characteristics after processing; the response
        carries the complete declared set (§12.19), filled from the current
        values. If our Destination Down for it already went out, nothing is
        sent: the router cancels its request when the Down arrives.
        """
        self._tick(now)
        self._require_role(Role.MODEM, "respond_link_characteristics")
        self._require_in_session()
        st = _status(status, text)
        d = self._get_dest(mac, extra)
        extra = self._non_ident(extra)
        if d.peer_req != M.LINK_CHARACTERISTICS_REQUEST:
            raise SessionError(f"no Link Characteristics Request pending for {format_mac(d.gw)}")
        metrics = metrics or Metrics()
        self._check_metrics(metrics)
        self._check_extra(M.LINK_CHARACTERISTICS_RESPONSE, extra)
        d.peer_req = None
        if d.state is _DState.PENDING_DOWN:
            # Our Destination Down went out first: the router drops the
            # destination and its request on it, so an answer now would be a
            # message about a downed destination (§12.1). Nothing to send.
            return
        d.metrics = d.metrics.merged(metrics)
        full = d.metrics.restricted(self._declared)
        for item in extra:
            d.extra[item.TYPE] = item
        self._send(
            M.LINK_CHARACTERISTICS_RESPONSE,
            [*d.ids(), st, *full.items(), *extra],
        )

    def respond_destination_announce(
        self,
        mac: bytes | str,
        accept: bool,
        metrics: Metrics | None = None,
        *,
        addresses: Iterable[L3Item | str] = (),
        text: str = "",
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Modem: answer a :class:`DestinationAnnounceRequested`.

        Accepting makes the destination up (Success, with its metrics);
        refusing answers 'Request Denied' (§12.14).
        """
        self._tick(now)
        self._require_role(Role.MODEM, "respond_destination_announce")
        self._require_in_session()
        st = _status(StatusCode.SUCCESS if accept else StatusCode.REQUEST_DENIED, text)
        d = self._get_dest(mac, extra)
        extra = self._non_ident(extra)
        if d.peer_req != M.DESTINATION_ANNOUNCE:
            raise SessionError(f"no Destination Announce pending for {format_mac(d.gw)}")
        d.peer_req = None
        if not accept:
            self._drop_record(d)
            self._send(
                M.DESTINATION_ANNOUNCE_RESPONSE,
                [*d.ids(), st],
            )
            return
        metrics = metrics or Metrics()
        self._check_metrics(metrics)
        self._check_extra(M.DESTINATION_ANNOUNCE_RESPONSE, extra)
        l3 = _l3_items(addresses, True)
        new, problems = self._l3_apply(d.mac, d.l3, l3)
        if problems:
            raise SessionError("respond_destination_announce: " + "; ".join(problems))
        for item in extra:
            d.extra[item.TYPE] = item
        self._l3_commit(d.mac, d.l3, new)
        d.l3 = new
        d.metrics = d.metrics.merged(metrics)
        d.state = _DState.UP
        self._send(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            [
                *d.ids(),
                st,
                *d.metrics.restricted(self._declared).items(),
                *d.l3.items(),
                *extra,
            ],
        )
        self._events.append(DestinationUp(d.info(), announced=True))

    # ------------------------------------------------------------------
    # API: router
    # ------------------------------------------------------------------

    def announce_destination(
        self,
        mac: bytes | str,
        *,
        addresses: Iterable[Ipv4Address | Ipv6Address | str] = (),
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Router: ask the modem about a destination (Destination Announce)."""
        self._tick(now)
        self._require_role(Role.ROUTER, "announce_destination")
        self._require_in_session()
        self._check_extra(M.DESTINATION_ANNOUNCE, extra)
        gw = self._new_mac(mac)
        ident = self._ident_of(extra)
        key = _dest_key(gw, ident)
        if key in self._dests:
            raise SessionError(f"destination {format_mac(gw)} is already known")
        l3 = _l3_items(addresses, True)
        if any(isinstance(i, Ipv4AttachedSubnet | Ipv6AttachedSubnet) for i in l3):
            raise SessionError("Destination Announce carries addresses only, not subnets")
        d = _Dest(key, _DState.PENDING_UP, self.session_metrics, gw, ident)
        self._send(M.DESTINATION_ANNOUNCE, [*d.ids(), *l3, *self._non_ident(extra)])
        d.out_req = M.DESTINATION_ANNOUNCE
        self._dests[key] = d
        if self._mac_len is None:
            self._mac_len = len(gw)

    def request_link_characteristics(
        self,
        mac: bytes | str,
        *,
        cdrr: int | None = None,
        cdrt: int | None = None,
        latency: int | None = None,
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Router: ask for a data rate and/or latency (§12.18), and/or what a
        negotiated extension adds (``extra``, e.g. RFC 8629 Hop Control)."""
        self._tick(now)
        self._require_role(Role.ROUTER, "request_link_characteristics")
        self._require_in_session()
        d = self._get_dest(mac, extra)
        extra = self._non_ident(extra)
        if d.state is not _DState.UP:
            raise SessionError(f"destination {format_mac(d.gw)} is not up")
        if d.out_req is not None:
            raise TransactionInProgressError(
                f"destination {format_mac(d.gw)}: {message_name(d.out_req)} still unanswered"
            )
        req = Metrics(cdrr=cdrr, cdrt=cdrt, latency=latency)
        self._check_extra(M.LINK_CHARACTERISTICS_REQUEST, extra)
        if req.is_empty() and not extra:
            raise SessionError("request_link_characteristics: give cdrr, cdrt or latency")
        _validate(req)
        items: list[DataItem] = [*d.ids(), *req.items(), *extra]
        self._encode(M.LINK_CHARACTERISTICS_REQUEST, items)  # refuse before changing state
        d.out_req = M.LINK_CHARACTERISTICS_REQUEST
        lt = self.config.link_characteristics_timeout_ms
        if lt is not None:
            d.lcr_deadline = self._now + lt / 1000.0
            self._lcr_pending += 1
        self._send(M.LINK_CHARACTERISTICS_REQUEST, items)

    def respond_destination_up(
        self,
        mac: bytes | str,
        accept: bool,
        *,
        extra: Sequence[DataItem] = (),
        now: float | None = None,
    ) -> None:
        """Router with auto-accept off: answer a :class:`DestinationUpRequested`
        with Success or 'Not Interested' (``extra``: identity items, RFC 8703)."""
        self._tick(now)
        self._require_role(Role.ROUTER, "respond_destination_up")
        self._require_in_session()
        d = self._get_dest(mac, extra)
        if d.state is not _DState.AWAITING_DECISION:
            raise SessionError(f"no Destination Up pending for {format_mac(d.gw)}")
        d.peer_req = None
        if accept:
            d.state = _DState.UP
            self._send(M.DESTINATION_UP_RESPONSE, [*d.ids(), Status(0)])
            self._events.append(DestinationUp(d.info()))
            if d.out_req is None:
                self._flush_deferred(d)
        else:
            self._drop_record(d)
            self._send(
                M.DESTINATION_UP_RESPONSE,
                [*d.ids(), Status(StatusCode.NOT_INTERESTED)],
            )

    # ------------------------------------------------------------------
    # Receive path
    # ------------------------------------------------------------------

    def _receive_message(self, raw: bytes) -> None:
        if self.config.profile is not None:
            raw = self.config.profile.from_wire(raw)
        try:
            msg = decode_message(raw, self._registry, extensions=self._ext_filter)
        except DecodeError as exc:
            self._protocol_error(exc.status, str(exc))
            return
        mt = msg.type
        self.rx_counts[mt] = self.rx_counts.get(mt, 0) + 1
        handler = self._dispatch[self.state].get(mt)
        if handler is None:
            st = self.state
            if st is State.TERMINATING or st is State.RESET:
                return  # §7.4: silently ignored
            self._protocol_error(
                StatusCode.UNEXPECTED_MESSAGE,
                f"{message_name(mt)} not expected by a {self.role.value} in state {st.value}",
            )
            return
        # Any valid message resets the peer-silence timer (§7.3.1).
        self._last_rx = self._now
        if mt != M.SESSION_TERMINATION and self.state is not State.TERMINATING:
            for item in msg.items:
                if isinstance(item, Status) and is_terminate(item.code):
                    # §12.2: echo a 'Terminate' status back in Session Termination.
                    detail = f": {item.text}" if item.text else ""
                    self._terminate(
                        item.code,
                        f"peer reported {status_name(item.code)} in {message_name(mt)}{detail}",
                        text=item.text,
                        by_peer=True,
                    )
                    return
        if self._active and mt not in self._ext_messages and not self._plugin_items(msg):
            return
        handler(msg)

    def _protocol_error(self, status: int, reason: str) -> None:
        self.error_counts[status] = self.error_counts.get(status, 0) + 1
        st = self.state
        if st is State.TERMINATING or st is State.RESET:
            return
        if st is State.INITIALIZING and self.role is Role.MODEM:
            # §7.2: send nothing, close the connection.
            self._reset(status, reason, True)
            return
        self._terminate(status, reason, by_peer=True)

    # -- session-level handlers -----------------------------------------

    def _on_session_init(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        hb = msg.get(HeartbeatInterval)
        pt = msg.get(PeerType)
        assert hb is not None and pt is not None  # required by the codec rules
        offered = msg.get(ExtensionsSupported)
        theirs = frozenset(offered.extensions) if offered else frozenset()
        problems = self._check_init_l3(parts.l3)
        if problems:
            # A malformed Session Initialization: §7.2 says close silently.
            self._protocol_error(StatusCode.INVALID_DATA, "; ".join(problems))
            return
        self._peer_hb = hb.milliseconds / 1000.0
        self.peer_heartbeat_ms = hb.milliseconds
        self.peer_type = pt
        self.extensions = frozenset(self.config.offered_extensions) & theirs
        if not self._activate(msg):
            return
        declared = self.config.session_metrics
        self._declared = declared.types()
        self.session_metrics = declared
        missing = self.config.required_extensions - theirs
        base: list[DataItem] = [
            self.config.peer_type,
            HeartbeatInterval(self.config.heartbeat_interval_ms),
            *declared.items(),
        ]
        if self.extensions:
            base.append(ExtensionsSupported(tuple(sorted(self.extensions))))
        for plugin in self._active:
            base.extend(plugin.init_items(self))
        if missing:
            names = ", ".join(str(e) for e in sorted(missing))
            self._send(
                M.SESSION_INITIALIZATION_RESPONSE,
                [Status(StatusCode.REQUEST_DENIED, f"required extensions missing: {names}"), *base],
            )
            self._reset(StatusCode.REQUEST_DENIED, f"router lacks extensions {names}", False)
            return
        self._commit_peer_l3(parts.l3)
        self._send(
            M.SESSION_INITIALIZATION_RESPONSE,
            [Status(StatusCode.SUCCESS), *base, *self._own_l3.items()],
        )
        self._enter_session()

    def _on_session_init_response(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        st = parts.status
        assert st is not None
        if st.code != StatusCode.SUCCESS:
            # B.2: a refused initialisation; the router closes the connection.
            self._reset(
                st.code,
                f"modem refused the session: {status_name(st.code)}"
                + (f" ({st.text})" if st.text else ""),
                True,
            )
            return
        hb = msg.get(HeartbeatInterval)
        pt = msg.get(PeerType)
        assert hb is not None and pt is not None
        problems = self._check_init_l3(parts.l3)
        if problems:
            self._protocol_error(StatusCode.INVALID_DATA, "; ".join(problems))
            return
        offered = msg.get(ExtensionsSupported)
        theirs = frozenset(offered.extensions) if offered else frozenset()
        self._peer_hb = hb.milliseconds / 1000.0
        self.peer_heartbeat_ms = hb.milliseconds
        self.peer_type = pt
        self.extensions = frozenset(self.config.offered_extensions) & theirs
        if not self._activate(msg):
            return
        self.session_metrics = Metrics(**parts.metrics)
        self._declared = self.session_metrics.types()
        self._commit_peer_l3(parts.l3)
        self._enter_session()

    def _activate(self, msg: Message) -> bool:
        """Start the negotiated plugins and let them check the peer's init."""
        self._active = tuple(p for p in self.config.plugins if p.code in self.extensions)
        self._active_by_code = {p.code: p for p in self._active}
        table = self._dispatch[State.IN_SESSION]
        codes: set[int] = set()
        for plugin in self._active:
            self.ext_state[plugin.code] = plugin.new_state(self)
            for spec in plugin.messages:
                codes.add(spec.code)
                table[spec.code] = self._plugin_message_handler(plugin)
        self._ext_messages = frozenset(codes)
        if self.role is Role.ROUTER:
            # The Response was decoded before negotiation: now refuse items
            # of extensions that did not make it into the negotiated set
            # (§7.2). A Session Initialization may carry such items (§12.5).
            owners_of = self._registry.item_owners
            for item in msg.items:
                if isinstance(item, UnknownItem):
                    continue
                owners = owners_of.get(item.TYPE)
                if owners and owners.isdisjoint(self.extensions):
                    names = "/".join(str(o) for o in sorted(owners))
                    self._protocol_error(
                        StatusCode.INVALID_DATA,
                        f"Session Initialization Response carries {item.NAME} of extension "
                        f"{names}, which is not in use on this session (§7.2)",
                    )
                    return False
        try:
            for plugin in self._active:
                plugin.on_peer_init(self, msg)
        except ProtocolViolation as v:
            self._protocol_error(v.status, v.reason)
            return False
        return True

    def _plugin_message_handler(self, plugin: SessionPlugin) -> Callable[[Message], None]:
        def handle(msg: Message) -> None:
            try:
                plugin.on_message(self, msg)
            except ProtocolViolation as v:
                self._protocol_error(v.status, v.reason)

        return handle

    def _plugin_items(self, msg: Message) -> bool:
        """Hand extension items in a core message to their plugins first.

        A plugin sees its items; an item several active extensions define
        (RFC 9893's, shared by 9894 and 9895) goes to the lowest-numbered one.
        A plugin whose ``observes`` lists the message type is called even when
        the message carries none of its items (e.g. to enforce an item its
        extension makes mandatory there). Plugins sharing one state object
        are called once.
        """
        owners_of = self._registry.item_owners
        active = self._active_by_code
        groups: dict[int, list[DataItem]] = {}
        for item in msg.items:
            if isinstance(item, UnknownItem):
                continue
            owners = owners_of.get(item.TYPE)
            if owners:
                live = [c for c in owners if c in active]
                if live:
                    groups.setdefault(min(live), []).append(item)
        for plugin in self._active:
            if msg.type in getattr(plugin, "observes", ()) and plugin.code not in groups:
                groups[plugin.code] = []
        if not groups:
            return True
        seen_states: set[int] = set()
        for code in sorted(groups):
            state = self.ext_state.get(code)
            if state is not None:
                if id(state) in seen_states:
                    del groups[code]
                    continue
                seen_states.add(id(state))
        mac = msg.get(MacAddress)
        dest = mac.address if mac is not None else None
        try:
            for code, items in groups.items():
                self._active_by_code[code].on_items(self, msg, dest, items)
        except ProtocolViolation as v:
            response = _RESPONSE_OF.get(MessageType(msg.type)) if msg.type in _RESPONSE_OF else None
            if v.respond and response is not None and self.state is State.IN_SESSION:
                mac = msg.get(MacAddress)
                names: list[DataItem] = []
                if mac is not None:
                    names = [mac]
                    names += [
                        i
                        for i in msg.items
                        if not isinstance(i, UnknownItem) and i.TYPE in self._ident_types
                    ]
                try:
                    self._out.append(
                        self._encode(response, [*names, Status(v.status, v.reason[:200])])
                    )
                    self.tx_counts[response] = self.tx_counts.get(response, 0) + 1
                except SessionError:
                    pass  # could not name the destination: terminate only
            self._protocol_error(v.status, v.reason)
            return False
        return True

    def _enter_session(self) -> None:
        self.state = State.IN_SESSION
        self._deadline = None
        self._ext_filter = self.extensions
        self._last_rx = self._now
        assert self._peer_hb is not None and self.peer_type is not None
        self._events.append(
            SessionUp(
                self.peer_type,
                self.peer_heartbeat_ms or 0,
                self.config.heartbeat_interval_ms,
                self.extensions,
                self.session_metrics,
                frozenset(self._peer_l3.v4),
                frozenset(self._peer_l3.v6),
            )
        )

    def _check_init_l3(self, l3: list[L3Item]) -> list[str]:
        bad = [i for i in l3 if not i.add]
        if bad:
            return [f"{i.NAME} with the Add/Drop flag clear in session initialisation" for i in bad]
        _, problems = self._l3_apply(_PEER, self._peer_l3, l3)
        return problems

    def _commit_peer_l3(self, l3: list[L3Item]) -> None:
        new, _ = self._l3_apply(_PEER, self._peer_l3, l3)
        self._l3_commit(_PEER, self._peer_l3, new)
        self._peer_l3 = new

    def _on_session_update(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        if parts.metrics:
            if self.role is Role.MODEM:
                self._protocol_error(
                    StatusCode.INVALID_DATA, "router sent metrics in a Session Update (§12.7)"
                )
                return
            if not self._metrics_declared(parts.metrics, msg.type):
                return
        new, problems = self._l3_apply(_PEER, self._peer_l3, parts.l3)
        if problems:
            # §13.8.1: inconsistent addresses in a session message end it.
            self._protocol_error(StatusCode.INVALID_DATA, "Session Update: " + "; ".join(problems))
            return
        self._l3_commit(_PEER, self._peer_l3, new)
        self._peer_l3 = new
        changed = Metrics(**parts.metrics)
        if parts.metrics:
            self.session_metrics = self.session_metrics.merged(changed)
            # §12.7: session-wide metrics apply to every destination.
            for d in self._dests.values():
                d.metrics = d.metrics.merged(changed)
        self._send(M.SESSION_UPDATE_RESPONSE, [Status(StatusCode.SUCCESS)])
        self._events.append(
            SessionUpdated(
                changed,
                self.session_metrics,
                frozenset(self._peer_l3.v4),
                frozenset(self._peer_l3.v6),
            )
        )

    def _on_session_update_response(self, msg: Message) -> None:
        if not self._session_req_out:
            self._protocol_error(
                StatusCode.UNEXPECTED_MESSAGE, "Session Update Response without a Session Update"
            )
            return
        self._session_req_out = False
        st = msg.get(Status)
        if st is not None and st.code != StatusCode.SUCCESS:
            self._events.append(ResponseStatus(msg.type, st.code, st.text))
        if self._pending_session is not None:
            metrics, l3, extra = self._pending_session
            self._pending_session = None
            if not metrics.is_empty() or l3 or extra:  # changes may have cancelled out
                self._send_session_update(metrics, l3, extra)

    def _send_session_update(
        self, metrics: Metrics, l3: list[L3Item], extra: Sequence[DataItem] = ()
    ) -> None:
        self._session_req_out = True
        self._send(M.SESSION_UPDATE, [*metrics.items(), *l3, *extra])
        if not metrics.is_empty():
            # §12.7: the router applies these to every destination when this
            # message arrives; mirror that now, in wire order (a coalesced
            # update goes out after later destination messages), so our view
            # stays equal to the router's and change-only updates stay right.
            for d in self._dests.values():
                d.metrics = d.metrics.merged(metrics)
                if d.deferred_metrics is not None:
                    d.deferred_metrics = _without(d.deferred_metrics, metrics)

    def _on_termination(self, msg: Message) -> None:
        st = msg.get(Status)
        code = st.code if st is not None else None
        self._send(M.SESSION_TERMINATION_RESPONSE, ())
        if self.state is State.TERMINATING and self._cause is not None:
            status, why, by_peer = self._cause
            self._reset(status, why, by_peer)
            return
        text = f": {st.text}" if st is not None and st.text else ""
        name = status_name(code) if code is not None else "no status"
        self._reset(code, f"peer terminated the session ({name}){text}", True)

    def _on_termination_response(self, msg: Message) -> None:
        status, why, by_peer = self._cause or (None, "terminated", False)
        self._reset(status, why, by_peer)

    def _on_heartbeat(self, msg: Message) -> None:
        pass  # its only effect, resetting the silence timer, is already done

    # -- destination handlers --------------------------------------------

    def _dest_for(self, parts: _Parts, msg: Message) -> _Dest | None:
        """The record a destination message refers to; None after an error."""
        mac = parts.mac
        assert mac is not None  # required by the codec rules
        if self._mac_len is not None and len(mac) != self._mac_len:
            self._protocol_error(
                StatusCode.INVALID_DATA,
                f"{message_name(msg.type)}: {len(mac)}-octet MAC in a session using "
                f"{self._mac_len}-octet MACs (§13.7)",
            )
            return None
        d = self._dests.get(parts.key)
        if d is None:
            self._protocol_error(
                StatusCode.INVALID_DESTINATION,
                f"{message_name(msg.type)} for unannounced destination {format_mac(mac)}"
                + (" (with its identity items)" if parts.ident else ""),
            )
        return d

    def _check_peer_request(self, d: _Dest, msg: Message) -> bool:
        if d.peer_req is not None:
            self._protocol_error(
                StatusCode.UNEXPECTED_MESSAGE,
                f"{message_name(msg.type)} for {format_mac(d.gw)} while its "
                f"{message_name(d.peer_req)} is still unanswered (§8)",
            )
            return False
        return True

    def _metrics_declared(self, metrics: dict[str, int], mtype: int) -> bool:
        declared = self._declared
        for name in metrics:
            t = _TYPE_OF_FIELD[name]
            if t not in declared:
                self._protocol_error(
                    StatusCode.INVALID_DATA,
                    f"{message_name(mtype)} carries metric {name.upper()} that the Session "
                    "Initialization Response did not declare (§12.6)",
                )
                return False
        return True

    def _on_destination_up(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        mac = parts.mac
        assert mac is not None
        if self._mac_len is not None and len(mac) != self._mac_len:
            self._protocol_error(
                StatusCode.INVALID_DATA,
                f"Destination Up: {len(mac)}-octet MAC in a session using {self._mac_len}-octet"
                " MACs (§13.7)",
            )
            return
        if parts.metrics and not self._metrics_declared(parts.metrics, msg.type):
            return
        key = parts.key
        ids = parts.ids()
        d = self._dests.get(key)
        if d is not None:
            if not self._check_peer_request(d, msg):
                return
            if d.state is _DState.UP:
                # A repeated Destination Up: accept it as a refresh.
                self._apply_dest_update(d, parts, msg.type)
                self._send(M.DESTINATION_UP_RESPONSE, [*ids, Status(0)])
                return
        old = d
        self._mac_len = len(mac)
        d = _Dest(
            key,
            _DState.UP,
            self.session_metrics.merged(Metrics(**parts.metrics)),
            mac,
            tuple(parts.ident),
        )
        new, problems = self._l3_apply(key, d.l3, parts.l3)
        if problems:
            # §13.8.1: MAY answer 'Inconsistent Data'; the destination is not added.
            self._events.append(Inconsistency(msg.type, "; ".join(problems), mac))
            self._send(
                M.DESTINATION_UP_RESPONSE,
                [*ids, Status(StatusCode.INCONSISTENT_DATA, "; ".join(problems)[:200])],
            )
            return
        if old is not None:
            # Crossing our own Announce / Down: answer, and let the newer win.
            self._drop_record(old)
            if old.state is _DState.PENDING_UP:
                # Our Announce is still outstanding: its response must be
                # accepted when it comes (see _on_destination_announce_response).
                d.out_req = old.out_req
                d.deferred_down = old.deferred_down
        self._l3_commit(key, d.l3, new)
        d.l3 = new
        for item in parts.extra:
            d.extra[item.TYPE] = item
        self._dests[key] = d
        if self.config.auto_accept_destinations:
            self._send(M.DESTINATION_UP_RESPONSE, [*ids, Status(0)])
            self._events.append(DestinationUp(d.info()))
        else:
            d.state = _DState.AWAITING_DECISION
            d.peer_req = M.DESTINATION_UP
            self._events.append(DestinationUpRequested(d.info()))

    def _answered(self, msg: Message, request: int, what: str) -> tuple[_Parts, _Dest] | None:
        """The destination a response is about, if our ``request`` for it is
        outstanding; otherwise the session ends (131 unknown, 129 unasked)."""
        parts = _split(msg, self._ident_types)
        d = self._dest_for(parts, msg)
        if d is None:
            return None
        if d.out_req != request:
            spec = self._registry.messages[msg.type]
            self._protocol_error(
                StatusCode.UNEXPECTED_MESSAGE,
                f"{spec.name} for {format_mac(d.gw)} without {what}",
            )
            return None
        return parts, d

    def _on_destination_up_response(self, msg: Message) -> None:
        found = self._answered(msg, M.DESTINATION_UP, "a Destination Up")
        if found is None:
            return
        parts, d = found
        d.out_req = None
        st = parts.status
        assert st is not None
        if st.code != StatusCode.SUCCESS:
            # §12.12: no further messages about this destination.
            self._drop_record(d)
            self._events.append(DestinationRefused(d.gw, st.code, st.text, d.ident))
            return
        d.state = _DState.UP
        self._events.append(DestinationUp(d.info()))
        self._flush_deferred(d)

    def _flush_deferred(self, d: _Dest) -> None:
        m = d.deferred_metrics or Metrics()
        if not m.is_empty() or d.deferred_l3 or d.deferred_extra:
            # The latest value of each extension item (repeats are not allowed).
            extra = list({item.TYPE: item for item in d.deferred_extra}.values())
            self._send(M.DESTINATION_UPDATE, [*d.ids(), *m.items(), *d.deferred_l3, *extra])
        d.deferred_metrics = None
        d.deferred_l3 = []
        d.deferred_extra = []
        if d.deferred_down:
            d.deferred_down = False
            d.state = _DState.PENDING_DOWN
            d.out_req = M.DESTINATION_DOWN
            self._send(M.DESTINATION_DOWN, [*d.ids()])

    def _on_destination_update(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        d = self._dest_for(parts, msg)
        if d is None:
            return
        if d.state is _DState.PENDING_DOWN:
            return  # crossed our Destination Down; it is going away anyway
        if d.state is not _DState.UP:
            self._protocol_error(
                StatusCode.INVALID_DESTINATION,
                f"Destination Update for {format_mac(d.gw)} before it was accepted",
            )
            return
        if parts.metrics and not self._metrics_declared(parts.metrics, msg.type):
            return
        self._apply_dest_update(d, parts, msg.type)

    def _apply_dest_update(self, d: _Dest, parts: _Parts, mtype: int) -> None:
        changed = Metrics(**parts.metrics) if parts.metrics else _EMPTY
        if parts.metrics:
            d.metrics = d.metrics.merged(changed)
        if parts.l3:
            new, problems = self._l3_apply(d.mac, d.l3, parts.l3, partial=True)
            self._l3_commit(d.mac, d.l3, new)
            d.l3 = new
            if problems:
                # §13.8.1: no response to carry it, so skip and carry on.
                self._events.append(Inconsistency(mtype, "; ".join(problems), d.mac))
        for item in parts.extra:
            d.extra[item.TYPE] = item
        self._events.append(DestinationUpdate(d.info(), changed))

    def _on_destination_announce(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        mac = parts.mac
        assert mac is not None
        if self._mac_len is not None and len(mac) != self._mac_len:
            self._protocol_error(
                StatusCode.INVALID_DATA,
                f"Destination Announce: {len(mac)}-octet MAC in a session using "
                f"{self._mac_len}-octet MACs (§13.7)",
            )
            return
        key = parts.key
        ids = parts.ids()
        d = self._dests.get(key)
        if d is not None:
            if not self._check_peer_request(d, msg):
                return
            if d.state is _DState.UP or d.state is _DState.PENDING_UP:
                self._send(
                    M.DESTINATION_ANNOUNCE_RESPONSE,
                    [
                        *ids,
                        Status(StatusCode.SUCCESS),
                        *d.metrics.restricted(self._declared).items(),
                        *d.l3.items(),
                    ],
                )
                if d.state is _DState.PENDING_UP:
                    return
                return
            self._send(
                M.DESTINATION_ANNOUNCE_RESPONSE,
                [*ids, Status(StatusCode.REQUEST_DENIED, "destination going down")],
            )
            return
        self._mac_len = len(mac)
        d = _Dest(key, _DState.AWAITING_DECISION, self.session_metrics, mac, tuple(parts.ident))
        d.peer_req = M.DESTINATION_ANNOUNCE
        self._dests[key] = d
        v4 = frozenset(i.address for i in parts.l3 if isinstance(i, Ipv4Address))
        v6 = frozenset(i.address for i in parts.l3 if isinstance(i, Ipv6Address))
        self._events.append(DestinationAnnounceRequested(mac, v4, v6, tuple(parts.ident)))

    def _on_destination_announce_response(self, msg: Message) -> None:
        found = self._answered(msg, M.DESTINATION_ANNOUNCE, "an Announce")
        if found is None:
            return
        parts, d = found
        d.out_req = None
        st = parts.status
        assert st is not None
        if d.state is not _DState.PENDING_UP:
            # The peer's Destination Up crossed our Announce and already made
            # the destination known; this response only ends our transaction.
            if st.code != StatusCode.SUCCESS:
                self._events.append(ResponseStatus(msg.type, st.code, st.text, d.mac))
            if d.state is _DState.UP:
                self._flush_deferred(d)
            return
        if st.code != StatusCode.SUCCESS:
            self._drop_record(d)
            self._events.append(DestinationRefused(d.gw, st.code, st.text, d.ident))
            return
        if parts.metrics and not self._metrics_declared(parts.metrics, msg.type):
            return
        d.metrics = d.metrics.merged(Metrics(**parts.metrics))
        new, problems = self._l3_apply(d.mac, d.l3, parts.l3, partial=True)
        self._l3_commit(d.mac, d.l3, new)
        d.l3 = new
        if problems:
            self._events.append(Inconsistency(msg.type, "; ".join(problems), d.mac))
        for item in parts.extra:
            d.extra[item.TYPE] = item
        d.state = _DState.UP
        self._events.append(DestinationUp(d.info(), announced=True))
        self._flush_deferred(d)  # a drop_destination() held back meanwhile

    def _on_destination_down(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        d = self._dest_for(parts, msg)
        if d is None:
            return
        if not self._check_peer_request(d, msg):
            return
        if d.state is _DState.PENDING_UP or d.state is _DState.AWAITING_DECISION:
            self._protocol_error(
                StatusCode.INVALID_DESTINATION,
                f"Destination Down for {format_mac(d.gw)}, which is not up",
            )
            return
        if d.out_req == M.DESTINATION_DOWN:
            # Both sides sent Destination Down (§12.15 lets either): answer;
            # the record goes when the response to ours arrives.
            self._send(M.DESTINATION_DOWN_RESPONSE, [*d.ids(), Status(StatusCode.SUCCESS)])
            return
        was_up = d.state is _DState.UP or d.state is _DState.PENDING_DOWN
        self._drop_record(d)
        self._send(M.DESTINATION_DOWN_RESPONSE, [*d.ids(), Status(StatusCode.SUCCESS)])
        if was_up:
            self._events.append(DestinationDown(d.gw, by_peer=True, ident=d.ident))

    def _on_destination_down_response(self, msg: Message) -> None:
        found = self._answered(msg, M.DESTINATION_DOWN, "a Destination Down")
        if found is None:
            return
        parts, d = found
        st = parts.status
        assert st is not None
        self._drop_record(d)
        if st.code != StatusCode.SUCCESS:
            self._events.append(ResponseStatus(msg.type, st.code, st.text, d.mac))
        self._events.append(DestinationDown(d.gw, by_peer=False, ident=d.ident))

    def _on_link_characteristics_request(self, msg: Message) -> None:
        parts = _split(msg, self._ident_types)
        d = self._dest_for(parts, msg)
        if d is None:
            return
        if not self._check_peer_request(d, msg):
            return
        if d.state is _DState.PENDING_DOWN:
            # Crossed our Destination Down: the router drops the destination,
            # and with it this request, when the Down arrives.
            return
        if d.state is not _DState.UP:
            self._protocol_error(
                StatusCode.INVALID_DESTINATION,
                f"Link Characteristics Request for {format_mac(d.gw)}, which is not up",
            )
            return
        d.peer_req = M.LINK_CHARACTERISTICS_REQUEST
        m = parts.metrics
        self._events.append(
            LinkCharacteristicsRequested(
                d.gw, m.get("cdrr"), m.get("cdrt"), m.get("latency"), d.ident
            )
        )

    def _on_link_characteristics_response(self, msg: Message) -> None:
        found = self._answered(msg, M.LINK_CHARACTERISTICS_REQUEST, "a request")
        if found is None:
            return
        parts, d = found
        if parts.metrics and not self._metrics_declared(parts.metrics, msg.type):
            return
        d.out_req = None
        if d.lcr_deadline is not None:
            d.lcr_deadline = None
            self._lcr_pending -= 1
        st = parts.status
        assert st is not None
        changed = Metrics(**parts.metrics)
        d.metrics = d.metrics.merged(changed)
        for item in parts.extra:
            d.extra[item.TYPE] = item
        self._events.append(LinkCharacteristicsResponse(d.gw, st.code, d.metrics, st.text, d.ident))

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------

    def _tick(self, now: float | None) -> None:
        # Every API method starts here: what it sends is the application's,
        # so extensions' sender-side rules apply (see _encode).
        self._api_call = True
        if now is not None:
            self._now = now

    def _encode(self, mtype: int, items: Iterable[DataItem]) -> bytes:
        items = tuple(items)
        if self._api_call and self._active:
            for plugin in self._active:
                check = getattr(plugin, "check_outgoing", None)
                if check is not None:
                    try:
                        check(self, mtype, items)
                    except ValueError as exc:
                        raise SessionError(str(exc)) from None
        try:
            data = encode_message(Message(mtype, items), self._registry)
        except EncodeError as exc:
            raise SessionError(str(exc)) from None
        profile = self.config.profile
        return data if profile is None else profile.to_wire(data)

    def _send(self, mtype: int, items: Iterable[DataItem]) -> None:
        if self._active and mtype in _RESPONSES:
            items = list(items)
            mac = next((i.address for i in items if isinstance(i, MacAddress)), None)
            for plugin in self._active:
                items.extend(plugin.response_items(self, mtype, mac))
        data = self._encode(mtype, items)
        self._out.append(data)
        self._last_tx = self._now
        self.tx_counts[mtype] = self.tx_counts.get(mtype, 0) + 1

    def _terminate(
        self, status: int, reason: str, *, text: str | None = None, by_peer: bool = False
    ) -> None:
        """Send Session Termination and enter the Session Termination state."""
        if text is None:
            text = reason[:200]
        status = int(status)
        self._cause = (status, reason, by_peer)
        self._send(M.SESSION_TERMINATION, [Status(status, text)])
        self.state = State.TERMINATING
        hb = self._peer_hb if self._peer_hb is not None else self._hb
        self._deadline = self._now + self.config.termination_intervals * hb

    def _reset(self, status: int | None, reason: str, by_peer: bool) -> None:
        """Session Reset (§7.5): drop everything, no Destination Down sent."""
        gone = tuple(
            mac
            for mac, d in self._dests.items()
            if d.state is _DState.UP or d.state is _DState.PENDING_DOWN
        )
        for plugin in self._active:
            for mac in list(self._dests):
                plugin.on_destination_gone(self, mac)
        self._dests.clear()
        self._owner.clear()
        self._pending_session = None
        self._lcr_pending = 0
        self.state = State.RESET
        self._deadline = None
        code = None if status is None else int(status)
        self._events.append(SessionTerminated(code, reason, by_peer, gone))

    def _drop_record(self, d: _Dest) -> None:
        for plugin in self._active:
            plugin.on_destination_gone(self, d.mac)
        for key in d.l3.all_keys():
            if self._owner.get(key) == d.mac:
                del self._owner[key]
        if d.lcr_deadline is not None:
            d.lcr_deadline = None
            self._lcr_pending -= 1
        self._dests.pop(d.mac, None)

    def _require_in_session(self) -> None:
        if self.state is not State.IN_SESSION:
            if self.state is State.RESET or self.state is State.TERMINATING:
                raise SessionClosedError(f"session is {self.state.value}")
            raise SessionError(f"session is {self.state.value}, not in-session")

    def _require_role(self, role: Role, what: str) -> None:
        if self.role is not role:
            raise SessionError(f"{what} is a {role.value} operation; this is a {self.role.value}")

    def _get_dest(self, mac: bytes | str, extra: Sequence[DataItem] = ()) -> _Dest:
        gw = _mac_bytes(mac)
        ident = self._ident_of(extra)
        d = self._dests.get(_dest_key(gw, ident))
        if d is None:
            raise UnknownDestinationError(f"no destination {format_mac(gw)} in this session")
        return d

    def _ident_of(self, extra: Sequence[DataItem]) -> tuple[DataItem, ...]:
        """The identity items among ``extra`` (RFC 8703 Link Identifier)."""
        if not self._ident_types:
            return ()
        return tuple(i for i in extra if i.TYPE in self._ident_types)

    def _non_ident(self, extra: Sequence[DataItem]) -> list[DataItem]:
        if not self._ident_types:
            return list(extra)
        return [i for i in extra if i.TYPE not in self._ident_types]

    def _new_mac(self, mac: bytes | str) -> bytes:
        key = _mac_bytes(mac)
        if self._mac_len is not None and len(key) != self._mac_len:
            raise SessionError(
                f"{format_mac(key)}: this session uses {self._mac_len}-octet MAC addresses (§13.7)"
            )
        return key

    def _check_metrics(self, metrics: Metrics) -> None:
        _validate(metrics)
        undeclared = metrics.types() - self._declared
        if undeclared:
            names = ", ".join(sorted(FIELD_OF_TYPE[t] for t in undeclared))
            raise SessionError(
                f"metrics {names} were not declared at session initialisation (§12.6); "
                "restart the session to use them"
            )

    def _check_extra(self, mtype: int, extra: Sequence[DataItem]) -> None:
        for item in extra:
            owners = self._registry.item_owners.get(item.TYPE)
            if owners and owners.isdisjoint(self.extensions):
                names = "/".join(str(o) for o in sorted(owners))
                raise SessionError(
                    f"{item.NAME} belongs to extension {names}, not negotiated on this session"
                )

    def _l3_apply(
        self, owner: bytes, cur: _L3, items: Iterable[L3Item], *, partial: bool = False
    ) -> tuple[_L3, list[str]]:
        """Apply add/drop items to a copy of ``cur``; list the inconsistencies.

        Inconsistent items are skipped; callers decide whether the result
        may be committed (``partial``) or the whole message is refused.
        """
        items = tuple(items)
        if not items:
            return cur, []
        new = cur.copy()
        problems: list[str] = []
        owner_of = self._owner
        for item in items:
            key, kind = _key_of(item)
            bucket: set[L3Key] = getattr(new, kind)
            if item.add:
                if key in bucket:
                    problems.append(f"{key} added twice")
                    continue
                other = owner_of.get(key)
                if other is not None and other != owner:
                    problems.append(f"{key} already belongs to {_owner_name(other)}")
                    continue
                if _senseless(key):
                    problems.append(f"{key} is not a forwardable address")
                    continue
                bucket.add(key)
            else:
                if key not in bucket:
                    problems.append(f"{key} dropped but never added")
                    continue
                bucket.discard(key)
        return new, problems

    def _l3_commit(self, owner: bytes, old: _L3, new: _L3) -> None:
        if old is new:
            return
        before, after = old.all_keys(), new.all_keys()
        for key in before - after:
            if self._owner.get(key) == owner:
                del self._owner[key]
        for key in after - before:
            self._owner[key] = owner


_EMPTY: Final = Metrics()
_NO_L3: Final = _L3()  # read-only: see _Dest.__init__
_TYPE_OF_FIELD: Final = {name: t for t, name in FIELD_OF_TYPE.items()}
assert frozenset(_TYPE_OF_FIELD.values()) == METRIC_TYPES


def _coalesce_l3(pending: list[L3Item], new: Iterable[L3Item]) -> list[L3Item]:
    """Queued address changes plus ``new``, by net effect.

    _l3_apply has checked every change against the state before it, so the
    changes of one address alternate add/drop: a new one cancels the queued
    opposite one (add then drop: the peer never hears of it; drop then add:
    it keeps it). Plain concatenation would repeat items (an EncodeError).
    """
    out = list(pending)
    for item in new:
        key = _key_of(item)
        for i, old in enumerate(out):
            if _key_of(old) == key:
                del out[i]
                break
        else:
            out.append(item)
    return out


def _without(metrics: Metrics, newer: Metrics) -> Metrics | None:
    """``metrics`` minus the fields ``newer`` sets; None if nothing is left."""
    left = {n: v for n, v in metrics.as_dict().items() if getattr(newer, n) is None}
    return Metrics(**left) if left else None


def _validate(metrics: Metrics) -> None:
    """Metrics.validate(), reporting a bad argument as SessionError."""
    try:
        metrics.validate()
    except ValueError as exc:
        raise SessionError(str(exc)) from None


def _status(code: int, text: str) -> Status:
    """A Status item from API arguments; bad values are a SessionError."""
    try:
        return Status(int(code), text)
    except (ItemFormatError, TypeError, ValueError) as exc:
        raise SessionError(str(exc)) from None


def _owner_name(owner: bytes) -> str:
    if owner == _PEER:
        return "the peer"
    if owner == _SELF:
        return "us"
    return f"destination {format_mac(owner)}"


def _mac_bytes(mac: bytes | str | MacAddress) -> bytes:
    if isinstance(mac, MacAddress):
        return mac.address
    if isinstance(mac, str):
        try:
            return MacAddress.parse(mac).address
        except ItemFormatError as exc:
            raise SessionError(str(exc)) from None
    try:
        return MacAddress(bytes(mac)).address
    except (ItemFormatError, TypeError, ValueError) as exc:
        raise SessionError(f"MAC address {mac!r}: {exc}") from None


def _l3_items(values: Iterable[L3Item | str], add: bool) -> list[L3Item]:
    """Accept items or strings ("10.0.0.1", "2001:db8::1", "10.1.0.0/16")."""
    out: list[L3Item] = []
    for v in values:
        if isinstance(v, Ipv4Address | Ipv6Address | Ipv4AttachedSubnet | Ipv6AttachedSubnet):
            if v.add != add:
                v = type(v)(*_fields(v)[:-1], add)  # type: ignore[call-arg, arg-type]
            out.append(v)
            continue
        text = str(v)
        try:
            if "/" in text:
                net = ipaddress.ip_network(text, strict=False)
                if isinstance(net, ipaddress.IPv4Network):
                    out.append(Ipv4AttachedSubnet(net.network_address, net.prefixlen, add))
                else:
                    out.append(Ipv6AttachedSubnet(net.network_address, net.prefixlen, add))
            else:
                addr = ipaddress.ip_address(text)
                if isinstance(addr, ipaddress.IPv4Address):
                    out.append(Ipv4Address(addr, add))
                else:
                    out.append(Ipv6Address(addr, add))
        except ValueError as exc:
            raise SessionError(f"address {text!r}: {exc}") from None
    return out


def _fields(item: L3Item) -> tuple[object, ...]:
    if isinstance(item, Ipv4Address | Ipv6Address):
        return (item.address, item.add)
    return (item.address, item.prefix_length, item.add)


__all__ = [
    "TRANSITIONS",
    "Role",
    "Session",
    "SessionClosedError",
    "SessionConfig",
    "SessionError",
    "State",
    "TransactionInProgressError",
    "UnknownDestinationError",
]

_ = MetricItem  # re-exported type used in annotations of subclasses
