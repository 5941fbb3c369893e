"""RFC 8703 items as Wireshark's tshark 4.0 decodes them (independent decoder).

Messages carrying Link Identifier Length (26) and Link Identifier (27) are
encoded with ``dlep.wire`` and the extension's registry, written to a pcap
(one TCP segment per message, plus the stream cut into 29-octet segments)
and dissected. Every item must show the type and Length we encoded, items 26
and 27 the values (``dlep.dataitem.link_identifier_length`` as a number,
``dlep.dataitem.link_identifier`` as colon-separated hex, raw bytes exact),
and nothing may be malformed or raise an expert warning.

tshark 4.0 does not decode the RFC 8651 items 23-25 (Queue Parameters,
Pause, Restart: a "TODO" in its dissector); for those only the framing (type,
Length, size, no anomaly) is checked. See tests/conformance/FIELDS.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dlep.ext.link_id import LinkIdentifier, LinkIdentifierLength, LinkIdExtension
from dlep.ext.pause import Pause, PauseExtension, QueueParameter, QueueParameters, Restart
from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv6Address,
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
    encode_message,
)
from tests.conformance import pcap
from tests.conformance.tshark import SEVERITY_WARN, DlepPdu, Packet, dissect, requires_tshark

M = MessageType
D = "dlep.dataitem"
EUI48 = bytes.fromhex("020000000001")
EUI64 = bytes.fromhex("02000000fffe0001")


def registry() -> Registry:
    reg = core_registry()
    LinkIdExtension().register(reg)
    PauseExtension().register(reg)
    return reg


REG = registry()


def sir(*extra: DataItem) -> Message:
    return Message(
        M.SESSION_INITIALIZATION_RESPONSE,
        (
            Status(0),
            PeerType("modem"),
            HeartbeatInterval(1000),
            MaximumDataRateReceive(1),
            MaximumDataRateTransmit(1),
            CurrentDataRateReceive(1),
            CurrentDataRateTransmit(1),
            Latency(1),
            ExtensionsSupported((2, 3)),
            *extra,
        ),
    )


def link_id_messages(lid: LinkIdentifier, mac: bytes) -> list[tuple[Message, bool]]:
    """(message, sent by the router?) for every message that may carry a Link Identifier."""
    m = MacAddress(mac)
    ok = Status(0)
    return [
        (Message(M.DESTINATION_UP, (m, lid, Ipv4Address("10.1.0.1"), Latency(7))), False),
        (Message(M.DESTINATION_UP_RESPONSE, (m, lid, ok)), True),
        (
            Message(M.DESTINATION_UPDATE, (m, lid, Ipv4AttachedSubnet.from_network("0.0.0.0/0"))),
            False,
        ),
        (Message(M.LINK_CHARACTERISTICS_REQUEST, (m, lid, CurrentDataRateReceive(5))), True),
        (Message(M.LINK_CHARACTERISTICS_RESPONSE, (m, lid, ok, Latency(3))), False),
        (Message(M.DESTINATION_ANNOUNCE, (m, lid, Ipv6Address("2001:db8::1"))), True),
        (Message(M.DESTINATION_ANNOUNCE_RESPONSE, (m, lid, ok)), False),
        (Message(M.DESTINATION_DOWN, (m, lid)), False),
        (Message(M.DESTINATION_DOWN_RESPONSE, (m, lid, ok)), True),
    ]


def assert_clean(packets: Sequence[Packet]) -> None:
    for p in packets:
        assert not p.anomalies, f"frame {p.number}: {p.anomalies}"
        assert not p.experts_at_least(SEVERITY_WARN), f"frame {p.number}: {p.experts!r}"


def pdus_of(packets: Sequence[Packet]) -> list[DlepPdu]:
    return [d for p in packets for d in p.dlep]


def assert_framing(pdu: DlepPdu, msg: Message, encoded: bytes) -> None:
    """Type, Length, item count; items tile the body with our types and lengths."""
    assert (pdu.kind, pdu.type, pdu.length) == ("message", msg.type, len(encoded) - 4)
    assert pdu.size == len(encoded)
    assert len(pdu.items) == len(msg.items)
    pos = pdu.node.pos + 4
    for di, item in zip(pdu.items, msg.items, strict=True):
        assert isinstance(item, DataItem)
        assert (di.type, di.length) == (item.TYPE, len(item.encode_value())), di.summary
        assert di.node.pos == pos
        pos += di.node.size
    assert pos == pdu.node.pos + len(encoded)
    assert not pdu.experts


def assert_link_items(pdu: DlepPdu, msg: Message) -> int:
    """Items 26/27 show our values; returns how many were checked."""
    checked = 0
    for di, item in zip(pdu.items, msg.items, strict=True):
        if isinstance(item, LinkIdentifier):
            raw = item.identifier
            assert di.get(f"{D}.link_identifier") == raw.hex(":")
            assert di.raw(f"{D}.link_identifier") == raw.hex()
            checked += 1
        elif isinstance(item, LinkIdentifierLength):
            assert di.get(f"{D}.link_identifier_length") == str(item.length)
            assert di.raw(f"{D}.link_identifier_length") == f"{item.length:04x}"
            checked += 1
    return checked


def check_capture(
    tmp_path: Path, name: str, units: list[tuple[Message, bool]], chunk: int | None = None
) -> list[DlepPdu]:
    encoded = [encode_message(m, REG) for m, _ in units]
    if chunk is None:
        chunks = pcap.chunks_per_message(encoded, [c for _, c in units])
    else:  # one direction, cut regardless of message bounds
        stream = b"".join(encoded)
        chunks = [pcap.Chunk(stream[i : i + chunk]) for i in range(0, len(stream), chunk)]
    packets = dissect(pcap.write_pcap(tmp_path / f"{name}.pcap", pcap.tcp_frames(chunks)))
    assert_clean(packets)
    # Messages complete in the order they were written (per-message segments
    # follow that order; the cut stream has one direction).
    pdus = pdus_of(packets)
    assert len(pdus) == len(units)
    for pdu, (msg, _), enc in zip(pdus, units, encoded, strict=True):
        assert_framing(pdu, msg, enc)
    return pdus


@requires_tshark
def test_link_identifier_items(tmp_path: Path) -> None:
    units: list[tuple[Message, bool]] = [(sir(LinkIdentifierLength(6)), False)]
    units += link_id_messages(LinkIdentifier(bytes.fromhex("0a0b0c0d0e0f")), EUI48)
    pdus = check_capture(tmp_path, "lid6", units)
    assert sum(assert_link_items(p, m) for p, (m, _) in zip(pdus, units, strict=True)) == 10


@requires_tshark
def test_link_identifier_lengths(tmp_path: Path) -> None:
    """Default 4 octets, 1, 16, an EUI-64 gateway, and the length extremes of item 26."""
    units: list[tuple[Message, bool]] = []
    for n in (1, 0xFFFF, 4):
        units.append((sir(LinkIdentifierLength(n)), False))
    for lid, mac in (
        (LinkIdentifier.from_int(7), EUI48),
        (LinkIdentifier(b"\xff"), EUI48),
        (LinkIdentifier(bytes(range(16))), EUI64),
        (LinkIdentifier(b"\x00" * 4), EUI64),
    ):
        units += link_id_messages(lid, mac)[:3]
    pdus = check_capture(tmp_path, "lengths", units)
    assert sum(assert_link_items(p, m) for p, (m, _) in zip(pdus, units, strict=True)) == 15


@requires_tshark
def test_link_identifier_items_reassembled(tmp_path: Path) -> None:
    """Messages cut into 29-octet TCP segments: identifiers split across segments."""
    lid = LinkIdentifier(bytes(range(0x20, 0x20 + 24)))
    units = [(m, True) for m, _ in link_id_messages(lid, EUI48)]
    pdus = check_capture(tmp_path, "split", units, chunk=29)
    assert sum(assert_link_items(p, m) for p, (m, _) in zip(pdus, units, strict=True)) == 9


@requires_tshark
def test_pause_items_framed_not_decoded(tmp_path: Path) -> None:
    """RFC 8651 items 23-25: tshark 4.0 shows them undecoded (``dlep.dataitem.value``),
    but type, Length and size must match and nothing may be malformed."""
    params = QueueParameters(
        (
            QueueParameter(0, 64),
            QueueParameter(1, 16, (46, 10)),
            QueueParameter(2, 1, tuple(range(64))),
        ),
        1,
    )
    m = MacAddress(EUI48)
    units = [
        (sir(params), False),
        (Message(M.SESSION_UPDATE, (params, Pause((255,)))), False),
        (Message(M.SESSION_UPDATE, (Restart((0, 1, 2)),)), False),
        (Message(M.DESTINATION_UPDATE, (m, Pause((1,)), Restart((2, 255)))), False),
    ]
    pdus = check_capture(tmp_path, "pause", units)
    for pdu in pdus:
        for di in pdu.items:
            if di.type in (23, 24, 25):
                assert di.has(f"{D}.value")
                assert di.node.size == 4 + di.length
