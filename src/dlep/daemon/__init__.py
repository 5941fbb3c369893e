"""The public library API: :class:`RouterDaemon` and :class:`ModemDaemon`.

::

    daemon = await RouterDaemon.builder().config(cfg).spawn()
    async for event in daemon.subscribe():
        ...
    await daemon.shutdown()
"""

from .base import BuilderBase, DaemonError, Extension, SessionInfo
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
    "ConnectFailed",
    "ConnectionRefused",
    "DaemonError",
    "DaemonEvent",
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
    "grant_what_is_possible",
]
