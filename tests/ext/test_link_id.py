"""RFC 8703 Link Identifier extension: codec, placements, session rules, flows."""

from __future__ import annotations

import struct
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlep.ext.base import ExtensionViolation
from dlep.ext.link_id import (
    DEFAULT_LENGTH,
    EXTENSION_CODE,
    LinkIdentifier,
    LinkIdentifierLength,
    LinkIdExtension,
)
from dlep.fsm import (
    DestinationUp,
    DestinationUpdate,
    Metrics,
    Role,
    SessionError,
    State,
)
from dlep.wire import (
    CurrentDataRateReceive,
    DecodeError,
    EncodeError,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    ItemFormatError,
    Latency,
    MacAddress,
    Message,
    MessageType,
    PeerType,
    Registry,
    Status,
    StatusCode,
    core_registry,
    decode_message,
    encode_message,
)
from dlep.wire.items import CurrentDataRateTransmit as CDRT
from dlep.wire.items import MaximumDataRateReceive as MDRR
from dlep.wire.items import MaximumDataRateTransmit as MDRT
from tests.unit.fsm_harness import (
    MAC1,
    MAC1_B,
    MAC2_B,
    Pair,
    established,
    modem_config,
    router_config,
    status_of,
)

M = MessageType
FUZZ = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LID1 = LinkIdentifier(b"\x00\x00\x00\x01")
LID2 = LinkIdentifier(b"\x00\x00\x00\x02")
V4 = Ipv4Address("10.1.0.1")


def registry() -> Registry:
    reg = core_registry()
    LinkIdExtension().register(reg)
    return reg


REG = registry()
ON = frozenset({EXTENSION_CODE})


def tlv(t: int, value: bytes) -> bytes:
    return struct.pack("!HH", t, len(value)) + value


def message_bytes(mtype: int, *tlvs: bytes) -> bytes:
    body = b"".join(tlvs)
    return struct.pack("!HH", mtype, len(body)) + body


# --------------------------------------------------------------------------
# Codec: RFC figures, round trips, fuzz
# --------------------------------------------------------------------------


def test_rfc_figure_link_identifier_length() -> None:
    """§3.1: type 26, Length 2, 16-bit Link Identifier Length."""
    item = LinkIdentifierLength(6)
    assert item.encode() == bytes.fromhex("001a 0002 0006")
    assert LinkIdentifierLength.decode_value(bytes.fromhex("0006")) == item
    assert LinkIdentifierLength(0xFFFF).encode_value() == b"\xff\xff"


def test_rfc_figure_link_identifier() -> None:
    """§3.2: type 27, Length = identifier length (4 by default), opaque octets."""
    assert LID1.encode() == bytes.fromhex("001b 0004 00000001")
    six = LinkIdentifier(bytes.fromhex("0a0b0c0d0e0f"))
    assert six.encode() == bytes.fromhex("001b 0006 0a0b0c0d0e0f")
    assert LinkIdentifier.decode_value(bytes.fromhex("0a0b0c0d0e0f")) == six


def test_codes() -> None:
    assert (LinkIdentifierLength.TYPE, LinkIdentifier.TYPE) == (26, 27)
    assert LinkIdExtension.code == 3
    assert LinkIdExtension.name == "link-identifier"
    assert LinkIdExtension.identity_items == (27,)
    assert DEFAULT_LENGTH == 4


@given(st.integers(1, 0xFFFF))
def test_length_round_trip(n: int) -> None:
    item = LinkIdentifierLength(n)
    raw = item.encode_value()
    assert raw == struct.pack("!H", n)
    assert LinkIdentifierLength.decode_value(raw) == item


@given(st.one_of(st.binary(min_size=1, max_size=40), st.binary(min_size=1000, max_size=1100)))
def test_identifier_round_trip(value: bytes) -> None:
    item = LinkIdentifier(value)
    raw = item.encode()
    assert raw[:4] == struct.pack("!HH", 27, len(value))
    assert LinkIdentifier.decode_value(raw[4:]) == item
    assert LinkIdentifier.decode_value(raw[4:]).encode() == raw


def test_identifier_max_length() -> None:
    big = LinkIdentifier(b"\xab" * 0xFFFF)
    assert LinkIdentifier.decode_value(big.encode_value()) == big
    with pytest.raises(ItemFormatError, match="identifier"):
        LinkIdentifier(b"\xab" * 0x10000)


@FUZZ
@given(st.binary(max_size=12))
def test_fuzz_decode_value(data: bytes) -> None:
    for cls in (LinkIdentifierLength, LinkIdentifier):
        try:
            item = cls.decode_value(data)
        except ItemFormatError:
            continue
        # Whatever decodes is a valid value that encodes back to the input.
        assert item.encode_value() == data


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00", b"\x00\x04\x00"])
def test_length_malformed(data: bytes) -> None:
    with pytest.raises(ItemFormatError, match="LinkIdentifierLength"):
        LinkIdentifierLength.decode_value(data)


def test_identifier_empty_malformed() -> None:
    with pytest.raises(ItemFormatError, match="length 0"):
        LinkIdentifier.decode_value(b"")


@pytest.mark.parametrize("bad", [0, -1, 0x10000, True, "4", 4.0, None])
def test_length_constructor_names_field(bad: object) -> None:
    with pytest.raises(ItemFormatError, match=r"LinkIdentifierLength\.length"):
        LinkIdentifierLength(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [b"", "0a0b", 5, None, [1, 2]])
def test_identifier_constructor_names_field(bad: object) -> None:
    with pytest.raises(ItemFormatError, match=r"LinkIdentifier\.identifier"):
        LinkIdentifier(bad)  # type: ignore[arg-type]


def test_identifier_helpers() -> None:
    assert LinkIdentifier(bytearray(b"\x01\x02")).identifier == b"\x01\x02"
    assert LinkIdentifier(memoryview(b"\x01\x02")).identifier == b"\x01\x02"
    assert LinkIdentifier.from_int(7) == LinkIdentifier(b"\x00\x00\x00\x07")
    assert LinkIdentifier.from_int(0x0102, 2).identifier == b"\x01\x02"
    assert int(LinkIdentifier.from_int(123456, 6)) == 123456
    assert str(LinkIdentifier(bytes.fromhex("0a0b0c0d"))) == "0a:0b:0c:0d"
    assert LinkIdentifier.parse("0a:0b:0c:0d") == LinkIdentifier(bytes.fromhex("0a0b0c0d"))
    assert LinkIdentifier.parse("0a-0b-0c-0d").identifier == bytes.fromhex("0a0b0c0d")
    with pytest.raises(ItemFormatError, match="fit"):
        LinkIdentifier.from_int(1 << 32)
    with pytest.raises(ItemFormatError, match="fit"):
        LinkIdentifier.from_int(-1)
    with pytest.raises(ItemFormatError, match="hexadecimal"):
        LinkIdentifier.parse("zz")
    with pytest.raises(FrozenInstanceError):
        LID1.identifier = b"x"  # type: ignore[misc]


# --------------------------------------------------------------------------
# Registry: placements per RFC 8703 and negotiation
# --------------------------------------------------------------------------

MAC = MacAddress(MAC1_B)
OK = Status(0)
# Every message where RFC 8175 allows a MAC Address (§3.2: the Link Identifier
# "MAY be used wherever a MAC Address Data Item is defined as usable").
DEST_MESSAGES = {
    M.DESTINATION_UP: (MAC, V4),
    M.DESTINATION_UP_RESPONSE: (MAC, OK),
    M.DESTINATION_ANNOUNCE: (MAC,),
    M.DESTINATION_ANNOUNCE_RESPONSE: (MAC, OK),
    M.DESTINATION_DOWN: (MAC,),
    M.DESTINATION_DOWN_RESPONSE: (MAC, OK),
    M.DESTINATION_UPDATE: (MAC,),
    M.LINK_CHARACTERISTICS_REQUEST: (MAC, CurrentDataRateReceive(1)),
    M.LINK_CHARACTERISTICS_RESPONSE: (MAC, OK),
}
SIR_BASE = (
    OK,
    PeerType("modem"),
    HeartbeatInterval(1000),
    MDRR(1),
    MDRT(1),
    CurrentDataRateReceive(1),
    CDRT(1),
    Latency(1),
    ExtensionsSupported((3,)),
)
SI_BASE = (HeartbeatInterval(1000), PeerType("router"), ExtensionsSupported((3,)))


def test_registration_leaves_core_alone() -> None:
    assert 27 not in core_registry().items
    assert not core_registry().identity_items
    assert REG.items[26] is LinkIdentifierLength
    assert REG.items[27] is LinkIdentifier
    assert REG.item_extension[26] == REG.item_extension[27] == 3
    assert REG.identity_items == {27}


@pytest.mark.parametrize("mtype", sorted(DEST_MESSAGES))
def test_identifier_allowed_in_every_destination_message(mtype: int) -> None:
    msg = Message(mtype, (*DEST_MESSAGES[mtype], LID1))
    raw = encode_message(msg, REG)
    assert decode_message(raw, REG, extensions=ON) == msg
    assert decode_message(raw, REG) == msg  # before negotiation: all registered


@pytest.mark.parametrize("mtype", sorted(DEST_MESSAGES))
def test_identifier_at_most_once(mtype: int) -> None:
    msg = Message(mtype, (*DEST_MESSAGES[mtype], LID1, LID2))
    with pytest.raises(EncodeError, match="at most one"):
        encode_message(msg, REG)
    raw = encode_message(msg, REG, validate=False)
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=ON)
    assert err.value.status == StatusCode.INVALID_DATA


@pytest.mark.parametrize("mtype", sorted(DEST_MESSAGES))
def test_identifier_not_negotiated_is_invalid_data(mtype: int) -> None:
    """RFC 8175 §9 / issue: an item of an extension not in use ends the session (130)."""
    raw = encode_message(Message(mtype, (*DEST_MESSAGES[mtype], LID1)), REG)
    for negotiated in (frozenset(), frozenset({1, 2, 4})):
        with pytest.raises(DecodeError) as err:
            decode_message(raw, REG, extensions=negotiated)
        assert err.value.status == StatusCode.INVALID_DATA
        assert err.value.item_type == 27
        assert "not in use" in err.value.reason


def test_identifier_unknown_to_core_registry() -> None:
    raw = encode_message(Message(M.DESTINATION_DOWN, (MAC, LID1)), REG)
    with pytest.raises(DecodeError) as err:
        decode_message(raw)
    assert err.value.status == StatusCode.INVALID_DATA


def test_length_allowed_in_session_initialization_response() -> None:
    msg = Message(M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, LinkIdentifierLength(6)))
    raw = encode_message(msg, REG)
    assert decode_message(raw, REG) == msg
    assert decode_message(raw, REG, extensions=ON) == msg
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=frozenset())
    assert err.value.status == StatusCode.INVALID_DATA
    twice = Message(
        M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, *(LinkIdentifierLength(n) for n in (6, 8)))
    )
    with pytest.raises(EncodeError):
        encode_message(twice, REG)


REFUSED = [
    (M.SESSION_INITIALIZATION, (*SI_BASE, LinkIdentifierLength(6))),  # §3.1: SIR only
    (M.SESSION_INITIALIZATION, (*SI_BASE, LID1)),
    (M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, LID1)),
    (M.SESSION_UPDATE, (LID1,)),
    (M.SESSION_UPDATE, (LinkIdentifierLength(6),)),
    (M.SESSION_UPDATE_RESPONSE, (OK, LID1)),
    (M.SESSION_TERMINATION, (OK, LID1)),
    (M.HEARTBEAT, (LID1,)),
    (M.DESTINATION_UP, (MAC, V4, LinkIdentifierLength(6))),
    (M.DESTINATION_UPDATE, (MAC, LinkIdentifierLength(6))),
]


@pytest.mark.parametrize(("mtype", "items"), REFUSED)
def test_refused_placements(mtype: int, items: tuple[object, ...]) -> None:
    msg = Message(mtype, items)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="not allowed"):
        encode_message(msg, REG)
    raw = encode_message(msg, REG, validate=False)
    for negotiated in (None, ON):
        with pytest.raises(DecodeError) as err:
            decode_message(raw, REG, extensions=negotiated)
        assert err.value.status == StatusCode.INVALID_DATA


def test_malformed_item_in_message_is_invalid_data() -> None:
    raw = message_bytes(M.DESTINATION_DOWN, MAC.encode(), tlv(27, b""))
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=ON)
    assert err.value.status == StatusCode.INVALID_DATA
    raw = message_bytes(
        M.SESSION_INITIALIZATION_RESPONSE, *(i.encode() for i in SIR_BASE), tlv(26, b"\x00\x00")
    )
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=ON)
    assert err.value.status == StatusCode.INVALID_DATA


# --------------------------------------------------------------------------
# Hooks, called directly (no engine)
# --------------------------------------------------------------------------


class FakeSession:
    """Just what the hooks use: the role (and events, for symmetry with pause)."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.emitted: list[object] = []

    def emit(self, event: object) -> None:
        self.emitted.append(event)


def up(mac: bytes, lid: LinkIdentifier, *more: object) -> Message:
    return Message(M.DESTINATION_UP, (MacAddress(mac), *more, lid))  # type: ignore[arg-type]


def hook_items(ext: LinkIdExtension, s: FakeSession, msg: Message) -> None:
    ours = [i for i in msg.items if isinstance(i, LinkIdentifier | LinkIdentifierLength)]
    ext.on_items(s, msg, None, ours)  # type: ignore[arg-type]


def test_constructor_validates_length() -> None:
    assert LinkIdExtension().length == 4
    assert LinkIdExtension(16).length == 16
    for bad in (0, 0x10000, -4):
        with pytest.raises(ValueError, match="length"):
            LinkIdExtension(bad)


def test_modem_init_items() -> None:
    s = FakeSession(Role.MODEM)
    assert list(LinkIdExtension().init_items(s)) == []  # type: ignore[arg-type]
    ext = LinkIdExtension(6)
    assert list(ext.init_items(s)) == [LinkIdentifierLength(6)]  # type: ignore[arg-type]
    assert ext.state(s).length == 6  # type: ignore[arg-type]
    assert list(ext.init_items(FakeSession(Role.ROUTER))) == []  # type: ignore[arg-type]


def test_router_takes_length_from_session_initialization_response() -> None:
    ext = LinkIdExtension()
    s = FakeSession(Role.ROUTER)
    sir = Message(M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, LinkIdentifierLength(6)))
    ext.on_peer_init(s, sir)  # type: ignore[arg-type]
    assert ext.state(s).length == 6  # type: ignore[arg-type]
    assert ext.state(s).announced_length == 6  # type: ignore[arg-type]
    other = FakeSession(Role.ROUTER)
    ext.on_peer_init(other, Message(M.SESSION_INITIALIZATION_RESPONSE, SIR_BASE))  # type: ignore[arg-type]
    assert ext.state(other).length == 4  # type: ignore[arg-type]
    assert ext.new_state(s) is ext.state(s)  # type: ignore[arg-type]


def test_router_checks_identifier_length() -> None:
    ext = LinkIdExtension()
    s = FakeSession(Role.ROUTER)
    ext.on_peer_init(s, Message(2, (*SIR_BASE, LinkIdentifierLength(6))))  # type: ignore[arg-type]
    with pytest.raises(ExtensionViolation, match="6") as err:
        hook_items(ext, s, up(MAC1_B, LID1, V4))
    assert err.value.status == StatusCode.INVALID_DATA
    hook_items(ext, s, up(MAC1_B, LinkIdentifier(b"123456"), V4))
    upd = Message(M.DESTINATION_UPDATE, (MacAddress(MAC1_B), LinkIdentifier(b"1234567")))
    with pytest.raises(ExtensionViolation, match=r"RFC 8703 §2\.1"):
        hook_items(ext, s, upd)


def test_router_destination_up_needs_layer3() -> None:
    ext = LinkIdExtension()
    s = FakeSession(Role.ROUTER)
    with pytest.raises(ExtensionViolation, match="Address or Attached Subnet") as err:
        hook_items(ext, s, up(MAC1_B, LID1))
    assert err.value.status == StatusCode.INVALID_DATA
    hook_items(ext, s, up(MAC1_B, LID1, Ipv4AttachedSubnet.from_network("0.0.0.0/0")))


def test_router_refuses_reused_pair() -> None:
    """§2: a Destination Up naming an already used {MAC, Link Identifier}: 130."""
    ext = LinkIdExtension()
    s = FakeSession(Role.ROUTER)
    hook_items(ext, s, up(MAC1_B, LID1, V4))
    hook_items(ext, s, up(MAC1_B, LID2, V4))  # same gateway, another link
    hook_items(ext, s, up(MAC2_B, LID1, V4))  # same identifier, another gateway
    assert ext.state(s).introduced == {  # type: ignore[arg-type]
        (MAC1_B, LID1.identifier),
        (MAC1_B, LID2.identifier),
        (MAC2_B, LID1.identifier),
    }
    with pytest.raises(ExtensionViolation, match="reuses") as err:
        hook_items(ext, s, up(MAC1_B, LID1, Ipv4Address("10.9.9.9")))
    assert err.value.status == StatusCode.INVALID_DATA
    # Other messages about a known pair are fine.
    hook_items(ext, s, Message(M.DESTINATION_UPDATE, (MacAddress(MAC1_B), LID1)))
    hook_items(ext, s, Message(M.DESTINATION_DOWN, (MacAddress(MAC1_B), LID1)))
    # State is per session.
    hook_items(ext, FakeSession(Role.ROUTER), up(MAC1_B, LID1, V4))


def test_modem_refuses_announce_of_unintroduced_pair() -> None:
    """§2: a Destination Announce for a link no Destination Up named: 131."""
    ext = LinkIdExtension()
    s = FakeSession(Role.MODEM)
    ann = Message(M.DESTINATION_ANNOUNCE, (MacAddress(MAC1_B), LID1))
    with pytest.raises(ExtensionViolation, match="no Destination Up") as err:
        hook_items(ext, s, ann)
    assert err.value.status == StatusCode.INVALID_DESTINATION
    # The router's response to our Destination Up (any status) introduces it.
    hook_items(ext, s, Message(M.DESTINATION_UP_RESPONSE, (MacAddress(MAC1_B), LID1, Status(1))))
    hook_items(ext, s, ann)
    with pytest.raises(ExtensionViolation):
        hook_items(ext, s, Message(M.DESTINATION_ANNOUNCE, (MacAddress(MAC2_B), LID1)))


def test_modem_checks_length_of_router_messages() -> None:
    ext = LinkIdExtension(6)
    s = FakeSession(Role.MODEM)
    ext.init_items(s)  # type: ignore[arg-type]
    msg = Message(
        M.LINK_CHARACTERISTICS_REQUEST, (MacAddress(MAC1_B), CurrentDataRateReceive(1), LID1)
    )
    with pytest.raises(ExtensionViolation, match="6"):
        hook_items(ext, s, msg)


def test_on_items_for_session_initialization_response_is_idempotent() -> None:
    ext = LinkIdExtension()
    s = FakeSession(Role.ROUTER)
    sir = Message(M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, LinkIdentifierLength(8)))
    ext.on_peer_init(s, sir)  # type: ignore[arg-type]
    hook_items(ext, s, sir)
    assert ext.state(s).length == 8  # type: ignore[arg-type]
    ext.on_peer_init(FakeSession(Role.MODEM), Message(M.SESSION_INITIALIZATION, SI_BASE))  # type: ignore[arg-type]


def test_check_outgoing() -> None:
    ext = LinkIdExtension()
    modem = FakeSession(Role.MODEM)
    ext.check_outgoing(modem, M.DESTINATION_UP, [MAC, V4, LID1])  # type: ignore[arg-type]
    ext.check_outgoing(modem, M.DESTINATION_UP, [MAC, V4])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Address or Attached Subnet"):
        ext.check_outgoing(modem, M.DESTINATION_UP, [MAC, LID1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="octets"):
        ext.check_outgoing(modem, M.DESTINATION_UPDATE, [MAC, LinkIdentifier(b"12")])  # type: ignore[arg-type]
    hook_items(ext, modem, Message(M.DESTINATION_UP_RESPONSE, (MAC, LID1, OK)))
    with pytest.raises(ValueError, match="already used"):
        ext.check_outgoing(modem, M.DESTINATION_UP, [MAC, V4, LID1])  # type: ignore[arg-type]
    router = FakeSession(Role.ROUTER)
    with pytest.raises(ValueError, match="not introduced"):
        ext.check_outgoing(router, M.DESTINATION_ANNOUNCE, [MAC, LID1])  # type: ignore[arg-type]
    hook_items(ext, router, up(MAC1_B, LID1, V4))
    ext.check_outgoing(router, M.DESTINATION_ANNOUNCE, [MAC, LID1])  # type: ignore[arg-type]


def test_identifier_helper_uses_session_length() -> None:
    ext = LinkIdExtension(6)
    assert ext.identifier(1) == LinkIdentifier(b"\x00" * 5 + b"\x01")
    assert ext.identifier("0a0b0c0d0e0f").identifier == bytes.fromhex("0a0b0c0d0e0f")
    assert ext.identifier(b"abcdef").identifier == b"abcdef"
    with pytest.raises(ValueError, match="6"):
        ext.identifier(b"abcd")
    with pytest.raises(ValueError):
        ext.identifier(1 << 48)
    router = FakeSession(Role.ROUTER)
    assert ext.identifier(1, router) == LinkIdentifier.from_int(1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Sessions: not negotiated (no engine hooks needed)
# --------------------------------------------------------------------------


def _no_ext_pair(router_ext: tuple[int, ...], modem_ext: tuple[int, ...]) -> Pair:
    return established(
        router_config(registry=REG, extensions=router_ext),
        modem_config(registry=REG, extensions=modem_ext),
    )


@pytest.mark.parametrize(("r", "m"), [((), (3,)), ((3,), ()), ((), ())])
def test_not_negotiated_identifier_never_sent(r: tuple[int, ...], m: tuple[int, ...]) -> None:
    p = _no_ext_pair(r, m)
    assert EXTENSION_CODE not in p.modem.extensions
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.add_destination(MAC1, addresses=["10.1.0.1"], extra=[LID1], now=p.now)
    assert p.modem.data_to_send() == b""


@pytest.mark.parametrize(("r", "m"), [((), (3,)), ((3,), ())])
def test_not_negotiated_identifier_received_is_invalid_data(
    r: tuple[int, ...], m: tuple[int, ...]
) -> None:
    p = _no_ext_pair(r, m)
    p.inject("router", Message(M.DESTINATION_UP, (MAC, V4, LID1)))
    (term,) = p.sent("router")
    assert term.type == M.SESSION_TERMINATION
    assert status_of(term) == StatusCode.INVALID_DATA
    assert p.router.state is State.TERMINATING


# --------------------------------------------------------------------------
# Sessions with the engine hooks (router and modem both run the extension)
# --------------------------------------------------------------------------


def linked(
    length: int = 4, *, router: bool = True, modem: bool = True
) -> tuple[Pair, LinkIdExtension, LinkIdExtension]:
    """An established pair; a side without the extension neither offers nor runs it."""
    rext, mext = LinkIdExtension(), LinkIdExtension(length)
    p = Pair(
        router_config(registry=REG, plugins=(rext,) if router else ()),
        modem_config(registry=REG, plugins=(mext,) if modem else ()),
    )
    p.establish()
    return p, rext, mext




def _sir(p: Pair) -> Message:
    (w,) = [w for w in p.log if w.type == M.SESSION_INITIALIZATION_RESPONSE]
    return w.message


def test_flow_default_length_not_announced() -> None:
    p, rext, _ = linked()
    assert p.router.extensions == ON
    assert _sir(p).get(LinkIdentifierLength) is None
    assert rext.state(p.router).length == 4


def test_flow_length_announced_in_session_initialization_response() -> None:
    p, rext, mext = linked(length=6)
    assert _sir(p).get(LinkIdentifierLength) == LinkIdentifierLength(6)
    assert rext.state(p.router).length == 6
    assert mext.state(p.modem).length == 6


def test_flow_length_not_sent_when_router_does_not_offer() -> None:
    """§3.1: without the router's offer the item MUST NOT be sent."""
    p, _, _ = linked(length=6, router=False)
    assert _sir(p).get(LinkIdentifierLength) is None
    assert p.router.extensions == frozenset()


def test_flow_two_links_behind_one_gateway() -> None:
    """§2: destinations keyed by {MAC, Link Identifier}; the router echoes the
    identifier in its responses."""
    p, rext, mext = linked()
    p.log.clear()
    p.modem.add_destination(MAC1, addresses=["10.1.0.1"], extra=[LID1], now=p.now)
    p.modem.add_destination(MAC1, addresses=["10.2.0.0/16"], extra=[LID2], now=p.now)
    p.pump()
    ups = [e for e in p.router.events() if isinstance(e, DestinationUp)]
    assert len(ups) == 2
    assert all(e.info.mac.startswith(MAC1_B) for e in ups)  # the MAC (or MAC + identity key)
    assert [next(i for i in e.info.extra if isinstance(i, LinkIdentifier)) for e in ups] == [
        LID1,
        LID2,
    ]
    assert len(p.router.destinations) == 2
    responses = [w.message for w in p.log if w.type == M.DESTINATION_UP_RESPONSE]
    assert [r.get(LinkIdentifier) for r in responses] == [LID1, LID2]
    for r in responses:
        assert isinstance(r.items[0], MacAddress)
        assert isinstance(r.items[1], LinkIdentifier)  # right after the MAC
        assert status_of(r) == StatusCode.SUCCESS
    assert rext.state(p.router).introduced == {(MAC1_B, LID1.identifier), (MAC1_B, LID2.identifier)}
    assert mext.state(p.modem).introduced == rext.state(p.router).introduced


def test_flow_update_names_one_link() -> None:
    p, _, _ = linked()
    p.up([MAC1], addresses=["10.1.0.1"], extra=[LID1])
    p.modem.add_destination(MAC1, addresses=["10.2.0.1"], extra=[LID2], now=p.now)
    p.pump()
    p.events()
    p.log.clear()

    p.modem.update_destination(MAC1, Metrics(latency=5), extra=[LID2], now=p.now)
    p.pump()
    (upd,) = [e for e in p.router.events() if isinstance(e, DestinationUpdate)]
    assert LID2 in upd.info.extra
    assert upd.info.metrics.latency == 5
    (w,) = p.log
    assert w.message.get(LinkIdentifier) == LID2


def test_flow_reused_pair_terminates_with_invalid_data() -> None:
    p, _, _ = linked()
    p.up([MAC1], addresses=["10.1.0.1"], extra=[LID1])
    p.inject("router", Message(M.DESTINATION_UP, (MAC, Ipv4Address("10.1.0.2"), LID1)))
    sent = p.sent("router")
    assert sent[-1].type == M.SESSION_TERMINATION
    assert status_of(sent[-1]) == StatusCode.INVALID_DATA
    # §2: "MUST respond with a Destination Up Response ... 130", then terminate.
    assert sent[-2].type == M.DESTINATION_UP_RESPONSE
    assert status_of(sent[-2]) == StatusCode.INVALID_DATA
    assert LID1 in sent[-2].items  # the response names the (MAC, link id) it refuses
    assert p.router.state is State.TERMINATING


@pytest.mark.parametrize(
    "items",
    [
        (MAC, LID1),  # no Layer 3 information (§2)
        (MAC, V4, LinkIdentifier(b"\x01\x02\x03\x04\x05\x06")),  # not the session's 4 octets
    ],
    ids=["no-layer3", "wrong-length"],
)
def test_flow_bad_destination_up_terminates_with_invalid_data(items: tuple[object, ...]) -> None:
    p, _, _ = linked()
    p.inject("router", Message(M.DESTINATION_UP, items))  # type: ignore[arg-type]
    sent = p.sent("router")
    assert sent[-1].type == M.SESSION_TERMINATION
    assert status_of(sent[-1]) == StatusCode.INVALID_DATA


def test_flow_announce_of_unknown_link_terminates_with_invalid_destination() -> None:
    p, _, _ = linked()
    p.up([MAC1], addresses=["10.1.0.1"], extra=[LID1])
    p.inject("modem", Message(M.DESTINATION_ANNOUNCE, (MAC, LID2)))
    sent = p.sent("modem")
    assert sent[-1].type == M.SESSION_TERMINATION
    assert status_of(sent[-1]) == StatusCode.INVALID_DESTINATION


def test_flow_announce_of_introduced_link_is_answered() -> None:
    p, _, _ = linked()
    p.up([MAC1], addresses=["10.1.0.1"], extra=[LID1])
    p.inject("modem", Message(M.DESTINATION_ANNOUNCE, (MAC, LID1)))
    sent = p.sent("modem")
    assert [m.type for m in sent] == [M.DESTINATION_ANNOUNCE_RESPONSE]
    assert sent[0].get(LinkIdentifier) == LID1
    assert p.modem.state is State.IN_SESSION


@pytest.mark.parametrize("router_runs_it", [True, False])
def test_length_in_response_without_negotiation_is_invalid_data(router_runs_it: bool) -> None:
    """§3.1: without the router's offer (or without the modem listing 3) the
    item must not be sent; receiving it is an item of an extension not in use."""
    plugins = (LinkIdExtension(),) if router_runs_it else ()
    p = Pair(router_config(registry=REG, plugins=plugins), modem_config(registry=REG), start=False)
    p.router.start(p.now)
    p.router.data_to_send()
    base = [i for i in SIR_BASE if not isinstance(i, ExtensionsSupported)]
    p.inject("router", Message(M.SESSION_INITIALIZATION_RESPONSE, (*base, LinkIdentifierLength(6))))
    sent = p.sent("router")
    assert [m.type for m in sent] == [M.SESSION_TERMINATION]
    assert status_of(sent[0]) == StatusCode.INVALID_DATA
