"""Session initialisation (RFC 8175 §7.2, §12.5, §12.6): what the peer's
Session Initialization (Response) says, and what ours carries.

Pure functions over messages and configuration; the session applies their
results (:meth:`~dlep.fsm.session.Session`'s init handlers).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire import (
    DataItem,
    ExtensionsSupported,
    HeartbeatInterval,
    Message,
    PeerType,
    Registry,
    UnknownItem,
)
from .addresses import PEER, AddressIndex, AddressSet
from .errors import PeerError
from .parts import Parts, split
from .session_config import SessionConfig

__all__ = ["PeerInit", "foreign_items", "heartbeat_refusal", "offer_items", "read_peer_init"]


@dataclass(frozen=True, slots=True)
class PeerInit:
    """The peer's Session Initialization (Response), read and checked."""

    heartbeat_ms: int
    peer_type: PeerType
    #: The extensions the peer listed (Extensions Supported).
    extensions: frozenset[int]
    parts: Parts


def read_peer_init(
    msg: Message, ident_types: frozenset[int], addresses: AddressIndex, peer_l3: AddressSet
) -> PeerInit:
    """Read the peer's initialisation; PeerError (130) if its layer-3
    information is inconsistent (§13.8.1 for session messages)."""
    hb = msg.get(HeartbeatInterval)
    pt = msg.get(PeerType)
    assert hb is not None and pt is not None  # required by the codec rules
    offered = msg.get(ExtensionsSupported)
    parts = split(msg, ident_types)
    problems = [
        f"{i.NAME} with the Add/Drop flag clear in session initialisation"
        for i in parts.l3
        if not i.add
    ]
    if not problems:
        _, problems = addresses.apply(PEER, peer_l3, parts.l3)
    if problems:
        raise PeerError("; ".join(problems))
    theirs = frozenset(offered.extensions) if offered else frozenset()
    return PeerInit(hb.milliseconds, pt, theirs, parts)


def heartbeat_refusal(msg: Message, config: SessionConfig) -> str | None:
    """Why the peer's Heartbeat Interval is refused, or None if it is not.

    §7.3.1: "An implementation MUST allow a minimum of 2 heartbeat intervals
    to expire with no Messages from its peer before terminating the
    session." So we may not time a silent peer out sooner than 2 of its
    intervals; a peer announcing up to 0xFFFFFFFF ms would keep its session
    (and a max_sessions slot) for 99 days after it died. Rather than
    shorten its intervals behind its back (which that MUST forbids), a
    session whose interval exceeds our maximum is not set up at all.
    """
    bound = config.max_peer_heartbeat_interval_ms
    hb = msg.get(HeartbeatInterval)
    if bound is None or hb is None or hb.milliseconds <= bound:
        return None
    return (
        f"peer Heartbeat Interval {hb.milliseconds} ms exceeds our maximum of {bound} ms "
        "(max_peer_heartbeat_interval_ms)"
    )


def offer_items(config: SessionConfig, extensions: tuple[int, ...]) -> list[DataItem]:
    """Heartbeat Interval, Peer Type and the extensions we list, in the
    order of our Session Initialization (Response)."""
    items: list[DataItem] = [
        HeartbeatInterval(config.heartbeat_interval_ms),
        config.peer_type,
    ]
    if extensions:
        items.append(ExtensionsSupported(extensions))
    return items


def foreign_items(msg: Message, registry: Registry, in_use: frozenset[int]) -> None:
    """Router: refuse a Session Initialization Response carrying items of an
    extension that is not in use (§7.2). It was decoded before negotiation,
    and a Session Initialization may carry such items (§12.5), so this is
    checked once the negotiated set is known."""
    for item in msg.items:
        if isinstance(item, UnknownItem):
            continue
        owners = registry.item_owners.get(item.TYPE)
        if owners and owners.isdisjoint(in_use):
            names = "/".join(str(o) for o in sorted(owners))
            raise PeerError(
                f"Session Initialization Response carries {item.NAME} of extension "
                f"{names}, which is not in use on this session (§7.2)"
            )
