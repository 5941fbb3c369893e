"""Registry of data items, messages and signals, and the §12 per-message rules.

A :class:`Registry` maps type codes to item codecs and to :class:`UnitSpec`
(which items a message or signal must / may carry, and how often). The core
registry holds RFC 8175; extensions add theirs to a copy
(:meth:`Registry.copy`), so the core table itself is never edited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from .codes import MessageType, SignalType
from .errors import WireError
from .items import (
    CORE_ITEMS,
    CORE_METRICS,
    MANDATORY_METRICS,
    OPTIONAL_METRICS,
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6Address,
    Ipv6AttachedSubnet,
    Ipv6ConnectionPoint,
    MacAddress,
    PeerType,
    Status,
)
from .items import CurrentDataRateReceive as CDRR
from .items import CurrentDataRateTransmit as CDRT
from .items import Latency as LAT

Decoder: TypeAlias = Callable[[bytes], DataItem]
#: Receive-table entry: (fast layout, item class, decoder, at-most-once?)
Entry: TypeAlias = tuple[int, type[DataItem], Decoder, bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """How often an item may appear: ``minimum``..``maximum`` (None = unbounded).

    Items allowed more than once must carry different values (RFC 8175 §12:
    "one or more ... with different values").
    """

    minimum: int
    maximum: int | None

    def describe(self) -> str:
        """Human form: 'exactly one', 'at most one', ..."""
        if self.minimum == 1 and self.maximum == 1:
            return "exactly one"
        if self.minimum == 0 and self.maximum == 1:
            return "at most one"
        if self.maximum is None:
            return f"at least {self.minimum}" if self.minimum else "any number"
        return f"{self.minimum}..{self.maximum}"


ONE: Final = Rule(1, 1)
OPTIONAL: Final = Rule(0, 1)
ANY: Final = Rule(0, None)


@dataclass(slots=True)
class UnitSpec:
    """Rules for one message or signal type.

    Attributes:
        code: the message or signal type code.
        name: readable name.
        rules: item type -> :class:`Rule`, enforced on send and on receipt.
        accept_also: items tolerated on receipt but never sent (interop).
        one_of: groups of item types of which at least one must be present.
        one_of_on_receipt: also enforce ``one_of`` on receipt (else send only).
        tolerate_unknown: unknown item types are kept, not an error (§12.5).
        extension: the extension that defines this unit (None = core).
        signal: True for signals (UDP), False for messages (TCP).
    """

    code: int
    name: str
    rules: dict[int, Rule] = field(default_factory=dict)
    accept_also: dict[int, Rule] = field(default_factory=dict)
    one_of: list[frozenset[int]] = field(default_factory=list)
    one_of_on_receipt: bool = True
    tolerate_unknown: bool = False
    extension: int | None = None
    signal: bool = False
    recv_rules: dict[int, Rule] = field(default_factory=dict)
    required: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute derived tables after ``rules`` or ``accept_also`` changed."""
        self.recv_rules = {**self.accept_also, **self.rules}
        self.required = tuple(t for t, r in self.rules.items() if r.minimum > 0)

    def clone(self) -> UnitSpec:
        """An independent copy (for a registry copy)."""
        return UnitSpec(
            self.code,
            self.name,
            dict(self.rules),
            dict(self.accept_also),
            list(self.one_of),
            self.one_of_on_receipt,
            self.tolerate_unknown,
            self.extension,
            self.signal,
        )


class RegistryError(WireError):
    """An extension tried to register something that clashes."""


class Registry:
    """Codecs and per-unit rules, keyed by type code.

    Use :func:`core_registry` for RFC 8175 alone; extensions call
    :meth:`register_item`, :meth:`register_message` and :meth:`allow` on a
    copy.
    """

    def __init__(self) -> None:
        self.items: dict[int, type[DataItem]] = {}
        self.decoders: dict[int, Decoder] = {}
        self.item_extension: dict[int, int] = {}
        #: Every extension that defines an item / message type. RFC 9894 and
        #: 9895 share the items and messages of RFC 9893: either one being
        #: negotiated makes them legal.
        self.item_owners: dict[int, frozenset[int]] = {}
        self.message_owners: dict[int, frozenset[int]] = {}
        self.messages: dict[int, UnitSpec] = {}
        self.signals: dict[int, UnitSpec] = {}
        #: Item types that, with the MAC Address, identify a destination
        #: (RFC 8703 Link Identifier); the session keys destinations by both.
        self.identity_items: set[int] = set()
        # (signal?, unit code, negotiated extensions) -> item type -> (decoder, single)
        self._compiled: dict[tuple[bool, int, frozenset[int] | None], dict[int, Entry]] = {}
        self._layouts: dict[tuple[bool, int, frozenset[int] | None], dict[int, Any]] = {}

    def layouts(self, spec: UnitSpec, extensions: frozenset[int] | None) -> dict[int, Any]:
        """Per-unit cache of learned fixed layouts (owned by :mod:`.messages`)."""
        key = (spec.signal, spec.code, extensions)
        cache = self._layouts.get(key)
        if cache is None:
            cache = self._layouts[key] = {}
        return cache

    def compiled(self, spec: UnitSpec, extensions: frozenset[int] | None) -> dict[int, Entry]:
        """Receive table of ``spec``: item type -> :data:`Entry`.

        Only items allowed in the unit, with a codec, and (when
        ``extensions`` is given) of the core or a negotiated extension are
        present; anything else takes the decoder's slow path.
        """
        key = (spec.signal, spec.code, extensions)
        table = self._compiled.get(key)
        if table is None:
            table = {}
            for t, rule in spec.recv_rules.items():
                dec = self.decoders.get(t)
                if dec is None:
                    continue
                owners = self.item_owners.get(t)
                if extensions is not None and owners and owners.isdisjoint(extensions):
                    continue
                cls = self.items[t]
                table[t] = (cls.FAST, cls, dec, rule.maximum == 1)
            self._compiled[key] = table
        return table

    def _invalidate(self) -> None:
        self._compiled.clear()
        self._layouts.clear()

    def copy(self) -> Registry:
        """A deep enough copy that registering into it leaves this one intact."""
        new = Registry()
        new.items = dict(self.items)
        new.decoders = dict(self.decoders)
        new.item_extension = dict(self.item_extension)
        new.item_owners = dict(self.item_owners)
        new.message_owners = dict(self.message_owners)
        new.messages = {k: v.clone() for k, v in self.messages.items()}
        new.signals = {k: v.clone() for k, v in self.signals.items()}
        new.identity_items = set(self.identity_items)
        return new

    def register_item(self, cls: type[DataItem], *, extension: int | None = None) -> None:
        """Add a data item codec; ``extension`` is the type code of its extension."""
        code = cls.TYPE
        if not 0 < code < 0xFFFF:
            raise RegistryError(f"{cls.__name__}: item type {code} is reserved")
        existing = self.items.get(code)
        if existing is not None and existing is not cls:
            raise RegistryError(
                f"item type {code} already registered as {existing.__name__}, not {cls.__name__}"
            )
        self.items[code] = cls
        self.decoders[code] = cls.decode_value
        if extension is not None:
            self.item_extension.setdefault(code, extension)
            self.item_owners[code] = self.item_owners.get(code, frozenset()) | {extension}
        self._invalidate()

    def register_message(self, spec: UnitSpec) -> None:
        """Add a message type (fails if the code is taken by another)."""
        self._register_unit(self.messages, spec)
        if spec.extension is not None:
            owners = self.message_owners.get(spec.code, frozenset())
            self.message_owners[spec.code] = owners | {spec.extension}
        self._invalidate()

    def register_signal(self, spec: UnitSpec) -> None:
        """Add a signal type (fails if the code is taken by another)."""
        spec.signal = True
        self._register_unit(self.signals, spec)
        self._invalidate()

    @staticmethod
    def _register_unit(table: dict[int, UnitSpec], spec: UnitSpec) -> None:
        if not 0 < spec.code < 0xFFFF:
            raise RegistryError(f"{spec.name}: type {spec.code} is reserved")
        old = table.get(spec.code)
        if old is not None and old.name != spec.name:
            raise RegistryError(f"type {spec.code} already registered as {old.name}")
        spec.refresh()
        table[spec.code] = spec

    def allow(
        self,
        unit: int,
        item: type[DataItem] | int,
        rule: Rule,
        *,
        signal: bool = False,
        receive_only: bool = False,
    ) -> None:
        """Let ``item`` appear in message (or signal) ``unit`` per ``rule``."""
        table = self.signals if signal else self.messages
        spec = table.get(unit)
        if spec is None:
            raise RegistryError(f"no {'signal' if signal else 'message'} type {unit}")
        code = item if isinstance(item, int) else item.TYPE
        (spec.accept_also if receive_only else spec.rules)[code] = rule
        spec.refresh()
        self._invalidate()

    def message_spec(self, code: int) -> UnitSpec | None:
        """The spec of message type ``code``, or None."""
        return self.messages.get(code)

    def item_class(self, code: int) -> type[DataItem] | None:
        """The class registered for item type ``code``, or None."""
        return self.items.get(code)


def _t(*classes: type[DataItem]) -> list[int]:
    return [c.TYPE for c in classes]


def _rules(*groups: tuple[Iterable[type[DataItem]], Rule]) -> dict[int, Rule]:
    out: dict[int, Rule] = {}
    for classes, rule in groups:
        for cls in classes:
            out[cls.TYPE] = rule
    return out


_ADDRS = (Ipv4Address, Ipv6Address)
_SUBNETS = (Ipv4AttachedSubnet, Ipv6AttachedSubnet)
_L3 = _ADDRS + _SUBNETS


def _build_core() -> Registry:
    reg = Registry()
    for cls in CORE_ITEMS:
        reg.register_item(cls)

    reg.register_signal(
        UnitSpec(SignalType.PEER_DISCOVERY, "Peer Discovery", _rules(((PeerType,), OPTIONAL)))
    )
    reg.register_signal(
        UnitSpec(
            SignalType.PEER_OFFER,
            "Peer Offer",
            _rules(((PeerType,), OPTIONAL), ((Ipv4ConnectionPoint, Ipv6ConnectionPoint), ANY)),
        )
    )

    M = MessageType
    specs = [
        # §12.5
        UnitSpec(
            M.SESSION_INITIALIZATION,
            "Session Initialization",
            _rules(
                ((HeartbeatInterval, PeerType), ONE),
                ((ExtensionsSupported,), OPTIONAL),
                (_L3, ANY),
            ),
            tolerate_unknown=True,
        ),
        # §12.6
        UnitSpec(
            M.SESSION_INITIALIZATION_RESPONSE,
            "Session Initialization Response",
            _rules(
                ((Status, PeerType, HeartbeatInterval), ONE),
                (MANDATORY_METRICS, ONE),
                (OPTIONAL_METRICS, OPTIONAL),
                ((ExtensionsSupported,), OPTIONAL),
                (_L3, ANY),
            ),
        ),
        # §12.7 (metrics only from a modem: checked by the session engine)
        UnitSpec(
            M.SESSION_UPDATE,
            "Session Update",
            _rules((_L3, ANY), (CORE_METRICS, OPTIONAL)),
        ),
        UnitSpec(M.SESSION_UPDATE_RESPONSE, "Session Update Response", _rules(((Status,), ONE))),
        UnitSpec(M.SESSION_TERMINATION, "Session Termination", _rules(((Status,), ONE))),
        # §12.10 allows no items, but Appendix B.5 shows a Status 'Success' here
        # and deployed peers send one: tolerated on receipt, never sent.
        UnitSpec(
            M.SESSION_TERMINATION_RESPONSE,
            "Session Termination Response",
            accept_also=_rules(((Status,), OPTIONAL)),
        ),
        # §12.11
        UnitSpec(
            M.DESTINATION_UP,
            "Destination Up",
            _rules(((MacAddress,), ONE), (_L3, ANY), (CORE_METRICS, OPTIONAL)),
        ),
        UnitSpec(
            M.DESTINATION_UP_RESPONSE,
            "Destination Up Response",
            _rules(((MacAddress, Status), ONE)),
        ),
        # §12.13
        UnitSpec(
            M.DESTINATION_ANNOUNCE,
            "Destination Announce",
            _rules(((MacAddress,), ONE), (_ADDRS, ANY)),
        ),
        # §12.14
        UnitSpec(
            M.DESTINATION_ANNOUNCE_RESPONSE,
            "Destination Announce Response",
            _rules(((MacAddress, Status), ONE), (_L3, ANY), (CORE_METRICS, OPTIONAL)),
        ),
        UnitSpec(M.DESTINATION_DOWN, "Destination Down", _rules(((MacAddress,), ONE))),
        UnitSpec(
            M.DESTINATION_DOWN_RESPONSE,
            "Destination Down Response",
            _rules(((MacAddress, Status), ONE)),
        ),
        # §12.17
        UnitSpec(
            M.DESTINATION_UPDATE,
            "Destination Update",
            _rules(((MacAddress,), ONE), (CORE_METRICS, OPTIONAL), (_L3, ANY)),
        ),
        # §12.18: "at least one of" CDRR, CDRT, Latency; each at most once.
        UnitSpec(
            M.LINK_CHARACTERISTICS_REQUEST,
            "Link Characteristics Request",
            _rules(((MacAddress,), ONE), ((CDRR, CDRT, LAT), OPTIONAL)),
            one_of=[frozenset(_t(CDRR, CDRT, LAT))],
            # Deployed routers (LL-DLEP's RFC 8175 profile) send requests with
            # none of the three; accepted on receipt, never sent.
            one_of_on_receipt=False,
        ),
        # §12.19
        UnitSpec(
            M.LINK_CHARACTERISTICS_RESPONSE,
            "Link Characteristics Response",
            _rules(((MacAddress, Status), ONE), (CORE_METRICS, OPTIONAL)),
        ),
        UnitSpec(M.HEARTBEAT, "Heartbeat"),
    ]
    for spec in specs:
        reg.register_message(spec)
    return reg


_CORE: Final = _build_core()


def core_registry() -> Registry:
    """A fresh copy of the RFC 8175 registry, safe to extend."""
    return _CORE.copy()


#: The shared, read-only RFC 8175 registry used when none is given.
DEFAULT_REGISTRY: Final = _CORE


def item_name(code: int, registry: Registry | None = None) -> str:
    """Readable name of item type ``code``."""
    cls = (registry or _CORE).items.get(code)
    return f"{cls.NAME}({code})" if cls is not None else f"unknown({code})"
