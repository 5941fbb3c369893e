"""Conformance of our encoder against an independent decoder: Wireshark's tshark.

Every signal and message of RFC 8175, each carrying every data item RFC 8175
§12 lets it carry, is encoded with ``dlep.wire``, written into a pcap (signals
as UDP datagrams, messages as TCP streams: one segment per message, several
messages per segment, messages split across segments) and dissected by tshark.
For every PDU and every data item, each field tshark shows must equal what we
encoded; tshark must report nothing malformed and raise no expert warnings.

Expected field values are derived here from the item objects and the RFC's
layouts, never from the codec's own decoder. Known dissector quirks are in
FIELDS.md; exceptions below are narrow and say why.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6Address,
    Ipv6AttachedSubnet,
    Ipv6ConnectionPoint,
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
    encode_message,
    encode_signal,
)
from tests.conformance import pcap
from tests.conformance.tshark import (
    SEVERITY_WARN,
    DataItem,
    DlepPdu,
    Packet,
    dissect,
    requires_tshark,
)

U64_MAX = (1 << 64) - 1

# --------------------------------------------------------------------------
# RFC 8175 tables, typed in from the RFC (not taken from the codec)
# --------------------------------------------------------------------------

# §15.2 / §15.3 names, as the dissector spells them too.
SIGNAL_NAMES = {1: "Peer Discovery", 2: "Peer Offer"}
MESSAGE_NAMES = {
    1: "Session Initialization",
    2: "Session Initialization Response",
    3: "Session Update",
    4: "Session Update Response",
    5: "Session Termination",
    6: "Session Termination Response",
    7: "Destination Up",
    8: "Destination Up Response",
    9: "Destination Announce",
    10: "Destination Announce Response",
    11: "Destination Down",
    12: "Destination Down Response",
    13: "Destination Update",
    14: "Link Characteristics Request",
    15: "Link Characteristics Response",
    16: "Heartbeat",
}
# Table 1 (§13).
ITEM_NAMES = {
    1: "Status",
    2: "IPv4 Connection Point",
    3: "IPv6 Connection Point",
    4: "Peer Type",
    5: "Heartbeat Interval",
    6: "Extensions Supported",
    7: "MAC Address",
    8: "IPv4 Address",
    9: "IPv6 Address",
    10: "IPv4 Attached Subnet",
    11: "IPv6 Attached Subnet",
    12: "Maximum Data Rate (Receive) (MDRR)",
    13: "Maximum Data Rate (Transmit) (MDRT)",
    14: "Current Data Rate (Receive) (CDRR)",
    15: "Current Data Rate (Transmit) (CDRT)",
    16: "Latency",
    17: "Resources (RES)",
    18: "Relative Link Quality (Receive) (RLQR)",
    19: "Relative Link Quality (Transmit) (RLQT)",
    20: "Maximum Transmission Unit (MTU)",
}
# Table 2 (§13.1), registered codes only.
STATUS_NAMES = {
    0: "Success",
    1: "Not Interested",
    2: "Request Denied",
    3: "Inconsistent Data",
    128: "Unknown Message",
    129: "Unexpected Message",
    130: "Invalid Data",
    131: "Invalid Destination",
    132: "Timed Out",
    255: "Shutting Down",
}

_L3 = {8, 9, 10, 11}
_METRICS = set(range(12, 21))
# Which items each signal/message may carry (§12.3-§12.20).
SIGNAL_ITEMS = {1: {4}, 2: {4, 2, 3}}
MESSAGE_ITEMS = {
    1: {5, 4, 6} | _L3,
    2: {1, 4, 5, 6} | _METRICS | _L3,
    3: _L3 | _METRICS,
    4: {1},
    5: {1},
    6: set(),
    7: {7} | _L3 | _METRICS,
    8: {7, 1},
    9: {7, 8, 9},
    10: {7, 1} | _L3 | _METRICS,
    11: {7},
    12: {7, 1},
    13: {7} | _METRICS | _L3,
    14: {7, 14, 15, 16},
    15: {7, 1} | _METRICS,
    16: set(),
}

# --------------------------------------------------------------------------
# The catalogue: both signals and all 16 messages
# --------------------------------------------------------------------------

v4 = ipaddress.IPv4Address
v6 = ipaddress.IPv6Address

# Non-ASCII on purpose: 2-, 3- and 4-octet UTF-8 sequences.
TEXT_UNICODE = "Zürich \u2013 東京 ✓ 📡"  # \u2013: en dash


def signals() -> list[Signal]:
    return [
        Signal(SignalType.PEER_DISCOVERY, (PeerType("router Ω", secured_medium=False),)),
        Signal(
            SignalType.PEER_OFFER,
            (
                PeerType("satellite modem ✓", secured_medium=True),
                Ipv4ConnectionPoint(v4("192.0.2.2"), port=8854, tls=True),
                Ipv4ConnectionPoint(v4("198.51.100.7")),  # no port: length 5
                Ipv6ConnectionPoint(v6("2001:db8::2"), port=854, tls=False),
                Ipv6ConnectionPoint(v6("fe80::1:2:3:4"), tls=True),  # no port: length 17
            ),
        ),
    ]


def metrics(mdr: int, cdr: int, lat: int, res: int, rlq: int, mtu: int) -> tuple[object, ...]:
    return (
        MaximumDataRateReceive(mdr),
        MaximumDataRateTransmit(mdr),
        CurrentDataRateReceive(cdr),
        CurrentDataRateTransmit(cdr // 2),
        Latency(lat),
        Resources(res),
        RelativeLinkQualityReceive(rlq),
        RelativeLinkQualityTransmit(100 - rlq),
        Mtu(mtu),
    )


def l3(add: bool = True, drops: bool = False) -> tuple[object, ...]:
    """Addresses and subnets; with drops, also Add/Drop flag = 0 variants."""
    items: list[object] = [
        Ipv4Address(v4("192.0.2.10"), add=add),
        Ipv6Address(v6("2001:db8::10"), add=add),
        Ipv4AttachedSubnet(v4("10.1.0.0"), 16, add=add),
        Ipv4AttachedSubnet(v4("203.0.113.5"), 32, add=add),
        Ipv6AttachedSubnet(v6("2001:db8:100::"), 48, add=add),
        Ipv6AttachedSubnet(v6("::"), 0, add=add),
    ]
    if drops:
        items += [
            Ipv4Address(v4("192.0.2.11"), add=False),
            Ipv6Address(v6("::ffff:192.0.2.9"), add=False),
            Ipv4AttachedSubnet(v4("0.0.0.0"), 0, add=False),
            Ipv6AttachedSubnet(v6("2001:db8::1"), 128, add=False),
        ]
    return tuple(items)


M = MessageType


def messages(mac: bytes, variant: int = 0) -> list[tuple[Message, bool]]:
    """All 16 messages, in a plausible session order, with who sends each.

    The bool is True when the router (TCP client) sends the message. One MAC
    format per session, as RFC 8175 §13.7 requires.
    """
    term = (255, "shutting down \u2013 bye") if variant == 0 else (130, "")
    m: list[tuple[Message, bool]] = [
        (
            Message(
                M.SESSION_INITIALIZATION,
                (
                    HeartbeatInterval(60_000),
                    PeerType("router", secured_medium=False),
                    ExtensionsSupported((1, 2, 3, 4, 65520)),
                    *l3(add=True),
                ),
            ),
            True,
        ),
        (
            Message(
                M.SESSION_INITIALIZATION_RESPONSE,
                (
                    Status(0, TEXT_UNICODE),
                    PeerType("modem ✓", secured_medium=True),
                    HeartbeatInterval(0xFFFFFFFF),
                    ExtensionsSupported(()),
                    *metrics(U64_MAX, U64_MAX, U64_MAX, 0, 100, 65535),
                    *l3(add=True),
                ),
            ),
            False,
        ),
        (
            Message(
                M.SESSION_UPDATE,
                (
                    *l3(add=True, drops=True),
                    *metrics(1, 1, 0, 100, 0, 0),
                ),
            ),
            False,
        ),
        (Message(M.SESSION_UPDATE_RESPONSE, (Status(0),)), True),
        (
            Message(
                M.DESTINATION_UP,
                (
                    MacAddress(mac),
                    *l3(add=True),
                    *metrics(54_000_000, 24_000_000, 1500, 87, 63, 1500),
                ),
            ),
            False,
        ),
        (Message(M.DESTINATION_UP_RESPONSE, (MacAddress(mac), Status(1, "not now"))), True),
        (
            Message(
                M.DESTINATION_ANNOUNCE,
                (
                    MacAddress(mac),
                    Ipv4Address(v4("192.0.2.20")),
                    Ipv6Address(v6("2001:db8::20")),
                    Ipv4Address(v4("192.0.2.21"), add=False),
                ),
            ),
            True,
        ),
        (
            Message(
                M.DESTINATION_ANNOUNCE_RESPONSE,
                (
                    MacAddress(mac),
                    Status(3, "subnet clash"),
                    *l3(add=True, drops=True),
                    *metrics(10**9, 10**8, 250, 50, 99, 9000),
                ),
            ),
            False,
        ),
        (
            Message(
                M.DESTINATION_UPDATE,
                (
                    MacAddress(mac),
                    *metrics(2**63, 2**62, 2**32, 1, 1, 576),
                    *l3(add=False),
                ),
            ),
            False,
        ),
        (
            Message(
                M.LINK_CHARACTERISTICS_REQUEST,
                (
                    MacAddress(mac),
                    CurrentDataRateReceive(2**40),
                    CurrentDataRateTransmit(0),
                    Latency(100),
                ),
            ),
            True,
        ),
        (
            Message(
                M.LINK_CHARACTERISTICS_RESPONSE,
                (
                    MacAddress(mac),
                    Status(2, "request denied: 帯域"),
                    *metrics(2**41, 2**40, 100, 100, 100, 1280),
                ),
            ),
            False,
        ),
        (Message(M.DESTINATION_DOWN, (MacAddress(mac),)), False),
        (Message(M.DESTINATION_DOWN_RESPONSE, (MacAddress(mac), Status(0, ""))), True),
        (Message(M.HEARTBEAT, ()), True),
        (Message(M.SESSION_TERMINATION, (Status(*term),)), True),
        (Message(M.SESSION_TERMINATION_RESPONSE, ()), False),
    ]
    return m


EUI48 = bytes.fromhex("0200c0ffee01")
EUI48_BCAST = bytes.fromhex("ffffffffffff")
EUI64 = bytes.fromhex("0211223344556677")

# --------------------------------------------------------------------------
# Expected tshark fields, computed from the item objects and RFC layouts
# --------------------------------------------------------------------------

# A field check: (field name, expected show or predicate on show, expected raw hex).
Check = tuple[str, "str | Callable[[str], bool]", str]


@dataclass(frozen=True)
class Expect:
    type: int
    length: int
    fields: list[Check]


def _flag(prefix: str, bit_name: str, on: bool) -> list[Check]:
    # Flags octet: only the low bit is defined (RFC 8175 §13.2-§13.11), rest MUST be zero.
    b = 1 if on else 0
    return [
        (f"{prefix}.flags", f"0x{b:02x}", f"{b:02x}"),
        (f"{prefix}.flags.{bit_name}", str(b), str(b)),
    ]


def _v6_is(addr: ipaddress.IPv6Address) -> Callable[[str], bool]:
    # Wireshark and Python may format e.g. IPv4-mapped addresses differently.
    return lambda show: ipaddress.IPv6Address(show) == addr


def _u(value: int, octets: int) -> str:
    return value.to_bytes(octets, "big").hex()


def expect(item: object) -> Expect:
    """What tshark must show for one of our items (RFC 8175 §13 layouts)."""
    d = "dlep.dataitem"
    if isinstance(item, Status):
        text = item.text.encode("utf-8")
        return Expect(
            1,
            1 + len(text),
            [
                (f"{d}.status.code", str(item.code), _u(item.code, 1)),
                (f"{d}.status.text", item.text, text.hex()),
            ],
        )
    if isinstance(item, Ipv4ConnectionPoint | Ipv6ConnectionPoint):
        is4 = isinstance(item, Ipv4ConnectionPoint)
        p = f"{d}.v4conn" if is4 else f"{d}.v6conn"
        show: str | Callable[[str], bool] = str(item.address) if is4 else _v6_is(item.address)
        checks = [*_flag(p, "tls", item.tls), (f"{p}.addr", show, item.address.packed.hex())]
        if item.port is not None:
            checks.append((f"{p}.port", str(item.port), _u(item.port, 2)))
        base = 5 if is4 else 17
        return Expect(2 if is4 else 3, base + (2 if item.port is not None else 0), checks)
    if isinstance(item, PeerType):
        text = item.description.encode("utf-8")
        return Expect(
            4,
            1 + len(text),
            [
                *_flag(f"{d}.peertype", "smi", item.secured_medium),
                (f"{d}.peertype.description", item.description, text.hex()),
            ],
        )
    if isinstance(item, HeartbeatInterval):
        return Expect(5, 4, [(f"{d}.heartbeat", str(item.milliseconds), _u(item.milliseconds, 4))])
    if isinstance(item, ExtensionsSupported):
        return Expect(
            6,
            2 * len(item.extensions),
            [(f"{d}.extsupp.code", str(e), _u(e, 2)) for e in item.extensions],
        )
    if isinstance(item, MacAddress):
        raw = item.address
        name = f"{d}.macaddr_eui48" if len(raw) == 6 else f"{d}.macaddr_eui64"
        return Expect(7, len(raw), [(name, ":".join(f"{b:02x}" for b in raw), raw.hex())])
    if isinstance(item, Ipv4Address | Ipv6Address):
        is4 = isinstance(item, Ipv4Address)
        p = f"{d}.v4addr" if is4 else f"{d}.v6addr"
        show = str(item.address) if is4 else _v6_is(item.address)
        return Expect(
            8 if is4 else 9,
            5 if is4 else 17,
            [
                *_flag(p, "adddrop", item.add),
                (f"{p}.addr", show, item.address.packed.hex()),
            ],
        )
    if isinstance(item, Ipv4AttachedSubnet | Ipv6AttachedSubnet):
        is4 = isinstance(item, Ipv4AttachedSubnet)
        p = f"{d}.v4subnet" if is4 else f"{d}.v6subnet"
        show = str(item.address) if is4 else _v6_is(item.address)
        return Expect(
            10 if is4 else 11,
            6 if is4 else 18,
            [
                *_flag(p, "adddrop", item.add),
                (f"{p}.subnet", show, item.address.packed.hex()),
                (f"{p}.prefixlen", str(item.prefix_length), _u(item.prefix_length, 1)),
            ],
        )
    simple: list[tuple[type, int, str, int]] = [
        (MaximumDataRateReceive, 12, "mdrr", 8),
        (MaximumDataRateTransmit, 13, "mdrt", 8),
        (CurrentDataRateReceive, 14, "cdrr", 8),
        (CurrentDataRateTransmit, 15, "cdrt", 8),
        (Latency, 16, "latency", 8),
        (Resources, 17, "resources", 1),
        (RelativeLinkQualityReceive, 18, "rlqr", 1),
        (RelativeLinkQualityTransmit, 19, "rlqt", 1),
        (Mtu, 20, "mtu", 2),
    ]
    for cls, code, name, octets in simple:
        if type(item) is cls:
            value: int = item.value  # type: ignore[attr-defined]
            return Expect(code, octets, [(f"{d}.{name}", str(value), _u(value, octets))])
    raise AssertionError(f"no expectation for {item!r}")


# --------------------------------------------------------------------------
# Assertions on tshark's view
# --------------------------------------------------------------------------


def _visible_fields(di: DataItem) -> list[tuple[str, str, str]]:
    # Hidden FT_NONE markers (e.g. dlep.dataitem.status) only tag the item type.
    return [(f.name, f.show, f.value) for f in di.fields() if not f.hidden]


def assert_item(di: DataItem, item: object, where: str) -> None:
    exp = expect(item)
    assert di.type == exp.type, f"{where}: type {di.type} != {exp.type} for {item!r}"
    assert di.length == exp.length, f"{where}: length {di.length} != {exp.length} for {item!r}"
    assert di.node.size == 4 + exp.length, f"{where}: dissector consumed {di.node.size} octets"
    type_field = next(f for f in di.node.children if f.name == "dlep.dataitem.type")
    assert type_field.showname == f"Type: {ITEM_NAMES[exp.type]} ({exp.type})", where
    got = _visible_fields(di)
    assert len(got) == len(exp.fields), f"{where}: fields {got!r} != expected {exp.fields!r}"
    for (gname, gshow, graw), (ename, eshow, eraw) in zip(got, exp.fields, strict=True):
        assert gname == ename, f"{where}: field {gname} != {ename}"
        ok = eshow(gshow) if callable(eshow) else gshow == eshow
        assert ok, f"{where}: {gname} shows {gshow!r}, expected {eshow!r}"
        assert graw == eraw, f"{where}: {gname} raw {graw} != {eraw}"
    if isinstance(item, Status) and item.code in STATUS_NAMES:
        code = next(f for f in di.fields() if f.name == "dlep.dataitem.status.code")
        assert code.showname == f"Code: {STATUS_NAMES[item.code]} ({item.code})", where


def assert_pdu(pdu: DlepPdu, unit: Message | Signal, encoded: bytes, where: str) -> None:
    is_signal = isinstance(unit, Signal)
    hdr = 8 if is_signal else 4
    assert pdu.kind == ("signal" if is_signal else "message"), where
    assert pdu.type == unit.type, f"{where}: type {pdu.type} != {unit.type}"
    names = SIGNAL_NAMES if is_signal else MESSAGE_NAMES
    tfield = next(f for f in pdu.node.children if f.name == f"dlep.{pdu.kind}.type")
    label = "Signal Type" if is_signal else "Message Type"
    assert tfield.showname == f"{label}: {names[unit.type]} ({unit.type})", where
    if is_signal:
        assert pdu.signature == "DLEP", f"{where}: signature {pdu.signature!r}"
    assert pdu.length == len(encoded) - hdr, f"{where}: header length {pdu.length}"
    assert pdu.size == len(encoded), f"{where}: dissector took {pdu.size} of {len(encoded)} octets"
    assert len(pdu.items) == len(unit.items), (
        f"{where}: tshark shows {len(pdu.items)} items, we encoded {len(unit.items)}"
    )
    # Items tile the PDU body exactly, in order, with no gap or overlap.
    pos = pdu.node.pos + hdr
    for i, (di, item) in enumerate(zip(pdu.items, unit.items, strict=True)):
        assert di.node.pos == pos, f"{where} item {i}: at offset {di.node.pos}, expected {pos}"
        pos += di.node.size
        assert_item(di, item, f"{where} item {i} ({type(item).__name__})")
    assert pos == pdu.node.pos + len(encoded), where
    assert not pdu.experts, f"{where}: expert info {pdu.experts!r}"


def assert_clean(packets: Sequence[Packet]) -> None:
    """Nothing malformed, no warnings or errors anywhere, good checksums."""
    for p in packets:
        assert not p.anomalies, f"frame {p.number}: {p.anomalies}"
        bad = p.experts_at_least(SEVERITY_WARN)
        assert not bad, f"frame {p.number}: {bad!r}"
        # Our pcap writer's checksums, verified by tshark (1 = Good).
        for proto in ("ip", "udp", "tcp"):
            if f":{proto}" in p.protocols:
                assert p.find(f"{proto}.checksum.status") == ["1"], f"frame {p.number}: {proto}"


# --------------------------------------------------------------------------
# The capture: UDP signals and four TCP sessions
# --------------------------------------------------------------------------


@dataclass
class Stream:
    """One TCP session of the capture and what it must show."""

    name: str
    client_port: int
    units: list[tuple[Message, bool]]
    encoded: list[bytes]
    chunks: list[pcap.Chunk]


def completions(stream: Stream) -> list[list[int]]:
    """For each chunk, the indices of the messages whose last octet it carries.

    tshark shows a reassembled PDU in the frame that completes it.
    """
    out: list[list[int]] = [[] for _ in stream.chunks]
    for direction in (True, False):
        msgs = [i for i, (_, c) in enumerate(stream.units) if c is direction]
        chunk_ids = [k for k, ch in enumerate(stream.chunks) if ch.from_client is direction]
        data = b"".join(stream.chunks[k].data for k in chunk_ids)
        assert data == b"".join(stream.encoded[i] for i in msgs), "chunks must carry the messages"
        ends, off = [], 0
        for k in chunk_ids:
            off += len(stream.chunks[k].data)
            ends.append((off, k))
        off = 0
        for i in msgs:
            off += len(stream.encoded[i])
            k = next(k for end, k in ends if end >= off)
            out[k].append(i)
    return out


def fixed_size_chunks(encoded: Sequence[bytes], size: int) -> list[pcap.Chunk]:
    """The client's byte stream cut every ``size`` octets, ignoring message bounds."""
    data = b"".join(encoded)
    return [pcap.Chunk(data[i : i + size]) for i in range(0, len(data), size)]


@dataclass
class Capture:
    path: Path
    packets: list[Packet]
    signals: list[Signal]
    signal_bytes: list[bytes]
    streams: list[Stream]


def _all_from_client(units: list[tuple[Message, bool]]) -> list[tuple[Message, bool]]:
    # Reassembly streams carry one direction so every cut mixes messages.
    return [(m, True) for m, _ in units]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    sigs = signals()
    sig_bytes = [encode_signal(s) for s in sigs]
    # Discovery goes to the multicast group, the offer comes back unicast (§12.3, §12.4).
    frames = pcap.udp_frames(
        sig_bytes[:1],
        src=pcap.ROUTER_IP,
        dst="224.0.0.117",
        sport=49152,
        dport=pcap.DLEP_PORT,
        t0=1_700_000_000.0,
    )
    frames += pcap.udp_frames(
        sig_bytes[1:],
        src=pcap.MODEM_IP,
        dst=pcap.ROUTER_IP,
        sport=pcap.DLEP_PORT,
        dport=49152,
        t0=1_700_000_000.5,
    )

    streams: list[Stream] = []

    def add(
        name: str,
        port: int,
        units: list[tuple[Message, bool]],
        cut: Callable[[list[bytes]], list[pcap.Chunk]],
    ) -> None:
        enc = [encode_message(m) for m, _ in units]
        chunks = cut(enc)
        streams.append(Stream(name, port, units, enc, chunks))
        frames.extend(
            pcap.tcp_frames(chunks, client_port=port, t0=1_700_000_100.0 + 100 * len(streams))
        )

    base48 = messages(EUI48)
    add(
        "one segment per message, EUI-48",
        40001,
        base48,
        lambda enc: pcap.chunks_per_message(enc, [c for _, c in base48]),
    )
    # Session Initialization Response third: the long message that gets split.
    eui64 = _all_from_client(messages(EUI64, variant=1))
    eui64[1], eui64[2] = eui64[2], eui64[1]
    add(
        "coalesced, split inside a header, EUI-64",
        40002,
        eui64,
        lambda enc: pcap.chunks_coalesced_split(enc, split_at=2),
    )
    bcast = _all_from_client(messages(EUI48_BCAST, variant=1))
    bcast[1], bcast[2] = bcast[2], bcast[1]
    add(
        "coalesced, split inside an item value",
        40003,
        bcast,
        lambda enc: pcap.chunks_coalesced_split(enc, split_at=len(enc[2]) // 2 + 1),
    )
    add(
        "37-octet segments",
        40004,
        _all_from_client(messages(EUI48)),
        lambda enc: fixed_size_chunks(enc, 37),
    )

    path = pcap.write_pcap(tmp_path_factory.mktemp("tshark") / "dlep.pcap", frames)
    return Capture(path, dissect(path), sigs, sig_bytes, streams)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_catalogue_covers_rfc() -> None:
    """Both signals, all 16 messages, each with every item type §12 allows, all 20 items."""
    assert {s.type for s in signals()} == set(SIGNAL_NAMES)
    for s in signals():
        assert {expect(i).type for i in s.items} == SIGNAL_ITEMS[s.type], s
    for mac in (EUI48, EUI64):
        msgs = [m for m, _ in messages(mac)]
        assert sorted(m.type for m in msgs) == sorted(MESSAGE_NAMES)
        for m in msgs:
            assert {expect(i).type for i in m.items} == MESSAGE_ITEMS[m.type], m.type
    every = {expect(i).type for m, _ in messages(EUI48) for i in m.items}
    every |= {expect(i).type for s in signals() for i in s.items}
    assert every == set(ITEM_NAMES)


@requires_tshark
def test_capture_is_clean(capture: Capture) -> None:
    assert_clean(capture.packets)
    # No dissector-level expert info at all, even at note level.
    for p in capture.packets:
        assert not [e for e in p.experts if e.proto == "dlep"], p.number


@requires_tshark
def test_signals(capture: Capture) -> None:
    udp = [p for p in capture.packets if ":udp" in p.protocols]
    assert len(udp) == len(capture.signals)
    for p, sig, raw in zip(udp, capture.signals, capture.signal_bytes, strict=True):
        assert p.protocols.endswith(":udp:dlep"), p.protocols
        assert len(p.dlep) == 1, f"frame {p.number}"
        assert_pdu(p.dlep[0], sig, raw, f"frame {p.number} {SIGNAL_NAMES[sig.type]}")


@requires_tshark
@pytest.mark.parametrize(
    "index",
    range(4),
    ids=[
        "per-message",
        "coalesced-split-header",
        "coalesced-split-value",
        "fixed-37",
    ],
)
def test_message_stream(capture: Capture, index: int) -> None:
    stream = capture.streams[index]
    port = str(stream.client_port)
    tcp = [p for p in capture.packets if ":tcp" in p.protocols and port in p.find("tcp.port")]
    data = [p for p in tcp if int(p.find_one("tcp.len")) > 0]
    assert len(data) == len(stream.chunks), stream.name
    expected = completions(stream)
    for p, done in zip(data, expected, strict=True):
        where = f"{stream.name}: frame {p.number}"
        assert len(p.dlep) == len(done), f"{where}: {len(p.dlep)} PDUs, expected {len(done)}"
        for pdu, i in zip(p.dlep, done, strict=True):
            msg = stream.units[i][0]
            assert_pdu(pdu, msg, stream.encoded[i], f"{where} {MESSAGE_NAMES[msg.type]}")
    # Frames without payload carry no DLEP.
    assert all(not p.dlep for p in tcp if int(p.find_one("tcp.len")) == 0)
    assert sum(len(d) for d in expected) == len(stream.units)


# --------------------------------------------------------------------------
# Self-tests of the harness, independent of the codec
# --------------------------------------------------------------------------


def _tlv(t: int, value: bytes) -> bytes:
    return struct.pack("!HH", t, len(value)) + value


@requires_tshark
def test_rfc_figure_bytes_match_codec(tmp_path: Path) -> None:
    """Hand-built bytes from the RFC figures decode in tshark and equal our encoding."""
    heartbeat = bytes.fromhex("00100000")  # Figure 4: type 16, length 0
    discovery = b"DLEP" + bytes.fromhex("00010000")  # Figure 3: type 1, length 0
    status = _tlv(1, b"\x80" + b"bad")  # §13.1: code 128 + text
    term = struct.pack("!HH", 5, len(status)) + status
    assert encode_message(Message(M.HEARTBEAT, ())) == heartbeat
    assert encode_signal(Signal(SignalType.PEER_DISCOVERY, ())) == discovery
    assert encode_message(Message(M.SESSION_TERMINATION, (Status(128, "bad"),))) == term
    frames = pcap.udp_frames([discovery]) + pcap.tcp_frames([pcap.Chunk(heartbeat + term)])
    pk = dissect(pcap.write_pcap(tmp_path / "rfc.pcap", frames))
    assert_clean(pk)
    pdus = [d for p in pk for d in p.dlep]
    assert [(d.kind, d.type, d.length) for d in pdus] == [
        ("signal", 1, 0),
        ("message", 16, 0),
        ("message", 5, 8),
    ]
    assert pdus[2].items[0].get("dlep.dataitem.status.code") == "128"
    assert pdus[2].items[0].get("dlep.dataitem.status.text") == "bad"


@requires_tshark
def test_harness_detects_problems(tmp_path: Path) -> None:
    """The checks above are not vacuous: broken input trips them."""
    hb_short = struct.pack("!HH", 1, 12) + _tlv(5, b"\x00\x01") + _tlv(20, b"\x05\xdc")
    bad_sig_len = b"DLEP" + struct.pack("!HH", 1, 9) + _tlv(4, b"\x00x")
    frames = pcap.udp_frames([bad_sig_len]) + pcap.tcp_frames([pcap.Chunk(hb_short)])
    pk = dissect(pcap.write_pcap(tmp_path / "bad.pcap", frames))
    with pytest.raises(AssertionError):
        assert_clean(pk[:1])  # signal length mismatch: a dlep expert warning
    with pytest.raises(AssertionError):
        assert_clean(pk)  # short heartbeat: warning, then malformed
    # A value mismatch is caught by the field comparison.
    good = Message(M.HEARTBEAT, ())
    frames = pcap.tcp_frames(
        [pcap.Chunk(encode_message(Message(M.DESTINATION_DOWN, (MacAddress(EUI48),))))]
    )
    pk = dissect(pcap.write_pcap(tmp_path / "mac.pcap", frames))
    pdu = next(d for p in pk for d in p.dlep)
    assert_pdu(pdu, Message(M.DESTINATION_DOWN, (MacAddress(EUI48),)), b"\0" * 14, "ok")
    with pytest.raises(AssertionError):
        assert_pdu(pdu, Message(M.DESTINATION_DOWN, (MacAddress(EUI48_BCAST),)), b"\0" * 14, "x")
    with pytest.raises(AssertionError):
        assert_pdu(pdu, good, b"\0" * 4, "x")


@requires_tshark
def test_extension_items_hand_built(tmp_path: Path) -> None:
    """Extension items 21, 22, 26, 27, 28 as tshark decodes them (RFC 8629, 8703, 8757).

    The codec has no classes for them yet; bytes are built from the RFC figures
    so the dissector's reading is pinned down for when it does.
    """
    items = [
        _tlv(21, bytes([0x80, 3])),  # Hop Count: P bit set, 3 hops
        _tlv(22, struct.pack("!H", 2)),  # Hop Control: Direct Connection
        _tlv(26, struct.pack("!H", 6)),  # Link Identifier Length
        _tlv(27, bytes.fromhex("0a0b0c0d0e0f")),  # Link Identifier
        _tlv(28, struct.pack("!QQ", U64_MAX, 7)),  # Latency Range: max then min
    ]
    body = b"".join(items)
    msg = struct.pack("!HH", 13, len(body)) + body
    pk = dissect(pcap.write_pcap(tmp_path / "ext.pcap", pcap.tcp_frames([pcap.Chunk(msg)])))
    assert_clean(pk)
    (pdu,) = [d for p in pk for d in p.dlep]
    got = [(di.type, _visible_fields(di)) for di in pdu.items]
    d = "dlep.dataitem"
    assert got == [
        (
            21,
            [
                (f"{d}.hop_count_flags", "0x80", "80"),
                (f"{d}.hop_count_flags.p", "1", "1"),
                (f"{d}.hop_count_flags.reserved", "0x00", "0"),
                (f"{d}.hop_count", "3", "03"),
            ],
        ),
        (22, [(f"{d}.hop_control", "2", "0002")]),
        (26, [(f"{d}.link_identifier_length", "6", "0006")]),
        (27, [(f"{d}.link_identifier", "0a:0b:0c:0d:0e:0f", "0a0b0c0d0e0f")]),
        (28, [(f"{d}.max_latency", str(U64_MAX), "ff" * 8), (f"{d}.min_latency", "7", _u(7, 8))]),
    ]


@requires_tshark
def test_decode_as_for_advertised_port(tmp_path: Path) -> None:
    """A session on the port a Connection Point advertised needs a decode-as rule.

    tshark binds DLEP to port 854 only (UDP: signals, TCP: messages).
    """
    units = [(m, True) for m, _ in messages(EUI48)[:3]]
    enc = [encode_message(m) for m, _ in units]
    frames = pcap.tcp_frames(pcap.chunks_per_message(enc), server_port=8854)
    path = pcap.write_pcap(tmp_path / "port8854.pcap", frames)
    assert not [d for p in dissect(path) for d in p.dlep]
    pk = dissect(path, decode_as=["tcp.port==8854,dlep"])
    assert_clean(pk)
    pdus = [d for p in pk for d in p.dlep]
    assert len(pdus) == len(units)
    for pdu, (msg, _), raw in zip(pdus, units, enc, strict=True):
        assert_pdu(pdu, msg, raw, f"port 8854 {MESSAGE_NAMES[msg.type]}")
