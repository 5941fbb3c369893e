"""MAC table aging, frame parsing (claimed addresses), the packet codec, metrics and thresholds."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from dlep.emu.channel import ChannelParams
from dlep.emu.frames import claimed_addresses, is_group, l2_payload_length, parse_header
from dlep.emu.mactable import LOCAL, MacTable
from dlep.emu.neighbours import PeerState
from dlep.emu.packet import Kind, PacketError, Probe, decode, encode_data, encode_probe
from dlep.emu.report import Reporter, Thresholds, link_metrics
from dlep.fsm import Metrics

A = bytes.fromhex("02e000000001")
B = bytes.fromhex("02e000000002")
BCAST = b"\xff" * 6


# -- MAC table ---------------------------------------------------------------------


def test_mac_learning_aging_and_moves() -> None:
    t = MacTable(aging=10.0, max_entries=3)
    assert t.learn(A, LOCAL, 0.0) is True
    assert t.learn(A, LOCAL, 1.0) is False  # refresh
    assert t.learn(A, 2, 2.0) is True and t.moved == 1
    assert t.lookup(A, 11.9) == 2
    assert t.lookup(A, 12.0) is None and t.aged_out == 1
    for i in range(4):
        t.learn(bytes([2, 0, 0, 0, 0, i]), 1, 20.0 + i)
    assert len(t) == 3 and t.evicted == 1
    assert t.expire(32.5) == 2
    assert [e.mac for e in t.entries(32.5)] == ["02:00:00:00:00:03"]
    assert t.forget_owner(1) == 1 and len(t) == 0


# -- frames -------------------------------------------------------------------------


def eth(dst: bytes, src: bytes, etype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", etype) + payload


def arp(sender_mac: bytes, sender_ip: str) -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + sender_mac
    body += ipaddress.IPv4Address(sender_ip).packed + b"\x00" * 6 + bytes(4)
    return body


def ipv6(src: str, dst: str, icmp: bytes) -> bytes:
    hdr = struct.pack("!IHBB", 6 << 28, len(icmp), 58, 255)
    return hdr + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + icmp


def nd(kind: int, target: str) -> bytes:
    return bytes([kind, 0, 0, 0, 0, 0, 0, 0]) + ipaddress.IPv6Address(target).packed


def test_arp_claims_the_sender_address_only_if_it_is_the_frame_source() -> None:
    assert claimed_addresses(eth(BCAST, A, 0x0806, arp(A, "10.0.0.1"))) == ["10.0.0.1"]
    assert claimed_addresses(eth(BCAST, A, 0x0806, arp(B, "10.0.0.2"))) == []
    assert claimed_addresses(eth(BCAST, A, 0x0806, arp(A, "0.0.0.0"))) == []


def test_nd_and_link_local_sources() -> None:
    dad = eth(BCAST, A, 0x86DD, ipv6("::", "ff02::1:ff00:1", nd(135, "fd00::1")))
    assert claimed_addresses(dad) == ["fd00::1"]
    na = eth(B, A, 0x86DD, ipv6("fe80::1", "fe80::2", nd(136, "fd00::1")))
    assert claimed_addresses(na) == ["fe80::1", "fd00::1"]
    forwarded = eth(B, A, 0x86DD, ipv6("fd00::99", "fd00::2", nd(128, "::")))
    assert claimed_addresses(forwarded) == []  # a routed packet's source is not the sender's


def test_vlan_runt_and_group() -> None:
    tagged = BCAST + A + b"\x81\x00\x00\x05" + b"\x08\x06" + arp(A, "10.0.0.5")
    hdr = parse_header(tagged)
    assert hdr is not None and hdr[2] == 0x0806 and hdr[3] == 18
    assert claimed_addresses(tagged) == ["10.0.0.5"]
    assert l2_payload_length(tagged) == len(tagged) - 18
    assert parse_header(b"\x00" * 13) is None
    assert is_group(BCAST) and is_group(bytes.fromhex("333300000001")) and not is_group(A)


# -- packets ------------------------------------------------------------------------


def sample_probe(**kw: object) -> Probe:
    base: dict[str, object] = {
        "seq": 7,
        "ts": 12.5,
        "echo_ts": 11.0,
        "dwell": 0.25,
        "rx_loss": 0.5,
        "rate": 20_000_000,
        "granted_rate": 5_000_000,
        "loss": 0.25,
        "latency_us": 10_000,
        "mtu": 1400,
        "up": True,
        "want_rate": 3_000_000,
        "mac": A,
        "name": "n1",
    }
    base.update(kw)
    return Probe(**base)  # type: ignore[arg-type]


def test_probe_and_data_roundtrip() -> None:
    p = sample_probe()
    assert decode(encode_probe(Kind.KEEPALIVE, 1, 2, p)) == (Kind.KEEPALIVE, 1, 2, p)
    q = sample_probe(echo_ts=None, rx_loss=None, granted_rate=None, up=False)
    assert decode(encode_probe(Kind.HELLO, 3, 4, q))[3] == q
    frame = eth(BCAST, A, 0x0806, arp(A, "10.0.0.1"))
    assert decode(encode_data(5, 6, frame)) == (Kind.DATA, 5, 6, frame)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"DE\x01", "shorter than the header"),
        (b"XX\x01\x01\x00\x01\x00\x02" + bytes(20), "bad magic"),
        (b"DE\x02\x01\x00\x01\x00\x02" + bytes(20), "version 2"),
        (b"DE\x01\x09\x00\x01\x00\x02" + bytes(20), "unknown kind"),
        (b"DE\x01\x01\x00\x01\x00\x02" + bytes(5), "shorter than an Ethernet header"),
        (b"DE\x01\x03\x00\x01\x00\x02" + bytes(20), "truncated"),
    ],
)
def test_malformed_packets_say_why(data: bytes, why: str) -> None:
    with pytest.raises(PacketError, match=why):
        decode(data)


def test_probe_with_wrong_name_length_or_values() -> None:
    raw = encode_probe(Kind.HELLO, 1, 2, sample_probe())
    with pytest.raises(PacketError, match="name length"):
        decode(raw + b"x")
    with pytest.raises(PacketError, match="out of range"):
        decode(encode_probe(Kind.HELLO, 1, 2, sample_probe(loss=2.0)))


# -- metrics and the reporter ---------------------------------------------------------


def test_link_metrics_map_measurements() -> None:
    ps = PeerState(1)
    ps.rtt = 0.020
    ps.first_seq, ps.high_seq = 1, 10
    ps.window.extend(range(2, 11))  # 1 of 10 lost
    ps.tx_loss = 0.05
    ps.info = sample_probe(rate=10_000_000, granted_rate=None, loss=0.1)
    tx = ChannelParams(rate=20_000_000, loss=0.01, mtu=1400)
    m = link_metrics(tx, ps, loss_window=10, queue_fill=0.25)
    assert m == Metrics(
        mdrr=10_000_000,
        mdrt=20_000_000,
        cdrr=9_000_000,
        cdrt=19_800_000,
        latency=10_000,
        resources=75,
        rlqr=90,
        rlqt=95,
        mtu=1400,
    )


def test_reporter_thresholds_and_interval() -> None:
    r = Reporter(
        Thresholds(
            update_interval=1.0,
            rate_percent=5,
            latency_percent=10,
            latency_min_us=500,
            rlq_points=5,
            resources_points=10,
        )
    )
    base = Metrics(mdrt=100, cdrt=100, latency=10_000, rlqr=100, resources=100, mtu=1500)
    r.started(1, base, 0.0)
    assert r.decide(1, base, 5.0) is None
    small = Metrics(mdrt=100, cdrt=97, latency=10_400, rlqr=97, resources=95, mtu=1500)
    assert r.decide(1, small, 5.0) is None  # nothing past its threshold
    big = Metrics(mdrt=100, cdrt=90, latency=10_400, rlqr=97, resources=95, mtu=1500)
    assert r.decide(1, big, 0.5) is None and r.held == 1  # too soon
    out = r.decide(1, big, 5.0)
    assert out == Metrics(cdrt=90, latency=10_400, rlqr=97, resources=95)
    assert r.decide(1, big.merged(Metrics(mtu=1400)), 5.5) is None  # interval again
    assert r.decide(1, big.merged(Metrics(mtu=1400)), 6.0) == Metrics(mtu=1400)
    assert r.decide(2, big, 9.0) is None  # never started
