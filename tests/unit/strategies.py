"""Hypothesis strategies for the DLEP wire layer (RFC 8175).

Reusable from any test package::

    from tests.unit.strategies import messages, item_values, ITEM_STRATEGIES

What is here:

* scalar building blocks (:data:`u64s`, :data:`percents`, :data:`mac_bytes`,
  :data:`texts`, ...) covering the full ranges, edges included;
* one strategy per core item class, collected in :data:`ITEM_STRATEGIES`
  (and :func:`item_values` to look one up);
* :data:`VALUE_BYTES`: canonical encodings of each item's Value field built
  independently of the codec (flags 0/1 only), for ``encode(decode(b)) == b``;
* :func:`unit_items`, :func:`messages`, :func:`signals`: VALID whole messages
  and signals of every type, generated from the registry's
  :class:`~dlep.wire.UnitSpec` tables (``rules`` and ``one_of``) at draw time,
  so they follow rule changes and extension registries.

Everything these strategies produce must be accepted by ``encode_message``/
``encode_signal`` with validation on, and decode back to an equal value.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Mapping

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from dlep.wire import (
    CORE_ITEMS,
    DEFAULT_REGISTRY,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Ipv4Address,
    Ipv4AttachedSubnet,
    Ipv4ConnectionPoint,
    Ipv6Address,
    Ipv6AttachedSubnet,
    Ipv6ConnectionPoint,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    Message,
    MessageType,
    Mtu,
    PeerType,
    Registry,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Resources,
    Signal,
    Status,
    UnitSpec,
    encode_message,
    encode_signal,
)

U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1

# --------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------

#: 64-bit unsigned values, with the edges (0, 1, 2**32, 2**63, 2**64-1) forced in.
u64s: SearchStrategy[int] = st.one_of(
    st.sampled_from([0, 1, U32_MAX, 1 << 32, 1 << 63, U64_MAX - 1, U64_MAX]),
    st.integers(0, U64_MAX),
)
#: 0..100 inclusive.
percents: SearchStrategy[int] = st.integers(0, 100)
#: Any 16-bit value.
u16s: SearchStrategy[int] = st.integers(0, 0xFFFF)
#: Heartbeat Interval values: 1..2**32-1 (0 is invalid, RFC 8175 §13.5).
heartbeat_ms: SearchStrategy[int] = st.one_of(
    st.sampled_from([1, 1000, U32_MAX]), st.integers(1, U32_MAX)
)
#: EUI-48 (6 octets) and EUI-64 (8 octets) addresses.
eui48s: SearchStrategy[bytes] = st.binary(min_size=6, max_size=6)
eui64s: SearchStrategy[bytes] = st.binary(min_size=8, max_size=8)
mac_bytes: SearchStrategy[bytes] = st.one_of(eui48s, eui64s)
#: Optional TCP port: None means "no port field" (length 5 / 17).
ports: SearchStrategy[int | None] = st.one_of(st.none(), st.sampled_from([0, 854, 0xFFFF]), u16s)
ipv4s: SearchStrategy[ipaddress.IPv4Address] = st.ip_addresses(v=4)  # type: ignore[assignment]
ipv6s: SearchStrategy[ipaddress.IPv6Address] = st.ip_addresses(v=6)  # type: ignore[assignment]

#: Text that survives the codec: any Unicode scalar values (non-BMP forced in),
#: plus strings decoded from arbitrary bytes with ``replace`` (what the
#: decoder produces for invalid UTF-8), plus a few hand-picked edge cases.
_NON_BMP = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF)
SPECIAL_TEXTS = (
    "",
    "Satellite terminal",
    "\x00embedded NUL",
    "é ü ß",
    "\u20ac\u2603",
    "\U0001f4e1 modem \U0001f680",
    "\U0010ffff",
    b"\xff\xfe invalid".decode("utf-8", "replace"),
)


def texts(max_size: int = 64) -> SearchStrategy[str]:
    """Text fields (Status text, Peer Type description) of up to ``max_size`` chars."""
    return st.one_of(
        st.sampled_from(SPECIAL_TEXTS),
        st.text(max_size=max_size),
        st.text(_NON_BMP, min_size=1, max_size=max(1, max_size // 4)),
        st.binary(max_size=max_size).map(lambda b: b.decode("utf-8", "replace")),
    )


# --------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------


def _metric(cls: type, values: SearchStrategy[int]) -> SearchStrategy[DataItem]:
    return st.builds(cls, values)


def statuses(max_text: int = 64) -> SearchStrategy[Status]:
    return st.builds(Status, st.integers(0, 255), texts(max_text))


def peer_types(max_text: int = 64) -> SearchStrategy[PeerType]:
    return st.builds(PeerType, texts(max_text), st.booleans())


ipv4_connection_points = st.builds(Ipv4ConnectionPoint, ipv4s, ports, st.booleans())
ipv6_connection_points = st.builds(Ipv6ConnectionPoint, ipv6s, ports, st.booleans())
heartbeat_intervals = st.builds(HeartbeatInterval, heartbeat_ms)
extensions_supported = st.builds(ExtensionsSupported, st.lists(u16s, max_size=16).map(tuple))
mac_addresses = st.builds(MacAddress, mac_bytes)
ipv4_addresses = st.builds(Ipv4Address, ipv4s, st.booleans())
ipv6_addresses = st.builds(Ipv6Address, ipv6s, st.booleans())
#: Attached subnets: the address is arbitrary, so host bits are usually set.
ipv4_attached_subnets = st.builds(Ipv4AttachedSubnet, ipv4s, st.integers(0, 32), st.booleans())
ipv6_attached_subnets = st.builds(Ipv6AttachedSubnet, ipv6s, st.integers(0, 128), st.booleans())
mdrrs = _metric(MaximumDataRateReceive, u64s)
mdrts = _metric(MaximumDataRateTransmit, u64s)
cdrrs = _metric(CurrentDataRateReceive, u64s)
cdrts = _metric(CurrentDataRateTransmit, u64s)
latencies = _metric(Latency, u64s)
resources = _metric(Resources, percents)
rlqrs = _metric(RelativeLinkQualityReceive, percents)
rlqts = _metric(RelativeLinkQualityTransmit, percents)
mtus = _metric(Mtu, st.one_of(st.sampled_from([0, 576, 1500, 0xFFFF]), u16s))

#: One strategy per core item class (all 20), valid values only.
ITEM_STRATEGIES: dict[type[DataItem], SearchStrategy[DataItem]] = {
    Status: statuses(),
    Ipv4ConnectionPoint: ipv4_connection_points,
    Ipv6ConnectionPoint: ipv6_connection_points,
    PeerType: peer_types(),
    HeartbeatInterval: heartbeat_intervals,
    ExtensionsSupported: extensions_supported,
    MacAddress: mac_addresses,
    Ipv4Address: ipv4_addresses,
    Ipv6Address: ipv6_addresses,
    Ipv4AttachedSubnet: ipv4_attached_subnets,
    Ipv6AttachedSubnet: ipv6_attached_subnets,
    MaximumDataRateReceive: mdrrs,
    MaximumDataRateTransmit: mdrts,
    CurrentDataRateReceive: cdrrs,
    CurrentDataRateTransmit: cdrts,
    Latency: latencies,
    Resources: resources,
    RelativeLinkQualityReceive: rlqrs,
    RelativeLinkQualityTransmit: rlqts,
    Mtu: mtus,
}
assert set(ITEM_STRATEGIES) == set(CORE_ITEMS)

#: Any core item.
any_items: SearchStrategy[DataItem] = st.one_of(*ITEM_STRATEGIES.values())


def item_values(
    cls: type[DataItem], extra: Mapping[type[DataItem], SearchStrategy[DataItem]] | None = None
) -> SearchStrategy[DataItem]:
    """Strategy for valid items of ``cls`` (``extra`` adds extension item classes)."""
    if extra is not None and cls in extra:
        return extra[cls]
    try:
        return ITEM_STRATEGIES[cls]
    except KeyError:
        raise LookupError(f"no strategy for item class {cls.__name__}; pass extra=") from None


# --------------------------------------------------------------------------
# Canonical Value-field encodings, built without the codec
# --------------------------------------------------------------------------

_flag = st.sampled_from([b"\x00", b"\x01"])


def _cat(*parts: SearchStrategy[bytes]) -> SearchStrategy[bytes]:
    return st.tuples(*parts).map(b"".join)


def _opt_port() -> SearchStrategy[bytes]:
    return st.one_of(st.just(b""), st.binary(min_size=2, max_size=2))


def _byte_in(lo: int, hi: int) -> SearchStrategy[bytes]:
    return st.integers(lo, hi).map(lambda v: bytes((v,)))


_u64_bytes = u64s.map(lambda v: v.to_bytes(8, "big"))

#: Text as it is canonically encoded: valid UTF-8 (invalid octets decode to
#: U+FFFD, which re-encodes as three octets).
_utf8_bytes = st.text(max_size=32).map(lambda t: t.encode("utf-8"))

#: Canonical (flags 0 or 1, reserved bits zero, valid UTF-8 text) Value
#: fields of every core item, so ``cls.decode_value(b).encode_value() == b``
#: must hold.
VALUE_BYTES: dict[type[DataItem], SearchStrategy[bytes]] = {
    Status: _cat(_byte_in(0, 255), _utf8_bytes),
    Ipv4ConnectionPoint: _cat(_flag, st.binary(min_size=4, max_size=4), _opt_port()),
    Ipv6ConnectionPoint: _cat(_flag, st.binary(min_size=16, max_size=16), _opt_port()),
    PeerType: _cat(_flag, _utf8_bytes),
    HeartbeatInterval: heartbeat_ms.map(lambda v: struct.pack("!I", v)),
    ExtensionsSupported: st.lists(st.binary(min_size=2, max_size=2), max_size=16).map(b"".join),
    MacAddress: mac_bytes,
    Ipv4Address: _cat(_flag, st.binary(min_size=4, max_size=4)),
    Ipv6Address: _cat(_flag, st.binary(min_size=16, max_size=16)),
    Ipv4AttachedSubnet: _cat(_flag, st.binary(min_size=4, max_size=4), _byte_in(0, 32)),
    Ipv6AttachedSubnet: _cat(_flag, st.binary(min_size=16, max_size=16), _byte_in(0, 128)),
    MaximumDataRateReceive: _u64_bytes,
    MaximumDataRateTransmit: _u64_bytes,
    CurrentDataRateReceive: _u64_bytes,
    CurrentDataRateTransmit: _u64_bytes,
    Latency: _u64_bytes,
    Resources: _byte_in(0, 100),
    RelativeLinkQualityReceive: _byte_in(0, 100),
    RelativeLinkQualityTransmit: _byte_in(0, 100),
    Mtu: st.binary(min_size=2, max_size=2),
}
assert set(VALUE_BYTES) == set(CORE_ITEMS)


# --------------------------------------------------------------------------
# Whole messages and signals, from the registry's UnitSpec tables
# --------------------------------------------------------------------------

ItemStrategies = Mapping[type[DataItem], SearchStrategy[DataItem]]


def _for_type(
    code: int, registry: Registry, extra: ItemStrategies | None
) -> SearchStrategy[DataItem]:
    cls = registry.items.get(code)
    if cls is None:
        raise LookupError(f"item type {code} is allowed by a rule but has no registered class")
    return item_values(cls, extra)


def draw_unit_items(
    draw: st.DrawFn,
    spec: UnitSpec,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extra: ItemStrategies | None = None,
    max_repeats: int = 3,
    shuffle: bool = True,
) -> tuple[DataItem, ...]:
    """Draw a valid item tuple for ``spec`` inside a ``@st.composite``.

    Honours every :class:`~dlep.wire.Rule` of ``spec.rules`` (the send
    rules; receive-only ``accept_also`` items are never produced): each item
    appears ``minimum..maximum`` times (unbounded capped at ``max_repeats``),
    repeats carry distinct values, and each ``one_of`` group gets at least
    one member. Order is shuffled (RFC 8175 §11: items are unordered).
    """
    chosen: list[DataItem] = []
    counts: dict[int, int] = {}
    for code, rule in sorted(spec.rules.items()):
        hi = rule.maximum if rule.maximum is not None else max(rule.minimum, max_repeats)
        if hi == 0:
            continue
        values = draw(
            st.lists(
                _for_type(code, registry, extra), min_size=rule.minimum, max_size=hi, unique=True
            )
        )
        counts[code] = len(values)
        chosen.extend(values)
    for group in spec.one_of:
        if any(counts.get(t) for t in group):
            continue
        candidates = sorted(
            t for t in group if (r := spec.rules.get(t)) is not None and r.maximum != 0
        )
        if not candidates:
            raise LookupError(f"{spec.name}: one_of group {sorted(group)} has no sendable member")
        code = draw(st.sampled_from(candidates))
        chosen.append(draw(_for_type(code, registry, extra)))
        counts[code] = 1
    if shuffle and len(chosen) > 1:
        chosen = draw(st.permutations(chosen))
    return tuple(chosen)


@st.composite
def unit_items(
    draw: st.DrawFn,
    spec: UnitSpec,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extra: ItemStrategies | None = None,
    max_repeats: int = 3,
) -> tuple[DataItem, ...]:
    """Strategy form of :func:`draw_unit_items`."""
    return draw_unit_items(draw, spec, registry, extra=extra, max_repeats=max_repeats)


def _codes(table: Mapping[int, UnitSpec], types: int | Iterable[int] | None) -> list[int]:
    if types is None:
        return sorted(table)
    if isinstance(types, int):
        return [types]
    return sorted(types)


@st.composite
def messages(
    draw: st.DrawFn,
    types: int | Iterable[int] | None = None,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extra: ItemStrategies | None = None,
    max_repeats: int = 3,
) -> Message:
    """Valid :class:`~dlep.wire.Message` of the given type(s) (default: every registered type).

    The spec is read from ``registry.messages`` at draw time.
    """
    code = draw(st.sampled_from(_codes(registry.messages, types)))
    spec = registry.messages[code]
    return Message(
        code, draw_unit_items(draw, spec, registry, extra=extra, max_repeats=max_repeats)
    )


@st.composite
def signals(
    draw: st.DrawFn,
    types: int | Iterable[int] | None = None,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extra: ItemStrategies | None = None,
    max_repeats: int = 3,
) -> Signal:
    """Valid :class:`~dlep.wire.Signal` of the given type(s) (default: every registered type)."""
    code = draw(st.sampled_from(_codes(registry.signals, types)))
    spec = registry.signals[code]
    return Signal(code, draw_unit_items(draw, spec, registry, extra=extra, max_repeats=max_repeats))


def encoded_messages(
    types: int | Iterable[int] | None = None, registry: Registry = DEFAULT_REGISTRY
) -> SearchStrategy[bytes]:
    """Bytes of valid messages (see :func:`messages`)."""
    return messages(types, registry).map(lambda m: encode_message(m, registry))


def encoded_signals(
    types: int | Iterable[int] | None = None, registry: Registry = DEFAULT_REGISTRY
) -> SearchStrategy[bytes]:
    """Bytes of valid signals (see :func:`signals`)."""
    return signals(types, registry).map(lambda s: encode_signal(s, registry))


# --------------------------------------------------------------------------
# A realistic, fixed-shape Destination Update (layout-cache friendly)
# --------------------------------------------------------------------------

#: The nine core metrics in a modem's usual order.
METRIC_CLASSES = (
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    Latency,
    Resources,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Mtu,
)


@st.composite
def metric_updates(draw: st.DrawFn, mac: SearchStrategy[bytes] = eui48s) -> Message:
    """A Destination Update with MAC + all nine metrics in fixed order.

    Same shape every time (only values vary), which is what a modem sends
    all day and what the decoder's layout cache learns.
    """
    items: list[DataItem] = [MacAddress(draw(mac))]
    items.extend(draw(ITEM_STRATEGIES[cls]) for cls in METRIC_CLASSES)
    return Message(MessageType.DESTINATION_UPDATE, tuple(items))


__all__ = [
    "ITEM_STRATEGIES",
    "METRIC_CLASSES",
    "SPECIAL_TEXTS",
    "U64_MAX",
    "VALUE_BYTES",
    "any_items",
    "cdrrs",
    "cdrts",
    "draw_unit_items",
    "encoded_messages",
    "encoded_signals",
    "eui48s",
    "eui64s",
    "extensions_supported",
    "heartbeat_intervals",
    "heartbeat_ms",
    "ipv4_addresses",
    "ipv4_attached_subnets",
    "ipv4_connection_points",
    "ipv4s",
    "ipv6_addresses",
    "ipv6_attached_subnets",
    "ipv6_connection_points",
    "ipv6s",
    "item_values",
    "latencies",
    "mac_addresses",
    "mac_bytes",
    "mdrrs",
    "mdrts",
    "messages",
    "metric_updates",
    "mtus",
    "peer_types",
    "percents",
    "ports",
    "resources",
    "rlqrs",
    "rlqts",
    "signals",
    "statuses",
    "texts",
    "u16s",
    "u64s",
    "unit_items",
]
