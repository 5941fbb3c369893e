"""The public library API: :class:`RouterDaemon` and :class:`ModemDaemon`.

::

    daemon = await RouterDaemon.builder().config(cfg).spawn()
    async for event in daemon.subscribe():
        ...
    await daemon.shutdown()

The names below are imported from their modules on first use (PEP 562), so
``from dlep.daemon import RouterDaemon`` does not load the modem daemon, and
``from dlep.daemon import fmt`` (dlepctl's text forms) loads neither daemon
nor the configuration schema. For type checkers they are ordinary imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..fsm import Extension
    from .base import (
        BuilderBase,
        DaemonArgumentError,
        DaemonError,
        DestinationExistsError,
        DestinationNotFoundError,
        SessionInfo,
        UnknownPeerError,
        UnknownSessionError,
    )
    from .changes import ChangeResult, DestinationChange, parse_change
    from .events import (
        ConnectFailed,
        ConnectionRefused,
        DaemonEvent,
        FilteredSubscription,
        Lagged,
        PeerDiscovered,
        SessionConnected,
        SessionEvent,
        Subscription,
    )
    from .gctune import tune_gc
    from .modem import (
        LinkDecision,
        LinkRequest,
        ModemDaemon,
        ModemDaemonBuilder,
        grant_what_is_possible,
    )
    from .peers import PeerInfo
    from .router import RouterDaemon, RouterDaemonBuilder

#: Public name -> the module (relative to this package) that defines it.
_EXPORTS: dict[str, str] = {
    "Extension": "..fsm",
    **dict.fromkeys(
        (
            "BuilderBase",
            "DaemonArgumentError",
            "DaemonError",
            "DestinationExistsError",
            "DestinationNotFoundError",
            "SessionInfo",
            "UnknownPeerError",
            "UnknownSessionError",
        ),
        ".base",
    ),
    **dict.fromkeys(("ChangeResult", "DestinationChange", "parse_change"), ".changes"),
    **dict.fromkeys(
        (
            "ConnectFailed",
            "ConnectionRefused",
            "DaemonEvent",
            "FilteredSubscription",
            "Lagged",
            "PeerDiscovered",
            "SessionConnected",
            "SessionEvent",
            "Subscription",
        ),
        ".events",
    ),
    **dict.fromkeys(
        (
            "LinkDecision",
            "LinkRequest",
            "ModemDaemon",
            "ModemDaemonBuilder",
            "grant_what_is_possible",
        ),
        ".modem",
    ),
    **dict.fromkeys(("RouterDaemon", "RouterDaemonBuilder"), ".router"),
    "tune_gc": ".gctune",
    "PeerInfo": ".peers",
}

#: The submodules, reachable as attributes (``dlep.daemon.fmt``) as before.
_SUBMODULES = frozenset(
    ("base", "changes", "events", "fmt", "gctune", "modem", "modem_table", "peers", "router")
)

if not TYPE_CHECKING:  # hidden from mypy, so a misspelt name stays a type error

    def __getattr__(name: str) -> object:
        if name in _SUBMODULES:
            value: object = importlib.import_module(f".{name}", __name__)
        else:
            module = _EXPORTS.get(name)
            if module is None:
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__, *_SUBMODULES})


__all__ = [
    "BuilderBase",
    "ChangeResult",
    "ConnectFailed",
    "ConnectionRefused",
    "DaemonArgumentError",
    "DaemonError",
    "DaemonEvent",
    "DestinationChange",
    "DestinationExistsError",
    "DestinationNotFoundError",
    "Extension",
    "FilteredSubscription",
    "Lagged",
    "LinkDecision",
    "LinkRequest",
    "ModemDaemon",
    "ModemDaemonBuilder",
    "PeerDiscovered",
    "PeerInfo",
    "RouterDaemon",
    "RouterDaemonBuilder",
    "SessionConnected",
    "SessionEvent",
    "SessionInfo",
    "Subscription",
    "UnknownPeerError",
    "UnknownSessionError",
    "grant_what_is_possible",
    "parse_change",
    "tune_gc",
]
