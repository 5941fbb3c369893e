"""Extension items against an independent decoder: Wireshark's tshark.

Messages carrying Hop Count (21), Hop Control (22) (RFC 8629) and Latency
Range (28) (RFC 8757), in every message their RFCs allow, are encoded with
the extension registry, written into a pcap as TCP streams (one segment per
message, and the same bytes cut into 23-octet segments so items straddle
segments) and dissected by tshark. Every value field must show what we
encoded, nothing may be malformed, and no warning may be raised.

Expected field values are derived from the item objects and the RFC layouts
(field names as in tests/conformance/FIELDS.md), never from our decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dlep.ext.latency_range import LatencyRange, LatencyRangeExtension
from dlep.ext.multihop import HopControl, HopCount, MultiHopExtension
from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    Message,
    MessageType,
    PeerType,
    Registry,
    Status,
    core_registry,
    decode_message,
    encode_message,
)
from tests.conformance import pcap
from tests.conformance.test_tshark import assert_clean, assert_item
from tests.conformance.tshark import DlepPdu, Packet, dissect, requires_tshark

M = MessageType
U64_MAX = (1 << 64) - 1
MAC = bytes.fromhex("0200c0ffee01")
D = "dlep.dataitem"

# RFC 8629 §5.2, RFC 8757 §5.2 names as the dissector spells them.
EXT_ITEM_NAMES = {21: "Hop Count", 22: "Hop Control", 28: "Latency Range"}
# RFC 8629 Table 1.
ACTION_NAMES = {0: "Reset", 1: "Terminate", 2: "Direct Connection", 3: "Suppress Forwarding"}


def registry() -> Registry:
    reg = core_registry()
    MultiHopExtension().register(reg)
    LatencyRangeExtension().register(reg)
    return reg


REG = registry()


def units() -> list[tuple[Message, bool]]:
    """Messages carrying the extension items; True = sent by the router."""
    mac = MacAddress(MAC)
    return [
        (
            Message(
                M.SESSION_INITIALIZATION_RESPONSE,
                (
                    Status(0),
                    PeerType("modem"),
                    HeartbeatInterval(1000),
                    MaximumDataRateReceive(10**8),
                    MaximumDataRateTransmit(10**8),
                    CurrentDataRateReceive(10**7),
                    CurrentDataRateTransmit(10**7),
                    Latency(1000),
                    ExtensionsSupported((1, 4)),
                    LatencyRange(minimum=100, maximum=5000),
                ),
            ),
            False,
        ),
        (
            Message(
                M.DESTINATION_UP,
                (mac, HopCount(3, True), Latency(500), LatencyRange(200, 900)),
            ),
            False,
        ),
        (Message(M.DESTINATION_UPDATE, (mac, HopCount(255), LatencyRange(0, U64_MAX))), False),
        (Message(M.DESTINATION_UPDATE, (mac, HopCount(1, True))), False),  # P ignored at 1 hop
        (
            Message(
                M.DESTINATION_ANNOUNCE_RESPONSE,
                (mac, Status(0), HopCount(2, True), LatencyRange(U64_MAX, U64_MAX)),
            ),
            False,
        ),
        (Message(M.LINK_CHARACTERISTICS_REQUEST, (mac, HopControl(2))), True),
        (
            Message(
                M.LINK_CHARACTERISTICS_RESPONSE, (mac, Status(0), HopCount(1), LatencyRange(5, 5))
            ),
            False,
        ),
        (
            Message(
                M.LINK_CHARACTERISTICS_REQUEST,
                (mac, Latency(300), LatencyRange(100, 300), HopControl(1)),
            ),
            True,
        ),
        (Message(M.LINK_CHARACTERISTICS_RESPONSE, (mac, Status(0), HopCount(0))), False),
        (Message(M.LINK_CHARACTERISTICS_REQUEST, (mac, HopControl(65520))), True),  # private
        (Message(M.LINK_CHARACTERISTICS_RESPONSE, (mac, Status(2), HopCount(254))), False),
        (Message(M.SESSION_UPDATE, (HopControl(3),)), True),
        (Message(M.SESSION_UPDATE, (HopControl(0),)), True),
        (Message(M.SESSION_UPDATE, (Latency(10), LatencyRange(7, 7))), False),
    ]


# --------------------------------------------------------------------------
# Expected fields (RFC 8629 §3.1, §3.2; RFC 8757 §3)
# --------------------------------------------------------------------------

Check = tuple[str, "str | Callable[[str], bool]", str]


def expect_ext(item: DataItem) -> tuple[int, int, list[tuple[str, str, str]]]:
    """(type, length, [(field, show, raw hex)]) tshark must show."""
    if isinstance(item, HopCount):
        flags = 0x80 if item.potentially_direct else 0
        p = "1" if item.potentially_direct else "0"
        return (
            21,
            2,
            [
                (f"{D}.hop_count_flags", f"0x{flags:02x}", f"{flags:02x}"),
                (f"{D}.hop_count_flags.p", p, p),
                (f"{D}.hop_count_flags.reserved", "0x00", "0"),  # sent as zero
                (f"{D}.hop_count", str(item.hops), f"{item.hops:02x}"),
            ],
        )
    if isinstance(item, HopControl):
        return 22, 2, [(f"{D}.hop_control", str(item.action), f"{item.action:04x}")]
    if isinstance(item, LatencyRange):
        return (
            28,
            16,
            [
                (f"{D}.max_latency", str(item.maximum), item.maximum.to_bytes(8, "big").hex()),
                (f"{D}.min_latency", str(item.minimum), item.minimum.to_bytes(8, "big").hex()),
            ],
        )
    raise AssertionError(f"not an extension item: {item!r}")


def assert_ext_item(di: object, item: DataItem, where: str) -> None:
    from tests.conformance.tshark import DataItem as TsItem

    assert isinstance(di, TsItem)
    t, length, fields = expect_ext(item)
    assert (di.type, di.length) == (t, length), f"{where}: {di.type}/{di.length} for {item!r}"
    assert di.node.size == 4 + length, f"{where}: dissector consumed {di.node.size} octets"
    tfield = next(f for f in di.node.children if f.name == f"{D}.type")
    assert tfield.showname == f"Type: {EXT_ITEM_NAMES[t]} ({t})", where
    got = [(f.name, f.show, f.value) for f in di.fields() if not f.hidden]
    assert got == fields, f"{where}: tshark {got!r} != expected {fields!r}"
    if isinstance(item, HopControl) and item.action in ACTION_NAMES:
        f = next(f for f in di.fields() if f.name == f"{D}.hop_control")
        assert f.showname == f"Hop Control: {ACTION_NAMES[item.action]} ({item.action})", where


def assert_pdu(pdu: DlepPdu, msg: Message, encoded: bytes, where: str) -> None:
    assert pdu.kind == "message" and pdu.type == msg.type, where
    assert pdu.length == len(encoded) - 4 and pdu.size == len(encoded), where
    assert len(pdu.items) == len(msg.items), f"{where}: {len(pdu.items)} items"
    pos = pdu.node.pos + 4
    for i, (di, item) in enumerate(zip(pdu.items, msg.items, strict=True)):
        assert di.node.pos == pos, f"{where} item {i}: at {di.node.pos}, expected {pos}"
        pos += di.node.size
        assert isinstance(item, DataItem)
        label = f"{where} item {i} ({type(item).__name__})"
        if item.TYPE in EXT_ITEM_NAMES:
            assert_ext_item(di, item, label)
        else:
            assert_item(di, item, label)
    assert pos == pdu.node.pos + len(encoded), where
    assert not pdu.experts, f"{where}: {pdu.experts!r}"


# --------------------------------------------------------------------------
# The capture
# --------------------------------------------------------------------------


@dataclass
class Capture:
    packets: list[Packet]
    units: list[tuple[Message, bool]]
    encoded: list[bytes]


def test_catalogue() -> None:
    """Every placement of the three items appears, and it all encodes and
    decodes with the extension registry (both extensions negotiated)."""
    seen: set[tuple[int, int]] = set()
    for m, _ in units():
        raw = encode_message(m, REG)
        assert decode_message(raw, REG, extensions=frozenset({1, 4})) == m
        seen |= {(m.type, i.TYPE) for i in m.items if i.TYPE in EXT_ITEM_NAMES}
    placed = {
        (p.unit, p.item.TYPE)
        for ext in (MultiHopExtension(), LatencyRangeExtension())
        for p in ext.placements
    }
    assert seen == placed


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    us = units()
    enc = [encode_message(m, REG) for m, _ in us]
    frames = pcap.tcp_frames(pcap.chunks_per_message(enc, [c for _, c in us]), client_port=40101)
    data = b"".join(enc)
    cut = [pcap.Chunk(data[i : i + 23]) for i in range(0, len(data), 23)]
    frames += pcap.tcp_frames(cut, client_port=40102, t0=1_700_000_500.0)
    path = pcap.write_pcap(tmp_path_factory.mktemp("tshark_ext") / "ext.pcap", frames)
    return Capture(dissect(path), us, enc)


@requires_tshark
def test_capture_is_clean(capture: Capture) -> None:
    assert_clean(capture.packets)
    for p in capture.packets:
        assert not [e for e in p.experts if e.proto == "dlep"], p.number


@requires_tshark
@pytest.mark.parametrize("port", ["40101", "40102"])
def test_items_as_tshark_shows_them(capture: Capture, port: str) -> None:
    pdus = [
        d
        for p in capture.packets
        if ":tcp" in p.protocols and port in p.find("tcp.port")
        for d in p.dlep
    ]
    assert len(pdus) == len(capture.units)
    for pdu, (m, _), raw in zip(pdus, capture.units, capture.encoded, strict=True):
        assert_pdu(pdu, m, raw, f"port {port} {m.name}")
