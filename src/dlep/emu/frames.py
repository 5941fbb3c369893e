"""Reading Ethernet frames: addresses, and the IP addresses a sender claims.

Pure functions over ``bytes``; nothing here keeps state.

Which IP addresses a frame proves its sender owns: the sender of an ARP
packet (its hardware address is the frame's source), the target of an
IPv6 Neighbour Solicitation for duplicate address detection (from ``::``)
or of a Neighbour Advertisement, and the source of any IPv6 packet from a
link-local address (never forwarded, so it is the sender's own). The source
of an ordinary IP packet is *not* taken: a router forwards other hosts'
packets with its own MAC, and claiming their addresses would attach them to
the wrong destination.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final

__all__ = [
    "BROADCAST",
    "claimed_addresses",
    "is_group",
    "l2_payload_length",
    "parse_header",
]

BROADCAST: Final = b"\xff" * 6
ETH_HEADER: Final = 14
_VLAN_TYPES: Final = frozenset({0x8100, 0x88A8})
_ARP: Final = 0x0806
_IPV6: Final = 0x86DD
_ICMPV6: Final = 58
_ND_NS: Final = 135
_ND_NA: Final = 136


def parse_header(frame: bytes) -> tuple[bytes, bytes, int, int] | None:
    """``(dst, src, ethertype, payload offset)``, or None for a runt frame.

    One or two VLAN tags are skipped (the ethertype is the inner one).
    """
    if len(frame) < ETH_HEADER:
        return None
    off = 12
    (etype,) = struct.unpack_from("!H", frame, off)
    while etype in _VLAN_TYPES:
        off += 4
        if len(frame) < off + 2:
            return None
        (etype,) = struct.unpack_from("!H", frame, off)
    return frame[0:6], frame[6:12], etype, off + 2


def l2_payload_length(frame: bytes) -> int:
    """Octets after the Ethernet header (and VLAN tags): what the MTU limits."""
    hdr = parse_header(frame)
    return len(frame) - (hdr[3] if hdr is not None else ETH_HEADER)


def is_group(mac: bytes) -> bool:
    """Broadcast or multicast (the I/G bit): flooded to every node in range."""
    return bool(mac[0] & 1)


def claimed_addresses(frame: bytes) -> list[str]:
    """IP addresses this frame shows its source MAC owns (see the module doc)."""
    hdr = parse_header(frame)
    if hdr is None:
        return []
    _dst, src, etype, off = hdr
    if etype == _ARP:
        return _arp(frame, off, src)
    if etype == _IPV6:
        return _ipv6(frame, off)
    return []


def _arp(frame: bytes, off: int, src: bytes) -> list[str]:
    # Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4.
    if len(frame) < off + 28:
        return []
    htype, ptype, hlen, plen = struct.unpack_from("!HHBB", frame, off)
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        return []
    sha = frame[off + 8 : off + 14]
    spa = ipaddress.IPv4Address(frame[off + 14 : off + 18])
    if sha != src or spa.is_unspecified:
        return []
    return [str(spa)]


def _ipv6(frame: bytes, off: int) -> list[str]:
    if len(frame) < off + 40:
        return []
    nxt = frame[off + 6]
    source = ipaddress.IPv6Address(frame[off + 8 : off + 24])
    out: list[str] = []
    if source.is_link_local:
        out.append(str(source))
    if nxt == _ICMPV6 and len(frame) >= off + 40 + 24:
        icmp = off + 40
        kind = frame[icmp]
        target = ipaddress.IPv6Address(frame[icmp + 8 : icmp + 24])
        dad = kind == _ND_NS and source.is_unspecified
        if (dad or kind == _ND_NA) and not (target.is_unspecified or target.is_multicast):
            out.append(str(target))
    return list(dict.fromkeys(out))
