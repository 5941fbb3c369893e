"""Errors raised by the codec.

Every decode failure carries the status code the receiver must send in its
Session Termination (RFC 8175 §12.1): 128 for an unknown message, 130 for an
unknown, malformed, missing or wrongly duplicated data item.
"""

from __future__ import annotations

from .codes import StatusCode


class WireError(Exception):
    """Base class of all codec errors."""


class ItemFormatError(WireError, ValueError):
    """A data item value is malformed; raised by item decoders and constructors.

    The message decoder wraps it into a :class:`DecodeError` that adds the
    message, item type and offset.
    """


class EncodeError(WireError, ValueError):
    """We were asked to send something RFC 8175 does not allow."""


class DecodeError(WireError):
    """Received bytes violate RFC 8175.

    Attributes:
        status: the status code to send in the Session Termination
            (or, for a signal, the reason it is ignored).
        reason: what was wrong, in words.
        message_type: type code of the enclosing message or signal, if known.
        item_type: type code of the offending data item, if any.
        offset: byte offset of the offending item or header in the unit.
    """

    def __init__(
        self,
        status: StatusCode,
        reason: str,
        *,
        message_type: int | None = None,
        item_type: int | None = None,
        offset: int | None = None,
        signal: bool = False,
    ) -> None:
        self.status = status
        self.reason = reason
        self.message_type = message_type
        self.item_type = item_type
        self.offset = offset
        self.signal = signal
        super().__init__(self._render())

    def _render(self) -> str:
        from .codes import message_name, signal_name

        parts: list[str] = []
        if self.message_type is not None:
            name = signal_name if self.signal else message_name
            parts.append(name(self.message_type))
        if self.item_type is not None:
            from .registry import item_name

            parts.append(f"item {item_name(self.item_type)}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        where = ", ".join(parts)
        head = f"[{self.status.value} {self.status.name}] "
        return head + (f"{where}: {self.reason}" if where else self.reason)
