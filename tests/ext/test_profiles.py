"""Interoperability profiles: LL-DLEP and OONF code points at the wire boundary.

Peer bytes are built by hand with the non-standard codes of
``/work/shared/rfc/INDEX.md`` (LL-DLEP: 65521/65411, 65524/65415/65416;
OONF: 65523, items 26/27 swapped), not produced by the profile code.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest

from dlep.config import ConfigError, parse_modem_config, parse_router_config
from dlep.daemon import ModemDaemon, RouterDaemon, SessionEvent
from dlep.ext.latency_range import LatencyRange, LatencyRangeExtension, LatencyRangeReported
from dlep.ext.link_id import LinkIdentifier, LinkIdentifierLength, LinkIdExtension
from dlep.ext.multihop import (
    HopControlAction,
    HopControlRequested,
    HopCount,
    HopCountReported,
    MultiHopExtension,
    hop_control_request_items,
    hop_count,
)
from dlep.ext.profiles import LL_DLEP, OONF, Profile, ProfileError, profile_by_name
from dlep.fsm import DestinationUp, Event, Role, Session, SessionUp, State
from dlep.wire import (
    HeartbeatInterval,
    Ipv4Address,
    MacAddress,
    MessageType,
    PeerType,
    Registry,
    Status,
    StatusCode,
    core_registry,
    encode_items,
)
from tests.unit.fsm_harness import DECLARED, HB_MS, MAC1, MAC1_B, modem_config, router_config

M = MessageType


def registry() -> Registry:
    reg = core_registry()
    for ext in (MultiHopExtension(), LatencyRangeExtension(), LinkIdExtension()):
        ext.register(reg)
    return reg


REG = registry()


def tlv(t: int, value: bytes) -> bytes:
    return struct.pack("!HH", t, len(value)) + value


def message_bytes(mtype: int, *tlvs: bytes) -> bytes:
    body = b"".join(tlvs)
    return struct.pack("!HH", mtype, len(body)) + body


def parse(data: bytes) -> list[tuple[int, list[tuple[int, bytes]]]]:
    """Split a byte stream into (message type, [(item type, value)]) by hand."""
    out: list[tuple[int, list[tuple[int, bytes]]]] = []
    off = 0
    while off < len(data):
        mtype, length = struct.unpack_from("!HH", data, off)
        body = data[off + 4 : off + 4 + length]
        items: list[tuple[int, bytes]] = []
        i = 0
        while i < len(body):
            t, n = struct.unpack_from("!HH", body, i)
            items.append((t, body[i + 4 : i + 4 + n]))
            i += 4 + n
        out.append((mtype, items))
        off += 4 + length
    return out


def exts_of(items: list[tuple[int, bytes]]) -> set[int]:
    (value,) = [v for t, v in items if t == 6]  # Extensions Supported
    return set(struct.unpack(f"!{len(value) // 2}H", value))


def sir_core() -> bytes:
    """Core part of a Session Initialization Response (standard items)."""
    return encode_items([Status(0), PeerType("radio"), HeartbeatInterval(HB_MS), *DECLARED.items()])


LL_SIR = message_bytes(
    M.SESSION_INITIALIZATION_RESPONSE,
    sir_core(),
    tlv(6, struct.pack("!HH", 65521, 65524)),  # Extensions Supported
    tlv(65411, struct.pack("!QQ", 900, 100)),  # Latency Range: max, min
)
LL_DEST_UP = message_bytes(
    M.DESTINATION_UP,
    tlv(7, MAC1_B),
    tlv(65415, bytes((0x80, 3))),  # Hop Count: P flag, 3 hops
)


def ll_router(profile: Profile | None) -> Session:
    s = Session(
        Role.ROUTER,
        router_config(
            registry=REG,
            plugins=(MultiHopExtension(), LatencyRangeExtension()),
            wire_translation=profile,
        ),
    )
    s.start(0.0)
    return s


# --------------------------------------------------------------------------
# Profile objects
# --------------------------------------------------------------------------


def test_profile_codes() -> None:
    assert LL_DLEP.extension_to_wire(4) == 65521
    assert LL_DLEP.extension_to_wire(1) == 65524
    assert LL_DLEP.extension_from_wire(65524) == 1
    assert LL_DLEP.item_to_wire(28) == 65411
    assert (LL_DLEP.item_to_wire(21), LL_DLEP.item_to_wire(22)) == (65415, 65416)
    assert LL_DLEP.item_from_wire(65416) == 22
    assert LL_DLEP.extension_to_wire(2) == 2  # unmapped: unchanged
    assert OONF.extension_to_wire(3) == 65523
    assert (OONF.item_to_wire(26), OONF.item_to_wire(27)) == (27, 26)
    assert (OONF.item_from_wire(26), OONF.item_from_wire(27)) == (27, 26)


def test_profile_by_name() -> None:
    assert profile_by_name(None) is None
    assert profile_by_name("standard") is None
    assert profile_by_name("ll-dlep") is LL_DLEP
    assert profile_by_name("oonf") is OONF
    with pytest.raises(ProfileError, match="unknown interoperability profile 'x'"):
        profile_by_name("x")


def test_profile_must_be_one_to_one() -> None:
    with pytest.raises(ProfileError, match="mapped twice"):
        Profile("bad", item_map={21: 65000, 22: 65000})
    with pytest.raises(ProfileError, match="Extensions Supported"):
        Profile("bad", item_map={6: 65000})


def test_rewrite_is_tolerant_of_malformed_bytes() -> None:
    data = message_bytes(M.HEARTBEAT) + b"\x00"
    assert LL_DLEP.from_wire(data) == data
    truncated = message_bytes(M.DESTINATION_UPDATE, tlv(65411, b"\x00" * 16))[:-3]
    assert LL_DLEP.from_wire(truncated) == truncated  # left for the decoder to report
    assert LL_DLEP.from_wire(b"\x00") == b"\x00"


# --------------------------------------------------------------------------
# LL-DLEP: a hand-built modem against our router
# --------------------------------------------------------------------------


def test_ll_dlep_router_sends_ll_codes() -> None:
    r = ll_router(LL_DLEP)
    ((mtype, items),) = parse(r.data_to_send())
    assert mtype == M.SESSION_INITIALIZATION
    assert exts_of(items) == {65521, 65524}


def test_ll_dlep_modem_accepted_with_profile() -> None:
    r = ll_router(LL_DLEP)
    r.data_to_send()
    r.receive_data(LL_SIR, 0.1)
    assert r.state is State.IN_SESSION
    assert r.extensions == frozenset({1, 4})
    events = r.events()
    assert (
        LatencyRangeReported(None, LatencyRange(100, 900), M.SESSION_INITIALIZATION_RESPONSE)
        in events
    )
    (up,) = [e for e in events if isinstance(e, SessionUp)]
    assert up.extensions == frozenset({1, 4})

    r.receive_data(LL_DEST_UP, 0.2)
    events = r.events()
    assert HopCountReported(MAC1_B, HopCount(3, True), M.DESTINATION_UP) in events
    info = r.destination(MAC1)
    assert info is not None and hop_count(info) == 3
    # Our answers, and a Hop Control request, go out with LL-DLEP codes.
    r.request_link_characteristics(
        MAC1, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION), now=0.2
    )
    sent = parse(r.data_to_send())
    assert [m for m, _ in sent] == [M.DESTINATION_UP_RESPONSE, M.LINK_CHARACTERISTICS_REQUEST]
    lcr = dict(sent[1][1])
    assert lcr[65416] == struct.pack("!H", HopControlAction.DIRECT_CONNECTION)
    assert 22 not in lcr
    assert r.state is State.IN_SESSION


def test_ll_dlep_modem_without_profile() -> None:
    """Standard codes by default: 65521/65524 are not our extensions, and an
    item 65411 is an unknown data item (130)."""
    r = ll_router(None)
    ((_, items),) = parse(r.data_to_send())
    assert exts_of(items) == {1, 4}
    r.receive_data(LL_SIR, 0.1)
    assert r.state is not State.IN_SESSION
    assert r.extensions == frozenset()
    sent = parse(r.data_to_send())
    assert sent and sent[0][0] == M.SESSION_TERMINATION
    assert dict(sent[0][1])[1][0] == StatusCode.INVALID_DATA  # Status item


def test_ll_dlep_without_items_negotiates_nothing_without_profile() -> None:
    sir = message_bytes(
        M.SESSION_INITIALIZATION_RESPONSE, sir_core(), tlv(6, struct.pack("!HH", 65521, 65524))
    )
    r = Session(Role.ROUTER, router_config(registry=REG, plugins=(MultiHopExtension(),)))
    r.start(0.0)
    r.data_to_send()
    r.receive_data(sir, 0.1)
    assert r.state is State.IN_SESSION
    assert r.extensions == frozenset()
    r.receive_data(LL_DEST_UP, 0.2)
    sent = parse(r.data_to_send())
    assert sent[-1][0] == M.SESSION_TERMINATION
    assert dict(sent[-1][1])[1][0] == StatusCode.INVALID_DATA


# --------------------------------------------------------------------------
# OONF: Link Identifier as 65523 with items 26/27 swapped
# --------------------------------------------------------------------------


def oonf_router(profile: Profile | None) -> tuple[Session, LinkIdExtension]:
    ext = LinkIdExtension()
    s = Session(Role.ROUTER, router_config(registry=REG, plugins=(ext,), wire_translation=profile))
    s.start(0.0)
    return s, ext


OONF_SIR = message_bytes(
    M.SESSION_INITIALIZATION_RESPONSE,
    sir_core(),
    tlv(6, struct.pack("!H", 65523)),
    tlv(27, struct.pack("!H", 6)),  # OONF 27 = Link Identifier Length
)
OONF_DEST_UP = message_bytes(
    M.DESTINATION_UP,
    tlv(7, MAC1_B),
    tlv(26, b"\x00\x00\x00\x00\x00\x09"),  # OONF 26 = Link Identifier
    tlv(8, b"\x01\x0a\x01\x00\x01"),  # IPv4 Address add 10.1.0.1
)


def test_oonf_router_sends_oonf_codes() -> None:
    r, _ = oonf_router(OONF)
    ((_, items),) = parse(r.data_to_send())
    assert exts_of(items) == {65523}


def test_oonf_modem_accepted_with_profile() -> None:
    r, ext = oonf_router(OONF)
    r.data_to_send()
    r.receive_data(OONF_SIR, 0.1)
    assert r.state is State.IN_SESSION
    assert r.extensions == frozenset({3})
    assert ext.state(r).length == 6
    r.receive_data(OONF_DEST_UP, 0.2)
    assert r.state is State.IN_SESSION
    ups = [e for e in r.events() if isinstance(e, DestinationUp)]
    assert len(ups) == 1
    ((mtype, items),) = parse(r.data_to_send())
    assert mtype == M.DESTINATION_UP_RESPONSE
    # The response names the destination by MAC and Link Identifier, OONF style.
    assert dict(items).get(26) == b"\x00\x00\x00\x00\x00\x09"
    assert 27 not in dict(items)


def test_oonf_modem_without_profile() -> None:
    r, _ = oonf_router(None)
    r.data_to_send()
    r.receive_data(OONF_SIR, 0.1)
    assert r.extensions == frozenset()
    assert r.state is not State.IN_SESSION


# --------------------------------------------------------------------------
# Engine <-> engine, both sides under the same profile
# --------------------------------------------------------------------------


def pump(a: Session, b: Session, now: float) -> list[bytes]:
    wire: list[bytes] = []
    for _ in range(50):
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            break
        wire += [da, db]
        if da:
            b.receive_data(da, now)
        if db:
            a.receive_data(db, now)
    return wire


def test_round_trip_ll_dlep() -> None:
    r = Session(
        Role.ROUTER,
        router_config(
            registry=REG,
            plugins=(MultiHopExtension(), LatencyRangeExtension()),
            wire_translation=LL_DLEP,
        ),
    )
    m = Session(
        Role.MODEM,
        modem_config(
            registry=REG,
            plugins=(MultiHopExtension(), LatencyRangeExtension(default=(10, 20))),
            wire_translation=LL_DLEP,
        ),
    )
    r.start(0.0)
    m.start(0.0)
    wire = pump(r, m, 0.1)
    assert r.state is State.IN_SESSION and m.state is State.IN_SESSION
    assert r.extensions == m.extensions == frozenset({1, 4})
    m.add_destination(MAC1, extra=[HopCount(2), LatencyRange(5, 50)], now=0.15)
    wire += pump(r, m, 0.2)
    info = r.destination(MAC1)
    assert info is not None and hop_count(info) == 2
    r.request_link_characteristics(
        MAC1, extra=hop_control_request_items(HopControlAction.TERMINATE), now=0.25
    )
    wire += pump(r, m, 0.3)
    evs: list[Event] = m.events()
    assert HopControlRequested(MAC1_B, HopControlAction.TERMINATE) in evs
    types = {t for blob in wire for _, items in parse(blob) for t, _ in items}
    assert {65411, 65415, 65416} <= types
    assert not types & {21, 22, 28}


def test_round_trip_oonf() -> None:
    r = Session(
        Role.ROUTER,
        router_config(registry=REG, plugins=(LinkIdExtension(),), wire_translation=OONF),
    )
    m = Session(
        Role.MODEM, modem_config(registry=REG, plugins=(LinkIdExtension(6),), wire_translation=OONF)
    )
    r.start(0.0)
    m.start(0.0)
    wire = pump(r, m, 0.1)
    assert r.extensions == m.extensions == frozenset({3})
    m.add_destination(
        MAC1,
        addresses=[Ipv4Address("10.1.0.1")],
        extra=[LinkIdentifier(b"\x00\x00\x00\x00\x00\x01")],
        now=0.15,
    )
    wire += pump(r, m, 0.2)
    assert r.state is State.IN_SESSION and m.state is State.IN_SESSION
    assert [e for e in r.events() if isinstance(e, DestinationUp)]
    sir = [items for blob in wire for t, items in parse(blob) if t == 2]
    assert (27, struct.pack("!H", 6)) in sir[0]  # Length under OONF's 27
    assert LinkIdentifierLength(6).encode()[:2] == b"\x00\x1a"  # standard 26 above the wire


def test_mac_item_untouched() -> None:
    assert LL_DLEP.to_wire(message_bytes(M.HEARTBEAT, tlv(7, MAC1_B))) == message_bytes(
        M.HEARTBEAT, tlv(7, MAC1_B)
    )
    assert MacAddress(MAC1_B).TYPE == 7


# --------------------------------------------------------------------------
# Configuration and daemons
# --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configs(port: int, router_profile: dict[str, Any], modem_profile: str) -> tuple[Any, Any]:
    timers = {"heartbeat_interval_ms": 1000}
    exts = ["multi-hop", "latency-range"]
    modem = parse_modem_config(
        {
            "network": {"tcp_port": port, "listen_addresses": ["127.0.0.1"]},
            "timers": timers,
            "api": {"enabled": False},
            "modem": {"extensions": exts, "profile": modem_profile},
        }
    )
    router = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers,
            "api": {"enabled": False},
            "router": {
                "discovery": False,
                "static_peers": [{"address": "127.0.0.1", "port": port, **router_profile}],
                "extensions": exts,
            },
        }
    )
    return router, modem


def test_config_profile_keys() -> None:
    rcfg, mcfg = _configs(1, {"profile": "ll-dlep"}, "oonf")
    assert rcfg.router.static_peers[0].profile == "ll-dlep"
    assert rcfg.router.profile == "standard"
    assert mcfg.modem.profile == "oonf"
    assert mcfg.session_config().wire_translation is OONF
    assert rcfg.session_config().wire_translation is None
    with pytest.raises(ConfigError, match="unknown interoperability profile 'olsr'"):
        _configs(1, {"profile": "olsr"}, "standard")
    with pytest.raises(ConfigError, match="unknown interoperability profile"):
        _configs(1, {}, "ll_dlep ")


async def _wait(sub: Any, kind: type, timeout: float = 10.0) -> Any:
    async def loop() -> Any:
        async for ev in sub:
            if isinstance(ev, SessionEvent) and isinstance(ev.event, kind):
                return ev.event
        return None

    return await asyncio.wait_for(loop(), timeout)


@pytest.mark.timeout(30)
async def test_daemons_on_loopback_with_ll_dlep_profile() -> None:
    port = _free_port()
    rcfg, mcfg = _configs(port, {"profile": "ll-dlep"}, "ll-dlep")
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    sub = router.subscribe()
    try:
        up = await _wait(sub, SessionUp)
        assert up.extensions == frozenset({1, 4})
        rs = next(iter(router._conns.values())).proto.session
        assert rs.config.wire_translation is LL_DLEP
        ms = next(iter(modem._conns.values())).proto.session
        assert ms.config.wire_translation is LL_DLEP
        await modem.add_destination("02:00:00:00:00:07")
        ms.update_destination(
            "02:00:00:00:00:07", extra=[HopCount(3)], now=asyncio.get_running_loop().time()
        )
        for c in modem._conns.values():
            c.proto.flush()
        deadline = asyncio.get_running_loop().time() + 5
        while asyncio.get_running_loop().time() < deadline:
            dests = router.destinations()
            if dests and hop_count(dests[0][1]) == 3:
                break
            await asyncio.sleep(0.05)
        assert hop_count(router.destinations()[0][1]) == 3
    finally:
        await router.shutdown()
        await modem.shutdown()


@pytest.mark.timeout(30)
async def test_daemons_profile_mismatch_negotiates_nothing() -> None:
    port = _free_port()
    rcfg, mcfg = _configs(port, {"profile": "ll-dlep"}, "standard")
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    sub = router.subscribe()
    try:
        up = await _wait(sub, SessionUp)
        assert up.extensions == frozenset()
    finally:
        await router.shutdown()
        await modem.shutdown()
