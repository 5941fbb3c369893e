"""Frame, octet and drop counters of one node (owned by its :class:`~dlep.emu.node.EmuNode`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .channel import DropReason

__all__ = ["DropCounts", "LinkCounters"]


@dataclass(slots=True)
class DropCounts:
    """Drops by reason."""

    by_reason: dict[DropReason, int] = field(default_factory=dict)

    def add(self, reason: DropReason, n: int = 1) -> None:
        """Count ``n`` drops for ``reason``."""
        self.by_reason[reason] = self.by_reason.get(reason, 0) + n

    def total(self) -> int:
        """All drops."""
        return sum(self.by_reason.values())

    def as_dict(self) -> dict[str, int]:
        """Reason name -> count (only reasons that happened)."""
        return {str(r): n for r, n in sorted(self.by_reason.items())}


@dataclass(slots=True)
class LinkCounters:
    """One neighbour's link as seen from this node.

    ``*_out``: our frames to it that left the channel (sent over UDP);
    ``*_in``: its frames that reached us; ``control_*``: probes;
    ``drops``: our frames to it that were dropped, by reason.
    """

    frames_out: int = 0
    octets_out: int = 0
    frames_in: int = 0
    octets_in: int = 0
    control_out: int = 0
    control_in: int = 0
    drops: DropCounts = field(default_factory=DropCounts)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {
            "frames_out": self.frames_out,
            "octets_out": self.octets_out,
            "frames_in": self.frames_in,
            "octets_in": self.octets_in,
            "control_out": self.control_out,
            "control_in": self.control_in,
            "drops": self.drops.as_dict(),
        }
