"""The API's waits for an answer (RequestLinkCharacteristics, AnnounceDestination
with ``wait_ms``) see it however many other events come first (issue 14:
during a 100,000-destination burst a third of the requests went unanswered,
the answer crowded out of a 256-event queue by Destination Ups)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlep.api.server import ManagementServer
from dlep.daemon import (
    FilteredSubscription,
    LinkDecision,
    LinkRequest,
    ModemDaemon,
    RouterDaemon,
    SessionEvent,
)
from dlep.fsm import DestinationUp, LinkCharacteristicsResponse, Metrics
from dlep.wire import StatusCode

from .conftest import MAC1, free_port, modem_config, router_config, until

pytestmark = pytest.mark.timeout(120)

#: Destinations the modem brings up between a request and its answer: far
#: more than the answer's old 256-event queue held.
BURST = 1500


async def test_link_answer_arrives_behind_a_burst_of_destination_ups(tmp_path: Path) -> None:
    port = free_port()
    modem: ModemDaemon | None = None

    async def slow_handler(req: LinkRequest) -> LinkDecision:
        # Before answering, bring up BURST destinations: the router sees
        # BURST Destination Up events, then the answer.
        assert modem is not None
        for i in range(BURST):
            await modem.add_destination(b"\x02\x30" + i.to_bytes(4, "big"), Metrics(cdrr=1000))
        return LinkDecision(StatusCode.SUCCESS, Metrics(cdrr=4242), "after the burst")

    mcfg = modem_config(port, socket=str(tmp_path / "m.sock"))
    rcfg = router_config(port, socket=str(tmp_path / "r.sock"))
    modem = (
        await ModemDaemon.builder().config(mcfg).link_characteristics_handler(slow_handler).spawn()
    )
    router = await RouterDaemon.builder().config(rcfg).spawn()
    api = ManagementServer(router, rcfg.api)
    await api.start()
    try:
        await until(lambda: len(router.destinations()) == 2, what="session up")
        from dlep.api.client import ManagementClient

        client = ManagementClient.unix(tmp_path / "r.sock", timeout=30)
        try:
            r = await client.request_link_characteristics(MAC1, cdrr=1000, wait_ms=20_000)
        finally:
            await client.close()
        assert r.answered, "the answer was lost behind the burst"
        assert r.metrics.cdrr == 4242 and r.text == "after the burst"
        assert len(router.destinations()) >= BURST
    finally:
        await api.stop(0.2)
        await router.shutdown()
        await modem.shutdown()


def test_filtered_subscription_queues_only_matches() -> None:
    sub = FilteredSubscription(2, lambda ev: isinstance(ev, SessionEvent) and ev.session_id == "2")
    for _ in range(1000):
        sub.offer(SessionEvent("1", "peer", DestinationUp(None)))  # type: ignore[arg-type]
    wanted = SessionEvent("2", "peer", LinkCharacteristicsResponse(b"\x02" * 6, 0, Metrics()))
    sub.offer(wanted)
    assert sub.pending() == 1 and sub.dropped_total == 0
