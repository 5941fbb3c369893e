"""Signals and messages: containers, encoding, strict decoding.

Decoding checks everything RFC 8175 §11-§13 says about a unit in isolation:
header, lengths, each item's format, which items may appear and how often,
and (given the negotiated set) that no item or message of an extension not in
use slips through. What depends on session state (destination known? metric
declared?) is the session engine's job.
"""

from __future__ import annotations

import builtins
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar, overload

from .codes import SIGNAL_PREFIX, StatusCode, message_name, signal_name
from .errors import DecodeError, EncodeError, ItemFormatError
from .items import FAST_MAC, FAST_PERCENT, FAST_U16, FAST_U64, DataItem, UnknownItem
from .registry import DEFAULT_REGISTRY, Registry, Rule, UnitSpec, item_name

_HDR: Final = struct.Struct("!HH")
_SIG_HDR: Final = struct.Struct("!4sHH")
MESSAGE_HEADER_LEN: Final = 4
SIGNAL_HEADER_LEN: Final = 8
MAX_BODY: Final = 0xFFFF

T = TypeVar("T", bound=DataItem)
_new = object.__new__
_set = object.__setattr__
AnyItem = DataItem | UnknownItem


@dataclass(frozen=True, slots=True)
class _Unit:
    type: int
    items: tuple[AnyItem, ...] = ()

    def get(self, cls: builtins.type[T]) -> T | None:
        """The first item of class ``cls``, or None."""
        for item in self.items:
            if item.__class__ is cls:
                return item
        return None

    def get_all(self, cls: builtins.type[T]) -> list[T]:
        """Every item of class ``cls``, in order."""
        return [i for i in self.items if i.__class__ is cls]

    def __iter__(self) -> Iterator[AnyItem]:
        return iter(self.items)


@dataclass(frozen=True, slots=True)
class Message(_Unit):
    """A DLEP message (TCP): a type code and its data items, in order."""

    @property
    def name(self) -> str:
        """Readable message name."""
        return message_name(self.type)


@dataclass(frozen=True, slots=True)
class Signal(_Unit):
    """A DLEP signal (UDP discovery): a type code and its data items."""

    @property
    def name(self) -> str:
        """Readable signal name."""
        return signal_name(self.type)


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


def _check_send(spec: UnitSpec, items: tuple[AnyItem, ...], registry: Registry) -> None:
    """Strict in what we send: enforce the unit's rules, raise EncodeError."""
    rules = spec.rules
    counts: dict[int, int] = {}
    seen: set[AnyItem] = set()
    for item in items:
        if isinstance(item, UnknownItem):
            raise EncodeError(f"{spec.name}: refusing to send unknown item type {item.type_code}")
        t = item.TYPE
        rule = rules.get(t)
        if rule is None:
            raise EncodeError(f"{spec.name}: item {item_name(t, registry)} is not allowed")
        n = counts[t] = counts.get(t, 0) + 1
        if rule.maximum is not None and n > rule.maximum:
            raise EncodeError(
                f"{spec.name}: {rule.describe()} {item_name(t, registry)} allowed, got {n}"
            )
        if n > 1:
            if item in seen:
                raise EncodeError(f"{spec.name}: duplicate {item!r}")
            seen.add(item)
        elif rule.maximum != 1:
            seen.add(item)
    for t in spec.required:
        if t not in counts:
            raise EncodeError(f"{spec.name}: missing required item {item_name(t, registry)}")
    for group in spec.one_of:
        if not any(t in counts for t in group):
            names = ", ".join(item_name(t, registry) for t in sorted(group))
            raise EncodeError(f"{spec.name}: needs at least one of {names}")


def encode_items(items: Collection[AnyItem]) -> bytes:
    """Concatenated TLVs of ``items``."""
    try:
        return b"".join([i.encode() for i in items])
    except ItemFormatError as exc:
        raise EncodeError(str(exc)) from None


def encode_message(
    message: Message, registry: Registry = DEFAULT_REGISTRY, *, validate: bool = True
) -> bytes:
    """Bytes of ``message``; with ``validate`` its §12 rules are enforced first."""
    if validate:
        spec = registry.messages.get(message.type)
        if spec is None:
            raise EncodeError(f"unknown message type {message.type}")
        _check_send(spec, message.items, registry)
    body = encode_items(message.items)
    if len(body) > MAX_BODY:
        raise EncodeError(f"{message.name}: {len(body)} octets of items exceed 65535")
    return _HDR.pack(message.type, len(body)) + body


def encode_signal(
    signal: Signal, registry: Registry = DEFAULT_REGISTRY, *, validate: bool = True
) -> bytes:
    """Bytes of ``signal`` including the ``DLEP`` prefix."""
    if validate:
        spec = registry.signals.get(signal.type)
        if spec is None:
            raise EncodeError(f"unknown signal type {signal.type}")
        _check_send(spec, signal.items, registry)
    body = encode_items(signal.items)
    if len(body) > MAX_BODY:
        raise EncodeError(f"{signal.name}: {len(body)} octets of items exceed 65535")
    return _SIG_HDR.pack(SIGNAL_PREFIX, signal.type, len(body)) + body


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

_INVALID: Final = StatusCode.INVALID_DATA


def _decode_items(
    data: bytes,
    start: int,
    spec: UnitSpec,
    registry: Registry,
    extensions: frozenset[int] | None,
) -> tuple[AnyItem, ...]:
    # Hot path: one table lookup per item; anything unusual goes to _reject.
    unit = spec.code
    signal = spec.signal
    end = len(data)
    table = registry.compiled(spec, extensions)
    items: list[AnyItem] = []
    append = items.append
    singles: set[int] = set()
    multi: dict[int, set[AnyItem]] | None = None
    off = start
    unpack = _HDR.unpack_from
    while off < end:
        if end - off < 4:
            raise DecodeError(
                _INVALID,
                f"{end - off} trailing octets, too short for a data item header",
                message_type=unit,
                offset=off,
                signal=signal,
            )
        t, length = unpack(data, off)
        vstart = off + 4
        vend = vstart + length
        if vend > end:
            raise DecodeError(
                _INVALID,
                f"item length {length} runs {vend - end} octets past the end",
                message_type=unit,
                item_type=t,
                offset=off,
                signal=signal,
            )
        entry = table.get(t)
        if entry is None:
            append(_unlisted(data, vstart, vend, t, off, spec, registry, extensions))
            off = vend
            continue
        fast, cls, dec, single = entry
        # Inline construction of the common fixed layouts (see items.FAST_*);
        # a wrong length or range falls through to the decoder, which raises.
        if fast == FAST_U64 and length == 8:
            item = _new(cls)
            _set(item, "value", int.from_bytes(data[vstart:vend], "big"))
        elif fast == FAST_PERCENT and length == 1 and data[vstart] <= 100:
            item = _new(cls)
            _set(item, "value", data[vstart])
        elif fast == FAST_MAC and (length == 6 or length == 8):
            item = _new(cls)
            _set(item, "address", data[vstart:vend])
        elif fast == FAST_U16 and length == 2:
            item = _new(cls)
            _set(item, "value", (data[vstart] << 8) | data[vstart + 1])
        else:
            try:
                item = dec(data[vstart:vend])
            except ItemFormatError as exc:
                raise DecodeError(
                    _INVALID, str(exc), message_type=unit, item_type=t, offset=off, signal=signal
                ) from None
        if single:
            if t in singles:
                raise DecodeError(
                    _INVALID,
                    "at most one allowed, this is a repeat",
                    message_type=unit,
                    item_type=t,
                    offset=off,
                    signal=signal,
                )
            singles.add(t)
        else:
            if multi is None:
                multi = {}
            bucket = multi.setdefault(t, set())
            _check_repeat(spec.recv_rules[t], item, bucket, unit, t, off, signal)
            bucket.add(item)
        append(item)
        off = vend
    for t in spec.required:
        if t not in singles and (multi is None or t not in multi):
            raise DecodeError(
                _INVALID,
                f"missing required item {item_name(t, registry)}",
                message_type=unit,
                signal=signal,
            )
    for group in spec.one_of if spec.one_of_on_receipt else ():
        if group.isdisjoint(singles) and (multi is None or group.isdisjoint(multi)):
            names = ", ".join(item_name(t, registry) for t in sorted(group))
            raise DecodeError(
                _INVALID, f"needs at least one of {names}", message_type=unit, signal=signal
            )
    return tuple(items)


def _unlisted(
    data: bytes,
    vstart: int,
    vend: int,
    t: int,
    off: int,
    spec: UnitSpec,
    registry: Registry,
    extensions: frozenset[int] | None,
) -> UnknownItem:
    """An item outside the unit's receive table: tolerated unknown, or an error."""
    known = t in registry.decoders
    if not known and spec.tolerate_unknown:
        return UnknownItem(t, bytes(data[vstart:vend]))
    ext = registry.item_extension.get(t)
    if known and t in spec.recv_rules and extensions is not None and ext not in extensions:
        why = f"item of extension {ext}, which is not in use on this session"
    elif known:
        why = "data item not allowed in this " + ("signal" if spec.signal else "message")
    else:
        why = "unknown data item"
    raise DecodeError(
        _INVALID, why, message_type=spec.code, item_type=t, offset=off, signal=spec.signal
    )


def _check_repeat(
    rule: Rule,
    item: AnyItem,
    bucket: set[AnyItem],
    unit: int,
    t: int,
    off: int,
    signal: bool,
) -> None:
    if rule.maximum is not None and len(bucket) >= rule.maximum:
        raise DecodeError(
            _INVALID,
            f"{rule.describe()} allowed, this is number {len(bucket) + 1}",
            message_type=unit,
            item_type=t,
            offset=off,
            signal=signal,
        )
    if item in bucket:
        raise DecodeError(
            _INVALID,
            "duplicate item with the same value",
            message_type=unit,
            item_type=t,
            offset=off,
            signal=signal,
        )


# --------------------------------------------------------------------------
# Layout cache: a modem sends the same-shaped Destination Update all day.
# Once a unit made only of fixed-layout items (FAST_*) has passed the full
# check, later units of the same type and length are parsed by one
# precompiled struct; their type/length words must equal the cached ones,
# else (or on any range violation) the full path runs and reports errors.
# --------------------------------------------------------------------------

_FMT = {FAST_U64: "Q", FAST_PERCENT: "B", FAST_U16: "H"}
_MAX_LAYOUTS = 64


class FixedLayout:
    """A learned layout: how one type and length of message is laid out.

    Made only of fixed-size items (each type once), it was learned from a
    message that passed every check of :func:`decode_message`. :meth:`values`
    reads a later message of the same type and length with one precompiled
    struct and gives exactly the values :func:`decode_message` would put in
    its items, or None when the message differs in any way (then
    :func:`decode_message` decides, and reports what is wrong).
    """

    __slots__ = ("_build", "_headers", "_percent", "_struct", "item_types")

    def __init__(
        self,
        fmt: str,
        headers: tuple[int, ...],
        build: tuple[tuple[type[DataItem], str], ...],
        percent: tuple[int, ...],
    ) -> None:
        self._struct = struct.Struct(fmt)
        self._headers = headers
        self._build = build
        #: Positions (in :meth:`values`) of 0-100 percent values.
        self._percent = percent
        #: The item type codes, in message order.
        self.item_types: tuple[int, ...] = tuple(h >> 16 for h in headers)

    def values(self, data: bytes) -> tuple[Any, ...] | None:
        """The item values of ``data`` (a whole message of this type and
        length) in message order, or None if it does not fit this layout."""
        vals = self._struct.unpack_from(data, MESSAGE_HEADER_LEN)
        if vals[0::2] != self._headers:
            return None
        values = vals[1::2]
        for i in self._percent:
            if values[i] > 100:
                return None
        return values

    def items(self, data: bytes) -> tuple[AnyItem, ...] | None:
        """The items of ``data``, as :func:`decode_message` builds them, or None."""
        values = self.values(data)
        if values is None:
            return None
        out: list[AnyItem] = []
        for (cls, attr), v in zip(self._build, values, strict=True):
            o = _new(cls)
            _set(o, attr, v)
            out.append(o)
        return tuple(out)


def _learn_layout(items: tuple[AnyItem, ...], data: bytes, start: int) -> FixedLayout | None:
    fmt = ["!"]
    headers: list[int] = []
    build: list[tuple[type[DataItem], str]] = []
    percent: list[int] = []
    off = start
    seen: set[type[DataItem]] = set()
    for item in items:
        if isinstance(item, UnknownItem):
            return None
        cls = item.__class__
        if cls in seen:  # a repeatable item: its values must be compared each time
            return None
        seen.add(cls)
        fast = cls.FAST
        t, length = _HDR.unpack_from(data, off)
        if fast == FAST_MAC:
            fmt.append(f"I{length}s")
            build.append((cls, "address"))
        elif fast in _FMT:
            fmt.append("I" + _FMT[fast])
            build.append((cls, "value"))
            if fast == FAST_PERCENT:
                percent.append(len(build) - 1)
        else:
            return None
        headers.append((t << 16) | length)
        off += 4 + length
    return FixedLayout("".join(fmt), tuple(headers), tuple(build), tuple(percent))


def learned_layout(
    mtype: int,
    length: int,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extensions: frozenset[int] | None = None,
) -> FixedLayout | None:
    """The layout :func:`decode_message` learned for messages of type
    ``mtype`` with ``length`` octets of items (same ``registry`` and
    ``extensions``), or None if it has none (yet).

    A receiver that sees the same shape of message all day can keep the
    layout and read values with it, calling :func:`decode_message` whenever
    :meth:`FixedLayout.values` says None.
    """
    spec = registry.messages.get(mtype)
    if spec is None:
        return None
    layout: FixedLayout | None = registry.layouts(spec, extensions).get(length)
    return layout


def decode_message(
    data: bytes,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extensions: frozenset[int] | None = None,
) -> Message:
    """Decode exactly one message (header included).

    ``extensions`` is the negotiated extension set; None accepts every
    registered extension (useful before negotiation and in tools).

    Raises:
        DecodeError: with status 128 for an unknown (or non-negotiated)
            message type, 130 for anything wrong with its items.
    """
    if type(data) is not bytes:
        data = bytes(data)  # slices must be immutable (items hold them)
    if len(data) < MESSAGE_HEADER_LEN:
        raise DecodeError(_INVALID, f"{len(data)} octets, shorter than a message header")
    mtype, length = _HDR.unpack_from(data, 0)
    spec = registry.messages.get(mtype)
    owners = registry.message_owners.get(mtype)
    if spec is None or (
        extensions is not None and owners is not None and owners.isdisjoint(extensions)
    ):
        why = "unknown message type" if spec is None else "message of an extension not in use"
        raise DecodeError(StatusCode.UNKNOWN_MESSAGE, why, message_type=mtype, offset=0)
    if length != len(data) - MESSAGE_HEADER_LEN:
        raise DecodeError(
            _INVALID,
            f"header length {length} but {len(data) - MESSAGE_HEADER_LEN} octets of items",
            message_type=mtype,
            offset=0,
        )
    layouts = registry.layouts(spec, extensions)
    layout = layouts.get(length)
    if layout is not None:
        items = layout.items(data)
        if items is not None:
            return Message(mtype, items)
    items = _decode_items(data, MESSAGE_HEADER_LEN, spec, registry, extensions)
    if layout is None and length and len(layouts) < _MAX_LAYOUTS:
        learned = _learn_layout(items, data, MESSAGE_HEADER_LEN)
        if learned is not None:
            layouts[length] = learned
    return Message(mtype, items)


def decode_signal(
    data: bytes,
    registry: Registry = DEFAULT_REGISTRY,
    *,
    extensions: frozenset[int] | None = None,
) -> Signal:
    """Decode one UDP signal; a DecodeError means: ignore it (RFC 8175 §12.1)."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) < SIGNAL_HEADER_LEN:
        raise DecodeError(
            _INVALID, f"{len(data)} octets, shorter than a signal header", signal=True
        )
    prefix, stype, length = _SIG_HDR.unpack_from(data, 0)
    if prefix != SIGNAL_PREFIX:
        raise DecodeError(_INVALID, f"signal does not start with 'DLEP' ({prefix!r})", signal=True)
    spec = registry.signals.get(stype)
    if spec is None:
        raise DecodeError(
            StatusCode.UNKNOWN_MESSAGE, "unknown signal type", message_type=stype, signal=True
        )
    if length != len(data) - SIGNAL_HEADER_LEN:
        raise DecodeError(
            _INVALID,
            f"header length {length} but {len(data) - SIGNAL_HEADER_LEN} octets of items",
            message_type=stype,
            offset=4,
            signal=True,
        )
    return Signal(stype, _decode_items(data, SIGNAL_HEADER_LEN, spec, registry, extensions))


@overload
def message(mtype: int, *items: AnyItem) -> Message: ...
@overload
def message(mtype: int, *items: AnyItem, signal: bool) -> Message | Signal: ...
def message(mtype: int, *items: AnyItem, signal: bool = False) -> Message | Signal:
    """Shorthand: ``message(MessageType.HEARTBEAT)``."""
    return Signal(mtype, items) if signal else Message(mtype, items)
