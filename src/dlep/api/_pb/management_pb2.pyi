from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_ROUTER: _ClassVar[Role]
    ROLE_MODEM: _ClassVar[Role]

class Health(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_UNSPECIFIED: _ClassVar[Health]
    HEALTH_OK: _ClassVar[Health]
    HEALTH_IDLE: _ClassVar[Health]
    HEALTH_DEGRADED: _ClassVar[Health]
    HEALTH_STOPPING: _ClassVar[Health]
ROLE_UNSPECIFIED: Role
ROLE_ROUTER: Role
ROLE_MODEM: Role
HEALTH_UNSPECIFIED: Health
HEALTH_OK: Health
HEALTH_IDLE: Health
HEALTH_DEGRADED: Health
HEALTH_STOPPING: Health

class Metrics(_message.Message):
    __slots__ = ("mdrr", "mdrt", "cdrr", "cdrt", "latency", "resources", "rlqr", "rlqt", "mtu")
    MDRR_FIELD_NUMBER: _ClassVar[int]
    MDRT_FIELD_NUMBER: _ClassVar[int]
    CDRR_FIELD_NUMBER: _ClassVar[int]
    CDRT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RLQR_FIELD_NUMBER: _ClassVar[int]
    RLQT_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    mdrr: int
    mdrt: int
    cdrr: int
    cdrt: int
    latency: int
    resources: int
    rlqr: int
    rlqt: int
    mtu: int
    def __init__(self, mdrr: _Optional[int] = ..., mdrt: _Optional[int] = ..., cdrr: _Optional[int] = ..., cdrt: _Optional[int] = ..., latency: _Optional[int] = ..., resources: _Optional[int] = ..., rlqr: _Optional[int] = ..., rlqt: _Optional[int] = ..., mtu: _Optional[int] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DaemonInfo(_message.Message):
    __slots__ = ("role", "version", "pid", "started_at", "uptime", "health", "health_detail", "sessions", "sessions_up", "destinations", "tls", "peer_type", "listening", "watch_streams")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_DETAIL_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_UP_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
    LISTENING_FIELD_NUMBER: _ClassVar[int]
    WATCH_STREAMS_FIELD_NUMBER: _ClassVar[int]
    role: Role
    version: str
    pid: int
    started_at: float
    uptime: float
    health: Health
    health_detail: str
    sessions: int
    sessions_up: int
    destinations: int
    tls: bool
    peer_type: str
    listening: _containers.RepeatedScalarFieldContainer[str]
    watch_streams: int
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., version: _Optional[str] = ..., pid: _Optional[int] = ..., started_at: _Optional[float] = ..., uptime: _Optional[float] = ..., health: _Optional[_Union[Health, str]] = ..., health_detail: _Optional[str] = ..., sessions: _Optional[int] = ..., sessions_up: _Optional[int] = ..., destinations: _Optional[int] = ..., tls: _Optional[bool] = ..., peer_type: _Optional[str] = ..., listening: _Optional[_Iterable[str]] = ..., watch_streams: _Optional[int] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Session(_message.Message):
    __slots__ = ("id", "peer", "role", "state", "tls", "peer_type", "secured_medium", "extensions", "extension_names", "heartbeat_ms", "peer_heartbeat_ms", "started_at", "up_since", "uptime", "destinations", "session_metrics", "tx_messages", "rx_messages", "errors", "last_heard", "flaps")
    class TxMessagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RxMessagesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURED_MEDIUM_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    EXTENSION_NAMES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    PEER_HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UP_SINCE_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    SESSION_METRICS_FIELD_NUMBER: _ClassVar[int]
    TX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_FIELD_NUMBER: _ClassVar[int]
    FLAPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    peer: str
    role: Role
    state: str
    tls: bool
    peer_type: str
    secured_medium: bool
    extensions: _containers.RepeatedScalarFieldContainer[int]
    extension_names: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_ms: int
    peer_heartbeat_ms: int
    started_at: float
    up_since: float
    uptime: float
    destinations: int
    session_metrics: Metrics
    tx_messages: _containers.ScalarMap[str, int]
    rx_messages: _containers.ScalarMap[str, int]
    errors: _containers.ScalarMap[str, int]
    last_heard: float
    flaps: int
    def __init__(self, id: _Optional[str] = ..., peer: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., state: _Optional[str] = ..., tls: _Optional[bool] = ..., peer_type: _Optional[str] = ..., secured_medium: _Optional[bool] = ..., extensions: _Optional[_Iterable[int]] = ..., extension_names: _Optional[_Iterable[str]] = ..., heartbeat_ms: _Optional[int] = ..., peer_heartbeat_ms: _Optional[int] = ..., started_at: _Optional[float] = ..., up_since: _Optional[float] = ..., uptime: _Optional[float] = ..., destinations: _Optional[int] = ..., session_metrics: _Optional[_Union[Metrics, _Mapping]] = ..., tx_messages: _Optional[_Mapping[str, int]] = ..., rx_messages: _Optional[_Mapping[str, int]] = ..., errors: _Optional[_Mapping[str, int]] = ..., last_heard: _Optional[float] = ..., flaps: _Optional[int] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ...) -> None: ...

class ListDestinationsRequest(_message.Message):
    __slots__ = ("session_id", "page_size", "page_token", "mac")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    page_size: int
    page_token: str
    mac: str
    def __init__(self, session_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., mac: _Optional[str] = ...) -> None: ...

class Destination(_message.Message):
    __slots__ = ("session_id", "mac", "metrics", "ipv4", "ipv6", "ipv4_subnets", "ipv6_subnets", "extensions", "key", "up_since", "last_update", "flaps", "updates")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    IPV4_FIELD_NUMBER: _ClassVar[int]
    IPV6_FIELD_NUMBER: _ClassVar[int]
    IPV4_SUBNETS_FIELD_NUMBER: _ClassVar[int]
    IPV6_SUBNETS_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UP_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_FIELD_NUMBER: _ClassVar[int]
    FLAPS_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    mac: str
    metrics: Metrics
    ipv4: _containers.RepeatedScalarFieldContainer[str]
    ipv6: _containers.RepeatedScalarFieldContainer[str]
    ipv4_subnets: _containers.RepeatedScalarFieldContainer[str]
    ipv6_subnets: _containers.RepeatedScalarFieldContainer[str]
    extensions: _containers.RepeatedCompositeFieldContainer[ExtensionValue]
    key: str
    up_since: float
    last_update: float
    flaps: int
    updates: int
    def __init__(self, session_id: _Optional[str] = ..., mac: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., ipv4: _Optional[_Iterable[str]] = ..., ipv6: _Optional[_Iterable[str]] = ..., ipv4_subnets: _Optional[_Iterable[str]] = ..., ipv6_subnets: _Optional[_Iterable[str]] = ..., extensions: _Optional[_Iterable[_Union[ExtensionValue, _Mapping]]] = ..., key: _Optional[str] = ..., up_since: _Optional[float] = ..., last_update: _Optional[float] = ..., flaps: _Optional[int] = ..., updates: _Optional[int] = ...) -> None: ...

class ExtensionValue(_message.Message):
    __slots__ = ("name", "text", "value", "item_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ITEM_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    value: float
    item_type: int
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ..., value: _Optional[float] = ..., item_type: _Optional[int] = ...) -> None: ...

class ListDestinationsResponse(_message.Message):
    __slots__ = ("destinations", "next_page_token", "total")
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    destinations: _containers.RepeatedCompositeFieldContainer[Destination]
    next_page_token: str
    total: int
    def __init__(self, destinations: _Optional[_Iterable[_Union[Destination, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class GetSessionMetricsRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class SessionMetrics(_message.Message):
    __slots__ = ("session_id", "peer", "metrics")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    peer: str
    metrics: Metrics
    def __init__(self, session_id: _Optional[str] = ..., peer: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class GetSessionMetricsResponse(_message.Message):
    __slots__ = ("sessions", "defaults")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionMetrics]
    defaults: Metrics
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionMetrics, _Mapping]]] = ..., defaults: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class AddDestinationRequest(_message.Message):
    __slots__ = ("mac", "metrics", "addresses", "ext")
    MAC_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    EXT_FIELD_NUMBER: _ClassVar[int]
    mac: str
    metrics: Metrics
    addresses: _containers.RepeatedScalarFieldContainer[str]
    ext: ExtensionValues
    def __init__(self, mac: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., addresses: _Optional[_Iterable[str]] = ..., ext: _Optional[_Union[ExtensionValues, _Mapping]] = ...) -> None: ...

class AddDestinationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateDestinationRequest(_message.Message):
    __slots__ = ("mac", "metrics", "add_addresses", "drop_addresses", "ext")
    MAC_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ADD_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    DROP_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    EXT_FIELD_NUMBER: _ClassVar[int]
    mac: str
    metrics: Metrics
    add_addresses: _containers.RepeatedScalarFieldContainer[str]
    drop_addresses: _containers.RepeatedScalarFieldContainer[str]
    ext: ExtensionValues
    def __init__(self, mac: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., add_addresses: _Optional[_Iterable[str]] = ..., drop_addresses: _Optional[_Iterable[str]] = ..., ext: _Optional[_Union[ExtensionValues, _Mapping]] = ...) -> None: ...

class UpdateDestinationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DropDestinationRequest(_message.Message):
    __slots__ = ("mac", "session_id", "link_id")
    MAC_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    mac: str
    session_id: str
    link_id: str
    def __init__(self, mac: _Optional[str] = ..., session_id: _Optional[str] = ..., link_id: _Optional[str] = ...) -> None: ...

class DropDestinationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RespondDestinationUpRequest(_message.Message):
    __slots__ = ("mac", "accept", "session_id")
    MAC_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    mac: str
    accept: bool
    session_id: str
    def __init__(self, mac: _Optional[str] = ..., accept: _Optional[bool] = ..., session_id: _Optional[str] = ...) -> None: ...

class RespondDestinationUpResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReleaseDestinationRequest(_message.Message):
    __slots__ = ("mac",)
    MAC_FIELD_NUMBER: _ClassVar[int]
    mac: str
    def __init__(self, mac: _Optional[str] = ...) -> None: ...

class ReleaseDestinationResponse(_message.Message):
    __slots__ = ("simulated",)
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    simulated: bool
    def __init__(self, simulated: _Optional[bool] = ...) -> None: ...

class UpdateSessionMetricsRequest(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: Metrics
    def __init__(self, metrics: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class UpdateSessionMetricsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RequestLinkCharacteristicsRequest(_message.Message):
    __slots__ = ("mac", "cdrr", "cdrt", "latency", "session_id", "wait_ms")
    MAC_FIELD_NUMBER: _ClassVar[int]
    CDRR_FIELD_NUMBER: _ClassVar[int]
    CDRT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    mac: str
    cdrr: int
    cdrt: int
    latency: int
    session_id: str
    wait_ms: int
    def __init__(self, mac: _Optional[str] = ..., cdrr: _Optional[int] = ..., cdrt: _Optional[int] = ..., latency: _Optional[int] = ..., session_id: _Optional[str] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class RequestLinkCharacteristicsResponse(_message.Message):
    __slots__ = ("session_id", "answered", "status", "status_name", "metrics", "text")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_NAME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    answered: bool
    status: int
    status_name: str
    metrics: Metrics
    text: str
    def __init__(self, session_id: _Optional[str] = ..., answered: _Optional[bool] = ..., status: _Optional[int] = ..., status_name: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class AnnounceDestinationRequest(_message.Message):
    __slots__ = ("mac", "addresses", "session_id", "wait_ms")
    MAC_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    mac: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    session_id: str
    wait_ms: int
    def __init__(self, mac: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ..., session_id: _Optional[str] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class AnnounceDestinationResponse(_message.Message):
    __slots__ = ("session_id", "answered", "status", "status_name", "text")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    answered: bool
    status: int
    status_name: str
    text: str
    def __init__(self, session_id: _Optional[str] = ..., answered: _Optional[bool] = ..., status: _Optional[int] = ..., status_name: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ConnectStaticRequest(_message.Message):
    __slots__ = ("host", "port", "tls", "gtsm_enforce")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    GTSM_ENFORCE_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    tls: bool
    gtsm_enforce: bool
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ..., tls: _Optional[bool] = ..., gtsm_enforce: _Optional[bool] = ...) -> None: ...

class ConnectStaticResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPeersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Peer(_message.Message):
    __slots__ = ("peer", "address", "port", "origin", "tls", "state", "failure", "last_error", "failures", "next_retry", "session_id", "since", "gtsm_enforce")
    PEER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_RETRY_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    GTSM_ENFORCE_FIELD_NUMBER: _ClassVar[int]
    peer: str
    address: str
    port: int
    origin: str
    tls: bool
    state: str
    failure: str
    last_error: str
    failures: int
    next_retry: float
    session_id: str
    since: float
    gtsm_enforce: bool
    def __init__(self, peer: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., origin: _Optional[str] = ..., tls: _Optional[bool] = ..., state: _Optional[str] = ..., failure: _Optional[str] = ..., last_error: _Optional[str] = ..., failures: _Optional[int] = ..., next_retry: _Optional[float] = ..., session_id: _Optional[str] = ..., since: _Optional[float] = ..., gtsm_enforce: _Optional[bool] = ...) -> None: ...

class ListPeersResponse(_message.Message):
    __slots__ = ("peers",)
    PEERS_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedCompositeFieldContainer[Peer]
    def __init__(self, peers: _Optional[_Iterable[_Union[Peer, _Mapping]]] = ...) -> None: ...

class DisconnectPeerRequest(_message.Message):
    __slots__ = ("host", "port")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ...) -> None: ...

class DisconnectPeerResponse(_message.Message):
    __slots__ = ("peer",)
    PEER_FIELD_NUMBER: _ClassVar[int]
    peer: Peer
    def __init__(self, peer: _Optional[_Union[Peer, _Mapping]] = ...) -> None: ...

class TerminateSessionRequest(_message.Message):
    __slots__ = ("session_id", "status", "text")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    status: int
    text: str
    def __init__(self, session_id: _Optional[str] = ..., status: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class TerminateSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("time", "session_id", "peer", "text", "session_connected", "session_up", "session_down", "session_update", "destination_up", "destination_update", "destination_down", "destination_refused", "destination_up_requested", "destination_announce_requested", "link_request", "link_response", "link_timeout", "peer_discovered", "error", "lagged", "other")
    TIME_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SESSION_CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SESSION_UP_FIELD_NUMBER: _ClassVar[int]
    SESSION_DOWN_FIELD_NUMBER: _ClassVar[int]
    SESSION_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_UP_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_UPDATE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_DOWN_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_REFUSED_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_UP_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ANNOUNCE_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    LINK_REQUEST_FIELD_NUMBER: _ClassVar[int]
    LINK_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    LINK_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PEER_DISCOVERED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAGGED_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    time: float
    session_id: str
    peer: str
    text: str
    session_connected: SessionConnected
    session_up: SessionUp
    session_down: SessionDown
    session_update: SessionUpdate
    destination_up: DestinationUp
    destination_update: DestinationUpdate
    destination_down: DestinationDown
    destination_refused: DestinationRefused
    destination_up_requested: DestinationUpRequested
    destination_announce_requested: DestinationAnnounceRequested
    link_request: LinkCharacteristicsRequested
    link_response: LinkCharacteristicsResponse
    link_timeout: LinkCharacteristicsTimeout
    peer_discovered: PeerDiscovered
    error: Error
    lagged: Lagged
    other: Other
    def __init__(self, time: _Optional[float] = ..., session_id: _Optional[str] = ..., peer: _Optional[str] = ..., text: _Optional[str] = ..., session_connected: _Optional[_Union[SessionConnected, _Mapping]] = ..., session_up: _Optional[_Union[SessionUp, _Mapping]] = ..., session_down: _Optional[_Union[SessionDown, _Mapping]] = ..., session_update: _Optional[_Union[SessionUpdate, _Mapping]] = ..., destination_up: _Optional[_Union[DestinationUp, _Mapping]] = ..., destination_update: _Optional[_Union[DestinationUpdate, _Mapping]] = ..., destination_down: _Optional[_Union[DestinationDown, _Mapping]] = ..., destination_refused: _Optional[_Union[DestinationRefused, _Mapping]] = ..., destination_up_requested: _Optional[_Union[DestinationUpRequested, _Mapping]] = ..., destination_announce_requested: _Optional[_Union[DestinationAnnounceRequested, _Mapping]] = ..., link_request: _Optional[_Union[LinkCharacteristicsRequested, _Mapping]] = ..., link_response: _Optional[_Union[LinkCharacteristicsResponse, _Mapping]] = ..., link_timeout: _Optional[_Union[LinkCharacteristicsTimeout, _Mapping]] = ..., peer_discovered: _Optional[_Union[PeerDiscovered, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., lagged: _Optional[_Union[Lagged, _Mapping]] = ..., other: _Optional[_Union[Other, _Mapping]] = ...) -> None: ...

class SessionConnected(_message.Message):
    __slots__ = ("tls",)
    TLS_FIELD_NUMBER: _ClassVar[int]
    tls: bool
    def __init__(self, tls: _Optional[bool] = ...) -> None: ...

class SessionUp(_message.Message):
    __slots__ = ("peer_type", "secured_medium", "extensions", "heartbeat_ms", "peer_heartbeat_ms", "session_metrics")
    PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SECURED_MEDIUM_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    PEER_HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    SESSION_METRICS_FIELD_NUMBER: _ClassVar[int]
    peer_type: str
    secured_medium: bool
    extensions: _containers.RepeatedScalarFieldContainer[int]
    heartbeat_ms: int
    peer_heartbeat_ms: int
    session_metrics: Metrics
    def __init__(self, peer_type: _Optional[str] = ..., secured_medium: _Optional[bool] = ..., extensions: _Optional[_Iterable[int]] = ..., heartbeat_ms: _Optional[int] = ..., peer_heartbeat_ms: _Optional[int] = ..., session_metrics: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class SessionDown(_message.Message):
    __slots__ = ("status", "status_name", "reason", "by_peer", "destinations")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BY_PEER_FIELD_NUMBER: _ClassVar[int]
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    status: int
    status_name: str
    reason: str
    by_peer: bool
    destinations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, status: _Optional[int] = ..., status_name: _Optional[str] = ..., reason: _Optional[str] = ..., by_peer: _Optional[bool] = ..., destinations: _Optional[_Iterable[str]] = ...) -> None: ...

class SessionUpdate(_message.Message):
    __slots__ = ("changed", "session_metrics")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    SESSION_METRICS_FIELD_NUMBER: _ClassVar[int]
    changed: Metrics
    session_metrics: Metrics
    def __init__(self, changed: _Optional[_Union[Metrics, _Mapping]] = ..., session_metrics: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class DestinationUp(_message.Message):
    __slots__ = ("destination", "announced")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    announced: bool
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ..., announced: _Optional[bool] = ...) -> None: ...

class DestinationUpdate(_message.Message):
    __slots__ = ("destination", "changed")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    changed: Metrics
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ..., changed: _Optional[_Union[Metrics, _Mapping]] = ...) -> None: ...

class DestinationDown(_message.Message):
    __slots__ = ("mac", "by_peer")
    MAC_FIELD_NUMBER: _ClassVar[int]
    BY_PEER_FIELD_NUMBER: _ClassVar[int]
    mac: str
    by_peer: bool
    def __init__(self, mac: _Optional[str] = ..., by_peer: _Optional[bool] = ...) -> None: ...

class DestinationRefused(_message.Message):
    __slots__ = ("mac", "status", "status_name", "text")
    MAC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    mac: str
    status: int
    status_name: str
    text: str
    def __init__(self, mac: _Optional[str] = ..., status: _Optional[int] = ..., status_name: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class DestinationUpRequested(_message.Message):
    __slots__ = ("destination",)
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    destination: Destination
    def __init__(self, destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class DestinationAnnounceRequested(_message.Message):
    __slots__ = ("mac", "addresses")
    MAC_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    mac: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, mac: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class LinkCharacteristicsRequested(_message.Message):
    __slots__ = ("mac", "cdrr", "cdrt", "latency")
    MAC_FIELD_NUMBER: _ClassVar[int]
    CDRR_FIELD_NUMBER: _ClassVar[int]
    CDRT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    mac: str
    cdrr: int
    cdrt: int
    latency: int
    def __init__(self, mac: _Optional[str] = ..., cdrr: _Optional[int] = ..., cdrt: _Optional[int] = ..., latency: _Optional[int] = ...) -> None: ...

class LinkCharacteristicsResponse(_message.Message):
    __slots__ = ("mac", "status", "status_name", "metrics", "text")
    MAC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_NAME_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    mac: str
    status: int
    status_name: str
    metrics: Metrics
    text: str
    def __init__(self, mac: _Optional[str] = ..., status: _Optional[int] = ..., status_name: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., text: _Optional[str] = ...) -> None: ...

class LinkCharacteristicsTimeout(_message.Message):
    __slots__ = ("mac",)
    MAC_FIELD_NUMBER: _ClassVar[int]
    mac: str
    def __init__(self, mac: _Optional[str] = ...) -> None: ...

class PeerDiscovered(_message.Message):
    __slots__ = ("address", "peer_type", "connection_points")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_POINTS_FIELD_NUMBER: _ClassVar[int]
    address: str
    peer_type: str
    connection_points: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, address: _Optional[str] = ..., peer_type: _Optional[str] = ..., connection_points: _Optional[_Iterable[str]] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "message", "status", "status_name", "message_type", "mac", "key")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    status: int
    status_name: str
    message_type: str
    mac: str
    key: str
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., status: _Optional[int] = ..., status_name: _Optional[str] = ..., message_type: _Optional[str] = ..., mac: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class Lagged(_message.Message):
    __slots__ = ("dropped", "coalesced")
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    COALESCED_FIELD_NUMBER: _ClassVar[int]
    dropped: int
    coalesced: int
    def __init__(self, dropped: _Optional[int] = ..., coalesced: _Optional[int] = ...) -> None: ...

class Other(_message.Message):
    __slots__ = ("type", "text")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    type: str
    text: str
    def __init__(self, type: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ExtensionValues(_message.Message):
    __slots__ = ("hop_count", "potentially_direct", "latency_min", "latency_max", "link_id", "pause", "restart")
    HOP_COUNT_FIELD_NUMBER: _ClassVar[int]
    POTENTIALLY_DIRECT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MIN_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MAX_FIELD_NUMBER: _ClassVar[int]
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    hop_count: int
    potentially_direct: bool
    latency_min: int
    latency_max: int
    link_id: str
    pause: _containers.RepeatedScalarFieldContainer[int]
    restart: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hop_count: _Optional[int] = ..., potentially_direct: _Optional[bool] = ..., latency_min: _Optional[int] = ..., latency_max: _Optional[int] = ..., link_id: _Optional[str] = ..., pause: _Optional[_Iterable[int]] = ..., restart: _Optional[_Iterable[int]] = ...) -> None: ...

class FeedRecord(_message.Message):
    __slots__ = ("op", "mac", "metrics", "addresses", "add_addresses", "drop_addresses", "ext", "id")
    OP_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    ADD_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    DROP_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    EXT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    op: str
    mac: str
    metrics: Metrics
    addresses: _containers.RepeatedScalarFieldContainer[str]
    add_addresses: _containers.RepeatedScalarFieldContainer[str]
    drop_addresses: _containers.RepeatedScalarFieldContainer[str]
    ext: ExtensionValues
    id: str
    def __init__(self, op: _Optional[str] = ..., mac: _Optional[str] = ..., metrics: _Optional[_Union[Metrics, _Mapping]] = ..., addresses: _Optional[_Iterable[str]] = ..., add_addresses: _Optional[_Iterable[str]] = ..., drop_addresses: _Optional[_Iterable[str]] = ..., ext: _Optional[_Union[ExtensionValues, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class FeedBatch(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[FeedRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[FeedRecord, _Mapping]]] = ...) -> None: ...

class FeedRecordResult(_message.Message):
    __slots__ = ("index", "id", "ok", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    id: str
    ok: bool
    error: str
    def __init__(self, index: _Optional[int] = ..., id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class FeedBatchResult(_message.Message):
    __slots__ = ("batch", "ok", "results")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    batch: int
    ok: bool
    results: _containers.RepeatedCompositeFieldContainer[FeedRecordResult]
    def __init__(self, batch: _Optional[int] = ..., ok: _Optional[bool] = ..., results: _Optional[_Iterable[_Union[FeedRecordResult, _Mapping]]] = ...) -> None: ...
