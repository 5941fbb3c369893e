"""Interoperability profiles: non-standard code points of deployed peers.

Some deployed DLEP implementations predate the RFC numbers of an extension
and still put draft or private code points on the wire. A :class:`Profile`
maps the *standard* extension and data item codes onto the codes such a
peer uses. It is opt-in per peer (``SessionConfig.profile``; config key
``profile``); standard codes are the default.

A profile acts at the wire boundary only: every message we send is
rewritten standard -> wire after encoding, every message received is
rewritten wire -> standard before decoding. Only the type field of each
top-level data item and the values of Extensions Supported are rewritten
(sub-data items live inside item values and are left alone). Everything
above the boundary — engine, extension hooks, events, API — sees standard
codes only.

Built-in profiles:

========  ==============================================================
name      mapping (standard -> wire)
========  ==============================================================
ll-dlep   Latency Range ext 4 -> 65521, item 28 -> 65411;
          Multi-Hop ext 1 -> 65524, items 21 -> 65415 (Hop Count),
          22 -> 65416 (Hop Control)
oonf      Link Identifier ext 3 -> 65523; items 26 <-> 27 swapped
          (OONF: 26 = Link Identifier, 27 = Link Identifier Length)
========  ==============================================================
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ..wire.codes import ItemType

__all__ = [
    "LL_DLEP",
    "OONF",
    "PROFILES",
    "Profile",
    "ProfileError",
    "profile_by_name",
]

_HDR: Final = struct.Struct("!HH")
_EXTS: Final = int(ItemType.EXTENSIONS_SUPPORTED)


class ProfileError(ValueError):
    """A profile whose maps are not one-to-one, or an unknown profile name."""


def _invert(name: str, what: str, mapping: Mapping[int, int]) -> dict[int, int]:
    inverse: dict[int, int] = {}
    for std, wire in mapping.items():
        for code in (std, wire):
            if not 0 < code < 0xFFFF:
                raise ProfileError(f"profile {name!r}: {what} code {code} out of range")
        if wire in inverse:
            raise ProfileError(f"profile {name!r}: {what} wire code {wire} mapped twice")
        inverse[wire] = std
    return inverse


@dataclass(frozen=True, slots=True)
class Profile:
    """A per-peer code point translation.

    Attributes:
        name: profile name as written in the configuration.
        extension_map: standard Extension Type Value -> value on the wire.
        item_map: standard data item type -> type on the wire (top-level
            items of messages only). Must be one-to-one; a swap such as
            ``{26: 27, 27: 26}`` is fine.
        gtsm_enforce: whether to drop this peer's packets sent with a TTL
            below 255 (None: the network setting).
    """

    name: str
    extension_map: Mapping[int, int] = field(default_factory=dict)
    item_map: Mapping[int, int] = field(default_factory=dict)
    #: GTSM for peers with this profile (None: ``network.gtsm_enforce``);
    #: False for implementations known to send TCP with TTL < 255.
    gtsm_enforce: bool | None = None
    _ext_in: dict[int, int] = field(init=False, repr=False, compare=False)
    _item_in: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extension_map", dict(self.extension_map))
        object.__setattr__(self, "item_map", dict(self.item_map))
        object.__setattr__(self, "_ext_in", _invert(self.name, "extension", self.extension_map))
        object.__setattr__(self, "_item_in", _invert(self.name, "item", self.item_map))
        if _EXTS in self.item_map or _EXTS in self._item_in:
            raise ProfileError(f"profile {self.name!r}: cannot remap Extensions Supported")

    def __hash__(self) -> int:
        return hash(self.name)

    # -- code level ------------------------------------------------------

    def extension_to_wire(self, code: int) -> int:
        """Standard extension code -> the code this peer uses."""
        return self.extension_map.get(code, code)

    def extension_from_wire(self, code: int) -> int:
        """Wire extension code -> standard (unmapped codes unchanged)."""
        return self._ext_in.get(code, code)

    def item_to_wire(self, code: int) -> int:
        """Standard item type -> the type this peer uses."""
        return self.item_map.get(code, code)

    def item_from_wire(self, code: int) -> int:
        """Wire item type -> standard (unmapped types unchanged)."""
        return self._item_in.get(code, code)

    # -- message level ---------------------------------------------------

    def to_wire(self, message: bytes) -> bytes:
        """Rewrite one encoded message (header included) for this peer."""
        return _rewrite(message, self.item_map, self.extension_map)

    def from_wire(self, message: bytes) -> bytes:
        """Rewrite one received message (header included) to standard codes."""
        return _rewrite(message, self._item_in, self._ext_in)


def _rewrite(message: bytes, items: Mapping[int, int], exts: Mapping[int, int]) -> bytes:
    """Copy of ``message`` with item types and Extensions Supported remapped.

    Tolerant: a malformed message is rewritten as far as it parses and the
    rest left as is, so the decoder reports the error as it would anyway.
    """
    if (not items and not exts) or len(message) < 4:
        return message
    buf: bytearray | None = None
    end = len(message)
    off = 4
    while end - off >= 4:
        t, length = _HDR.unpack_from(message, off)
        vstart = off + 4
        vend = vstart + length
        if vend > end:
            break
        new_t = items.get(t, t)
        if new_t != t:
            if buf is None:
                buf = bytearray(message)
            struct.pack_into("!H", buf, off, new_t)
        if t == _EXTS and exts and length % 2 == 0:
            for v in range(vstart, vend, 2):
                (code,) = struct.unpack_from("!H", message, v)
                new_code = exts.get(code, code)
                if new_code != code:
                    if buf is None:
                        buf = bytearray(message)
                    struct.pack_into("!H", buf, v, new_code)
        off = vend
    return message if buf is None else bytes(buf)


#: LL-DLEP: draft-era private codes for Latency Range and Multi-Hop.
LL_DLEP: Final = Profile(
    "ll-dlep",
    extension_map={4: 65521, 1: 65524},
    item_map={28: 65411, 21: 65415, 22: 65416},
)

#: OONF: Link Identifier as extension 65523 with items 26/27 swapped.
OONF: Final = Profile(
    "oonf",
    extension_map={3: 65523},
    item_map={26: 27, 27: 26},
)

#: Profiles by configuration name; "standard" means no profile.
PROFILES: Final[Mapping[str, Profile | None]] = {
    "standard": None,
    LL_DLEP.name: LL_DLEP,
    OONF.name: OONF,
}


def profile_by_name(name: str | None) -> Profile | None:
    """The profile called ``name`` (None or "standard" = no profile).

    Raises:
        ProfileError: unknown name.
    """
    if name is None:
        return None
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(repr(n) for n in PROFILES)
        raise ProfileError(f"unknown interoperability profile {name!r} (known: {known})") from None
