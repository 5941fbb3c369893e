"""The public library API: :class:`RouterDaemon` and :class:`ModemDaemon`.

::

    daemon = await RouterDaemon.builder().config(cfg).spawn()
    async for event in daemon.subscribe():
        ...
    await daemon.shutdown()
"""

from ..fsm import Extension
from .base import (
    BuilderBase,
    DaemonArgumentError,
    DaemonError,
    DestinationExistsError,
    DestinationNotFoundError,
    SessionInfo,
    UnknownSessionError,
)
from .changes import ChangeResult, DestinationChange, parse_change
from .events import (
    ConnectFailed,
    ConnectionRefused,
    DaemonEvent,
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
from .router import RouterDaemon, RouterDaemonBuilder

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
    "Lagged",
    "LinkDecision",
    "LinkRequest",
    "ModemDaemon",
    "ModemDaemonBuilder",
    "PeerDiscovered",
    "RouterDaemon",
    "RouterDaemonBuilder",
    "SessionConnected",
    "SessionEvent",
    "SessionInfo",
    "Subscription",
    "UnknownSessionError",
    "grant_what_is_possible",
    "parse_change",
    "tune_gc",
]
