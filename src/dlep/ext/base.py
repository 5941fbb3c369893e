"""The extension plug-in interface (RFC 8175 §9, §13.6).

An extension is an object that declares

* its Extension Type Value (``code``) and a ``name``;
* the data items and messages it adds (``items``, ``messages``) and where its
  items may appear and how often (``placements``);
* which items, together with the MAC Address, identify a destination
  (``identity_items``, RFC 8703 Link Identifier);
* hooks the session engine calls once the extension is negotiated.

Built-in extensions use exactly this interface; so do third-party ones, which
can be found through the ``dlep.extensions`` entry-point group
(:func:`load_entry_point_extensions`).

Only extensions that both peers list in Extensions Supported are *in use* on
a session: the engine decodes with the negotiated set, so an item of any other
extension ends the session with 130 (Invalid Data) and a message with 128, and
the API refuses to send either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar

from ..fsm.session import ProtocolViolation
from ..wire import DataItem, Message, Registry, Rule, StatusCode, UnitSpec

if TYPE_CHECKING:
    from ..fsm.session import Session


class ExtensionViolation(ProtocolViolation):
    """Raised by a hook: the peer broke the extension's rules.

    The engine ends the session with ``status`` (default 130 Invalid Data)
    and ``reason``.
    """


@dataclass(frozen=True, slots=True)
class Placement:
    """Item ``item`` may appear in message (or signal) ``unit`` per ``rule``."""

    unit: int
    item: type[DataItem]
    rule: Rule
    signal: bool = False
    receive_only: bool = False


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
    """

    code: ClassVar[int]
    name: ClassVar[str]
    title: ClassVar[str] = ""
    items: ClassVar[tuple[type[DataItem], ...]] = ()
    messages: ClassVar[tuple[UnitSpec, ...]] = ()
    placements: ClassVar[tuple[Placement, ...]] = ()
    identity_items: ClassVar[tuple[int, ...]] = ()

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
        """Per-session state, created when the session comes up."""
        return None

    def init_items(self, session: Session) -> Sequence[DataItem]:
        """Items to add to our Session Initialization (Response)."""
        return ()

    def on_peer_init(self, session: Session, msg: Message) -> None:
        """The peer's Session Initialization (Response) arrived; check it.

        Raise :class:`ExtensionViolation` to end the session.
        """

    def on_items(
        self, session: Session, msg: Message, dest: bytes | None, items: Sequence[DataItem]
    ) -> None:
        """This extension's items arrived in a core message.

        ``dest`` is the destination key for destination messages, else None.
        """

    def response_items(
        self, session: Session, message_type: int, dest: bytes | None
    ) -> Sequence[DataItem]:
        """Items to add to a response we are about to send."""
        return ()

    def on_message(self, session: Session, msg: Message) -> None:
        """One of this extension's own messages arrived."""
        raise ExtensionViolation(
            f"{self.name}: message {msg.type} not handled", StatusCode.UNEXPECTED_MESSAGE
        )

    def on_destination_gone(self, session: Session, dest: bytes) -> None:
        """A destination left the session (drop per-destination state)."""

    def __repr__(self) -> str:
        return f"<extension {self.code} {self.name}>"


def load_entry_point_extensions(names: Iterable[str] = ()) -> list[Extension]:
    """Instantiate extensions published in the ``dlep.extensions`` group.

    With ``names`` only those entry points are loaded (ValueError naming a
    missing one); without, all of them.
    """
    wanted = set(names)
    found: list[Extension] = []
    seen: set[str] = set()
    for ep in metadata.entry_points(group="dlep.extensions"):
        if wanted and ep.name not in wanted:
            continue
        obj = ep.load()
        ext = obj() if isinstance(obj, type) else obj
        if not isinstance(ext, Extension):
            raise TypeError(f"entry point {ep.name!r} is not a dlep Extension: {obj!r}")
        found.append(ext)
        seen.add(ep.name)
    missing = wanted - seen
    if missing:
        raise ValueError("no dlep.extensions entry point named " + ", ".join(sorted(missing)))
    return found
