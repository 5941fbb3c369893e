"""UDP multicast sockets for DLEP discovery, with the received TTL.

asyncio's datagram endpoints do not expose ancillary data, and RFC 8175
§12.1 needs the TTL / hop limit of every signal (ignore unless 255), so the
socket is read with ``recvmsg`` from a plain ``add_reader`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import sys
from collections.abc import Callable
from typing import TypeAlias

from .sockopts import GTSM_TTL, IP_RECVTTL, IPV6_HOPLIMIT, IPV6_RECVHOPLIMIT, interface_index

log = logging.getLogger("dlep.transport")

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (data, source address, source port, ttl or None) -> None
DatagramHandler: TypeAlias = Callable[[bytes, IPAddress, int, "int | None"], None]

_CMSG_SPACE = socket.CMSG_SPACE(4)


class DiscoverySocket:
    """One UDP socket on the discovery port, joined to the DLEP group.

    Args:
        family: ``socket.AF_INET`` or ``socket.AF_INET6``.
        group: the multicast group (224.0.0.117 / ff02::1:7).
        port: the discovery port (854).
        interface: interface to join on and send from (None: kernel's choice).
        join: join the group (modem: yes; router: only needs to send).
        loopback: let our own multicast loop back to this host (tests on
            one host); off by default so a router does not hear itself.
    """

    def __init__(
        self,
        family: socket.AddressFamily,
        group: str,
        port: int,
        *,
        interface: str | None,
        join: bool,
        loopback: bool = False,
    ) -> None:
        self.family = family
        self.group = group
        self.port = port
        self.ifindex = interface_index(interface)
        self.interface = interface
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(("::", port))
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, GTSM_TTL)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, GTSM_TTL)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(loopback))
                sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                if self.ifindex:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
                if join:
                    mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack(
                        "@I", self.ifindex
                    )
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            else:
                sock.bind(("", port))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, GTSM_TTL)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, GTSM_TTL)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(loopback))
                sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
                mreqn = socket.inet_aton(group) + struct.pack("@4si", b"\0" * 4, self.ifindex)
                if self.ifindex:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
                if join:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop, handler: DatagramHandler) -> None:
        """Deliver every datagram to ``handler`` from now on."""
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable, handler)

    def _readable(self, handler: DatagramHandler) -> None:
        # Bounded: drain at most 64 datagrams per wake-up so a flood cannot
        # starve the event loop.
        for _ in range(64):
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, _CMSG_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("discovery socket receive error: %s", exc)
                return
            ttl: int | None = None
            for level, ctype, cdata in anc:
                if (level == socket.IPPROTO_IP and ctype == socket.IP_TTL) or (
                    level == socket.IPPROTO_IPV6 and ctype == IPV6_HOPLIMIT
                ):
                    ttl = int.from_bytes(cdata[:4], sys.byteorder)  # a native C int
            host = str(addr[0]).split("%", 1)[0]
            try:
                src = ipaddress.ip_address(host)
            except ValueError:
                continue
            try:
                handler(data, src, int(addr[1]), ttl)
            except Exception:  # a bug in a handler must not kill discovery
                log.exception("discovery handler failed")

    def send_group(self, data: bytes) -> None:
        """Send to the multicast group on our interface."""
        if self.family == socket.AF_INET6:
            self.sock.sendto(data, (self.group, self.port, 0, self.ifindex))
        else:
            self.sock.sendto(data, (self.group, self.port))

    def send_to(self, data: bytes, address: IPAddress, port: int) -> None:
        """Unicast ``data`` (e.g. a Peer Offer back to the router)."""
        if self.family == socket.AF_INET6:
            scope = self.ifindex if address.is_link_local else 0
            self.sock.sendto(data, (str(address), port, 0, scope))
        else:
            self.sock.sendto(data, (str(address), port))

    def close(self) -> None:
        """Stop reading and close the socket."""
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
