"""Sans-I/O DLEP protocol engines: discovery and sessions, router and modem.

Nothing here opens a socket or reads a clock: every call takes ``now``
(seconds, any monotonic origin) and the engines say when they next need
waking. See :class:`Session` and :mod:`dlep.fsm.discovery`.
"""

from .discovery import (
    ConnectionPoint,
    DiscoveryCounters,
    DiscoveryReceived,
    ModemDiscovery,
    PeerOffered,
    RouterDiscovery,
)
from .events import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationInfo,
    DestinationRefused,
    DestinationUp,
    DestinationUpdate,
    DestinationUpRequested,
    Event,
    Inconsistency,
    LinkCharacteristicsRequested,
    LinkCharacteristicsResponse,
    LinkCharacteristicsTimeout,
    ResponseStatus,
    SessionTerminated,
    SessionUp,
    SessionUpdated,
)
from .metrics import METRIC_FIELDS, Metrics
from .session import (
    TRANSITIONS,
    ProtocolViolation,
    Role,
    Session,
    SessionClosedError,
    SessionConfig,
    SessionError,
    SessionPlugin,
    State,
    TransactionInProgressError,
    UnknownDestinationError,
)

__all__ = [
    "METRIC_FIELDS",
    "TRANSITIONS",
    "ConnectionPoint",
    "DestinationAnnounceRequested",
    "DestinationDown",
    "DestinationInfo",
    "DestinationRefused",
    "DestinationUp",
    "DestinationUpRequested",
    "DestinationUpdate",
    "DiscoveryCounters",
    "DiscoveryReceived",
    "Event",
    "Inconsistency",
    "LinkCharacteristicsRequested",
    "LinkCharacteristicsResponse",
    "LinkCharacteristicsTimeout",
    "Metrics",
    "ModemDiscovery",
    "PeerOffered",
    "ProtocolViolation",
    "ResponseStatus",
    "Role",
    "RouterDiscovery",
    "Session",
    "SessionClosedError",
    "SessionConfig",
    "SessionError",
    "SessionPlugin",
    "SessionTerminated",
    "SessionUp",
    "SessionUpdated",
    "State",
    "TransactionInProgressError",
    "UnknownDestinationError",
]
