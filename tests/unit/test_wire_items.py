"""Data items (RFC 8175 §13): round trips, constructor validation, helpers."""

from __future__ import annotations

import dataclasses
import ipaddress
import struct
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlep.wire import (
    CORE_ITEMS,
    CORE_METRICS,
    MANDATORY_METRICS,
    OPTIONAL_METRICS,
    CurrentDataRateReceive,
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6Address,
    Ipv6AttachedSubnet,
    Ipv6ConnectionPoint,
    ItemFormatError,
    ItemType,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MetricItem,
    Mtu,
    PeerType,
    RelativeLinkQualityReceive,
    Resources,
    Status,
    StatusCode,
    UnknownItem,
    format_mac,
    parse_mac,
)
from tests.unit.strategies import ITEM_STRATEGIES, VALUE_BYTES, texts

ITEM_IDS = [c.__name__ for c in CORE_ITEMS]


def test_core_item_table_is_complete_and_ordered() -> None:
    assert len(CORE_ITEMS) == 20
    assert [c.TYPE for c in CORE_ITEMS] == list(range(1, 21))
    assert {c.TYPE for c in CORE_ITEMS} == {int(t) for t in ItemType}
    assert set(CORE_METRICS) == set(MANDATORY_METRICS) | set(OPTIONAL_METRICS)
    assert len(CORE_METRICS) == 9


# --------------------------------------------------------------------------
# Round trips, every class
# --------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CORE_ITEMS, ids=ITEM_IDS)
@given(data=st.data())
def test_decode_encode_roundtrip(cls: type[DataItem], data: st.DataObject) -> None:
    item = data.draw(ITEM_STRATEGIES[cls])
    assert type(item) is cls
    value = item.encode_value()
    assert cls.decode_value(value) == item
    tlv = item.encode()
    assert tlv == struct.pack("!HH", cls.TYPE, len(value)) + value
    again = cls.decode_value(tlv[4:])
    assert again == item
    assert hash(again) == hash(item)


@pytest.mark.parametrize("cls", CORE_ITEMS, ids=ITEM_IDS)
@given(data=st.data())
def test_encode_decode_roundtrip_bytes(cls: type[DataItem], data: st.DataObject) -> None:
    raw = data.draw(VALUE_BYTES[cls])
    item = cls.decode_value(raw)
    assert item.encode_value() == raw
    assert item.encode() == struct.pack("!HH", cls.TYPE, len(raw)) + raw


_FLAGGED = {
    Ipv4ConnectionPoint: 0,
    Ipv6ConnectionPoint: 0,
    PeerType: 0,
    Ipv4Address: 0,
    Ipv6Address: 0,
    Ipv4AttachedSubnet: 0,
    Ipv6AttachedSubnet: 0,
}


@pytest.mark.parametrize("cls", list(_FLAGGED), ids=[c.__name__ for c in _FLAGGED])
@given(data=st.data())
def test_reserved_flag_bits_ignored_and_sent_as_zero(
    cls: type[DataItem], data: st.DataObject
) -> None:
    raw = data.draw(VALUE_BYTES[cls])
    reserved = data.draw(st.integers(1, 0x7F)) << 1
    noisy = bytes((raw[0] | reserved,)) + raw[1:]
    item = cls.decode_value(noisy)
    assert item == cls.decode_value(raw)
    assert item.encode_value() == raw
    assert item.encode_value()[0] in (0, 1)


@given(st.sampled_from(CORE_ITEMS).flatmap(lambda c: ITEM_STRATEGIES[c]))
def test_items_are_frozen_and_hashable(item: DataItem) -> None:
    hash(item)
    name = dataclasses.fields(item)[0].name  # type: ignore[arg-type]
    with pytest.raises(FrozenInstanceError):
        setattr(item, name, getattr(item, name))


def test_equal_values_of_different_classes_differ() -> None:
    assert Latency(5) != CurrentDataRateReceive(5)
    assert len({Latency(5), CurrentDataRateReceive(5), Latency(5)}) == 2
    assert Resources(5) != RelativeLinkQualityReceive(5)


# --------------------------------------------------------------------------
# Text fields
# --------------------------------------------------------------------------


@given(texts(200), st.integers(0, 255))
def test_status_text_roundtrip(text: str, code: int) -> None:
    item = Status(code, text)
    assert Status.decode_value(item.encode_value()) == item
    assert item.encode_value()[1:] == text.encode("utf-8")


@given(st.binary(max_size=300))
def test_invalid_utf8_replaced_at_decode(raw: bytes) -> None:
    # Issue 14: display text, so bad octets become U+FFFD (RFC 3629 / Unicode
    # practice) rather than surrogate escapes nothing above the codec can use.
    shown = raw.decode("utf-8", "replace")
    status = Status.decode_value(b"\x80" + raw)
    assert status.code == 128
    assert status.text == shown
    status.text.encode("utf-8")  # never raises: no surrogates
    peer = PeerType.decode_value(b"\x01" + raw)
    assert peer.secured_medium is True
    assert peer.description == shown
    assert peer.encode_value() == b"\x01" + shown.encode("utf-8")


def test_non_bmp_text() -> None:
    s = Status(0, "\U0001f4e1")
    assert s.encode_value() == b"\x00\xf0\x9f\x93\xa1"
    assert PeerType.decode_value(b"\x00\xf0\x9f\x93\xa1").description == "\U0001f4e1"


def test_text_limits() -> None:
    big = "x" * 0xFFFE
    assert len(Status(0, big).encode()) == 4 + 0xFFFF
    assert len(PeerType(big).encode()) == 4 + 0xFFFF
    with pytest.raises(ItemFormatError, match=r"Status\.text"):
        Status(0, big + "x")
    with pytest.raises(ItemFormatError, match=r"PeerType\.description"):
        PeerType("é" * 0x8000)  # 65536 octets of UTF-8


@pytest.mark.parametrize("bad", ["\ud800", "a\udfffb", "\udc80"])
def test_lone_surrogates_rejected_as_item_format_error(bad: str) -> None:
    # No surrogate is a Unicode scalar value: none is encodable as UTF-8.
    with pytest.raises(ItemFormatError, match=r"Status\.text"):
        Status(0, bad)
    with pytest.raises(ItemFormatError, match=r"PeerType\.description"):
        PeerType(bad)


def test_text_type_checked() -> None:
    with pytest.raises(ItemFormatError, match="expected a str"):
        Status(0, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ItemFormatError, match="expected a str"):
        PeerType(None)  # type: ignore[arg-type]


def test_status_helpers() -> None:
    assert Status.of(StatusCode.SHUTTING_DOWN, "bye") == Status(255, "bye")
    assert type(Status.of(StatusCode.SUCCESS).code) is int
    assert Status(0).name == "SUCCESS"
    assert Status(130).name == "INVALID_DATA"
    assert Status(120).name == "PRIVATE_120"
    assert Status(250).name == "PRIVATE_250"
    assert Status(50).name == "UNASSIGNED_50"


# --------------------------------------------------------------------------
# Constructor validation (field names in messages)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Status(256), r"Status\.code: 256 out of range 0\.\.255"),
        (lambda: Status(-1), r"Status\.code"),
        (lambda: Status(True), r"Status\.code: expected an integer"),  # type: ignore[arg-type]
        (lambda: Status(1.0), r"Status\.code: expected an integer"),  # type: ignore[arg-type]
        (lambda: Ipv4ConnectionPoint("1.2.3.4", 65536), r"IPv4ConnectionPoint\.port"),
        (lambda: Ipv4ConnectionPoint("1.2.3.4", tls=1), r"IPv4ConnectionPoint\.tls"),  # type: ignore[arg-type]
        (lambda: Ipv4ConnectionPoint("1.2.3.999"), r"IPv4ConnectionPoint\.address"),
        (lambda: Ipv4ConnectionPoint("::1"), r"IPv4ConnectionPoint\.address"),
        (lambda: Ipv6ConnectionPoint("::1", -1), r"IPv6ConnectionPoint\.port"),
        (lambda: Ipv6ConnectionPoint("::1", tls="yes"), r"IPv6ConnectionPoint\.tls"),  # type: ignore[arg-type]
        (lambda: Ipv6ConnectionPoint("1.2.3.4"), r"IPv6ConnectionPoint\.address"),
        (lambda: PeerType("x", 1), r"PeerType\.secured_medium"),  # type: ignore[arg-type]
        (lambda: HeartbeatInterval(0), r"HeartbeatInterval\.milliseconds: must not be 0"),
        (lambda: HeartbeatInterval(1 << 32), r"HeartbeatInterval\.milliseconds"),
        (lambda: ExtensionsSupported((1, 65536)), r"ExtensionsSupported\.extensions"),
        (lambda: ExtensionsSupported(range(0x8000)), r"too many extensions"),
        (lambda: MacAddress(b"\x00" * 7), r"MacAddress\.address: 7 octets"),
        (lambda: MacAddress(b""), r"MacAddress\.address: 0 octets"),
        (lambda: MacAddress(bytearray(6)), r"MacAddress\.address: expected bytes"),  # type: ignore[arg-type]
        (lambda: MacAddress("zz:00:00:00:00:00"), r"not hexadecimal"),
        (lambda: Ipv4Address("10.0.0.256"), r"IPv4Address\.address"),
        (lambda: Ipv4Address("10.0.0.1", add=0), r"IPv4Address\.add"),  # type: ignore[arg-type]
        (lambda: Ipv6Address("fe80::g"), r"IPv6Address\.address"),
        (lambda: Ipv6Address("::", add=None), r"IPv6Address\.add"),  # type: ignore[arg-type]
        (lambda: Ipv4AttachedSubnet("10.0.0.0", 33), r"prefix_length: 33 out of range 0\.\.32"),
        (lambda: Ipv4AttachedSubnet("10.0.0.0", 256), r"prefix_length: 256 out of range"),
        (lambda: Ipv4AttachedSubnet("10.0.0.0", 8, 1), r"IPv4AttachedSubnet\.add"),  # type: ignore[arg-type]
        (lambda: Ipv4AttachedSubnet("x", 8), r"IPv4AttachedSubnet\.address"),
        (lambda: Ipv6AttachedSubnet("::", 129), r"prefix_length: 129 out of range 0\.\.128"),
        (lambda: Ipv6AttachedSubnet("::", -1), r"IPv6AttachedSubnet\.prefix_length"),
        (lambda: Ipv6AttachedSubnet("::", 64, "y"), r"IPv6AttachedSubnet\.add"),  # type: ignore[arg-type]
        (lambda: Ipv6AttachedSubnet("x", 8), r"IPv6AttachedSubnet\.address"),
        (lambda: Latency(1 << 64), r"Latency\.value: 18446744073709551616 out of range"),
        (lambda: MaximumDataRateReceive(-1), r"MDRR\.value"),
        (lambda: Latency(1.5), r"Latency\.value: expected an integer"),  # type: ignore[arg-type]
        (lambda: Resources(101), r"Resources\.value: 101 exceeds 100"),
        (lambda: RelativeLinkQualityReceive(256), r"RLQR\.value: 256 out of range 0\.\.255"),
        (lambda: Mtu(65536), r"MTU\.value"),
        (lambda: Mtu(False), r"MTU\.value: expected an integer"),  # type: ignore[arg-type]
    ],
)
def test_constructor_rejects(factory: object, match: str) -> None:
    with pytest.raises(ItemFormatError, match=match):
        factory()  # type: ignore[operator]


def test_constructors_coerce_addresses() -> None:
    cp = Ipv4ConnectionPoint("192.0.2.1", 854, True)  # type: ignore[arg-type]
    assert cp.address == ipaddress.IPv4Address("192.0.2.1")
    assert Ipv6ConnectionPoint("2001:db8::1").address == ipaddress.IPv6Address("2001:db8::1")  # type: ignore[arg-type]
    assert Ipv4Address(0x0A000001).address == ipaddress.IPv4Address("10.0.0.1")  # type: ignore[arg-type]
    assert Ipv6Address("::1").address == ipaddress.IPv6Address(1)  # type: ignore[arg-type]
    assert ExtensionsSupported([1, 2]).extensions == (1, 2)  # type: ignore[arg-type]
    assert MacAddress("02:00:00:00:00:01").address == b"\x02\0\0\0\0\x01"  # type: ignore[arg-type]


def test_metric_edges() -> None:
    for cls in (MaximumDataRateReceive, Latency):
        assert cls(0).encode_value() == bytes(8)
        assert cls((1 << 64) - 1).encode_value() == b"\xff" * 8
    assert Resources(0).encode_value() == b"\x00"
    assert Resources(100).encode_value() == b"\x64"
    assert Mtu(0xFFFF).encode_value() == b"\xff\xff"
    assert issubclass(Latency, MetricItem)
    assert Latency.UNIT == "us"
    assert MaximumDataRateReceive.UNIT == "bps"
    assert Resources.UNIT == "%"
    assert Mtu.UNIT == "octets"


# --------------------------------------------------------------------------
# Decoder rejections (each item class)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "value", "match"),
    [
        (Status, b"", "length 0"),
        (PeerType, b"", "length 0"),
        (Ipv4ConnectionPoint, bytes(4), "length 4, must be 5 or 7"),
        (Ipv4ConnectionPoint, bytes(6), "length 6"),
        (Ipv4ConnectionPoint, bytes(8), "length 8"),
        (Ipv6ConnectionPoint, bytes(16), "must be 17 or 19"),
        (Ipv6ConnectionPoint, bytes(18), "must be 17 or 19"),
        (Ipv6ConnectionPoint, bytes(20), "must be 17 or 19"),
        (HeartbeatInterval, bytes(4), "must not be 0"),
        (HeartbeatInterval, bytes(3), "length 3, must be 4"),
        (HeartbeatInterval, bytes(8), "length 8"),
        (ExtensionsSupported, bytes(3), "odd"),
        (ExtensionsSupported, bytes(1), "odd"),
        (MacAddress, bytes(7), "length 7, must be 6 or 8"),
        (MacAddress, bytes(5), "length 5"),
        (MacAddress, bytes(0), "length 0"),
        (Ipv4Address, bytes(4), "must be 5"),
        (Ipv4Address, bytes(6), "must be 5"),
        (Ipv6Address, bytes(16), "must be 17"),
        (Ipv4AttachedSubnet, bytes(5) + b"\x21", "prefix length 33 exceeds 32"),
        (Ipv4AttachedSubnet, bytes(5) + b"\xff", "prefix length 255 exceeds 32"),
        (Ipv4AttachedSubnet, bytes(5), "must be 6"),
        (Ipv6AttachedSubnet, bytes(17) + b"\x81", "prefix length 129 exceeds 128"),
        (Ipv6AttachedSubnet, bytes(17), "must be 18"),
        (Latency, bytes(7), "Latency: length 7, must be 8"),
        (MaximumDataRateReceive, bytes(9), "MDRR: length 9"),
        (Resources, b"\x65", "Resources: 101 exceeds 100"),
        (RelativeLinkQualityReceive, b"\xff", "RLQR: 255 exceeds 100"),
        (Resources, b"", "length 0, must be 1"),
        (Resources, b"\x00\x00", "length 2, must be 1"),
        (Mtu, b"\x05", "MTU: length 1, must be 2"),
        (Mtu, bytes(4), "MTU: length 4"),
    ],
)
def test_decode_value_rejects(cls: type[DataItem], value: bytes, match: str) -> None:
    with pytest.raises(ItemFormatError, match=match):
        cls.decode_value(value)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def test_mac_parse_and_format() -> None:
    mac = MacAddress.parse("02-00-5E-10-00-01")
    assert mac.address == bytes.fromhex("02005e100001")
    assert str(mac) == "02:00:5e:10:00:01"
    assert format_mac(bytes(range(8))) == "00:01:02:03:04:05:06:07"
    assert parse_mac("0:1:2:3:4:5:6:7") == bytes(range(8))
    for bad in ("", "01:02:03:04:05", "01:02:03:04:05:06:07", "001:02:03:04:05:06", "1::2:3:4:5"):
        with pytest.raises(ItemFormatError, match="need 6 or 8"):
            parse_mac(bad)
    with pytest.raises(ItemFormatError, match="not hexadecimal"):
        parse_mac("gg:00:00:00:00:00")


@given(st.one_of(st.binary(min_size=6, max_size=6), st.binary(min_size=8, max_size=8)))
def test_mac_text_roundtrip(raw: bytes) -> None:
    assert parse_mac(format_mac(raw)) == raw
    assert MacAddress.parse(str(MacAddress(raw))) == MacAddress(raw)


def test_attached_subnet_network_helpers() -> None:
    s4 = Ipv4AttachedSubnet.from_network("10.1.2.3/24")
    assert s4 == Ipv4AttachedSubnet(ipaddress.IPv4Address("10.1.2.0"), 24, True)
    host_bits = Ipv4AttachedSubnet(ipaddress.IPv4Address("10.1.2.3"), 24)
    assert host_bits.network == ipaddress.IPv4Network("10.1.2.0/24")
    assert host_bits.encode_value() == b"\x01\x0a\x01\x02\x03\x18"  # kept as sent
    assert host_bits != s4
    s6 = Ipv6AttachedSubnet.from_network(ipaddress.IPv6Network("2001:db8::/32"), add=False)
    assert s6.prefix_length == 32 and s6.add is False
    assert Ipv6AttachedSubnet(ipaddress.IPv6Address("2001:db8::1"), 64).network == (
        ipaddress.IPv6Network("2001:db8::/64")
    )


def test_unknown_item_encodes_as_received() -> None:
    u = UnknownItem(0xFF80, b"\x01\x02\x03")
    assert u.encode() == b"\xff\x80\x00\x03\x01\x02\x03"
    assert UnknownItem(42, b"").encode() == b"\x00\x2a\x00\x00"


def test_base_class_is_abstract_and_value_limit() -> None:
    with pytest.raises(NotImplementedError):
        DataItem().encode_value()
    with pytest.raises(NotImplementedError):
        DataItem.decode_value(b"")

    class Huge(DataItem):
        __slots__ = ()
        TYPE = 0xFF90
        NAME = "Huge"

        def encode_value(self) -> bytes:
            return bytes(0x10000)

    with pytest.raises(ItemFormatError, match="Huge: value of 65536 octets exceeds 65535"):
        Huge().encode()
