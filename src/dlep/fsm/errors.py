"""The errors of the session engine, in two families.

:class:`PeerError` is *the peer's* fault: a core handler or an extension hook
raises it on receipt, and the engine catches it in one place
(``Session._receive_message``), counts it and ends the session with the
RFC 8175 status it carries (§12.2).

:class:`DlepError` and its subclasses are *the caller's* fault: an API call
the engine (or a daemon) refuses. Each concrete error also derives from one
category — :class:`NotFoundError`, :class:`AlreadyExistsError`,
:class:`InvalidArgumentError` or :class:`PreconditionError` (the default for
a plain :class:`DlepError`) — so a management API maps it to a status code
by type, never by message text.
"""

from __future__ import annotations

from ..wire import StatusCode

__all__ = [
    "AlreadyExistsError",
    "DestinationExistsError",
    "DlepError",
    "InvalidArgumentError",
    "NotFoundError",
    "PeerError",
    "PreconditionError",
    "ProtocolViolation",
    "SessionArgumentError",
    "SessionClosedError",
    "SessionError",
    "TransactionInProgressError",
    "UnknownDestinationError",
    "WrongRoleError",
]


class PeerError(Exception):
    """The peer broke a rule of RFC 8175 or of a negotiated extension.

    Raised by core handlers and extension hooks alike; the engine ends the
    session with ``status`` (default 130 Invalid Data) and ``reason``. With
    ``respond`` and a request that has a response (e.g. Destination Up), the
    response carrying that status goes out first (RFC 8703 §2).
    """

    def __init__(
        self, reason: str, status: int = StatusCode.INVALID_DATA, *, respond: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = int(status)
        self.reason = reason
        self.respond = respond


#: The name extension hooks have used since the plug-in interface appeared.
ProtocolViolation = PeerError


# -- categories of refused calls ------------------------------------------------


class DlepError(Exception):
    """A library call was refused; the message says why."""


class NotFoundError(DlepError, LookupError):
    """The call names something that does not exist (a destination, a session)."""

    def __str__(self) -> str:
        # KeyError-style classes would quote the message; never do that.
        return str(self.args[0]) if self.args else "not found"


class AlreadyExistsError(DlepError):
    """The call would create something that already exists."""


class InvalidArgumentError(DlepError, ValueError):
    """An argument is malformed or out of range.

    ``field`` names the argument (``"metrics.cdrr"``, ``"addresses"``, ...)
    when the caller can point at one; the message starts with it.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class PreconditionError(DlepError):
    """The call is well-formed but not possible in the present state."""


# -- the session engine's refusals ------------------------------------------------


class SessionError(DlepError):
    """An engine API call the session refused.

    Plain ``SessionError`` means "not possible in the present state"; the
    more specific subclasses below also derive from their category
    (:class:`NotFoundError`, :class:`InvalidArgumentError`, ...).
    """


class SessionClosedError(SessionError, PreconditionError):
    """The session has terminated; nothing more can be sent."""


class WrongRoleError(SessionError, PreconditionError):
    """A router operation was called on a modem session, or the reverse."""


class TransactionInProgressError(SessionError, PreconditionError):
    """RFC 8175 §8: one request per destination at a time."""


class UnknownDestinationError(SessionError, NotFoundError, KeyError):
    """No destination with that key in this session."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown destination"


class DestinationExistsError(SessionError, AlreadyExistsError):
    """A destination with that key already exists in this session."""


class SessionArgumentError(SessionError, InvalidArgumentError):
    """An argument of an engine call is malformed or breaks an RFC rule."""
