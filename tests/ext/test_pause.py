"""RFC 8651 Control-Plane-Based Pause: codec, placements, router state, flows."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlep.ext.base import ExtensionViolation
from dlep.ext.pause import (
    ALL_QUEUES,
    EXTENSION_CODE,
    SCALE_KB,
    Pause,
    PauseExtension,
    QueueParameter,
    QueueParameters,
    QueueParametersChanged,
    QueuesPaused,
    QueuesRestarted,
    Restart,
    pause,
    restart,
)
from dlep.fsm import DestKey, Event, Metrics, Role, SessionError, State
from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DecodeError,
    EncodeError,
    ExtensionsSupported,
    HeartbeatInterval,
    ItemFormatError,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
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
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ON = frozenset({EXTENSION_CODE})
EF, AF11, CS1 = 46, 10, 8


def registry() -> Registry:
    reg = core_registry()
    PauseExtension().register(reg)
    return reg


REG = registry()
#: Two queues: 0 (everything else, 64 KB) and 1 (EF and AF11, 16 KB).
PARAMS = QueueParameters((QueueParameter(0, 64), QueueParameter(1, 16, (EF, AF11))), SCALE_KB)


def sub(value: bytes, t: int = 1) -> bytes:
    return struct.pack("!HH", t, len(value)) + value


def qp_value(num: int, scale: int, *subs: bytes, reserved: int = 0) -> bytes:
    return (
        bytes((num, (scale << 4) | (reserved >> 16)))
        + struct.pack("!H", reserved & 0xFFFF)
        + b"".join(subs)
    )


# --------------------------------------------------------------------------
# Codec: RFC figures
# --------------------------------------------------------------------------


def test_codes() -> None:
    assert (QueueParameters.TYPE, Pause.TYPE, Restart.TYPE) == (23, 24, 25)
    assert QueueParameter.TYPE == 1
    assert PauseExtension.code == 2
    assert PauseExtension.name == "pause"
    assert ALL_QUEUES == 255


def test_rfc_figure_queue_parameters() -> None:
    """§3.1 / §3.1.1: Num Queues, 4-bit Scale, 20 Reserved bits; sub-items with
    Queue Index, 24-bit Queue Size, Num DSCPs, DS fields (DSCP << 2)."""
    expected = bytes.fromhex(
        "0017 0018"  # type 23, length 24
        "02 10 0000"  # 2 queues, scale 1 (KB), reserved
        "0001 0005 00 000040 00"  # queue 0: 64 KB, no DSCPs
        "0001 0007 01 000010 02 b8 28"  # queue 1: 16 KB, DS fields of EF (46), AF11 (10)
    )
    assert PARAMS.encode() == expected
    assert QueueParameters.decode_value(expected[4:]) == PARAMS


def test_rfc_figure_single_queue_without_dscps() -> None:
    """§3.1: 'one queue with zero DSCPs' for a modem without DSCP support."""
    item = QueueParameters((QueueParameter(0, 0xFFFFFF),), 3)
    assert item.encode_value() == bytes.fromhex("01 30 0000 0001 0005 00 ffffff 00")
    assert item.size_octets(item.queues[0]) == 0xFFFFFF << 30
    assert item.scale_name == "GB"


def test_rfc_figure_pause_restart() -> None:
    """§3.2 / §3.3: one octet per Queue Index, Length = their number."""
    assert Pause((1, 255)).encode() == bytes.fromhex("0018 0002 01 ff")
    assert Restart((0,)).encode() == bytes.fromhex("0019 0001 00")
    assert Pause.decode_value(b"\x01\xff") == Pause((1, 255))
    assert Restart.decode_value(b"\x00\x01\x02") == Restart((0, 1, 2))


# --------------------------------------------------------------------------
# Codec: round trips and fuzz
# --------------------------------------------------------------------------

dscps = st.lists(st.integers(0, 63), max_size=70).map(tuple)
queue_parameters_sub = st.builds(
    QueueParameter, st.integers(0, 254), st.integers(0, (1 << 24) - 1), dscps
)
queue_parameters = st.builds(
    QueueParameters,
    st.lists(queue_parameters_sub, min_size=1, max_size=12).map(tuple),
    st.integers(0, 3),
)
queue_lists = st.lists(st.integers(0, 255), min_size=1, max_size=300).map(tuple)


@given(queue_parameters_sub)
def test_sub_item_round_trip(q: QueueParameter) -> None:
    raw = q.encode()
    assert struct.unpack_from("!HH", raw) == (1, 5 + len(q.dscps))
    assert QueueParameter.decode_value(raw[4:]) == q


@given(queue_parameters)
def test_queue_parameters_round_trip(item: QueueParameters) -> None:
    raw = item.encode_value()
    back = QueueParameters.decode_value(raw)
    assert back == item
    assert back.encode_value() == raw
    assert raw[0] == len(item.queues)


@given(queue_lists)
def test_pause_restart_round_trip(queues: tuple[int, ...]) -> None:
    for cls in (Pause, Restart):
        item = cls(queues)
        assert item.encode_value() == bytes(queues)
        assert cls.decode_value(item.encode_value()) == item


@FUZZ
@given(st.binary(max_size=40))
def test_fuzz_decode_value(data: bytes) -> None:
    for cls in (QueueParameters, Pause, Restart, QueueParameter):
        try:
            item = cls.decode_value(data)
        except ItemFormatError:
            continue
        assert isinstance(item, cls)
        if cls in (Pause, Restart):
            assert item.encode_value() == data


@FUZZ
@given(queue_parameters, st.data())
def test_fuzz_queue_parameters_mutated(item: QueueParameters, data: st.DataObject) -> None:
    """Flip, cut or extend a valid encoding: a value or ItemFormatError, nothing else."""
    raw = bytearray(item.encode_value())
    op = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if op == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
    elif op == "cut":
        del raw[data.draw(st.integers(0, len(raw) - 1)) :]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=8))
    with contextlib.suppress(ItemFormatError):
        QueueParameters.decode_value(bytes(raw))


def test_receiver_ignores_reserved_and_currently_unused_bits() -> None:
    """§3.1: Reserved 'ignored by the receiver'; CU bits of the DS field are
    MUST-be-zero (ignored like RFC 8175 reserved flags)."""
    raw = qp_value(1, 2, sub(bytes.fromhex("00 000001 02 bb 2b")), reserved=0xFFFFF)
    item = QueueParameters.decode_value(raw)
    assert item == QueueParameters((QueueParameter(0, 1, (EF, AF11)),), 2)
    assert item.encode_value() == qp_value(1, 2, sub(bytes.fromhex("00 000001 02 b8 28")))


MALFORMED_QP = {
    "short header": b"\x01\x00\x00",
    "num queues 0": qp_value(0, 0),
    "num queues 0 with a queue": qp_value(0, 0, sub(bytes(5))),
    "count mismatch": qp_value(2, 0, sub(bytes(5))),
    "too many sub-items": qp_value(1, 0, sub(bytes(5)), sub(b"\x01" + bytes(4))),
    "scale 4": qp_value(1, 4, sub(bytes(5))),
    "scale 15": qp_value(1, 15, sub(bytes(5))),
    "unknown sub-item type": qp_value(1, 0, sub(bytes(5), t=2)),
    "private sub-item type": qp_value(1, 0, sub(bytes(5)), sub(b"x", t=65408)),
    "sub-item header cut": qp_value(1, 0, sub(bytes(5)))[:-7],
    "sub-item overruns": qp_value(1, 0, sub(bytes(5)))[:-1],
    "stray octets": qp_value(1, 0, sub(bytes(5))) + b"\x00\x01",
    "queue value too short": qp_value(1, 0, sub(bytes(4))),
    "num dscps too big": qp_value(1, 0, sub(bytes.fromhex("00 000000 02 b8"))),
    "num dscps too small": qp_value(1, 0, sub(bytes.fromhex("00 000000 00 b8"))),
    "queue index 255": qp_value(1, 0, sub(bytes.fromhex("ff 000000 00"))),
}


@pytest.mark.parametrize("raw", MALFORMED_QP.values(), ids=MALFORMED_QP.keys())
def test_malformed_queue_parameters(raw: bytes) -> None:
    with pytest.raises(ItemFormatError, match="Queue"):
        QueueParameters.decode_value(raw)


def test_malformed_in_message_is_invalid_data() -> None:
    """§3.1.1: sub-data item errors are handled like item errors: 130."""
    body = struct.pack("!HH", 23, 4) + qp_value(0, 0)
    raw = struct.pack("!HH", M.SESSION_UPDATE, len(body)) + body
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=ON)
    assert err.value.status == StatusCode.INVALID_DATA
    body = MacAddress(MAC1_B).encode() + struct.pack("!HH", 24, 0)
    raw = struct.pack("!HH", M.DESTINATION_UPDATE, len(body)) + body
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=ON)
    assert err.value.status == StatusCode.INVALID_DATA


def test_repeated_queue_index_kept_first_wins() -> None:
    """§3.1.1: only the first instance of a Queue Index is meaningful."""
    raw = qp_value(2, 0, sub(bytes.fromhex("01 000010 01 b8")), sub(bytes.fromhex("01 000020 00")))
    item = QueueParameters.decode_value(raw)
    assert len(item.queues) == 2
    assert item.encode_value() == raw
    assert item.queue_map() == {1: QueueParameter(1, 16, (EF,))}
    assert item.indexes == {1}
    assert item.queue_of(EF) == 1
    assert item.queue_of(CS1) == 0  # not listed: queue 0 (§3.1)


def test_constructor_validation_names_field() -> None:
    cases = [
        (lambda: QueueParameter(255), "QueueParameter.index"),
        (lambda: QueueParameter(-1), "QueueParameter.index"),
        (lambda: QueueParameter(0, 1 << 24), "QueueParameter.size"),
        (lambda: QueueParameter(0, 0, (64,)), "QueueParameter.dscps"),
        (lambda: QueueParameter(0, 0, (True,)), "QueueParameter.dscps"),
        (lambda: QueueParameter(0, 0, (1,) * 256), "QueueParameter.dscps"),
        (lambda: QueueParameters(()), "QueueParameters.queues"),
        (lambda: QueueParameters((QueueParameter(0),) * 256), "QueueParameters.queues"),
        (lambda: QueueParameters((0,)), "QueueParameters.queues"),  # type: ignore[arg-type]
        (lambda: QueueParameters((QueueParameter(0),), 4), "QueueParameters.scale"),
        (lambda: QueueParameters((QueueParameter(0),), 16), "QueueParameters.scale"),
        (lambda: Pause(()), "Pause.queues"),
        (lambda: Pause((256,)), "Pause.queues"),
        (lambda: Restart(()), "Restart.queues"),
        (lambda: Restart(("1",)), "Restart.queues"),  # type: ignore[arg-type]
    ]
    for make, field_name in cases:
        with pytest.raises(ItemFormatError, match=field_name.replace(".", r"\.")):
            make()


def test_lists_become_tuples() -> None:
    q = QueueParameter(1, 2, [3, 4])  # type: ignore[arg-type]
    assert q.dscps == (3, 4)
    assert QueueParameters([q]).queues == (q,)  # type: ignore[arg-type]
    assert Pause([1, 2]).queues == (1, 2)  # type: ignore[arg-type]
    assert Restart([1]).indexes == {1}  # type: ignore[arg-type]


def test_helpers() -> None:
    assert pause() == Pause((255,))
    assert pause().all_queues
    assert restart() == Restart((255,))
    assert pause(1, 2, 1) == Pause((1, 2))
    assert restart(3) == Restart((3,))
    assert not restart(3).all_queues
    with pytest.raises(ValueError, match="Pause"):
        pause(256)
    with pytest.raises(ValueError, match="Restart"):
        restart(-1)


# --------------------------------------------------------------------------
# Registry: placements per RFC 8651 and negotiation
# --------------------------------------------------------------------------

MAC = MacAddress(MAC1_B)
OK = Status(0)
SIR_BASE = (
    OK,
    PeerType("modem"),
    HeartbeatInterval(1000),
    MaximumDataRateReceive(1),
    MaximumDataRateTransmit(1),
    CurrentDataRateReceive(1),
    CurrentDataRateTransmit(1),
    Latency(1),
    ExtensionsSupported((2,)),
)
SI_BASE = (HeartbeatInterval(1000), PeerType("router"), ExtensionsSupported((2,)))

ALLOWED = [
    (M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, PARAMS)),  # §3.1 MUST
    (M.SESSION_UPDATE, (PARAMS,)),  # §3.1 updates
    (M.SESSION_UPDATE, (Pause((255,)),)),  # §3.2 all destinations
    (M.SESSION_UPDATE, (Restart((0, 1)),)),  # §3.3
    (M.SESSION_UPDATE, (PARAMS, Pause((1,)), Restart((0,)))),
    (M.DESTINATION_UPDATE, (MAC, Pause((1,)))),  # §3.2 one destination
    (M.DESTINATION_UPDATE, (MAC, Restart((1,)))),
    (M.DESTINATION_UPDATE, (MAC, Pause((1,)), Pause((0,)), Restart((255,)))),
]
REFUSED = [
    (M.SESSION_INITIALIZATION, (*SI_BASE, PARAMS)),
    (M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, PARAMS, PARAMS)),
    (M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, PARAMS, Pause((1,)))),
    (M.SESSION_UPDATE, (PARAMS, PARAMS)),
    (M.SESSION_UPDATE_RESPONSE, (OK, Pause((1,)))),
    (M.DESTINATION_UP, (MAC, Pause((1,)))),
    (M.DESTINATION_UP_RESPONSE, (MAC, OK, Restart((1,)))),
    (M.DESTINATION_ANNOUNCE_RESPONSE, (MAC, OK, Pause((1,)))),
    (M.DESTINATION_UPDATE, (MAC, PARAMS)),
    (M.LINK_CHARACTERISTICS_RESPONSE, (MAC, OK, Pause((1,)))),
    (M.HEARTBEAT, (Pause((1,)),)),
]


def test_registration_leaves_core_alone() -> None:
    assert 23 not in core_registry().items
    assert [REG.items[t] for t in (23, 24, 25)] == [QueueParameters, Pause, Restart]
    assert {REG.item_extension[t] for t in (23, 24, 25)} == {2}
    assert not REG.identity_items


@pytest.mark.parametrize(("mtype", "items"), ALLOWED)
def test_allowed_placements(mtype: int, items: tuple[object, ...]) -> None:
    msg = Message(mtype, items)  # type: ignore[arg-type]
    raw = encode_message(msg, REG)
    assert decode_message(raw, REG, extensions=ON) == msg
    with pytest.raises(DecodeError) as err:
        decode_message(raw, REG, extensions=frozenset({1, 3}))
    assert err.value.status == StatusCode.INVALID_DATA
    assert "not in use" in err.value.reason


@pytest.mark.parametrize(("mtype", "items"), REFUSED)
def test_refused_placements(mtype: int, items: tuple[object, ...]) -> None:
    msg = Message(mtype, items)  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        encode_message(msg, REG)
    raw = encode_message(msg, REG, validate=False)
    for negotiated in (None, ON):
        with pytest.raises(DecodeError) as err:
            decode_message(raw, REG, extensions=negotiated)
        assert err.value.status == StatusCode.INVALID_DATA


def test_repeated_identical_pause_refused() -> None:
    msg = Message(M.DESTINATION_UPDATE, (MAC, Pause((1,)), Pause((1,))))
    with pytest.raises(EncodeError, match="duplicate"):
        encode_message(msg, REG)


# --------------------------------------------------------------------------
# Hooks, called directly (no engine)
# --------------------------------------------------------------------------


class FakeSession:
    def __init__(self, role: Role) -> None:
        self.role = role
        self.emitted: list[Event] = []

    def emit(self, event: Event) -> None:
        self.emitted.append(event)

    def take(self) -> list[Event]:
        out, self.emitted = self.emitted, []
        return out


def ours(msg: Message) -> list[object]:
    return [i for i in msg.items if isinstance(i, QueueParameters | Pause | Restart)]


def router_with(params: QueueParameters = PARAMS) -> tuple[PauseExtension, FakeSession]:
    ext = PauseExtension()
    s = FakeSession(Role.ROUTER)
    ext.on_peer_init(s, Message(M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, params)))  # type: ignore[arg-type]
    assert s.take() == []
    assert ext.parameters(s) == params  # type: ignore[arg-type]
    return ext, s


def feed(
    ext: PauseExtension, s: FakeSession, msg: Message, dest: DestKey | None = None
) -> list[Event]:
    if dest is None and msg.type == M.DESTINATION_UPDATE:
        dest = DestKey(msg.items[0].address)  # type: ignore[union-attr]
    ext.on_items(s, msg, dest, ours(msg))  # type: ignore[arg-type]
    return s.take()


def dupdate(mac: bytes, *items: object) -> Message:
    return Message(M.DESTINATION_UPDATE, (MacAddress(mac), *items))  # type: ignore[arg-type]


def supdate(*items: object) -> Message:
    return Message(M.SESSION_UPDATE, items)  # type: ignore[arg-type]


def test_extension_constructor() -> None:
    assert PauseExtension().queue_parameters == QueueParameters((QueueParameter(0, 0, ()),))
    assert PauseExtension(PARAMS).queue_parameters is PARAMS
    seq = PauseExtension([QueueParameter(0, 8), QueueParameter(1, 4, (EF,))], scale=SCALE_KB)
    assert seq.queue_parameters == QueueParameters(
        (QueueParameter(0, 8), QueueParameter(1, 4, (EF,))), SCALE_KB
    )
    for bad in (
        [QueueParameter(1)],
        [QueueParameter(0), QueueParameter(0)],
        [QueueParameter(0), QueueParameter(2)],
    ):
        with pytest.raises(ValueError, match="numbered 0, 1, 2"):
            PauseExtension(bad)
    with pytest.raises(ValueError, match="queues"):
        PauseExtension([])
    with pytest.raises(ValueError, match="scale"):
        PauseExtension([QueueParameter(0)], scale=9)


def test_modem_init_items_declare_queues() -> None:
    ext = PauseExtension(PARAMS)
    s = FakeSession(Role.MODEM)
    assert list(ext.init_items(s)) == [PARAMS]  # type: ignore[arg-type]
    assert ext.state(s).parameters == PARAMS  # type: ignore[arg-type]
    assert list(ext.init_items(FakeSession(Role.ROUTER))) == []  # type: ignore[arg-type]
    ext.on_peer_init(s, Message(M.SESSION_INITIALIZATION, SI_BASE))  # type: ignore[arg-type]


def test_router_requires_queue_parameters() -> None:
    """§3.1: MUST be in a Session Initialization Response listing extension 2."""
    ext = PauseExtension()
    with pytest.raises(ExtensionViolation, match="Queue Parameters") as err:
        ext.on_peer_init(
            FakeSession(Role.ROUTER), Message(M.SESSION_INITIALIZATION_RESPONSE, SIR_BASE)
        )  # type: ignore[arg-type]
    assert err.value.status == StatusCode.INVALID_DATA


def test_router_destination_pause_and_restart() -> None:
    ext, s = router_with()
    assert feed(ext, s, dupdate(MAC1_B, Pause((1,)))) == [
        QueuesPaused(DestKey(MAC1_B), frozenset({1}), frozenset({1}))
    ]
    assert ext.paused(s, MAC1_B) == {1}  # type: ignore[arg-type]
    assert ext.paused(s) == set()  # type: ignore[arg-type]
    assert ext.paused(s, MAC2_B) == set()  # type: ignore[arg-type]
    assert ext.is_paused(s, MAC1_B, EF)  # type: ignore[arg-type]
    assert not ext.is_paused(s, MAC1_B, CS1)  # type: ignore[arg-type]  # queue 0
    assert not ext.is_paused(s, MAC1_B)  # type: ignore[arg-type]
    assert not ext.is_paused(s, MAC2_B, EF)  # type: ignore[arg-type]
    assert feed(ext, s, dupdate(MAC1_B, Pause((0,)))) == [
        QueuesPaused(DestKey(MAC1_B), frozenset({0}), frozenset({0, 1}))
    ]
    assert ext.is_paused(s, MAC1_B)  # type: ignore[arg-type]  # every queue
    assert feed(ext, s, dupdate(MAC1_B, Restart((1, 0)))) == [
        QueuesRestarted(DestKey(MAC1_B), frozenset({0, 1}), frozenset())
    ]
    assert ext.state(s).dest_paused == {}  # type: ignore[arg-type]


def test_router_all_queues_255() -> None:
    ext, s = router_with()
    assert feed(ext, s, dupdate(MAC1_B, Pause((255,)))) == [
        QueuesPaused(DestKey(MAC1_B), frozenset({255}), frozenset({255}))
    ]
    assert ext.is_paused(s, MAC1_B)  # type: ignore[arg-type]
    assert ext.is_paused(s, MAC1_B, CS1)  # type: ignore[arg-type]
    # Restarting one queue leaves 'all traffic' paused (255 stays).
    feed(ext, s, dupdate(MAC1_B, Restart((1,))))
    assert ext.paused(s, MAC1_B) == {255}  # type: ignore[arg-type]
    feed(ext, s, dupdate(MAC1_B, Pause((1,))))
    assert feed(ext, s, dupdate(MAC1_B, Restart((255,)))) == [
        QueuesRestarted(DestKey(MAC1_B), frozenset({255}), frozenset())
    ]
    assert not ext.is_paused(s, MAC1_B, EF)  # type: ignore[arg-type]


def test_router_session_wide_pause() -> None:
    """§3.2: Pause in a Session Update applies to all destinations."""
    ext, s = router_with()
    assert feed(ext, s, supdate(Pause((1,)))) == [
        QueuesPaused(None, frozenset({1}), frozenset({1}))
    ]
    assert ext.paused(s) == {1}  # type: ignore[arg-type]
    for mac in (MAC1_B, MAC2_B):
        assert ext.is_paused(s, mac, AF11)  # type: ignore[arg-type]
        assert not ext.is_paused(s, mac, CS1)  # type: ignore[arg-type]
    feed(ext, s, dupdate(MAC2_B, Pause((0,))))
    assert ext.is_paused(s, MAC2_B)  # type: ignore[arg-type]
    assert not ext.is_paused(s, MAC1_B)  # type: ignore[arg-type]
    # Scopes are independent: a session-wide Restart leaves the destination's.
    assert feed(ext, s, supdate(Restart((255,)))) == [
        QueuesRestarted(None, frozenset({255}), frozenset())
    ]
    assert ext.paused(s, MAC2_B) == {0}  # type: ignore[arg-type]
    assert feed(ext, s, supdate(Pause((255,)))) == [
        QueuesPaused(None, frozenset({255}), frozenset({255}))
    ]
    assert ext.is_paused(s, MAC1_B, EF)  # type: ignore[arg-type]


def test_router_processes_items_in_order() -> None:
    ext, s = router_with()
    events = feed(ext, s, dupdate(MAC1_B, Pause((0, 1)), Restart((0,))))
    assert events == [
        QueuesPaused(DestKey(MAC1_B), frozenset({0, 1}), frozenset({0, 1})),
        QueuesRestarted(DestKey(MAC1_B), frozenset({0}), frozenset({1})),
    ]


@pytest.mark.parametrize("item", [Pause((2,)), Restart((7,)), Pause((1, 254))])
@pytest.mark.parametrize("scope", ["session", "destination"])
def test_router_unknown_queue_index_is_invalid_data(item: Pause | Restart, scope: str) -> None:
    """§3.2: a Queue Index other than 255 or an established one: 130."""
    ext, s = router_with()
    msg = supdate(item) if scope == "session" else dupdate(MAC1_B, item)
    with pytest.raises(ExtensionViolation, match="not established") as err:
        feed(ext, s, msg)
    assert err.value.status == StatusCode.INVALID_DATA


def test_router_queue_parameters_update() -> None:
    """§3.1: a Session Update may redeclare the queues; pauses of queues that
    no longer exist are dropped, 255 stays."""
    ext, s = router_with()
    feed(ext, s, dupdate(MAC1_B, Pause((1,))))
    feed(ext, s, dupdate(MAC2_B, Pause((0, 1, 255))))
    feed(ext, s, supdate(Pause((0, 1))))
    new = QueueParameters((QueueParameter(0, 128),), SCALE_KB)
    assert feed(ext, s, supdate(new)) == [QueueParametersChanged(new)]
    assert ext.state(s).parameters == new  # type: ignore[arg-type]
    assert ext.paused(s) == {0}  # type: ignore[arg-type]
    assert ext.paused(s, MAC1_B) == set()  # type: ignore[arg-type]
    assert ext.paused(s, MAC2_B) == {0, 255}  # type: ignore[arg-type]
    with pytest.raises(ExtensionViolation):
        feed(ext, s, dupdate(MAC1_B, Pause((1,))))
    # New queues apply to the whole message that declares them.
    ext2, s2 = router_with(QueueParameters((QueueParameter(0, 1),)))
    events = feed(ext2, s2, supdate(Pause((1,)), PARAMS))
    assert events == [
        QueueParametersChanged(PARAMS),
        QueuesPaused(None, frozenset({1}), frozenset({1})),
    ]


def test_router_destination_gone_forgets_pauses() -> None:
    ext, s = router_with()
    feed(ext, s, dupdate(MAC1_B, Pause((1,))))
    ext.on_destination_gone(s, DestKey(MAC1_B))  # type: ignore[arg-type]
    assert ext.paused(s, MAC1_B) == set()  # type: ignore[arg-type]
    ext.on_destination_gone(s, DestKey(MAC2_B))  # type: ignore[arg-type]  # unknown: no error


def test_modem_refuses_pause_items_from_router() -> None:
    """§3: these items are sent by a modem; a router's are Invalid Data."""
    ext = PauseExtension()
    s = FakeSession(Role.MODEM)
    for msg in (supdate(Pause((0,))), supdate(PARAMS), supdate(Restart((255,)))):
        with pytest.raises(ExtensionViolation, match="only a modem") as err:
            feed(ext, s, msg)
        assert err.value.status == StatusCode.INVALID_DATA


def test_on_items_for_session_initialization_response() -> None:
    ext = PauseExtension()
    s = FakeSession(Role.ROUTER)
    sir = Message(M.SESSION_INITIALIZATION_RESPONSE, (*SIR_BASE, PARAMS))
    ext.on_peer_init(s, sir)  # type: ignore[arg-type]
    feed(ext, s, sir)  # idempotent
    assert s.take() == []
    assert ext.parameters(s) == PARAMS  # type: ignore[arg-type]
    assert ext.new_state(s) is ext.state(s)  # type: ignore[arg-type]


def test_is_paused_before_queue_parameters() -> None:
    ext = PauseExtension()
    s = FakeSession(Role.ROUTER)
    assert not ext.is_paused(s, MAC1_B)  # type: ignore[arg-type]
    assert not ext.is_paused(s, MAC1_B, EF)  # type: ignore[arg-type]


def test_check_outgoing() -> None:
    ext = PauseExtension(PARAMS)
    modem = FakeSession(Role.MODEM)
    ext.init_items(modem)  # type: ignore[arg-type]
    ok = [
        [MacAddress(MAC1_B), pause(1)],
        [pause(), restart(0, 1)],
        [QueueParameters((QueueParameter(0), QueueParameter(1), QueueParameter(2))), pause(2)],
        [MacAddress(MAC1_B)],
    ]
    for items in ok:
        ext.check_outgoing(modem, M.SESSION_UPDATE, items)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Queue Index 2"):
        ext.check_outgoing(modem, M.DESTINATION_UPDATE, [MacAddress(MAC1_B), pause(2)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Queue Index 1"):
        ext.check_outgoing(  # type: ignore[arg-type]
            modem, M.SESSION_UPDATE, [QueueParameters((QueueParameter(0),)), restart(1)]
        )
    ext.check_outgoing(  # type: ignore[arg-type]
        modem, M.SESSION_UPDATE, [pause(2), QueueParameters(tuple(map(QueueParameter, range(3))))]
    )
    with pytest.raises(ValueError, match="numbered"):
        ext.check_outgoing(modem, M.SESSION_UPDATE, [QueueParameters((QueueParameter(1),))])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only a modem"):
        ext.check_outgoing(FakeSession(Role.ROUTER), M.SESSION_UPDATE, [pause()])  # type: ignore[arg-type]
    # Before init_items: the configured parameters.
    ext.check_outgoing(FakeSession(Role.MODEM), M.SESSION_UPDATE, [pause(1)])  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Sessions: not negotiated (no engine hooks needed)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("r", "m"), [((), (2,)), ((2,), ()), ((), ())])
def test_not_negotiated_never_sent(r: tuple[int, ...], m: tuple[int, ...]) -> None:
    p = established(
        router_config(registry=REG, extensions=r), modem_config(registry=REG, extensions=m)
    )
    p.up([MAC1])
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.update_destination(MAC1, extra=[pause(0)], now=p.now)
    assert p.modem.data_to_send() == b""


@pytest.mark.parametrize(
    "message",
    [
        Message(M.DESTINATION_UPDATE, (MacAddress(MAC1_B), Pause((0,)))),
        Message(M.SESSION_UPDATE, (Restart((0,)),)),
        Message(M.SESSION_UPDATE, (PARAMS,)),
    ],
)
def test_not_negotiated_received_is_invalid_data(message: Message) -> None:
    p = established(router_config(registry=REG), modem_config(registry=REG, extensions=(2,)))
    p.up([MAC1])
    p.inject("router", message)
    (term,) = p.sent("router")
    assert term.type == M.SESSION_TERMINATION
    assert status_of(term) == StatusCode.INVALID_DATA


# --------------------------------------------------------------------------
# Sessions with the engine hooks
# --------------------------------------------------------------------------


def paused_pair(params: QueueParameters = PARAMS) -> tuple[Pair, PauseExtension, PauseExtension]:
    rext, mext = PauseExtension(), PauseExtension(params)
    p = Pair(
        router_config(registry=REG, plugins=(rext,)), modem_config(registry=REG, plugins=(mext,))
    )
    p.establish()
    return p, rext, mext


def test_flow_queue_parameters_in_session_initialization_response() -> None:
    p = Pair(
        router_config(registry=REG, plugins=(PauseExtension(),)),
        modem_config(registry=REG, plugins=(PauseExtension(PARAMS),)),
    )
    p.pump()
    (sir,) = [w.message for w in p.log if w.type == M.SESSION_INITIALIZATION_RESPONSE]
    assert sir.get(QueueParameters) == PARAMS
    assert sir.get(ExtensionsSupported) == ExtensionsSupported((2,))
    assert not [e for e in p.router.events() if isinstance(e, QueueParametersChanged)]
    assert p.router.state is State.IN_SESSION
    (rext,) = p.router.config.plugins
    assert isinstance(rext, PauseExtension)
    assert rext.parameters(p.router) == PARAMS


def test_flow_missing_queue_parameters_terminates() -> None:
    """§3.1: a modem listing extension 2 without Queue Parameters: 130."""
    p = Pair(
        router_config(registry=REG, plugins=(PauseExtension(),)),
        modem_config(registry=REG, extensions=(2,)),
    )
    p.pump()
    terms = [w.message for w in p.log if w.type == M.SESSION_TERMINATION]
    assert [(status_of(t)) for t in terms] == [StatusCode.INVALID_DATA]
    assert p.router.state is not State.IN_SESSION


def test_flow_destination_pause_restart() -> None:
    p, rext, _ = paused_pair()
    p.up([MAC1])
    assert p.modem.update_destination(MAC1, extra=[pause(1)], now=p.now)
    p.pump()
    events = p.router.events()
    paused = [e for e in events if isinstance(e, QueuesPaused)]
    assert [(e.queues, e.paused) for e in paused] == [({1}, {1})]
    dest = paused[0].dest
    assert dest is not None and dest.mac == MAC1_B
    assert rext.paused(p.router, dest) == {1}
    assert rext.is_paused(p.router, dest, EF)
    p.modem.update_destination(MAC1, extra=[restart(1)], now=p.now)
    p.pump()
    (ev,) = [e for e in p.router.events() if isinstance(e, QueuesRestarted)]
    assert ev.paused == frozenset()
    assert not rext.is_paused(p.router, dest, EF)


def test_flow_pause_with_metrics_and_destination_down() -> None:
    p, rext, _ = paused_pair()
    p.up([MAC1])
    p.modem.update_destination(MAC1, Metrics(latency=9), extra=[pause()], now=p.now)
    p.pump()
    (ev,) = [e for e in p.router.events() if isinstance(e, QueuesPaused)]
    assert ev.dest is not None and rext.is_paused(p.router, ev.dest)
    p.modem.drop_destination(MAC1, now=p.now)
    p.pump()
    assert rext.paused(p.router, ev.dest) == set()  # on_destination_gone


def test_flow_unknown_queue_index_terminates() -> None:
    p, _, _ = paused_pair()
    p.up([MAC1])
    # Strict on send: the engine runs the extension's sender-side rules.
    with pytest.raises(SessionError, match="Queue Index 7"):
        p.modem.update_destination(MAC1, extra=[pause(7)], now=p.now)
    # A peer that sends it anyway is refused with 130.
    p.inject("router", Message(M.DESTINATION_UPDATE, (MacAddress(MAC1_B), pause(7))))
    p.pump()
    terms = [w for w in p.log if w.type == M.SESSION_TERMINATION]
    assert terms[0].sender == "router"
    assert status_of(terms[0].message) == StatusCode.INVALID_DATA


def test_flow_session_wide_pause() -> None:
    p, rext, _ = paused_pair()
    p.up([MAC1])
    p.modem.update_session(extra=[pause(255)], now=p.now)  # type: ignore[call-arg]
    p.pump()
    (ev,) = [e for e in p.router.events() if isinstance(e, QueuesPaused)]
    assert ev.dest is None
    assert rext.paused(p.router) == {255}
    (resp,) = [w.message for w in p.log if w.type == M.SESSION_UPDATE_RESPONSE]
    assert status_of(resp) == StatusCode.SUCCESS


def test_flow_router_pause_item_refused_by_modem() -> None:
    p, _, _ = paused_pair()
    p.inject("modem", Message(M.SESSION_UPDATE, (Pause((0,)),)))
    sent = p.sent("modem")
    assert sent[-1].type == M.SESSION_TERMINATION
    assert status_of(sent[-1]) == StatusCode.INVALID_DATA


def test_queue_parameters_without_negotiation_is_invalid_data() -> None:
    p = Pair(
        router_config(registry=REG, plugins=(PauseExtension(),)),
        modem_config(registry=REG),
        start=False,
    )
    p.router.start(p.now)
    p.router.data_to_send()
    base = [i for i in SIR_BASE if not isinstance(i, ExtensionsSupported)]
    p.inject("router", Message(M.SESSION_INITIALIZATION_RESPONSE, (*base, PARAMS)))
    sent = p.sent("router")
    assert [m.type for m in sent] == [M.SESSION_TERMINATION]
    assert status_of(sent[0]) == StatusCode.INVALID_DATA
