"""Sans-I/O DLEP protocol engines: discovery and sessions, router and modem.

Nothing here opens a socket or reads a clock: every call takes ``now``
(seconds, any monotonic origin) and the engines say when they next need
waking. See :class:`Session` and :mod:`dlep.fsm.discovery`.

Modules: :mod:`.session` (lifecycle, dispatch, API), :mod:`.destinations`
(each destination's state machine), :mod:`.addresses` (address ownership),
:mod:`.plugins` (the extension interface), :mod:`.errors` (what is raised).
"""

from .addresses import AddressIndex, AddressSet
from .arguments import mac_bytes
from .destinations import (
    TRANSITIONS as DESTINATION_TRANSITIONS,
)
from .destinations import (
    DestinationInfo,
    DestinationTable,
    DestInput,
    DestKey,
    DestState,
)
from .discovery import (
    ConnectionPoint,
    DiscoveryCounters,
    DiscoveryReceived,
    ModemDiscovery,
    PeerOffered,
    RouterDiscovery,
)
from .errors import (
    AlreadyExistsError,
    DestinationExistsError,
    DlepError,
    InvalidArgumentError,
    NotFoundError,
    PeerError,
    PreconditionError,
    ProtocolViolation,
    SessionArgumentError,
    SessionClosedError,
    SessionError,
    TransactionInProgressError,
    UnknownDestinationError,
    WrongRoleError,
)
from .events import (
    DestinationAnnounceRequested,
    DestinationDown,
    DestinationLimitReached,
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
from .plugins import Extension, ExtensionViolation, Placement
from .session import TRANSITIONS, Role, Session, State
from .session_config import SessionConfig, WireTranslation

__all__ = [
    "DESTINATION_TRANSITIONS",
    "METRIC_FIELDS",
    "TRANSITIONS",
    "AddressIndex",
    "AddressSet",
    "AlreadyExistsError",
    "ConnectionPoint",
    "DestInput",
    "DestKey",
    "DestState",
    "DestinationAnnounceRequested",
    "DestinationDown",
    "DestinationExistsError",
    "DestinationInfo",
    "DestinationLimitReached",
    "DestinationRefused",
    "DestinationTable",
    "DestinationUp",
    "DestinationUpRequested",
    "DestinationUpdate",
    "DiscoveryCounters",
    "DiscoveryReceived",
    "DlepError",
    "Event",
    "Extension",
    "ExtensionViolation",
    "Inconsistency",
    "InvalidArgumentError",
    "LinkCharacteristicsRequested",
    "LinkCharacteristicsResponse",
    "LinkCharacteristicsTimeout",
    "Metrics",
    "ModemDiscovery",
    "NotFoundError",
    "PeerError",
    "PeerOffered",
    "Placement",
    "PreconditionError",
    "ProtocolViolation",
    "ResponseStatus",
    "Role",
    "RouterDiscovery",
    "Session",
    "SessionArgumentError",
    "SessionClosedError",
    "SessionConfig",
    "SessionError",
    "SessionTerminated",
    "SessionUp",
    "SessionUpdated",
    "State",
    "TransactionInProgressError",
    "UnknownDestinationError",
    "WireTranslation",
    "WrongRoleError",
    "mac_bytes",
]
