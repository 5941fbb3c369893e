"""The DLEP session engine (RFC 8175 §7-§8, §12), router or modem, sans I/O.

A :class:`Session` is fed stream bytes (:meth:`Session.receive_data`), API
calls and the current time; it produces bytes to write
(:meth:`Session.data_to_send`), typed events (:meth:`Session.next_event`) and
the next time it must be woken (:meth:`Session.get_timer` /
:meth:`Session.handle_timer`). It never reads a clock — every call takes
``now`` and nothing remembers it afterwards — and never touches a socket:
the asyncio layer is a thin adapter around it.

The session's own life is the explicit table :data:`TRANSITIONS`: which
received message is legal in which state. Anything not listed is an
*unexpected message* (status 129), except where RFC 8175 prescribes
otherwise (a modem still waiting for Session Initialization closes silently,
§7.2; a terminating session ignores everything but the termination exchange,
§7.4). Each destination's life is the table of
:mod:`dlep.fsm.destinations`; the address rules live in
:mod:`dlep.fsm.addresses`, the extension interface in :mod:`dlep.fsm.plugins`,
and every fault of the peer is one :class:`~dlep.fsm.errors.PeerError`,
caught in :meth:`Session._receive_message`.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from ..wire import (
    DataItem,
    DecodeError,
    EncodeError,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4AttachedSubnet,
    Ipv6AttachedSubnet,
    MacAddress,
    Message,
    MessageFramer,
    MessageType,
    PeerType,
    Status,
    StatusCode,
    decode_message,
    encode_message,
    message_name,
    status_name,
)
from .addresses import PEER, SELF, AddressIndex, AddressSet, L3Item
from .arguments import (
    check_extra,
    check_own_message,
    check_rates,
    checked_metrics,
    declared_only,
    ident_of,
    l3_items,
    mac_bytes,
    status_item,
    validate,
)
from .calls import Clock, api_call
from .destinations import (
    DestinationInfo,
    DestinationTable,
    DestKey,
    declared_problem,
    extra_without_ident,
)
from .errors import (
    InvalidArgumentError,
    PeerError,
    SessionArgumentError,
    SessionClosedError,
    SessionError,
    WrongRoleError,
)
from .events import (
    Event,
    ResponseStatus,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
)
from .fastpath import FastPath, MetricsWriter
from .liveness import Liveness
from .metrics import FIELD_OF_TYPE, Metrics
from .negotiation import (
    PeerInit,
    foreign_items,
    heartbeat_refusal,
    offer_items,
    read_peer_init,
)
from .parts import NO_METRICS as _NO_METRICS
from .parts import Parts, split, terminate_status
from .plugins import PluginHost, dest_key_of
from .session_config import SessionConfig
from .session_update import OwnUpdates

__all__ = ["TRANSITIONS", "Role", "Session", "State"]

M = MessageType

#: Stated so, not as a bare number: text of a Status item is capped so that
#: an over-long reason never makes the Session Termination unencodable.
_MAX_STATUS_TEXT: Final = 200
#: The longest Status text an application may give a Session Termination: the
#: message's 16-bit length holds the Status item's 4-octet header and status
#: code besides it (RFC 8175 §11.2, §11.3, §13.1).
MAX_TERMINATION_TEXT: Final = 0xFFFF - 4 - 1


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


_IN_SESSION: Final = State.IN_SESSION
_SUCCESS: Final = Status(StatusCode.SUCCESS)


#: Requests and the response that answers them.
_RESPONSE_OF: Final[dict[int, int]] = {
    M.SESSION_UPDATE: M.SESSION_UPDATE_RESPONSE,
    M.DESTINATION_UP: M.DESTINATION_UP_RESPONSE,
    M.DESTINATION_ANNOUNCE: M.DESTINATION_ANNOUNCE_RESPONSE,
    M.DESTINATION_DOWN: M.DESTINATION_DOWN_RESPONSE,
    M.LINK_CHARACTERISTICS_REQUEST: M.LINK_CHARACTERISTICS_RESPONSE,
}
_RESPONSES: Final = frozenset(_RESPONSE_OF.values())
_DEST: Final = "_on_destination"  # every destination message: see .destinations

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
        M.DESTINATION_UP: _DEST,
        M.DESTINATION_ANNOUNCE_RESPONSE: _DEST,
        M.DESTINATION_DOWN: _DEST,
        M.DESTINATION_DOWN_RESPONSE: _DEST,
        M.DESTINATION_UPDATE: _DEST,
        M.LINK_CHARACTERISTICS_RESPONSE: _DEST,
        M.HEARTBEAT: "_on_heartbeat",
    },
    (Role.MODEM, State.IN_SESSION): {
        M.SESSION_UPDATE: "_on_session_update",
        M.SESSION_UPDATE_RESPONSE: "_on_session_update_response",
        M.SESSION_TERMINATION: "_on_termination",
        M.DESTINATION_UP_RESPONSE: _DEST,
        M.DESTINATION_ANNOUNCE: _DEST,
        M.DESTINATION_DOWN: _DEST,
        M.DESTINATION_DOWN_RESPONSE: _DEST,
        M.LINK_CHARACTERISTICS_REQUEST: _DEST,
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


class Session:
    """One DLEP session, router or modem role, without I/O.

    Create it when the TCP (and TLS) connection is up and call
    :meth:`start`. Then feed it with :meth:`receive_data`,
    :meth:`handle_timer` and :meth:`connection_lost`, and after every call
    write out :meth:`data_to_send`, process :meth:`events`, and re-arm the
    timer from :meth:`get_timer`. When :attr:`closed`, close the connection.

    Destinations are named by their MAC (``bytes`` or text) or by a
    :class:`~dlep.fsm.destinations.DestKey`; identity items (RFC 8703) among
    ``extra`` select a destination that shares its MAC with others.
    """

    def __init__(self, role: Role, config: SessionConfig | None = None) -> None:
        self.role = role
        self.config = config or SessionConfig()
        if role is Role.MODEM:
            self.config.validate_for_modem()
        self._registry = self.config.registry
        self._translate = self.config.wire_translation
        #: Set by the driver to see every message on the wire: called with
        #: ``"rx"`` / ``"tx"`` and the message's octets as they cross the
        #: connection (:meth:`decode` reads them). The driver sets it per
        #: read (None when nobody looks), so the receive loop costs one
        #: check of a local per message and sending one check per flush.
        self.trace: Callable[[str, bytes], None] | None = None
        self.state = State.INITIALIZING
        self._framer = MessageFramer()
        # Framed messages not yet handled (receive_data with a limit).
        self._inbox: list[bytes] = []
        self._inbox_at = 0
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._clock = Clock()
        self._live = Liveness(
            self.config.heartbeat_interval_ms / 1000.0, self.config.missed_heartbeats
        )
        self.peer_heartbeat_ms: int | None = None
        self.peer_type: PeerType | None = None
        self._deadline: float | None = None  # init or termination deadline
        self._started = False
        #: Extensions in use (negotiated), by code.
        self.extensions: frozenset[int] = frozenset()
        self._ext_filter: frozenset[int] | None = None
        self._declared: frozenset[int] = frozenset()  # metric types in use
        self._undeclared: tuple[str, ...] = tuple(FIELD_OF_TYPE.values())
        self.session_metrics = Metrics()
        self._addresses = AddressIndex()
        self._peer_l3 = AddressSet()
        self._own_l3 = AddressSet()
        self.plugins = PluginHost(self._registry, self.config.plugins)
        self._dests = DestinationTable(
            send=self.send_raw,
            check=self.encode,
            emit=self.emit,
            gone=self._gone,
            session_metrics=lambda: self.session_metrics,
            declared=lambda: self._declared,
            addresses=self._addresses,
            auto_accept=self.config.auto_accept_destinations,
            max_peer_destinations=self.config.max_peer_destinations,
            ack=self._ack,
            send_metrics=self._send_metrics,
            clock=self._clock,
        )
        self._writer = MetricsWriter(self.encode)
        # (type, MAC length) -> the encoded Success response around the MAC.
        self._acks: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._updates = OwnUpdates()
        self._cause: tuple[int | None, str, bool] | None = None
        #: Messages sent / received by type, and errors of the peer by status.
        self.tx_counts: dict[int, int] = {}
        self.rx_counts: dict[int, int] = {}
        self.error_counts: dict[int, int] = {}
        #: Octets of responses queued so far (answers to the peer's Session
        #: Update, Destination Up/Down/Announce and Link Characteristics
        #: Request): a driver compares it
        #: over time to tell output the peer provoked from output the
        #: application originated (see ``SessionProtocol``'s backpressure).
        self.response_octets = 0
        self._ident_types = frozenset(self._registry.identity_items)
        self._fast: FastPath | None = None  # from _enter_session on
        self._dispatch = {
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
        with self._clock.at(now, False):
            self._started = True
            self._live.heard(now)
            init = self.config.init_timeout_ms
            self._deadline = now + (init / 1000.0 if init is not None else 4 * self._live.ours)
            cfg = self.config
            own = self._own_l3 = AddressSet(
                cfg.ipv4_addresses, cfg.ipv6_addresses, cfg.ipv4_subnets, cfg.ipv6_subnets
            )
            if self.role is Role.ROUTER:
                items = [*offer_items(cfg, cfg.offered_extensions), *own.items()]
                self.send_raw(M.SESSION_INITIALIZATION, items)

    def receive_data(self, data: bytes, now: float, *, limit: int | None = None) -> bool:
        """Bytes arrived on the connection (any split; framing is handled).

        With ``limit``, handle at most that many messages and keep the rest
        (and return True): call :meth:`receive_more` until it returns False.
        A driver that drains events between such steps keeps every event
        short-lived, which keeps the garbage collector's work small when a
        single read brings thousands of messages.
        """
        if self.state is State.RESET:
            return False
        inbox = self._framer.feed(data)
        if self._inbox_at < len(self._inbox):
            inbox = self._inbox[self._inbox_at :] + inbox
        self._inbox = inbox
        self._inbox_at = 0
        return self.receive_more(now, limit)

    def receive_more(self, now: float, limit: int | None = None) -> bool:
        """Handle (up to ``limit``) messages left by :meth:`receive_data`;
        True if some are still waiting."""
        inbox = self._inbox
        at = self._inbox_at
        end = len(inbox) if limit is None else min(len(inbox), at + limit)
        trace = self.trace
        with self._clock.at(now, False):
            dests = self._dests
            while at < end:
                raw = inbox[at]
                at += 1
                if trace is not None:
                    trace("rx", raw)
                fast = self._fast
                if fast is not None and self.state is _IN_SESSION:
                    parts = fast.read(raw, dests.mac_len)
                    if parts is not None:
                        self._receive_parts(parts, raw, now)
                        if self.closed:
                            break
                        continue
                self._receive_message(raw, now)
                if self.closed:
                    break
        if self.closed:
            self._inbox = []
            at = 0
        self._inbox_at = at
        return at < len(self._inbox)

    @property
    def pending_messages(self) -> int:
        """Messages received (framed) but not handled yet: what
        :meth:`receive_more` still has to do."""
        return len(self._inbox) - self._inbox_at

    def peer_silent(self, now: float) -> bool:
        """True if :meth:`handle_timer` at ``now`` would end the session
        because the peer has been silent too long (RFC 8175 §7.3.1).

        A driver that knows of data from the peer not yet handled (a
        backlog, bytes waiting in the socket) calls :meth:`note_peer_alive`
        first: the peer spoke, only we did not listen yet."""
        return self.state is State.IN_SESSION and self._live.silent(now)

    def note_peer_alive(self, when: float) -> None:
        """Data from the peer arrived at ``when`` and waits to be handled
        (the driver read it, or the kernel holds it unread): the silence
        timer restarts from then, as a message handled at ``when`` would
        restart it. Heartbeat timeouts are so judged by when the peer's
        data arrived, not by when a busy or paused driver got to it. Never
        moves the time backwards; no effect outside a session."""
        if self.state is State.IN_SESSION and when > self._live.last_rx:
            self._live.last_rx = when

    def connection_lost(self, now: float, reason: str = "connection lost") -> None:
        """The TCP connection ended (RFC 8175 §7.5.1: straight to Session Reset)."""
        if self.state is State.RESET:
            return
        with self._clock.at(now, False):
            if self._cause is not None and self.state is State.TERMINATING:
                status, why, by_peer = self._cause
                self._reset(status, f"{why} (connection closed before response)", by_peer)
            else:
                self._reset(None, reason, True)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called (None: no timer)."""
        st = self.state
        if st is State.IN_SESSION:
            live = self._live  # inlined: this runs after every call
            t = live.last_tx + live.ours
            silence = live.silence_deadline
            if silence < t:
                t = silence
            lcr = self._dests.next_deadline()
            return t if lcr is None or lcr > t else lcr
        if st is State.RESET:
            return None
        return self._deadline

    def handle_timer(self, now: float) -> None:
        """Run whatever is due at ``now`` (heartbeats, timeouts)."""
        with self._clock.at(now, False):
            st = self.state
            if st is State.IN_SESSION:
                if self._live.silent(now):
                    # §7.3.1: Session Termination with 132, then the Session
                    # Termination state, at once left for Session Reset: §7.4's
                    # wait ("SHOULD allow 4 heartbeat intervals ... before
                    # assuming that its peer is unresponsive") is for a peer
                    # that may still answer, and this one has just been found
                    # unresponsive. Waiting would keep a dead radio's
                    # destinations in the routing table 4 intervals longer.
                    why = self._live.describe_silence(now)
                    self._terminate(StatusCode.TIMED_OUT, why)
                    self._reset(StatusCode.TIMED_OUT, why, False)
                    return
                self._dests.expire(now)
                if now >= self._live.heartbeat_due:
                    self.send_raw(M.HEARTBEAT, ())
            elif st is State.INITIALIZING:
                if self._deadline is not None and now >= self._deadline:
                    # No session exists yet: close without a Session Termination.
                    self._reset(StatusCode.TIMED_OUT, "session initialisation timed out", False)
            elif st is State.TERMINATING and self._deadline is not None and now >= self._deadline:
                status, why, by_peer = self._cause or (None, "terminated", False)
                self._reset(status, f"{why} (no Session Termination Response)", by_peer)

    def data_to_send(self) -> bytes:
        """Everything queued for the peer since the last call."""
        if not self._out:
            return b""
        trace = self.trace
        if trace is not None:
            for raw in self._out:
                trace("tx", raw)
        out = b"".join(self._out)
        self._out.clear()
        return out

    def decode(self, raw: bytes) -> Message:
        """One framed message as it crossed the connection (what
        :attr:`trace` gets), decoded as this session reads it, with no
        effect on the session. DecodeError if it does not decode."""
        if self._translate is not None:
            raw = self._translate.from_wire(raw)
        return decode_message(raw, self._registry)

    @property
    def has_events(self) -> bool:
        """True if events are waiting (cheaper than draining them)."""
        return bool(self._events)

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
    def now(self) -> float:
        """The time of the engine call in progress (for extension hooks
        that send); SessionError outside a call."""
        now = self._clock.now
        if now is None:
            raise SessionError("no engine call in progress: pass now= explicitly")
        return now

    @property
    def destinations(self) -> dict[DestKey, DestinationInfo]:
        """Destinations that are up in this session, by key."""
        return self._dests.snapshot()

    @property
    def awaiting_decision(self) -> dict[DestKey, DestinationInfo]:
        """Router with auto-accept off: the modem's Destination Ups that await
        :meth:`respond_destination_up`, by key."""
        return self._dests.awaiting_up_decision()

    @property
    def last_heard(self) -> float:
        """When the peer last sent a valid message (heartbeats included), on
        the engine's clock (the ``now`` of that call); before its first
        message, when the session started."""
        return self._live.last_rx

    def destination_keys(self) -> list[bytes | DestKey]:
        """The keys of the destinations that are up, cheaply (no snapshot):
        the MAC (bytes) of a destination without identity items, else its
        :class:`DestKey`. Either names it in :meth:`destination`."""
        return self._dests.visible_keys()

    @property
    def destination_count(self) -> int:
        """How many destinations are up (without snapshotting them)."""
        return self._dests.count_visible()

    def destination(
        self, mac: bytes | str | DestKey, extra: Sequence[DataItem] = ()
    ) -> DestinationInfo | None:
        """One destination if it is up, else None."""
        return self._dests.info(self.key_of(mac, extra))

    def is_up(self, mac: bytes | str | DestKey, extra: Sequence[DataItem] = ()) -> bool:
        """True if the destination is up (or going down) in this session."""
        rec = self._dests.get(self.key_of(mac, extra))
        return rec is not None and rec.visible

    def knows(self, mac: bytes | str | DestKey, extra: Sequence[DataItem] = ()) -> bool:
        """True if the destination is in the table in any state (e.g. awaiting
        the application's decision)."""
        return self.key_of(mac, extra) in self._dests

    @property
    def peer_addresses(self) -> DestinationInfo:
        """The peer's own layer-3 information (mac empty)."""
        l3 = self._peer_l3
        return DestinationInfo(
            b"",
            self.session_metrics,
            l3.v4,
            l3.v6,
            l3.v4net,
            l3.v6net,
        )

    @property
    def ext_state(self) -> dict[int, Any]:
        """Per-extension session state (``Extension.new_state``), by code."""
        return self.plugins.states

    def key_of(self, mac: bytes | str | DestKey, extra: Sequence[DataItem] = ()) -> DestKey:
        """The key of a destination named by MAC (plus identity items among
        ``extra``) or by its key. InvalidArgumentError for a malformed MAC."""
        if isinstance(mac, DestKey):
            return mac
        ident = ident_of(extra, self._ident_types)
        if type(mac) is bytes and (len(mac) == 6 or len(mac) == 8):
            return DestKey(mac, ident)
        try:
            return DestKey(mac_bytes(mac), ident)
        except InvalidArgumentError as exc:
            raise SessionArgumentError(str(exc), exc.field) from None

    # ------------------------------------------------------------------
    # API: both roles
    # ------------------------------------------------------------------

    def terminate(
        self, status: int = StatusCode.SHUTTING_DOWN, text: str = "", *, now: float
    ) -> None:
        """Send Session Termination and wait (bounded) for the response."""
        if self.state is State.RESET or self.state is State.TERMINATING:
            return
        if not self._started:
            raise SessionError("session not started")
        if isinstance(text, str):
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > MAX_TERMINATION_TEXT:
                # The caller's error, named as such: unchecked, the message
                # failed to encode later, as if the session were at fault.
                raise SessionArgumentError(
                    f"text: {size} octets of UTF-8; a Session Termination holds at most "
                    f"{MAX_TERMINATION_TEXT}",
                    "text",
                )
        st = status_item(status, text)  # a bad code or text is the caller's error
        with self._clock.at(now, True):
            if self.state is State.INITIALIZING and self.role is Role.MODEM:
                # Nothing may be sent before Session Initialization arrives (§7.2).
                self._reset(st.code, text or "closed by application", False)
                return
            self._terminate(st.code, text or "closed by application", text=text)

    @api_call()
    def update_session(
        self,
        metrics: Metrics | None = None,
        *,
        add: Iterable[L3Item | str] = (),
        drop: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Send a Session Update: session-wide metrics (modem only), our own
        address changes and/or items of negotiated extensions (``extra``).
        Coalesced while one is outstanding (§8)."""
        check_extra(extra, self._registry, self.extensions)
        metrics = checked_metrics(metrics, self._undeclared)
        if not metrics.is_empty():
            if self.role is Role.ROUTER:
                raise WrongRoleError("only a modem sends metrics in Session Update (§12.7)")
            self._dests.check_session_metrics(metrics)
            metrics = self.session_metrics.changed_in(metrics)
        l3 = l3_items(add, True, "add") + l3_items(drop, False, "drop")
        new, problems = self._addresses.apply(SELF, self._own_l3, l3)
        if problems:
            raise SessionArgumentError("update_session: " + "; ".join(problems), "addresses")
        if metrics.is_empty() and not l3 and not extra:
            return
        if self._updates.offer(metrics, l3, extra):
            self._send_session_update(metrics, l3, extra)
        self._addresses.commit(SELF, self._own_l3, new)
        self._own_l3 = new
        self.session_metrics = self.session_metrics.merged(metrics)

    @api_call()
    def send_message(self, message_type: int, items: Iterable[DataItem], *, now: float) -> None:
        """Send a message defined by a negotiated extension (e.g. Credit Control).

        Refused (SessionError) for core messages, unknown types and
        extensions not in use on this session. An extension hook sending from
        inside a received message passes ``now=session.now``.
        """
        check_own_message(self._registry, message_type, self.extensions)
        items = list(items)
        check_extra(items, self._registry, self.extensions)
        self.send_raw(message_type, items)

    def emit(self, event: Event) -> None:
        """Queue an application event (for extension hooks)."""
        self._events.append(event)

    @api_call()
    def drop_destination(
        self, mac: bytes | str | DestKey, *, extra: Sequence[DataItem] = (), now: float
    ) -> None:
        """Send Destination Down (modem: unreachable; router: no longer wanted).

        While our Destination Up / Announce for it is unanswered the Down is
        held and sent when it succeeds (§8).
        """
        self._dests.drop(self.key_of(mac, extra))

    # ------------------------------------------------------------------
    # API: modem
    # ------------------------------------------------------------------

    @api_call(Role.MODEM)
    def add_destination(
        self,
        mac: bytes | str | DestKey,
        metrics: Metrics | None = None,
        *,
        addresses: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Modem: announce a reachable destination (Destination Up)."""
        key, rest = self._dest_args(mac, extra)
        n = self._dests.mac_len
        if n is not None and len(key.mac) != n:
            self._dests.check_mac(key.mac, "add_destination", from_peer=False)
        metrics = checked_metrics(metrics, self._undeclared)
        check_rates(self.session_metrics, metrics, "the session-wide metrics")
        full = self.session_metrics.merged(metrics)
        l3 = l3_items(addresses, True) if addresses else []
        self._dests.add(key, metrics, full, l3, rest)

    @api_call(Role.MODEM)
    def update_destination(
        self,
        mac: bytes | str | DestKey,
        metrics: Metrics | None = None,
        *,
        add: Iterable[L3Item | str] = (),
        drop: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> bool:
        """Modem: report changes (Destination Update). Only metrics that
        changed are sent. Held back (coalesced, extension items included)
        while Destination Up is unanswered.

        Returns True if something was sent or queued.
        """
        key, rest = self._dest_args(mac, extra)
        metrics = self._checked_for(key, metrics)
        l3 = l3_items(add, True, "add") + l3_items(drop, False, "drop") if add or drop else []
        return self._dests.update(key, metrics, l3, rest)

    @api_call(Role.MODEM)
    def update_destinations(
        self,
        updates: Sequence[tuple[bytes | str | DestKey, Metrics]],
        *,
        validated: bool = False,
        now: float,
    ) -> int:
        """Modem: new metrics for many destinations (a radio's periodic
        report): every entry is checked before any is sent, so a refusal
        (naming ``updates[i]``) sends nothing. Otherwise as
        :meth:`update_destination` for each, in order. Returns how many
        Destination Updates were sent or queued.

        ``validated``: the caller has checked each value's range (as the
        modem daemon's table does); the rate rule against this session's
        view, §12.6 and the destinations' states are checked here always.
        """
        entries: list[tuple[DestKey, Metrics]] = []
        undeclared = self._undeclared
        for i, (mac, metrics) in enumerate(updates):
            try:
                key = self.key_of(mac)
                if validated:
                    metrics = declared_only(metrics, undeclared)
                else:
                    metrics = checked_metrics(metrics, undeclared)
            except InvalidArgumentError as exc:
                where = f"updates[{i}]"
                raise SessionArgumentError(f"{where}: {exc}", f"{where}.{exc.field}") from None
            entries.append((key, metrics))
        # The states and the rate rule against each destination's metrics.
        return self._dests.update_many(entries)

    @api_call(Role.MODEM)
    def respond_link_characteristics(
        self,
        mac: bytes | str | DestKey,
        status: int = StatusCode.SUCCESS,
        metrics: Metrics | None = None,
        *,
        text: str = "",
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Modem: answer a :class:`LinkCharacteristicsRequested`.

        ``metrics`` are the characteristics after processing; the response
        carries the complete declared set (§12.19), filled from the current
        values. If our Destination Down for it already went out, nothing is
        sent: the router cancels its request when the Down arrives.
        """
        st = status_item(status, text)
        key, rest = self._dest_args(mac, extra)
        metrics = self._checked_for(key, metrics)
        self._dests.answer_link(key, st, metrics, rest, self._declared)

    @api_call(Role.MODEM)
    def respond_destination_announce(
        self,
        mac: bytes | str | DestKey,
        accept: bool,
        metrics: Metrics | None = None,
        *,
        addresses: Iterable[L3Item | str] = (),
        text: str = "",
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Modem: answer a :class:`DestinationAnnounceRequested`.

        Accepting makes the destination up (Success, with its metrics);
        refusing answers 'Request Denied' (§12.14).
        """
        st = status_item(StatusCode.SUCCESS if accept else StatusCode.REQUEST_DENIED, text)
        key, rest = self._dest_args(mac, extra)
        metrics = self._checked_for(key, metrics)
        l3 = l3_items(addresses, True)
        self._dests.answer_announce(key, st, metrics, l3, rest, self._declared)

    def _dest_args(
        self, mac: bytes | str | DestKey, extra: Sequence[DataItem]
    ) -> tuple[DestKey, list[DataItem]]:
        """The destination's key, and ``extra`` without its identity items,
        all of them items of extensions in use."""
        if not extra:
            return self.key_of(mac), []
        check_extra(extra, self._registry, self.extensions)
        return self.key_of(mac, extra), extra_without_ident(extra, self._ident_types)

    def _checked_for(self, key: DestKey, metrics: Metrics | None) -> Metrics:
        """Valid, declared, and valid together with the destination's own."""
        metrics = checked_metrics(metrics, self._undeclared)
        rec = self._dests.get(key)
        if rec is not None:
            check_rates(rec.metrics, metrics, key)
        return metrics

    # ------------------------------------------------------------------
    # API: router
    # ------------------------------------------------------------------

    @api_call(Role.ROUTER)
    def announce_destination(
        self,
        mac: bytes | str | DestKey,
        *,
        addresses: Iterable[L3Item | str] = (),
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Router: ask the modem about a destination (Destination Announce)."""
        key, rest = self._dest_args(mac, extra)
        self._dests.check_mac(key.mac, "announce_destination", from_peer=False)
        l3 = l3_items(addresses, True)
        if any(isinstance(i, Ipv4AttachedSubnet | Ipv6AttachedSubnet) for i in l3):
            raise SessionArgumentError(
                "addresses: Destination Announce carries addresses only, not subnets", "addresses"
            )
        self._dests.announce(key, l3, rest, self.session_metrics)

    @api_call(Role.ROUTER)
    def request_link_characteristics(
        self,
        mac: bytes | str | DestKey,
        *,
        cdrr: int | None = None,
        cdrt: int | None = None,
        latency: int | None = None,
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Router: ask for a data rate and/or latency (§12.18), and/or what a
        negotiated extension adds (``extra``, e.g. RFC 8629 Hop Control)."""
        key, rest = self._dest_args(mac, extra)
        req = Metrics(cdrr=cdrr, cdrt=cdrt, latency=latency)
        if req.is_empty() and not rest:
            raise SessionArgumentError(
                "cdrr: request_link_characteristics: give cdrr, cdrt or latency", "cdrr"
            )
        validate(req)
        timeout = self.config.link_characteristics_timeout_ms
        deadline = None if timeout is None else now + timeout / 1000.0
        self._dests.request_link(key, [*req.items(), *rest], deadline)

    @api_call(Role.ROUTER)
    def respond_destination_up(
        self,
        mac: bytes | str | DestKey,
        accept: bool,
        *,
        extra: Sequence[DataItem] = (),
        now: float,
    ) -> None:
        """Router with auto-accept off: answer a :class:`DestinationUpRequested`
        with Success or 'Not Interested' (``extra``: identity items, RFC 8703)."""
        self._dests.answer_up(self.key_of(mac, extra), accept)

    # ------------------------------------------------------------------
    # Receive path
    # ------------------------------------------------------------------

    def _receive_message(self, raw: bytes, now: float) -> None:
        """Decode and dispatch one message; every fault of the peer ends here."""
        msg: Message | None = None
        try:
            if self._translate is not None:
                raw = self._translate.from_wire(raw)
            if self.state is State.TERMINATING:
                # §7.4: while we wait for the Session Termination Response,
                # any other message MUST be silently ignored: not decoded
                # either. A peer that keeps sending garbage after the error
                # that ended its session (a read can bring thousands of
                # messages) made us decode, and describe the fault of, each.
                mt = int.from_bytes(raw[:2], "big")
                if mt not in self._dispatch[State.TERMINATING]:
                    return
            try:
                msg = decode_message(raw, self._registry, extensions=self._ext_filter)
            except DecodeError as exc:
                raise PeerError(str(exc), exc.status) from None
            mt = msg.type
            self.rx_counts[mt] = self.rx_counts.get(mt, 0) + 1
            state = self.state
            handler = self._dispatch[state].get(mt)
            own = handler is None and state is State.IN_SESSION and mt in self.plugins.message_types
            if handler is None and not own:
                if state is State.TERMINATING:
                    return  # §7.4: silently ignored
                raise PeerError(
                    f"{message_name(mt)} not expected by a {self.role.value} "
                    f"in state {state.value}",
                    StatusCode.UNEXPECTED_MESSAGE,
                )
            self._live.last_rx = now  # any valid message resets the silence (§7.3.1)
            if mt != M.SESSION_TERMINATION and state is not State.TERMINATING:
                bad = terminate_status(msg)
                if bad is not None:
                    detail = f": {bad.text}" if bad.text else ""
                    why = f"peer reported {status_name(bad.code)} in {message_name(mt)}{detail}"
                    self._terminate(bad.code, why, text=bad.text, by_peer=True)
                    return
            if own:
                self.plugins.on_message(self, msg)
                return
            if self.plugins.active:
                self.plugins.on_items(self, msg, dest_key_of(msg.items, self._ident_types))
            assert handler is not None
            handler(msg)
            if self._fast is not None and self.state is _IN_SESSION:
                self._fast.learn(mt, raw, self._declared)
        except PeerError as err:
            self._peer_error(err, msg)

    def _receive_parts(self, parts: Parts, raw: bytes, now: float) -> None:
        """A destination message read by the shortcut (see :mod:`.fastpath`):
        what :meth:`_receive_message` does for it, minus what its shape proved."""
        mt = parts.mtype
        self.rx_counts[mt] = self.rx_counts.get(mt, 0) + 1
        self._live.last_rx = now
        try:
            mac = parts.mac
            assert mac is not None
            self._dests.receive(mt, DestKey(mac, ()), parts)
        except PeerError as err:
            # The message is valid (its shape says so): decode it for the
            # response that names the destination (RFC 8703).
            self._peer_error(err, decode_message(raw, self._registry, extensions=self._ext_filter))

    def _peer_error(self, err: PeerError, msg: Message | None) -> None:
        """The peer broke a rule: count it and end the session (§12.2).

        We end it (``by_peer`` False): the peer is at fault, the reason says how.
        """
        self.error_counts[err.status] = self.error_counts.get(err.status, 0) + 1
        st = self.state
        if st is State.TERMINATING or st is State.RESET:
            return
        if st is State.INITIALIZING and self.role is Role.MODEM:
            # §7.2: send nothing, close the connection.
            self._reset(err.status, err.reason, False)
            return
        if err.respond and msg is not None and st is State.IN_SESSION:
            self._respond_with_status(msg, err)
        self._terminate(err.status, err.reason)

    def _respond_with_status(self, msg: Message, err: PeerError) -> None:
        """Answer the offending request with the error's status before the
        termination (RFC 8703 §2), if it is a request we can name."""
        response = _RESPONSE_OF.get(msg.type)
        key = dest_key_of(msg.items, self._ident_types)
        if response is None or key is None:
            return
        status = Status(err.status, err.reason[:_MAX_STATUS_TEXT])
        try:
            data = self._encode(response, [*key.ids(), status], checked=False)
        except SessionError:
            return  # could not name the destination: terminate only
        self._out.append(data)
        self.response_octets += len(data)
        self.tx_counts[response] = self.tx_counts.get(response, 0) + 1

    # -- session-level handlers -----------------------------------------

    def _on_session_init(self, msg: Message) -> None:
        too_long = heartbeat_refusal(msg, self.config)
        if too_long is not None:
            # Refused like B.2: 'Request Denied' (with the mandatory items),
            # then close; no session exists, so nothing waits on the peer.
            refusal = Status(StatusCode.REQUEST_DENIED, too_long[:_MAX_STATUS_TEXT])
            self.send_raw(
                M.SESSION_INITIALIZATION_RESPONSE,
                [
                    refusal,
                    self.config.peer_type,
                    HeartbeatInterval(self.config.heartbeat_interval_ms),
                    *self.config.session_metrics.items(),
                ],
            )
            self._reset(StatusCode.REQUEST_DENIED, too_long, False)
            return
        peer = self._negotiate(msg)
        cfg = self.config
        self._declare(cfg.session_metrics)
        self.session_metrics = cfg.session_metrics
        base: list[DataItem] = [
            cfg.peer_type,
            HeartbeatInterval(cfg.heartbeat_interval_ms),
            *cfg.session_metrics.items(),
        ]
        if self.extensions:
            base.append(ExtensionsSupported(tuple(sorted(self.extensions))))
        base.extend(self.plugins.init_items(self))
        missing = cfg.required_extensions - peer.extensions
        if missing:
            names = ", ".join(str(e) for e in sorted(missing))
            refusal = Status(StatusCode.REQUEST_DENIED, f"required extensions missing: {names}")
            self.send_raw(M.SESSION_INITIALIZATION_RESPONSE, [refusal, *base])
            self._reset(StatusCode.REQUEST_DENIED, f"router lacks extensions {names}", False)
            return
        self._commit_peer_l3(peer.parts.l3)
        ok = Status(StatusCode.SUCCESS)
        self.send_raw(M.SESSION_INITIALIZATION_RESPONSE, [ok, *base, *self._own_l3.items()])
        self._enter_session()

    def _on_session_init_response(self, msg: Message) -> None:
        st = msg.get(Status)
        assert st is not None
        if st.code != StatusCode.SUCCESS:
            # B.2: a refused initialisation; the router closes the connection.
            detail = f" ({st.text})" if st.text else ""
            why = f"modem refused the session: {status_name(st.code)}{detail}"
            self._reset(st.code, why, True)
            return
        too_long = heartbeat_refusal(msg, self.config)
        if too_long is not None:
            # Checked before the peer's interval is taken, so the wait for
            # the Session Termination Response counts in ours.
            raise PeerError(too_long, StatusCode.REQUEST_DENIED)
        peer = self._negotiate(msg)
        self.session_metrics = peer.parts.metrics
        self._declare(self.session_metrics)
        self._commit_peer_l3(peer.parts.l3)
        self._enter_session()

    def _declare(self, metrics: Metrics) -> None:
        """The metrics of the Session Initialization Response are those in
        use for the whole session (§12.6)."""
        self._declared = metrics.types()
        self._undeclared = tuple(
            name for t, name in FIELD_OF_TYPE.items() if t not in self._declared
        )

    def _negotiate(self, msg: Message) -> PeerInit:
        """Take the peer's parameters, start the extensions both sides listed
        (§13.6) and let them check the peer's initialisation."""
        peer = read_peer_init(msg, self._ident_types, self._addresses, self._peer_l3)
        self._live.peer = peer.heartbeat_ms / 1000.0
        self.peer_heartbeat_ms = peer.heartbeat_ms
        self.peer_type = peer.peer_type
        self.extensions = frozenset(self.config.offered_extensions) & peer.extensions
        self.plugins.activate(self, self.extensions)
        if self.role is Role.ROUTER:
            foreign_items(msg, self._registry, self.extensions)
        self.plugins.peer_init(self, msg)
        return peer

    def _enter_session(self) -> None:
        self.state = State.IN_SESSION
        self._deadline = None
        self._ext_filter = self.extensions
        if self._translate is None:  # translated sessions take the full path
            self._fast = FastPath(self._registry, self.plugins, self.extensions)
        assert self.peer_heartbeat_ms is not None and self.peer_type is not None
        self._events.append(
            SessionUp(
                self.peer_type,
                self.peer_heartbeat_ms,
                self.config.heartbeat_interval_ms,
                self.extensions,
                self.session_metrics,
                self._peer_l3.v4,
                self._peer_l3.v6,
            )
        )

    def _commit_peer_l3(self, l3: list[L3Item]) -> None:
        new, _ = self._addresses.apply(PEER, self._peer_l3, l3)
        self._addresses.commit(PEER, self._peer_l3, new)
        self._peer_l3 = new

    def _on_session_update(self, msg: Message) -> None:
        parts = split(msg, self._ident_types)
        changed = parts.metrics
        if changed is not _NO_METRICS:
            if self.role is Role.MODEM:
                raise PeerError("router sent metrics in a Session Update (§12.7)")
            self._check_declared(changed, msg.type)
        new, problems = self._addresses.apply(PEER, self._peer_l3, parts.l3)
        if problems:
            # §13.8.1: inconsistent addresses in a session message end it.
            raise PeerError("Session Update: " + "; ".join(problems))
        self._addresses.commit(PEER, self._peer_l3, new)
        self._peer_l3 = new
        if changed is not _NO_METRICS:
            self.session_metrics = self.session_metrics.merged(changed)
            self._dests.apply_session_metrics(changed, sent_by_us=False)
        self.send_raw(M.SESSION_UPDATE_RESPONSE, [Status(StatusCode.SUCCESS)])
        self._events.append(
            SessionUpdated(
                changed,
                self.session_metrics,
                self._peer_l3.v4,
                self._peer_l3.v6,
            )
        )

    def _on_session_update_response(self, msg: Message) -> None:
        if not self._updates.outstanding:
            raise PeerError(
                "Session Update Response without a Session Update", StatusCode.UNEXPECTED_MESSAGE
            )
        st = msg.get(Status)
        if st is not None and st.code != StatusCode.SUCCESS:
            self._events.append(ResponseStatus(msg.type, st.code, st.text))
        following = self._updates.answered()
        if following is not None:
            self._send_session_update(*following)

    def _send_session_update(
        self, metrics: Metrics, l3: list[L3Item], extra: Sequence[DataItem] = ()
    ) -> None:
        self.send_raw(M.SESSION_UPDATE, [*metrics.items(), *l3, *extra])
        self._updates.outstanding = True
        if not metrics.is_empty():
            # §12.7: the router applies these to every destination when this
            # message arrives; mirror that now, in wire order (a coalesced
            # update goes out after later destination messages), so our view
            # stays equal to the router's and change-only updates stay right.
            self._dests.apply_session_metrics(metrics, sent_by_us=True)

    def _on_termination(self, msg: Message) -> None:
        st = msg.get(Status)
        code = st.code if st is not None else None
        self.send_raw(M.SESSION_TERMINATION_RESPONSE, ())
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

    def _on_destination(self, msg: Message) -> None:
        """Every destination message: checks common to all, then the table."""
        parts = split(msg, self._ident_types)
        mac = parts.mac
        assert mac is not None  # required by the codec rules
        n = self._dests.mac_len
        if n is not None and len(mac) != n:
            self._dests.check_mac(mac, message_name(msg.type), from_peer=True)
        if parts.metrics is not _NO_METRICS:
            self._check_declared(parts.metrics, msg.type)
        key = DestKey(mac, tuple(parts.ident))
        self._dests.receive(msg.type, key, parts)

    def _gone(self, key: DestKey) -> None:
        self.plugins.destination_gone(self, key)

    def _check_declared(self, metrics: Metrics, mtype: int) -> None:
        problem = declared_problem(metrics, self._declared, mtype)
        if problem is not None:
            raise PeerError(problem)

    # ------------------------------------------------------------------
    # Output
    # ------------------------------------------------------------------

    def encode(self, mtype: int, items: Sequence[DataItem]) -> bytes:
        """Encode a message as this session would send it, without sending.

        SessionError if the codec or a negotiated extension's sender-side
        rules refuse it (the latter for what the application originates).
        """
        return self._encode(mtype, items, checked=self._clock.api)

    def _encode(self, mtype: int, items: Sequence[DataItem], *, checked: bool) -> bytes:
        if checked and self.plugins.active:
            self.plugins.check_outgoing(self, mtype, items)
        try:
            data = encode_message(Message(mtype, tuple(items)), self._registry)
        except EncodeError as exc:
            raise SessionError(str(exc)) from None
        return data if self._translate is None else self._translate.to_wire(data)

    def send_raw(self, mtype: int, items: Sequence[DataItem]) -> None:
        """Encode and queue one message; the engine's only way out.

        Not for applications: use the API methods (and :meth:`send_message`
        for extension messages), which keep the session's state right.
        """
        response = mtype in _RESPONSES
        if response and self.plugins.active:
            items = [*items, *self.plugins.response_items(self, mtype, items)]
        data = self.encode(mtype, items)
        self._out.append(data)
        if response:
            self.response_octets += len(data)
        now = self._clock.now
        assert now is not None, "send_raw outside an engine call"
        self._live.sent(now)
        self.tx_counts[mtype] = self.tx_counts.get(mtype, 0) + 1

    def _send_metrics(self, mtype: int, key: DestKey, metrics: Metrics) -> None:
        """Send a Destination Up or Update of ``key`` that carries only
        ``metrics``: by template (:class:`~dlep.fsm.fastpath.MetricsWriter`)
        unless identity items, extensions or a translation are in play."""
        if key.ident or self.plugins.active or self._translate is not None:
            self.send_raw(mtype, [*key.ids(), *metrics.items()])
            return
        self._out.append(self._writer.encode(mtype, key.mac, metrics))
        now = self._clock.now
        assert now is not None, "_send_metrics outside an engine call"
        self._live.sent(now)
        self.tx_counts[mtype] = self.tx_counts.get(mtype, 0) + 1

    def _ack(self, mtype: int, key: DestKey) -> None:
        """Send a response with Success naming ``key``: a router answers each
        Destination Up (and Down) with one. Encoded once per type and MAC
        length, then only the MAC changes; a session whose extensions may add
        items to responses, or that translates, takes :meth:`send_raw`."""
        if key.ident or self.plugins.active or self._translate is not None:
            self.send_raw(mtype, [*key.ids(), _SUCCESS])
            return
        mac = key.mac
        around = self._acks.get((mtype, len(mac)))
        if around is None:
            data = self.encode(mtype, [MacAddress(mac), _SUCCESS])
            at = 8  # after the message header and the MAC Address item's header
            assert data[at : at + len(mac)] == mac
            around = self._acks[(mtype, len(mac))] = (data[:at], data[at + len(mac) :])
        else:
            data = around[0] + mac + around[1]
        self._out.append(data)
        self.response_octets += len(data)
        now = self._clock.now
        assert now is not None, "_ack outside an engine call"
        self._live.sent(now)
        self.tx_counts[mtype] = self.tx_counts.get(mtype, 0) + 1

    def _terminate(
        self, status: int, reason: str, *, text: str | None = None, by_peer: bool = False
    ) -> None:
        """Send Session Termination and enter the Session Termination state."""
        if text is None:
            text = reason[:_MAX_STATUS_TEXT]
        status = int(status)
        self._cause = (status, reason, by_peer)
        self.send_raw(M.SESSION_TERMINATION, [Status(status, text)])
        self.state = State.TERMINATING
        hb = self._live.peer if self._live.peer is not None else self._live.ours
        now = self._clock.now
        assert now is not None
        self._deadline = now + self.config.termination_intervals * hb

    def _reset(self, status: int | None, reason: str, by_peer: bool) -> None:
        """Session Reset (§7.5): drop everything, no Destination Down sent."""
        gone = self._dests.clear(tell_gone=bool(self.plugins.active))
        self._addresses.clear()
        self._updates.clear()
        self.state = State.RESET
        self._deadline = None
        code = None if status is None else int(status)
        self._events.append(SessionTerminated(code, reason, by_peer, gone))

    # ------------------------------------------------------------------
    # Checks of API arguments
    # ------------------------------------------------------------------

    def require_call(self, role: Role | None, what: str) -> None:
        """Refuse an API call in the wrong role or outside In-Session."""
        if role is not None and self.role is not role:
            raise WrongRoleError(f"{what} is a {role.value} operation; this is a {self.role.value}")
        if self.state is not State.IN_SESSION:
            if self.state is State.RESET or self.state is State.TERMINATING:
                raise SessionClosedError(f"session is {self.state.value}")
            raise SessionError(f"session is {self.state.value}, not in-session")

    @property
    def clock_state(self) -> Clock:
        """The call clock (for :func:`~dlep.fsm.calls.api_call`)."""
        return self._clock
