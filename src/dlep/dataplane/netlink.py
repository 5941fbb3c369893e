"""The kernel operations the router data plane needs, over rtnetlink (pyroute2).

Nothing here runs ``ip`` or ``tc``: every change is a netlink request through
``pyroute2.AsyncIPRoute``. Everything installed carries a tag so that a later
start can find and remove it:

* routes: the configured route protocol number (``ip route show proto 77``);
* neighbour entries: the same number as their ``NDA_PROTOCOL``
  (``ip neigh show proto 77``);
* shaping: a root HTB qdisc whose major handle is ``qdisc_handle``
  (``tc qdisc show`` → ``htb d1e0: root``), one class and one u32 filter per
  destination MAC under it, and a hold class ``d1e0:ffff`` for paused ones.

The u32 filter matches the destination MAC address at offsets -14 and -10
from the network header (the Ethernet header on egress). pyroute2's u32 key
parser only takes offsets 0..255, so the selector is packed here.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, Final

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    nla,
    nlmsg,
)
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_DELTFILTER, RTM_NEWTFILTER

__all__ = [
    "NUD_PERMANENT",
    "FlushReport",
    "Netlink",
    "NetlinkError",
    "u32_mac_selector",
]

log = logging.getLogger("dlep.dataplane")

NUD_PERMANENT: Final = 0x80
RTNH_F_ONLINK: Final = 4
ETH_P_ALL: Final = 0x0003
TC_H_ROOT: Final = 0xFFFFFFFF
TC_U32_TERMINAL: Final = 1
#: Kernel "direct" rate cap (bytes/s) of a 32-bit HTB rate field; faster
#: rates go in the 64-bit attributes (pyroute2 handles that).
MTU_BURST: Final = 1514
#: The hold class (paused destinations' frames go there) and the u32 prio
#: offset of the normal filters (pause filters use prio = minor, first).
HOLD_MINOR: Final = 0xFFFF
NORMAL_PRIO_BASE: Final = 0x8000
MAX_MINOR: Final = 0x7FFF
EINVAL: Final = 22
ENOENT: Final = 2
ESRCH: Final = 3
EEXIST: Final = 17


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def u32_mac_selector(mac: bytes) -> bytes:
    """A ``struct tc_u32_sel`` with two keys that match destination ``mac``.

    Keys are (mask, value, offset, offmask); offsets count from the network
    header, so the Ethernet destination address sits at -14..-9.
    """
    if len(mac) != 6:
        raise ValueError(f"u32 MAC match needs a 6-octet MAC, got {len(mac)} octets")
    head = struct.pack("=BBBxHHhhI", TC_U32_TERMINAL, 0, 2, 0, 0, 0, 0, 0)
    k1 = struct.pack("!II", 0xFFFFFFFF, int.from_bytes(mac[:4], "big")) + struct.pack("=ii", -14, 0)
    k2 = struct.pack("!II", 0xFFFF0000, int.from_bytes(mac[4:] + b"\0\0", "big")) + struct.pack(
        "=ii", -10, 0
    )
    return head + k1 + k2


class _U32Options(nla):  # type: ignore[misc]
    nla_map = (
        ("TCA_U32_UNSPEC", "none"),
        ("TCA_U32_CLASSID", "uint32"),
        ("TCA_U32_HASH", "uint32"),
        ("TCA_U32_LINK", "hex"),
        ("TCA_U32_DIVISOR", "uint32"),
        ("TCA_U32_SEL", "cdata"),
    )


class _U32FilterMsg(nlmsg):  # type: ignore[misc]
    """A tcmsg whose u32 selector is raw bytes (see :func:`u32_mac_selector`)."""

    prefix = "TCA_"
    fields = (
        ("family", "B"),
        ("pad1", "B"),
        ("pad2", "H"),
        ("index", "i"),
        ("handle", "I"),
        ("parent", "I"),
        ("info", "I"),
    )
    nla_map = (("TCA_UNSPEC", "none"), ("TCA_KIND", "asciiz"), ("TCA_OPTIONS", "options"))
    options = _U32Options


@dataclass(slots=True)
class FlushReport:
    """What a flush removed."""

    routes: int = 0
    neighbours: int = 0
    qdiscs: int = 0

    def __str__(self) -> str:
        return f"{self.routes} route(s), {self.neighbours} neighbour(s), {self.qdiscs} qdisc(s)"

    @property
    def total(self) -> int:
        """Objects removed."""
        return self.routes + self.neighbours + self.qdiscs


async def _delete(request: Awaitable[Any], *also: int) -> bool:
    """Await a delete request; False (not an error) if the object was
    already gone (ENOENT/ESRCH, and the codes in ``also``)."""
    try:
        await request
    except NetlinkError as exc:
        if exc.code in (ENOENT, ESRCH, *also):
            return False
        raise
    return True


def _family(obj: IPAddr | IPNetwork) -> int:
    return socket.AF_INET6 if obj.version == 6 else socket.AF_INET


class Netlink:
    """The tagged kernel objects of one data plane, in one network namespace.

    Args:
        protocol: route protocol number (also the neighbours' NDA_PROTOCOL).
        table: routing table of the routes.
        qdisc_major: major handle of our root HTB qdisc.
        netns: a named network namespace (None: the process's own).
    """

    def __init__(
        self, *, protocol: int, table: int, qdisc_major: int, netns: str | None = None
    ) -> None:
        self.protocol = protocol
        self.table = table
        self.major = qdisc_major
        self.netns = netns
        self._ipr: Any = None

    async def open(self) -> None:
        """Open the rtnetlink socket (in ``netns`` if given)."""
        kw: dict[str, Any] = {"netns": self.netns} if self.netns else {}
        ipr = AsyncIPRoute(**kw)
        await ipr.setup_endpoint()
        self._ipr = ipr

    async def close(self) -> None:
        """Close the socket."""
        if self._ipr is not None:
            ipr, self._ipr = self._ipr, None
            ipr.close()

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` and :meth:`close`."""
        return self._ipr is not None

    @property
    def ipr(self) -> Any:
        if self._ipr is None:
            raise RuntimeError("netlink socket is not open")
        return self._ipr

    async def _list(self, result: Any) -> list[Any]:
        if isinstance(result, list):
            return result
        out: list[Any] = []
        async for msg in result:
            out.append(msg)
        return out

    async def _list_of(self, request: Awaitable[Any]) -> list[Any]:
        return await self._list(await request)

    async def _dump(self, coro: Any) -> AsyncIterator[Any]:
        for msg in await self._list(await coro):
            yield msg

    # -- links -------------------------------------------------------------------

    async def ifindex(self, name: str) -> int:
        """Interface index of ``name`` (LookupError if there is none)."""
        found = await self._list(await self.ipr.link_lookup(ifname=name))
        if not found:
            raise LookupError(
                f"no interface {name!r}" + (f" in netns {self.netns}" if self.netns else "")
            )
        return int(found[0])

    async def link_indexes(self) -> list[int]:
        """Every interface index."""
        return [int(m["index"]) async for m in self._dump(self.ipr.link("dump"))]

    # -- flush -------------------------------------------------------------------

    async def flush(self) -> FlushReport:
        """Remove every route, neighbour and root qdisc carrying our tags."""
        report = FlushReport()
        for family in (socket.AF_INET, socket.AF_INET6):
            async for msg in self._dump(self.ipr.route("dump", family=family)):
                if msg["proto"] != self.protocol:
                    continue
                table = msg.get_attr("RTA_TABLE") or msg["table"]
                if table != self.table:
                    continue
                report.routes += await _delete(
                    self.ipr.route(
                        "del",
                        family=family,
                        dst=msg.get_attr("RTA_DST"),
                        dst_len=msg["dst_len"],
                        table=table,
                        priority=msg.get_attr("RTA_PRIORITY") or 0,
                        proto=self.protocol,
                        tos=msg["tos"],
                        # The kernel matches the scope too; pyroute2's
                        # default for "del" is not the route's.
                        scope=msg["scope"],
                    )
                )
        for family in (socket.AF_INET, socket.AF_INET6):
            async for msg in self._dump(self.ipr.neigh("dump", family=family)):
                if msg.get_attr("NDA_PROTOCOL") != self.protocol:
                    continue
                report.neighbours += await _delete(
                    self.ipr.neigh(
                        "del", family=family, dst=msg.get_attr("NDA_DST"), ifindex=msg["ifindex"]
                    )
                )
        for index in await self.link_indexes():
            if await self._root_is_ours(index):
                await self.ipr.tc("del", index=index, handle=self.major << 16, parent=TC_H_ROOT)
                report.qdiscs += 1
        return report

    async def _root_qdisc(self, index: int) -> Any | None:
        async for msg in self._dump(self.ipr.tc("dump", index=index)):
            if msg["index"] == index and msg["parent"] == TC_H_ROOT:
                return msg
        return None

    async def _root_is_ours(self, index: int) -> bool:
        msg = await self._root_qdisc(index)
        return (
            msg is not None
            and msg["handle"] >> 16 == self.major
            and msg.get_attr("TCA_KIND") == "htb"
        )

    # -- neighbours ----------------------------------------------------------------

    async def neigh_set(self, ifindex: int, ip: IPAddr, mac: bytes) -> None:
        """``ip`` is at ``mac`` on ``ifindex`` (permanent, tagged)."""
        await self.ipr.neigh(
            "replace",
            family=_family(ip),
            dst=str(ip),
            lladdr=":".join(f"{b:02x}" for b in mac),
            ifindex=ifindex,
            state=NUD_PERMANENT,
            NDA_PROTOCOL=self.protocol,
        )

    async def neigh_del(self, ifindex: int, ip: IPAddr) -> None:
        """Remove our entry for ``ip`` (gone already is fine)."""
        await _delete(self.ipr.neigh("del", family=_family(ip), dst=str(ip), ifindex=ifindex))

    # -- routes ----------------------------------------------------------------------

    def _route_spec(
        self, dst: IPNetwork, ifindex: int, gateway: IPAddr | None, metric: int
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "family": _family(dst),
            "dst": str(dst.network_address),
            "dst_len": dst.prefixlen,
            "oif": ifindex,
            "table": self.table,
            "proto": self.protocol,
            "priority": metric,
        }
        if gateway is None:
            spec["scope"] = 253  # link: the destination is on the modem's link
        else:
            spec["gateway"] = str(gateway)
            spec["flags"] = RTNH_F_ONLINK  # the gateway is a DLEP neighbour, not a subnet
        return spec

    async def route_set(
        self, dst: IPNetwork, ifindex: int, gateway: IPAddr | None, metric: int
    ) -> None:
        """Install (or replace) the route to ``dst`` with ``metric``."""
        await self.ipr.route("replace", **self._route_spec(dst, ifindex, gateway, metric))

    async def route_del(
        self, dst: IPNetwork, ifindex: int, gateway: IPAddr | None, metric: int
    ) -> None:
        """Remove that route (gone already is fine)."""
        spec = self._route_spec(dst, ifindex, gateway, metric)
        spec.pop("flags", None)
        await _delete(self.ipr.route("del", **spec))

    # -- shaping -----------------------------------------------------------------------
    #
    # Root HTB qdisc MAJOR:, one class MAJOR:minor per destination MAC (a pfifo
    # leaf), and the hold class MAJOR:ffff. Each destination has a u32 filter
    # at prio NORMAL_PRIO_BASE + minor into its class; while it is paused, a
    # second filter at prio minor (looked at first) sends its frames to the
    # hold class instead. Pausing this way leaves the destination's own
    # class (its tokens, its queue) untouched, so a Restart is immediate.

    async def shaping_setup(self, ifindex: int, queue_limit: int) -> None:
        """Our root HTB qdisc on ``ifindex`` and its hold class; unclassified
        traffic bypasses it (``default 0``: HTB sends it directly, unshaped).

        Refuses (RuntimeError) to replace a root qdisc that someone else put
        there: only the kernel's default (handle 0) or ours is replaced.
        """
        root = await self._root_qdisc(ifindex)
        if root is not None and root["handle"] != 0 and root["handle"] >> 16 != self.major:
            raise RuntimeError(
                f"interface index {ifindex} already has a root qdisc "
                f"{root.get_attr('TCA_KIND')} {root['handle'] >> 16:x}: that dlep did not "
                "install; remove it or set router.kernel.shaping = false"
            )
        if root is not None and root["handle"] >> 16 == self.major:
            await self.ipr.tc("del", index=ifindex, handle=self.major << 16, parent=TC_H_ROOT)
        await self.ipr.tc("add", "htb", index=ifindex, handle=self.major << 16, default=0)
        # The hold class: 64 bit/s (the least whose rate table of 2 KiB
        # frames fits pyroute2's 32-bit tick fields) with a one-octet bucket,
        # so at most the first frame sent to it after a quiet spell gets out
        # (a 1500-octet frame then costs over 3 minutes of tokens); later
        # ones wait in its queue and are dropped beyond queue_limit.
        classid = (self.major << 16) | HOLD_MINOR
        await self.ipr.tc(
            "add-class",
            "htb",
            index=ifindex,
            handle=classid,
            parent=self.major << 16,
            rate="64bit",
            ceil="64bit",
            burst=1,
            cburst=1,
            quantum=MTU_BURST,
        )
        await self.ipr.tc(
            "add",
            "pfifo",
            index=ifindex,
            handle=HOLD_MINOR << 16,
            parent=classid,
            limit=queue_limit,
        )

    async def class_set(
        self,
        ifindex: int,
        minor: int,
        rate_bits: int,
        *,
        create: bool,
        queue_limit: int,
    ) -> None:
        """Create (``create``) or change the HTB class ``major:minor`` to
        ``rate_bits`` (rate and ceiling); a new class gets a pfifo leaf."""
        classid = (self.major << 16) | minor
        rate_bytes = max(1, rate_bits // 8)
        # About 5 ms of traffic, at least two full frames: enough for HTB to
        # keep the rate at modest speeds without long bursts.
        burst = max(2 * MTU_BURST, rate_bytes // 200)
        kw = {
            "index": ifindex,
            "handle": classid,
            "parent": self.major << 16,
            "rate": f"{rate_bits}bit",
            "ceil": f"{rate_bits}bit",
            "burst": burst,
            "cburst": burst,
            "quantum": MTU_BURST,
        }
        if create:
            await self.ipr.tc("add-class", "htb", **kw)
            await self.ipr.tc(
                "add", "pfifo", index=ifindex, handle=minor << 16, parent=classid, limit=queue_limit
            )
        else:
            await self.ipr.tc("change-class", "htb", **kw)

    def _filter_msg(self, ifindex: int, minor: int, hold: bool) -> Any:
        """The u32 filter message of ``minor`` (``hold``: its pause filter,
        at the higher-priority pause prio), without attributes."""
        prio = minor if hold else NORMAL_PRIO_BASE + minor
        msg = _U32FilterMsg()
        msg["family"] = socket.AF_UNSPEC
        msg["index"] = ifindex
        msg["handle"] = 0
        msg["parent"] = self.major << 16
        msg["info"] = socket.htons(ETH_P_ALL) | (prio << 16)
        return msg

    async def filter_add(self, ifindex: int, minor: int, mac: bytes, *, hold: bool = False) -> None:
        """Steer frames to ``mac`` into class ``major:minor`` (``hold``: into
        the hold class, at the higher-priority pause prio)."""
        target = HOLD_MINOR if hold else minor
        msg = self._filter_msg(ifindex, minor, hold)
        msg["attrs"] = [
            ("TCA_KIND", "u32"),
            (
                "TCA_OPTIONS",
                {
                    "attrs": [
                        ("TCA_U32_CLASSID", (self.major << 16) | target),
                        ("TCA_U32_SEL", u32_mac_selector(mac)),
                    ]
                },
            ),
        ]
        await self._list(
            await self.ipr.nlm_request(
                msg,
                msg_type=RTM_NEWTFILTER,
                msg_flags=NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
        )

    async def filter_del(self, ifindex: int, minor: int, *, hold: bool = False) -> None:
        """Remove the filter of ``minor`` (``hold``: its pause filter).

        Built by hand: pyroute2's ``del-filter`` leaves the prio out, and a
        delete without a prio removes every filter of the qdisc.
        """
        msg = self._filter_msg(ifindex, minor, hold)
        msg["attrs"] = [("TCA_KIND", "u32")]
        request = self.ipr.nlm_request(
            msg, msg_type=RTM_DELTFILTER, msg_flags=NLM_F_REQUEST | NLM_F_ACK
        )
        await _delete(self._list_of(request), EINVAL)

    async def class_del(self, ifindex: int, minor: int) -> None:
        """Remove the filters and the class of ``major:minor``."""
        await self.filter_del(ifindex, minor, hold=True)
        await self.filter_del(ifindex, minor)
        await _delete(self.ipr.tc("del-class", index=ifindex, handle=(self.major << 16) | minor))
