"""RFC 8629 Multi-Hop Forwarding: codec, registry placements, hooks, session flows.

Byte vectors and rules are typed in from RFC 8629 (§3.1 Hop Count, §3.2 Hop
Control), not taken from the codec. Session-flow tests that need the engine
to call extension hooks are skipped until ``SessionConfig.plugins`` exists.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlep.ext import ExtensionViolation
from dlep.ext.multihop import (
    HOP_COUNT_MESSAGES,
    HopControl,
    HopControlAction,
    HopControlRequested,
    HopCount,
    HopCountReported,
    MultiHopExtension,
    action_name,
    direct_connection_possible,
    hop_control_request_items,
    hop_control_session_items,
    hop_count,
    hop_count_item,
    hop_count_items,
)
from dlep.fsm import (
    DestinationInfo,
    DestinationUp,
    DestKey,
    Event,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    Role,
    Session,
    SessionConfig,
    SessionError,
    State,
)
from dlep.wire import (
    OPTIONAL,
    CurrentDataRateReceive,
    DataItem,
    DecodeError,
    EncodeError,
    ItemFormatError,
    Latency,
    MacAddress,
    Message,
    MessageType,
    Registry,
    Status,
    StatusCode,
    core_registry,
    decode_message,
    encode_message,
)
from tests.unit.fsm_harness import (
    MAC1,
    MAC1_B,
    Pair,
    mac,
    modem_config,
    msg,
    of_type,
    raw_header,
    router_config,
    status_of,
)
from tests.unit.strategies import messages

M = MessageType
MH = 1  # Extension Type Value, RFC 8629 §5.1

# --------------------------------------------------------------------------
# Strategies and helpers
# --------------------------------------------------------------------------

hop_counts = st.builds(HopCount, st.integers(0, 255), st.booleans())
hop_controls = st.builds(HopControl, st.integers(0, 0xFFFF))
EXTRA: dict[type[DataItem], st.SearchStrategy[DataItem]] = {
    HopCount: hop_counts,
    HopControl: hop_controls,
}


def registry() -> Registry:
    reg = core_registry()
    MultiHopExtension().register(reg)
    return reg


REG = registry()


def tlv(t: int, value: bytes) -> bytes:
    return struct.pack("!HH", t, len(value)) + value


@dataclass(eq=False)
class FakeSession:
    """Just what the hooks use: role, config, ext_state and ``emit``."""

    role: Role
    config: SessionConfig = field(default_factory=SessionConfig)
    emitted: list[Event] = field(default_factory=list)
    ext_state: dict[int, Any] = field(default_factory=dict)

    def emit(self, event: Event) -> None:
        self.emitted.append(event)


def fake(role: Role) -> tuple[FakeSession, Session]:
    f = FakeSession(role)
    return f, cast(Session, f)


# --------------------------------------------------------------------------
# Items: RFC vectors, round trips, validation, fuzz
# --------------------------------------------------------------------------


def test_rfc_figure_vectors() -> None:
    # §3.1: type 21, length 2, |P|Reserved(7)|Hop Count(8)|
    assert HopCount(3, True).encode() == bytes.fromhex("0015 0002 80 03")
    assert HopCount(1).encode() == bytes.fromhex("0015 0002 00 01")
    assert HopCount(255).encode() == bytes.fromhex("0015 0002 00 ff")
    assert HopCount(0).encode() == bytes.fromhex("0015 0002 00 00")
    # §3.2: type 22, length 2, 16-bit action; Table 1 values.
    for action, value in ((0, "0000"), (1, "0001"), (2, "0002"), (3, "0003")):
        assert HopControl(action).encode() == bytes.fromhex("0016 0002" + value)
    assert [a.value for a in HopControlAction] == [0, 1, 2, 3]
    assert [action_name(a) for a in range(4)] == [
        "RESET",
        "TERMINATE",
        "DIRECT_CONNECTION",
        "SUPPRESS_FORWARDING",
    ]
    assert action_name(4) == "UNASSIGNED_4"
    assert action_name(65520) == "PRIVATE_65520"
    assert action_name(65535) == "RESERVED"
    assert HopCount.decode_value(bytes.fromhex("8003")) == HopCount(3, True)
    assert HopControl.decode_value(bytes.fromhex("0003")) == HopControl(3)


@given(hop_counts)
def test_hop_count_round_trip(item: HopCount) -> None:
    assert HopCount.decode_value(item.encode_value()) == item
    assert item.encode()[:4] == struct.pack("!HH", 21, 2)


@given(hop_controls)
def test_hop_control_round_trip(item: HopControl) -> None:
    assert HopControl.decode_value(item.encode_value()) == item
    assert item.encode()[:4] == struct.pack("!HH", 22, 2)


@given(st.sampled_from([0x00, 0x80]), st.integers(0, 255))
def test_hop_count_canonical_bytes(flags: int, hops: int) -> None:
    raw = bytes((flags, hops))
    assert HopCount.decode_value(raw).encode_value() == raw


@given(st.integers(0, 0x7F), st.booleans(), st.integers(0, 255))
def test_hop_count_reserved_bits_ignored(reserved: int, p: bool, hops: int) -> None:
    """§3.1: Reserved MUST be zero from the sender, ignored by the receiver."""
    item = HopCount.decode_value(bytes(((0x80 if p else 0) | reserved, hops)))
    assert item == HopCount(hops, p)
    assert item.encode_value()[0] & 0x7F == 0


@given(st.binary(max_size=24))
def test_fuzz_hop_count(data: bytes) -> None:
    try:
        item = HopCount.decode_value(data)
    except ItemFormatError:
        assert len(data) != 2
    else:
        assert len(data) == 2 and item.hops == data[1]


@given(st.binary(max_size=24))
def test_fuzz_hop_control(data: bytes) -> None:
    try:
        item = HopControl.decode_value(data)
    except ItemFormatError:
        assert len(data) != 2
    else:
        assert item.encode_value() == data


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"hops": -1}, "hops"),
        ({"hops": 256}, "hops"),
        ({"hops": "3"}, "hops"),
        ({"hops": True}, "hops"),
        ({"hops": 2, "potentially_direct": 1}, "potentially_direct"),
    ],
)
def test_hop_count_validation(kwargs: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ItemFormatError, match=re.escape(f"HopCount.{field_name}")):
        HopCount(**kwargs)


@pytest.mark.parametrize("action", [-1, 0x10000, "1", None, False])
def test_hop_control_validation(action: Any) -> None:
    with pytest.raises(ItemFormatError, match=r"HopControl\.action"):
        HopControl(action)


@pytest.mark.parametrize("length", [0, 1, 3, 4])
def test_wrong_lengths(length: int) -> None:
    for cls in (HopCount, HopControl):
        with pytest.raises(ItemFormatError, match="length"):
            cls.decode_value(bytes(length))


def test_hop_count_properties() -> None:
    assert HopCount(3, True).direct_possible
    assert not HopCount(1, True).direct_possible  # §3.1: P ignored at one hop
    assert not HopCount(3).direct_possible
    assert HopCount(255).unknown and not HopCount(254).unknown
    assert not HopCount(0).reachable and HopCount(1).reachable
    assert HopControl(2).known_action is HopControlAction.DIRECT_CONNECTION
    assert HopControl(9).known_action is None
    assert HopControl(3).name == "SUPPRESS_FORWARDING"


# --------------------------------------------------------------------------
# Application helpers
# --------------------------------------------------------------------------


def test_hop_count_absent_means_one() -> None:
    info = DestinationInfo(MAC1_B)
    assert hop_count(info) == 1  # §3.1: absence MUST be read as 1
    assert hop_count_item(info) is None
    assert not direct_connection_possible(info)
    info = DestinationInfo(MAC1_B, extra=(HopCount(4, True),))
    assert hop_count(info) == 4
    assert direct_connection_possible(info)
    assert hop_count(DestinationInfo(MAC1_B, extra=(HopCount(255),))) == 255


def test_hop_count_items() -> None:
    assert hop_count_items(3, True) == (HopCount(3, True),)
    for mt in HOP_COUNT_MESSAGES:
        assert hop_count_items(2, message_type=mt) == (HopCount(2),)
    assert hop_count_items(0, message_type=M.LINK_CHARACTERISTICS_RESPONSE) == (HopCount(0),)
    for mt in (M.DESTINATION_UP, M.DESTINATION_UPDATE, M.DESTINATION_ANNOUNCE_RESPONSE):
        with pytest.raises(ValueError, match="only allowed in a Link Characteristics Response"):
            hop_count_items(0, message_type=mt)
    with pytest.raises(ValueError, match="not carried in"):
        hop_count_items(2, message_type=M.SESSION_UPDATE)
    with pytest.raises(ItemFormatError):
        hop_count_items(256)


def test_hop_control_helpers() -> None:
    for a in HopControlAction:
        (item,) = hop_control_request_items(a)
        assert item == HopControl(a.value) and type(item.action) is int
    assert hop_control_request_items(65520) == (HopControl(65520),)  # private use
    assert hop_control_session_items(HopControlAction.RESET) == (HopControl(0),)
    assert hop_control_session_items(HopControlAction.SUPPRESS_FORWARDING) == (HopControl(3),)
    for a in (HopControlAction.TERMINATE, HopControlAction.DIRECT_CONNECTION):
        with pytest.raises(ValueError, match="not a Session Update"):
            hop_control_session_items(a)
    for f in (hop_control_request_items, hop_control_session_items):
        with pytest.raises(ValueError, match="reserved"):
            f(65535)
    with pytest.raises(ItemFormatError):
        hop_control_request_items(-1)


# --------------------------------------------------------------------------
# Registry: placements per RFC 8629
# --------------------------------------------------------------------------

# Typed in from the RFC: §3.1 and §3.2.
HOP_COUNT_IN = {M.DESTINATION_UP, M.DESTINATION_UPDATE, 10, M.LINK_CHARACTERISTICS_RESPONSE}
HOP_CONTROL_IN = {M.SESSION_UPDATE, M.LINK_CHARACTERISTICS_REQUEST}


def test_extension_declaration() -> None:
    ext = MultiHopExtension()
    assert (ext.code, ext.name) == (1, "multi-hop")
    assert {c.TYPE for c in ext.items} == {21, 22}
    assert set(HOP_COUNT_MESSAGES) == HOP_COUNT_IN


def test_placements() -> None:
    for code, spec in REG.messages.items():
        assert (spec.rules.get(21) == OPTIONAL) == (code in HOP_COUNT_IN), spec.name
        assert (spec.rules.get(22) == OPTIONAL) == (code in HOP_CONTROL_IN), spec.name
        assert 21 not in spec.accept_also and 22 not in spec.accept_also
    assert REG.item_extension[21] == MH and REG.item_extension[22] == MH


def test_core_registry_untouched() -> None:
    core = core_registry()
    assert 21 not in core.items and 22 not in core.items
    assert core.messages[M.LINK_CHARACTERISTICS_REQUEST].one_of == [frozenset({14, 15, 16})]
    assert REG.messages[M.LINK_CHARACTERISTICS_REQUEST].one_of == [frozenset({14, 15, 16, 22})]
    again = core_registry()
    MultiHopExtension().register(again)
    MultiHopExtension().register(again)  # idempotent
    assert again.messages[M.LINK_CHARACTERISTICS_REQUEST].one_of == [frozenset({14, 15, 16, 22})]


@pytest.mark.parametrize("mtype", sorted(HOP_COUNT_IN))
def test_hop_count_allowed(mtype: int) -> None:
    extra: tuple[DataItem, ...] = (Status(0),) if mtype in (10, 15) else ()
    m = Message(mtype, (MacAddress(MAC1_B), *extra, HopCount(3, True)))
    raw = encode_message(m, REG)
    assert decode_message(raw, REG, extensions=frozenset({MH})) == m
    # At most one (§3.1: one hop count per destination message).
    two = Message(mtype, (*m.items, HopCount(4)))
    with pytest.raises(EncodeError, match="at most one"):
        encode_message(two, REG)
    with pytest.raises(DecodeError) as ei:
        decode_message(encode_message(two, REG, validate=False), REG)
    assert ei.value.status == StatusCode.INVALID_DATA


@pytest.mark.parametrize(
    ("mtype", "items"),
    [
        (M.DESTINATION_DOWN, (MacAddress(MAC1_B),)),
        (M.DESTINATION_ANNOUNCE, (MacAddress(MAC1_B),)),
        (M.DESTINATION_UP_RESPONSE, (MacAddress(MAC1_B), Status(0))),
        (M.SESSION_UPDATE, ()),
        (M.LINK_CHARACTERISTICS_REQUEST, (MacAddress(MAC1_B), Latency(5))),
        (M.HEARTBEAT, ()),
    ],
)
def test_hop_count_refused(mtype: int, items: tuple[DataItem, ...]) -> None:
    m = Message(mtype, (*items, HopCount(2)))
    with pytest.raises(EncodeError, match="not allowed"):
        encode_message(m, REG)
    with pytest.raises(DecodeError) as ei:
        decode_message(encode_message(m, REG, validate=False), REG)
    assert ei.value.status == StatusCode.INVALID_DATA


@pytest.mark.parametrize(
    ("mtype", "items"),
    [
        (M.DESTINATION_UP, (MacAddress(MAC1_B),)),
        (M.DESTINATION_UPDATE, (MacAddress(MAC1_B),)),
        (M.LINK_CHARACTERISTICS_RESPONSE, (MacAddress(MAC1_B), Status(0))),
        (M.HEARTBEAT, ()),
    ],
)
def test_hop_control_refused(mtype: int, items: tuple[DataItem, ...]) -> None:
    m = Message(mtype, (*items, HopControl(0)))
    with pytest.raises(EncodeError, match="not allowed"):
        encode_message(m, REG)
    with pytest.raises(DecodeError) as ei:
        decode_message(encode_message(m, REG, validate=False), REG)
    assert ei.value.status == StatusCode.INVALID_DATA


def test_lcr_with_only_hop_control() -> None:
    """§3.2: a Link Characteristics Request may carry just the Hop Control."""
    m = Message(M.LINK_CHARACTERISTICS_REQUEST, (MacAddress(MAC1_B), HopControl(2)))
    assert decode_message(encode_message(m, REG), REG, extensions=frozenset({MH})) == m
    both = Message(
        M.LINK_CHARACTERISTICS_REQUEST,
        (MacAddress(MAC1_B), CurrentDataRateReceive(10), HopControl(0)),
    )
    assert decode_message(encode_message(both, REG), REG) == both
    with pytest.raises(EncodeError, match="at least one of"):
        encode_message(Message(M.LINK_CHARACTERISTICS_REQUEST, (MacAddress(MAC1_B),)), REG)
    su = Message(M.SESSION_UPDATE, (HopControl(3),))
    assert decode_message(encode_message(su, REG), REG) == su


@pytest.mark.parametrize(
    ("mtype", "items"),
    [
        (M.DESTINATION_UPDATE, (MacAddress(MAC1_B), HopCount(2))),
        (M.LINK_CHARACTERISTICS_REQUEST, (MacAddress(MAC1_B), Latency(1), HopControl(2))),
        (M.SESSION_UPDATE, (HopControl(0),)),
    ],
)
def test_not_negotiated_is_130(mtype: int, items: tuple[DataItem, ...]) -> None:
    raw = encode_message(Message(mtype, items), REG)
    for negotiated in (frozenset(), frozenset({2, 3, 4})):
        with pytest.raises(DecodeError) as ei:
            decode_message(raw, REG, extensions=negotiated)
        assert ei.value.status == StatusCode.INVALID_DATA
        assert "not in use" in ei.value.reason
    assert decode_message(raw, REG, extensions=frozenset({MH})).items == items


def test_core_registry_rejects_items() -> None:
    raw = encode_message(Message(M.DESTINATION_UPDATE, (MacAddress(MAC1_B), HopCount(2))), REG)
    with pytest.raises(DecodeError) as ei:
        decode_message(raw)
    assert ei.value.status == StatusCode.INVALID_DATA


@pytest.mark.parametrize("body", [tlv(21, b"\x80"), tlv(21, b"\x00\x02\x00"), tlv(22, b"\x01")])
def test_malformed_on_the_wire_is_130(body: bytes) -> None:
    mtype = M.DESTINATION_UPDATE if body[1] == 21 else M.SESSION_UPDATE
    prefix = tlv(7, MAC1_B) if mtype == M.DESTINATION_UPDATE else b""
    with pytest.raises(DecodeError) as ei:
        decode_message(raw_header(mtype, prefix + body), REG, extensions=frozenset({MH}))
    assert ei.value.status == StatusCode.INVALID_DATA


@given(messages(registry=REG, extra=EXTRA))
def test_any_message_round_trips(m: Message) -> None:
    assert decode_message(encode_message(m, REG), REG, extensions=frozenset({MH})) == m


# --------------------------------------------------------------------------
# Hooks, called directly (no engine needed)
# --------------------------------------------------------------------------


SESSION_WIDE = (HopControlAction.RESET, HopControlAction.SUPPRESS_FORWARDING)


def test_hook_router_accepts_hop_counts() -> None:
    ext = MultiHopExtension()
    f, s = fake(Role.ROUTER)
    for mt in HOP_COUNT_MESSAGES:
        item = HopCount(5, True)
        ext.on_items(s, msg(mt, MacAddress(MAC1_B), item), DestKey(MAC1_B), [item])
    zero = HopCount(0)
    ext.on_items(s, msg(15, MacAddress(MAC1_B), Status(0), zero), DestKey(MAC1_B), [zero])
    assert f.emitted == [
        *(HopCountReported(MAC1_B, HopCount(5, True), mt) for mt in HOP_COUNT_MESSAGES),
        HopCountReported(MAC1_B, zero, 15),
    ]


@pytest.mark.parametrize("mtype", [M.DESTINATION_UP, M.DESTINATION_UPDATE, 10])
def test_hook_hop_count_zero_outside_lcr_response(mtype: int) -> None:
    ext = MultiHopExtension()
    f, s = fake(Role.ROUTER)
    with pytest.raises(ExtensionViolation) as ei:
        ext.on_items(s, msg(mtype, MacAddress(MAC1_B), HopCount(0)), DestKey(MAC1_B), [HopCount(0)])
    assert ei.value.status == StatusCode.INVALID_DATA
    assert "Hop Count 0" in ei.value.reason
    assert not f.emitted


def test_hook_modem_hop_control() -> None:
    ext = MultiHopExtension()
    f, s = fake(Role.MODEM)
    for a in HopControlAction:
        item = HopControl(a)
        ext.on_items(
            s,
            msg(M.LINK_CHARACTERISTICS_REQUEST, MacAddress(MAC1_B), item),
            DestKey(MAC1_B),
            [item],
        )
    for a in SESSION_WIDE:
        ext.on_items(s, msg(M.SESSION_UPDATE, HopControl(a)), None, [HopControl(a)])
    ext.on_items(s, msg(M.SESSION_UPDATE, HopControl(65520)), None, [HopControl(65520)])
    assert f.emitted == [
        *(HopControlRequested(MAC1_B, a) for a in HopControlAction),
        HopControlRequested(None, 0),
        HopControlRequested(None, 3),
        HopControlRequested(None, 65520),
    ]
    ev = f.emitted[0]
    assert isinstance(ev, HopControlRequested) and ev.name == "RESET"


@pytest.mark.parametrize("action", [HopControlAction.TERMINATE, HopControlAction.DIRECT_CONNECTION])
def test_hook_per_destination_action_in_session_update(action: HopControlAction) -> None:
    """§3.2.2 / §3.2.3: Terminate and Direct Connection MUST NOT be in a Session Update."""
    ext = MultiHopExtension()
    f, s = fake(Role.MODEM)
    with pytest.raises(ExtensionViolation) as ei:
        ext.on_items(s, msg(M.SESSION_UPDATE, HopControl(action)), None, [HopControl(action)])
    assert ei.value.status == StatusCode.INVALID_DATA
    assert not f.emitted


@pytest.mark.parametrize("mtype", [M.SESSION_UPDATE, M.LINK_CHARACTERISTICS_REQUEST])
def test_hook_reserved_action(mtype: int) -> None:
    ext = MultiHopExtension()
    _, s = fake(Role.MODEM)
    with pytest.raises(ExtensionViolation, match="reserved") as ei:
        ext.on_items(s, msg(mtype, HopControl(65535)), DestKey(MAC1_B), [HopControl(65535)])
    assert ei.value.status == StatusCode.INVALID_DATA


def test_hook_wrong_direction() -> None:
    ext = MultiHopExtension()
    _, router = fake(Role.ROUTER)
    with pytest.raises(ExtensionViolation, match="from a modem"):
        ext.on_items(router, msg(M.SESSION_UPDATE, HopControl(0)), None, [HopControl(0)])
    _, modem = fake(Role.MODEM)
    with pytest.raises(ExtensionViolation, match="from a router"):
        ext.on_items(
            modem,
            msg(M.DESTINATION_UP, MacAddress(MAC1_B), HopCount(2)),
            DestKey(MAC1_B),
            [HopCount(2)],
        )


# --------------------------------------------------------------------------
# Session flows (engine)
# --------------------------------------------------------------------------





def pair(
    router_ext: tuple[int, ...] = (MH,), modem_ext: tuple[int, ...] = (MH,), plugins: bool = True
) -> Pair:
    """A router and a modem In-Session with the multi-hop registry."""
    rk: dict[str, Any] = {"registry": REG, "extensions": router_ext}
    mk: dict[str, Any] = {"registry": REG, "extensions": modem_ext}
    if plugins:
        rk["plugins"] = (MultiHopExtension(),)
        mk["plugins"] = (MultiHopExtension(),)
    p = Pair(router_config(**rk), modem_config(**mk))
    p.pump()
    assert p.router.state is State.IN_SESSION and p.modem.state is State.IN_SESSION
    p.events()
    p.log.clear()
    return p


def terminated_with(p: Pair, side: str, status: int) -> bool:
    """``side`` sent a Session Termination with ``status``."""
    sent = p.sent(side)  # type: ignore[arg-type]
    return any(m.type == M.SESSION_TERMINATION and status_of(m) == status for m in sent)


def test_not_negotiated_never_sent() -> None:
    """Modem offers multi-hop, router does not: the API refuses the items."""
    p = pair(router_ext=(), plugins=False)
    assert p.router.extensions == frozenset() and p.modem.extensions == frozenset()
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.add_destination(
            MAC1, extra=hop_count_items(3, message_type=M.DESTINATION_UP), now=p.now
        )
    p.modem.add_destination(MAC1, now=p.now)
    p.pump()
    p.events()
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.update_destination(MAC1, extra=hop_count_items(2), now=p.now)


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("router", msg(M.DESTINATION_UP, mac(MAC1), HopCount(2))),
        ("modem", msg(M.SESSION_UPDATE, HopControl(0))),
    ],
)
def test_not_negotiated_on_receipt_is_130(to: str, message: Message) -> None:
    p = pair(router_ext=(), plugins=False)
    p.inject(to, message)  # type: ignore[arg-type]
    assert terminated_with(p, to, StatusCode.INVALID_DATA)


def test_negotiated() -> None:
    p = pair()
    assert p.router.extensions == frozenset({MH}) == p.modem.extensions


def test_destination_up_and_update_carry_hop_count() -> None:
    p = pair()
    p.modem.add_destination(
        MAC1, extra=hop_count_items(3, True, message_type=M.DESTINATION_UP), now=p.now
    )
    p.pump()
    events = p.router.events()
    (up,) = of_type(events, DestinationUp)
    assert isinstance(up, DestinationUp)
    assert hop_count(up.info) == 3 and direct_connection_possible(up.info)
    assert HopCountReported(MAC1_B, HopCount(3, True), M.DESTINATION_UP) in events
    p.modem.update_destination(MAC1, extra=hop_count_items(255), now=p.now)
    p.pump()
    info = p.router.destination(MAC1)
    assert info is not None and hop_count(info) == 255
    assert HopCountReported(MAC1_B, HopCount(255), M.DESTINATION_UPDATE) in p.router.events()


def test_absent_hop_count_is_one() -> None:
    p = pair()
    p.up()
    info = p.router.destination(MAC1)
    assert info is not None and hop_count(info) == 1


@pytest.mark.parametrize("mtype", [M.DESTINATION_UP, M.DESTINATION_UPDATE])
def test_hop_count_zero_ends_session(mtype: int) -> None:
    p = pair()
    if mtype == M.DESTINATION_UPDATE:
        p.up()
    p.inject("router", msg(mtype, mac(MAC1), HopCount(0)))
    assert terminated_with(p, "router", StatusCode.INVALID_DATA)


@pytest.mark.parametrize("action", [1, 2, 65535])
def test_bad_session_wide_hop_control_ends_session(action: int) -> None:
    p = pair()
    p.inject("modem", msg(M.SESSION_UPDATE, HopControl(action)))
    assert terminated_with(p, "modem", StatusCode.INVALID_DATA)


def test_hop_control_from_modem_ends_session() -> None:
    p = pair()
    p.inject("router", msg(M.SESSION_UPDATE, HopControl(0)))
    assert terminated_with(p, "router", StatusCode.INVALID_DATA)


@pytest.mark.parametrize("action", [0, 3])
def test_session_wide_hop_control_received(action: int) -> None:
    p = pair()
    p.up()
    p.inject("modem", msg(M.SESSION_UPDATE, HopControl(action)))
    sent = p.sent("modem")
    assert [m.type for m in sent] == [M.SESSION_UPDATE_RESPONSE]
    assert HopControlRequested(None, action) in p.modem.events()


def test_lcr_with_only_hop_control_received() -> None:
    p = pair()
    p.up()
    p.inject("modem", msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), HopControl(2)))
    events = p.modem.events()
    assert HopControlRequested(MAC1_B, 2) in events
    assert of_type(events, LinkCharacteristicsRequested)
    assert p.modem.state is State.IN_SESSION


@pytest.mark.parametrize("hops", [1, 0])
def test_direct_connection_flow(hops: int) -> None:
    """§3.2: router asks for a direct connection; the modem answers with an
    updated Hop Count (1: done; 0: the destination became unreachable)."""
    p = pair()
    p.up(extra=hop_count_items(3, True, message_type=M.DESTINATION_UP))
    info = p.router.destination(MAC1)
    assert info is not None and direct_connection_possible(info)
    p.router.request_link_characteristics(  # type: ignore[call-arg]
        MAC1, extra=hop_control_request_items(HopControlAction.DIRECT_CONNECTION), now=p.now
    )
    p.pump()
    assert HopControlRequested(MAC1_B, 2) in p.modem.events()
    p.modem.respond_link_characteristics(  # type: ignore[call-arg]
        MAC1, extra=hop_count_items(hops, message_type=M.LINK_CHARACTERISTICS_RESPONSE), now=p.now
    )
    p.pump()
    events = p.router.events()
    assert of_type(events, LinkCharacteristicsResponse)
    assert HopCountReported(MAC1_B, HopCount(hops), M.LINK_CHARACTERISTICS_RESPONSE) in events
    assert p.router.state is State.IN_SESSION
    info = p.router.destination(MAC1)
    assert info is not None and hop_count(info) == hops, (
        "the engine should keep the Link Characteristics Response's Hop Count in "
        "DestinationInfo.extra"
    )


def test_router_session_wide_suppress_forwarding() -> None:
    p = pair()
    p.router.update_session(  # type: ignore[call-arg]
        extra=hop_control_session_items(HopControlAction.SUPPRESS_FORWARDING), now=p.now
    )
    wire = p.pump()
    assert [w.type for w in wire] == [M.SESSION_UPDATE, M.SESSION_UPDATE_RESPONSE]
    assert HopControlRequested(None, 3) in p.modem.events()
