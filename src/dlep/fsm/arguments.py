"""Checks of what the application passes to the engine's API.

Every refusal is a :class:`~dlep.fsm.errors.SessionArgumentError` whose
message starts with the field at fault, so a management API can show it as
it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..wire import DataItem, ItemFormatError, MacAddress, Registry, Status, message_name
from .addresses import L3Item, parse_l3
from .errors import InvalidArgumentError, SessionArgumentError, SessionError
from .metrics import Metrics

_EMPTY = Metrics()

__all__ = [
    "check_extra",
    "check_own_message",
    "check_rates",
    "checked_metrics",
    "ident_of",
    "l3_items",
    "mac_bytes",
    "status_item",
    "validate",
]


def validate(metrics: Metrics, context: str = "") -> None:
    """Metrics.validate(), reporting a bad value as SessionArgumentError;
    ``context`` says what the values were combined with."""
    try:
        metrics.validate()
    except ValueError as exc:
        text = str(exc)
        field = text.split(":", 1)[0] if ":" in text else "metrics"
        raise SessionArgumentError(f"{text} ({context})" if context else text, field) from None


def checked_metrics(metrics: Metrics | None, undeclared: tuple[str, ...]) -> Metrics:
    """``metrics`` (empty if None), valid and without a field of
    ``undeclared``: §12.6, a metric not declared at session initialisation
    may never be sent."""
    if metrics is None:
        return _EMPTY
    try:
        metrics.validate()
    except ValueError:
        validate(metrics)  # the same check, reported as the API's error
    return declared_only(metrics, undeclared)


def declared_only(metrics: Metrics, undeclared: tuple[str, ...]) -> Metrics:
    """``metrics`` if it has no field of ``undeclared`` (§12.6)."""
    if not undeclared:
        return metrics
    used = [name for name in undeclared if getattr(metrics, name) is not None]
    if used:
        raise SessionArgumentError(
            f"metrics {', '.join(sorted(used))} were not declared at session "
            "initialisation (§12.6); restart the session to use them",
            "metrics",
        )
    return metrics


def check_rates(base: Metrics, change: Metrics, what: object) -> None:
    """Refuse ``change`` if, applied to ``base`` (``what``: whose metrics
    those are), a current data rate would exceed its maximum (§13.14-13.15)."""
    problem = base.rate_conflict(change)
    if problem is not None:
        where = what if isinstance(what, str) else f"{what}'s current metrics"
        raise SessionArgumentError(f"{problem} (together with {where})", problem.split(":")[0])


def check_extra(extra: Sequence[DataItem], registry: Registry, in_use: frozenset[int]) -> None:
    """Refuse items of extensions that are not in use on the session."""
    for item in extra:
        owners = registry.item_owners.get(item.TYPE)
        if owners and owners.isdisjoint(in_use):
            names = "/".join(str(o) for o in sorted(owners))
            raise SessionError(
                f"{item.NAME} belongs to extension {names}, not negotiated on this session"
            )


def check_own_message(registry: Registry, message_type: int, in_use: frozenset[int]) -> None:
    """Refuse ``send_message`` for a core message, an unknown one, or one of
    an extension not in use on the session."""
    spec = registry.messages.get(message_type)
    owners = registry.message_owners.get(message_type)
    if spec is None or not owners:
        raise SessionArgumentError(
            f"message_type: send_message is for extension messages; "
            f"{message_name(message_type)} is not one",
            "message_type",
        )
    if owners.isdisjoint(in_use):
        names = "/".join(str(o) for o in sorted(owners))
        raise SessionError(
            f"{spec.name} belongs to extension {names}, not negotiated on this session"
        )


def ident_of(extra: Sequence[DataItem], ident_types: frozenset[int]) -> tuple[DataItem, ...]:
    """The identity items among ``extra`` (RFC 8703 Link Identifier)."""
    if not ident_types or not extra:
        return ()
    return tuple(i for i in extra if i.TYPE in ident_types)


def l3_items(values: Iterable[L3Item | str], add: bool, field: str = "addresses") -> list[L3Item]:
    """parse_l3(), reporting bad text as SessionArgumentError."""
    try:
        return parse_l3(values, add, field)
    except InvalidArgumentError as exc:
        raise SessionArgumentError(str(exc), exc.field) from None


def status_item(code: int, text: str) -> Status:
    """A Status item from API arguments; bad values are a SessionArgumentError."""
    try:
        return Status(int(code), text)
    except (ItemFormatError, TypeError, ValueError) as exc:
        raise SessionArgumentError(str(exc), "status") from None


def mac_bytes(mac: bytes | str | MacAddress) -> bytes:
    """A MAC address as 6 or 8 octets, from text, bytes or an item.

    InvalidArgumentError (field ``mac``) if it is neither EUI-48 nor EUI-64.
    """
    if isinstance(mac, MacAddress):
        return mac.address
    if isinstance(mac, str):
        try:
            return MacAddress.parse(mac).address
        except ItemFormatError as exc:
            raise InvalidArgumentError(f"mac: {exc}", "mac") from None
    try:
        return MacAddress(bytes(mac)).address
    except (ItemFormatError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"mac: MAC address {mac!r}: {exc}", "mac") from None
