"""Issue 14 (bounds): the destinations a peer may bring up in one session."""

from __future__ import annotations

import pytest

from dlep.fsm import (
    DestinationLimitReached,
    DestinationRefused,
    DestinationUp,
    SessionConfig,
    State,
)
from dlep.wire import MessageType, StatusCode

from .fsm_harness import K1, K3, MAC1, MAC2, MAC3, established, of_type, router_config, status_of

M = MessageType


def test_destination_up_beyond_the_limit_is_request_denied() -> None:
    p = established(router=router_config(max_peer_destinations=2))
    for m in (MAC1, MAC2, MAC3):
        p.modem.add_destination(m, now=p.now)
    wire = p.pump()
    responses = [w.message for w in wire if w.message.type == M.DESTINATION_UP_RESPONSE]
    assert [status_of(r) for r in responses] == [
        StatusCode.SUCCESS,
        StatusCode.SUCCESS,
        StatusCode.REQUEST_DENIED,
    ]
    rev, mev = p.events()
    assert len(of_type(rev, DestinationUp)) == 2
    (limit,) = of_type(rev, DestinationLimitReached)
    assert isinstance(limit, DestinationLimitReached)
    assert limit.key == K3 and limit.limit == 2 and limit.refused == 1
    (refused,) = of_type(mev, DestinationRefused)
    assert isinstance(refused, DestinationRefused)
    assert refused.status == StatusCode.REQUEST_DENIED
    # The session goes on (a Continue status), holding two destinations.
    assert p.router.state is State.IN_SESSION and p.modem.state is State.IN_SESSION
    assert p.router.destination_count == 2
    # §12.12: the modem sends nothing more about the refused one.
    assert not p.modem.knows(K3)
    # Room again once one is gone: the next Destination Up is accepted.
    p.modem.drop_destination(K1, now=p.now)
    p.pump()
    p.modem.add_destination(MAC3, now=p.now)
    wire = p.pump()
    assert [status_of(w.message) for w in wire if w.message.type == M.DESTINATION_UP_RESPONSE] == [
        StatusCode.SUCCESS
    ]
    assert p.router.destination_count == 2


def test_refusals_are_counted_per_session() -> None:
    p = established(router=router_config(max_peer_destinations=1))
    macs = [f"02:00:00:00:01:{i:02x}" for i in range(20)]
    for m in macs:
        p.modem.add_destination(m, now=p.now)
    p.pump()
    rev, _ = p.events()
    limits = of_type(rev, DestinationLimitReached)
    assert [e.refused for e in limits] == list(range(1, 20))  # type: ignore[attr-defined]
    assert p.router.destination_count == 1


def test_no_limit_by_default_and_limit_must_be_positive() -> None:
    assert SessionConfig().max_peer_destinations is None
    with pytest.raises(ValueError, match="max_peer_destinations"):
        SessionConfig(max_peer_destinations=0)
