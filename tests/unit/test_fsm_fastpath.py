"""The receive shortcut (``dlep.fsm.fastpath``) and stepwise receiving.

The shortcut must be invisible: a router session that takes it and one that
never does must send the same bytes, emit the same events and end in the
same state for any input, valid or not. Hypothesis checks that on random
streams of destination messages (values in and out of range, MACs of two
lengths, undeclared metrics, unknown destinations); the examples below pin
the cases where the shortcut must decline.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlep.fsm import (
    DestinationUp,
    DestinationUpdate,
    Extension,
    Metrics,
    Role,
    Session,
    SessionConfig,
    State,
)
from dlep.wire import (
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    ExtensionsSupported,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    MessageType,
    Mtu,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Resources,
    Status,
    StatusCode,
    core_registry,
    encode_message,
)

from .fsm_harness import (
    ALL_METRICS,
    DECLARED,
    decode_stream,
    msg,
    raw,
    router_config,
    session_init_response,
)

M = MessageType
NOW = 10.0


def _router(*, fast: bool = True, declared: Metrics = ALL_METRICS, **cfg: Any) -> Session:
    """A router session in session with a fake modem that declared ``declared``.

    Its own registry: the decoder's layout cache (64 shapes per message
    type) is per registry, and other tests fill the default one.
    """
    cfg.setdefault("registry", core_registry())
    s = Session(Role.ROUTER, router_config(**cfg))
    s.start(NOW)
    s.data_to_send()
    s.receive_data(encode_message(session_init_response(0, 1000, declared)), NOW)
    assert s.state is State.IN_SESSION
    s.events()
    if not fast:
        s._fast = None  # the full path only: the reference
    return s


def _mac(i: int, n: int = 6) -> bytes:
    return bytes([2] + [0] * (n - 2) + [i])


def _up(i: int, **m: int) -> bytes:
    return raw(M.DESTINATION_UP, MacAddress(_mac(i)), *Metrics(**m).items())


def _update(i: int, **m: int) -> bytes:
    return raw(M.DESTINATION_UPDATE, MacAddress(_mac(i)), *Metrics(**m).items())


def _run(s: Session, stream: list[bytes], step: int | None = None) -> tuple[Any, ...]:
    """Feed ``stream``; return everything observable."""
    events = []
    for chunk in stream:
        more = s.receive_data(chunk, NOW, limit=step)
        while more:
            events += s.events()
            more = s.receive_more(NOW, step)
        events += s.events()
    return (
        s.data_to_send(),
        events,
        s.state,
        dict(s.destinations),
        dict(s.rx_counts),
        dict(s.error_counts),
    )


def _spy(s: Session) -> list[bytes]:
    """Record the messages that took the full path."""
    seen: list[bytes] = []
    full = s._receive_message

    def spy(raw_msg: bytes, now: float) -> None:
        seen.append(raw_msg)
        full(raw_msg, now)

    s._receive_message = spy  # type: ignore[method-assign]
    return seen


# --------------------------------------------------------------------------
# Equivalence, by property
# --------------------------------------------------------------------------

_ITEMS = {
    "mdrr": (MaximumDataRateReceive, 8),
    "mdrt": (MaximumDataRateTransmit, 8),
    "cdrr": (CurrentDataRateReceive, 8),
    "cdrt": (CurrentDataRateTransmit, 8),
    "latency": (Latency, 8),
    "resources": (Resources, 1),
    "rlqr": (RelativeLinkQualityReceive, 1),
    "rlqt": (RelativeLinkQualityTransmit, 1),
    "mtu": (Mtu, 2),
}


def _item(name: str, value: int) -> bytes:
    """An item encoded by hand, so values out of range can be sent."""
    cls, size = _ITEMS[name]
    return struct.pack("!HH", cls.TYPE, size) + value.to_bytes(size, "big")


_SHAPES = [tuple(_ITEMS), ("cdrr", "cdrt", "latency"), ("rlqr",), ("mtu", "resources")]


def _encode(mtype: int, mac: bytes, values: dict[str, int]) -> bytes:
    body = struct.pack("!HH", MacAddress.TYPE, len(mac)) + mac
    body += b"".join(_item(name, v) for name, v in values.items())
    return struct.pack("!HH", mtype, len(body)) + body


@st.composite
def _message(draw: st.DrawFn) -> bytes:
    """Mostly valid traffic for destinations 0-3 (up at the start); now and
    then a fault: a value out of range, an 8-octet MAC, an unknown or downed
    destination."""
    fault = draw(st.integers(0, 24)) == 0
    mtype = draw(st.sampled_from([M.DESTINATION_UPDATE] * 12 + [M.DESTINATION_UP]))
    if fault:
        mtype = draw(st.sampled_from([mtype, M.DESTINATION_DOWN]))
    dest = draw(st.integers(0, 5 if fault else 3))
    size = draw(st.sampled_from([6, 8])) if fault else 6
    values = {}
    if mtype != M.DESTINATION_DOWN:
        for name in draw(st.sampled_from(_SHAPES)):
            n = _ITEMS[name][1]
            top = 100 if n == 1 else (1 << (8 * n)) - 1
            if fault and n == 1:
                top = 255
            values[name] = draw(st.integers(0, min(top, 200_000_000)))
    return _encode(mtype, _mac(dest, size), values)


_PREFIX = [_encode(M.DESTINATION_UP, _mac(i), dict.fromkeys(_SHAPES[1], 1)) for i in range(4)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(_message(), min_size=1, max_size=60),
    cuts=st.lists(st.integers(1, 200), max_size=5),
    step=st.sampled_from([None, 1, 3, 32]),
    declared=st.sampled_from([ALL_METRICS, DECLARED]),
)
def test_shortcut_is_invisible(
    messages: list[bytes], cuts: list[int], step: int | None, declared: Metrics
) -> None:
    data = b"".join(_PREFIX + messages)
    stream, at = [], 0
    for c in cuts:
        stream.append(data[at : at + c])
        at += c
    stream.append(data[at:])
    shortcut = _router(declared=declared)
    full_way = _spy(shortcut)
    fast = _run(shortcut, stream, step)
    full = _run(_router(fast=False, declared=declared), [data])
    assert fast == full
    if len(full_way) < len(_PREFIX) + len(messages):
        _SHORTCUT_TAKEN.append(True)


_SHORTCUT_TAKEN: list[bool] = []


def test_the_property_exercised_the_shortcut() -> None:
    """Guards the property above against testing nothing (runs after it)."""
    if not _SHORTCUT_TAKEN:
        test_shortcut_is_invisible()
    assert _SHORTCUT_TAKEN


# --------------------------------------------------------------------------
# Examples
# --------------------------------------------------------------------------


def test_second_message_of_a_shape_takes_the_shortcut() -> None:
    s = _router()
    full = _spy(s)
    for i in range(3):
        s.receive_data(_up(i, cdrr=1, cdrt=2, latency=3), NOW)
    for n in range(5):
        s.receive_data(_update(n % 3, cdrr=10 + n, cdrt=2, latency=3), NOW)
    # The first Up and the first Update went the full way; the rest did not.
    assert len(full) == 2
    events = s.events()
    assert [type(e) for e in events] == [DestinationUp] * 3 + [DestinationUpdate] * 5
    last = events[-1]
    assert isinstance(last, DestinationUpdate)
    assert last.changed == Metrics(cdrr=14, cdrt=2, latency=3)
    assert last.info.metrics.cdrr == 14 and last.info.metrics.mdrr == ALL_METRICS.mdrr
    assert s.rx_counts[M.DESTINATION_UPDATE] == 5


def _terminated(s: Session) -> Status:
    """The status of the Session Termination ``s`` sent."""
    assert s.state is State.TERMINATING
    ends = [m for m in decode_stream(s.data_to_send()) if m.type == M.SESSION_TERMINATION]
    assert len(ends) == 1, ends
    status = ends[0].get(Status)
    assert status is not None
    return status


def test_percent_out_of_range_declines_and_the_full_path_terminates() -> None:
    s = _router()
    s.receive_data(_up(1, rlqr=50), NOW)
    s.receive_data(_update(1, rlqr=60), NOW)
    full = _spy(s)
    bad = struct.pack("!HH", M.DESTINATION_UPDATE, 15) + MacAddress(_mac(1)).encode()
    bad += _item("rlqr", 101)
    assert len(bad) == len(_update(1, rlqr=60))
    s.receive_data(bad, NOW)
    assert full == [bad]
    assert s.state is State.TERMINATING
    assert _terminated(s).code == StatusCode.INVALID_DATA


def test_mac_of_another_length_declines() -> None:
    s = _router()
    s.receive_data(_up(1, cdrr=1), NOW)
    s.receive_data(_update(1, cdrr=2), NOW)
    full = _spy(s)
    long_mac = raw(M.DESTINATION_UPDATE, MacAddress(_mac(1, 8)), Mtu(1500))
    s.receive_data(long_mac, NOW)
    assert full == [long_mac]
    assert "§13.7" in _terminated(s).text


def test_update_for_unknown_destination_is_refused_on_the_shortcut() -> None:
    s = _router()
    s.receive_data(_up(1, cdrr=1), NOW)
    s.receive_data(_update(1, cdrr=2), NOW)
    full = _spy(s)
    s.receive_data(_update(7, cdrr=2), NOW)
    assert full == []  # the shape is known: the table refuses it
    assert _terminated(s).code == StatusCode.INVALID_DESTINATION


def test_undeclared_metric_never_takes_the_shortcut() -> None:
    s = _router(declared=DECLARED)  # MTU and Resources not declared
    s.receive_data(_up(1, cdrr=1), NOW)
    full = _spy(s)
    s.receive_data(_update(1, mtu=1400), NOW)
    assert full and s.state is State.TERMINATING
    assert "did not declare" in _terminated(s).text


def test_observed_message_type_never_takes_the_shortcut() -> None:
    """An extension that observes Destination Update is called for each one."""

    class Observer(Extension):
        code = 65530
        name = "observer"
        observes = frozenset({M.DESTINATION_UPDATE})
        calls = 0

        def on_items(self, session: Any, m: Any, dest: Any, items: Any) -> None:
            Observer.calls += 1

    registry = core_registry()
    ext = Observer()
    ext.register(registry)
    cfg = SessionConfig(
        heartbeat_interval_ms=1000,
        registry=registry,
        plugins=(ext,),
        extensions=(ext.code,),
    )
    s = Session(Role.ROUTER, cfg)
    s.start(NOW)
    init = session_init_response(0, 1000, ALL_METRICS)
    s.receive_data(
        encode_message(msg(init.type, *init.items, ExtensionsSupported((ext.code,)))), NOW
    )
    assert s.state is State.IN_SESSION and ext.code in s.extensions
    s.receive_data(_up(1, cdrr=1), NOW)
    for n in range(4):
        s.receive_data(_update(1, cdrr=n), NOW)
    assert Observer.calls == 4


def test_receive_in_steps_keeps_the_rest() -> None:
    s = _router()
    data = b"".join(_up(i, cdrr=i) for i in range(10))
    assert s.receive_data(data, NOW, limit=4) is True
    assert len(s.events()) == 4
    assert s.receive_more(NOW, 4) is True
    assert len(s.events()) == 4
    # New bytes queue behind the messages not yet handled.
    assert s.receive_data(_update(0, cdrr=99), NOW, limit=1) is True
    first = s.events()
    assert isinstance(first[0], DestinationUp) and first[0].info.mac == _mac(8)
    assert s.receive_more(NOW) is False
    rest = s.events()
    assert [type(e) for e in rest] == [DestinationUp, DestinationUpdate]
    assert s.receive_more(NOW) is False


def test_receive_in_steps_stops_at_termination() -> None:
    s = _router()
    data = _update(5, cdrr=1) + b"".join(_up(i, cdrr=i) for i in range(5))
    more = s.receive_data(data, NOW, limit=2)  # the first ends the session
    while more:
        more = s.receive_more(NOW, 2)
    assert s.state is State.TERMINATING  # what follows is ignored (§7.4)
    assert not [e for e in s.events() if isinstance(e, DestinationUp)]


def test_success_responses_are_the_codecs_bytes() -> None:
    """The router's Success answers, spliced from a template, equal what the
    encoder makes of the same message (6- and 8-octet MACs, Up and Down)."""
    for size in (6, 8):
        s = _router()
        for i in range(3):
            s.receive_data(raw(M.DESTINATION_UP, MacAddress(_mac(i, size)), Mtu(1500)), NOW)
        for i in range(3):
            s.receive_data(raw(M.DESTINATION_DOWN, MacAddress(_mac(i, size))), NOW)
        want = [
            encode_message(msg(mtype, MacAddress(_mac(i, size)), Status(StatusCode.SUCCESS)))
            for mtype in (M.DESTINATION_UP_RESPONSE, M.DESTINATION_DOWN_RESPONSE)
            for i in range(3)
        ]
        assert s.data_to_send() == b"".join(want)
        assert s.tx_counts[M.DESTINATION_UP_RESPONSE] == 3
