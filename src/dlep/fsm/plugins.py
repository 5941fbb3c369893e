"""The one extension interface (RFC 8175 §9, §13.6), and the engine's side of it.

An extension is an :class:`Extension`: it declares its Extension Type Value,
the data items and messages it adds and where its items may appear, which
items name a destination together with the MAC (RFC 8703), and the hooks
the session engine calls once the extension is negotiated. Built-in
extensions (:mod:`dlep.ext`) and third-party ones use exactly this class;
the daemons take it as it is.

:class:`PluginHost` is what a :class:`~dlep.fsm.session.Session` holds: the
extensions in use on that session, their per-session state, and the rules
for handing received items to their owners.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..wire import DataItem, MacAddress, Message, Registry, Rule, StatusCode, UnitSpec, UnknownItem
from .destinations import DestKey
from .errors import PeerError, SessionError

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "Extension",
    "ExtensionViolation",
    "GaugeSample",
    "GaugeSpec",
    "Placement",
    "PluginHost",
]


#: What a hook raises when the peer broke the extension's rules (see
#: :class:`~dlep.fsm.errors.PeerError`: the session ends with its status).
ExtensionViolation = PeerError


@dataclass(frozen=True, slots=True)
class Placement:
    """Item ``item`` may appear in message (or signal) ``unit`` per ``rule``."""

    unit: int
    item: type[DataItem]
    rule: Rule
    signal: bool = False
    receive_only: bool = False


@dataclass(frozen=True, slots=True)
class GaugeSpec:
    """A gauge an extension exports per session (e.g. credits per window).

    ``labels`` are the extension's own label names; the daemon adds
    ``session`` and ``peer`` in front of them.
    """

    name: str
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GaugeSample:
    """One value of a :class:`GaugeSpec` (``labels``: values, in spec order)."""

    name: str
    labels: tuple[str, ...]
    value: float


class Extension:
    """Base class of DLEP extensions; subclass and override what you need.

    Class attributes:
        code: Extension Type Value (RFC 8175 §15.6; 65520-65534 for
            private experiments).
        name: short identifier (also accepted in configuration files).
        title: human title, e.g. the RFC's.
        items: data item classes the extension defines.
        messages: message specs the extension defines.
        placements: where items may appear (in core or own messages).
        identity_items: item types that, with the MAC, identify a destination.
        observes: core message types whose receipt calls :meth:`on_items`
            even when they carry none of the extension's items.
        gauges: per-session gauges the extension exports
            (:meth:`gauge_samples` gives their values).

    Every hook has a default that does nothing, so an extension that only
    adds items to core messages overrides nothing but its declarations.
    Hooks that find the peer at fault raise :class:`ExtensionViolation`.
    """

    code: ClassVar[int]
    name: ClassVar[str]
    title: ClassVar[str] = ""
    items: ClassVar[tuple[type[DataItem], ...]] = ()
    messages: ClassVar[tuple[UnitSpec, ...]] = ()
    placements: ClassVar[tuple[Placement, ...]] = ()
    identity_items: ClassVar[tuple[int, ...]] = ()
    observes: ClassVar[frozenset[int]] = frozenset()
    gauges: ClassVar[tuple[GaugeSpec, ...]] = ()

    # -- registration ---------------------------------------------------------

    def register(self, registry: Registry) -> None:
        """Add items, messages and placements to ``registry`` (a copy of the
        core registry owned by one daemon)."""
        for cls in self.items:
            registry.register_item(cls, extension=self.code)
        for spec in self.messages:
            own = spec.clone()  # the class attribute stays untouched
            own.extension = self.code
            registry.register_message(own)
        for p in self.placements:
            registry.allow(p.unit, p.item, p.rule, signal=p.signal, receive_only=p.receive_only)
        for t in self.identity_items:
            registry.identity_items.add(t)

    # -- session hooks (called only when negotiated) -------------------------

    def new_state(self, session: Session) -> Any:
        """Per-session state, created at negotiation (``session.ext_state[code]``)."""
        return None

    def init_items(self, session: Session) -> Sequence[DataItem]:
        """Items to add to our Session Initialization (Response)."""
        return ()

    def on_peer_init(self, session: Session, msg: Message) -> None:
        """The peer's Session Initialization (Response) arrived; check it."""

    def on_items(
        self, session: Session, msg: Message, dest: DestKey | None, items: Sequence[DataItem]
    ) -> None:
        """This extension's items arrived in a core message (before the core
        handles it). ``dest`` is the destination's key in destination
        messages, else None."""

    def response_items(
        self, session: Session, message_type: int, dest: DestKey | None
    ) -> Sequence[DataItem]:
        """Items to add to a response we are about to send. An item type the
        response already carries (the application's) is not added again."""
        return ()

    def on_message(self, session: Session, msg: Message) -> None:
        """One of this extension's own messages arrived."""
        raise ExtensionViolation(
            f"{self.name}: message {msg.type} not handled", StatusCode.UNEXPECTED_MESSAGE
        )

    def on_destination_gone(self, session: Session, dest: DestKey) -> None:
        """Destination ``dest`` left the session (drop its state)."""

    def check_outgoing(
        self, session: Session, message_type: int, items: Sequence[DataItem]
    ) -> None:
        """Sender-side rules for what the application asks the session to
        send: raise ValueError (the call is refused) if ``items`` break them."""

    def gauge_samples(self, session: Session) -> Iterable[GaugeSample]:
        """Current values of :attr:`gauges` on ``session`` (read-only)."""
        return ()

    def __repr__(self) -> str:
        return f"<extension {self.code} {self.name}>"


class PluginHost:
    """The extensions in use on one session, and their state.

    Until :meth:`activate` runs at session initialisation nothing is in use;
    afterwards only the extensions both peers listed are (§13.6).
    """

    __slots__ = (
        "_by_code",
        "_offered",
        "_registry",
        "active",
        "message_types",
        "observed",
        "states",
    )

    def __init__(self, registry: Registry, offered: Sequence[Extension]) -> None:
        self._registry = registry
        self._offered = tuple(offered)
        self.active: tuple[Extension, ...] = ()
        self._by_code: dict[int, Extension] = {}
        #: Message types the active extensions define.
        self.message_types: frozenset[int] = frozenset()
        #: Core message types an active extension observes (see
        #: ``Extension.observes``): their receipt calls :meth:`on_items`.
        self.observed: frozenset[int] = frozenset()
        #: Per-extension session state (``Extension.new_state``), by code.
        self.states: dict[int, Any] = {}

    def activate(self, session: Session, negotiated: frozenset[int]) -> None:
        """Start the negotiated extensions."""
        self.active = tuple(p for p in self._offered if p.code in negotiated)
        self._by_code = {p.code: p for p in self.active}
        codes: set[int] = set()
        observed: set[int] = set()
        for plugin in self.active:
            self.states[plugin.code] = plugin.new_state(session)
            codes.update(spec.code for spec in plugin.messages)
            observed.update(plugin.observes)
        self.message_types = frozenset(codes)
        self.observed = frozenset(observed)

    def get(self, code: int) -> Extension | None:
        """The active extension with this code, or None."""
        return self._by_code.get(code)

    def init_items(self, session: Session) -> list[DataItem]:
        """What every active extension adds to our Session Initialization (Response)."""
        out: list[DataItem] = []
        for plugin in self.active:
            out.extend(plugin.init_items(session))
        return out

    def peer_init(self, session: Session, msg: Message) -> None:
        """Let each active extension check the peer's initialisation."""
        for plugin in self.active:
            plugin.on_peer_init(session, msg)

    def on_message(self, session: Session, msg: Message) -> None:
        """Hand one of the extensions' own messages to its owner."""
        owners = self._registry.message_owners.get(msg.type, frozenset())
        for code in sorted(owners):
            plugin = self._by_code.get(code)
            if plugin is not None:
                plugin.on_message(session, msg)
                return
        raise PeerError(f"message {msg.type} of no extension in use", StatusCode.UNKNOWN_MESSAGE)

    def on_items(self, session: Session, msg: Message, dest: DestKey | None) -> None:
        """Hand extension items in a core message to their extensions.

        An item several active extensions define (RFC 9893's, shared by 9894
        and 9895) goes to the lowest-numbered one. An extension whose
        ``observes`` lists the message type is called even when the message
        carries none of its items. Extensions sharing one state object are
        called once.
        """
        owners_of = self._registry.item_owners
        active = self._by_code
        groups: dict[int, list[DataItem]] = {}
        for item in msg.items:
            if isinstance(item, UnknownItem):
                continue
            owners = owners_of.get(item.TYPE)
            if owners:
                live = [c for c in owners if c in active]
                if live:
                    groups.setdefault(min(live), []).append(item)
        mt = msg.type
        for plugin in self.active:
            if mt in plugin.observes and plugin.code not in groups:
                groups[plugin.code] = []
        if not groups:
            return
        seen: set[int] = set()
        for code in sorted(groups):
            state = self.states.get(code)
            if state is not None:
                if id(state) in seen:
                    continue
                seen.add(id(state))
            active[code].on_items(session, msg, dest, groups[code])

    def response_items(
        self, session: Session, message_type: int, items: Sequence[DataItem]
    ) -> list[DataItem]:
        """What the active extensions add to a response about to be sent."""
        dest = dest_key_of(items, self._registry.identity_items)
        present = {i.TYPE for i in items}
        out: list[DataItem] = []
        for plugin in self.active:
            for item in plugin.response_items(session, message_type, dest):
                if item.TYPE not in present:
                    present.add(item.TYPE)
                    out.append(item)
        return out

    def check_outgoing(
        self, session: Session, message_type: int, items: Sequence[DataItem]
    ) -> None:
        """Run each active extension's sender-side rules (SessionError if broken)."""
        for plugin in self.active:
            try:
                plugin.check_outgoing(session, message_type, items)
            except ValueError as exc:
                raise SessionError(str(exc)) from None

    def gauge_samples(self, session: Session) -> list[GaugeSample]:
        """Every active extension's gauges (extensions sharing state once)."""
        out: list[GaugeSample] = []
        seen: set[int] = set()
        for plugin in self.active:
            state = self.states.get(plugin.code)
            if state is not None:
                if id(state) in seen:
                    continue
                seen.add(id(state))
            out.extend(plugin.gauge_samples(session))
        return out

    def destination_gone(self, session: Session, dest: DestKey) -> None:
        """Tell every active extension that ``dest`` left the session."""
        for plugin in self.active:
            plugin.on_destination_gone(session, dest)


def dest_key_of(
    items: Iterable[DataItem | UnknownItem], ident_types: Iterable[int]
) -> DestKey | None:
    """The destination a message's items name (None: no MAC Address item)."""
    idents = frozenset(ident_types)
    mac: bytes | None = None
    ident: list[DataItem] = []
    for item in items:
        if isinstance(item, MacAddress):
            mac = item.address
        elif not isinstance(item, UnknownItem) and item.TYPE in idents:
            ident.append(item)
    return None if mac is None else DestKey(mac, tuple(ident))
