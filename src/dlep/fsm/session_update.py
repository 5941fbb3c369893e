"""Our Session Updates (RFC 8175 §12.7, §8): one outstanding at a time.

:class:`OwnUpdates` owns that transaction: while our Session Update awaits
its response, later changes are merged into one pending update (newest
metric values win; address changes by net effect), sent when the response
arrives.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..wire import DataItem
from .addresses import L3Item, coalesce
from .metrics import Metrics

__all__ = ["OwnUpdates", "UpdateParts"]

#: Metrics, address changes and extension items of one Session Update.
UpdateParts = tuple[Metrics, list[L3Item], list[DataItem]]


class OwnUpdates:
    """The Session Update transaction of our side."""

    __slots__ = ("outstanding", "pending")

    def __init__(self) -> None:
        #: Our Session Update awaits its response.
        self.outstanding = False
        #: What was asked for meanwhile, merged.
        self.pending: UpdateParts | None = None

    def offer(self, metrics: Metrics, l3: list[L3Item], extra: Sequence[DataItem]) -> bool:
        """A change to send: True if it may go now, else it was merged into
        the pending one."""
        if not self.outstanding:
            return True
        if self.pending is None:
            self.pending = (metrics, list(l3), list(extra))
        else:
            pm, pl, pe = self.pending
            self.pending = (pm.merged(metrics), coalesce(pl, l3), pe + list(extra))
        return False

    def answered(self) -> UpdateParts | None:
        """Our update was answered: what to send next, if anything (changes
        may have cancelled out)."""
        self.outstanding = False
        pending, self.pending = self.pending, None
        if pending is None:
            return None
        metrics, l3, extra = pending
        return pending if not metrics.is_empty() or l3 or extra else None

    def clear(self) -> None:
        """Session Reset."""
        self.outstanding = False
        self.pending = None
