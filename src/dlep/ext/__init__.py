"""DLEP extensions: the plug-in interface and the built-in extensions.

Built in (standard IANA codes):

====  =================  ===========================================
code  name               specification
====  =================  ===========================================
1     multi-hop          RFC 8629 Multi-Hop Forwarding
2     pause              RFC 8651 Control-Plane-Based Pause
3     link-identifier    RFC 8703 Link Identifier
4     latency-range      RFC 8757 Latency Range
5     credit-8021q       RFC 9895 IEEE 802.1Q Aware Credit Window
6     credit-diffserv    RFC 9894 Diffserv Aware Credit Window
====  =================  ===========================================
"""

from __future__ import annotations

from .base import Extension, ExtensionViolation, Placement, load_entry_point_extensions
from .credit_8021q import Ieee8021qCreditWindow
from .credit_diffserv import DiffservCreditWindow
from .latency_range import LatencyRangeExtension
from .link_id import LinkIdExtension
from .multihop import MultiHopExtension
from .pause import PauseExtension

#: Built-in extension classes by Extension Type Value.
BUILTIN_EXTENSIONS: dict[int, type[Extension]] = {
    cls.code: cls
    for cls in (
        MultiHopExtension,
        PauseExtension,
        LinkIdExtension,
        LatencyRangeExtension,
        Ieee8021qCreditWindow,
        DiffservCreditWindow,
    )
}


def builtin_extension(code: int) -> Extension | None:
    """A default-configured instance of built-in extension ``code``, or None."""
    cls = BUILTIN_EXTENSIONS.get(code)
    return cls() if cls is not None else None


__all__ = [
    "BUILTIN_EXTENSIONS",
    "DiffservCreditWindow",
    "Extension",
    "ExtensionViolation",
    "Ieee8021qCreditWindow",
    "LatencyRangeExtension",
    "LinkIdExtension",
    "MultiHopExtension",
    "PauseExtension",
    "Placement",
    "builtin_extension",
    "load_entry_point_extensions",
]
