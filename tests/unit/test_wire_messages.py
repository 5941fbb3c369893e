"""Messages and signals: round trips, the learned-layout fast path, §12 rules."""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlep.wire import (
    ANY,
    DEFAULT_REGISTRY,
    ONE,
    OPTIONAL,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    DecodeError,
    EncodeError,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6AttachedSubnet,
    ItemFormatError,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    Message,
    MessageType,
    Mtu,
    PeerType,
    Registry,
    RegistryError,
    RelativeLinkQualityReceive,
    Resources,
    Rule,
    Signal,
    SignalType,
    Status,
    StatusCode,
    UnitSpec,
    UnknownItem,
    WireError,
    core_registry,
    decode_message,
    decode_signal,
    encode_items,
    encode_message,
    encode_signal,
    is_terminate,
    item_name,
    message_name,
    signal_name,
)
from dlep.wire.messages import message as make_message
from tests.unit.strategies import (
    METRIC_CLASSES,
    messages,
    metric_updates,
    signals,
)

M = MessageType
MAC = MacAddress(bytes.fromhex("020000000001"))
MAC2 = MacAddress(bytes.fromhex("020000000002"))
V4 = ipaddress.IPv4Address

MESSAGE_TYPES = sorted(DEFAULT_REGISTRY.messages)
SIGNAL_TYPES = sorted(DEFAULT_REGISTRY.signals)


def hdr(t: int, length: int) -> bytes:
    return struct.pack("!HH", t, length)


def tlv(t: int, value: bytes) -> bytes:
    return struct.pack("!HH", t, len(value)) + value


def msg_bytes(mtype: int, *tlvs: bytes) -> bytes:
    body = b"".join(tlvs)
    return hdr(mtype, len(body)) + body


def decode_error(data: bytes, registry: Registry = DEFAULT_REGISTRY, **kw: object) -> DecodeError:
    with pytest.raises(DecodeError) as ei:
        decode_message(data, registry, **kw)  # type: ignore[arg-type]
    return ei.value


def attrs(e: DecodeError) -> tuple[int, int | None, int | None, int | None]:
    return (e.status, e.message_type, e.item_type, e.offset)


# --------------------------------------------------------------------------
# Round trips through encode_message / decode_message
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mtype", MESSAGE_TYPES, ids=[message_name(t) for t in MESSAGE_TYPES])
@given(data=st.data())
@settings(max_examples=60)
def test_message_roundtrip(mtype: int, data: st.DataObject) -> None:
    msg = data.draw(messages(mtype))
    raw = encode_message(msg)
    assert raw[:2] == mtype.to_bytes(2, "big")
    assert int.from_bytes(raw[2:4], "big") == len(raw) - 4
    reg = core_registry()  # fresh layout cache: first decode takes the generic path
    first = decode_message(raw, reg)
    second = decode_message(raw, reg)  # possibly the learned layout
    assert first == msg
    assert second == msg
    assert decode_message(raw) == msg
    assert encode_message(first) == raw
    assert first.items == msg.items


@pytest.mark.parametrize("stype", SIGNAL_TYPES, ids=[signal_name(t) for t in SIGNAL_TYPES])
@given(data=st.data())
@settings(max_examples=60)
def test_signal_roundtrip(stype: int, data: st.DataObject) -> None:
    sig = data.draw(signals(stype))
    raw = encode_signal(sig)
    assert raw[:4] == b"DLEP"
    assert decode_signal(raw) == sig
    assert decode_signal(raw) == sig
    assert encode_signal(decode_signal(raw)) == raw


@given(messages())
def test_messages_strategy_respects_rules(msg: Message) -> None:
    spec = DEFAULT_REGISTRY.messages[msg.type]
    counts: dict[int, int] = {}
    for item in msg.items:
        assert isinstance(item, DataItem)
        counts[item.TYPE] = counts.get(item.TYPE, 0) + 1
    for t, n in counts.items():
        rule = spec.rules[t]
        assert rule.minimum <= n and (rule.maximum is None or n <= rule.maximum)
    assert all(counts.get(t) for t in spec.required)
    for group in spec.one_of:
        assert any(counts.get(t) for t in group)
    assert len(set(msg.items)) == len(msg.items)


# --------------------------------------------------------------------------
# Learned-layout fast path
# --------------------------------------------------------------------------


def _layouts(reg: Registry, mtype: int = M.DESTINATION_UPDATE) -> dict[int, object]:
    return reg.layouts(reg.messages[mtype], None)


@given(metric_updates(), metric_updates())
def test_layout_path_equals_generic_path(a: Message, b: Message) -> None:
    reg = core_registry()
    raw_a, raw_b = encode_message(a, reg), encode_message(b, reg)
    assert decode_message(raw_a, reg) == a  # generic, learns
    if len(raw_a) == len(raw_b):
        assert len(raw_a) - 4 in _layouts(reg)
    assert decode_message(raw_b, reg) == b  # layout (if same length)
    assert decode_message(raw_a, reg) == a


def test_layout_learned_only_for_fixed_items_and_nonempty() -> None:
    reg = core_registry()
    decode_message(encode_message(Message(M.HEARTBEAT)), reg)
    assert _layouts(reg, M.HEARTBEAT) == {}
    with_addr = Message(M.DESTINATION_UPDATE, (MAC, Ipv4Address(V4("10.0.0.1"))))
    decode_message(encode_message(with_addr), reg)
    assert _layouts(reg) == {}
    decode_message(encode_message(Message(M.DESTINATION_UPDATE, (MAC, Latency(1)))), reg)
    assert list(_layouts(reg)) == [22]
    si = Message(M.SESSION_INITIALIZATION, (UnknownItem(99, b""), HeartbeatInterval(5), PeerType()))
    decode_message(encode_message(si, validate=False), reg)
    assert _layouts(reg, M.SESSION_INITIALIZATION) == {}


def _learned(reg: Registry) -> bytes:
    """Teach ``reg`` the MAC + 9 metrics layout; return the bytes used."""
    msg = Message(
        M.DESTINATION_UPDATE,
        (MAC, *(cls(7) for cls in METRIC_CLASSES)),
    )
    raw = encode_message(msg, reg)
    assert decode_message(raw, reg) == msg
    assert len(raw) - 4 in _layouts(reg)
    return raw


def _item_offsets(raw: bytes) -> dict[int, int]:
    out, off = {}, 4
    while off < len(raw):
        t, n = struct.unpack_from("!HH", raw, off)
        out[t] = off
        off += 4 + n
    return out


@pytest.mark.parametrize("ptype", [17, 18, 19])
def test_layout_percent_over_100_rejected(ptype: int) -> None:
    reg = core_registry()
    raw = bytearray(_learned(reg))
    off = _item_offsets(bytes(raw))[ptype]
    raw[off + 4] = 101
    e = decode_error(bytes(raw), reg)
    assert attrs(e) == (130, 13, ptype, off)
    raw[off + 4] = 100
    assert decode_message(bytes(raw), reg).get(reg.items[ptype]).value == 100  # type: ignore[union-attr]


def test_layout_same_length_other_item_type_decoded_correctly() -> None:
    reg = core_registry()
    raw = bytearray(_learned(reg))
    offs = _item_offsets(bytes(raw))
    # Resources (1-octet value) renamed to Status: valid Status, but not allowed here.
    swapped = bytearray(raw)
    swapped[offs[17] : offs[17] + 2] = b"\x00\x01"  # Resources -> Status(code 7)
    e = decode_error(bytes(swapped), reg)
    assert attrs(e) == (130, 13, 1, offs[17])
    assert "not allowed" in e.reason

    # Reorder: exchange the Latency and CDRR headers (both 8 octets): still valid.
    reordered = bytearray(raw)
    reordered[offs[14] : offs[14] + 2] = b"\x00\x10"
    reordered[offs[16] : offs[16] + 2] = b"\x00\x0e"
    reordered[offs[14] + 4 : offs[14] + 12] = (1234).to_bytes(8, "big")
    msg = decode_message(bytes(reordered), reg)
    assert msg.get(Latency) == Latency(1234)
    assert msg.get(CurrentDataRateReceive) == CurrentDataRateReceive(7)
    assert [type(i) for i in msg.items][3] is Latency


def test_layout_same_length_duplicate_rejected() -> None:
    reg = core_registry()
    raw = bytearray(_learned(reg))
    offs = _item_offsets(bytes(raw))
    raw[offs[14] : offs[14] + 2] = b"\x00\x0f"  # CDRR header -> CDRT: CDRT twice
    e = decode_error(bytes(raw), reg)
    assert attrs(e) == (130, 13, 15, offs[15])
    assert "at most one" in e.reason


def test_layout_same_length_missing_mac_rejected() -> None:
    reg = core_registry()
    raw = bytearray(_learned(reg))
    raw[4:6] = b"\x00\x14"  # MAC (6 octets) -> MTU of length 6: malformed
    e = decode_error(bytes(raw), reg)
    assert attrs(e) == (130, 13, 20, 4)
    raw[4:8] = b"\xff\x80\x00\x06"  # unknown item type
    e = decode_error(bytes(raw), reg)
    assert attrs(e) == (130, 13, 0xFF80, 4)
    assert e.reason == "unknown data item"


def test_layout_same_length_different_lengths_inside() -> None:
    reg = core_registry()
    raw = bytearray(_learned(reg))
    offs = _item_offsets(bytes(raw))
    # Resources claims length 2 and steals one octet from RLQR's header: overrun chain.
    raw[offs[17] + 2 : offs[17] + 4] = b"\x00\x02"
    e = decode_error(bytes(raw), reg)
    assert e.status == 130 and e.message_type == 13


@given(metric_updates(), st.data())
@settings(max_examples=200)
def test_layout_differential_against_fresh_registry(msg: Message, data: st.DataObject) -> None:
    """Same-length mutations of a learned shape: the cached path and a cold
    registry must agree exactly (same message, or same error attributes)."""
    warm = core_registry()
    raw = encode_message(msg, warm)
    decode_message(raw, warm)
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(4, len(raw) - 1))
        mutated[pos] = data.draw(st.integers(0, 255))
    results = []
    for reg in (warm, core_registry()):
        try:
            results.append(decode_message(bytes(mutated), reg))
        except DecodeError as e:
            results.append(attrs(e))
    assert results[0] == results[1]


# --------------------------------------------------------------------------
# Rule violations: exact status codes and error attributes
# --------------------------------------------------------------------------

MAC_TLV = tlv(7, MAC.address)
STATUS_TLV = tlv(1, b"\x00")


@pytest.mark.parametrize("mtype", [0, 17, 100, 0xFFFF])
def test_unknown_message_type_128(mtype: int) -> None:
    e = decode_error(msg_bytes(mtype))
    assert attrs(e) == (StatusCode.UNKNOWN_MESSAGE, mtype, None, 0)
    assert is_terminate(e.status)
    assert e.reason == "unknown message type"


def test_short_message_header() -> None:
    for data in (b"", b"\x00", b"\x00\x10\x00"):
        e = decode_error(data)
        assert attrs(e) == (130, None, None, None)


@pytest.mark.parametrize(
    ("data", "expected", "reason"),
    [
        # unknown item type
        (msg_bytes(13, MAC_TLV, tlv(21, b"")), (130, 13, 21, 14), "unknown data item"),
        (msg_bytes(16, tlv(0, b"")), (130, 16, 0, 4), "unknown data item"),
        # known item not allowed in this message
        (msg_bytes(16, STATUS_TLV), (130, 16, 1, 4), "data item not allowed in this message"),
        (msg_bytes(6, MAC_TLV), (130, 6, 7, 4), "not allowed"),
        (msg_bytes(11, MAC_TLV, tlv(16, bytes(8))), (130, 11, 16, 14), "not allowed"),
        # Destination Announce allows addresses but not subnets (§12.13)
        (
            msg_bytes(9, MAC_TLV, tlv(10, b"\x01\x0a\x00\x00\x00\x08")),
            (130, 9, 10, 14),
            "not allowed",
        ),
        # single item twice
        (msg_bytes(11, MAC_TLV, MAC_TLV), (130, 11, 7, 14), "at most one allowed"),
        (
            msg_bytes(13, MAC_TLV, tlv(16, bytes(8)), tlv(16, b"\x00" * 7 + b"\x01")),
            (130, 13, 16, 26),
            "at most one allowed",
        ),
        (
            msg_bytes(5, STATUS_TLV, tlv(1, b"\x01")),
            (130, 5, 1, 9),
            "at most one allowed",
        ),
        # multi item twice with the same value
        (
            msg_bytes(
                13, MAC_TLV, tlv(8, b"\x01\x0a\x00\x00\x01"), tlv(8, b"\x01\x0a\x00\x00\x01")
            ),
            (130, 13, 8, 23),
            "duplicate item with the same value",
        ),
        # ...also when only reserved flag bits differ (same decoded value)
        (
            msg_bytes(
                13, MAC_TLV, tlv(8, b"\x01\x0a\x00\x00\x01"), tlv(8, b"\x81\x0a\x00\x00\x01")
            ),
            (130, 13, 8, 23),
            "duplicate",
        ),
        # truncated item header (fewer than 4 octets left)
        (msg_bytes(13, MAC_TLV, b"\x00\x10\x00"), (130, 13, None, 14), "trailing octets"),
        (msg_bytes(16, b"\x00"), (130, 16, None, 4), "trailing octets"),
        # item length overruns the message
        (msg_bytes(13, MAC_TLV, hdr(16, 8) + bytes(7)), (130, 13, 16, 14), "runs 1 octets past"),
        (msg_bytes(16, hdr(1, 0xFFFF)), (130, 16, 1, 4), "past the end"),
        # malformed item value
        (msg_bytes(13, tlv(7, bytes(7))), (130, 13, 7, 4), "length 7"),
        (msg_bytes(13, MAC_TLV, tlv(16, bytes(4))), (130, 13, 16, 14), "must be 8"),
        (msg_bytes(13, MAC_TLV, tlv(20, bytes(3))), (130, 13, 20, 14), "must be 2"),
        (msg_bytes(5, tlv(1, b"")), (130, 5, 1, 4), "length 0"),
    ],
)
def test_item_violations_130(
    data: bytes, expected: tuple[int, int, int | None, int], reason: str
) -> None:
    e = decode_error(data)
    assert attrs(e) == expected
    assert reason in e.reason
    assert not e.signal


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        (msg_bytes(13), "MacAddress(7)"),
        (msg_bytes(13, tlv(16, bytes(8))), "MacAddress(7)"),
        (msg_bytes(5), "Status(1)"),
        (msg_bytes(8, MAC_TLV), "Status(1)"),
        (msg_bytes(8, STATUS_TLV), "MacAddress(7)"),
        (msg_bytes(1, tlv(5, b"\x00\x00\x00\x01")), "PeerType(4)"),
        (msg_bytes(4), "Status(1)"),
    ],
)
def test_missing_required_item_130(data: bytes, missing: str) -> None:
    e = decode_error(data)
    assert attrs(e) == (130, data[1], None, None)
    assert e.reason == f"missing required item {missing}"


def test_session_initialization_response_requires_mandatory_metrics() -> None:
    items = [
        Status(0),
        PeerType("m"),
        HeartbeatInterval(1000),
        MaximumDataRateReceive(1),
        CurrentDataRateReceive(1),
        CurrentDataRateTransmit(1),
        Latency(1),
    ]
    raw = encode_message(Message(M.SESSION_INITIALIZATION_RESPONSE, tuple(items)), validate=False)
    e = decode_error(raw)
    assert e.reason == "missing required item MDRT(13)"
    with pytest.raises(EncodeError, match="missing required item MDRT"):
        encode_message(Message(M.SESSION_INITIALIZATION_RESPONSE, tuple(items)))


@pytest.mark.parametrize(
    ("length", "actual"),
    [(0, 10), (9, 10), (11, 10), (0xFFFF, 10), (5, 0)],
)
def test_header_length_mismatch_130(length: int, actual: int) -> None:
    body = MAC_TLV if actual == 10 else b""
    e = decode_error(hdr(13, length) + body)
    assert attrs(e) == (130, 13, None, 0)
    assert f"header length {length}" in e.reason


# --- Link Characteristics Request: at least one of CDRR/CDRT/Latency ----------


def test_link_characteristics_request_one_of() -> None:
    # Sending needs one of the three; receipt tolerates none (deployed routers).
    assert decode_message(msg_bytes(14, MAC_TLV)) == Message(M.LINK_CHARACTERISTICS_REQUEST, (MAC,))
    with pytest.raises(EncodeError, match=r"needs at least one of CDRR\(14\), CDRT\(15\), Latency"):
        encode_message(Message(M.LINK_CHARACTERISTICS_REQUEST, (MAC,)))
    for extra in ([CurrentDataRateReceive(1)], [CurrentDataRateTransmit(1)], [Latency(1)]):
        m = Message(M.LINK_CHARACTERISTICS_REQUEST, (MAC, *extra))
        assert decode_message(encode_message(m)) == m
    full = Message(
        M.LINK_CHARACTERISTICS_REQUEST,
        (Latency(1), MAC, CurrentDataRateTransmit(2), CurrentDataRateReceive(3)),
    )
    assert decode_message(encode_message(full)) == full
    e = decode_error(msg_bytes(14, MAC_TLV, tlv(16, bytes(8)), tlv(16, bytes(8))))
    assert attrs(e) == (130, 14, 16, 26)
    e = decode_error(msg_bytes(14, MAC_TLV, tlv(12, bytes(8))))
    assert attrs(e)[:3] == (130, 14, 12)


# --- Session Initialization tolerates unknown items (§12.5) -------------------


def test_session_initialization_keeps_unknown_items() -> None:
    raw = msg_bytes(
        1,
        tlv(5, b"\x00\x00\x03\xe8"),
        tlv(0xFF80, b"\xde\xad"),
        tlv(4, b"\x00R"),
        tlv(6, b"\x00\x07"),
        tlv(21, b""),
    )
    msg = decode_message(raw)
    assert msg.items[1] == UnknownItem(0xFF80, b"\xde\xad")
    assert msg.items[4] == UnknownItem(21, b"")
    assert msg.get(HeartbeatInterval) == HeartbeatInterval(1000)
    assert msg.get_all(UnknownItem) == [UnknownItem(0xFF80, b"\xde\xad"), UnknownItem(21, b"")]  # type: ignore[type-var]
    assert decode_message(raw) == msg  # not layout-cached, still the same
    # not re-sent by the strict encoder...
    with pytest.raises(EncodeError, match="refusing to send unknown item type 65408"):
        encode_message(msg)
    # ...but preserved byte for byte without validation.
    assert encode_message(msg, validate=False) == raw


def test_session_initialization_still_rejects_known_disallowed_items() -> None:
    raw = msg_bytes(1, tlv(5, b"\x00\x00\x03\xe8"), tlv(4, b"\x00"), tlv(16, bytes(8)))
    e = decode_error(raw)
    assert attrs(e) == (130, 1, 16, 17)
    assert "not allowed" in e.reason


def test_unknown_items_not_tolerated_elsewhere() -> None:
    for mtype in (2, 3, 13, 16):
        spec = DEFAULT_REGISTRY.messages[mtype]
        assert spec.tolerate_unknown is (mtype == 1)
    e = decode_error(msg_bytes(3, tlv(0xFF80, b"")))
    assert attrs(e) == (130, 3, 0xFF80, 4)


# --- Session Termination Response: Status tolerated on receipt, never sent ---


def test_session_termination_response_status() -> None:
    raw = msg_bytes(6, tlv(1, b"\x00OK"))
    assert decode_message(raw) == Message(6, (Status(0, "OK"),))
    assert decode_message(msg_bytes(6)) == Message(6)
    with pytest.raises(
        EncodeError, match=r"Session Termination Response: item Status\(1\) is not allowed"
    ):
        encode_message(Message(M.SESSION_TERMINATION_RESPONSE, (Status(0),)))
    e = decode_error(msg_bytes(6, tlv(1, b"\x00"), tlv(1, b"\x00")))
    assert attrs(e) == (130, 6, 1, 9)
    e = decode_error(msg_bytes(6, MAC_TLV))
    assert attrs(e) == (130, 6, 7, 4)


# --------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------


def test_signal_errors() -> None:
    def sig_error(data: bytes) -> DecodeError:
        with pytest.raises(DecodeError) as ei:
            decode_signal(data)
        assert ei.value.signal
        return ei.value

    e = sig_error(b"DLEP\x00\x01\x00")
    assert attrs(e) == (130, None, None, None)
    e = sig_error(b"DLEQ\x00\x01\x00\x00")
    assert "does not start with 'DLEP'" in e.reason
    e = sig_error(b"DLEP\x00\x03\x00\x00")
    assert attrs(e) == (128, 3, None, None)
    assert "SIGNAL_3" in str(e)
    e = sig_error(b"DLEP\x00\x01\x00\x01")
    assert attrs(e) == (130, 1, None, 4)
    e = sig_error(b"DLEP\x00\x01" + hdr(0, 5) + tlv(4, b"\x00"))
    assert attrs(e) == (130, 1, None, 4)
    # Peer Discovery: Peer Type at most once; connection points not allowed
    e = sig_error(b"DLEP\x00\x01\x00\x0a" + tlv(4, b"\x00") + tlv(4, b"\x01"))
    assert attrs(e) == (130, 1, 4, 13)
    assert "PEER_DISCOVERY" in str(e)
    e = sig_error(b"DLEP\x00\x01\x00\x09" + tlv(2, bytes(5)))
    assert attrs(e) == (130, 1, 2, 8)
    # Peer Offer: two identical connection points
    cp = tlv(2, b"\x00\x0a\x00\x00\x01")
    e = sig_error(b"DLEP\x00\x02\x00\x12" + cp + cp)
    assert attrs(e) == (130, 2, 2, 17)
    assert "duplicate" in e.reason
    # unknown item in a signal
    e = sig_error(b"DLEP\x00\x02\x00\x04" + tlv(99, b""))
    assert attrs(e) == (130, 2, 99, 8)


def test_signal_encode_errors() -> None:
    with pytest.raises(EncodeError, match="unknown signal type 9"):
        encode_signal(Signal(9))
    assert encode_signal(Signal(9), validate=False) == b"DLEP\x00\x09\x00\x00"
    with pytest.raises(
        EncodeError, match=r"Peer Discovery: at most one PeerType\(4\) allowed, got 2"
    ):
        encode_signal(Signal(SignalType.PEER_DISCOVERY, (PeerType("a"), PeerType("b"))))
    big = tuple(Ipv4ConnectionPoint(V4(i), 854) for i in range(65536 // 11 + 1))
    with pytest.raises(EncodeError, match=r"PEER_OFFER: \d+ octets of items exceed 65535"):
        encode_signal(Signal(SignalType.PEER_OFFER, big))


# --------------------------------------------------------------------------
# Encoder strictness: EncodeError messages name the problem
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (Message(99), "unknown message type 99"),
        (Message(M.HEARTBEAT, (Status(0),)), r"Heartbeat: item Status\(1\) is not allowed"),
        (
            Message(M.DESTINATION_DOWN, (MAC, MAC2)),
            r"Destination Down: exactly one MacAddress\(7\) allowed, got 2",
        ),
        (
            Message(M.DESTINATION_UPDATE, (MAC, Latency(1), Latency(2))),
            r"Destination Update: at most one Latency\(16\) allowed, got 2",
        ),
        (
            Message(
                M.DESTINATION_UPDATE,
                (MAC, Ipv4Address(V4("10.0.0.1")), Ipv4Address(V4("10.0.0.1"))),
            ),
            r"Destination Update: duplicate Ipv4Address\(address=IPv4Address\('10\.0\.0\.1'\)",
        ),
        (Message(M.DESTINATION_UP), r"Destination Up: missing required item MacAddress\(7\)"),
        (
            Message(M.SESSION_INITIALIZATION, (HeartbeatInterval(1),)),
            r"Session Initialization: missing required item PeerType\(4\)",
        ),
        (
            Message(M.DESTINATION_UPDATE, (MAC, UnknownItem(300, b""))),
            "Destination Update: refusing to send unknown item type 300",
        ),
    ],
)
def test_encode_rejects(msg: Message, match: str) -> None:
    with pytest.raises(EncodeError, match=match):
        encode_message(msg)


def test_encode_multi_items_distinct_values_ok() -> None:
    m = Message(
        M.DESTINATION_UPDATE,
        (
            MAC,
            Ipv4Address(V4("10.0.0.1")),
            Ipv4Address(V4("10.0.0.2")),
            Ipv4Address(V4("10.0.0.1"), add=False),
            Ipv4AttachedSubnet(V4("10.0.0.0"), 8),
            Ipv4AttachedSubnet(V4("10.0.0.0"), 9),
        ),
    )
    assert decode_message(encode_message(m)) == m


def test_encode_without_validation_and_size_limit() -> None:
    assert encode_message(Message(M.HEARTBEAT, (Status(0),)), validate=False) == (
        b"\x00\x10\x00\x05\x00\x01\x00\x01\x00"
    )
    assert encode_message(Message(77), validate=False) == b"\x00\x4d\x00\x00"
    subnets = tuple(
        Ipv6AttachedSubnet(ipaddress.IPv6Address(i), 128) for i in range(65535 // 22 + 1)
    )
    with pytest.raises(EncodeError, match="DESTINATION_UPDATE: 65548 octets of items exceed 65535"):
        encode_message(Message(M.DESTINATION_UPDATE, (MAC, *subnets)))
    # A body of exactly 65535 octets is fine: one Status TLV of 4 + 65531.
    at_limit = encode_message(Message(M.SESSION_TERMINATION, (Status(0, "x" * 65530),)))
    assert len(at_limit) == 4 + 0xFFFF
    assert at_limit[2:4] == b"\xff\xff"
    assert decode_message(at_limit).get(Status) == Status(0, "x" * 65530)
    with pytest.raises(EncodeError, match="SESSION_TERMINATION: 65536 octets of items exceed"):
        encode_message(Message(M.SESSION_TERMINATION, (Status(0, "x" * 65531),)))


def test_encode_items_wraps_item_format_error() -> None:
    class Huge(DataItem):
        __slots__ = ()
        TYPE = 0xFF90
        NAME = "Huge"

        def encode_value(self) -> bytes:
            return bytes(0x10000)

    assert encode_items([MAC, Latency(1)]) == MAC.encode() + Latency(1).encode()
    assert encode_items([]) == b""
    with pytest.raises(EncodeError, match="Huge: value of 65536 octets"):
        encode_items([Huge()])


# --------------------------------------------------------------------------
# Extensions: items/messages of a non-negotiated extension
# --------------------------------------------------------------------------

TOY_EXT = 0xFFF0


@dataclass(frozen=True, slots=True)
class ToyItem(DataItem):
    """A private-use item carried by the toy extension."""

    TYPE: ClassVar[int] = 0xFF80
    NAME: ClassVar[str] = "Toy"
    value: int

    def encode_value(self) -> bytes:
        return self.value.to_bytes(2, "big")

    @classmethod
    def decode_value(cls, data: bytes) -> Self:
        if len(data) != 2:
            raise ItemFormatError(f"Toy: length {len(data)}, must be 2")
        return cls(int.from_bytes(data, "big"))


def toy_registry() -> Registry:
    reg = core_registry()
    reg.register_item(ToyItem, extension=TOY_EXT)
    reg.allow(M.DESTINATION_UPDATE, ToyItem, OPTIONAL)
    reg.register_message(UnitSpec(0xFFF0, "Toy Message", {7: ONE}, extension=TOY_EXT))
    return reg


def test_extension_item_requires_negotiation() -> None:
    reg = toy_registry()
    raw = encode_message(Message(M.DESTINATION_UPDATE, (MAC, ToyItem(5))), reg)
    assert decode_message(raw, reg).get(ToyItem) == ToyItem(5)
    assert decode_message(raw, reg, extensions=frozenset({TOY_EXT})).items[1] == ToyItem(5)
    assert decode_message(raw, reg, extensions=frozenset({TOY_EXT, 1})).items[1] == ToyItem(5)
    for negotiated in (frozenset(), frozenset({1, 2})):
        e = decode_error(raw, reg, extensions=negotiated)
        assert attrs(e) == (130, 13, 0xFF80, 14)
        assert e.reason == f"item of extension {TOY_EXT}, which is not in use on this session"
    # the core registry never heard of it
    e = decode_error(raw)
    assert attrs(e) == (130, 13, 0xFF80, 14)
    assert e.reason == "unknown data item"


_TOY_REG = toy_registry()
_TOY_EXTRA = {ToyItem: st.builds(ToyItem, st.integers(0, 0xFFFF))}


@given(messages([M.DESTINATION_UPDATE, 0xFFF0], _TOY_REG, extra=_TOY_EXTRA))
def test_strategies_follow_extension_registry(msg: Message) -> None:
    raw = encode_message(msg, _TOY_REG)
    assert decode_message(raw, _TOY_REG, extensions=frozenset({TOY_EXT})) == msg
    if msg.get(ToyItem) is not None:
        assert decode_error(raw, _TOY_REG, extensions=frozenset()).item_type == ToyItem.TYPE


def test_extension_message_requires_negotiation() -> None:
    reg = toy_registry()
    raw = encode_message(Message(0xFFF0, (MAC,)), reg)
    assert decode_message(raw, reg) == Message(0xFFF0, (MAC,))
    assert decode_message(raw, reg, extensions=frozenset({TOY_EXT})) == Message(0xFFF0, (MAC,))
    e = decode_error(raw, reg, extensions=frozenset())
    assert attrs(e) == (128, 0xFFF0, None, 0)
    assert e.reason == "message of an extension not in use"
    assert attrs(decode_error(raw)) == (128, 0xFFF0, None, 0)


def test_core_registry_copies_are_independent() -> None:
    reg = toy_registry()
    assert ToyItem.TYPE not in DEFAULT_REGISTRY.items
    assert ToyItem.TYPE not in core_registry().items
    assert ToyItem.TYPE not in DEFAULT_REGISTRY.messages[13].rules
    assert reg.messages[13].rules[ToyItem.TYPE] == OPTIONAL
    copy = reg.copy()
    copy.allow(M.HEARTBEAT, MacAddress, OPTIONAL)
    assert 7 not in reg.messages[M.HEARTBEAT].rules


def test_multi_item_rule_with_maximum() -> None:
    reg = core_registry()
    reg.allow(M.HEARTBEAT, Latency, Rule(0, 2))
    ok = msg_bytes(16, tlv(16, bytes(8)), tlv(16, b"\x00" * 7 + b"\x01"))
    assert len(decode_message(ok, reg).items) == 2
    three = ok[4:] + tlv(16, b"\x00" * 7 + b"\x02")
    e = decode_error(hdr(16, len(three)) + three, reg)
    assert attrs(e) == (130, 16, 16, 28)
    assert "0..2 allowed, this is number 3" in e.reason
    same = msg_bytes(16, tlv(16, bytes(8)), tlv(16, bytes(8)))
    assert "duplicate" in decode_error(same, reg).reason
    with pytest.raises(EncodeError, match=r"0\.\.2 Latency\(16\) allowed, got 3"):
        encode_message(Message(16, (Latency(0), Latency(1), Latency(2))), reg)


def test_layout_cache_does_not_bypass_duplicate_check_for_repeatable_fixed_items() -> None:
    """A fixed-layout item allowed more than once (extension rule) must still
    be checked for equal values when the learned layout matches."""
    reg = core_registry()
    reg.allow(M.DESTINATION_UPDATE, Latency, ANY)
    good = encode_message(Message(13, (MAC, Latency(1), Latency(2))), reg)
    assert decode_message(good, reg).get_all(Latency) == [Latency(1), Latency(2)]
    assert decode_message(good, reg).get_all(Latency) == [Latency(1), Latency(2)]
    dup = encode_message(Message(13, (MAC, Latency(1), Latency(1))), reg, validate=False)
    e = decode_error(dup, reg)
    assert attrs(e) == (130, 13, 16, 26)
    assert e.reason == "duplicate item with the same value"


def test_rule_on_item_without_codec_is_unknown() -> None:
    reg = core_registry()
    reg.allow(M.HEARTBEAT, 0x7777, OPTIONAL)
    e = decode_error(msg_bytes(16, tlv(0x7777, b"")), reg)
    assert attrs(e) == (130, 16, 0x7777, 4)
    assert e.reason == "unknown data item"


def test_registry_invalidates_compiled_tables() -> None:
    reg = core_registry()
    raw = msg_bytes(16, tlv(16, bytes(8)))
    assert decode_error(raw, reg).status == 130
    reg.allow(M.HEARTBEAT, Latency, OPTIONAL)
    assert decode_message(raw, reg) == Message(16, (Latency(0),))
    reg.allow(M.HEARTBEAT, Latency, OPTIONAL, receive_only=True)
    assert 16 in reg.messages[M.HEARTBEAT].accept_also


# --------------------------------------------------------------------------
# Registry API
# --------------------------------------------------------------------------


def test_registry_errors() -> None:
    reg = core_registry()

    @dataclass(frozen=True, slots=True)
    class Clash(DataItem):
        TYPE: ClassVar[int] = 7
        NAME: ClassVar[str] = "Clash"

    @dataclass(frozen=True, slots=True)
    class Reserved(DataItem):
        TYPE: ClassVar[int] = 0xFFFF
        NAME: ClassVar[str] = "Reserved"

    with pytest.raises(
        RegistryError, match="item type 7 already registered as MacAddress, not Clash"
    ):
        reg.register_item(Clash)
    with pytest.raises(RegistryError, match="item type 65535 is reserved"):
        reg.register_item(Reserved)
    reg.register_item(MacAddress)  # same class again: fine
    with pytest.raises(RegistryError, match="type 13 already registered as Destination Update"):
        reg.register_message(UnitSpec(13, "Other"))
    with pytest.raises(RegistryError, match="type 0 is reserved"):
        reg.register_message(UnitSpec(0, "Zero"))
    with pytest.raises(RegistryError, match="type 2 already registered as Peer Offer"):
        reg.register_signal(UnitSpec(2, "Other"))
    with pytest.raises(RegistryError, match="no message type 99"):
        reg.allow(99, Latency, OPTIONAL)
    with pytest.raises(RegistryError, match="no signal type 13"):
        reg.allow(13, Latency, OPTIONAL, signal=True)
    assert isinstance(RegistryError("x"), WireError)


def test_registry_extension_signal_and_lookup() -> None:
    reg = core_registry()
    reg.register_signal(UnitSpec(0xFFF0, "Toy Signal", {4: OPTIONAL}))
    assert reg.signals[0xFFF0].signal is True
    raw = encode_signal(Signal(0xFFF0, (PeerType("x"),)), reg)
    assert decode_signal(raw, reg) == Signal(0xFFF0, (PeerType("x"),))
    reg.allow(SignalType.PEER_DISCOVERY, MacAddress, OPTIONAL, signal=True)
    assert reg.signals[1].rules[7] == OPTIONAL
    assert reg.message_spec(13) is reg.messages[13]
    assert reg.message_spec(99) is None
    assert reg.item_class(16) is Latency
    assert reg.item_class(99) is None
    # re-registering the same name is an update
    reg.register_message(UnitSpec(13, "Destination Update", {7: ONE}))
    assert reg.messages[13].rules == {7: ONE}


def test_unit_spec_clone_and_refresh() -> None:
    spec = DEFAULT_REGISTRY.messages[M.SESSION_TERMINATION_RESPONSE]
    assert spec.rules == {}
    assert spec.recv_rules == {1: OPTIONAL}
    c = spec.clone()
    assert c == spec and c is not spec
    c.rules[1] = ONE
    c.refresh()
    assert c.required == (1,)
    assert spec.required == ()
    assert dataclasses.replace(c, name="x").name == "x"


def test_rule_describe() -> None:
    assert ONE.describe() == "exactly one"
    assert OPTIONAL.describe() == "at most one"
    assert ANY.describe() == "any number"
    assert Rule(1, None).describe() == "at least 1"
    assert Rule(2, 5).describe() == "2..5"


def test_names() -> None:
    assert item_name(16) == "Latency(16)"
    assert item_name(999) == "unknown(999)"
    assert item_name(0xFF80, toy_registry()) == "Toy(65408)"
    assert message_name(13) == "DESTINATION_UPDATE"
    assert message_name(99) == "MESSAGE_99"
    assert signal_name(1) == "PEER_DISCOVERY"
    assert signal_name(9) == "SIGNAL_9"
    assert is_terminate(128) and is_terminate(255)
    assert not is_terminate(127) and not is_terminate(100) and not is_terminate(0)
    assert not is_terminate(StatusCode.INCONSISTENT_DATA)


def test_decode_error_rendering() -> None:
    e = DecodeError(StatusCode.INVALID_DATA, "bad", message_type=13, item_type=16, offset=14)
    assert str(e) == "[130 INVALID_DATA] DESTINATION_UPDATE, item Latency(16), offset 14: bad"
    assert str(DecodeError(StatusCode.UNKNOWN_MESSAGE, "why")) == "[128 UNKNOWN_MESSAGE] why"
    s = DecodeError(StatusCode.INVALID_DATA, "x", message_type=2, signal=True)
    assert str(s) == "[130 INVALID_DATA] PEER_OFFER: x"
    assert isinstance(e, WireError)
    assert isinstance(EncodeError("x"), ValueError)
    assert isinstance(ItemFormatError("x"), ValueError)


# --------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------


def test_message_container_helpers() -> None:
    m = make_message(
        M.DESTINATION_UPDATE,
        MAC,
        Latency(3),
        Ipv4Address(V4("10.0.0.1")),
        Ipv4Address(V4("10.0.0.2")),
    )
    assert isinstance(m, Message)
    assert m.name == "DESTINATION_UPDATE"
    assert m.get(Latency) == Latency(3)
    assert m.get(Mtu) is None
    assert m.get_all(Ipv4Address) == [Ipv4Address(V4("10.0.0.1")), Ipv4Address(V4("10.0.0.2"))]
    assert m.get_all(Resources) == []
    assert list(m) == list(m.items)
    s = make_message(SignalType.PEER_OFFER, signal=True)
    assert isinstance(s, Signal) and s.name == "PEER_OFFER"
    assert Message(16) != Signal(16)
    assert hash(Message(16, (MAC,))) == hash(Message(16, (MAC,)))
    assert RelativeLinkQualityReceive(1) in Message(13, (MAC, RelativeLinkQualityReceive(1))).items
    assert ExtensionsSupported((1,)) == Message(1, (ExtensionsSupported((1,)),)).get(
        ExtensionsSupported
    )
