"""Code points of RFC 8175 (signals, messages, data items, status codes)."""

from __future__ import annotations

import enum
from typing import Final

#: IANA port for DLEP over UDP (discovery) and TCP (sessions), RFC 8175 §15.14.
DLEP_PORT: Final = 854
#: IPv4 link-local multicast group for discovery, RFC 8175 §15.15.
DISCOVERY_GROUP_V4: Final = "224.0.0.117"
#: IPv6 link-local multicast group for discovery, RFC 8175 §15.16.
DISCOVERY_GROUP_V6: Final = "ff02::1:7"
#: The four octets every signal starts with, RFC 8175 §11.1.
SIGNAL_PREFIX: Final = b"DLEP"

#: Private-use ranges (RFC 8175 §15); extensions in these ranges are "experiments".
PRIVATE_SIGNAL_TYPES: Final = range(65520, 65535)
PRIVATE_MESSAGE_TYPES: Final = range(65520, 65535)
PRIVATE_ITEM_TYPES: Final = range(65408, 65535)
PRIVATE_EXTENSION_TYPES: Final = range(65520, 65535)


class SignalType(enum.IntEnum):
    """Signal type codes (UDP, discovery), RFC 8175 §15.2."""

    PEER_DISCOVERY = 1
    PEER_OFFER = 2


class MessageType(enum.IntEnum):
    """Message type codes (TCP session), RFC 8175 §15.3 and RFC 9893."""

    SESSION_INITIALIZATION = 1
    SESSION_INITIALIZATION_RESPONSE = 2
    SESSION_UPDATE = 3
    SESSION_UPDATE_RESPONSE = 4
    SESSION_TERMINATION = 5
    SESSION_TERMINATION_RESPONSE = 6
    DESTINATION_UP = 7
    DESTINATION_UP_RESPONSE = 8
    DESTINATION_ANNOUNCE = 9
    DESTINATION_ANNOUNCE_RESPONSE = 10
    DESTINATION_DOWN = 11
    DESTINATION_DOWN_RESPONSE = 12
    DESTINATION_UPDATE = 13
    LINK_CHARACTERISTICS_REQUEST = 14
    LINK_CHARACTERISTICS_RESPONSE = 15
    HEARTBEAT = 16


class ItemType(enum.IntEnum):
    """Data item type codes of RFC 8175 §15.4."""

    STATUS = 1
    IPV4_CONNECTION_POINT = 2
    IPV6_CONNECTION_POINT = 3
    PEER_TYPE = 4
    HEARTBEAT_INTERVAL = 5
    EXTENSIONS_SUPPORTED = 6
    MAC_ADDRESS = 7
    IPV4_ADDRESS = 8
    IPV6_ADDRESS = 9
    IPV4_ATTACHED_SUBNET = 10
    IPV6_ATTACHED_SUBNET = 11
    MDRR = 12
    MDRT = 13
    CDRR = 14
    CDRT = 15
    LATENCY = 16
    RESOURCES = 17
    RLQR = 18
    RLQT = 19
    MTU = 20


class StatusCode(enum.IntEnum):
    """Status codes of RFC 8175 §13.1 Table 2.

    Failure modes follow the registry (Table 2 and §15.5): 0-127
    *Continue*, 128-255 *Terminate*; see :func:`is_terminate`.
    """

    SUCCESS = 0
    NOT_INTERESTED = 1
    REQUEST_DENIED = 2
    INCONSISTENT_DATA = 3
    UNKNOWN_MESSAGE = 128
    UNEXPECTED_MESSAGE = 129
    INVALID_DATA = 130
    INVALID_DESTINATION = 131
    TIMED_OUT = 132
    SHUTTING_DOWN = 255


def is_terminate(code: int) -> bool:
    """True if status ``code`` has failure mode 'Terminate'.

    RFC 8175 contradicts itself here: §12.2's prose puts the boundary at 100,
    while Table 2 and the IANA registry (§15.5) list 100-127 -- including
    the private-use range 112-127 -- as 'Continue'. We follow the registry,
    which assigns a failure mode to every code; see docs/conformance.md.
    """
    return code >= 128


def status_name(code: int) -> str:
    """A readable name for any status code, registered or not."""
    try:
        return StatusCode(code).name
    except ValueError:
        if 112 <= code <= 127 or 240 <= code <= 254:
            return f"PRIVATE_{code}"
        return f"UNASSIGNED_{code}"


def message_name(code: int) -> str:
    """A readable name for a message type code."""
    try:
        return MessageType(code).name
    except ValueError:
        return f"MESSAGE_{code}"


def signal_name(code: int) -> str:
    """A readable name for a signal type code."""
    try:
        return SignalType(code).name
    except ValueError:
        return f"SIGNAL_{code}"
