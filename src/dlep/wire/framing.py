"""Split a TCP byte stream into whole DLEP messages.

Each message is a 4-octet header plus at most 65535 octets, so the buffer
never holds more than one incomplete message plus what one read delivered.
"""

from __future__ import annotations

from .messages import MESSAGE_HEADER_LEN


class MessageFramer:
    """Accumulates stream bytes and yields complete message byte strings."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every message now complete, in order."""
        buf = self._buf
        if not buf:
            out = self._split(data)
            return out
        buf += data
        out = self._split(bytes(buf))
        return out

    def _split(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        off = 0
        n = len(data)
        while n - off >= MESSAGE_HEADER_LEN:
            end = off + MESSAGE_HEADER_LEN + ((data[off + 2] << 8) | data[off + 3])
            if end > n:
                break
            out.append(data[off:end])
            off = end
        self._buf = bytearray(data[off:]) if off < n else bytearray()
        return out

    @property
    def pending(self) -> int:
        """Octets held back waiting for the rest of a message."""
        return len(self._buf)
