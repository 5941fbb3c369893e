"""MessageFramer: splitting a TCP byte stream into whole DLEP messages."""

from __future__ import annotations

import struct

import pytest

from dlep.wire import (
    Latency,
    MacAddress,
    Message,
    MessageFramer,
    MessageType,
    Status,
    decode_message,
    encode_message,
)

MAC = MacAddress(bytes.fromhex("020000000001"))
HEARTBEAT = encode_message(Message(MessageType.HEARTBEAT))
UPDATE = encode_message(Message(MessageType.DESTINATION_UPDATE, (MAC, Latency(1500))))
TERM = encode_message(Message(MessageType.SESSION_TERMINATION, (Status(255, "bye"),)))
STREAM = [HEARTBEAT, UPDATE, TERM, HEARTBEAT, UPDATE]


def test_whole_message_per_read() -> None:
    f = MessageFramer()
    for m in STREAM:
        assert f.feed(m) == [m]
        assert f.pending == 0


def test_empty_read() -> None:
    f = MessageFramer()
    assert f.feed(b"") == []
    assert f.pending == 0
    f.feed(UPDATE[:3])
    assert f.feed(b"") == []
    assert f.pending == 3


def test_coalesced_messages_in_one_read() -> None:
    f = MessageFramer()
    out = f.feed(b"".join(STREAM))
    assert out == STREAM
    assert f.pending == 0
    assert [decode_message(m).type for m in out] == [16, 13, 5, 16, 13]


def test_coalesced_with_trailing_partial() -> None:
    f = MessageFramer()
    data = b"".join(STREAM)
    cut = len(data) - 5
    assert f.feed(data[:cut]) == STREAM[:-1]
    assert f.pending == len(UPDATE) - 5
    assert f.feed(data[cut:]) == [UPDATE]
    assert f.pending == 0


@pytest.mark.parametrize("split", [1, 2, 3, 4, 5, 10, len(UPDATE) - 1])
def test_partial_reads(split: int) -> None:
    f = MessageFramer()
    assert f.feed(UPDATE[:split]) == []
    assert f.pending == split
    assert f.feed(UPDATE[split:]) == [UPDATE]
    assert f.pending == 0


def test_partial_then_coalesced() -> None:
    f = MessageFramer()
    assert f.feed(TERM[:6]) == []
    assert f.feed(TERM[6:] + HEARTBEAT + UPDATE[:2]) == [TERM, HEARTBEAT]
    assert f.pending == 2
    assert f.feed(UPDATE[2:] + HEARTBEAT) == [UPDATE, HEARTBEAT]


def test_one_byte_at_a_time() -> None:
    f = MessageFramer()
    data = b"".join(STREAM)
    out: list[bytes] = []
    for i in range(len(data)):
        out += f.feed(data[i : i + 1])
    assert out == STREAM
    assert f.pending == 0


def test_header_split_across_reads_with_zero_length_message() -> None:
    f = MessageFramer()
    assert f.feed(HEARTBEAT[:1]) == []
    assert f.feed(HEARTBEAT[1:3]) == []
    assert f.feed(HEARTBEAT[3:]) == [HEARTBEAT]


def _max_message() -> bytes:
    # A Session Termination whose Status text fills the body to 65535 octets.
    msg = Message(MessageType.SESSION_TERMINATION, (Status(0, "x" * (0xFFFF - 5)),))
    raw = encode_message(msg)
    assert struct.unpack_from("!H", raw, 2)[0] == 0xFFFF
    assert len(raw) == 4 + 0xFFFF
    return raw


def test_max_size_body() -> None:
    big = _max_message()
    f = MessageFramer()
    assert f.feed(big[:4]) == []
    assert f.pending == 4
    assert f.feed(big[4:-1]) == []
    assert f.pending == len(big) - 1
    assert f.feed(big[-1:] + HEARTBEAT) == [big, HEARTBEAT]
    assert f.pending == 0
    assert decode_message(big).get(Status) == Status(0, "x" * (0xFFFF - 5))


def test_max_size_body_one_byte_at_a_time() -> None:
    big = _max_message()
    f = MessageFramer()
    out: list[bytes] = []
    for i in range(len(big)):
        out += f.feed(big[i : i + 1])
        if i < len(big) - 1:
            assert not out
    assert out == [big]
    assert f.pending == 0


def test_max_size_body_in_tcp_sized_chunks() -> None:
    big = _max_message()
    data = UPDATE + big + HEARTBEAT + big
    f = MessageFramer()
    out: list[bytes] = []
    for i in range(0, len(data), 1448):
        out += f.feed(data[i : i + 1448])
    assert out == [UPDATE, big, HEARTBEAT, big]


def test_framer_does_not_validate() -> None:
    # Garbage with a plausible header is framed; decode_message judges it.
    junk = b"\xff\xff\x00\x02\xaa\xbb"
    f = MessageFramer()
    assert f.feed(junk + HEARTBEAT) == [junk, HEARTBEAT]


def test_output_is_bytes() -> None:
    f = MessageFramer()
    f.feed(UPDATE[:7])
    (out,) = f.feed(UPDATE[7:])
    assert type(out) is bytes
    (out,) = f.feed(UPDATE)
    assert type(out) is bytes
