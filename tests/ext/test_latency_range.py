"""RFC 8757 Latency Range: codec, registry placements, hooks, session flows.

Byte vectors and placements are typed in from RFC 8757 §3 and RFC 8175 §12,
not taken from the codec. Session-flow tests that need the engine to call
extension hooks are skipped until ``SessionConfig.plugins`` exists.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlep.ext import ExtensionViolation
from dlep.ext.latency_range import (
    LATENCY_RANGE_MESSAGES,
    LatencyRange,
    LatencyRangeExtension,
    LatencyRangeReported,
    LatencyRangeRequested,
    LatencyRangeState,
    latency_range,
    latency_range_items,
)
from dlep.fsm import (
    DestinationInfo,
    DestKey,
    Event,
    Metrics,
    Role,
    Session,
    SessionConfig,
    SessionError,
    SessionTerminated,
    State,
)
from dlep.wire import (
    OPTIONAL,
    DataItem,
    DecodeError,
    EncodeError,
    ExtensionsSupported,
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
    DECLARED,
    HB_MS,
    MAC1,
    MAC1_B,
    MAC2_B,
    Pair,
    decode_stream,
    mac,
    modem_config,
    msg,
    raw_header,
    router_config,
    session_init_response,
    status_of,
)
from tests.unit.strategies import messages

M = MessageType
LR = 4  # Extension Type Value, RFC 8757 §5.1
U64_MAX = (1 << 64) - 1

# --------------------------------------------------------------------------
# Strategies and helpers
# --------------------------------------------------------------------------

u64s = st.one_of(st.sampled_from([0, 1, U64_MAX - 1, U64_MAX]), st.integers(0, U64_MAX))


@st.composite
def latency_ranges(draw: st.DrawFn) -> LatencyRange:
    a, b = draw(u64s), draw(u64s)
    return LatencyRange(minimum=min(a, b), maximum=max(a, b))


EXTRA: dict[type[DataItem], st.SearchStrategy[DataItem]] = {LatencyRange: latency_ranges()}


def registry() -> Registry:
    reg = core_registry()
    LatencyRangeExtension().register(reg)
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


def fake(role: Role, **config: Any) -> tuple[FakeSession, Session]:
    f = FakeSession(role, SessionConfig(**config))
    return f, cast(Session, f)


# --------------------------------------------------------------------------
# Item
# --------------------------------------------------------------------------


def test_rfc_figure_vector() -> None:
    # §3: type 28, length 16, Maximum Latency (64 bits) then Minimum Latency (64 bits).
    item = LatencyRange(minimum=7, maximum=U64_MAX)
    assert item.encode() == bytes.fromhex("001c 0010" + "ff" * 8 + "0000000000000007")
    assert LatencyRange(minimum=250, maximum=1500).encode_value() == struct.pack("!QQ", 1500, 250)
    assert LatencyRange.decode_value(struct.pack("!QQ", 1500, 250)) == LatencyRange(
        minimum=250, maximum=1500
    )
    assert LatencyRange(0, 0).encode_value() == bytes(16)


@given(latency_ranges())
def test_round_trip(item: LatencyRange) -> None:
    assert LatencyRange.decode_value(item.encode_value()) == item
    assert item.encode()[:4] == struct.pack("!HH", 28, 16)


@given(u64s, u64s)
def test_canonical_bytes(a: int, b: int) -> None:
    raw = struct.pack("!QQ", max(a, b), min(a, b))
    assert LatencyRange.decode_value(raw).encode_value() == raw


@given(st.binary(max_size=40))
def test_fuzz(data: bytes) -> None:
    try:
        item = LatencyRange.decode_value(data)
    except ItemFormatError:
        assert len(data) != 16 or data[8:] > data[:8]
    else:
        assert item.encode_value() == data


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"minimum": 2, "maximum": 1}, "LatencyRange.minimum: 2 exceeds maximum 1"),
        ({"minimum": -1, "maximum": 1}, "LatencyRange.minimum"),
        ({"minimum": 0, "maximum": U64_MAX + 1}, "LatencyRange.maximum"),
        ({"minimum": 0, "maximum": 1.5}, "LatencyRange.maximum"),
        ({"minimum": True, "maximum": 1}, "LatencyRange.minimum"),
    ],
)
def test_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ItemFormatError, match=match):
        LatencyRange(**kwargs)


def test_decode_min_above_max() -> None:
    with pytest.raises(ItemFormatError, match="minimum latency 2 exceeds maximum latency 1"):
        LatencyRange.decode_value(struct.pack("!QQ", 1, 2))


@pytest.mark.parametrize("length", [0, 8, 15, 17, 24])
def test_wrong_length(length: int) -> None:
    with pytest.raises(ItemFormatError, match="length"):
        LatencyRange.decode_value(bytes(length))


def test_helpers() -> None:
    assert latency_range_items(10, 20) == (LatencyRange(minimum=10, maximum=20),)
    with pytest.raises(ItemFormatError):
        latency_range_items(20, 10)
    info = DestinationInfo(MAC1_B)
    default = LatencyRange(1, 2)
    assert latency_range(info) is None
    assert latency_range(info, default) is default
    own = LatencyRange(5, 9)
    assert latency_range(DestinationInfo(MAC1_B, extra=(own,)), default) == own
    st_ = LatencyRangeState(session=default, destinations={DestKey(MAC1_B): own})
    assert st_.current() == default
    assert st_.current(MAC1_B) == own
    assert st_.current(MAC2_B) == default


# --------------------------------------------------------------------------
# Registry: every message where RFC 8175 allows Latency, at most once
# --------------------------------------------------------------------------

# Typed in from RFC 8175 §12: the messages that list Latency.
LATENCY_IN = {
    M.SESSION_INITIALIZATION_RESPONSE,  # §12.6
    M.SESSION_UPDATE,  # §12.7
    M.DESTINATION_UP,  # §12.11
    M.DESTINATION_ANNOUNCE_RESPONSE,  # §12.14
    M.DESTINATION_UPDATE,  # §12.17
    M.LINK_CHARACTERISTICS_REQUEST,  # §12.18
    M.LINK_CHARACTERISTICS_RESPONSE,  # §12.19
}


def test_extension_declaration() -> None:
    ext = LatencyRangeExtension()
    assert (ext.code, ext.name) == (4, "latency-range")
    assert ext.items == (LatencyRange,)
    assert set(LATENCY_RANGE_MESSAGES) == LATENCY_IN
    assert {p.unit for p in ext.placements} == LATENCY_IN
    assert all(p.rule == OPTIONAL and not p.signal for p in ext.placements)


def test_placements() -> None:
    for code, spec in REG.messages.items():
        assert (spec.rules.get(28) == OPTIONAL) == (code in LATENCY_IN), spec.name
    for code, spec in REG.signals.items():
        assert 28 not in spec.rules, code
    assert REG.item_extension[28] == LR
    # The codec does not require it in the Session Initialization Response
    # (the engine decodes that before knowing the negotiated set); the
    # extension's on_peer_init does.
    assert 28 not in REG.messages[M.SESSION_INITIALIZATION_RESPONSE].required
    assert 28 not in core_registry().items


def _base(mtype: int) -> tuple[DataItem, ...]:
    if mtype == M.SESSION_INITIALIZATION_RESPONSE:
        return session_init_response().items
    if mtype == M.SESSION_UPDATE:
        return ()
    if mtype == M.LINK_CHARACTERISTICS_REQUEST:
        return (MacAddress(MAC1_B), Latency(100))
    if mtype in (M.DESTINATION_ANNOUNCE_RESPONSE, M.LINK_CHARACTERISTICS_RESPONSE):
        return (MacAddress(MAC1_B), Status(0))
    return (MacAddress(MAC1_B),)


@pytest.mark.parametrize("mtype", sorted(LATENCY_IN))
def test_allowed_once(mtype: int) -> None:
    m = Message(mtype, (*_base(mtype), LatencyRange(100, 5000)))
    assert decode_message(encode_message(m, REG), REG, extensions=frozenset({LR})) == m
    two = Message(mtype, (*m.items, LatencyRange(1, 2)))
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
        (M.SESSION_UPDATE_RESPONSE, (Status(0),)),
        (M.SESSION_TERMINATION, (Status(0),)),
        (M.HEARTBEAT, ()),
    ],
)
def test_refused_elsewhere(mtype: int, items: tuple[DataItem, ...]) -> None:
    m = Message(mtype, (*items, LatencyRange(1, 2)))
    with pytest.raises(EncodeError, match="not allowed"):
        encode_message(m, REG)
    with pytest.raises(DecodeError) as ei:
        decode_message(encode_message(m, REG, validate=False), REG)
    assert ei.value.status == StatusCode.INVALID_DATA


def test_lcr_still_needs_a_core_metric() -> None:
    """Only Hop Control (RFC 8629) is let stand alone in a Link Characteristics
    Request; a Latency Range comes "as an additional data item"."""
    m = Message(M.LINK_CHARACTERISTICS_REQUEST, (MacAddress(MAC1_B), LatencyRange(1, 2)))
    with pytest.raises(EncodeError, match="at least one of"):
        encode_message(m, REG)


@pytest.mark.parametrize("mtype", [M.DESTINATION_UPDATE, M.SESSION_UPDATE])
def test_not_negotiated_is_130(mtype: int) -> None:
    raw = encode_message(Message(mtype, (*_base(mtype), LatencyRange(1, 2))), REG)
    for negotiated in (frozenset(), frozenset({1, 2, 3})):
        with pytest.raises(DecodeError) as ei:
            decode_message(raw, REG, extensions=negotiated)
        assert ei.value.status == StatusCode.INVALID_DATA
        assert "not in use" in ei.value.reason


@pytest.mark.parametrize(
    "value", [struct.pack("!QQ", 1, 2), bytes(15), bytes(17), struct.pack("!Q", 5)]
)
def test_malformed_on_the_wire_is_130(value: bytes) -> None:
    raw = raw_header(M.DESTINATION_UPDATE, tlv(7, MAC1_B) + tlv(28, value))
    with pytest.raises(DecodeError) as ei:
        decode_message(raw, REG, extensions=frozenset({LR}))
    assert ei.value.status == StatusCode.INVALID_DATA


@given(messages(registry=REG, extra=EXTRA))
def test_any_message_round_trips(m: Message) -> None:
    assert decode_message(encode_message(m, REG), REG, extensions=frozenset({LR})) == m


# --------------------------------------------------------------------------
# Hooks, called directly
# --------------------------------------------------------------------------


def _sir(*extra: DataItem, status: int = 0) -> Message:
    return session_init_response(status, HB_MS, DECLARED, ExtensionsSupported((LR,)), *extra)


def test_modem_init_items() -> None:
    _, s = fake(Role.MODEM, session_metrics=DECLARED)
    assert LatencyRangeExtension(default=(100, 5000)).init_items(s) == (
        LatencyRange(minimum=100, maximum=5000),
    )
    ext = LatencyRangeExtension(default=LatencyRange(3, 4))
    assert ext.init_items(s) == (LatencyRange(3, 4),)
    assert ext.current(s) == LatencyRange(3, 4)
    # Without a default: [latency, latency] from the declared session Latency.
    assert LatencyRangeExtension().init_items(s) == (LatencyRange(1000, 1000),)
    _, router = fake(Role.ROUTER)
    assert LatencyRangeExtension(default=(1, 2)).init_items(router) == ()
    with pytest.raises(ItemFormatError):
        LatencyRangeExtension(default=(5, 1))


def test_router_requires_it_in_sir() -> None:
    ext = LatencyRangeExtension()
    f, s = fake(Role.ROUTER)
    with pytest.raises(ExtensionViolation, match="RFC 8757") as ei:
        ext.on_peer_init(s, _sir())
    assert ei.value.status == StatusCode.INVALID_DATA
    ext.on_peer_init(s, _sir(status=StatusCode.REQUEST_DENIED))  # refused: nothing to check
    item = LatencyRange(10, 20)
    ext.on_peer_init(s, _sir(item))
    assert ext.current(s) == item
    assert f.emitted == [LatencyRangeReported(None, item, M.SESSION_INITIALIZATION_RESPONSE)]
    _, modem = fake(Role.MODEM)
    ext.on_peer_init(modem, msg(M.SESSION_INITIALIZATION))  # the router's init: no check


def test_router_on_items() -> None:
    ext = LatencyRangeExtension()
    f, s = fake(Role.ROUTER)
    ext.state(s).session = LatencyRange(10, 20)
    a, b, c = LatencyRange(1, 2), LatencyRange(3, 4), LatencyRange(5, 6)
    ext.on_items(s, msg(M.DESTINATION_UP, MacAddress(MAC1_B), a), DestKey(MAC1_B), [a])
    ext.on_items(s, msg(M.DESTINATION_UPDATE, MacAddress(MAC2_B), b), DestKey(MAC2_B), [b])
    assert ext.current(s, MAC1_B) == a and ext.current(s, MAC2_B) == b
    assert ext.current(s) == LatencyRange(10, 20)
    ext.on_destination_gone(s, DestKey(MAC2_B))
    assert ext.current(s, MAC2_B) == LatencyRange(10, 20)
    # Session-wide, like Latency in a Session Update (RFC 8175 §12.7): applies to all.
    ext.on_items(s, msg(M.SESSION_UPDATE, c), None, [c])
    assert ext.current(s) == c and ext.current(s, MAC1_B) == c
    assert f.emitted == [
        LatencyRangeReported(MAC1_B, a, M.DESTINATION_UP),
        LatencyRangeReported(MAC2_B, b, M.DESTINATION_UPDATE),
        LatencyRangeReported(None, c, M.SESSION_UPDATE),
    ]


def test_modem_on_items() -> None:
    ext = LatencyRangeExtension()
    f, s = fake(Role.MODEM, session_metrics=DECLARED)
    item = LatencyRange(1, 2)
    lcr = msg(M.LINK_CHARACTERISTICS_REQUEST, MacAddress(MAC1_B), Latency(2), item)
    ext.on_items(s, lcr, DestKey(MAC1_B), [item])
    assert f.emitted == [LatencyRangeRequested(MAC1_B, item)]
    with pytest.raises(ExtensionViolation, match="SESSION_UPDATE from a router") as ei:
        ext.on_items(s, msg(M.SESSION_UPDATE, item), None, [item])
    assert ei.value.status == StatusCode.INVALID_DATA


# --------------------------------------------------------------------------
# Session flows (engine)
# --------------------------------------------------------------------------




def pair(
    router_ext: tuple[int, ...] = (LR,),
    modem_ext: tuple[int, ...] = (LR,),
    *,
    plugins: bool = True,
    default: tuple[int, int] | None = (100, 5000),
    session_metrics: Metrics = DECLARED,
) -> tuple[Pair, LatencyRangeExtension, LatencyRangeExtension]:
    """Router and modem after session initialisation (events kept)."""
    rx, mx = LatencyRangeExtension(), LatencyRangeExtension(default=default)
    rk: dict[str, Any] = {"registry": REG, "extensions": router_ext}
    mk: dict[str, Any] = {
        "registry": REG,
        "extensions": modem_ext,
        "session_metrics": session_metrics,
    }
    if plugins:
        rk["plugins"] = (rx,)
        mk["plugins"] = (mx,)
    p = Pair(router_config(**rk), modem_config(**mk))
    p.pump()
    return p, rx, mx


def terminated_with(p: Pair, side: str, status: int) -> bool:
    sent = p.sent(side)  # type: ignore[arg-type]
    return any(m.type == M.SESSION_TERMINATION and status_of(m) == status for m in sent)


def test_not_negotiated_never_sent_and_130() -> None:
    p, _, _ = pair(router_ext=(), plugins=False)
    assert p.router.extensions == frozenset()
    p.events()
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.add_destination(MAC1, extra=latency_range_items(1, 2), now=p.now)
    p.inject("router", msg(M.SESSION_UPDATE, LatencyRange(1, 2)))
    assert terminated_with(p, "router", StatusCode.INVALID_DATA)


def test_bad_range_on_the_wire_is_130() -> None:
    p, _, _ = pair(plugins=False)
    p.events()
    p.up()
    body = tlv(7, MAC1_B) + tlv(28, struct.pack("!QQ", 10, 20))  # max 10 < min 20
    p.inject("router", raw_header(M.DESTINATION_UPDATE, body))
    assert terminated_with(p, "router", StatusCode.INVALID_DATA)


@pytest.mark.parametrize(
    ("default", "expected"),
    [((100, 5000), LatencyRange(100, 5000)), (None, LatencyRange(1000, 1000))],
)
def test_session_init_carries_default(
    default: tuple[int, int] | None, expected: LatencyRange
) -> None:
    p, rx, mx = pair(default=default)
    assert p.router.state is State.IN_SESSION and p.modem.state is State.IN_SESSION
    assert p.router.extensions == frozenset({LR})
    (sir,) = [w.message for w in p.log if w.type == M.SESSION_INITIALIZATION_RESPONSE]
    assert sir.get(LatencyRange) == expected
    assert rx.current(p.router) == expected
    assert mx.current(p.modem) == expected
    assert LatencyRangeReported(None, expected, M.SESSION_INITIALIZATION_RESPONSE) in (
        p.router.events()
    )


def test_router_refuses_sir_without_it() -> None:
    """RFC 8757 §3: MUST be included in the Session Initialization Response."""
    router = Session(
        Role.ROUTER,
        router_config(registry=REG, extensions=(LR,), plugins=(LatencyRangeExtension(),)),
    )
    router.start(0.0)
    router.data_to_send()
    sir = encode_message(_sir(), REG)
    router.receive_data(sir, 0.0)
    assert router.state is not State.IN_SESSION
    sent = decode_stream(router.data_to_send(), REG)
    terms = [status_of(m) for m in sent if m.type == M.SESSION_TERMINATION]
    ended = [e.status for e in router.events() if isinstance(e, SessionTerminated)]
    assert terms == [StatusCode.INVALID_DATA] or ended == [StatusCode.INVALID_DATA]


def test_sir_item_of_unnegotiated_extension() -> None:
    """A Session Initialization Response may not carry the item unless the
    router offered the extension (RFC 8175 §7.2: never emit what was not offered)."""
    router = Session(Role.ROUTER, router_config(registry=REG))
    router.start(0.0)
    router.data_to_send()
    sir = session_init_response(0, HB_MS, DECLARED, LatencyRange(1, 2))
    router.receive_data(encode_message(sir, REG), 0.0)
    sent = decode_stream(router.data_to_send(), REG)
    assert [status_of(m) for m in sent if m.type == M.SESSION_TERMINATION] == [
        StatusCode.INVALID_DATA
    ]


def test_destination_and_session_ranges() -> None:
    p, rx, _ = pair()
    p.events()
    p.modem.add_destination(MAC1, extra=latency_range_items(200, 900), now=p.now)
    p.pump()
    info = p.router.destination(MAC1)
    assert info is not None
    assert latency_range(info) == LatencyRange(200, 900)
    assert rx.current(p.router, MAC1_B) == LatencyRange(200, 900)
    assert LatencyRangeReported(MAC1_B, LatencyRange(200, 900), M.DESTINATION_UP) in (
        p.router.events()
    )
    p.modem.update_destination(MAC1, extra=latency_range_items(150, 950), now=p.now)
    p.pump()
    assert rx.current(p.router, MAC1_B) == LatencyRange(150, 950)
    # A session-wide range from the modem replaces every destination's.
    p.inject("router", msg(M.SESSION_UPDATE, LatencyRange(50, 60)))
    assert [m.type for m in p.sent("router")] == [M.SESSION_UPDATE_RESPONSE]
    assert rx.current(p.router) == LatencyRange(50, 60)
    assert rx.current(p.router, MAC1_B) == LatencyRange(50, 60)
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    assert MAC1_B not in rx.state(p.router).destinations


def test_router_sending_session_wide_range_is_130() -> None:
    p, _, _ = pair()
    p.events()
    p.inject("modem", msg(M.SESSION_UPDATE, LatencyRange(1, 2)))
    assert terminated_with(p, "modem", StatusCode.INVALID_DATA)


def test_link_characteristics_request_with_range() -> None:
    p, _, _ = pair()
    p.events()
    p.up()
    lcr = msg(M.LINK_CHARACTERISTICS_REQUEST, mac(MAC1), Latency(500), LatencyRange(100, 500))
    p.inject("modem", lcr)
    assert LatencyRangeRequested(MAC1_B, LatencyRange(100, 500)) in p.modem.events()
    assert p.modem.state is State.IN_SESSION


def test_modem_session_update_api() -> None:
    p, rx, _ = pair()
    p.events()
    p.modem.update_session(extra=latency_range_items(7, 8), now=p.now)  # type: ignore[call-arg]
    p.pump()
    assert rx.current(p.router) == LatencyRange(7, 8)
