"""Socket options for DLEP: TTL/hop limit 255 and GTSM (RFC 5082, RFC 8175 §12.1)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Final

# Linux values, for Pythons whose socket module lacks the names.
IP_MINTTL: Final = getattr(socket, "IP_MINTTL", 21)
IPV6_MINHOPCOUNT: Final = getattr(socket, "IPV6_MINHOPCOUNT", 73)
IP_RECVTTL: Final = getattr(socket, "IP_RECVTTL", 12)
IPV6_RECVHOPLIMIT: Final = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT: Final = getattr(socket, "IPV6_HOPLIMIT", 52)
GTSM_TTL: Final = 255


def set_ttl_255(sock: socket.socket, *, enforce: bool) -> None:
    """Send with TTL / hop limit 255; with ``enforce`` drop anything received
    with less (the kernel does it: IP_MINTTL / IPV6_MINHOPCOUNT)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, GTSM_TTL)
        if enforce:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, GTSM_TTL)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL)
        if enforce:
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, GTSM_TTL)


def interface_index(name: str | None) -> int:
    """Index of interface ``name`` (0 = any); ValueError naming it if absent."""
    if not name:
        return 0
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise ValueError(f"network interface {name!r} does not exist") from None


def interface_addresses(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Addresses configured on interface ``name`` (IPv4 via ioctl, IPv6 via /proc)."""
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    try:
        import fcntl

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("256s", name.encode()[:15])
            res = fcntl.ioctl(s.fileno(), 0x8915, req)  # SIOCGIFADDR
            out.append(ipaddress.IPv4Address(res[20:24]))
    except OSError:
        pass
    try:
        with open("/proc/net/if_inet6") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[5] == name:
                    out.append(ipaddress.IPv6Address(bytes.fromhex(parts[0])))
    except OSError:
        pass
    return out


def is_root() -> bool:
    """True when running with uid 0."""
    return hasattr(os, "geteuid") and os.geteuid() == 0
