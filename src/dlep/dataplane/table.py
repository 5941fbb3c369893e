"""What the router knows about each destination, rebuilt from daemon events.

:class:`DestinationTable` is the single owner of the data plane's view. It
consumes :class:`dlep.daemon.DaemonEvent` values (or a snapshot, after the
subscription lagged) and answers with :class:`Change` values that the kernel
applier and the hooks act on. It does no I/O, so every rule here is tested
without netlink.

Destinations are keyed by the engine's :class:`~dlep.fsm.DestKey`: the MAC
plus the identity items that name the destination together with it (RFC 8703
Link Identifier), so several Layer 3 destinations behind one gateway MAC stay
apart. Events and snapshots carry that key, so nothing is rebuilt here.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from ..daemon import DaemonEvent, Lagged, SessionEvent
from ..ext.multihop import HopCount
from ..ext.pause import ALL_QUEUES, QueueParametersChanged, QueuesPaused, QueuesRestarted
from ..ext.values import extension_values_from_items
from ..fsm import (
    DestinationDown,
    DestinationInfo,
    DestinationUp,
    DestinationUpdate,
    DestKey,
    Metrics,
    SessionTerminated,
)
from ..wire import DataItem, format_mac

__all__ = ["Change", "DestState", "DestinationTable"]

log = logging.getLogger("dlep.dataplane")

ChangeKind = Literal["up", "update", "down", "pause", "restart"]
#: RFC 8651 §3.1: a modem that declares no queues has one, index 0.
_DEFAULT_QUEUES: Final = frozenset({0})


@dataclass(frozen=True, slots=True)
class DestState:
    """One destination as the data plane sees it."""

    key: DestKey
    session_id: str
    metrics: Metrics = field(default_factory=Metrics)
    ipv4: frozenset[ipaddress.IPv4Address] = frozenset()
    ipv6: frozenset[ipaddress.IPv6Address] = frozenset()
    ipv4_subnets: frozenset[ipaddress.IPv4Network] = frozenset()
    ipv6_subnets: frozenset[ipaddress.IPv6Network] = frozenset()
    hops: int | None = None
    #: All of its traffic is paused (RFC 8651 Pause of 255 or of every queue).
    paused: bool = False
    #: Queue indexes paused for it (its own and session-wide).
    paused_queues: frozenset[int] = frozenset()
    extra: tuple[DataItem, ...] = ()

    @property
    def mac(self) -> bytes:
        """The destination's MAC (the gateway's, for a Link Identifier destination)."""
        return self.key.mac

    @property
    def layer3(self) -> bool:
        """True for an RFC 8703 destination behind a gateway (not on our link)."""
        return bool(self.key.ident)

    def as_json(self) -> dict[str, object]:
        """The JSON form hooks receive (docs/dataplane.md)."""
        out: dict[str, object] = {
            "mac": format_mac(self.mac),
            "session_id": self.session_id,
            "metrics": self.metrics.as_dict(),
            "ipv4": sorted(str(a) for a in self.ipv4),
            "ipv6": sorted(str(a) for a in self.ipv6),
            "ipv4_subnets": sorted(str(n) for n in self.ipv4_subnets),
            "ipv6_subnets": sorted(str(n) for n in self.ipv6_subnets),
            "paused": self.paused,
            "paused_queues": sorted(self.paused_queues),
        }
        ext = dict(extension_values_from_items(self.extra))
        ext.pop("pause", None)  # one-off items: the state is in paused/paused_queues
        ext.pop("restart", None)
        if ext:
            out["ext"] = ext
        return out


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that changed: ``dest`` is the new state (None when gone),
    ``before`` the previous one (None when new)."""

    kind: ChangeKind
    key: DestKey
    dest: DestState | None
    before: DestState | None = None


@dataclass(slots=True)
class _SessionPause:
    queues: set[int] = field(default_factory=set)
    known: frozenset[int] = _DEFAULT_QUEUES
    dests: dict[DestKey, set[int]] = field(default_factory=dict)


class DestinationTable:
    """Destinations by key, changed only by :meth:`handle` and :meth:`resync`."""

    def __init__(self) -> None:
        self._dests: dict[DestKey, DestState] = {}
        self._pauses: dict[str, _SessionPause] = {}

    def __len__(self) -> int:
        return len(self._dests)

    def get(self, key: DestKey) -> DestState | None:
        """The destination's state, or None."""
        return self._dests.get(key)

    def all(self) -> list[DestState]:
        """Every destination (a copy)."""
        return list(self._dests.values())

    def needs_resync(self, ev: DaemonEvent) -> bool:
        """True for :class:`Lagged` with events dropped: they were lost, rebuild
        from a snapshot. Merged (coalesced) updates lose nothing: the update
        that follows has the newest values and every field that changed."""
        return isinstance(ev, Lagged) and ev.dropped > 0

    # -- events ---------------------------------------------------------------

    def handle(self, ev: DaemonEvent) -> list[Change]:
        """Apply one daemon event; the changes it causes (maybe none)."""
        if not isinstance(ev, SessionEvent):
            return []
        e, sid = ev.event, ev.session_id
        if isinstance(e, DestinationUp | DestinationUpdate):
            return self._upsert(sid, e.info)
        if isinstance(e, DestinationDown):
            return self._remove(e.key, sid)
        if isinstance(e, SessionTerminated):
            self._pauses.pop(sid, None)
            out: list[Change] = []
            for key, d in list(self._dests.items()):
                if d.session_id == sid:
                    out += self._remove(key, sid)
            return out
        if isinstance(e, QueuesPaused | QueuesRestarted):
            return self._pause_event(sid, e)
        if isinstance(e, QueueParametersChanged):
            sp = self._pauses.setdefault(sid, _SessionPause())
            sp.known = e.parameters.indexes
            return self._recompute_pause(sid)
        return []

    def resync(self, snapshot: Iterable[tuple[str, DestinationInfo]]) -> list[Change]:
        """Rebuild from ``daemon.destinations()`` after events were lost.

        Pause state cannot be read back from a snapshot; what the table
        already knew is kept for destinations that are still there.
        """
        seen: set[DestKey] = set()
        out: list[Change] = []
        for sid, info in snapshot:
            out += self._upsert(sid, info)
            seen.add(info.key)
        for key in [k for k in self._dests if k not in seen]:
            out += self._remove(key, None)
        return out

    # -- internals ------------------------------------------------------------

    def _upsert(self, sid: str, info: DestinationInfo) -> list[Change]:
        key = info.key
        before = self._dests.get(key)
        hops = next((i.hops for i in info.extra if isinstance(i, HopCount)), None)
        if hops is None and before is not None:
            hops = before.hops
        new = DestState(
            key=key,
            session_id=sid,
            metrics=info.metrics,
            ipv4=info.ipv4,
            ipv6=info.ipv6,
            ipv4_subnets=info.ipv4_subnets,
            ipv6_subnets=info.ipv6_subnets,
            hops=hops,
            extra=tuple(info.extra),
        )
        if before is not None and before.session_id != sid:
            log.warning(
                "destination %s: now reported by session %s (was session %s)",
                key,
                sid,
                before.session_id,
            )
        paused_q = self._paused_queues(sid, key)
        new = replace(new, paused_queues=paused_q, paused=self._all_paused(sid, paused_q))
        if before is not None and before == new:
            return []
        self._dests[key] = new
        return [Change("update" if before is not None else "up", key, new, before)]

    def _remove(self, key: DestKey, sid: str | None) -> list[Change]:
        before = self._dests.get(key)
        if before is None or (sid is not None and before.session_id != sid):
            return []
        del self._dests[key]
        sp = self._pauses.get(before.session_id)
        if sp is not None:
            sp.dests.pop(key, None)
        return [Change("down", key, None, before)]

    def _pause_event(self, sid: str, e: QueuesPaused | QueuesRestarted) -> list[Change]:
        sp = self._pauses.setdefault(sid, _SessionPause())
        if e.dest is None:
            sp.queues = set(e.paused)
        elif e.paused:
            sp.dests[e.dest] = set(e.paused)
        else:
            sp.dests.pop(e.dest, None)
        return self._recompute_pause(sid)

    def _paused_queues(self, sid: str, key: DestKey) -> frozenset[int]:
        sp = self._pauses.get(sid)
        if sp is None:
            return frozenset()
        return frozenset(sp.queues | sp.dests.get(key, set()))

    def _all_paused(self, sid: str, queues: frozenset[int]) -> bool:
        if ALL_QUEUES in queues:
            return True
        sp = self._pauses.get(sid)
        known = sp.known if sp is not None else _DEFAULT_QUEUES
        return bool(queues) and known <= queues

    def _recompute_pause(self, sid: str) -> list[Change]:
        out: list[Change] = []
        for key, d in list(self._dests.items()):
            if d.session_id != sid:
                continue
            q = self._paused_queues(sid, key)
            new = replace(d, paused_queues=q, paused=self._all_paused(sid, q))
            if new == d:
                continue
            self._dests[key] = new
            if new.paused != d.paused:
                out.append(Change("pause" if new.paused else "restart", key, new, d))
            else:
                # Some queues changed but the destination as a whole did not:
                # hooks still hear of it; shaping stays as it is.
                out.append(Change("update", key, new, d))
        return out
