"""Emulated radios on loopback (no root): nodes, their modems and routers in
one process through the library API. DLEP follows the measurements and the
timeline; frames take the channel; every drop is counted where it happens."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from pathlib import Path

import pytest

from dlep.emu.channel import DropReason
from dlep.emu.packet import encode_data

from .conftest import rig, scenario

pytestmark = pytest.mark.timeout(60)

MAC_A, MAC_B, MAC_C = "02:e0:00:00:00:01", "02:e0:00:00:00:02", "02:e0:00:00:00:03"


def frame(dst: bytes, src: bytes, size: int = 100) -> bytes:
    return dst + src + b"\x88\xb5" + bytes(size - 14)


async def test_destinations_follow_measurements_timeline_and_break(short_tmp: Path) -> None:
    data = scenario(
        ["a", "b"],
        [{"a": "a", "b": "b", "rate": "20M", "latency": "10ms", "loss": 0.0}],
        timeline=[
            {"at": "2s", "link": ["a", "b"], "set": {"rate": "8M", "latency": "25ms"}},
            {"at": "5s", "link": ["a", "b"], "set": {"up": False}},
        ],
    )
    async with rig(data, short_tmp) as r:
        loop = asyncio.get_running_loop()
        t0 = r.nodes[0].t0
        assert t0 is not None
        await r.wait(lambda: MAC_B in r.router_view(0), 5, "Destination Up of b at a's router")
        m = r.router_view(0)[MAC_B].metrics
        assert (m.mdrt, m.cdrt, m.mdrr, m.cdrr) == (20_000_000,) * 4
        assert m.latency is not None and 9_000 <= m.latency <= 14_000  # RTT/2 of 2 x 10 ms
        assert m.mtu == 1500 and m.rlqr == 100 and m.resources == 100

        # The timeline halves the rate and raises latency at t = 2 s: the router
        # follows within two update intervals (2 x 0.5 s) after the change settles.
        await r.wait(lambda: loop.time() >= t0 + 2.0, 5, "t = 2 s")
        changed = await r.wait(
            lambda: (
                r.router_view(0)[MAC_B].metrics.cdrt == 8_000_000
                and (r.router_view(0)[MAC_B].metrics.latency or 0) > 22_000
            ),
            5,
            "the rate and latency change at the router",
        )
        assert changed - (t0 + 2.0) <= 2 * 0.5 + 1.0  # two intervals + RTT smoothing

        # The break at t = 5 s: Destination Down within the keepalive bound (0.5 s).
        await r.wait(lambda: loop.time() >= t0 + 5.0, 5, "t = 5 s")
        gone = await r.wait(lambda: MAC_B not in r.router_view(0), 3, "Destination Down")
        assert gone - (t0 + 5.0) <= 0.5 + 0.025 + 0.5  # bound + latency + slack
        assert MAC_A not in r.router_view(1)


async def test_frames_flood_learn_and_unicast(short_tmp: Path) -> None:
    data = scenario(
        ["a", "b", "c"],
        [
            {"a": "a", "b": "b", "rate": "100M", "latency": "1ms"},
            {"a": "a", "b": "c", "rate": "100M", "latency": "1ms", "mtu": 1000},
        ],
    )
    async with rig(data, short_tmp, routers=False) as r:
        a, b, c = r.nodes
        await r.wait(lambda: len(a.neighbours.up()) == 2, 5, "a's neighbours")
        host_a, host_b = bytes.fromhex("020000000a0a"), bytes.fromhex("020000000b0b")
        # Broadcast from behind a: flooded to b and c.
        a.send_frame(frame(b"\xff" * 6, host_a), a.now)
        await r.wait(
            lambda: b.links[0].counters.frames_in == 1 and c.links[0].counters.frames_in == 1,
            2,
            "the flood",
        )
        assert b.macs.lookup(host_a, b.now) == 0  # b learned host_a behind a
        # b answers host_a by unicast: only a gets it; a learns host_b behind b.
        b.send_frame(frame(host_a, host_b), b.now)
        await r.wait(lambda: a.links[1].counters.frames_in == 1, 2, "b's answer")
        assert a.macs.lookup(host_b, a.now) == 1
        # Now a's unicast to host_b goes to b alone (c's count stays 1).
        a.send_frame(frame(host_b, host_a), a.now)
        await r.wait(lambda: b.links[0].counters.frames_in == 2, 2, "unicast")
        await asyncio.sleep(0.05)
        assert c.links[0].counters.frames_in == 1
        # Nothing received over the air is relayed: c never saw b's frame.
        assert c.macs.lookup(host_b, c.now) is None
        # A frame bigger than the a-c MTU is dropped on that link only.
        a.send_frame(frame(b"\xff" * 6, host_a, 1200), a.now)
        assert a.links[2].counters.drops.by_reason == {DropReason.MTU: 1}
        # A malformed datagram and one from a stranger are counted at c.
        c.datagram_received(b"junk")
        c.datagram_received(encode_data(7, 2, frame(b"\xff" * 6, host_a)))
        assert c.drops.by_reason == {DropReason.MALFORMED: 1, DropReason.NO_NEIGHBOUR: 1}
        # The link a-b goes out of range: unicast to host_b is "no neighbour".
        a.set_link(1, up=False)
        a.send_frame(frame(host_b, host_a), a.now)
        assert a.links[1].counters.drops.by_reason[DropReason.NO_NEIGHBOUR] == 1
        snap = a.snapshot()
        assert {m["mac"]: m["owner"] for m in snap["macs"]}["02:00:00:00:0b:0b"] == "b"


async def test_queue_overflow_and_channel_loss_are_counted(short_tmp: Path) -> None:
    data = scenario(
        ["a", "b"],
        [{"a": "a", "b": "b", "rate": "1M", "latency": "1ms", "loss": 0.2, "queue": 20000}],
    )
    async with rig(data, short_tmp, routers=False) as r:
        a, b = r.nodes
        src = bytes.fromhex("020000000a0a")
        for _ in range(200):  # 200 kB offered at once to a 1 Mb/s link with a 20 kB queue
            a.send_frame(frame(b"\xff" * 6, src, 1000), a.now)
        drops = a.links[1].counters.drops.by_reason
        assert drops[DropReason.QUEUE_FULL] >= 170
        assert drops.get(DropReason.CHANNEL_LOSS, 0) >= 1
        accepted = 200 - drops[DropReason.QUEUE_FULL]
        await r.wait(
            lambda: a.links[1].counters.frames_out == accepted - drops[DropReason.CHANNEL_LOSS],
            3,
            "the queue to drain",
        )
        assert b.links[0].counters.frames_in == a.links[1].counters.frames_out


async def test_link_characteristics_request_changes_the_link(short_tmp: Path) -> None:
    data = scenario(["a", "b"], [{"a": "a", "b": "b", "rate": "20M", "latency": "2ms"}])
    async with rig(data, short_tmp) as r:
        await r.wait(lambda: MAC_B in r.router_view(0), 5, "Destination Up")
        await r.routers[0].request_link_characteristics(MAC_B, cdrt=5_000_000, cdrr=4_000_000)
        await r.wait(
            lambda: r.nodes[0].links[1].channel.params.granted_rate == 5_000_000,
            3,
            "the grant on a->b",
        )
        # b applies a's request on its link to a (carried in a's probes).
        await r.wait(
            lambda: r.nodes[1].links[0].channel.params.granted_rate == 4_000_000,
            3,
            "the grant on b->a",
        )
        await r.wait(lambda: r.router_view(0)[MAC_B].metrics.cdrt == 5_000_000, 3, "router view")
        # Asking above the maximum is capped and answered Request Denied.
        await r.routers[0].request_link_characteristics(MAC_B, cdrt=50_000_000)
        await r.wait(
            lambda: r.nodes[0].links[1].channel.params.granted_rate == 20_000_000,
            3,
            "the capped grant",
        )


async def test_link_answer_carries_a_maximum_rate_still_held_back(short_tmp: Path) -> None:
    """The link's rate rises while the reporter holds the update back (long
    update interval); a request for more than the old maximum must still be
    answered: the response carries the new MDR, so its CDR is valid with it."""
    data = scenario(
        ["a", "b"],
        [{"a": "a", "b": "b", "rate": "10M", "latency": "2ms"}],
        dlep={"update_interval_ms": 60_000},
    )
    async with rig(data, short_tmp) as r:
        await r.wait(lambda: MAC_B in r.router_view(0), 5, "Destination Up")
        assert r.router_view(0)[MAC_B].metrics.mdrt == 10_000_000
        r.nodes[0].set_link(1, rate=20_000_000)  # held: the last report was just now
        await asyncio.sleep(0.3)
        assert r.router_view(0)[MAC_B].metrics.mdrt == 10_000_000
        await r.routers[0].request_link_characteristics(MAC_B, cdrt=15_000_000)
        await r.wait(
            lambda: r.router_view(0)[MAC_B].metrics.cdrt == 15_000_000,
            3,
            "the answer at the router",
        )
        m = r.router_view(0)[MAC_B].metrics
        assert m.mdrt == 20_000_000
        # The modem's table took the answer too (nothing it holds breaks cdr <= mdr).
        table = {key.mac_str: metrics for key, metrics in r.modems[0].known_destinations().items()}
        assert (table[MAC_B].mdrt, table[MAC_B].cdrt) == (20_000_000, 15_000_000)


def arp_from(mac: str, ip: str) -> bytes:
    src = bytes.fromhex(mac.replace(":", ""))
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src
    body += ipaddress.IPv4Address(ip).packed + bytes(6) + bytes(4)
    return b"\xff" * 6 + src + b"\x08\x06" + body


async def test_an_address_claimed_by_two_neighbours_stays_with_the_first(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The modem refuses an address another destination owns (RFC 8175
    §13.8.1); the node does not offer it, and takes it once the owner is gone."""
    data = scenario(
        ["a", "b", "c"],
        [
            {"a": "a", "b": "b", "rate": "10M", "latency": "1ms"},
            {"a": "a", "b": "c", "rate": "10M", "latency": "1ms"},
        ],
    )
    async with rig(data, short_tmp, routers=False) as r:
        a, b, _c = r.nodes
        await r.wait(lambda: len(a.reported) == 2, 5, "both destinations at a's modem")
        a.datagram_received(encode_data(1, 0, arp_from(MAC_B, "10.9.0.5")))
        a.datagram_received(encode_data(2, 0, arp_from(MAC_C, "10.9.0.5")))
        a.datagram_received(encode_data(2, 0, arp_from(MAC_C, "10.9.0.6")))

        def owners() -> dict[str, tuple[str, ...]]:
            return {k.mac_str: addrs for k, _m, addrs, _up in r.modems[0].destination_table()}

        await r.wait(
            lambda: owners() == {MAC_B: ("10.9.0.5",), MAC_C: ("10.9.0.6",)}, 3, "the table"
        )
        assert a.links[2].contested == {"10.9.0.5"}
        assert "modem refused" not in caplog.text
        # b goes out of range: its address is free, and c's next claim takes it.
        a.set_link(1, up=False)
        b.set_link(0, up=False)
        await r.wait(lambda: MAC_B not in owners(), 3, "b's Destination Down")
        a.datagram_received(encode_data(2, 0, arp_from(MAC_C, "10.9.0.5")))
        await r.wait(lambda: owners() == {MAC_C: ("10.9.0.5", "10.9.0.6")}, 3, "the address with c")
        assert "modem refused" not in caplog.text


async def test_link_request_with_hop_control_or_link_id(short_tmp: Path) -> None:
    """An RFC 8629 Hop Control other than Reset is denied (a radio is one
    hop); a request naming a link identifier names no destination of ours."""
    from dlep.daemon import LinkDecision, LinkRequest
    from dlep.ext.link_id import LinkIdentifier
    from dlep.ext.multihop import HopControl, HopControlAction
    from dlep.fsm import Metrics
    from dlep.wire import DataItem, StatusCode

    data = scenario(["a", "b"], [{"a": "a", "b": "b", "rate": "10M", "latency": "2ms"}])
    async with rig(data, short_tmp, routers=False) as r:
        a = r.nodes[0]
        await r.wait(lambda: 1 in a.reported, 5, "b reported at a")
        mac = bytes.fromhex(MAC_B.replace(":", ""))

        def ask(*extra: DataItem, ident: tuple[DataItem, ...] = ()) -> LinkDecision:
            return a.link_request(LinkRequest("s1", mac, None, None, None, Metrics(), extra, ident))

        assert ask(HopControl(HopControlAction.RESET)).status == StatusCode.SUCCESS
        term = ask(HopControl(HopControlAction.TERMINATE))
        assert term.status == StatusCode.REQUEST_DENIED and "one hop" in term.text
        assert term.metrics.mdrt == 10_000_000  # what the link does, with its maximum
        other = ask(ident=(LinkIdentifier(b"\x00\x00\x00\x07"),))
        assert (other.status, other.text) == (StatusCode.REQUEST_DENIED, "no such destination")
