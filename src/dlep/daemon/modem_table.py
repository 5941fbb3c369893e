"""The modem application's destination table, and every check of a change to it.

:class:`ModemTable` holds what every router session is told: each
destination's metrics (merged with the session-wide ones), its addresses
and the lasting extension items, plus who owns each address and the
session-wide metrics. It only ever holds what can be sent: a change that
would break one of the RFC's rules (a current rate above its maximum, with
the session-wide values applied; an address another destination owns; a MAC
of the other length) is refused with a :class:`DaemonArgumentError` naming
the field, and nothing of it is kept.

It does no I/O. :class:`~dlep.daemon.ModemDaemon` tells the sessions about
a change from the ``send`` callback each change method takes (a refusal
there also keeps the table unchanged), and tries a batch of changes on a
:meth:`ModemTable.copy` first (``apply_destination_changes``), so a batch
is checked by exactly the rules the single calls use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from ..fsm import AddressIndex, AddressSet, DestKey, InvalidArgumentError, Metrics
from ..fsm.addresses import EMPTY, parse_l3
from ..wire import DataItem
from .base import DaemonArgumentError, DestinationExistsError, DestinationNotFoundError

__all__ = ["ModemDest", "ModemTable"]

_NO_METRICS: Final = Metrics()


@dataclass(slots=True)
class ModemDest:
    """One destination of the modem application's table."""

    key: DestKey
    metrics: Metrics  # merged with the session-wide metrics
    addresses: AddressSet
    #: False while the simulator has it down (it stays in the table).
    up: bool = True
    #: Lasting extension items (Hop Count, ...), sent again to later routers.
    extra: list[DataItem] = field(default_factory=list)

    @property
    def address_texts(self) -> list[str]:
        """Its addresses and subnets as text, sorted by family."""
        a = self.addresses
        if not a:
            return []
        return [str(x) for x in (*sorted(a.v4), *sorted(a.v6), *sorted(a.v4net), *sorted(a.v6net))]


class _NewMetrics(NamedTuple):
    """A destination and its metrics once a checked change is kept."""

    dest: ModemDest
    metrics: Metrics

    @property
    def up(self) -> bool:
        return self.dest.up


class ModemTable:
    """Destinations by key, who owns each address, and the session-wide metrics."""

    def __init__(self, session_metrics: Metrics) -> None:
        self.dests: dict[DestKey, ModemDest] = {}
        self.owners = AddressIndex()  # who holds each address, across the table
        self.session_metrics = session_metrics

    def copy(self) -> ModemTable:
        """An independent copy, to try changes on."""
        out = ModemTable(self.session_metrics)
        for key, d in self.dests.items():
            out.dests[key] = dataclasses.replace(d, extra=list(d.extra))
            out.owners.commit(key, EMPTY, d.addresses)
        return out

    def require(self, key: DestKey) -> ModemDest:
        """The destination named ``key``; DestinationNotFoundError if none."""
        d = self.dests.get(key)
        if d is None:
            raise DestinationNotFoundError(f"mac: no destination {key}")
        return d

    # -- changes -------------------------------------------------------------------

    def add(
        self,
        key: DestKey,
        metrics: Metrics | None,
        addresses: Sequence[str],
        extra: list[DataItem],
        send: Callable[[ModemDest], None] | None = None,
    ) -> ModemDest:
        """Check a new destination against the table and the RFC, ``send``
        it, and store it (nothing is stored if either refuses)."""
        if key in self.dests:
            raise DestinationExistsError(f"mac: destination {key} already exists")
        full = _checked_with(
            self.session_metrics, metrics or _NO_METRICS, lambda: "with the session-wide metrics"
        )
        for other in self.dests:
            if len(other.mac) != len(key.mac):
                raise DaemonArgumentError(
                    f"mac: {key.mac_str} has {len(key.mac)} octets, but this modem's "
                    f"destinations use {len(other.mac)} (RFC 8175 §13.7)",
                    "mac",
                )
            break
        new = self._addresses(key, EMPTY, addresses, (), "addresses") if addresses else EMPTY
        d = ModemDest(key, full, new, extra=extra)
        if send is not None:
            send(d)
        self.owners.commit(key, EMPTY, new)
        self.dests[key] = d
        return d

    def update(
        self,
        key: DestKey,
        metrics: Metrics | None,
        add: Sequence[str],
        drop: Sequence[str],
        extra: Sequence[DataItem],
        send: Callable[[ModemDest], None] | None = None,
    ) -> ModemDest:
        """Check a change of a destination, ``send`` it (given the
        destination as it was), then keep it."""
        d = self.require(key)
        metrics = metrics or _NO_METRICS
        full = _checked_with(d.metrics, metrics, lambda: f"with {key}'s current metrics")
        new = self._addresses(key, d.addresses, add, drop, "add") if add or drop else d.addresses
        if send is not None:
            send(d)
        self.owners.commit(key, d.addresses, new)
        d.addresses = new
        d.metrics = full
        # Replayed to routers that connect later: keep the lasting items given
        # at add time (Hop Count, ...) current, but never store one-off items
        # (Pause, credit grants) that an update carried.
        kept = {i.TYPE: i for i in d.extra}
        for item in extra:
            if item.TYPE in kept:
                kept[item.TYPE] = item
        d.extra = list(kept.values())
        return d

    def check_metrics(
        self, entries: Sequence[tuple[DestKey, Metrics]], *, indexed: bool = True
    ) -> list[_NewMetrics]:
        """Check new metrics for several destinations, in order (a pair sees
        the earlier pairs of its destination); the result goes to
        :meth:`keep_metrics`. Errors name the pair (``updates[i].``) if
        ``indexed``, else read as those of :meth:`update`."""
        out: list[_NewMetrics] = []
        after: dict[DestKey, Metrics] = {}
        dests = self.dests
        for i, (key, metrics) in enumerate(entries):
            d = dests.get(key)
            if d is None:
                pair = f"updates[{i}]." if indexed else ""
                raise DestinationNotFoundError(f"{pair}mac: no destination {key}")
            base = after.get(key) or d.metrics
            try:
                full = _checked_with(base, metrics, _current_of(key))
            except DaemonArgumentError as exc:
                if not indexed:
                    raise
                pair = f"updates[{i}]."
                raise DaemonArgumentError(f"{pair}{exc}", f"{pair}{exc.field}") from None
            after[key] = full
            out.append(_NewMetrics(d, full))
        return out

    def keep_metrics(self, checked: Sequence[_NewMetrics]) -> None:
        """Keep what :meth:`check_metrics` checked (and the sessions took)."""
        for new in checked:
            new.dest.metrics = new.metrics

    def drop(self, key: DestKey) -> ModemDest:
        """Remove a destination (DestinationNotFoundError if there is none)."""
        d = self.require(key)
        self.remove(d)
        return d

    def remove(self, d: ModemDest) -> None:
        """Forget ``d`` and free its addresses."""
        self.owners.release(d.key, d.addresses)
        self.dests.pop(d.key, None)

    def update_session(self, metrics: Metrics, send: Callable[[], None] | None = None) -> None:
        """Check new session-wide metrics against every destination (§12.7:
        they apply to all of them), ``send`` them, then keep them."""
        metrics = _checked(metrics, "")
        merged = _checked(self.session_metrics.merged(metrics), "with the session-wide metrics")
        for d in self.dests.values():
            _checked(d.metrics.merged(metrics), f"for destination {d.key}; change it first")
        if send is not None:
            send()
        self.session_metrics = merged
        # Keep the table equal to what routers hold, so a router that
        # connects later is told the same values.
        for d in self.dests.values():
            d.metrics = d.metrics.merged(metrics)

    def _addresses(
        self,
        key: DestKey,
        current: AddressSet,
        add: Sequence[str],
        drop: Sequence[str],
        field: str,
    ) -> AddressSet:
        try:
            items = parse_l3(add, True, field) + parse_l3(drop, False, "drop")
        except InvalidArgumentError as exc:
            raise DaemonArgumentError(str(exc), exc.field) from None
        new, problems = self.owners.apply(key, current, items)
        if problems:
            raise DaemonArgumentError(f"{field}: " + "; ".join(problems), field)
        return new


def _current_of(key: DestKey) -> Callable[[], str]:
    """The context of a refusal, formatted only when there is one."""
    return lambda: f"with {key}'s current metrics"


def _checked_with(base: Metrics, change: Metrics, context: Callable[[], str]) -> Metrics:
    """``base`` with ``change`` applied, if that keeps the RFC's rules; else
    DaemonArgumentError naming the field (``change``'s own fault first)."""
    _checked(change, "")
    problem = base.rate_conflict(change)
    if problem is not None:
        raise DaemonArgumentError(f"{problem} ({context()})", problem.split(":")[0])
    return base.merged(change)


def _checked(metrics: Metrics, context: str) -> Metrics:
    """``metrics``, if they keep the RFC's rules; else DaemonArgumentError
    naming the field (``context`` says what they were combined with)."""
    try:
        metrics.validate()
    except ValueError as exc:
        text = str(exc)
        field = text.split(":", 1)[0]
        raise DaemonArgumentError(f"{text} ({context})" if context else text, field) from None
    return metrics
