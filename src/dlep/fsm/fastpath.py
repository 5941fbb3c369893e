"""Shortcuts for the messages a modem sends all day (MAC and metrics).

Receiving (:class:`FastPath`, the router's side):

A router spends its life reading Destination Updates (and, at start-up,
Destination Ups) that carry a MAC and metric items and nothing else, each
of one shape. Once :func:`dlep.wire.decode_message` has checked one message
of a shape in full and learned its layout, and the session has handled it,
this module reads later messages of that shape straight into the
:class:`~dlep.fsm.parts.Parts` the destination table takes: no item
objects, no per-item sorting, the §12.6 "declared metrics" check done once
per shape. What the shortcut reads is exactly what the full path would
have produced (the layout gives the values the decoder would put in its
items); anything else about the message (a different shape, a value out of
range, a MAC of another length than the session's) makes it decline, and
the full path runs and reports what is wrong.

The table's state machine, its checks and the events are the same for
both paths: the shortcut only skips re-deriving what the shape already
proved.

Sending (:class:`MetricsWriter`, the modem's side): the first Destination Up
or Update of a shape (type, MAC length, which metrics) is encoded by the
full encoder with all its checks; its bytes give the template for later
ones of the shape, which only pack the values in. A template is used only
if it reproduces the full encoder's bytes for that first message.
"""

from __future__ import annotations

import itertools
import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any, Final

from ..wire import (
    FixedLayout,
    ItemType,
    MacAddress,
    MessageType,
    Registry,
    learned_layout,
)
from ..wire.items import FAST_PERCENT, FAST_U16, FAST_U64, DataItem
from .metrics import FIELD_OF_TYPE, METRIC_FIELDS, Metrics, metric_values
from .parts import NO_METRICS, Parts
from .plugins import PluginHost

__all__ = ["FastPath", "MetricsWriter"]

M = MessageType
#: The message types the shortcut may take (a router's daily input).
ELIGIBLE: Final = frozenset({M.DESTINATION_UP, M.DESTINATION_UPDATE})
#: At most this many shapes per session (a modem uses a handful).
MAX_SHAPES: Final = 64
_MAC: Final[int] = ItemType.MAC_ADDRESS
_NAMES: Final = tuple(METRIC_FIELDS)
_NO_ITEMS: Final[list[Any]] = []  # read-only (Parts of the shortcut carry no such items)
_NONE: Final = (None,)
_tuple_new = tuple.__new__  # Metrics is a tuple: built from its nine values at once


class _Shape:
    """How to read one (type, length) of message."""

    __slots__ = ("layout", "mac_at", "metrics", "mtype")

    def __init__(
        self,
        mtype: int,
        layout: FixedLayout,
        mac_at: int,
        metrics: Callable[[tuple[Any, ...]], Metrics],
    ) -> None:
        self.mtype = mtype
        self.layout = layout
        self.mac_at = mac_at
        self.metrics = metrics


def _metrics_reader(types: tuple[int, ...]) -> Callable[[tuple[Any, ...]], Metrics]:
    """A function from a layout's values to the Metrics they carry."""
    where = {FIELD_OF_TYPE[t]: i for i, t in enumerate(types) if t in FIELD_OF_TYPE}
    if not where:
        return lambda values: NO_METRICS
    if len(where) == len(_NAMES):
        pick = operator.itemgetter(*(where[n] for n in _NAMES))
        return lambda values: _tuple_new(Metrics, pick(values))
    missing = len(types)  # the index of the None appended to the values
    pick = operator.itemgetter(*(where.get(n, missing) for n in _NAMES))
    return lambda values: _tuple_new(Metrics, pick(values + _NONE))


class FastPath:
    """One session's shortcut: the shapes it learned, by message header.

    Args:
        registry: the session's registry (where the decoder keeps layouts).
        plugins: the session's extensions (a shape an active extension
            observes is never taken).
        extensions: the negotiated extensions (what the session decodes with).
    """

    __slots__ = ("_extensions", "_plugins", "_registry", "_shapes")

    def __init__(self, registry: Registry, plugins: PluginHost, extensions: frozenset[int]) -> None:
        self._registry = registry
        self._plugins = plugins
        self._extensions = extensions
        #: First four octets of a message (type, length) -> its shape, or
        #: None for a header seen and found unsuitable.
        self._shapes: dict[bytes, _Shape | None] = {}

    def read(self, raw: bytes, mac_len: int | None) -> Parts | None:
        """``raw`` as Parts if it has a learned shape, else None (use the full path)."""
        shape = self._shapes.get(raw[:4])
        if shape is None:
            return None
        values = shape.layout.values(raw)
        if values is None:
            return None
        mac = values[shape.mac_at]
        if mac_len is not None and len(mac) != mac_len:
            return None  # the full path names the mismatch (§13.7)
        return Parts(shape.mtype, mac, None, shape.metrics(values), _NO_ITEMS, _NO_ITEMS, _NO_ITEMS)

    def learn(self, mtype: int, raw: bytes, declared: frozenset[int]) -> None:
        """``raw`` (of type ``mtype``) was just handled in full, without fault:
        remember its shape if the shortcut can take it.

        ``declared``: the metric types the session's initialisation declared
        (§12.6); a shape carrying others is not taken.
        """
        if mtype not in ELIGIBLE:
            return
        header = raw[:4]
        if header in self._shapes or len(self._shapes) >= MAX_SHAPES:
            return
        self._shapes[header] = self._shape(mtype, len(raw) - 4, declared)

    def _shape(self, mtype: int, length: int, declared: frozenset[int]) -> _Shape | None:
        if mtype in self._plugins.observed:
            return None
        layout = learned_layout(mtype, length, self._registry, extensions=self._extensions)
        if layout is None:
            return None
        types = layout.item_types
        owners = self._registry.item_owners
        if types.count(_MAC) != 1 or any(owners.get(t) for t in types):
            return None
        metric_types = [t for t in types if t != _MAC]
        if not all(t in FIELD_OF_TYPE and t in declared for t in metric_types):
            return None
        return _Shape(mtype, layout, types.index(_MAC), _metrics_reader(types))


_PACK: Final = {FAST_U64: ("Q", 8), FAST_PERCENT: ("B", 1), FAST_U16: ("H", 2)}
_CLASSES: Final = tuple(METRIC_FIELDS.values())
_chain = itertools.chain.from_iterable
_NONES: Final = (None,) * len(_CLASSES)


class _Template:
    __slots__ = ("headers", "prefix", "struct")

    def __init__(self, prefix: bytes, fmt: str, headers: tuple[int, ...]) -> None:
        self.prefix = prefix
        self.struct = struct.Struct(fmt)
        self.headers = headers

    def pack(self, mac: bytes, present: list[int]) -> bytes:
        return (
            self.prefix + mac + self.struct.pack(*_chain(zip(self.headers, present, strict=True)))
        )


class MetricsWriter:
    """Encodes destination messages made of a MAC and metric items, by shape.

    Args:
        encode: the session's full encoder (every check; SessionError if
            the message cannot be sent).
    """

    __slots__ = ("_encode", "_templates")

    def __init__(self, encode: Callable[[int, Sequence[DataItem]], bytes]) -> None:
        self._encode = encode
        self._templates: dict[tuple[int, int, tuple[bool, ...]], _Template | None] = {}

    def encode(self, mtype: int, mac: bytes, metrics: Metrics) -> bytes:
        """The message ``mtype`` naming ``mac`` with the set ``metrics``
        (valid ones: the session checked them)."""
        values = metric_values(metrics)
        shape = (mtype, len(mac), tuple(map(operator.is_not, values, _NONES)))
        template = self._templates.get(shape)
        if template is not None:
            return template.pack(mac, [v for v in values if v is not None])
        data = self._encode(mtype, [MacAddress(mac), *metrics.items()])
        if shape not in self._templates and len(self._templates) < MAX_SHAPES:
            self._templates[shape] = _learn(data, mac, values)
        return data


def _learn(data: bytes, mac: bytes, values: tuple[int | None, ...]) -> _Template | None:
    """The template of ``data`` (header, MAC item, then the set metrics in
    RFC order), or None if it does not reproduce ``data``."""
    at = 8 + len(mac)  # message header, MAC item header, MAC
    fmt = ["!"]
    headers: list[int] = []
    present: list[int] = []
    for cls, v in zip(_CLASSES, values, strict=True):
        if v is None:
            continue
        code, size = _PACK[cls.FAST]
        fmt.append("I" + code)
        headers.append((cls.TYPE << 16) | size)
        present.append(v)
    template = _Template(data[:8], "".join(fmt), tuple(headers))
    try:
        same = template.pack(mac, present) == data and data[8:at] == mac
    except struct.error:
        same = False
    return template if same else None
