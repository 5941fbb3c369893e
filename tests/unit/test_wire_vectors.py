"""Hand-written byte vectors from the RFC 8175 figures (§11.1-§11.3, §13.1-§13.20).

Every vector is written out octet by octet from the RFC text (figure field
widths are given in the prose; flags: bit 7 in RFC numbering is the least
significant bit of the octet).
"""

from __future__ import annotations

import ipaddress

import pytest

from dlep.wire import (
    DISCOVERY_GROUP_V4,
    DISCOVERY_GROUP_V6,
    DLEP_PORT,
    SIGNAL_PREFIX,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    DecodeError,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6Address,
    Ipv6AttachedSubnet,
    Ipv6ConnectionPoint,
    ItemFormatError,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    Message,
    MessageType,
    Mtu,
    PeerType,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Resources,
    Signal,
    SignalType,
    Status,
    StatusCode,
    decode_message,
    decode_signal,
    encode_message,
    encode_signal,
)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address
DB8 = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1


def h(text: str) -> bytes:
    """Hex with spaces/newlines allowed."""
    return bytes.fromhex("".join(text.split()))


# (item, exact TLV bytes): encode must produce these; decoding the value gives the item.
ITEM_VECTORS: list[tuple[str, DataItem, bytes]] = [
    # §13.1 Status: Length 1 + text; no text -> Length MUST be 1.
    ("status-no-text", Status(0), h("0001 0001 00")),
    ("status-130", Status(130), h("0001 0001 82")),
    ("status-text", Status(255, "bye"), h("0001 0004 ff 627965")),
    ("status-utf8", Status(1, "é"), h("0001 0003 01 c3a9")),
    # §13.2 IPv4 Connection Point: Flags(8) Address(32) [Port(16)]; length 5 or 7.
    ("v4cp-noport", Ipv4ConnectionPoint(V4("192.0.2.1")), h("0002 0005 00 c0000201")),
    ("v4cp-port", Ipv4ConnectionPoint(V4("192.0.2.1"), 854), h("0002 0007 00 c0000201 0356")),
    (
        "v4cp-tls",
        Ipv4ConnectionPoint(V4("10.0.0.1"), 0xFFFF, tls=True),
        h("0002 0007 01 0a000001 ffff"),
    ),
    ("v4cp-tls-noport", Ipv4ConnectionPoint(V4("10.0.0.1"), tls=True), h("0002 0005 01 0a000001")),
    # §13.3 IPv6 Connection Point: length 17 or 19.
    ("v6cp-noport", Ipv6ConnectionPoint(V6("2001:db8::1")), h("0003 0011 00") + DB8),
    (
        "v6cp-port-tls",
        Ipv6ConnectionPoint(V6("2001:db8::1"), 854, True),
        h("0003 0013 01") + DB8 + h("0356"),
    ),
    # §13.4 Peer Type: Flags(8) Description; S is the least significant bit.
    ("peertype-empty", PeerType(), h("0004 0001 00")),
    ("peertype-secured", PeerType("", True), h("0004 0001 01")),
    (
        "peertype-text",
        PeerType("Satellite terminal", True),
        h("0004 0013 01") + b"Satellite terminal",
    ),
    # §13.5 Heartbeat Interval: 32-bit milliseconds.
    ("heartbeat-1", HeartbeatInterval(1), h("0005 0004 00000001")),
    ("heartbeat-60s", HeartbeatInterval(60000), h("0005 0004 0000ea60")),
    ("heartbeat-max", HeartbeatInterval(0xFFFFFFFF), h("0005 0004 ffffffff")),
    # §13.6 Extensions Supported: 2 octets per extension.
    ("ext-none", ExtensionsSupported(()), h("0006 0000")),
    ("ext-two", ExtensionsSupported((1, 0xFFF0)), h("0006 0004 0001 fff0")),
    # §13.7 MAC Address: 6 or 8 octets.
    ("mac-eui48", MacAddress(h("ffffffffffff")), h("0007 0006 ffffffffffff")),
    ("mac-eui64", MacAddress(h("0200000000000001")), h("0007 0008 0200000000000001")),
    # §13.8 IPv4 Address: Flags(8, A = LSB) Address(32).
    ("v4addr-add", Ipv4Address(V4("10.0.0.1")), h("0008 0005 01 0a000001")),
    ("v4addr-drop", Ipv4Address(V4("10.0.0.1"), add=False), h("0008 0005 00 0a000001")),
    # §13.9 IPv6 Address: length 17.
    ("v6addr-add", Ipv6Address(V6("2001:db8::1")), h("0009 0011 01") + DB8),
    ("v6addr-drop", Ipv6Address(V6("2001:db8::1"), False), h("0009 0011 00") + DB8),
    # §13.10 IPv4 Attached Subnet: Flags Address(32) Prefix(8); length 6.
    ("v4sub", Ipv4AttachedSubnet(V4("10.1.0.0"), 16), h("000a 0006 01 0a010000 10")),
    ("v4sub-0", Ipv4AttachedSubnet(V4("0.0.0.0"), 0, False), h("000a 0006 00 00000000 00")),
    ("v4sub-32", Ipv4AttachedSubnet(V4("10.1.2.3"), 32), h("000a 0006 01 0a010203 20")),
    ("v4sub-hostbits", Ipv4AttachedSubnet(V4("10.1.2.3"), 8), h("000a 0006 01 0a010203 08")),
    # §13.11 IPv6 Attached Subnet: length 18, prefix 0..128.
    ("v6sub-64", Ipv6AttachedSubnet(V6("2001:db8::1"), 64), h("000b 0012 01") + DB8 + h("40")),
    (
        "v6sub-128",
        Ipv6AttachedSubnet(V6("2001:db8::1"), 128, False),
        h("000b 0012 00") + DB8 + h("80"),
    ),
    # §13.12-§13.16: 64-bit unsigned.
    ("mdrr", MaximumDataRateReceive(100_000_000), h("000c 0008 0000000005f5e100")),
    ("mdrt-max", MaximumDataRateTransmit((1 << 64) - 1), h("000d 0008 ffffffffffffffff")),
    ("cdrr-0", CurrentDataRateReceive(0), h("000e 0008 0000000000000000")),
    ("cdrt", CurrentDataRateTransmit(1 << 63), h("000f 0008 8000000000000000")),
    ("latency", Latency(1500), h("0010 0008 00000000000005dc")),
    # §13.17-§13.19: 8-bit percentages 0..100.
    ("resources-0", Resources(0), h("0011 0001 00")),
    ("resources-100", Resources(100), h("0011 0001 64")),
    ("rlqr", RelativeLinkQualityReceive(50), h("0012 0001 32")),
    ("rlqt", RelativeLinkQualityTransmit(99), h("0013 0001 63")),
    # §13.20 MTU: 16-bit.
    ("mtu", Mtu(1500), h("0014 0002 05dc")),
    ("mtu-max", Mtu(0xFFFF), h("0014 0002 ffff")),
]


@pytest.mark.parametrize(
    ("item", "tlv"), [v[1:] for v in ITEM_VECTORS], ids=[v[0] for v in ITEM_VECTORS]
)
def test_item_vector(item: DataItem, tlv: bytes) -> None:
    assert item.encode() == tlv
    assert int.from_bytes(tlv[2:4], "big") == len(tlv) - 4
    assert type(item).decode_value(tlv[4:]) == item


def test_heartbeat_interval_zero_rejected() -> None:
    with pytest.raises(ItemFormatError, match="must not be 0"):
        HeartbeatInterval.decode_value(h("00000000"))
    raw = h("0001 000d 0005 0004 00000000 0004 0001 00")
    with pytest.raises(DecodeError) as ei:
        decode_message(raw)
    assert (ei.value.status, ei.value.item_type, ei.value.offset) == (130, 5, 4)


@pytest.mark.parametrize("length", [1, 3, 5])
def test_odd_extensions_supported_rejected(length: int) -> None:
    with pytest.raises(ItemFormatError, match="odd"):
        ExtensionsSupported.decode_value(bytes(length))


def test_mac_length_7_rejected_in_message() -> None:
    raw = h("000b 000b 0007 0007 02000000000001")
    with pytest.raises(DecodeError) as ei:
        decode_message(raw)
    e = ei.value
    assert (e.status, e.message_type, e.item_type, e.offset) == (130, 11, 7, 4)
    assert "length 7" in e.reason


@pytest.mark.parametrize("item_type", [0x11, 0x12, 0x13])
def test_percent_101_rejected(item_type: int) -> None:
    raw = h("000d 000f 0007 0006 020000000001") + item_type.to_bytes(2, "big") + h("0001 65")
    with pytest.raises(DecodeError) as ei:
        decode_message(raw)
    assert (ei.value.status, ei.value.item_type, ei.value.offset) == (130, item_type, 14)
    assert "101 exceeds 100" in ei.value.reason


def test_attached_subnet_prefix_limits() -> None:
    assert Ipv4AttachedSubnet.decode_value(h("01 0a000000 20")).prefix_length == 32
    with pytest.raises(ItemFormatError, match="33"):
        Ipv4AttachedSubnet.decode_value(h("01 0a000000 21"))
    assert Ipv6AttachedSubnet.decode_value(h("01") + DB8 + h("80")).prefix_length == 128
    with pytest.raises(ItemFormatError, match="129"):
        Ipv6AttachedSubnet.decode_value(h("01") + DB8 + h("81"))
    # ...and inside a Destination Update: 130 on the subnet item.
    raw = h("000d 0014 0007 0006 020000000001 000a 0006 01 0a000000 21")
    with pytest.raises(DecodeError) as ei:
        decode_message(raw)
    assert (ei.value.status, ei.value.item_type, ei.value.offset) == (130, 10, 14)


# --------------------------------------------------------------------------
# Flags: the defined bit is the LSB; reserved bits ignored on receipt, sent 0.
# --------------------------------------------------------------------------


def test_peer_type_s_flag_is_least_significant_bit() -> None:
    assert PeerType.decode_value(h("01")).secured_medium is True
    assert PeerType.decode_value(h("00")).secured_medium is False
    # bit 0 in RFC numbering (MSB) is Reserved, not S
    assert PeerType.decode_value(h("80")).secured_medium is False
    assert PeerType.decode_value(h("fe")).secured_medium is False
    assert PeerType.decode_value(h("ff")) == PeerType("", True)
    assert PeerType.decode_value(h("ff") + b"x").encode_value() == h("01") + b"x"


@pytest.mark.parametrize(
    ("cls", "value", "attr"),
    [
        (Ipv4ConnectionPoint, h("0a000001"), "tls"),
        (Ipv6ConnectionPoint, DB8, "tls"),
        (Ipv4Address, h("0a000001"), "add"),
        (Ipv6Address, DB8, "add"),
        (Ipv4AttachedSubnet, h("0a000000 08"), "add"),
        (Ipv6AttachedSubnet, DB8 + h("40"), "add"),
        (PeerType, b"modem", "secured_medium"),
    ],
)
@pytest.mark.parametrize("flags", [0x00, 0x01, 0x02, 0x80, 0xFE, 0xFF])
def test_flag_octet(cls: type[DataItem], value: bytes, attr: str, flags: int) -> None:
    item = cls.decode_value(bytes((flags,)) + value)
    assert getattr(item, attr) is bool(flags & 1)
    assert item.encode_value() == bytes((flags & 1,)) + value


def test_add_drop_flags_in_message() -> None:
    m = Message(
        MessageType.DESTINATION_UPDATE,
        (
            MacAddress(h("020000000001")),
            Ipv4Address(V4("10.0.0.1"), add=True),
            Ipv4Address(V4("10.0.0.1"), add=False),  # same address, different value
        ),
    )
    raw = encode_message(m)
    assert raw == h("000d 001c 0007 0006 020000000001 0008 0005 01 0a000001 0008 0005 00 0a000001")
    assert decode_message(raw) == m


# --------------------------------------------------------------------------
# §11.1 signal header, §11.2 message header, §11.3 generic item
# --------------------------------------------------------------------------


def test_constants() -> None:
    assert SIGNAL_PREFIX == b"DLEP" == bytes((0x44, 0x4C, 0x45, 0x50))
    assert DLEP_PORT == 854
    assert DISCOVERY_GROUP_V4 == "224.0.0.117"
    assert DISCOVERY_GROUP_V6 == "ff02::1:7"


def test_peer_discovery_signal_bytes() -> None:
    sig = Signal(SignalType.PEER_DISCOVERY)
    raw = h("444c4550 0001 0000")
    assert encode_signal(sig) == raw
    assert decode_signal(raw) == sig
    with_type = Signal(SignalType.PEER_DISCOVERY, (PeerType("r"),))
    raw2 = h("444c4550 0001 0006 0004 0002 00 72")
    assert encode_signal(with_type) == raw2
    assert decode_signal(raw2) == with_type


def test_peer_offer_signal_bytes() -> None:
    sig = Signal(
        SignalType.PEER_OFFER,
        (
            Ipv4ConnectionPoint(V4("192.0.2.1")),
            Ipv4ConnectionPoint(V4("192.0.2.1"), 854),
            Ipv6ConnectionPoint(V6("2001:db8::1"), 1854, True),
        ),
    )
    raw = (
        h("444c4550 0002 002b")
        + h("0002 0005 00 c0000201")
        + h("0002 0007 00 c0000201 0356")
        + h("0003 0013 01")
        + DB8
        + h("073e")
    )
    assert encode_signal(sig) == raw
    assert decode_signal(raw) == sig


def test_message_header_bytes() -> None:
    assert encode_message(Message(MessageType.HEARTBEAT)) == h("0010 0000")
    assert decode_message(h("0010 0000")) == Message(MessageType.HEARTBEAT)
    m = Message(MessageType.SESSION_TERMINATION, (Status.of(StatusCode.SHUTTING_DOWN),))
    assert encode_message(m) == h("0005 0005 0001 0001 ff")
    assert encode_message(Message(MessageType.SESSION_TERMINATION_RESPONSE)) == h("0006 0000")


def test_session_initialization_bytes() -> None:
    m = Message(
        MessageType.SESSION_INITIALIZATION,
        (HeartbeatInterval(1000), PeerType("R"), ExtensionsSupported((2,))),
    )
    raw = h("0001 0014 0005 0004 000003e8 0004 0002 00 52 0006 0002 0002")
    assert encode_message(m) == raw
    assert decode_message(raw) == m


def test_destination_update_all_metrics_bytes() -> None:
    m = Message(
        MessageType.DESTINATION_UPDATE,
        (
            MacAddress(h("020000000001")),
            MaximumDataRateReceive(1),
            MaximumDataRateTransmit(2),
            CurrentDataRateReceive(3),
            CurrentDataRateTransmit(4),
            Latency(5),
            Resources(6),
            RelativeLinkQualityReceive(7),
            RelativeLinkQualityTransmit(8),
            Mtu(9),
        ),
    )
    raw = h(
        """000d 005b
        0007 0006 020000000001
        000c 0008 0000000000000001
        000d 0008 0000000000000002
        000e 0008 0000000000000003
        000f 0008 0000000000000004
        0010 0008 0000000000000005
        0011 0001 06
        0012 0001 07
        0013 0001 08
        0014 0002 0009"""
    )
    assert len(raw) == 4 + 0x5B
    assert encode_message(m) == raw
    assert decode_message(raw) == m
    assert decode_message(raw) == m  # learned-layout path gives the same


def test_generic_data_item_length_excludes_header() -> None:
    # §11.3: Length counts the Value only; a zero-length item is 4 octets.
    raw = h("0001 0004 0006 0000 0005 0004 00000001 0004 0001 00")
    with pytest.raises(DecodeError):
        decode_message(raw)  # header says 4 but 17 octets follow
    ok = h("0001 0011 0006 0000 0005 0004 00000001 0004 0001 00")
    msg = decode_message(ok)
    assert msg.get(ExtensionsSupported) == ExtensionsSupported(())
