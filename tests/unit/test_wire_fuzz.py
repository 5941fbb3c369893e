"""Fuzzing the decoders: any input gives a value or the codec's own error.

Anything other than a result, :class:`DecodeError` (messages, signals) or
:class:`ItemFormatError` (item decoders) escaping a decoder fails the test.
Accepted input is also checked for consistency: it re-encodes to the same
length and decodes to the same value again, and the learned-layout path
agrees with a cold registry.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlep.wire import (
    CORE_ITEMS,
    DataItem,
    DecodeError,
    ItemFormatError,
    Message,
    MessageFramer,
    Registry,
    Signal,
    core_registry,
    decode_message,
    decode_signal,
    encode_message,
    encode_signal,
)
from tests.unit.strategies import encoded_messages, encoded_signals, metric_updates

FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIGHT = settings(FUZZ, max_examples=300)
T = TypeVar("T")


# --------------------------------------------------------------------------
# Input generators
# --------------------------------------------------------------------------


u16 = st.integers(0, 0xFFFF)


def _usually(common: st.SearchStrategy[T], *rare: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``common`` about 85% of the time, else one of ``rare``."""
    return st.integers(0, 99).flatmap(lambda n: common if n < 85 else st.one_of(*rare))


@st.composite
def tlv_soup(draw: st.DrawFn, max_items: int = 12) -> bytes:
    """A run of item TLVs: plausible type codes, right/wrong lengths, junk values."""
    out = bytearray()
    for _ in range(draw(st.integers(0, max_items))):
        t = draw(_usually(st.integers(1, 20), st.sampled_from([0, 21, 0xFF80, 0xFFFF]), u16))
        value = draw(
            st.one_of(
                st.binary(max_size=24),
                st.sampled_from([1, 2, 4, 5, 6, 7, 8, 17, 18, 19]).flatmap(
                    lambda n: st.binary(min_size=n, max_size=n)
                ),
            )
        )
        length = draw(_usually(st.just(len(value)), u16))
        out += struct.pack("!HH", t, length) + value
    if draw(st.booleans()):
        out += draw(st.binary(max_size=3))  # trailing junk shorter than a header
    return bytes(out)


@st.composite
def framed_messages(draw: st.DrawFn) -> bytes:
    """A message header whose length matches (mostly) a TLV soup body."""
    body = draw(tlv_soup())
    mtype = draw(_usually(st.integers(1, 16), st.integers(0, 18), u16))
    length = draw(_usually(st.just(len(body)), u16))
    return struct.pack("!HH", mtype, length) + body


@st.composite
def framed_signals(draw: st.DrawFn) -> bytes:
    body = draw(tlv_soup(6))
    prefix = draw(_usually(st.just(b"DLEP"), st.binary(min_size=4, max_size=4)))
    stype = draw(_usually(st.integers(1, 2), st.integers(0, 3), u16))
    length = draw(_usually(st.just(len(body)), u16))
    return prefix + struct.pack("!HH", stype, length) + body


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes], header: int) -> bytes:
    """Flip, overwrite, insert or delete a few bytes of a valid unit; often
    repair the header length so the mutation reaches the item decoder."""
    data = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        last = max(0, len(data) - 1)
        pos = draw(_usually(st.integers(min(header, last), last), st.integers(0, last)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 4))]
    if len(data) >= header and draw(st.booleans()):
        struct.pack_into("!H", data, header - 2, min(len(data) - header, 0xFFFF))
    return bytes(data)


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------


def _replaced(items: Sequence[object]) -> bool:
    """True if a text field holds U+FFFD (the decoder's stand-in for octets
    that are not UTF-8), so its re-encoding may be longer."""
    return any(
        "\ufffd" in t
        for i in items
        for t in (getattr(i, "text", None), getattr(i, "description", None))
        if isinstance(t, str)
    )


def _check_message(data: bytes, registry: Registry | None = None) -> Message | DecodeError:
    reg = registry if registry is not None else core_registry()
    try:
        msg = decode_message(data, reg)
    except DecodeError as e:
        assert e.status in (128, 130)
        assert e.offset is None or 0 <= e.offset < max(len(data), 1)
        if len(data) >= 4:
            assert e.message_type == struct.unpack_from("!H", data)[0]
        assert str(e)
        return e
    assert isinstance(msg, Message)
    assert msg.type == struct.unpack_from("!H", data)[0]
    again = encode_message(msg, reg, validate=False)
    # Canonical form: only reserved flag bits may differ, and text whose
    # invalid UTF-8 became U+FFFD (three octets each).
    assert len(again) == len(data) or _replaced(msg.items)
    assert decode_message(again, reg) == msg
    assert decode_message(data, reg) == msg  # second decode (layout path if learned)
    return msg


def _check_signal(data: bytes) -> None:
    try:
        sig = decode_signal(data)
    except DecodeError as e:
        assert e.signal
        assert e.status in (128, 130)
        return
    assert isinstance(sig, Signal)
    again = encode_signal(sig, validate=False)
    assert len(again) == len(data) or _replaced(sig.items)
    assert decode_signal(again) == sig


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=200))
def test_decode_message_arbitrary_bytes(data: bytes) -> None:
    _check_message(data)


@FUZZ
@given(framed_messages())
def test_decode_message_structured_garbage(data: bytes) -> None:
    _check_message(data)


@FUZZ
@given(st.binary(max_size=120))
def test_decode_signal_arbitrary_bytes(data: bytes) -> None:
    _check_signal(data)
    _check_signal(b"DLEP" + data)


@FUZZ
@given(framed_signals())
def test_decode_signal_structured_garbage(data: bytes) -> None:
    _check_signal(data)


@pytest.mark.parametrize("cls", CORE_ITEMS, ids=[c.__name__ for c in CORE_ITEMS])
@LIGHT
@given(
    st.one_of(
        st.binary(max_size=40),
        st.integers(0, 24).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    )
)
def test_item_decode_value_arbitrary_bytes(cls: type[DataItem], data: bytes) -> None:
    try:
        item = cls.decode_value(data)
    except ItemFormatError:
        return
    assert isinstance(item, cls)
    value = item.encode_value()
    assert len(value) == len(data) or _replaced([item])
    assert cls.decode_value(value) == item
    hash(item)


@FUZZ
@given(mutated(encoded_messages(), header=4))
def test_mutated_messages(data: bytes) -> None:
    _check_message(data)


@FUZZ
@given(mutated(encoded_signals(), header=8))
def test_mutated_signals(data: bytes) -> None:
    _check_signal(data)


@FUZZ
@given(metric_updates(), st.data())
def test_mutated_layout_messages_agree_with_cold_registry(
    msg: Message, data: st.DataObject
) -> None:
    """Mutations of a learned shape, decoded warm (layout cache) and cold."""
    warm = core_registry()
    raw = encode_message(msg, warm)
    decode_message(raw, warm)
    bad = data.draw(mutated(st.just(raw), header=4))
    results = []
    for reg in (warm, core_registry()):
        r = _check_message(bad, reg)
        results.append(
            r
            if isinstance(r, Message)
            else (r.status, r.message_type, r.item_type, r.offset, r.reason)
        )
    assert results[0] == results[1]


# --------------------------------------------------------------------------
# Framer
# --------------------------------------------------------------------------


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(data[prev:p])
        prev = p
    return out


@settings(FUZZ, max_examples=500)
@given(st.lists(encoded_messages(), max_size=8), st.lists(st.integers(0, 10_000), max_size=30))
def test_framer_random_chunking_of_valid_stream(msgs: list[bytes], cuts: list[int]) -> None:
    data = b"".join(msgs)
    f = MessageFramer()
    out: list[bytes] = []
    for chunk in _chunks(data, cuts):
        out += f.feed(chunk)
    assert out == msgs
    assert f.pending == 0
    for m in out:
        decode_message(m)


@FUZZ
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=20))
def test_framer_arbitrary_bytes(data: bytes, cuts: list[int]) -> None:
    f = MessageFramer()
    out: list[bytes] = []
    for chunk in _chunks(data, cuts):
        out += f.feed(chunk)
    consumed = b"".join(out)
    assert data.startswith(consumed)
    assert f.pending == len(data) - len(consumed)
    for frame in out:
        assert len(frame) == 4 + struct.unpack_from("!H", frame, 2)[0]
        _check_message(frame)
    rest = data[len(consumed) :]
    if len(rest) >= 4:
        assert len(rest) < 4 + struct.unpack_from("!H", rest, 2)[0]
