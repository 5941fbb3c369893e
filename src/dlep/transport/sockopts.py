"""Socket options for DLEP: TTL/hop limit 255 and GTSM (RFC 5082, RFC 8175 §12.1)."""

from __future__ import annotations

import asyncio
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


#: Where Linux counts TCP's drops (per network namespace).
NETSTAT: Final = "/proc/net/netstat"


def min_ttl_drops(path: str = NETSTAT) -> int | None:
    """TCP segments the kernel dropped because their TTL / hop limit was
    below a socket's minimum (``IP_MINTTL`` / ``IPV6_MINHOPCOUNT``: GTSM),
    since boot, in this network namespace: ``TcpExt: TCPMinTTLDrop`` of
    ``path``. Every such socket of the namespace counts, not only ours.
    None where the kernel does not count them (or ``path`` is unreadable)."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    # Pairs of lines: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if not names.startswith("TcpExt:"):
            continue
        try:
            i = names.split().index("TCPMinTTLDrop")
            return int(values.split()[i])
        except (ValueError, IndexError):
            return None
    return None


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


async def answers_above(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    port: int,
    min_ttl: int | None,
    timeout: float,
    *,
    scope: int = 0,
) -> str | None:
    """One diagnostic TCP connection attempt: does ``address:port`` answer
    with packets whose TTL / hop limit is at least ``min_ttl`` (None: any)?
    ``"accepted"``, ``"refused"`` (a reset) or None (silence: the kernel
    drops answers below the minimum for us). A connection that succeeds is
    closed at once, before anything is sent on it."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    loop = asyncio.get_running_loop()
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        # We still send with 255: a GTSM peer must not drop our probe.
        set_ttl_255(sock, enforce=False)
        if min_ttl is not None:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)
            else:
                sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)
        target: tuple[object, ...] = (
            (str(address), port, 0, scope) if family == socket.AF_INET6 else (str(address), port)
        )
        try:
            await asyncio.wait_for(loop.sock_connect(sock, target), timeout)
        except ConnectionRefusedError:
            return "refused"  # a reset that passed the minimum is an answer too
        except (TimeoutError, OSError):
            return None
        return "accepted"


async def peer_ttl(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    port: int,
    *,
    scope: int = 0,
    timeout: float = 2.0,
) -> tuple[int, bool] | None:
    """The TTL / hop limit the peer's TCP answers arrive with, and whether
    the answer is a refusal (nothing listens on the port), found by
    diagnostic connections with a varying minimum (binary search, at most
    nine attempts); None if it does not answer even without a minimum.

    For the case GTSM (minimum 255) met silence: a peer that answers here
    sends with a lower TTL, typically 64 (most stacks' default)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = await answers_above(address, port, None, timeout, scope=scope)
    if first is None:
        return None
    # Below-minimum answers are silence: wait a few round trips, not seconds.
    wait = min(timeout, max(0.2, 4 * (loop.time() - started)))
    lo, hi = 1, GTSM_TTL
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if await answers_above(address, port, mid, wait, scope=scope) is not None:
            lo = mid
        else:
            hi = mid - 1
    return lo, first == "refused"
