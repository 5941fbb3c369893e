"""A third-party DLEP extension in the Private Use range (example).

``SignalStrengthExtension`` is Extension Type Value **65530** (RFC 8175
§15.6: 65520-65534 are for private use) and adds one data item,
**Signal Strength** (type **65410**, private range 65408-65534, §15.8):
the received signal strength to a destination, in dBm, as a signed 16-bit
integer.

* A modem MAY put it in Destination Up and Destination Update (at most once).
* A router emits :class:`SignalStrengthReported` when it arrives; the value
  also stays in the destination's ``DestinationInfo.extra``
  (:func:`signal_strength` reads it back).
* A modem originates it with ``extra=signal_strength_items(dbm)`` on
  ``Session.add_destination`` / ``Session.update_destination``.

Both peers must list 65530 in Extensions Supported; otherwise the engine
refuses to send the item and a peer that receives it ends the session with
130 (Invalid Data).

Wire layout::

    type 65410, length 2 | Signal Strength, dBm (16 bits, two's complement) |

It uses only the public plug-in interface of :mod:`dlep.ext` and is
published in the ``dlep.extensions`` entry-point group (see pyproject.toml),
so a daemon loads it from configuration with ``extensions = ["plugin:signal-strength"]``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Self

from dlep.ext import Extension, ExtensionViolation, Placement
from dlep.fsm import DestinationInfo, Event, Role, Session
from dlep.wire import OPTIONAL, DataItem, ItemFormatError, Message, MessageType

#: Extension Type Value (private use, RFC 8175 §15.6).
SIGNAL_STRENGTH_EXTENSION: Final = 65530
#: Data Item Type Value (private use, RFC 8175 §15.8).
SIGNAL_STRENGTH_ITEM: Final = 65410

_H: Final = struct.Struct("!h")


@dataclass(frozen=True, slots=True)
class SignalStrength(DataItem):
    """Signal Strength: received signal strength in dBm (-32768..32767)."""

    TYPE: ClassVar[int] = SIGNAL_STRENGTH_ITEM
    NAME: ClassVar[str] = "SignalStrength"
    UNIT: ClassVar[str] = "dBm"
    dbm: int

    def __post_init__(self) -> None:
        if not isinstance(self.dbm, int) or isinstance(self.dbm, bool):
            raise ItemFormatError(f"SignalStrength.dbm: expected an integer, got {self.dbm!r}")
        if not -32768 <= self.dbm <= 32767:
            raise ItemFormatError(f"SignalStrength.dbm: {self.dbm} out of range -32768..32767")

    def encode_value(self) -> bytes:
        return _H.pack(self.dbm)

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 2:
            raise ItemFormatError(f"SignalStrength: length {len(data)}, must be 2")
        return cls(_H.unpack(data)[0])


@dataclass(frozen=True, slots=True)
class SignalStrengthReported(Event):
    """Router: the modem reported a signal strength for ``mac``."""

    mac: bytes
    dbm: int


def signal_strength_items(dbm: int) -> tuple[SignalStrength]:
    """The item for ``extra=`` of Destination Up / Update (modem)."""
    return (SignalStrength(dbm),)


def signal_strength(info: DestinationInfo) -> int | None:
    """The last signal strength received for a destination, in dBm."""
    for item in info.extra:
        if isinstance(item, SignalStrength):
            return item.dbm
    return None


class SignalStrengthExtension(Extension):
    """Private-use extension 65530: Signal Strength in destination messages."""

    code: ClassVar[int] = SIGNAL_STRENGTH_EXTENSION
    name: ClassVar[str] = "signal-strength"
    title: ClassVar[str] = "Signal Strength (private example)"
    items: ClassVar[tuple[type[DataItem], ...]] = (SignalStrength,)
    placements: ClassVar[tuple[Placement, ...]] = (
        Placement(MessageType.DESTINATION_UP, SignalStrength, OPTIONAL),
        Placement(MessageType.DESTINATION_UPDATE, SignalStrength, OPTIONAL),
    )

    def on_items(
        self, session: Session, msg: Message, dest: bytes | None, items: Sequence[DataItem]
    ) -> None:
        if session.role is not Role.ROUTER:
            raise ExtensionViolation("Signal Strength is sent by a modem only")
        for item in items:
            if isinstance(item, SignalStrength) and dest is not None:
                session.emit(SignalStrengthReported(dest, item.dbm))


__all__ = [
    "SIGNAL_STRENGTH_EXTENSION",
    "SIGNAL_STRENGTH_ITEM",
    "SignalStrength",
    "SignalStrengthExtension",
    "SignalStrengthReported",
    "signal_strength",
    "signal_strength_items",
]
