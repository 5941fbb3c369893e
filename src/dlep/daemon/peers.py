"""The router's table of configured peers: the modems it should be in session
with (static peers, ``dlepctl connect`` targets, discovered modems), whether
or not a session exists, with their state, last error and next retry."""

from __future__ import annotations

import asyncio
import errno
import random
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ..transport import SessionProtocol

#: Where a peer came from.
ORIGINS: Final = ("static", "api", "discovered")

#: Why the last attempt failed (PeerInfo.failure); "" when it did not.
FAILURES: Final = (
    "refused",  # the peer answered with a TCP reset: nothing listens there
    "timeout",  # no answer at all
    "gtsm-dropped",  # the peer answers, but with a TTL < 255 our GTSM drops
    "unreachable",  # no route, host or network unreachable
    "tls-failed",  # TCP connected, the TLS handshake failed
    "closed",  # the connection or session ended (PeerInfo.last_error says how)
    "error",  # anything else
)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Snapshot of one configured peer (:meth:`RouterDaemon.peers`)."""

    #: ``"address:port"`` (``"[v6]:port"``), as sessions name their peer.
    peer: str
    address: str
    port: int
    #: ``static`` (configuration), ``api`` (ConnectStatic / ``dlepctl
    #: connect``) or ``discovered`` (a Peer Offer).
    origin: str
    tls: bool
    #: ``connecting`` (TCP or TLS under way); the session's state once
    #: connected (``initializing``, ``in-session``, ``terminating``);
    #: ``backing-off`` (waiting for ``next_retry``); ``failed`` (a
    #: discovered modem that failed: tried again on its next Peer Offer).
    state: str
    #: Why the last attempt or session failed (one of :data:`FAILURES`), or "".
    failure: str
    #: The last error, for people ("" if none).
    last_error: str
    #: Attempts that failed since the last session that came up.
    failures: int
    #: When the next attempt starts (Unix time), while backing off.
    next_retry: float | None
    #: The session with this peer, while connected.
    session_id: str | None
    #: When the peer entered its current state (Unix time).
    since: float
    #: Whether our GTSM check (minimum TTL 255) applies to this peer.
    gtsm_enforce: bool = True


def classify(exc: BaseException, *, tls_stage: bool = False) -> str:
    """The :data:`FAILURES` kind of a connection attempt's exception."""
    if tls_stage or isinstance(exc, ssl.SSLError):
        return "tls-failed"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.errno in (
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EADDRNOTAVAIL,
    ):
        return "unreachable"
    if isinstance(exc, ConnectionError):
        return "closed"
    return "error"


def describe(exc: BaseException) -> str:
    """An OS error in plain words: asyncio's "[Errno 111] Connect call failed
    ('10.0.0.2', 854)" becomes "connection refused"."""
    if isinstance(exc, OSError) and exc.strerror and not isinstance(exc, ssl.SSLError):
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused (nothing listens on that port)"
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


class Backoff:
    """Exponential back-off with jitter: ``base`` doubling per failure up to
    ``cap``, each delay scaled by a random factor in ``1 ± jitter`` so that
    routers restarted together do not retry in lock-step."""

    def __init__(self, base: float, cap: float, jitter: float, rng: random.Random) -> None:
        self.base = base
        self.cap = max(cap, base)
        self.jitter = jitter
        self._rng = rng

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row (0: the
        first retry after a session that was up)."""
        step = min(self.cap, self.base * 2.0 ** max(0, failures - 1))
        return step * self._rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)


class Peer:
    """Mutable record of one configured peer (owned by the router daemon)."""

    __slots__ = (
        "address",
        "failure",
        "failures",
        "gtsm_enforce",
        "gtsm_ttl_logged",
        "key",
        "last_error",
        "next_retry",
        "origin",
        "port",
        "proto",
        "since",
        "state",
        "task",
        "tls",
    )

    def __init__(
        self, address: str, port: int, origin: str, tls: bool, gtsm_enforce: bool, now: float
    ) -> None:
        self.key = (address, port)
        self.address = address
        self.port = port
        self.origin = origin
        self.tls = tls
        self.gtsm_enforce = gtsm_enforce
        self.state = "connecting"
        self.failure = ""
        self.last_error = ""
        self.failures = 0
        #: Event-loop time of the next attempt.
        self.next_retry: float | None = None
        #: Event-loop time of the last state change.
        self.since = now
        self.proto: SessionProtocol | None = None
        #: The TTL the GTSM diagnosis last logged for this peer (log once).
        self.gtsm_ttl_logged: int | None = None
        self.task: asyncio.Task[Any] | None = None

    def set_state(self, state: str, now: float) -> None:
        """Enter ``state`` (keeps ``since`` when it does not change)."""
        if state != self.state:
            self.state = state
            self.since = now

    def failed(self, failure: str, error: str, now: float) -> None:
        """Record a failed attempt."""
        self.failure = failure
        self.last_error = error
        self.failures += 1
        self.proto = None
        self.since = now


__all__ = ["FAILURES", "ORIGINS", "Backoff", "Peer", "PeerInfo", "classify", "describe"]
