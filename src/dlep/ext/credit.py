"""RFC 9893 Credit-Based Flow Control: messages, data items, credit accounting.

RFC 9893 has no Extension Type Value: its two messages and five data items
(and the RFC 9892 Traffic Classification item) are used by the extensions
that require them, RFC 9894 Diffserv Aware Credit Window (code 6,
:mod:`dlep.ext.credit_diffserv`) and RFC 9895 IEEE 802.1Q Aware Credit
Window (code 5, :mod:`dlep.ext.credit_8021q`). Both are subclasses of
:class:`CreditWindowExtension`, which holds the whole machinery; they differ
only in the traffic classification sub-data item they add.

Wire formats (§2.2-§2.3)::

    Credit Control (message 17), Credit Control Response (message 18)
    Credit Window Initialization (30): FID (16) | Reserved (16) |
        Credit Value (64) | Scale (8) | Credit Window Max Size (24)
    Credit Window Association (31):    TID (16)
    Credit Window Grant (32):          FID (16) | Reserved (16) | Additional Credits (64)
    Credit Window Status (33):         FID (16) | Reserved (16) | Current Credit Window Size (64)
    Credit Window Request (34):        FID (16) * n, n >= 1; FID 0xFFFF = all windows

Where each item may appear (:data:`CREDIT_PLACEMENTS` and the message specs
of :func:`credit_message_specs`) and the session behaviour:

* modem -> router: Traffic Classification and Credit Window Initialization
  in Session Initialization Response / Session Update; exactly one Credit
  Window Association in every Destination Up and Destination Update; Credit
  Window Grants in Destination Up, Destination Announce Response,
  Destination Update, Credit Control and Credit Control Response;
* router -> modem: Credit Window Status in Destination Up Response (for the
  grants of that Destination Up), Credit Control Response (for the grants of
  a Credit Control) and Credit Control (with a Credit Window Request);
* one Credit Control outstanding per sender (§2.2.1): later ones wait, and
  are coalesced, until the Credit Control Response arrives.

The accounting model (:class:`CreditLedger`) is pure: no clock, no I/O. On
a router it holds the credits it may still send per credit window (FID):
:meth:`CreditSessionState.consume` before each packet, refused (False) when
the window has too few credits (§2.1: the packet must not be sent). On a
modem it holds the modem's view of the router's windows, which
:meth:`CreditSessionState.observe` decrements as frames arrive, so that a
received Credit Window Status can be compared with it (§2.3.4).
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, Self, cast

from ..fsm.destinations import DestKey
from ..fsm.events import Event, Inconsistency
from ..fsm.plugins import GaugeSample, GaugeSpec
from ..wire import (
    ANY,
    OPTIONAL,
    DataItem,
    ItemFormatError,
    MacAddress,
    Message,
    MessageType,
    StatusCode,
    UnitSpec,
    message_name,
)
from .base import Extension, ExtensionViolation, Placement
from .traffic_class import Classifier, TrafficClassification, _uint

if TYPE_CHECKING:
    from ..fsm.session import Session

__all__ = [
    "ALL_FIDS",
    "CREDIT_CONTROL",
    "CREDIT_CONTROL_RESPONSE",
    "CREDIT_ITEMS",
    "CREDIT_PLACEMENTS",
    "CREDIT_WINDOW_ASSOCIATION",
    "CREDIT_WINDOW_GRANT",
    "CREDIT_WINDOW_INITIALIZATION",
    "CREDIT_WINDOW_REQUEST",
    "CREDIT_WINDOW_STATUS",
    "SCALE_FACTORS",
    "CreditControlChannel",
    "CreditGranted",
    "CreditLedger",
    "CreditRequested",
    "CreditSessionState",
    "CreditStatusReceived",
    "CreditWindow",
    "CreditWindowAssociated",
    "CreditWindowAssociation",
    "CreditWindowExtension",
    "CreditWindowGrant",
    "CreditWindowInfo",
    "CreditWindowInitialization",
    "CreditWindowRequest",
    "CreditWindowStatus",
    "CreditWindowsChanged",
    "TrafficClassificationChanged",
    "credit_message_specs",
    "credit_state",
]

#: Message type codes (RFC 9893 §5.1).
CREDIT_CONTROL: Final = 17
CREDIT_CONTROL_RESPONSE: Final = 18
#: Data item type codes (RFC 9893 §5.2).
CREDIT_WINDOW_INITIALIZATION: Final = 30
CREDIT_WINDOW_ASSOCIATION: Final = 31
CREDIT_WINDOW_GRANT: Final = 32
CREDIT_WINDOW_STATUS: Final = 33
CREDIT_WINDOW_REQUEST: Final = 34
#: The FID that means "every credit window" in a Credit Window Request (§2.3.5).
ALL_FIDS: Final = 0xFFFF
#: Octets per unit of Credit Window Max Size for Scale 0..3 (§2.3.1 Table 1).
SCALE_FACTORS: Final = (1, 1024, 1024**2, 1024**3)
MAX_SIZE_FIELD: Final = 0xFFFFFF
U64_MAX: Final = (1 << 64) - 1

_M = MessageType
_FID_U64: Final = struct.Struct("!HHQ")
_CWI: Final = struct.Struct("!HHQI")


# --------------------------------------------------------------------------
# Data items (§2.3)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditWindowInitialization(DataItem):
    """Credit Window Initialization (RFC 9893 §2.3.1): window ``fid`` has
    ``credits`` octets and holds at most ``max_size`` x ``SCALE_FACTORS[scale]``.

    Use :meth:`from_octets` to give the maximum in octets.
    """

    TYPE: ClassVar[int] = CREDIT_WINDOW_INITIALIZATION
    NAME: ClassVar[str] = "CreditWindowInitialization"
    fid: int
    credits: int
    max_size: int
    scale: int = 0

    def __post_init__(self) -> None:
        _uint(f"{self.NAME}.fid", self.fid, 16)
        _uint(f"{self.NAME}.credits", self.credits, 64)
        _uint(f"{self.NAME}.max_size", self.max_size, 24)
        _uint(f"{self.NAME}.scale", self.scale, 8)
        if self.scale >= len(SCALE_FACTORS):
            raise ItemFormatError(f"{self.NAME}.scale: {self.scale} is not a valid scale (0-3)")

    @classmethod
    def from_octets(cls, fid: int, credits: int, max_octets: int) -> Self:
        """With the maximum in octets, in the finest scale that holds it.

        A maximum that is not a multiple of that scale is rounded down: the
        modem never advertises more queue than it has.
        """
        _uint(f"{cls.NAME}.max_octets", max_octets, 64)
        for scale, factor in enumerate(SCALE_FACTORS):
            if max_octets // factor <= MAX_SIZE_FIELD:
                return cls(fid, credits, max_octets // factor, scale)
        raise ItemFormatError(f"{cls.NAME}: maximum {max_octets} octets exceeds what Scale 3 holds")

    @property
    def max_octets(self) -> int:
        """Credit Window Max Size in octets."""
        return self.max_size * SCALE_FACTORS[self.scale]

    def encode_value(self) -> bytes:
        return _CWI.pack(self.fid, 0, self.credits, (self.scale << 24) | self.max_size)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 16:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be 16")
        fid, _reserved, credits, word = _CWI.unpack(data)
        scale = word >> 24
        if scale >= len(SCALE_FACTORS):
            raise ItemFormatError(f"{cls.NAME}: Scale {scale} is not a valid scale (0-3)")
        return cls(fid, credits, word & MAX_SIZE_FIELD, scale)


@dataclass(frozen=True, slots=True)
class CreditWindowAssociation(DataItem):
    """Credit Window Association (RFC 9893 §2.3.2): the destination of the
    message uses traffic class ``tid``."""

    TYPE: ClassVar[int] = CREDIT_WINDOW_ASSOCIATION
    NAME: ClassVar[str] = "CreditWindowAssociation"
    tid: int

    def __post_init__(self) -> None:
        _uint(f"{self.NAME}.tid", self.tid, 16)

    def encode_value(self) -> bytes:
        return self.tid.to_bytes(2, "big")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 2:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be 2")
        return cls((data[0] << 8) | data[1])


@dataclass(frozen=True, slots=True)
class _FidCredits(DataItem):
    """FID (16) | Reserved (16) | 64-bit credits: Grant and Status."""

    fid: int
    credits: int

    def __post_init__(self) -> None:
        _uint(f"{self.NAME}.fid", self.fid, 16)
        _uint(f"{self.NAME}.credits", self.credits, 64)

    def encode_value(self) -> bytes:
        return _FID_U64.pack(self.fid, 0, self.credits)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 12:
            raise ItemFormatError(f"{cls.NAME}: length {len(data)}, must be 12")
        fid, _reserved, credits = _FID_U64.unpack(data)
        return cls(fid, credits)


class CreditWindowGrant(_FidCredits):
    """Credit Window Grant (RFC 9893 §2.3.3): ``credits`` more octets for
    window ``fid`` (0: none)."""

    __slots__ = ()
    TYPE: ClassVar[int] = CREDIT_WINDOW_GRANT
    NAME: ClassVar[str] = "CreditWindowGrant"


class CreditWindowStatus(_FidCredits):
    """Credit Window Status (RFC 9893 §2.3.4): the router has ``credits``
    octets left in window ``fid``."""

    __slots__ = ()
    TYPE: ClassVar[int] = CREDIT_WINDOW_STATUS
    NAME: ClassVar[str] = "CreditWindowStatus"


@dataclass(frozen=True, slots=True)
class CreditWindowRequest(DataItem):
    """Credit Window Request (RFC 9893 §2.3.5): the router asks for credits
    for windows ``fids`` (:data:`ALL_FIDS` = every window)."""

    TYPE: ClassVar[int] = CREDIT_WINDOW_REQUEST
    NAME: ClassVar[str] = "CreditWindowRequest"
    fids: tuple[int, ...]

    def __post_init__(self) -> None:
        fids = self.fids
        if isinstance(fids, str | bytes) or not isinstance(fids, Iterable):
            raise ItemFormatError(f"{self.NAME}.fids: expected a sequence, got {fids!r}")
        fids = tuple(fids)
        for f in fids:
            _uint(f"{self.NAME}.fids", f, 16)
        if not fids:
            raise ItemFormatError(f"{self.NAME}.fids: at least one FID is required")
        if len(fids) > 0xFFFF // 2:
            raise ItemFormatError(f"{self.NAME}.fids: too many FIDs")
        object.__setattr__(self, "fids", fids)

    @property
    def all(self) -> bool:
        """True if the request covers every window (FID 0xFFFF present)."""
        return ALL_FIDS in self.fids

    def encode_value(self) -> bytes:
        return struct.pack(f"!{len(self.fids)}H", *self.fids)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) < 2 or len(data) % 2:
            raise ItemFormatError(
                f"{cls.NAME}: length {len(data)}, must be a positive multiple of 2"
            )
        return cls(struct.unpack(f"!{len(data) // 2}H", data))


#: Every data item the credit-window extensions add (RFC 9892 and 9893).
CREDIT_ITEMS: Final[tuple[type[DataItem], ...]] = (
    TrafficClassification,
    CreditWindowInitialization,
    CreditWindowAssociation,
    CreditWindowGrant,
    CreditWindowStatus,
    CreditWindowRequest,
)


def credit_message_specs() -> tuple[UnitSpec, UnitSpec]:
    """Fresh specs of Credit Control (17) and Credit Control Response (18).

    Which of the items a sender must include depends on whether it is a
    modem or a router (§2.2); the specs allow the union (and need at least
    a Grant or a Request, resp. a Grant or a Status), the extension checks
    the sender's side on receipt.
    """
    return (
        UnitSpec(
            CREDIT_CONTROL,
            "Credit Control",
            {CREDIT_WINDOW_GRANT: ANY, CREDIT_WINDOW_STATUS: ANY, CREDIT_WINDOW_REQUEST: ANY},
            one_of=[frozenset({CREDIT_WINDOW_GRANT, CREDIT_WINDOW_REQUEST})],
        ),
        UnitSpec(
            CREDIT_CONTROL_RESPONSE,
            "Credit Control Response",
            {CREDIT_WINDOW_GRANT: ANY, CREDIT_WINDOW_STATUS: ANY},
            one_of=[frozenset({CREDIT_WINDOW_GRANT, CREDIT_WINDOW_STATUS})],
        ),
    )


#: Where the items may appear in core messages (RFC 9892 §2.1, RFC 9893 §2.3).
#: Traffic Classification and Credit Window Initialization are accepted (not
#: sent) in Destination Up/Update too: RFC 9893 §2.3.2 and §2.3.3 refer to
#: them being "carried in the same message" as an Association or a Grant.
CREDIT_PLACEMENTS: Final[tuple[Placement, ...]] = (
    Placement(_M.SESSION_INITIALIZATION_RESPONSE, TrafficClassification, ANY),
    Placement(_M.SESSION_UPDATE, TrafficClassification, ANY),
    Placement(_M.DESTINATION_UP, TrafficClassification, ANY, receive_only=True),
    Placement(_M.DESTINATION_UPDATE, TrafficClassification, ANY, receive_only=True),
    Placement(_M.SESSION_INITIALIZATION_RESPONSE, CreditWindowInitialization, ANY),
    Placement(_M.SESSION_UPDATE, CreditWindowInitialization, ANY),
    Placement(_M.DESTINATION_UP, CreditWindowInitialization, ANY, receive_only=True),
    Placement(_M.DESTINATION_UPDATE, CreditWindowInitialization, ANY, receive_only=True),
    # "A single ... MUST be included in every Destination Up and Destination
    # Update" -- optional for the codec (the extension may not be in use),
    # exactly one is enforced by the extension when it is.
    Placement(_M.DESTINATION_UP, CreditWindowAssociation, OPTIONAL),
    Placement(_M.DESTINATION_UPDATE, CreditWindowAssociation, OPTIONAL),
    Placement(_M.DESTINATION_UP, CreditWindowGrant, ANY),
    Placement(_M.DESTINATION_ANNOUNCE_RESPONSE, CreditWindowGrant, ANY),
    Placement(_M.DESTINATION_UPDATE, CreditWindowGrant, ANY),
    Placement(_M.DESTINATION_UP_RESPONSE, CreditWindowStatus, ANY),
)


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditWindowInfo:
    """A snapshot of one credit window: ``credits`` of ``max_size`` octets."""

    fid: int
    credits: int
    max_size: int


@dataclass(frozen=True, slots=True)
class TrafficClassificationChanged(Event):
    """Router: the modem defined or replaced traffic class ``classification.tid``."""

    classification: TrafficClassification
    message_type: int


@dataclass(frozen=True, slots=True)
class CreditWindowsChanged(Event):
    """Router: Credit Window Initialization items created or reset these windows."""

    windows: tuple[CreditWindowInfo, ...]
    message_type: int


@dataclass(frozen=True, slots=True)
class CreditWindowAssociated(Event):
    """Router: traffic to destination ``mac`` is now classified by ``tid``."""

    mac: bytes
    tid: int
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()


@dataclass(frozen=True, slots=True)
class CreditGranted(Event):
    """Router: the modem granted credits to window ``fid``.

    ``granted`` is what the item carried, ``added`` what the window grew by
    (less if it hit its maximum), ``credits`` what it holds now.
    """

    fid: int
    granted: int
    added: int
    credits: int
    message_type: int
    mac: bytes | None = None
    #: Identity items naming the destination with ``mac`` (RFC 8703).
    ident: tuple[DataItem, ...] = ()


@dataclass(frozen=True, slots=True)
class CreditRequested(Event):
    """Modem: the router asked for credits; ``granted`` is (FID, credits) as answered."""

    fids: tuple[int, ...]
    granted: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class CreditStatusReceived(Event):
    """Modem: the router reported ``reported`` credits left in window ``fid``.

    ``expected`` is the modem's own view (grants sent minus frames observed);
    ``mismatch`` is True when they differ by more than the configured
    tolerance: RFC 9893 §2.3.4 says the modem SHOULD then reset the window
    with a Credit Window Initialization (:meth:`CreditSessionState.resync_items`).
    """

    fid: int
    reported: int
    expected: int
    mismatch: bool
    message_type: int


# --------------------------------------------------------------------------
# The accounting model (pure)
# --------------------------------------------------------------------------


@dataclass(slots=True)
class CreditWindow:
    """One credit window: ``credits`` available of at most ``max_size`` octets."""

    fid: int
    credits: int = 0
    max_size: int = 0

    def info(self) -> CreditWindowInfo:
        """An immutable snapshot."""
        return CreditWindowInfo(self.fid, self.credits, self.max_size)


class CreditLedger:
    """Credit windows, traffic classes and destination associations of one
    session; pure bookkeeping, usable on either side.

    Windows are keyed by FID, traffic classes by TID, associations by
    destination key (the MAC Address octets, or the engine's key).
    """

    __slots__ = ("_classifiers", "associations", "classifications", "windows")

    def __init__(self) -> None:
        self.windows: dict[int, CreditWindow] = {}
        self.classifications: dict[int, TrafficClassification] = {}
        self.associations: dict[DestKey, int] = {}
        self._classifiers: dict[int, Classifier] = {}

    # -- traffic classification -----------------------------------------

    def set_classification(self, classification: TrafficClassification) -> None:
        """Define or replace traffic class ``classification.tid`` (RFC 9892 §2.1)."""
        self.classifications[classification.tid] = classification
        self._classifiers[classification.tid] = Classifier(classification)

    def known_fids(self) -> frozenset[int]:
        """Every FID some traffic class defines."""
        out: set[int] = set()
        for tc in self.classifications.values():
            out |= tc.fids
        return frozenset(out)

    def associate(self, dest: DestKey | bytes | str, tid: int) -> bool:
        """Destination ``dest`` uses traffic class ``tid``; True if that changed.

        KeyError if no traffic class ``tid`` is defined.
        """
        if tid not in self.classifications:
            raise KeyError(tid)
        dest = _dest_key(dest)
        old = self.associations.get(dest)
        self.associations[dest] = tid
        return old != tid

    def forget(self, dest: DestKey | bytes | str) -> None:
        """Destination ``dest`` is gone."""
        self.associations.pop(_dest_key(dest), None)

    def classify(
        self,
        dest: DestKey | bytes | str,
        *,
        dscp: int | None = None,
        vid: int | None = None,
        pcp: int | None = None,
    ) -> int | None:
        """The FID of a packet to ``dest``; None: no classifier matches, and
        RFC 9893 §2.1 says such a packet must not be sent."""
        tid = self.associations.get(_dest_key(dest))
        if tid is None:
            return None
        c = self._classifiers.get(tid)
        return None if c is None else c.match(dscp=dscp, vid=vid, pcp=pcp)

    # -- credit windows -----------------------------------------------------

    def initialize(self, fid: int, credits: int, max_size: int) -> CreditWindow:
        """Create or reset window ``fid``: ``credits``, capped at ``max_size``
        (RFC 9893 §2.3.1)."""
        w = self.windows.get(fid)
        if w is None:
            w = self.windows[fid] = CreditWindow(fid)
        w.max_size = max_size
        w.credits = min(credits, max_size)
        return w

    def add(self, fid: int, credits: int) -> int | None:
        """Grant ``credits`` to window ``fid``, capped at its maximum (§2.3.3).

        Returns by how much the window grew, or None if there is no window
        ``fid``.
        """
        w = self.windows.get(fid)
        if w is None:
            return None
        new = min(w.credits + credits, w.max_size)
        added = max(new - w.credits, 0)
        w.credits = max(new, min(w.credits, w.max_size))
        return added

    def consume(self, fid: int, octets: int) -> bool:
        """Take ``octets`` (MAC overhead included, §2.1) from window ``fid``.

        False, and nothing taken, if the window does not exist or holds too
        few credits: the packet must not be sent.
        """
        if octets < 0:
            raise ValueError(f"octets: {octets} is negative")
        w = self.windows.get(fid)
        if w is None or w.credits < octets:
            return False
        w.credits -= octets
        return True

    def drain(self, fid: int, octets: int) -> int:
        """Take up to ``octets`` from window ``fid`` (never below 0); the rest.

        A modem uses it for frames it observed from the router.
        """
        if octets < 0:
            raise ValueError(f"octets: {octets} is negative")
        w = self.windows.get(fid)
        if w is None:
            return 0
        w.credits = max(w.credits - octets, 0)
        return w.credits

    def credits(self, fid: int) -> int:
        """Credits in window ``fid`` (0 if there is none)."""
        w = self.windows.get(fid)
        return 0 if w is None else w.credits

    def snapshot(self) -> tuple[CreditWindowInfo, ...]:
        """Every window, by FID."""
        return tuple(self.windows[f].info() for f in sorted(self.windows))


class CreditControlChannel:
    """RFC 9893 §2.2.1: a sender has at most one Credit Control outstanding."""

    __slots__ = ("outstanding",)

    def __init__(self) -> None:
        self.outstanding = False

    def try_begin(self) -> bool:
        """True (and now outstanding) if a Credit Control may be sent now."""
        if self.outstanding:
            return False
        self.outstanding = True
        return True

    def complete(self) -> None:
        """The Credit Control Response arrived; ValueError if none was due."""
        if not self.outstanding:
            raise ValueError("Credit Control Response without an outstanding Credit Control")
        self.outstanding = False


# --------------------------------------------------------------------------
# Per-session state: the model wired to a session
# --------------------------------------------------------------------------


class _Host(Protocol):
    """What the extension uses of :class:`~dlep.fsm.Session`."""

    @property
    def role(self) -> Any: ...

    @property
    def extensions(self) -> frozenset[int]: ...

    @property
    def now(self) -> float: ...

    def send_message(self, message_type: int, items: Sequence[DataItem], *, now: float) -> None: ...

    def emit(self, event: Event) -> None: ...


#: Called on a modem for each window the router requests credits for; returns
#: extra credits to grant (on top of grants the application queued).
RequestPolicy = Callable[[CreditWindowInfo], int]


class CreditSessionState:
    """The credit-window state of one session, shared by the credit-window
    extensions negotiated on it (``session.ext_state[5]`` and ``[6]`` are
    the same object); get it with :func:`credit_state`.

    Router API: :meth:`classify`, :meth:`consume`, :meth:`request_credits`,
    :meth:`credits`, :meth:`windows`.
    Modem API: :meth:`grant`, :meth:`observe`, :meth:`destination_items`,
    :meth:`session_update_items`, :meth:`resync_items`.
    """

    def __init__(
        self,
        role: str,
        host: object | None = None,
        *,
        request_policy: RequestPolicy | None = None,
        status_tolerance: int | None = None,
    ) -> None:
        if role not in ("router", "modem"):
            raise ValueError(f"role: {role!r} is neither 'router' nor 'modem'")
        self.role = role
        self.ledger = CreditLedger()
        self.channel = CreditControlChannel()
        self.request_policy = request_policy
        self.status_tolerance = status_tolerance
        #: Sub-data item types usable on this session (from the negotiated set).
        self.allowed_sub_types: frozenset[int] = frozenset()
        self._host: weakref.ref[Any] | None = None if host is None else weakref.ref(host)
        self._last: Message | None = None
        # router: what the next Credit Control must carry
        self._want_request: set[int] = set()
        self._want_status: set[int] = set()
        # router: windows to report in the Destination Up Response, per destination
        self._dest_status: dict[DestKey, list[int]] = {}
        # modem: grants waiting for the outstanding Credit Control's response
        self._pending_grants: dict[int, int] = {}
        # modem: the last Credit Window Initialization sent per FID, and what
        # went out in this session's initialisation
        self._cwi: dict[int, CreditWindowInitialization] = {}
        self.init_sent: set[DataItem] = set()

    @property
    def is_router(self) -> bool:
        """True on the router side."""
        return self.role == "router"

    def _session(self) -> _Host:
        host = None if self._host is None else self._host()
        if host is None:
            raise RuntimeError("credit state is not attached to a live session")
        return cast(_Host, host)

    def _emit(self, event: Event) -> None:
        self._session().emit(event)

    def _send(self, message_type: int, items: Sequence[DataItem], now: float | None = None) -> None:
        host = self._session()
        # Inside a hook the received message's time applies; an application
        # call outside the engine passes its own (host.now refuses otherwise).
        host.send_message(message_type, items, now=host.now if now is None else now)

    def _require(self, role: str, what: str) -> None:
        if self.role != role:
            raise ValueError(f"{what}: only a {role} does that (RFC 9893)")

    # -- both sides -----------------------------------------------------------

    def credits(self, fid: int) -> int:
        """Credits in window ``fid`` (router: what it may send; modem: its view)."""
        return self.ledger.credits(fid)

    def windows(self) -> tuple[CreditWindowInfo, ...]:
        """Every credit window, by FID."""
        return self.ledger.snapshot()

    # -- router API -----------------------------------------------------------

    def classify(
        self,
        dest: DestKey | bytes | str,
        *,
        dscp: int | None = None,
        vid: int | None = None,
        pcp: int | None = None,
    ) -> int | None:
        """Router: the credit window (FID) of a packet to ``dest``, or None
        (no match: do not send it)."""
        return self.ledger.classify(_dest_key(dest), dscp=dscp, vid=vid, pcp=pcp)

    def consume(self, fid: int, octets: int) -> bool:
        """Router: take ``octets`` from window ``fid`` before sending a packet
        of that size (MAC header and trailer included). False: too few
        credits, the packet must wait (RFC 9893 §2.1)."""
        self._require("router", "consume")
        return self.ledger.consume(fid, octets)

    def request_credits(
        self, fids: Iterable[int] | None = None, *, now: float | None = None
    ) -> bool:
        """Router: ask the modem for credits (Credit Control with a Credit
        Window Request, and a Credit Window Status per requested window).

        ``fids`` None means every window (FID 0xFFFF). Returns True if the
        message went out now, False if it waits for the response to the
        Credit Control already outstanding (requests are merged meanwhile).
        ``now``: the time, when called outside an engine call (a hook).
        """
        self._require("router", "request_credits")
        wanted = {ALL_FIDS} if fids is None else {_uint("fid", f, 16) for f in fids}
        if not wanted:
            raise ValueError("request_credits: no FIDs given")
        self._want_request |= wanted
        return self._flush_router(now)

    def _flush_router(self, now: float | None = None) -> bool:
        if not (self._want_request or self._want_status):
            return False
        if not self.channel.try_begin():
            return False
        req = sorted(self._want_request)
        if ALL_FIDS in self._want_request:
            req = [ALL_FIDS]
            status = set(self.ledger.windows) | self._want_status
        else:
            status = set(req) | self._want_status
        items: list[DataItem] = [CreditWindowRequest(tuple(req))]
        items += [CreditWindowStatus(f, self.ledger.credits(f)) for f in sorted(status)]
        self._want_request.clear()
        self._want_status.clear()
        try:
            self._send(CREDIT_CONTROL, items, now)
        except Exception:
            self.channel.outstanding = False
            raise
        return True

    # -- modem API ------------------------------------------------------------

    def grant(self, fid: int, credits: int, *, now: float | None = None) -> bool:
        """Modem: give the router ``credits`` more octets in window ``fid``
        (Credit Control with a Credit Window Grant).

        Returns True if sent now, False if it waits (added up per window)
        for the response to the outstanding Credit Control. ``now``: the
        time, when called outside an engine call (a hook).
        """
        self._require("modem", "grant")
        _uint("fid", fid, 16)
        _uint("credits", credits, 64)
        if fid not in self.ledger.windows:
            raise ValueError(f"grant: no credit window {fid} (initialise it first)")
        self._pending_grants[fid] = min(self._pending_grants.get(fid, 0) + credits, U64_MAX)
        return self._flush_modem(now)

    def _flush_modem(self, now: float | None = None) -> bool:
        if not self._pending_grants or not self.channel.try_begin():
            return False
        grants = sorted(self._pending_grants.items())
        try:
            self._send(CREDIT_CONTROL, [CreditWindowGrant(f, n) for f, n in grants], now)
        except Exception:
            self.channel.outstanding = False
            raise
        self._pending_grants.clear()
        for f, n in grants:
            self.ledger.add(f, n)
        return True

    def observe(self, fid: int, octets: int) -> int:
        """Modem: a frame of ``octets`` for window ``fid`` arrived from the
        router; returns the modem's view of the router's remaining credits."""
        self._require("modem", "observe")
        return self.ledger.drain(fid, octets)

    def destination_items(
        self,
        dest: DestKey | bytes | str,
        tid: int | None = None,
        grants: Mapping[int, int] | None = None,
    ) -> list[DataItem]:
        """Modem: the items for a Destination Up / Destination Update about
        ``dest`` -- its Credit Window Association (mandatory in both, §2.3.2)
        and optional grants. Pass them as ``extra=`` to ``add_destination``
        / ``update_destination``; the grants count as sent.

        ``tid`` defaults to the destination's current traffic class.
        """
        self._require("modem", "destination_items")
        key = _dest_key(dest)
        if tid is None:
            tid = self.ledger.associations.get(key)
            if tid is None:
                raise ValueError(f"destination {key} has no traffic class yet")
        try:
            self.ledger.associate(key, tid)
        except KeyError:
            raise ValueError(f"traffic class {tid} was never sent to the router") from None
        items: list[DataItem] = [CreditWindowAssociation(tid)]
        for fid, n in sorted((grants or {}).items()):
            if fid not in self.ledger.windows:
                raise ValueError(f"grant: no credit window {fid}")
            items.append(CreditWindowGrant(fid, n))
            self.ledger.add(fid, n)
        return items

    def session_update_items(
        self,
        classifications: Iterable[TrafficClassification] = (),
        windows: Iterable[CreditWindowInitialization] = (),
    ) -> list[DataItem]:
        """Modem: Traffic Classification and Credit Window Initialization
        items for a Session Update (new or changed classes and windows);
        recorded as sent."""
        self._require("modem", "session_update_items")
        tcs = list(classifications)
        cwis = list(windows)
        for tc in tcs:
            bad = tc.sub_types - self.allowed_sub_types
            if bad:
                raise ValueError(
                    f"traffic class {tc.tid}: sub-data item types {sorted(bad)} are not in use "
                    "on this session"
                )
        for tc in tcs:
            self.ledger.set_classification(tc)
        for cwi in cwis:
            self.record_cwi(cwi)
        return [*tcs, *cwis]

    def resync_items(self, fids: Iterable[int] | None = None) -> list[DataItem]:
        """Modem: Credit Window Initialization items that reset the router's
        windows to the modem's view (RFC 9893 §2.3.4), for a Session Update."""
        self._require("modem", "resync_items")
        wanted = sorted(self.ledger.windows) if fids is None else sorted(set(fids))
        out: list[DataItem] = []
        for fid in wanted:
            w = self.ledger.windows.get(fid)
            old = self._cwi.get(fid)
            if w is None or old is None:
                raise ValueError(f"resync: no credit window {fid}")
            out.append(CreditWindowInitialization(fid, w.credits, old.max_size, old.scale))
        return out

    def record_cwi(self, cwi: CreditWindowInitialization) -> None:
        """Modem: a Credit Window Initialization went out; track its window."""
        self._cwi[cwi.fid] = cwi
        self.ledger.initialize(cwi.fid, cwi.credits, cwi.max_octets)

    # -- receive processing (called by the extension hooks) ------------------

    def seen(self, msg: Message) -> bool:
        """True if ``msg`` was already processed (several hooks, or both
        credit extensions, may hand over the same message); else marks it."""
        if msg is self._last:
            return True
        self._last = msg
        return False

    def on_items(self, msg: Message, dest: DestKey | None) -> None:
        """The credit items of core message ``msg`` (about ``dest``)."""
        if self.seen(msg):
            return
        tcs = msg.get_all(TrafficClassification)
        cwis = msg.get_all(CreditWindowInitialization)
        cwas = msg.get_all(CreditWindowAssociation)
        grants = msg.get_all(CreditWindowGrant)
        statuses = msg.get_all(CreditWindowStatus)
        mt = msg.type
        if not self.is_router:
            if tcs or cwis or cwas or grants:
                raise ExtensionViolation(
                    f"{_name(mt)} from a router carries modem-only credit window items "
                    "(RFC 9892/9893)"
                )
            if statuses:
                self._apply_statuses(statuses, mt)
            return
        if statuses:
            raise ExtensionViolation(
                f"{_name(mt)} from a modem carries Credit Window Status (RFC 9893 §2.3.4)"
            )
        for tc in tcs:
            self._apply_classification(tc, mt)
        if cwis:
            self._apply_initializations(cwis, mt)
        if mt in (_M.DESTINATION_UP, _M.DESTINATION_UPDATE):
            key = dest if dest is not None else DestKey(_mac_of(msg))
            if len(cwas) != 1:
                raise ExtensionViolation(
                    f"{_name(mt)} for {_key_name(key)} carries {len(cwas)} Credit Window "
                    "Association items; exactly one is required (RFC 9893 §2.3.2)"
                )
            self._apply_association(key, cwas[0].tid)
        if grants:
            key = dest if dest is not None else DestKey(_mac_of(msg))
            fids = self._apply_grants(grants, mt, key)
            if mt == _M.DESTINATION_UP:
                # §2.3.3: the Status items go in the Destination Up Response.
                self._dest_status[key] = fids
            else:
                # §2.3.3: "Otherwise, a Credit Control Message MUST be sent";
                # §2.2.1: a router's Credit Control carries a Request.
                self._want_status.update(fids)
                self._want_request.update(fids)
                self._flush_router()

    def response_items(self, message_type: int, dest: DestKey | None) -> list[DataItem]:
        """Items to add to a response we send: the router's Credit Window
        Status for the grants of the Destination Up being answered."""
        if not self.is_router or message_type != _M.DESTINATION_UP_RESPONSE or dest is None:
            return []
        fids = self._dest_status.pop(dest, None)
        if not fids:
            return []
        return [CreditWindowStatus(f, self.ledger.credits(f)) for f in fids]

    def on_message(self, msg: Message) -> None:
        """A Credit Control or Credit Control Response arrived."""
        if self.seen(msg):
            return
        if msg.type == CREDIT_CONTROL:
            if self.is_router:
                self._router_on_credit_control(msg)
            else:
                self._modem_on_credit_control(msg)
        elif msg.type == CREDIT_CONTROL_RESPONSE:
            try:
                self.channel.complete()
            except ValueError as exc:
                raise ExtensionViolation(str(exc), StatusCode.UNEXPECTED_MESSAGE) from None
            if self.is_router:
                if msg.get(CreditWindowStatus) is not None:
                    raise ExtensionViolation(
                        "Credit Control Response from a modem carries Credit Window Status "
                        "(RFC 9893 §2.2.2)"
                    )
                # §2.3.3: no response to grants in a Credit Control Response.
                self._apply_grants(msg.get_all(CreditWindowGrant), msg.type, None)
                self._flush_router()
            else:
                if msg.get(CreditWindowGrant) is not None:
                    raise ExtensionViolation(
                        "Credit Control Response from a router carries Credit Window Grant "
                        "(RFC 9893 §2.2.2)"
                    )
                self._apply_statuses(msg.get_all(CreditWindowStatus), msg.type)
                self._flush_modem()
        else:
            raise ExtensionViolation(
                f"{_name(msg.type)} is not a credit window message", StatusCode.UNEXPECTED_MESSAGE
            )

    def forget(self, dest: DestKey) -> None:
        """Destination ``dest`` left the session."""
        self.ledger.forget(dest)
        self._dest_status.pop(dest, None)

    # -- receive helpers --------------------------------------------------------

    def _router_on_credit_control(self, msg: Message) -> None:
        if msg.get(CreditWindowRequest) is not None or msg.get(CreditWindowStatus) is not None:
            raise ExtensionViolation(
                "Credit Control from a modem carries Credit Window Request or Status "
                "(RFC 9893 §2.2.1)"
            )
        grants = msg.get_all(CreditWindowGrant)
        fids = self._apply_grants(grants, msg.type, None)
        # §2.2.1: a router MUST respond; §2.2.2: with a Status per window.
        self._send(
            CREDIT_CONTROL_RESPONSE, [CreditWindowStatus(f, self.ledger.credits(f)) for f in fids]
        )

    def _modem_on_credit_control(self, msg: Message) -> None:
        if msg.get(CreditWindowGrant) is not None:
            raise ExtensionViolation(
                "Credit Control from a router carries Credit Window Grant (RFC 9893 §2.2.1)"
            )
        requests = msg.get_all(CreditWindowRequest)
        if not requests:
            raise ExtensionViolation(
                "Credit Control from a router without a Credit Window Request (RFC 9893 §2.2.1)"
            )
        self._apply_statuses(msg.get_all(CreditWindowStatus), msg.type)
        asked: list[int] = []
        for r in requests:
            asked += [f for f in r.fids if f not in asked]
        targets = asked
        if ALL_FIDS in asked:
            targets = sorted(self.ledger.windows) or [ALL_FIDS]
        granted: dict[int, int] = {}
        for fid in targets:
            w = self.ledger.windows.get(fid)
            if w is None:
                # §2.3.5: unknown FIDs are logged and ignored: no credits.
                self._emit(Inconsistency(msg.type, f"Credit Window Request for unknown FID {fid}"))
                granted[fid] = 0
                continue
            extra = self._pending_grants.pop(fid, 0)
            if self.request_policy is not None:
                more = self.request_policy(w.info())
                _uint("request_policy result", more, 64)
                extra = min(extra + more, U64_MAX)
            granted[fid] = extra
        for fid, n in self._pending_grants.items():  # anything else queued goes along
            granted[fid] = n
        self._pending_grants.clear()
        self._send(CREDIT_CONTROL_RESPONSE, [CreditWindowGrant(f, n) for f, n in granted.items()])
        for fid, n in granted.items():
            self.ledger.add(fid, n)
        self._emit(CreditRequested(tuple(asked), tuple(granted.items())))

    def _apply_classification(self, tc: TrafficClassification, mt: int) -> None:
        bad = tc.sub_types - self.allowed_sub_types
        if bad:
            raise ExtensionViolation(
                f"Traffic Classification {tc.tid} carries sub-data item types {sorted(bad)} "
                "of no extension in use on this session (RFC 9892 §2.1.1)"
            )
        self.ledger.set_classification(tc)
        self._emit(TrafficClassificationChanged(tc, mt))

    def _apply_initializations(self, cwis: list[CreditWindowInitialization], mt: int) -> None:
        known = self.ledger.known_fids()
        changed: list[CreditWindowInfo] = []
        for cwi in cwis:
            if cwi.fid not in known:
                # §2.3.1: SHOULD log; no traffic will use this window.
                self._emit(
                    Inconsistency(
                        mt,
                        f"Credit Window Initialization for FID {cwi.fid}, which no Traffic "
                        "Classification defines",
                    )
                )
            changed.append(self.ledger.initialize(cwi.fid, cwi.credits, cwi.max_octets).info())
        self._emit(CreditWindowsChanged(tuple(changed), mt))

    def _apply_association(self, dest: DestKey, tid: int) -> None:
        try:
            changed = self.ledger.associate(dest, tid)
        except KeyError:
            raise ExtensionViolation(
                f"Credit Window Association for {_key_name(dest)} names traffic class {tid}, "
                "which no Traffic Classification defines (RFC 9893 §2.3.2)"
            ) from None
        if changed:
            self._emit(CreditWindowAssociated(dest.mac, tid, dest.ident))

    def _apply_grants(
        self, grants: list[CreditWindowGrant], mt: int, dest: DestKey | None
    ) -> list[int]:
        fids = [g.fid for g in grants]
        if len(set(fids)) != len(fids):
            raise ExtensionViolation(
                f"{_name(mt)} grants credits to the same credit window twice (RFC 9893 §2.3.3: "
                "each item references a different FID)"
            )
        for g in grants:
            added = self.ledger.add(g.fid, g.credits)
            if added is None:
                # §2.3.3: SHOULD log and discard.
                self._emit(Inconsistency(mt, f"Credit Window Grant for unknown FID {g.fid}"))
                continue
            self._emit(
                CreditGranted(
                    g.fid,
                    g.credits,
                    added,
                    self.ledger.credits(g.fid),
                    mt,
                    None if dest is None else dest.mac,
                    () if dest is None else dest.ident,
                )
            )
        return fids

    def _apply_statuses(self, statuses: list[CreditWindowStatus], mt: int) -> None:
        for s in statuses:
            w = self.ledger.windows.get(s.fid)
            if w is None:
                # §2.3.4: SHOULD log and discard.
                self._emit(Inconsistency(mt, f"Credit Window Status for unknown FID {s.fid}"))
                continue
            tol = self.status_tolerance
            mismatch = tol is not None and abs(w.credits - s.credits) > tol
            self._emit(CreditStatusReceived(s.fid, s.credits, w.credits, mismatch, mt))


def _name(mt: int) -> str:
    if mt == CREDIT_CONTROL:
        return "Credit Control"
    if mt == CREDIT_CONTROL_RESPONSE:
        return "Credit Control Response"
    return message_name(mt)


def _key_name(key: DestKey) -> str:
    return str(key)


def _mac_of(msg: Message) -> bytes:
    mac = msg.get(MacAddress)
    if mac is None:  # the codec requires one in every destination message
        raise ExtensionViolation(f"{_name(msg.type)} without a MAC Address")
    return mac.address


def _dest_key(dest: DestKey | bytes | str) -> DestKey:
    if isinstance(dest, DestKey):
        return dest
    if isinstance(dest, str):
        return DestKey(MacAddress.parse(dest).address)
    return DestKey(bytes(dest))


# --------------------------------------------------------------------------
# The extension (subclassed by RFC 9894 and RFC 9895)
# --------------------------------------------------------------------------

_STATES: weakref.WeakKeyDictionary[Any, CreditSessionState] = weakref.WeakKeyDictionary()


def credit_state(session: Session | object) -> CreditSessionState:
    """The credit-window state of ``session`` (KeyError if no credit-window
    extension has attached one, i.e. none is in use)."""
    st = _STATES.get(session)
    if st is None:
        raise KeyError("no credit window extension is in use on this session")
    return st


class CreditWindowExtension(Extension):
    """RFC 9893 credit-window flow control with RFC 9892 classification.

    Not registered by itself: :class:`~dlep.ext.credit_diffserv.DiffservCreditWindow`
    (code 6) and :class:`~dlep.ext.credit_8021q.Ieee8021qCreditWindow`
    (code 5) are the concrete extensions; each sets ``SUB_TYPES``, the
    traffic classification sub-data item types it brings. With both in use
    on a session they share one :class:`CreditSessionState`.

    Args:
        classifications: modem: the traffic classes it announces in its
            Session Initialization Response (sub-data items of this
            extension's type only).
        windows: modem: its credit windows (initial credits and maximum).
        request_policy: modem: extra credits to grant per requested window
            when the router sends a Credit Window Request (default none:
            only grants the application queued, else zero).
        status_tolerance: modem: octets a router's Credit Window Status may
            differ from the modem's view before the event flags a mismatch
            (None: never flagged).
    """

    name: ClassVar[str]
    SUB_TYPES: ClassVar[frozenset[int]] = frozenset()
    items: ClassVar[tuple[type[DataItem], ...]] = CREDIT_ITEMS
    placements: ClassVar[tuple[Placement, ...]] = CREDIT_PLACEMENTS
    #: Extension code -> sub-data item types, for every concrete subclass.
    SUB_TYPES_BY_EXTENSION: ClassVar[dict[int, frozenset[int]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            CreditWindowExtension.SUB_TYPES_BY_EXTENSION[cls.code] = cls.SUB_TYPES

    def __init__(
        self,
        *,
        classifications: Iterable[TrafficClassification] = (),
        windows: Iterable[CreditWindowInitialization] = (),
        request_policy: RequestPolicy | None = None,
        status_tolerance: int | None = None,
    ) -> None:
        self.classifications = tuple(classifications)
        self.windows = tuple(windows)
        for tc in self.classifications:
            if not isinstance(tc, TrafficClassification):
                raise ValueError(f"classifications: {tc!r} is not a TrafficClassification")
            bad = tc.sub_types - self.SUB_TYPES
            if bad:
                raise ValueError(
                    f"traffic class {tc.tid}: sub-data item types {sorted(bad)} do not belong "
                    f"to {self.name} (it uses {sorted(self.SUB_TYPES)})"
                )
        for w in self.windows:
            if not isinstance(w, CreditWindowInitialization):
                raise ValueError(f"windows: {w!r} is not a CreditWindowInitialization")
        if status_tolerance is not None and status_tolerance < 0:
            raise ValueError("status_tolerance: must not be negative")
        self.request_policy = request_policy
        self.status_tolerance = status_tolerance

    # -- state ----------------------------------------------------------------

    def state(self, session: Session | object) -> CreditSessionState:
        """The session's credit state (created on first use, shared by the
        credit-window extensions)."""
        st = _STATES.get(session)
        if st is None:
            role = getattr(getattr(session, "role", None), "value", None)
            st = CreditSessionState(
                "modem" if role == "modem" else "router",
                session,
                request_policy=self.request_policy,
                status_tolerance=self.status_tolerance,
            )
            _STATES[session] = st
        else:
            if st.request_policy is None:
                st.request_policy = self.request_policy
            if st.status_tolerance is None:
                st.status_tolerance = self.status_tolerance
        negotiated: frozenset[int] = getattr(session, "extensions", frozenset())
        allowed: set[int] = set()
        for code, types in self.SUB_TYPES_BY_EXTENSION.items():
            if code in negotiated:
                allowed |= types
        st.allowed_sub_types = frozenset(allowed)
        return st

    # -- hooks ----------------------------------------------------------------

    def new_state(self, session: Session) -> CreditSessionState:
        return self.state(session)

    def init_items(self, session: Session) -> Sequence[DataItem]:
        st = self.state(session)
        if st.is_router:
            return ()
        out: list[DataItem] = []
        for tc in self.classifications:
            if tc not in st.init_sent:
                st.init_sent.add(tc)
                st.ledger.set_classification(tc)
                out.append(tc)
        for cwi in self.windows:
            if cwi not in st.init_sent:
                st.init_sent.add(cwi)
                st.record_cwi(cwi)
                out.append(cwi)
        return out

    def on_peer_init(self, session: Session, msg: Message) -> None:
        st = self.state(session)
        if st.is_router and msg.type == _M.SESSION_INITIALIZATION_RESPONSE:
            st.on_items(msg, None)

    #: Destination Up / Update must carry exactly one Credit Window
    #: Association (RFC 9893 §2.3.2): see them even when they carry none.
    observes: ClassVar[frozenset[int]] = frozenset({_M.DESTINATION_UP, _M.DESTINATION_UPDATE})

    def on_items(
        self, session: Session, msg: Message, dest: DestKey | None, items: Sequence[DataItem]
    ) -> None:
        self.state(session).on_items(msg, dest)

    def response_items(
        self, session: Session, message_type: int, dest: DestKey | None
    ) -> Sequence[DataItem]:
        return self.state(session).response_items(message_type, dest)

    def on_message(self, session: Session, msg: Message) -> None:
        self.state(session).on_message(msg)

    def on_destination_gone(self, session: Session, dest: DestKey) -> None:
        self.state(session).forget(dest)

    gauges: ClassVar[tuple[GaugeSpec, ...]] = (
        GaugeSpec(
            "dlep_credit_window_octets",
            "Credits available in a credit window (RFC 9893), by flow identifier",
            ("fid",),
        ),
        GaugeSpec(
            "dlep_credit_window_max_octets",
            "Maximum size of a credit window (RFC 9893), by flow identifier",
            ("fid",),
        ),
    )

    def gauge_samples(self, session: Session) -> Iterable[GaugeSample]:
        """Credits and maximum size of every credit window."""
        for w in self.state(session).windows():
            yield GaugeSample("dlep_credit_window_octets", (str(w.fid),), w.credits)
            yield GaugeSample("dlep_credit_window_max_octets", (str(w.fid),), w.max_size)
