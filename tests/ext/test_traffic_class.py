"""RFC 9892 Traffic Classification data item and sub-data items: codec,
byte vectors built from the RFC's figures, validation, fuzzing, classifier."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlep.ext.traffic_class import (
    DIFFSERV_SUB_TYPE,
    ETHERNET_SUB_TYPE,
    TRAFFIC_CLASSIFICATION,
    Classifier,
    DiffservClassification,
    EthernetClassification,
    TrafficClassification,
    UnknownSubDataItem,
)
from dlep.wire import ItemFormatError

FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUND = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sdi(sub_type: int, value: bytes) -> bytes:
    return struct.pack("!HH", sub_type, len(value)) + value


def tc_value(tid: int, *subs: bytes, count: int | None = None, reserved: int = 0) -> bytes:
    n = len(subs) if count is None else count
    return struct.pack("!HBB", tid, n, reserved) + b"".join(subs)


# --------------------------------------------------------------------------
# Byte vectors (layouts of RFC 9892 §2.1-§2.3)
# --------------------------------------------------------------------------


def test_diffserv_sub_item_vector() -> None:
    # FID 0x0102, Num DSCPs 3, DS Fields EF (46), AF11 (10), CS0 (0): DSCP << 2, MBZ 0.
    item = DiffservClassification(0x0102, (46, 10, 0))
    assert item.encode() == bytes.fromhex("0001 0006 0102 03 b8 28 00")
    assert DiffservClassification.decode_value(bytes.fromhex("0102 03 b8 28 00")) == item


def test_diffserv_wildcard_vector() -> None:
    item = DiffservClassification(7)
    assert item.wildcard
    assert item.encode() == bytes.fromhex("0001 0003 0007 00")
    assert DiffservClassification.decode_value(bytes.fromhex("0007 00")) == item


def test_diffserv_max_length_is_67() -> None:
    item = DiffservClassification(1, tuple(range(64)))
    assert len(item.encode_value()) == 3 + 64 == 67


def test_ethernet_sub_item_vector_odd_pcps_has_pad() -> None:
    # FID 3, NumPCPs 3, VID 100 (0x064), PCPs 7, 5, 1: nibbles PCP<<1 = e, a, 2, pad 0.
    item = EthernetClassification(3, 100, (7, 5, 1))
    assert item.encode() == bytes.fromhex("0002 0006 0003 30 64 ea 20")
    assert EthernetClassification.decode_value(bytes.fromhex("0003 3064 ea20")) == item


def test_ethernet_sub_item_vector_even_pcps() -> None:
    item = EthernetClassification(0xFFFE, 0xFFE, (0, 1, 2, 3, 4, 5, 6, 7))
    # NumPCPs 8 in the high nibble, VID 0xffe in the low 12 bits; 4 octets of PCPs.
    assert item.encode() == bytes.fromhex("0002 0008 fffe 8f fe 02 46 8a ce")
    assert len(item.encode_value()) == 8  # the RFC's maximum: 4 + 8/2


def test_ethernet_wildcard_vector() -> None:
    item = EthernetClassification(9)
    assert item.wildcard and item.vid == 0
    assert item.encode() == bytes.fromhex("0002 0004 0009 0000")


def test_traffic_classification_vector() -> None:
    tc = TrafficClassification(
        0x1234,
        (DiffservClassification(1, (46,)), EthernetClassification(2, 5, (3,))),
    )
    body = bytes.fromhex("1234 02 00") + bytes.fromhex("0001 0004 0001 01 b8")
    body += bytes.fromhex("0002 0005 0002 1005 60")
    assert tc.encode() == struct.pack("!HH", 29, len(body)) + body
    assert TrafficClassification.decode_value(body) == tc
    assert tc.TYPE == TRAFFIC_CLASSIFICATION == 29


def test_traffic_classification_with_no_flows() -> None:
    tc = TrafficClassification(5)
    assert tc.encode() == bytes.fromhex("001d 0004 0005 00 00")
    assert TrafficClassification.decode_value(bytes.fromhex("0005 0000")) == tc
    assert tc.fids == frozenset()


def test_accessors() -> None:
    tc = TrafficClassification(
        1,
        (
            DiffservClassification(1, (1,)),
            EthernetClassification(2, 0, (1,)),
            UnknownSubDataItem(77, b"x"),
        ),
    )
    assert tc.fids == {1, 2}
    assert tc.sub_types == {DIFFSERV_SUB_TYPE, ETHERNET_SUB_TYPE, 77}
    assert tc.diffserv == (DiffservClassification(1, (1,)),)
    assert tc.ethernet == (EthernetClassification(2, 0, (1,)),)


# --------------------------------------------------------------------------
# Reserved, MBZ and Pad bits: zero on send, ignored on receipt
# --------------------------------------------------------------------------


def test_reserved_octet_ignored_on_receipt() -> None:
    value = tc_value(1, sdi(1, bytes.fromhex("0001 00")), reserved=0xFF)
    tc = TrafficClassification.decode_value(value)
    assert tc == TrafficClassification(1, (DiffservClassification(1),))
    assert tc.encode_value()[3] == 0


def test_ds_field_mbz_bits_ignored() -> None:
    item = DiffservClassification.decode_value(bytes.fromhex("0001 01 bb"))  # 46<<2 | 3
    assert item.dscps == (46,)
    assert item.encode_value() == bytes.fromhex("0001 01 b8")


def test_pcp_mbz_bit_and_pad_ignored() -> None:
    item = EthernetClassification.decode_value(bytes.fromhex("0001 1000 ff"))  # 7|1, pad f
    assert item.pcps == (7,)
    assert item.encode_value() == bytes.fromhex("0001 1000 e0")


# --------------------------------------------------------------------------
# Strict decoding
# --------------------------------------------------------------------------

BAD_VALUES = {
    "short header": bytes.fromhex("0001 00"),
    "count too high": tc_value(1, sdi(1, bytes.fromhex("0001 00")), count=2),
    "count too low": tc_value(1, sdi(1, bytes.fromhex("0001 00")), count=0),
    "trailing octets": tc_value(1) + b"\x00\x01",
    "sub-item runs past": tc_value(1, struct.pack("!HH", 1, 9) + b"\x00\x01\x00"),
    "reserved sub type 0": tc_value(1, sdi(0, b"")),
    "reserved sub type 65535": tc_value(1, sdi(0xFFFF, b"")),
    "diffserv too short": tc_value(1, sdi(1, b"\x00\x01")),
    "diffserv length vs count": tc_value(1, sdi(1, bytes.fromhex("0001 02 b8"))),
    "diffserv extra octet": tc_value(1, sdi(1, bytes.fromhex("0001 00 00"))),
    "diffserv FID 0xFFFF": tc_value(1, sdi(1, bytes.fromhex("ffff 00"))),
    "DSCP twice in one sub-item": tc_value(1, sdi(1, bytes.fromhex("0001 02 b8 b8"))),
    "DSCP twice after MBZ": tc_value(1, sdi(1, bytes.fromhex("0001 02 b8 b9"))),
    "DSCP twice across sub-items": tc_value(
        1, sdi(1, bytes.fromhex("0001 01 b8")), sdi(1, bytes.fromhex("0002 01 b8"))
    ),
    "two diffserv wildcards": tc_value(
        1, sdi(1, bytes.fromhex("0001 00")), sdi(1, bytes.fromhex("0002 00"))
    ),
    "ethernet too short": tc_value(1, sdi(2, bytes.fromhex("0001 00"))),
    "ethernet NumPCPs 9": tc_value(1, sdi(2, bytes.fromhex("0001 9000 0000 0000 00"))),
    "ethernet length vs NumPCPs": tc_value(1, sdi(2, bytes.fromhex("0001 3000 00"))),
    "ethernet extra octet": tc_value(1, sdi(2, bytes.fromhex("0001 1000 00 00"))),
    "ethernet FID 0xFFFF": tc_value(1, sdi(2, bytes.fromhex("ffff 0000"))),
    "ethernet VID 0xFFF": tc_value(1, sdi(2, bytes.fromhex("0001 0fff"))),
    "PCP twice in one sub-item": tc_value(1, sdi(2, bytes.fromhex("0001 2000 22"))),
    "PCP twice across sub-items, same VID": tc_value(
        1, sdi(2, bytes.fromhex("0001 1005 20")), sdi(2, bytes.fromhex("0002 1005 20"))
    ),
    "two ethernet wildcards, same VID": tc_value(
        1, sdi(2, bytes.fromhex("0001 0005")), sdi(2, bytes.fromhex("0002 0005"))
    ),
}


@pytest.mark.parametrize("value", BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_malformed_values_are_refused(value: bytes) -> None:
    with pytest.raises(ItemFormatError):
        TrafficClassification.decode_value(value)


def test_same_pcp_on_different_vlans_is_fine() -> None:
    value = tc_value(
        1, sdi(2, bytes.fromhex("0001 1005 20")), sdi(2, bytes.fromhex("0002 1006 20"))
    )
    tc = TrafficClassification.decode_value(value)
    assert [e.vid for e in tc.ethernet] == [5, 6]


def test_one_wildcard_per_vlan_is_fine() -> None:
    tc = TrafficClassification(
        1, (EthernetClassification(1, 0), EthernetClassification(2, 7), DiffservClassification(3))
    )
    assert TrafficClassification.decode_value(tc.encode_value()) == tc


def test_unknown_sub_type_is_kept_losslessly() -> None:
    value = tc_value(9, sdi(0xFF80, b"\x01\x02\x03"), sdi(1, bytes.fromhex("0004 00")))
    tc = TrafficClassification.decode_value(value)
    assert tc.sub_items[0] == UnknownSubDataItem(0xFF80, b"\x01\x02\x03")
    assert tc.sub_items[0].fid is None
    assert tc.fids == {4}
    assert tc.encode_value() == value


def test_sub_item_header_shorter_than_four_octets() -> None:
    with pytest.raises(ItemFormatError, match="trailing"):
        TrafficClassification.decode_value(tc_value(1, count=1) + b"\x00\x01\x00")


# --------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------

BAD_CONSTRUCTORS = {
    "tid too big": lambda: TrafficClassification(0x10000),
    "tid bool": lambda: TrafficClassification(True),
    "sub_items not a sequence": lambda: TrafficClassification(1, 5),  # type: ignore[arg-type]
    "sub_items bytes": lambda: TrafficClassification(1, b"ab"),  # type: ignore[arg-type]
    "sub_items junk": lambda: TrafficClassification(1, (5,)),  # type: ignore[arg-type]
    "256 sub items": lambda: TrafficClassification(
        1, tuple(EthernetClassification(i, (i % 4000) + 1, (1,)) for i in range(256))
    ),
    "dup DSCP across": lambda: TrafficClassification(
        1, (DiffservClassification(1, (5,)), DiffservClassification(2, (5,)))
    ),
    "fid reserved": lambda: DiffservClassification(0xFFFF),
    "fid negative": lambda: DiffservClassification(-1),
    "dscp 64": lambda: DiffservClassification(1, (64,)),
    "dscp str": lambda: DiffservClassification(1, "ab"),  # type: ignore[arg-type]
    "dscp none": lambda: DiffservClassification(1, None),  # type: ignore[arg-type]
    "dscp dup": lambda: DiffservClassification(1, (3, 3)),
    "vid reserved": lambda: EthernetClassification(1, 0xFFF),
    "vid too big": lambda: EthernetClassification(1, 0x1000),
    "pcp 8": lambda: EthernetClassification(1, 0, (8,)),
    "pcp dup": lambda: EthernetClassification(1, 0, (1, 1)),
    "nine pcps": lambda: EthernetClassification(1, 0, (0, 1, 2, 3, 4, 5, 6, 7, 0)),
    "unknown sub type reserved": lambda: UnknownSubDataItem(0),
    "unknown sub type 65535": lambda: UnknownSubDataItem(0xFFFF),
    "unknown value not bytes": lambda: UnknownSubDataItem(5, "x"),  # type: ignore[arg-type]
    "unknown value too long": lambda: UnknownSubDataItem(5, bytes(0x10000)),
}


@pytest.mark.parametrize("make", BAD_CONSTRUCTORS.values(), ids=list(BAD_CONSTRUCTORS))
def test_constructors_validate(make: object) -> None:
    with pytest.raises(ItemFormatError):
        make()  # type: ignore[operator]


def test_constructors_accept_lists() -> None:
    d = DiffservClassification(1, [1, 2])  # type: ignore[arg-type]
    e = EthernetClassification(2, 3, [4])  # type: ignore[arg-type]
    tc = TrafficClassification(1, [d, e])  # type: ignore[arg-type]
    assert d.dscps == (1, 2) and e.pcps == (4,) and tc.sub_items == (d, e)
    assert hash(tc) == hash(TrafficClassification(1, (d, e)))


# --------------------------------------------------------------------------
# Round trips (hypothesis)
# --------------------------------------------------------------------------

fids = st.integers(0, 0xFFFE)


@st.composite
def diffserv_sets(draw: st.DrawFn) -> list[DiffservClassification]:
    """Sub-items with disjoint DSCPs (and at most one wildcard)."""
    dscps = draw(st.lists(st.integers(0, 63), unique=True, max_size=64))
    out: list[DiffservClassification] = []
    while dscps:
        n = draw(st.integers(1, len(dscps)))
        out.append(DiffservClassification(draw(fids), tuple(dscps[:n])))
        dscps = dscps[n:]
    if draw(st.booleans()):
        out.append(DiffservClassification(draw(fids)))
    return out


@st.composite
def ethernet_sets(draw: st.DrawFn) -> list[EthernetClassification]:
    """Sub-items whose (VID, PCP) pairs are unique (one wildcard per VID at most)."""
    vids = draw(st.lists(st.integers(0, 0xFFE), unique=True, max_size=4))
    out: list[EthernetClassification] = []
    for vid in vids:
        pcps = draw(st.lists(st.integers(0, 7), unique=True, max_size=8))
        while pcps:
            n = draw(st.integers(1, len(pcps)))
            out.append(EthernetClassification(draw(fids), vid, tuple(pcps[:n])))
            pcps = pcps[n:]
        if draw(st.booleans()):
            out.append(EthernetClassification(draw(fids), vid))
    return out


unknown_subs = st.builds(
    UnknownSubDataItem,
    st.integers(3, 0xFFFE),
    st.binary(max_size=12),
)


@st.composite
def classifications(draw: st.DrawFn) -> TrafficClassification:
    subs: list[DiffservClassification | EthernetClassification | UnknownSubDataItem] = []
    subs += draw(diffserv_sets())
    subs += draw(ethernet_sets())
    subs += draw(st.lists(unknown_subs, max_size=2))
    subs = draw(st.permutations(subs))  # no meaning to the order (§2.1.1)
    return TrafficClassification(draw(st.integers(0, 0xFFFF)), tuple(subs[:255]))


@ROUND
@given(classifications())
def test_round_trip(tc: TrafficClassification) -> None:
    value = tc.encode_value()
    back = TrafficClassification.decode_value(value)
    assert back == tc
    assert back.encode_value() == value
    assert tc.encode()[:4] == struct.pack("!HH", 29, len(value))


@ROUND
@given(fids, st.lists(st.integers(0, 63), unique=True, max_size=64))
def test_diffserv_round_trip(fid: int, dscps: list[int]) -> None:
    item = DiffservClassification(fid, tuple(dscps))
    assert DiffservClassification.decode_value(item.encode_value()) == item
    assert len(item.encode_value()) == 3 + len(dscps)


@ROUND
@given(fids, st.integers(0, 0xFFE), st.lists(st.integers(0, 7), unique=True, max_size=8))
def test_ethernet_round_trip(fid: int, vid: int, pcps: list[int]) -> None:
    item = EthernetClassification(fid, vid, tuple(pcps))
    assert EthernetClassification.decode_value(item.encode_value()) == item
    assert len(item.encode_value()) == 4 + (len(pcps) + 1) // 2


# --------------------------------------------------------------------------
# Fuzzing: a value or ItemFormatError, nothing else
# --------------------------------------------------------------------------


def _check_decoder(cls: type, data: bytes) -> None:
    try:
        item = cls.decode_value(data)
    except ItemFormatError:
        return
    again = cls.decode_value(item.encode_value())
    assert again == item
    assert len(item.encode_value()) == len(data)


@FUZZ
@given(st.binary(max_size=80))
def test_fuzz_traffic_classification_random(data: bytes) -> None:
    _check_decoder(TrafficClassification, data)


@st.composite
def plausible_tc_values(draw: st.DrawFn) -> bytes:
    """Mostly well-framed values with junk inside, to reach the deep checks."""
    subs = []
    for _ in range(draw(st.integers(0, 5))):
        t = draw(st.sampled_from([0, 1, 1, 2, 2, 3, 0xFF80, 0xFFFF]))
        value = draw(st.binary(max_size=12))
        if t == 1 and draw(st.booleans()) and len(value) >= 3:
            value = value[:2] + bytes((len(value) - 3,)) + value[3:]
        if t == 2 and draw(st.booleans()) and len(value) >= 4:
            n = draw(st.integers(0, 9))
            value = value[:2] + bytes(((n << 4) | (value[2] & 0xF),)) + value[3:]
            value = value[: 4 + (n + 1) // 2]
        length = len(value) if draw(st.integers(0, 9)) else draw(st.integers(0, 40))
        subs.append(struct.pack("!HH", t, length) + value)
    count = len(subs) if draw(st.integers(0, 9)) else draw(st.integers(0, 255))
    return tc_value(draw(st.integers(0, 0xFFFF)), *subs, count=count)


@FUZZ
@given(plausible_tc_values())
def test_fuzz_traffic_classification_plausible(data: bytes) -> None:
    _check_decoder(TrafficClassification, data)


@FUZZ
@given(st.binary(max_size=80))
def test_fuzz_diffserv(data: bytes) -> None:
    _check_decoder(DiffservClassification, data)


@FUZZ
@given(st.binary(max_size=12))
def test_fuzz_ethernet(data: bytes) -> None:
    _check_decoder(EthernetClassification, data)


# --------------------------------------------------------------------------
# Classifier (router receive processing, §2.2-§2.3, RFC 9893 §2)
# --------------------------------------------------------------------------


def test_classifier_diffserv_explicit_and_wildcard() -> None:
    c = Classifier(
        TrafficClassification(1, (DiffservClassification(10, (46,)), DiffservClassification(11)))
    )
    assert c.match(dscp=46) == 10
    assert c.match(dscp=0) == 11
    assert c.match() == 11  # "the same traffic treatment for all traffic"


def test_classifier_without_wildcard_drops_unmatched() -> None:
    c = Classifier(TrafficClassification(1, (DiffservClassification(10, (46,)),)))
    assert c.match(dscp=46) == 10
    assert c.match(dscp=0) is None
    assert c.match() is None
    assert Classifier(TrafficClassification(1)).match(dscp=46) is None  # Num SDIs 0


def test_classifier_ethernet_precedence() -> None:
    c = Classifier(
        TrafficClassification(
            1,
            (
                EthernetClassification(1, 100, (5,)),  # VLAN 100, PCP 5
                EthernetClassification(2, 100),  # VLAN 100, any other PCP
                EthernetClassification(3, 0, (5,)),  # any other VLAN, PCP 5
                EthernetClassification(4, 0),  # anything else
                DiffservClassification(9, (46,)),
            ),
        )
    )
    assert c.match(vid=100, pcp=5) == 1
    assert c.match(vid=100, pcp=1) == 2
    assert c.match(vid=200, pcp=5) == 3  # explicitly mapped VLANs first, then VID 0
    assert c.match(vid=200, pcp=1) == 4
    assert c.match(vid=100) == 2
    # Ethernet wins over Diffserv when both match (§2.3.1).
    assert c.match(vid=200, pcp=1, dscp=46) == 4
    assert c.match(dscp=46) == 4  # the Ethernet wildcard matches untagged traffic too


def test_classifier_falls_back_to_diffserv() -> None:
    c = Classifier(
        TrafficClassification(
            1, (EthernetClassification(1, 100, (5,)), DiffservClassification(9, (46,)))
        )
    )
    assert c.match(vid=100, pcp=5, dscp=46) == 1
    assert c.match(vid=100, pcp=4, dscp=46) == 9
    assert c.match(vid=100, pcp=4) is None
    assert c.match(vid=0, pcp=5) is None  # priority-tagged: VID 0 is "no VLAN"
