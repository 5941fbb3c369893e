"""Heartbeats and peer silence of one session (RFC 8175 §7.3.1).

:class:`Liveness` is the one owner of "when did we last hear the peer, when
did we last send": the session tells it what happened, at what time, and
asks it when the next heartbeat is due and when the peer has been silent
too long. It never reads a clock.
"""

from __future__ import annotations

__all__ = ["Liveness"]


class Liveness:
    """Our heartbeat and the peer's, in seconds.

    Args:
        ours: our Heartbeat Interval.
        missed: peer heartbeat intervals of silence that end the session
            (at least 2, §7.3.1).
    """

    __slots__ = ("last_rx", "last_tx", "missed", "ours", "peer")

    def __init__(self, ours: float, missed: int) -> None:
        self.ours = ours
        self.missed = missed
        #: The peer's Heartbeat Interval, once its initialisation arrived.
        self.peer: float | None = None
        self.last_rx = 0.0
        self.last_tx = 0.0

    def heard(self, now: float) -> None:
        """A valid message arrived (any message resets the silence timer)."""
        self.last_rx = now

    def sent(self, now: float) -> None:
        """We sent a message (any message counts as a heartbeat)."""
        self.last_tx = now

    @property
    def heartbeat_due(self) -> float:
        """When our next Heartbeat must go out if nothing else does."""
        return self.last_tx + self.ours

    @property
    def silence_deadline(self) -> float:
        """When the peer will have been silent too long."""
        assert self.peer is not None, "peer heartbeat not known before initialisation"
        return self.last_rx + self.missed * self.peer

    def next_deadline(self) -> float:
        """The earlier of the two."""
        return min(self.heartbeat_due, self.silence_deadline)

    def silent(self, now: float) -> bool:
        """True once the peer has been silent for ``missed`` of its intervals.

        Compared with the same sum :attr:`silence_deadline` returns, so a
        timer set to it finds the peer silent (``now - last >= interval``
        can be False at exactly that time, by float rounding).
        """
        return now >= self.silence_deadline

    def describe_silence(self, now: float) -> str:
        """For the termination's reason."""
        return (
            f"no message from peer for {now - self.last_rx:.3f} s "
            f"({self.missed} heartbeat intervals)"
        )
