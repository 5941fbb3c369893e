"""RFC 8651 Control-Plane-Based Pause extension (Extension Type Value 2).

A modem tells its router to stop (Pause) and resume (Restart) sending traffic,
for the whole modem (in a Session Update) or for one destination (in a
Destination Update), per logical queue. Queues group DSCPs; the modem
declares them in a Queue Parameters item in its Session Initialization
Response (mandatory with this extension) and may redeclare them in a Session
Update.

Data items (RFC 8651 §3):

* :class:`QueueParameters` (type 23): Num Queues, Scale, then one
  :class:`QueueParameter` sub-data item (sub-type 1) per queue: Queue Index,
  Queue Size (24 bits, in the Scale's unit), the DS fields of its DSCPs;
* :class:`Pause` (type 24) and :class:`Restart` (type 25): one or more Queue
  Indexes; 255 (:data:`ALL_QUEUES`) means all traffic.

Modem side: :class:`PauseExtension` sends the configured Queue Parameters at
session initialisation; :func:`pause` and :func:`restart` build the items for
``update_destination(mac, extra=[pause(1, 2)])`` (one destination) or a
Session Update (all destinations).

Router side: the extension keeps the paused queues of the session and of each
destination (:meth:`PauseExtension.paused`, :meth:`PauseExtension.is_paused`)
and emits :class:`QueuesPaused`, :class:`QueuesRestarted` and
:class:`QueueParametersChanged`. A Pause or Restart naming a queue index that
the Queue Parameters did not establish ends the session with 130.

tshark 4.0 does not decode items 23-25 (they are shown as opaque values).
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, Self

from ..fsm.destinations import DestKey
from ..fsm.events import Event
from ..fsm.plugins import GaugeSample, GaugeSpec
from ..wire import (
    ANY,
    OPTIONAL,
    DataItem,
    ItemFormatError,
    Message,
    MessageType,
)
from .base import Extension, ExtensionViolation, Placement

if TYPE_CHECKING:
    from ..fsm.session import Session

__all__ = [
    "ALL_QUEUES",
    "EXTENSION_CODE",
    "PAUSE",
    "QUEUE_PARAMETER",
    "QUEUE_PARAMETERS",
    "RESTART",
    "SCALE_BYTES",
    "SCALE_GB",
    "SCALE_KB",
    "SCALE_MB",
    "Pause",
    "PauseExtension",
    "PauseState",
    "QueueParameter",
    "QueueParameters",
    "QueueParametersChanged",
    "QueuesPaused",
    "QueuesRestarted",
    "Restart",
    "pause",
    "restart",
]

#: Extension Type Value of RFC 8651 §5.1 ('Control-Plane-Based Pause').
EXTENSION_CODE: Final = 2
#: Data item type codes of RFC 8651 §5.2.
QUEUE_PARAMETERS: Final = 23
PAUSE: Final = 24
RESTART: Final = 25
#: Queue Parameter Sub-Data Item type (RFC 8651 §5.3).
QUEUE_PARAMETER: Final = 1
#: Queue Index meaning "all traffic" in Pause / Restart (§3.2); reserved
#: (MUST NOT be used) as a Queue Parameter's Queue Index (§3.1.1).
ALL_QUEUES: Final = 255
#: Scale field values (§3.1 Table 1): the unit of Queue Size.
SCALE_BYTES: Final = 0
SCALE_KB: Final = 1
SCALE_MB: Final = 2
SCALE_GB: Final = 3
_SCALE_NAMES: Final = ("B", "KB", "MB", "GB")
_U24_MAX: Final = (1 << 24) - 1
_SUB_HDR: Final = struct.Struct("!HH")
_M = MessageType


def _uint(name: str, value: object, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ItemFormatError(f"{name}: expected an integer, got {value!r}")
    if not 0 <= value < (1 << bits):
        raise ItemFormatError(f"{name}: {value} out of range 0..{(1 << bits) - 1}")
    return value


# --------------------------------------------------------------------------
# Data items
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueParameter:
    """Queue Parameter Sub-Data Item (RFC 8651 §3.1.1, sub-type 1).

    Attributes:
        index: Queue Index, 0..254 (255 is reserved). Index 0 covers the DSCPs
            no other queue lists.
        size: Queue Size Qn, 24-bit, in the unit of the enclosing item's Scale.
        dscps: the DSCPs (0..63) mapped to this queue, in wire order. On the
            wire each is a DS field: the DSCP in the upper six bits, the two
            'Currently Unused' bits zero (ignored on receipt).
    """

    TYPE: ClassVar[int] = QUEUE_PARAMETER
    NAME: ClassVar[str] = "QueueParameter"
    index: int
    size: int = 0
    dscps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _uint("QueueParameter.index", self.index, 8)
        if self.index == ALL_QUEUES:
            raise ItemFormatError("QueueParameter.index: 255 is reserved (RFC 8651 §3.1.1)")
        _uint("QueueParameter.size", self.size, 24)
        if not isinstance(self.dscps, tuple):
            object.__setattr__(self, "dscps", tuple(self.dscps))
        for d in self.dscps:
            _uint("QueueParameter.dscps", d, 6)
        if len(self.dscps) > 255:
            raise ItemFormatError(f"QueueParameter.dscps: {len(self.dscps)} DSCPs, at most 255")

    def encode_value(self) -> bytes:
        """The sub-item's Value: index, size, Num DSCPs, DS fields."""
        return (
            bytes((self.index,))
            + self.size.to_bytes(3, "big")
            + bytes((len(self.dscps),))
            + bytes(d << 2 for d in self.dscps)
        )

    def encode(self) -> bytes:
        """The whole sub-item: Sub-Data Item Type, Length, Value."""
        value = self.encode_value()
        return _SUB_HDR.pack(self.TYPE, len(value)) + value

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        """From the sub-item's Value; ItemFormatError if malformed."""
        if len(data) < 5:
            raise ItemFormatError(f"QueueParameter: length {len(data)}, must be at least 5")
        n = data[4]
        if len(data) != 5 + n:
            raise ItemFormatError(
                f"QueueParameter: Num DSCPs {n} but {len(data) - 5} DS fields (length {len(data)})"
            )
        if data[0] == ALL_QUEUES:
            raise ItemFormatError("QueueParameter: Queue Index 255 is reserved")
        return cls(data[0], int.from_bytes(data[1:4], "big"), tuple(b >> 2 for b in data[5:]))


@dataclass(frozen=True, slots=True)
class QueueParameters(DataItem):
    """Queue Parameters (RFC 8651 §3.1): the modem's logical queues.

    ``queues`` must hold at least one (Num Queues ≥ 1) and at most 255
    :class:`QueueParameter`; Num Queues is their count. Repeated Queue
    Indexes are kept as sent (lossless) but only the first counts
    (:meth:`queue_map`). The 20 Reserved bits are sent as zero and ignored
    on receipt; a sub-data item of any type other than 1, a Scale above 3 or
    a Num Queues that differs from the sub-items present is malformed (130).
    """

    TYPE: ClassVar[int] = QUEUE_PARAMETERS
    NAME: ClassVar[str] = "QueueParameters"
    queues: tuple[QueueParameter, ...]
    scale: int = SCALE_BYTES

    def __post_init__(self) -> None:
        if not isinstance(self.queues, tuple):
            object.__setattr__(self, "queues", tuple(self.queues))
        for q in self.queues:
            if not isinstance(q, QueueParameter):
                raise ItemFormatError(
                    f"QueueParameters.queues: expected QueueParameter items, got {q!r}"
                )
        if not 1 <= len(self.queues) <= 255:
            raise ItemFormatError(
                f"QueueParameters.queues: {len(self.queues)} queues, must be 1..255"
            )
        _uint("QueueParameters.scale", self.scale, 4)
        if self.scale > SCALE_GB:
            raise ItemFormatError(f"QueueParameters.scale: {self.scale} out of range 0..3")

    def queue_map(self) -> dict[int, QueueParameter]:
        """Queue Index -> its parameters; the first of repeated indexes wins (§3.1.1)."""
        out: dict[int, QueueParameter] = {}
        for q in self.queues:
            out.setdefault(q.index, q)
        return out

    @property
    def indexes(self) -> frozenset[int]:
        """The Queue Indexes established (Pause / Restart may name these and 255)."""
        return frozenset(q.index for q in self.queues)

    def queue_of(self, dscp: int) -> int:
        """The Queue Index carrying ``dscp``: the first queue listing it, else 0."""
        for q in self.queue_map().values():
            if dscp in q.dscps:
                return q.index
        return 0

    def size_octets(self, queue: QueueParameter) -> int:
        """``queue.size`` in octets (Scale applied: 1024 per step)."""
        return queue.size << (10 * self.scale)

    @property
    def scale_name(self) -> str:
        """'B', 'KB', 'MB' or 'GB'."""
        return _SCALE_NAMES[self.scale]

    def encode_value(self) -> bytes:
        head = bytes((len(self.queues), self.scale << 4, 0, 0))
        return head + b"".join(q.encode() for q in self.queues)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) < 4:
            raise ItemFormatError(f"QueueParameters: length {len(data)}, must be at least 4")
        num = data[0]
        scale = data[1] >> 4  # the low nibble and two octets are Reserved
        if scale > SCALE_GB:
            raise ItemFormatError(f"QueueParameters: Scale {scale} is not 0..3")
        if num == 0:
            raise ItemFormatError("QueueParameters: Num Queues is 0, must be at least 1")
        queues: list[QueueParameter] = []
        off, end = 4, len(data)
        while off < end:
            if end - off < 4:
                raise ItemFormatError(
                    f"QueueParameters: {end - off} stray octets at offset {off}, "
                    "shorter than a sub-data item header"
                )
            sub_type, sub_len = _SUB_HDR.unpack_from(data, off)
            vstart = off + 4
            vend = vstart + sub_len
            if vend > end:
                raise ItemFormatError(
                    f"QueueParameters: sub-data item at offset {off} has length {sub_len}, "
                    f"only {end - vstart} octets left"
                )
            if sub_type != QUEUE_PARAMETER:
                raise ItemFormatError(
                    f"QueueParameters: unknown sub-data item type {sub_type} at offset {off}"
                )
            queues.append(QueueParameter.decode_value(data[vstart:vend]))
            off = vend
        if len(queues) != num:
            raise ItemFormatError(
                f"QueueParameters: Num Queues {num} but {len(queues)} Queue Parameter "
                "sub-data items"
            )
        return cls(tuple(queues), scale)


class _QueueList(DataItem):
    """Base of Pause and Restart: one or more 8-bit Queue Indexes."""

    __slots__ = ()
    queues: tuple[int, ...]

    def _validate(self) -> None:
        if not isinstance(self.queues, tuple):
            object.__setattr__(self, "queues", tuple(self.queues))
        if not self.queues:
            raise ItemFormatError(f"{self.NAME}.queues: at least one Queue Index is required")
        if len(self.queues) > 0xFFFF:
            raise ItemFormatError(f"{self.NAME}.queues: too many Queue Indexes")
        for q in self.queues:
            _uint(f"{self.NAME}.queues", q, 8)

    @property
    def indexes(self) -> frozenset[int]:
        """The Queue Indexes named (255: all traffic)."""
        return frozenset(self.queues)

    @property
    def all_queues(self) -> bool:
        """True if it names 255, all traffic."""
        return ALL_QUEUES in self.queues

    def encode_value(self) -> bytes:
        return bytes(self.queues)


@dataclass(frozen=True, slots=True)
class Pause(_QueueList):
    """Pause (RFC 8651 §3.2): stop sending the traffic of these queues.

    In a Session Update it applies to all destinations, in a Destination
    Update to that destination. Queue Index 255 means all traffic.
    """

    TYPE: ClassVar[int] = PAUSE
    NAME: ClassVar[str] = "Pause"
    queues: tuple[int, ...]

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if not data:
            raise ItemFormatError("Pause: length 0, must name at least one Queue Index")
        return cls(tuple(data))


@dataclass(frozen=True, slots=True)
class Restart(_QueueList):
    """Restart (RFC 8651 §3.3): traffic of these queues may be sent again."""

    TYPE: ClassVar[int] = RESTART
    NAME: ClassVar[str] = "Restart"
    queues: tuple[int, ...]

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if not data:
            raise ItemFormatError("Restart: length 0, must name at least one Queue Index")
        return cls(tuple(data))


def pause(*queues: int) -> Pause:
    """A Pause item for ``queues`` (none given: 255, all traffic).

    Modem: ``session.update_destination(mac, extra=[pause(1)])`` pauses queue
    1 towards one destination; in a Session Update it pauses all of them.
    Raises ValueError for an index outside 0..255.
    """
    try:
        return Pause(tuple(dict.fromkeys(queues)) or (ALL_QUEUES,))
    except ItemFormatError as exc:
        raise ValueError(str(exc)) from None


def restart(*queues: int) -> Restart:
    """A Restart item for ``queues`` (none given: 255, all traffic)."""
    try:
        return Restart(tuple(dict.fromkeys(queues)) or (ALL_QUEUES,))
    except ItemFormatError as exc:
        raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------
# Events (router side)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuesPaused(Event):
    """The modem paused queues.

    Attributes:
        dest: destination key (Destination Update), or None for the whole
            session (Session Update).
        queues: the Queue Indexes this message named (255: all traffic).
        paused: every queue now paused in that scope.
    """

    dest: DestKey | None
    queues: frozenset[int]
    paused: frozenset[int]


@dataclass(frozen=True, slots=True)
class QueuesRestarted(Event):
    """The modem allowed queues again (same attributes as :class:`QueuesPaused`)."""

    dest: DestKey | None
    queues: frozenset[int]
    paused: frozenset[int]


@dataclass(frozen=True, slots=True)
class QueueParametersChanged(Event):
    """The modem redeclared its queues in a Session Update (the initial ones,
    from the Session Initialization Response, are
    :meth:`PauseExtension.parameters`)."""

    parameters: QueueParameters


# --------------------------------------------------------------------------
# The extension
# --------------------------------------------------------------------------


@dataclass(slots=True)
class PauseState:
    """Per-session state.

    Attributes:
        parameters: the Queue Parameters in force (router: the modem's last;
            modem: what we declared).
        session_paused: queues paused for every destination (255 = all).
        dest_paused: destination key -> queues paused for it alone.
    """

    parameters: QueueParameters | None = None
    session_paused: set[int] = field(default_factory=set)
    dest_paused: dict[DestKey, set[int]] = field(default_factory=dict)


DEFAULT_QUEUES: Final = QueueParameters((QueueParameter(0, 0, ()),))
"""One queue, no DSCPs: a modem without DSCP support (RFC 8651 §3.1)."""


class PauseExtension(Extension):
    """RFC 8651 Control-Plane-Based Pause.

    Args:
        queues: modem: the Queue Parameters to declare in the Session
            Initialization Response (a :class:`QueueParameters` item or a
            sequence of :class:`QueueParameter`); default one queue without
            DSCPs. Queue Indexes must be unique and numbered 0, 1, 2, ...
            (§3.1). Ignored by a router.
        scale: the Scale when ``queues`` is a sequence.
    """

    code: ClassVar[int] = EXTENSION_CODE
    name: ClassVar[str] = "pause"
    title: ClassVar[str] = "Control-Plane-Based Pause Extension (RFC 8651)"
    items: ClassVar[tuple[type[DataItem], ...]] = (QueueParameters, Pause, Restart)
    placements: ClassVar[tuple[Placement, ...]] = (
        # "MUST be included" in the Session Initialization Response -- when
        # the extension is in use, which the codec cannot know: the rule is
        # optional here and on_peer_init enforces it.
        Placement(_M.SESSION_INITIALIZATION_RESPONSE, QueueParameters, OPTIONAL),
        Placement(_M.SESSION_UPDATE, QueueParameters, OPTIONAL),
        Placement(_M.SESSION_UPDATE, Pause, ANY),
        Placement(_M.SESSION_UPDATE, Restart, ANY),
        Placement(_M.DESTINATION_UPDATE, Pause, ANY),
        Placement(_M.DESTINATION_UPDATE, Restart, ANY),
    )

    def __init__(
        self, queues: QueueParameters | Sequence[QueueParameter] | None = None, scale: int = 0
    ) -> None:
        try:
            if queues is None:
                params = DEFAULT_QUEUES
            elif isinstance(queues, QueueParameters):
                params = queues
            else:
                params = QueueParameters(tuple(queues), scale)
        except ItemFormatError as exc:
            raise ValueError(str(exc)) from None
        got = [q.index for q in params.queues]
        if got != list(range(len(got))):
            raise ValueError(
                f"queues: Queue Indexes {got} must be unique and numbered 0, 1, 2, ... "
                "(RFC 8651 §3.1)"
            )
        self.queue_parameters = params
        self._states: weakref.WeakKeyDictionary[Session, PauseState] = weakref.WeakKeyDictionary()

    # -- queries ------------------------------------------------------------

    def state(self, session: Session) -> PauseState:
        """This extension's state on ``session`` (created on first use)."""
        st = self._states.get(session)
        if st is None:
            st = self._states[session] = PauseState()
        return st

    def parameters(self, session: Session) -> QueueParameters | None:
        """The Queue Parameters in force on ``session`` (router: the modem's
        latest; modem: ours), None before session initialisation."""
        return self.state(session).parameters

    def paused(self, session: Session, dest: DestKey | bytes | None = None) -> frozenset[int]:
        """Router: queues paused session-wide (``dest`` None) or for ``dest``
        alone (not including the session-wide ones)."""
        st = self.state(session)
        if dest is None:
            return frozenset(st.session_paused)
        return frozenset(st.dest_paused.get(_key(dest), ()))

    def is_paused(self, session: Session, dest: DestKey | bytes, dscp: int | None = None) -> bool:
        """Router: must traffic to ``dest`` be held back now?

        With ``dscp``: traffic of that DSCP (its queue is paused, or all
        traffic is). Without: all traffic to ``dest`` (255, or every
        established queue). Session-wide and per-destination pauses both count.
        """
        st = self.state(session)
        paused = st.session_paused | st.dest_paused.get(_key(dest), set())
        if ALL_QUEUES in paused:
            return True
        params = st.parameters
        if dscp is None:
            return params is not None and params.indexes <= paused
        return (params.queue_of(dscp) if params is not None else 0) in paused

    # -- hooks --------------------------------------------------------------

    def new_state(self, session: Session) -> PauseState:
        return self.state(session)

    def init_items(self, session: Session) -> Sequence[DataItem]:
        if not _is_modem(session):
            return ()
        self.state(session).parameters = self.queue_parameters
        return (self.queue_parameters,)

    def on_peer_init(self, session: Session, msg: Message) -> None:
        if _is_modem(session):
            return
        params = msg.get(QueueParameters)
        if params is None:
            raise ExtensionViolation(
                "Session Initialization Response lists extension 2 (Pause) without a "
                "Queue Parameters item (RFC 8651 §3.1)"
            )
        # No event: the session is not up yet; SessionUp follows, and
        # parameters() gives what the modem declared.
        self.state(session).parameters = params

    def on_items(
        self, session: Session, msg: Message, dest: DestKey | None, items: Sequence[DataItem]
    ) -> None:
        if msg.type == _M.SESSION_INITIALIZATION_RESPONSE:
            self.on_peer_init(session, msg)  # idempotent
            return
        if _is_modem(session):
            names = ", ".join(sorted({i.NAME for i in items}))
            raise ExtensionViolation(
                f"router sent {names} in {msg.name}: only a modem sends them (RFC 8651 §3)"
            )
        st = self.state(session)
        for item in items:  # new queues apply to the whole message
            if isinstance(item, QueueParameters):
                self._new_parameters(session, st, item)
        where = dest if msg.type == _M.DESTINATION_UPDATE else None
        if msg.type == _M.DESTINATION_UPDATE and dest is None:
            raise ExtensionViolation(f"{msg.name} without a destination")  # engine bug
        scope = st.session_paused if where is None else st.dest_paused.get(where, set())
        for item in items:
            if isinstance(item, Pause | Restart):
                self._check_indexes(st, item, msg)
                if isinstance(item, Pause):
                    scope.update(item.queues)
                    _emit(session, QueuesPaused(where, item.indexes, frozenset(scope)))
                else:
                    if item.all_queues:
                        scope.clear()
                    else:
                        scope.difference_update(item.queues)
                    _emit(session, QueuesRestarted(where, item.indexes, frozenset(scope)))
        if where is not None:
            if scope:
                st.dest_paused[where] = scope
            else:
                st.dest_paused.pop(where, None)

    def on_destination_gone(self, session: Session, dest: DestKey) -> None:
        self.state(session).dest_paused.pop(dest, None)

    gauges: ClassVar[tuple[GaugeSpec, ...]] = (
        GaugeSpec(
            "dlep_session_paused_queues", "Queues paused session-wide by the modem (RFC 8651)"
        ),
        GaugeSpec(
            "dlep_destination_paused_queues",
            "Queues paused for one destination by the modem (RFC 8651; only when > 0)",
            ("mac",),
        ),
    )

    def gauge_samples(self, session: Session) -> Iterable[GaugeSample]:
        """Router: how many queues are paused, session-wide and per destination."""
        if _is_modem(session):
            return
        st = self.state(session)
        yield GaugeSample("dlep_session_paused_queues", (), len(st.session_paused))
        for key, queues in sorted(st.dest_paused.items(), key=lambda kv: str(kv[0])):
            if queues:
                yield GaugeSample("dlep_destination_paused_queues", (str(key),), len(queues))

    def check_outgoing(
        self, session: Session, message_type: int, items: Sequence[DataItem]
    ) -> None:
        """Sender-side rules: raise ValueError if ``items`` would break them.

        Only a modem sends these items (§3); Pause and Restart only in a
        Session Update or Destination Update (the codec checks placement) and
        only with Queue Indexes that are established (255, or an index of our
        Queue Parameters, including one sent in the same message); new Queue
        Parameters are numbered 0, 1, 2, ... (§3.1).
        """
        ours = [i for i in items if isinstance(i, QueueParameters | Pause | Restart)]
        if not ours:
            return
        if not _is_modem(session):
            raise ValueError(f"{ours[0].NAME}: only a modem sends it (RFC 8651 §3)")
        params = self.state(session).parameters or self.queue_parameters
        # As on receipt: new Queue Parameters apply to the whole message.
        for item in ours:
            if isinstance(item, QueueParameters):
                got = [q.index for q in item.queues]
                if got != list(range(len(got))):
                    raise ValueError(
                        f"Queue Indexes {got} must be unique and numbered 0, 1, 2, ... "
                        "(RFC 8651 §3.1)"
                    )
                params = item
        for item in ours:
            if isinstance(item, Pause | Restart):
                bad = sorted(q for q in item.queues if q != ALL_QUEUES and q not in params.indexes)
                if bad:
                    raise ValueError(
                        f"{item.NAME}: Queue Index {', '.join(map(str, bad))} is not in our "
                        f"Queue Parameters ({sorted(params.indexes)}) (RFC 8651 §3.2)"
                    )

    # -- internals ------------------------------------------------------------

    @staticmethod
    def _check_indexes(st: PauseState, item: Pause | Restart, msg: Message) -> None:
        known = st.parameters.indexes if st.parameters is not None else frozenset()
        bad = sorted(q for q in item.queues if q != ALL_QUEUES and q not in known)
        if bad:
            raise ExtensionViolation(
                f"{item.NAME} in {msg.name} names Queue Index {', '.join(map(str, bad))}, "
                f"not established by the Queue Parameters ({sorted(known)}) (RFC 8651 §3.2)"
            )

    @staticmethod
    def _new_parameters(session: Session, st: PauseState, params: QueueParameters) -> None:
        st.parameters = params
        # Queues that no longer exist cannot be restarted by index: forget
        # their pauses (255, all traffic, stays).
        keep = params.indexes | {ALL_QUEUES}
        st.session_paused &= keep
        for key in list(st.dest_paused):
            st.dest_paused[key] &= keep
            if not st.dest_paused[key]:
                del st.dest_paused[key]
        _emit(session, QueueParametersChanged(params))


def _is_modem(session: Session) -> bool:
    return bool(session.role.value == "modem")


def _key(dest: DestKey | bytes) -> DestKey:
    """A plain MAC names the destination without identity items."""
    return dest if isinstance(dest, DestKey) else DestKey(bytes(dest))


def _emit(session: Session, event: Event) -> None:
    """Hand ``event`` to the application through the session's event queue."""
    session.emit(event)
