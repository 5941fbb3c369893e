"""asyncio transport for DLEP: UDP multicast discovery, TCP, TLS, GTSM.

Thin adapters around the sans-I/O engines of :mod:`dlep.fsm`.
"""

from .sockopts import (
    interface_addresses,
    interface_index,
    min_ttl_drops,
    peer_ttl,
    set_ttl_255,
)
from .stream import SessionProtocol
from .tls import TlsSettings, TlsSetupError, client_context, describe_tls_error, server_context
from .udp import DiscoverySocket

__all__ = [
    "DiscoverySocket",
    "SessionProtocol",
    "TlsSettings",
    "TlsSetupError",
    "client_context",
    "describe_tls_error",
    "interface_addresses",
    "interface_index",
    "min_ttl_drops",
    "peer_ttl",
    "server_context",
    "set_ttl_255",
]
