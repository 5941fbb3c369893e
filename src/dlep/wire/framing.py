"""Split a TCP byte stream into whole DLEP messages.

Each message is a 4-octet header plus at most 65535 octets, so the buffer
never holds more than one incomplete message plus what one read delivered.
"""

from __future__ import annotations

from .messages import MESSAGE_HEADER_LEN


class MessageFramer:
    """Accumulates stream bytes and yields complete message byte strings."""

    __slots__ = ("_buf", "_need")

    def __init__(self) -> None:
        self._buf = bytearray()
        # Octets the buffered partial message needs before it can be split;
        # lets a peer that trickles bytes in cost O(n), not O(n^2).
        self._need = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every message now complete, in order."""
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return []
            data = bytes(buf)
            buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        out: list[bytes] = []
        off = 0
        n = len(data)
        while n - off >= MESSAGE_HEADER_LEN:
            end = off + MESSAGE_HEADER_LEN + ((data[off + 2] << 8) | data[off + 3])
            if end > n:
                break
            out.append(data[off:end])
            off = end
        if off < n:
            self._buf = bytearray(data[off:])
            rest = n - off
            self._need = (
                MESSAGE_HEADER_LEN + ((data[off + 2] << 8) | data[off + 3])
                if rest >= MESSAGE_HEADER_LEN
                else MESSAGE_HEADER_LEN
            )
        return out

    @property
    def pending(self) -> int:
        """Octets held back waiting for the rest of a message."""
        return len(self._buf)
