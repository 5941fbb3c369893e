"""The Linux parts: privileges, network namespaces, TAP interfaces.

Namespaces are created, entered and removed with pyroute2 (``pyroute2.netns``:
``unshare``/``setns`` and the bind mount under ``/var/run/netns`` that
iproute2 uses, so ``ip netns`` sees them too). A TAP is created with the
kernel's TUN/TAP ioctl on ``/dev/net/tun`` (no persistence flag: the
interface lives exactly as long as the emulator's file descriptor, so a
crashed emulator leaves no TAP behind) and configured through netlink
(pyroute2 ``IPRoute``): MAC, MTU, addresses, up. Nothing shells out.

Everything we create is named ``emu<pid>-<node>`` after the ``dlep-emu run``
that made it, so :func:`stale_namespaces` can find what a killed run left.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import re
import signal
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = [
    "NS_PREFIX",
    "create_netns",
    "enter_netns",
    "list_netns",
    "missing_privileges",
    "namespace_name",
    "open_tap",
    "remove_netns",
    "set_parent_death_signal",
    "stale_namespaces",
]

NS_PREFIX: Final = "emu"
_NS_RE: Final = re.compile(rf"^{NS_PREFIX}(\d+)-")
_TUNSETIFF: Final = 0x400454CA
_IFF_TAP: Final = 0x0002
_IFF_NO_PI: Final = 0x1000
_PR_SET_PDEATHSIG: Final = 1
_CAP_NET_ADMIN: Final = 12
_CAP_SYS_ADMIN: Final = 21


def missing_privileges(*, tun: bool = True) -> str | None:
    """What is missing to create namespaces and TAPs (None: nothing)."""
    needs: list[str] = []
    caps = _effective_caps()
    for bit, name in ((_CAP_NET_ADMIN, "CAP_NET_ADMIN"), (_CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
        if not caps >> bit & 1:
            needs.append(name)
    if needs:
        return (
            "dlep-emu run needs root (or the capabilities "
            + " and ".join(needs)
            + ") to create network namespaces and TAP interfaces; run it with sudo, "
            "or use --radios-only (no namespaces, no TAPs, no data plane: "
            "emulated radios and DLEP only, no root needed)"
        )
    if tun and not os.path.exists("/dev/net/tun"):
        return (
            "dlep-emu run needs /dev/net/tun for TAP interfaces (load the tun module: "
            "modprobe tun; in a container, pass the device in), or use --radios-only"
        )
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "dlep-emu run needs pyroute2 (pip install pyroute2)"
    return None


def _effective_caps() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return (1 << 64) - 1 if os.geteuid() == 0 else 0


def namespace_name(node: str, pid: int | None = None) -> str:
    """The namespace of ``node`` for the run with ``pid`` (default: ours)."""
    return f"{NS_PREFIX}{pid if pid is not None else os.getpid()}-{node}"


def list_netns() -> list[str]:
    """Named network namespaces (``/var/run/netns``)."""
    from pyroute2 import netns

    return list(netns.listnetns())


def create_netns(name: str) -> None:
    """Create the named namespace (its loopback comes up when a node enters it)."""
    from pyroute2 import netns

    netns.create(name)


def remove_netns(name: str) -> None:
    """Remove the named namespace (it disappears once no process is inside)."""
    from pyroute2 import netns

    netns.remove(name)


def enter_netns(name: str) -> None:
    """Move the calling thread into the named namespace.

    Sockets opened before keep their namespace: the emulator binds its UDP
    socket (and its metrics listener) first, then enters the node's
    namespace for the TAP and the DLEP session.
    """
    from pyroute2 import netns

    netns.setns(name, flags=0)


def stale_namespaces() -> list[str]:
    """Namespaces named by a ``dlep-emu run`` whose process no longer runs."""
    out: list[str] = []
    for name in list_netns():
        m = _NS_RE.match(name)
        if m is None:
            continue
        pid = int(m[1])
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            out.append(name)
        except PermissionError:
            continue
    return out


def set_parent_death_signal(parent: int | None, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` when our parent dies (Linux prctl).

    ``parent``: the pid we expect as parent; if it already died before the
    call, raise ``sig`` at once (the race prctl alone cannot close).
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)


def open_tap(
    name: str,
    mac: str,
    mtu: int,
    addresses: Sequence[str] = (),
    *,
    up: bool = True,
    loopback: Sequence[str] = (),
) -> int:
    """Create TAP ``name`` in the current namespace, configure it, return its fd.

    Also brings ``lo`` up (the DLEP session runs over it) with the
    ``loopback`` addresses, and asks the kernel to announce the interface's
    addresses (gratuitous ARP and unsolicited Neighbour Advertisements), so
    neighbours learn them without waiting for traffic. IPv6 duplicate
    address detection is off: every address is ours by construction and
    usable at once. ICMP redirects are off in the namespace: sharing the TAP's
    subnet does not put two nodes in range of each other, so a node that
    forwards between two neighbours must not tell them to talk directly.
    """
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH", name.encode(), _IFF_TAP | _IFF_NO_PI)
        fcntl.ioctl(fd, _TUNSETIFF, ifr)
        for key, value in (
            (f"ipv6/conf/{name}/accept_dad", "0"),
            (f"ipv6/conf/{name}/ndisc_notify", "1"),
            (f"ipv4/conf/{name}/arp_notify", "1"),
            ("ipv4/conf/all/send_redirects", "0"),
            (f"ipv4/conf/{name}/send_redirects", "0"),
            ("ipv4/conf/all/accept_redirects", "0"),
            (f"ipv4/conf/{name}/accept_redirects", "0"),
            ("ipv6/conf/all/accept_redirects", "0"),
            (f"ipv6/conf/{name}/accept_redirects", "0"),
        ):
            _sysctl(key, value)
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            lo = ipr.link_lookup(ifname="lo")
            if lo:
                ipr.link("set", index=lo[0], state="up")
                for cidr in loopback:
                    addr, plen = cidr.split("/")
                    ipr.addr("add", index=lo[0], address=addr, prefixlen=int(plen))
            idx = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=idx, address=mac, mtu=mtu)
            for cidr in addresses:
                addr, plen = cidr.split("/")
                ipr.addr("add", index=idx, address=addr, prefixlen=int(plen))
            if up:
                ipr.link("set", index=idx, state="up")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sysctl(key: str, value: str) -> None:
    # /proc/sys/net is per namespace: this writes the current thread's. An
    # optional nicety (e.g. IPv6 disabled): never fatal.
    with contextlib.suppress(OSError):
        Path("/proc/sys/net", key).write_text(value)
