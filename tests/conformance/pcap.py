"""Pure-stdlib writer for classic libpcap files carrying DLEP traffic.

Only files are produced: frames are assembled in memory and written to disk
for an offline decoder (tshark) to read. Nothing is ever sent on a network.

Frames are Ethernet II (LINKTYPE_ETHERNET) + IPv4 (TTL 255, as RFC 8175
requires of DLEP senders) + UDP or TCP, with correct IPv4, UDP and TCP
checksums so that tshark's checksum validation can be switched on.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DLEP_PORT = 854
LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_PROTO_TCP = 6
_PROTO_UDP = 17

# TCP flag bits.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

# Locally administered MACs: clearly synthetic, never a real vendor's.
ROUTER_MAC = bytes.fromhex("020000000001")
MODEM_MAC = bytes.fromhex("020000000002")
# Documentation addresses (RFC 5737): never routable.
ROUTER_IP = "192.0.2.1"
MODEM_IP = "192.0.2.2"


@dataclass(frozen=True)
class Frame:
    """One captured link-layer frame and its capture time."""

    data: bytes
    ts: float = 0.0


def write_pcap(
    path: str | Path, frames: Iterable[Frame], linktype: int = LINKTYPE_ETHERNET
) -> Path:
    """Write frames to a classic (microsecond, little-endian) pcap file."""
    path = Path(path)
    with path.open("wb") as fh:
        # magic, v2.4, thiszone, sigfigs, snaplen, network
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for fr in frames:
            sec = int(fr.ts)
            usec = round((fr.ts - sec) * 1_000_000)
            if usec >= 1_000_000:  # rounding can carry into the next second
                sec, usec = sec + 1, usec - 1_000_000
            fh.write(struct.pack("<IIII", sec, usec, len(fr.data), len(fr.data)))
            fh.write(fr.data)
    return path


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum over 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip4(addr: str) -> bytes:
    return ipaddress.IPv4Address(addr).packed


def ethernet(
    src_mac: bytes, dst_mac: bytes, payload: bytes, ethertype: int = _ETHERTYPE_IPV4
) -> bytes:
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


def ipv4(
    src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0, ttl: int = 255
) -> bytes:
    """IPv4 header (no options, DF set) with a valid header checksum."""
    total_len = 20 + len(payload)
    if total_len > 0xFFFF:
        raise ValueError("IPv4 packet too large")
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        total_len,
        ident & 0xFFFF,
        0x4000,
        ttl,
        proto,
        0,
        _ip4(src),
        _ip4(dst),
    )
    csum = internet_checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def _pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    return _ip4(src) + _ip4(dst) + struct.pack("!BBH", 0, proto, length)


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    """UDP header + payload with a valid checksum (0 is sent as 0xFFFF)."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    csum = internet_checksum(_pseudo_header(src, dst, _PROTO_UDP, length) + hdr + payload)
    if csum == 0:  # RFC 768: a computed zero is transmitted as all ones
        csum = 0xFFFF
    return hdr[:6] + struct.pack("!H", csum) + payload


def tcp(
    src: str,
    sport: int,
    dst: str,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes,
    *,
    window: int = 65535,
    options: bytes = b"",
) -> bytes:
    """TCP header (+options) + payload with a valid checksum."""
    if len(options) % 4:
        raise ValueError("TCP options must be padded to 32 bits")
    offset_words = (20 + len(options)) // 4
    hdr = (
        struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            offset_words << 4,
            flags,
            window,
            0,
            0,
        )
        + options
    )
    seg = hdr + payload
    csum = internet_checksum(_pseudo_header(src, dst, _PROTO_TCP, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp_frames(
    payloads: Sequence[bytes],
    *,
    src: str = ROUTER_IP,
    dst: str = "224.0.0.117",
    sport: int = 49152,
    dport: int = DLEP_PORT,
    t0: float = 1_700_000_000.0,
    step: float = 0.001,
) -> list[Frame]:
    """One UDP datagram per payload (one DLEP Signal each).

    The default destination is the DLEP IPv4 link-local multicast address
    (RFC 8175 section 15.15), as a Peer Discovery Signal would use.
    """
    frames = []
    dst_mac = _multicast_mac(dst) if ipaddress.IPv4Address(dst).is_multicast else MODEM_MAC
    for i, p in enumerate(payloads):
        pkt = ipv4(src, dst, _PROTO_UDP, udp(src, sport, dst, dport, p), ident=0x1000 + i)
        frames.append(Frame(ethernet(ROUTER_MAC, dst_mac, pkt), t0 + i * step))
    return frames


def _multicast_mac(addr: str) -> bytes:
    low = ipaddress.IPv4Address(addr).packed[1:]
    return bytes([0x01, 0x00, 0x5E, low[0] & 0x7F, low[1], low[2]])


@dataclass(frozen=True)
class Chunk:
    """Bytes written to the TCP stream by one side, sent as one segment."""

    data: bytes
    from_client: bool = True


@dataclass
class TcpSession:
    """Builds a consistent TCP conversation between a router (client) and a modem (server).

    Sequence and acknowledgement numbers follow the bytes really sent, so
    tshark's TCP analysis sees no gaps, retransmissions or unseen ACKs.
    """

    client_ip: str = ROUTER_IP
    server_ip: str = MODEM_IP
    client_port: int = 40001
    server_port: int = DLEP_PORT
    client_isn: int = 0x10000000
    server_isn: int = 0xFFFFFF00  # the modem's sequence numbers wrap past 2**32 mid-session
    t0: float = 1_700_000_100.0
    step: float = 0.001
    frames: list[Frame] = field(default_factory=list)
    _cseq: int = 0
    _sseq: int = 0
    _ident: int = 0x2000

    def _emit(self, from_client: bool, flags: int, payload: bytes, options: bytes = b"") -> None:
        if from_client:
            src, sport, dst, dport = (
                self.client_ip,
                self.client_port,
                self.server_ip,
                self.server_port,
            )
            seq, ack = self._cseq, self._sseq
            smac, dmac = ROUTER_MAC, MODEM_MAC
        else:
            src, sport, dst, dport = (
                self.server_ip,
                self.server_port,
                self.client_ip,
                self.client_port,
            )
            seq, ack = self._sseq, self._cseq
            smac, dmac = MODEM_MAC, ROUTER_MAC
        if not flags & ACK:
            ack = 0
        seg = tcp(src, sport, dst, dport, seq, ack, flags, payload, options=options)
        pkt = ipv4(src, dst, _PROTO_TCP, seg, ident=self._ident)
        self._ident += 1
        self.frames.append(Frame(ethernet(smac, dmac, pkt), self.t0 + len(self.frames) * self.step))
        used = len(payload) + (1 if flags & (SYN | FIN) else 0)
        if from_client:
            self._cseq = (self._cseq + used) & 0xFFFFFFFF
        else:
            self._sseq = (self._sseq + used) & 0xFFFFFFFF

    def handshake(self) -> None:
        """SYN, SYN/ACK, ACK; MSS option only so the SYNs look ordinary."""
        mss = struct.pack("!BBH", 2, 4, 1460)
        self._cseq, self._sseq = self.client_isn, self.server_isn
        self._emit(True, SYN, b"", mss)
        self._emit(False, SYN | ACK, b"", mss)
        self._emit(True, ACK, b"")

    def send(self, chunk: Chunk) -> None:
        """One data segment, then a pure ACK from the peer."""
        self._emit(chunk.from_client, PSH | ACK, chunk.data)
        self._emit(not chunk.from_client, ACK, b"")

    def close(self) -> None:
        """Orderly FIN exchange initiated by the client."""
        self._emit(True, FIN | ACK, b"")
        self._emit(False, FIN | ACK, b"")
        self._emit(True, ACK, b"")


def tcp_frames(chunks: Sequence[Chunk], **session_kw: object) -> list[Frame]:
    """A full TCP conversation (handshake, the chunks, close) as frames."""
    s = TcpSession(**session_kw)  # type: ignore[arg-type]
    s.handshake()
    for c in chunks:
        if not c.data:
            raise ValueError("empty TCP chunk")
        s.send(c)
    s.close()
    return s.frames


def chunks_per_message(
    messages: Sequence[bytes], from_client: Sequence[bool] | None = None
) -> list[Chunk]:
    """One TCP segment per DLEP Message."""
    dirs = from_client if from_client is not None else [True] * len(messages)
    return [Chunk(m, d) for m, d in zip(messages, dirs, strict=True)]


def chunks_coalesced_split(messages: Sequence[bytes], split_at: int | None = None) -> list[Chunk]:
    """Client-to-server segments that exercise TCP reassembly.

    Layout (n = len(messages) >= 3):
      segment 1: messages[0] + messages[1] whole, then the head of messages[2]
                 (several PDUs in one segment, the last one incomplete);
      segment 2: the rest of messages[2] (a PDU split across two segments);
      then the remaining messages coalesced pairwise into single segments.
    split_at is the byte offset inside messages[2] where it is cut; by default
    it falls inside its 4-octet header (the hardest case for a dissector),
    or in the middle when the message is only a header.
    """
    if len(messages) < 3:
        raise ValueError("need at least three messages")
    third = messages[2]
    cut = split_at if split_at is not None else 2
    if not 0 < cut < len(third):
        raise ValueError("split point must fall inside the message")
    chunks = [Chunk(messages[0] + messages[1] + third[:cut]), Chunk(third[cut:])]
    rest = list(messages[3:])
    for i in range(0, len(rest), 2):
        chunks.append(Chunk(b"".join(rest[i : i + 2])))
    return chunks
