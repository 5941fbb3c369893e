"""RFC 9893 credit-window flow control with RFC 9894 (code 6) and RFC 9895
(code 5): item codecs, placements, the accounting model, the per-session
behaviour (driven through the extension hooks with a stand-in session), and
message flows between a router and a modem engine (skipped until the engine
calls extension hooks)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlep.ext.base import ExtensionViolation
from dlep.ext.credit import (
    ALL_FIDS,
    CREDIT_CONTROL,
    CREDIT_CONTROL_RESPONSE,
    CREDIT_ITEMS,
    CreditControlChannel,
    CreditGranted,
    CreditLedger,
    CreditRequested,
    CreditSessionState,
    CreditStatusReceived,
    CreditWindowAssociated,
    CreditWindowAssociation,
    CreditWindowExtension,
    CreditWindowGrant,
    CreditWindowInfo,
    CreditWindowInitialization,
    CreditWindowRequest,
    CreditWindowsChanged,
    CreditWindowStatus,
    TrafficClassificationChanged,
    credit_message_specs,
    credit_state,
)
from dlep.ext.credit_8021q import Ieee8021qCreditWindow
from dlep.ext.credit_diffserv import DiffservCreditWindow
from dlep.ext.traffic_class import (
    DiffservClassification,
    EthernetClassification,
    TrafficClassification,
)
from dlep.fsm import DestKey, Event, Inconsistency, Role, State
from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    DecodeError,
    EncodeError,
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

M = MessageType
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ROUND = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DA = 6  # RFC 9894
ETH = 5  # RFC 9895
ON = frozenset({DA})
OFF: frozenset[int] = frozenset()
MAC1 = bytes.fromhex("020000000001")
MAC2 = bytes.fromhex("020000000002")
KIB = 1024


def registry(*exts: CreditWindowExtension) -> Registry:
    reg = core_registry()
    for ext in exts or (DiffservCreditWindow(),):
        ext.register(reg)
    return reg


REG = registry()
REG5 = registry(Ieee8021qCreditWindow())

#: The modem's classes: TID 1 = EF -> window 10, everything else -> 11; TID 2 -> window 12.
TC1 = TrafficClassification(1, (DiffservClassification(10, (46,)), DiffservClassification(11)))
TC2 = TrafficClassification(2, (DiffservClassification(12),))
W10 = CreditWindowInitialization.from_octets(10, 4000, 64 * KIB)
W11 = CreditWindowInitialization.from_octets(11, 0, 64 * KIB)
W12 = CreditWindowInitialization.from_octets(12, 1000, 10_000)


# --------------------------------------------------------------------------
# Byte vectors (layouts of RFC 9893 §2.3)
# --------------------------------------------------------------------------


def test_initialization_vector() -> None:
    item = CreditWindowInitialization(0x0102, 65536, 64, 1)
    assert item.encode() == bytes.fromhex(
        "001e 0010" + "0102 0000" + "0000000000010000" + "01 000040"
    )
    assert item.max_octets == 64 * 1024
    assert CreditWindowInitialization.decode_value(item.encode()[4:]) == item


def test_association_vector() -> None:
    item = CreditWindowAssociation(0xBEEF)
    assert item.encode() == bytes.fromhex("001f 0002 beef")
    assert CreditWindowAssociation.decode_value(bytes.fromhex("beef")) == item


def test_grant_and_status_vectors() -> None:
    assert CreditWindowGrant(7, 1500).encode() == bytes.fromhex(
        "0020 000c 0007 0000 00000000000005dc"
    )
    assert CreditWindowStatus(7, 2**64 - 1).encode() == bytes.fromhex(
        "0021 000c 0007 0000 ffffffffffffffff"
    )


def test_request_vector() -> None:
    item = CreditWindowRequest((1, 2, ALL_FIDS))
    assert item.encode() == bytes.fromhex("0022 0006 0001 0002 ffff")
    assert item.all
    assert not CreditWindowRequest((1,)).all


def test_reserved_fields_ignored_on_receipt() -> None:
    cwi = CreditWindowInitialization.decode_value(
        bytes.fromhex("0001 ffff" + "00" * 7 + "05 02000010")
    )
    assert cwi == CreditWindowInitialization(1, 5, 16, 2)
    assert cwi.encode_value()[2:4] == b"\x00\x00"
    grant = CreditWindowGrant.decode_value(bytes.fromhex("0001 abcd 0000000000000009"))
    assert grant == CreditWindowGrant(1, 9)
    assert grant.encode_value()[2:4] == b"\x00\x00"
    status = CreditWindowStatus.decode_value(bytes.fromhex("0001 0001 0000000000000009"))
    assert status == CreditWindowStatus(1, 9)


def test_scales() -> None:
    assert CreditWindowInitialization(1, 0, 3, 0).max_octets == 3
    assert CreditWindowInitialization(1, 0, 3, 2).max_octets == 3 * 1024**2
    assert CreditWindowInitialization(1, 0, 0xFFFFFF, 3).max_octets == 0xFFFFFF * 1024**3
    assert CreditWindowInitialization.from_octets(1, 0, 0xFFFFFF) == CreditWindowInitialization(
        1, 0, 0xFFFFFF, 0
    )
    big = CreditWindowInitialization.from_octets(1, 0, 0x1000000)
    assert (big.max_size, big.scale) == (0x4000, 1)
    # Rounded down: never more than the modem has.
    assert CreditWindowInitialization.from_octets(1, 0, 0x1000000 + 1023).max_octets == 0x1000000
    with pytest.raises(ItemFormatError):
        CreditWindowInitialization.from_octets(1, 0, (0xFFFFFF + 1) * 1024**3)


BAD_VALUES = {
    "cwi short": (CreditWindowInitialization, bytes(15)),
    "cwi long": (CreditWindowInitialization, bytes(17)),
    "cwi scale 4": (CreditWindowInitialization, bytes(12) + b"\x04\x00\x00\x01"),
    "cwi scale 255": (CreditWindowInitialization, bytes(12) + b"\xff\x00\x00\x01"),
    "cwa short": (CreditWindowAssociation, b"\x01"),
    "cwa long": (CreditWindowAssociation, b"\x00\x01\x02"),
    "grant short": (CreditWindowGrant, bytes(11)),
    "grant long": (CreditWindowGrant, bytes(13)),
    "status short": (CreditWindowStatus, bytes(8)),
    "request empty": (CreditWindowRequest, b""),
    "request odd": (CreditWindowRequest, b"\x00\x01\x02"),
    "request one octet": (CreditWindowRequest, b"\x01"),
}


@pytest.mark.parametrize(("cls", "value"), BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_malformed_values_are_refused(cls: type[DataItem], value: bytes) -> None:
    with pytest.raises(ItemFormatError):
        cls.decode_value(value)


BAD_CONSTRUCTORS = {
    "cwi fid": lambda: CreditWindowInitialization(0x10000, 0, 0),
    "cwi credits": lambda: CreditWindowInitialization(1, 2**64, 0),
    "cwi max": lambda: CreditWindowInitialization(1, 0, 0x1000000),
    "cwi scale": lambda: CreditWindowInitialization(1, 0, 1, 4),
    "cwi bool": lambda: CreditWindowInitialization(1, True, 1),
    "cwa tid": lambda: CreditWindowAssociation(-1),
    "grant credits": lambda: CreditWindowGrant(1, -1),
    "status fid": lambda: CreditWindowStatus(0x10000, 0),
    "request empty": lambda: CreditWindowRequest(()),
    "request junk": lambda: CreditWindowRequest((1, "x")),  # type: ignore[arg-type]
    "request bytes": lambda: CreditWindowRequest(b"\x00\x01"),  # type: ignore[arg-type]
    "request int": lambda: CreditWindowRequest(5),  # type: ignore[arg-type]
    "request too many": lambda: CreditWindowRequest(tuple(range(0x8000))),
}


@pytest.mark.parametrize("make", BAD_CONSTRUCTORS.values(), ids=list(BAD_CONSTRUCTORS))
def test_constructors_validate(make: object) -> None:
    with pytest.raises(ItemFormatError):
        make()  # type: ignore[operator]


u16 = st.integers(0, 0xFFFF)
u64 = st.integers(0, 2**64 - 1)
ITEM_STRATEGIES: dict[type[DataItem], st.SearchStrategy[DataItem]] = {
    CreditWindowInitialization: st.builds(
        CreditWindowInitialization, u16, u64, st.integers(0, 0xFFFFFF), st.integers(0, 3)
    ),
    CreditWindowAssociation: st.builds(CreditWindowAssociation, u16),
    CreditWindowGrant: st.builds(CreditWindowGrant, u16, u64),
    CreditWindowStatus: st.builds(CreditWindowStatus, u16, u64),
    CreditWindowRequest: st.builds(
        CreditWindowRequest, st.lists(u16, min_size=1, max_size=40).map(tuple)
    ),
}
CREDIT_ONLY = [c for c in CREDIT_ITEMS if c is not TrafficClassification]


@pytest.mark.parametrize("cls", CREDIT_ONLY, ids=[c.__name__ for c in CREDIT_ONLY])
@ROUND
@given(data=st.data())
def test_round_trip(cls: type[DataItem], data: st.DataObject) -> None:
    item = data.draw(ITEM_STRATEGIES[cls])
    raw = item.encode()
    t, length = struct.unpack_from("!HH", raw)
    assert (t, length) == (cls.TYPE, len(raw) - 4)
    assert cls.decode_value(raw[4:]) == item


@pytest.mark.parametrize("cls", CREDIT_ONLY, ids=[c.__name__ for c in CREDIT_ONLY])
@FUZZ
@given(data=st.binary(max_size=40))
def test_fuzz(cls: type[DataItem], data: bytes) -> None:
    try:
        item = cls.decode_value(data)
    except ItemFormatError:
        return
    assert cls.decode_value(item.encode_value()) == item
    assert len(item.encode_value()) == len(data)


@FUZZ
@given(st.binary(max_size=48).map(lambda b: struct.pack("!HH", CREDIT_CONTROL, len(b)) + b))
def test_fuzz_credit_control_message(data: bytes) -> None:
    """Whole messages: a Message or a DecodeError, nothing else."""
    try:
        msg = decode_message(data, REG, extensions=ON)
    except DecodeError:
        return
    assert decode_message(encode_message(msg, REG), REG, extensions=ON) == msg


# --------------------------------------------------------------------------
# Placements: where each item may appear, and how often
# --------------------------------------------------------------------------

METRICS: tuple[DataItem, ...] = (
    MaximumDataRateReceive(0),
    MaximumDataRateTransmit(0),
    CurrentDataRateReceive(0),
    CurrentDataRateTransmit(0),
    Latency(0),
)
#: The core items each message type needs, to test one extension item in it.
BASE: dict[int, tuple[DataItem, ...]] = {
    M.SESSION_INITIALIZATION: (HeartbeatInterval(1000), PeerType("r")),
    M.SESSION_INITIALIZATION_RESPONSE: (
        Status(0),
        PeerType("m"),
        HeartbeatInterval(1000),
        *METRICS,
    ),
    M.SESSION_UPDATE: (),
    M.SESSION_UPDATE_RESPONSE: (Status(0),),
    M.DESTINATION_UP: (MacAddress(MAC1),),
    M.DESTINATION_UP_RESPONSE: (MacAddress(MAC1), Status(0)),
    M.DESTINATION_ANNOUNCE: (MacAddress(MAC1),),
    M.DESTINATION_ANNOUNCE_RESPONSE: (MacAddress(MAC1), Status(0)),
    M.DESTINATION_DOWN: (MacAddress(MAC1),),
    M.DESTINATION_UPDATE: (MacAddress(MAC1),),
    M.LINK_CHARACTERISTICS_RESPONSE: (MacAddress(MAC1), Status(0)),
    M.HEARTBEAT: (),
    CREDIT_CONTROL: (),
    CREDIT_CONTROL_RESPONSE: (),
}
SAMPLE: dict[type[DataItem], DataItem] = {
    TrafficClassification: TC1,
    CreditWindowInitialization: W10,
    CreditWindowAssociation: CreditWindowAssociation(1),
    CreditWindowGrant: CreditWindowGrant(10, 100),
    CreditWindowStatus: CreditWindowStatus(10, 100),
    CreditWindowRequest: CreditWindowRequest((10,)),
}
SENT = {
    TrafficClassification: {M.SESSION_INITIALIZATION_RESPONSE, M.SESSION_UPDATE},
    CreditWindowInitialization: {M.SESSION_INITIALIZATION_RESPONSE, M.SESSION_UPDATE},
    CreditWindowAssociation: {M.DESTINATION_UP, M.DESTINATION_UPDATE},
    CreditWindowGrant: {
        M.DESTINATION_UP,
        M.DESTINATION_ANNOUNCE_RESPONSE,
        M.DESTINATION_UPDATE,
        CREDIT_CONTROL,
        CREDIT_CONTROL_RESPONSE,
    },
    CreditWindowStatus: {M.DESTINATION_UP_RESPONSE, CREDIT_CONTROL, CREDIT_CONTROL_RESPONSE},
    CreditWindowRequest: {CREDIT_CONTROL},
}
#: Accepted on receipt, never sent (RFC 9893 §2.3.2/§2.3.3 "in the same message").
RECEIVED_ONLY = {
    TrafficClassification: {M.DESTINATION_UP, M.DESTINATION_UPDATE},
    CreditWindowInitialization: {M.DESTINATION_UP, M.DESTINATION_UPDATE},
}
CASES = [(cls, mt) for cls in SAMPLE for mt in BASE]


def _with(mt: int, *items: DataItem) -> Message:
    extra: tuple[DataItem, ...] = ()
    if mt == CREDIT_CONTROL and not any(
        isinstance(i, CreditWindowGrant | CreditWindowRequest) for i in items
    ):
        extra = (CreditWindowRequest((1,)),)
    if mt == CREDIT_CONTROL_RESPONSE and not any(
        isinstance(i, CreditWindowGrant | CreditWindowStatus) for i in items
    ):
        extra = (CreditWindowGrant(1, 0),)
    return Message(mt, (*BASE[mt], *extra, *items))


@pytest.mark.parametrize(("cls", "mt"), CASES, ids=[f"{c.__name__}-in-{mt}" for c, mt in CASES])
def test_placement(cls: type[DataItem], mt: int) -> None:
    msg = _with(mt, SAMPLE[cls])
    raw = encode_message(msg, REG, validate=False)
    if mt in SENT[cls]:
        assert encode_message(msg, REG) == raw
        assert decode_message(raw, REG, extensions=ON) == msg
        # Not negotiated: the item (or the credit message itself) is refused.
        with pytest.raises(DecodeError) as exc:
            decode_message(raw, REG, extensions=OFF)
        want = StatusCode.UNKNOWN_MESSAGE if mt >= CREDIT_CONTROL else StatusCode.INVALID_DATA
        assert exc.value.status == want
        return
    with pytest.raises(EncodeError):
        encode_message(msg, REG)
    if mt in RECEIVED_ONLY.get(cls, ()):
        assert decode_message(raw, REG, extensions=ON) == msg
        with pytest.raises(DecodeError) as exc:
            decode_message(raw, REG, extensions=OFF)
        assert exc.value.status == StatusCode.INVALID_DATA
    else:
        with pytest.raises(DecodeError) as exc:
            decode_message(raw, REG, extensions=ON)
        assert exc.value.status == StatusCode.INVALID_DATA


def test_not_negotiated_items_rejected_with_130() -> None:
    for cls, mts in SENT.items():
        for mt in mts:
            if mt >= CREDIT_CONTROL:
                continue
            raw = encode_message(_with(mt, SAMPLE[cls]), REG)
            with pytest.raises(DecodeError) as exc:
                decode_message(raw, REG, extensions=OFF)
            assert exc.value.status == 130
            assert exc.value.item_type == cls.TYPE


def test_core_registry_does_not_know_the_items() -> None:
    raw = encode_message(_with(M.DESTINATION_UPDATE, CreditWindowAssociation(1)), REG)
    with pytest.raises(DecodeError) as exc:
        decode_message(raw, core_registry())
    assert exc.value.status == 130
    with pytest.raises(DecodeError) as exc:
        decode_message(encode_message(_with(CREDIT_CONTROL), REG), core_registry())
    assert exc.value.status == 128


def test_association_at_most_once() -> None:
    msg = _with(M.DESTINATION_UP, CreditWindowAssociation(1), CreditWindowAssociation(2))
    with pytest.raises(EncodeError):
        encode_message(msg, REG)
    with pytest.raises(DecodeError):
        decode_message(encode_message(msg, REG, validate=False), REG, extensions=ON)


def test_repeatable_items_with_different_values() -> None:
    msg = _with(M.DESTINATION_UPDATE, CreditWindowGrant(1, 5), CreditWindowGrant(2, 5), TC1)
    with pytest.raises(EncodeError):  # TC is receive-only in a Destination Update
        encode_message(msg, REG)
    ok = _with(M.SESSION_UPDATE, TC1, TC2, W10, W11)
    assert decode_message(encode_message(ok, REG), REG, extensions=ON) == ok
    dup = _with(M.SESSION_UPDATE, W10, W10)
    with pytest.raises(EncodeError):
        encode_message(dup, REG)


def test_credit_control_needs_grant_or_request() -> None:
    for msg in (Message(CREDIT_CONTROL, ()), Message(CREDIT_CONTROL, (CreditWindowStatus(1, 0),))):
        with pytest.raises(EncodeError):
            encode_message(msg, REG)
        with pytest.raises(DecodeError) as exc:
            decode_message(encode_message(msg, REG, validate=False), REG, extensions=ON)
        assert exc.value.status == 130
    msg = Message(CREDIT_CONTROL_RESPONSE, ())
    with pytest.raises(EncodeError):
        encode_message(msg, REG)
    with pytest.raises(DecodeError):
        decode_message(encode_message(msg, REG, validate=False), REG, extensions=ON)
    bad = Message(CREDIT_CONTROL_RESPONSE, (CreditWindowRequest((1,)),))
    with pytest.raises(EncodeError):
        encode_message(bad, REG)


def test_message_specs_are_fresh_and_tagged() -> None:
    a, b = credit_message_specs()
    assert (a.code, b.code) == (CREDIT_CONTROL, CREDIT_CONTROL_RESPONSE)
    assert credit_message_specs()[0] is not a
    assert REG.messages[CREDIT_CONTROL].extension == DA
    assert REG5.messages[CREDIT_CONTROL].extension == ETH
    assert DiffservCreditWindow.messages[0] is not Ieee8021qCreditWindow.messages[0]


def test_8021q_registry() -> None:
    on5 = frozenset({ETH})
    raw = encode_message(_with(M.DESTINATION_UP, CreditWindowAssociation(1)), REG5)
    assert decode_message(raw, REG5, extensions=on5).get(CreditWindowAssociation) is not None
    with pytest.raises(DecodeError):
        decode_message(raw, REG5, extensions=ON)  # 6 is not 5


def test_both_extensions_registered_either_negotiated() -> None:
    reg = registry(DiffservCreditWindow(), Ieee8021qCreditWindow())
    raw = encode_message(_with(M.DESTINATION_UP, CreditWindowAssociation(1)), reg)
    for negotiated in (frozenset({DA}), frozenset({ETH}), frozenset({DA, ETH})):
        decode_message(raw, reg, extensions=negotiated)
        decode_message(encode_message(_with(CREDIT_CONTROL), reg), reg, extensions=negotiated)


# --------------------------------------------------------------------------
# The accounting model
# --------------------------------------------------------------------------


def test_ledger_initialize_caps_and_resets() -> None:
    led = CreditLedger()
    w = led.initialize(1, 5000, 4000)
    assert (w.credits, w.max_size) == (4000, 4000)  # capped at the maximum (§2.3.1)
    led.initialize(1, 100, 4000)
    assert led.credits(1) == 100  # a later initialisation resets the window
    led.initialize(1, 100, 50)
    assert led.credits(1) == 50  # a smaller maximum shrinks it
    assert led.snapshot() == (CreditWindowInfo(1, 50, 50),)


def test_ledger_grant_consume_until_exhausted() -> None:
    led = CreditLedger()
    led.initialize(7, 0, 10_000)
    assert not led.consume(7, 1)  # no credits: must not send
    assert led.add(7, 3000) == 3000
    sent = 0
    while led.consume(7, 1000):
        sent += 1
    assert sent == 3 and led.credits(7) == 0
    assert led.add(7, 1500) == 1500
    assert not led.consume(7, 1501)  # not enough for this packet: nothing taken
    assert led.credits(7) == 1500
    assert led.consume(7, 1500) and led.credits(7) == 0
    assert led.consume(7, 0)


def test_ledger_grant_caps_at_max() -> None:
    led = CreditLedger()
    led.initialize(1, 9000, 10_000)
    assert led.add(1, 5000) == 1000  # overflow: set to the maximum (§2.3.3)
    assert led.credits(1) == 10_000
    assert led.add(1, 2**64 - 1) == 0
    assert led.add(2, 10) is None  # unknown window


def test_ledger_unknown_window_and_bad_arguments() -> None:
    led = CreditLedger()
    assert not led.consume(3, 1)
    assert led.credits(3) == 0
    assert led.drain(3, 5) == 0
    with pytest.raises(ValueError):
        led.consume(3, -1)
    with pytest.raises(ValueError):
        led.drain(3, -1)


def test_ledger_drain_never_negative() -> None:
    led = CreditLedger()
    led.initialize(1, 100, 1000)
    assert led.drain(1, 60) == 40
    assert led.drain(1, 60) == 0


def test_ledger_classification_and_association() -> None:
    led = CreditLedger()
    assert led.classify(MAC1, dscp=46) is None  # no association: drop
    with pytest.raises(KeyError):
        led.associate(MAC1, 1)
    led.set_classification(TC1)
    assert led.known_fids() == {10, 11}
    assert led.associate(MAC1, 1)
    assert not led.associate(MAC1, 1)
    assert led.classify(MAC1, dscp=46) == 10
    assert led.classify(MAC1, dscp=0) == 11
    led.set_classification(TrafficClassification(1, (DiffservClassification(20, (46,)),)))
    assert led.classify(MAC1, dscp=46) == 20  # replaced (RFC 9892 §2.1)
    assert led.classify(MAC1, dscp=0) is None
    led.forget(MAC1)
    assert led.classify(MAC1, dscp=46) is None


def test_channel_one_outstanding() -> None:
    ch = CreditControlChannel()
    assert ch.try_begin()
    assert not ch.try_begin()
    ch.complete()
    assert ch.try_begin()
    ch.complete()
    with pytest.raises(ValueError):
        ch.complete()


# --------------------------------------------------------------------------
# Session behaviour through the hooks, with a stand-in session
# --------------------------------------------------------------------------


class FakeSession:
    """What the hooks use of a Session; every message sent is encoded with
    validation and decoded like the peer would, so it must be valid."""

    def __init__(self, role: Role, extensions: frozenset[int] = ON, reg: Registry = REG) -> None:
        self.role = role
        self.extensions = extensions
        self.registry = reg
        self.sent: list[Message] = []
        self.emitted: list[Event] = []
        self.now = 0.0

    def send_message(self, message_type: int, items: Sequence[DataItem], *, now: float) -> None:
        raw = encode_message(Message(message_type, tuple(items)), self.registry)
        self.sent.append(decode_message(raw, self.registry, extensions=self.extensions))

    def emit(self, event: Event) -> None:
        self.emitted.append(event)

    def take(self) -> tuple[list[Message], list[Event]]:
        sent, ev = self.sent, self.emitted
        self.sent, self.emitted = [], []
        return sent, ev


def rx(mt: int, *items: DataItem, reg: Registry = REG, ext: frozenset[int] = ON) -> Message:
    """A message as the engine would hand it over: through the codec."""
    return decode_message(
        encode_message(Message(mt, items), reg, validate=False), reg, extensions=ext
    )


def sir(*items: DataItem) -> Message:
    return rx(M.SESSION_INITIALIZATION_RESPONSE, *BASE[M.SESSION_INITIALIZATION_RESPONSE], *items)


def router(
    ext: CreditWindowExtension | None = None, extensions: frozenset[int] = ON
) -> tuple[CreditWindowExtension, FakeSession, CreditSessionState]:
    ext = ext or DiffservCreditWindow()
    s = FakeSession(Role.ROUTER, extensions)
    st = ext.new_state(s)  # type: ignore[arg-type]
    return ext, s, st


def modem(
    ext: CreditWindowExtension | None = None,
) -> tuple[CreditWindowExtension, FakeSession, CreditSessionState]:
    ext = ext or DiffservCreditWindow(classifications=(TC1, TC2), windows=(W10, W11, W12))
    s = FakeSession(Role.MODEM)
    st = ext.new_state(s)  # type: ignore[arg-type]
    assert list(ext.init_items(s)) == [TC1, TC2, W10, W11, W12]  # type: ignore[arg-type]
    return ext, s, st


def up_router() -> tuple[CreditWindowExtension, FakeSession, CreditSessionState]:
    """A router that processed the modem's SIR (TC1, TC2, W10-W12)."""
    ext, s, st = router()
    ext.on_peer_init(s, sir(TC1, TC2, W10, W11, W12))  # type: ignore[arg-type]
    s.take()
    return ext, s, st


def of(events: list[Event], cls: type) -> list[Event]:
    return [e for e in events if isinstance(e, cls)]


def test_state_is_shared_and_found() -> None:
    _, s, st = router()
    assert credit_state(s) is st
    assert Ieee8021qCreditWindow().new_state(s) is st  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        credit_state(FakeSession(Role.ROUTER))


def test_router_learns_classes_and_windows_from_sir() -> None:
    ext, s, st = router()
    msg = sir(TC1, TC2, W10, W11, W12)
    ext.on_peer_init(s, msg)  # type: ignore[arg-type]
    ext.on_items(s, msg, None, ())  # type: ignore[arg-type]  # the same message: once only
    sent, events = s.take()
    assert sent == []
    assert [e.classification.tid for e in of(events, TrafficClassificationChanged)] == [1, 2]  # type: ignore[attr-defined]
    (changed,) = of(events, CreditWindowsChanged)
    assert changed == CreditWindowsChanged(
        (
            CreditWindowInfo(10, 4000, 65536),
            CreditWindowInfo(11, 0, 65536),
            CreditWindowInfo(12, 1000, 10_000),
        ),
        M.SESSION_INITIALIZATION_RESPONSE,
    )
    assert st.windows() == changed.windows
    assert of(events, Inconsistency) == []


def test_router_logs_window_without_classification() -> None:
    ext, s, st = router()
    ext.on_items(s, sir(W10), None, ())  # type: ignore[arg-type]
    _, events = s.take()
    (inc,) = of(events, Inconsistency)
    assert "FID 10" in inc.reason  # type: ignore[attr-defined]
    assert st.credits(10) == 4000  # the window exists; no traffic maps to it


def test_router_session_update_reinitializes_window() -> None:
    ext, s, st = up_router()
    assert st.consume(10, 1000)
    upd = CreditWindowInitialization.from_octets(10, 100_000, 2000)
    ext.on_items(s, rx(M.SESSION_UPDATE, upd), None, ())  # type: ignore[arg-type]
    assert st.credits(10) == 2000  # reset to the new value, capped at the new maximum
    _, events = s.take()
    assert of(events, CreditWindowsChanged)[0].windows == (CreditWindowInfo(10, 2000, 2000),)  # type: ignore[attr-defined]


def test_router_destination_up_association_grants_and_status_response() -> None:
    ext, s, st = up_router()
    msg = rx(
        M.DESTINATION_UP,
        MacAddress(MAC1),
        CreditWindowAssociation(1),
        CreditWindowGrant(10, 1000),
        CreditWindowGrant(11, 99_999),
    )
    ext.on_items(s, msg, DestKey(MAC1), ())  # type: ignore[arg-type]
    sent, events = s.take()
    assert sent == []  # the statuses go in the Destination Up Response
    assert of(events, CreditWindowAssociated) == [CreditWindowAssociated(MAC1, 1)]
    assert of(events, CreditGranted) == [
        CreditGranted(10, 1000, 1000, 5000, M.DESTINATION_UP, MAC1),
        CreditGranted(11, 99_999, 65536, 65536, M.DESTINATION_UP, MAC1),
    ]
    items = list(ext.response_items(s, M.DESTINATION_UP_RESPONSE, DestKey(MAC1)))  # type: ignore[arg-type]
    assert items == [CreditWindowStatus(10, 5000), CreditWindowStatus(11, 65536)]
    encode_message(
        Message(M.DESTINATION_UP_RESPONSE, (*BASE[M.DESTINATION_UP_RESPONSE], *items)), REG
    )
    assert list(ext.response_items(s, M.DESTINATION_UP_RESPONSE, DestKey(MAC1))) == []  # type: ignore[arg-type]
    assert list(ext.response_items(s, M.SESSION_UPDATE_RESPONSE, None)) == []  # type: ignore[arg-type]
    # Pacing: EF to MAC1 uses window 10, the rest window 11; MAC2 has no class.
    assert st.classify(MAC1, dscp=46) == 10
    assert st.classify("02:00:00:00:00:01", dscp=8) == 11
    assert st.classify(MAC2, dscp=46) is None


def test_router_requires_one_association_in_destination_up_and_update() -> None:
    for mt in (M.DESTINATION_UP, M.DESTINATION_UPDATE):
        ext, s, _ = up_router()
        with pytest.raises(ExtensionViolation) as exc:
            ext.on_items(s, rx(mt, MacAddress(MAC1), CreditWindowGrant(10, 1)), DestKey(MAC1), ())  # type: ignore[arg-type]
        assert exc.value.status == StatusCode.INVALID_DATA
        assert "exactly one" in exc.value.reason


def test_router_rejects_association_with_unknown_tid() -> None:
    ext, s, _ = up_router()
    with pytest.raises(ExtensionViolation) as exc:
        ext.on_items(
            s, rx(M.DESTINATION_UP, MacAddress(MAC1), CreditWindowAssociation(9)), DestKey(MAC1), ()
        )  # type: ignore[arg-type]
    assert exc.value.status == 130


def test_router_accepts_class_defined_in_the_same_destination_up() -> None:
    ext, s, st = up_router()
    tc = TrafficClassification(7, (DiffservClassification(12, (10,)),))
    msg = rx(M.DESTINATION_UP, MacAddress(MAC1), tc, CreditWindowAssociation(7))
    ext.on_items(s, msg, DestKey(MAC1), ())  # type: ignore[arg-type]
    assert st.classify(MAC1, dscp=10) == 12


def test_router_destination_update_reassociates() -> None:
    ext, s, st = up_router()
    ext.on_items(
        s, rx(M.DESTINATION_UP, MacAddress(MAC1), CreditWindowAssociation(1)), DestKey(MAC1), ()
    )  # type: ignore[arg-type]
    ext.on_items(
        s, rx(M.DESTINATION_UPDATE, MacAddress(MAC1), CreditWindowAssociation(2)), DestKey(MAC1), ()
    )  # type: ignore[arg-type]
    assert st.classify(MAC1, dscp=46) == 12
    _, events = s.take()
    assert of(events, CreditWindowAssociated) == [
        CreditWindowAssociated(MAC1, 1),
        CreditWindowAssociated(MAC1, 2),
    ]
    ext.on_destination_gone(s, DestKey(MAC1))  # type: ignore[arg-type]
    assert st.classify(MAC1, dscp=46) is None


def test_router_grant_in_destination_update_sends_credit_control() -> None:
    ext, s, st = up_router()
    msg = rx(
        M.DESTINATION_UPDATE,
        MacAddress(MAC1),
        CreditWindowAssociation(1),
        CreditWindowGrant(10, 500),
    )
    ext.on_items(s, msg, DestKey(MAC1), ())  # type: ignore[arg-type]
    (cc,) = s.sent
    assert cc.type == CREDIT_CONTROL
    assert cc.get_all(CreditWindowRequest) == [CreditWindowRequest((10,))]
    assert cc.get_all(CreditWindowStatus) == [CreditWindowStatus(10, 4500)]
    assert st.channel.outstanding
    # A second one waits for the Credit Control Response, merged.
    s.take()
    ann = rx(M.DESTINATION_ANNOUNCE_RESPONSE, MacAddress(MAC2), Status(0), CreditWindowGrant(11, 7))
    ext.on_items(s, ann, DestKey(MAC2), ())  # type: ignore[arg-type]
    assert s.sent == []
    ext.on_message(s, rx(CREDIT_CONTROL_RESPONSE, CreditWindowGrant(10, 0)))  # type: ignore[arg-type]
    (cc2,) = s.sent
    assert cc2.get_all(CreditWindowRequest) == [CreditWindowRequest((11,))]
    assert cc2.get_all(CreditWindowStatus) == [CreditWindowStatus(11, 7)]


def test_router_answers_modem_credit_control_with_status() -> None:
    ext, s, st = up_router()
    ext.on_message(s, rx(CREDIT_CONTROL, CreditWindowGrant(10, 100), CreditWindowGrant(99, 5)))  # type: ignore[arg-type]
    sent, events = s.take()
    (resp,) = sent
    assert resp.type == CREDIT_CONTROL_RESPONSE
    # Unknown FID 99: logged, discarded, reported as holding nothing.
    assert resp.get_all(CreditWindowStatus) == [
        CreditWindowStatus(10, 4100),
        CreditWindowStatus(99, 0),
    ]
    assert of(events, CreditGranted) == [CreditGranted(10, 100, 100, 4100, CREDIT_CONTROL)]
    assert len(of(events, Inconsistency)) == 1
    assert not st.channel.outstanding  # the modem's Credit Control is not ours


def test_router_rejects_duplicate_fid_grants() -> None:
    ext, s, _ = up_router()
    with pytest.raises(ExtensionViolation) as exc:
        ext.on_message(s, rx(CREDIT_CONTROL, CreditWindowGrant(10, 1), CreditWindowGrant(10, 2)))  # type: ignore[arg-type]
    assert exc.value.status == 130


@pytest.mark.parametrize(
    "items",
    [
        (CreditWindowRequest((10,)),),
        (CreditWindowGrant(10, 1), CreditWindowStatus(10, 1)),
    ],
    ids=["request", "status"],
)
def test_router_rejects_router_items_from_modem(items: tuple[DataItem, ...]) -> None:
    ext, s, _ = up_router()
    with pytest.raises(ExtensionViolation) as exc:
        ext.on_message(s, rx(CREDIT_CONTROL, *items))  # type: ignore[arg-type]
    assert exc.value.status == 130


def test_unsolicited_credit_control_response_is_129() -> None:
    for ext, s, _ in (up_router(), modem()):
        item: DataItem = (
            CreditWindowGrant(10, 1) if s.role is Role.ROUTER else CreditWindowStatus(10, 1)
        )
        with pytest.raises(ExtensionViolation) as exc:
            ext.on_message(s, rx(CREDIT_CONTROL_RESPONSE, item))  # type: ignore[arg-type]
        assert exc.value.status == StatusCode.UNEXPECTED_MESSAGE


def test_router_rejects_status_in_modem_response() -> None:
    ext, s, st = up_router()
    assert st.request_credits([10])
    with pytest.raises(ExtensionViolation):
        ext.on_message(s, rx(CREDIT_CONTROL_RESPONSE, CreditWindowStatus(10, 1)))  # type: ignore[arg-type]


def test_router_request_credits_and_response() -> None:
    ext, s, st = up_router()
    while st.consume(10, 1500):
        pass
    assert st.credits(10) == 1000
    assert st.request_credits([10]) is True
    (cc,) = s.sent
    assert cc.get(CreditWindowRequest) == CreditWindowRequest((10,))
    assert cc.get_all(CreditWindowStatus) == [CreditWindowStatus(10, 1000)]
    # One outstanding: these wait, merged (§2.2.1).
    assert st.request_credits([11]) is False
    assert st.request_credits() is False
    s.take()
    ext.on_message(s, rx(CREDIT_CONTROL_RESPONSE, CreditWindowGrant(10, 3000)))  # type: ignore[arg-type]
    sent, events = s.take()
    assert st.credits(10) == 4000
    assert of(events, CreditGranted) == [
        CreditGranted(10, 3000, 3000, 4000, CREDIT_CONTROL_RESPONSE)
    ]
    (cc2,) = sent  # the queued requests, now as one: every window
    assert cc2.get(CreditWindowRequest) == CreditWindowRequest((ALL_FIDS,))
    assert [x.fid for x in cc2.get_all(CreditWindowStatus)] == [10, 11, 12]
    ext.on_message(s, rx(CREDIT_CONTROL_RESPONSE, CreditWindowGrant(11, 1)))  # type: ignore[arg-type]
    assert s.sent == [] and not st.channel.outstanding  # no response to a response


def test_router_api_checks() -> None:
    _, _, st = up_router()
    with pytest.raises(ValueError):
        st.request_credits([])
    with pytest.raises(ItemFormatError):
        st.request_credits([0x10000])
    with pytest.raises(ValueError):
        st.grant(10, 1)
    with pytest.raises(ValueError):
        st.observe(10, 1)
    _, _, mst = modem()
    with pytest.raises(ValueError):
        mst.consume(10, 1)
    with pytest.raises(ValueError):
        mst.request_credits()


def test_router_rejects_sub_items_of_extensions_not_in_use() -> None:
    eth = TrafficClassification(3, (EthernetClassification(12, 5, (1,)),))
    ext, s, _ = router()
    with pytest.raises(ExtensionViolation) as exc:
        ext.on_items(s, sir(eth), None, ())  # type: ignore[arg-type]
    assert exc.value.status == 130
    both = frozenset({DA, ETH})
    reg = registry(DiffservCreditWindow())  # shared items, one registration (see xfail above)
    ext2, s2, st2 = router(extensions=both)
    s2.registry = reg
    mixed = TrafficClassification(4, (*eth.sub_items, DiffservClassification(13, (46,))))
    ext2.on_items(s2, sir(mixed), None, ())  # type: ignore[arg-type]
    st2.ledger.associate(MAC1, 4)
    assert st2.classify(MAC1, vid=5, pcp=1, dscp=46) == 12  # Ethernet first
    assert st2.classify(MAC1, dscp=46) == 13


def test_8021q_router() -> None:
    ext = Ieee8021qCreditWindow()
    s = FakeSession(Role.ROUTER, frozenset({ETH}), REG5)
    st = ext.new_state(s)  # type: ignore[arg-type]
    tc = TrafficClassification(1, (EthernetClassification(1, 0, (6, 7)), EthernetClassification(2)))
    cwis = (CreditWindowInitialization(1, 100, 1, 1), CreditWindowInitialization(2, 100, 1, 1))
    on5 = frozenset({ETH})
    init = rx(M.SESSION_INITIALIZATION_RESPONSE, *BASE[2], tc, *cwis, reg=REG5, ext=on5)
    ext.on_peer_init(s, init)  # type: ignore[arg-type]
    up = rx(M.DESTINATION_UP, MacAddress(MAC1), CreditWindowAssociation(1), reg=REG5, ext=on5)
    ext.on_items(s, up, DestKey(MAC1), ())  # type: ignore[arg-type]
    assert st.classify(MAC1, vid=3, pcp=7) == 1
    assert st.classify(MAC1, vid=3, pcp=0) == 2
    assert st.consume(1, 100) and not st.consume(1, 1)
    with pytest.raises(ValueError, match="do not belong"):
        Ieee8021qCreditWindow(classifications=(TC1,))


def test_modem_init_items_once_per_session() -> None:
    ext, s, st = modem()
    assert list(ext.init_items(s)) == []  # type: ignore[arg-type]
    assert list(DiffservCreditWindow(classifications=(TC1,)).init_items(s)) == []  # type: ignore[arg-type]
    assert st.windows() == (
        CreditWindowInfo(10, 4000, 65536),
        CreditWindowInfo(11, 0, 65536),
        CreditWindowInfo(12, 1000, 10_000),
    )
    _, rs, _ = router()
    assert list(ext.init_items(rs)) == []  # type: ignore[arg-type]  # a router announces nothing


def test_modem_grant_one_outstanding_and_statuses() -> None:
    ext, s, st = modem()
    assert st.grant(11, 1000) is True
    (cc,) = s.sent
    assert cc.get_all(CreditWindowGrant) == [CreditWindowGrant(11, 1000)]
    assert st.credits(11) == 1000  # the modem's view of the router's window
    s.take()
    assert st.grant(11, 500) is False
    assert st.grant(10, 100) is False
    assert st.grant(11, 500) is False
    assert s.sent == []
    assert st.observe(11, 300) == 700  # frames arrived meanwhile
    resp = rx(CREDIT_CONTROL_RESPONSE, CreditWindowStatus(11, 700), CreditWindowStatus(42, 0))
    ext.on_message(s, resp)  # type: ignore[arg-type]
    sent, events = s.take()
    assert of(events, CreditStatusReceived) == [
        CreditStatusReceived(11, 700, 700, False, CREDIT_CONTROL_RESPONSE)
    ]
    assert len(of(events, Inconsistency)) == 1  # FID 42 unknown: logged, discarded
    (cc2,) = sent
    assert cc2.get_all(CreditWindowGrant) == [
        CreditWindowGrant(10, 100),
        CreditWindowGrant(11, 1000),
    ]
    assert st.credits(11) == 1700 and st.credits(10) == 4100


def test_modem_status_tolerance() -> None:
    ext = DiffservCreditWindow(classifications=(TC1,), windows=(W10,), status_tolerance=100)
    s = FakeSession(Role.MODEM)
    st = ext.new_state(s)  # type: ignore[arg-type]
    ext.init_items(s)  # type: ignore[arg-type]
    msg = rx(M.DESTINATION_UP_RESPONSE, MacAddress(MAC1), Status(0), CreditWindowStatus(10, 3950))
    ext.on_items(s, msg, DestKey(MAC1), ())  # type: ignore[arg-type]
    msg2 = rx(M.DESTINATION_UP_RESPONSE, MacAddress(MAC1), Status(0), CreditWindowStatus(10, 3000))
    ext.on_items(s, msg2, DestKey(MAC1), ())  # type: ignore[arg-type]
    _, events = s.take()
    assert [e.mismatch for e in of(events, CreditStatusReceived)] == [False, True]  # type: ignore[attr-defined]
    (cwi,) = st.resync_items([10])
    assert cwi == CreditWindowInitialization(10, 4000, W10.max_size, W10.scale)
    with pytest.raises(ValueError):
        st.resync_items([99])
    with pytest.raises(ValueError):
        DiffservCreditWindow(status_tolerance=-1)


def test_modem_answers_request_with_grants() -> None:
    policy_seen: list[CreditWindowInfo] = []

    def policy(w: CreditWindowInfo) -> int:
        policy_seen.append(w)
        return 2000 if w.fid == 10 else 0

    ext = DiffservCreditWindow(
        classifications=(TC1, TC2), windows=(W10, W11, W12), request_policy=policy
    )
    _, s, st = modem(ext)
    assert st.grant(12, 1)  # outstanding
    assert not st.grant(11, 300)  # queued: goes along with the response below
    s.take()
    req = rx(CREDIT_CONTROL, CreditWindowRequest((10, 77)), CreditWindowStatus(10, 3000))
    ext.on_message(s, req)  # type: ignore[arg-type]
    sent, events = s.take()
    (resp,) = sent
    assert resp.type == CREDIT_CONTROL_RESPONSE
    # A grant for every requested window (0 for the unknown FID 77), plus the queued one.
    assert resp.get_all(CreditWindowGrant) == [
        CreditWindowGrant(10, 2000),
        CreditWindowGrant(77, 0),
        CreditWindowGrant(11, 300),
    ]
    assert [w.fid for w in policy_seen] == [10]
    assert of(events, CreditRequested) == [
        CreditRequested((10, 77), ((10, 2000), (77, 0), (11, 300)))
    ]
    assert of(events, CreditStatusReceived)[0].reported == 3000  # type: ignore[attr-defined]
    assert len(of(events, Inconsistency)) == 1
    assert st.credits(10) == 6000 and st.credits(11) == 300
    assert st.channel.outstanding  # our own Credit Control still awaits its response


def test_modem_answers_request_for_all_windows() -> None:
    ext, s, _ = modem()
    ext.on_message(s, rx(CREDIT_CONTROL, CreditWindowRequest((ALL_FIDS,))))  # type: ignore[arg-type]
    (resp,) = s.sent
    assert [g.fid for g in resp.get_all(CreditWindowGrant)] == [10, 11, 12]
    assert all(g.credits == 0 for g in resp.get_all(CreditWindowGrant))
    # No windows at all: a zero grant echoing the request keeps the response valid.
    ext2 = DiffservCreditWindow()
    s2 = FakeSession(Role.MODEM)
    ext2.new_state(s2)  # type: ignore[arg-type]
    ext2.on_message(s2, rx(CREDIT_CONTROL, CreditWindowRequest((ALL_FIDS,))))  # type: ignore[arg-type]
    assert s2.sent[0].get_all(CreditWindowGrant) == [CreditWindowGrant(ALL_FIDS, 0)]


@pytest.mark.parametrize(
    "items",
    [(CreditWindowGrant(10, 1),), (CreditWindowRequest((10,)), CreditWindowGrant(10, 1))],
    ids=["grant-only", "grant-and-request"],
)
def test_modem_rejects_grants_from_router(items: tuple[DataItem, ...]) -> None:
    ext, s, _ = modem()
    with pytest.raises(ExtensionViolation) as exc:
        ext.on_message(s, rx(CREDIT_CONTROL, *items))  # type: ignore[arg-type]
    assert exc.value.status == 130


def test_modem_rejects_grant_in_router_response() -> None:
    ext, s, st = modem()
    st.grant(10, 1)
    with pytest.raises(ExtensionViolation):
        ext.on_message(s, rx(CREDIT_CONTROL_RESPONSE, CreditWindowGrant(10, 1)))  # type: ignore[arg-type]


def test_modem_rejects_modem_items_from_router() -> None:
    ext, s, _ = modem()
    with pytest.raises(ExtensionViolation) as exc:
        ext.on_items(s, rx(M.SESSION_UPDATE, TC1), None, ())  # type: ignore[arg-type]
    assert exc.value.status == 130


def test_modem_destination_and_session_update_items() -> None:
    _, _, st = modem()
    items = st.destination_items(MAC1, tid=1, grants={10: 500})
    assert items == [CreditWindowAssociation(1), CreditWindowGrant(10, 500)]
    encode_message(Message(M.DESTINATION_UP, (MacAddress(MAC1), *items)), REG)
    assert st.credits(10) == 4500
    assert st.destination_items("02:00:00:00:00:01") == [CreditWindowAssociation(1)]
    with pytest.raises(ValueError):
        st.destination_items(MAC2)  # no class yet
    with pytest.raises(ValueError):
        st.destination_items(MAC2, tid=9)
    with pytest.raises(ValueError):
        st.destination_items(MAC2, tid=1, grants={99: 1})
    tc3 = TrafficClassification(3, (DiffservClassification(13, (10,)),))
    w13 = CreditWindowInitialization(13, 10, 100)
    upd = st.session_update_items([tc3], [w13])
    assert upd == [tc3, w13]
    encode_message(Message(M.SESSION_UPDATE, tuple(upd)), REG)
    assert st.destination_items(MAC2, tid=3) == [CreditWindowAssociation(3)]
    assert st.credits(13) == 10
    with pytest.raises(ValueError):
        st.session_update_items([TrafficClassification(4, (EthernetClassification(1),))])
    with pytest.raises(ValueError):
        st.grant(99, 1)


def test_extension_configuration_checks() -> None:
    with pytest.raises(ValueError, match="do not belong"):
        DiffservCreditWindow(
            classifications=(TrafficClassification(1, (EthernetClassification(1),)),)
        )
    with pytest.raises(ValueError):
        DiffservCreditWindow(classifications=(W10,))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DiffservCreditWindow(windows=(TC1,))  # type: ignore[arg-type]
    assert DiffservCreditWindow.code == 6 and DiffservCreditWindow.name == "credit-diffserv"
    assert Ieee8021qCreditWindow.code == 5 and Ieee8021qCreditWindow.name == "credit-8021q"
    assert CreditWindowExtension.SUB_TYPES_BY_EXTENSION[6] == {1}
    assert CreditWindowExtension.SUB_TYPES_BY_EXTENSION[5] == {2}


def test_state_without_session() -> None:
    st = CreditSessionState("router")
    with pytest.raises(RuntimeError):
        st.request_credits()
    assert not st.channel.outstanding  # a failed send leaves nothing outstanding
    with pytest.raises(ValueError):
        CreditSessionState("switch")


# --------------------------------------------------------------------------
# Flows between a router and a modem engine (need the engine hooks)
# --------------------------------------------------------------------------



def pair(
    router_ext: CreditWindowExtension | None = None,
    modem_ext: CreditWindowExtension | None = None,
    *,
    modem_plugin: bool = True,
) -> object:
    from tests.unit.fsm_harness import Pair, modem_config, router_config

    rx_ext = router_ext or DiffservCreditWindow()
    mx_ext = modem_ext or DiffservCreditWindow(classifications=(TC1, TC2), windows=(W10, W11, W12))
    return Pair(
        router_config(registry=REG, plugins=(rx_ext,)),
        modem_config(registry=REG, plugins=(mx_ext,) if modem_plugin else ()),
    )


def establish(p: object) -> tuple[list[Event], list[Event]]:
    """Run initialisation (the router also gets credit events, so not
    Pair.establish); return and drain (router events, modem events)."""
    p.pump()  # type: ignore[attr-defined]
    assert p.router.state is State.IN_SESSION  # type: ignore[attr-defined]
    assert p.modem.state is State.IN_SESSION  # type: ignore[attr-defined]
    events: tuple[list[Event], list[Event]] = p.events()  # type: ignore[attr-defined]
    p.log.clear()  # type: ignore[attr-defined]
    return events


def test_flow_session_up_carries_classes_and_windows() -> None:
    p = pair()
    p.pump()  # type: ignore[attr-defined]
    r = p.router  # type: ignore[attr-defined]
    assert r.state is State.IN_SESSION
    sirs = [w.message for w in p.log if w.type == M.SESSION_INITIALIZATION_RESPONSE]  # type: ignore[attr-defined]
    assert sirs[0].get_all(TrafficClassification) == [TC1, TC2]
    st = credit_state(r)
    assert st.windows() == (
        CreditWindowInfo(10, 4000, 65536),
        CreditWindowInfo(11, 0, 65536),
        CreditWindowInfo(12, 1000, 10_000),
    )
    events = r.events()
    assert len(of(events, TrafficClassificationChanged)) == 2
    assert len(of(events, CreditWindowsChanged)) == 1


def test_flow_destination_up_grant_and_status() -> None:
    p = pair()
    establish(p)
    m, r = p.modem, p.router  # type: ignore[attr-defined]
    mst, rst = credit_state(m), credit_state(r)
    m.add_destination(MAC1, extra=mst.destination_items(MAC1, tid=1, grants={11: 3000}), now=p.now)
    p.pump()  # type: ignore[attr-defined]
    (resp,) = [w.message for w in p.log if w.type == M.DESTINATION_UP_RESPONSE]  # type: ignore[attr-defined]
    assert resp.get_all(CreditWindowStatus) == [CreditWindowStatus(11, 3000)]
    assert rst.classify(MAC1, dscp=0) == 11
    assert rst.consume(11, 3000) and not rst.consume(11, 1)
    assert of(m.events(), CreditStatusReceived)[0].reported == 3000  # type: ignore[attr-defined]


def test_flow_grant_request_and_one_outstanding() -> None:
    p = pair()
    establish(p)
    m, r = p.modem, p.router  # type: ignore[attr-defined]
    mst, rst = credit_state(m), credit_state(r)
    m.add_destination(MAC1, extra=mst.destination_items(MAC1, tid=1), now=p.now)
    p.pump()  # type: ignore[attr-defined]
    p.log.clear()  # type: ignore[attr-defined]
    assert mst.grant(10, 1000, now=p.now)
    assert not mst.grant(10, 500, now=p.now)  # waits for the response
    p.pump()  # type: ignore[attr-defined]
    assert [w.type for w in p.log] == [  # type: ignore[attr-defined]
        CREDIT_CONTROL,
        CREDIT_CONTROL_RESPONSE,
        CREDIT_CONTROL,
        CREDIT_CONTROL_RESPONSE,
    ]
    assert rst.credits(10) == 5500
    p.log.clear()  # type: ignore[attr-defined]
    while rst.consume(10, 1500):
        pass
    assert rst.request_credits([10], now=p.now)
    p.pump()  # type: ignore[attr-defined]
    assert [w.sender for w in p.log] == ["router", "modem"]  # type: ignore[attr-defined]
    assert rst.credits(10) == 1000  # the default policy grants nothing extra
    assert of(m.events(), CreditRequested)


def test_flow_missing_association_ends_session_with_130() -> None:
    p = pair()
    establish(p)
    from tests.unit.fsm_harness import status_of

    p.inject("router", Message(M.DESTINATION_UP, (MacAddress(MAC1),)))  # type: ignore[attr-defined]
    (term,) = p.sent("router")  # type: ignore[attr-defined]
    assert term.type == M.SESSION_TERMINATION and status_of(term) == 130


def test_flow_not_negotiated_items_end_session_with_130() -> None:
    p = pair(modem_plugin=False)
    establish(p)
    from tests.unit.fsm_harness import status_of

    assert p.router.extensions == frozenset()  # type: ignore[attr-defined]
    p.inject(  # type: ignore[attr-defined]
        "router", Message(M.DESTINATION_UP, (MacAddress(MAC1), CreditWindowAssociation(1)))
    )
    (term,) = p.sent("router")  # type: ignore[attr-defined]
    assert status_of(term) == 130
    q = pair(modem_plugin=False)
    establish(q)
    q.inject("router", Message(CREDIT_CONTROL, (CreditWindowGrant(10, 1),)))  # type: ignore[attr-defined]
    (term,) = q.sent("router")  # type: ignore[attr-defined]
    assert status_of(term) == 128


def test_flow_grant_in_destination_update_answered_by_credit_control() -> None:
    def policy(w: CreditWindowInfo) -> int:
        return 700

    mx = DiffservCreditWindow(
        classifications=(TC1, TC2), windows=(W10, W11, W12), request_policy=policy
    )
    p = pair(modem_ext=mx)
    establish(p)
    m, r = p.modem, p.router  # type: ignore[attr-defined]
    mst, rst = credit_state(m), credit_state(r)
    m.add_destination(MAC1, extra=mst.destination_items(MAC1, tid=1), now=p.now)
    p.pump()  # type: ignore[attr-defined]
    p.log.clear()  # type: ignore[attr-defined]
    m.update_destination(MAC1, extra=mst.destination_items(MAC1, grants={11: 100}), now=p.now)
    p.pump()  # type: ignore[attr-defined]
    log = p.log  # type: ignore[attr-defined]
    assert [(w.sender, w.type) for w in log] == [
        ("modem", M.DESTINATION_UPDATE),
        ("router", CREDIT_CONTROL),  # §2.3.3: the Status goes in a Credit Control
        ("modem", CREDIT_CONTROL_RESPONSE),
    ]
    cc = log[1].message
    assert cc.get_all(CreditWindowStatus) == [CreditWindowStatus(11, 100)]
    assert cc.get(CreditWindowRequest) == CreditWindowRequest((11,))
    assert log[2].message.get_all(CreditWindowGrant) == [CreditWindowGrant(11, 700)]
    assert rst.credits(11) == 800 == mst.credits(11)
    assert not rst.channel.outstanding and not mst.channel.outstanding


def test_flow_destination_down_drops_association() -> None:
    p = pair()
    establish(p)
    m, r = p.modem, p.router  # type: ignore[attr-defined]
    m.add_destination(MAC1, extra=credit_state(m).destination_items(MAC1, tid=2), now=p.now)
    p.pump()  # type: ignore[attr-defined]
    assert credit_state(r).classify(MAC1) == 12
    m.drop_destination(MAC1, now=p.now)
    p.pump()  # type: ignore[attr-defined]
    assert credit_state(r).classify(MAC1) is None
    assert credit_state(r).ledger.associations == {}


def test_flow_credit_items_refused_when_not_negotiated() -> None:
    p = pair(modem_plugin=False)
    establish(p)
    m = p.modem  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="not negotiated"):
        m.add_destination(MAC1, extra=[CreditWindowAssociation(1)], now=p.now)
    assert p.sent("modem") == []  # type: ignore[attr-defined]  # never sent
    with pytest.raises(KeyError):  # no credit state: the extension is not in use
        credit_state(p.router)  # type: ignore[attr-defined]
