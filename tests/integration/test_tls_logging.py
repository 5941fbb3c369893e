"""A failed TLS handshake is logged at both ends with the reason: unknown
CA, name mismatch, a plaintext peer, a missing client certificate."""

from __future__ import annotations

import logging

import pytest

from dlep.daemon import ConnectionRefused

from .conftest import (
    V4,
    Certs,
    Daemons,
    Events,
    modem_config,
    router_config,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)

TLS_ON = {"use_tls": True}


def _lines(caplog: pytest.LogCaptureFixture, logger: str, needle: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == logger and needle in r.getMessage() and r.levelno >= logging.WARNING
    ]


async def _logged(caplog: pytest.LogCaptureFixture, logger: str, needle: str) -> str:
    await wait_until(lambda: bool(_lines(caplog, logger, needle)), 15, f"{logger}: {needle}")
    return _lines(caplog, logger, needle)[0]


async def test_unknown_ca_logged_at_both_ends(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    rogue = {"cert": str(certs.rogue_modem_cert), "key": str(certs.rogue_modem_key)}
    modem = await daemons.modem(modem_config(port, network=TLS_ON, tls=rogue))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, network=TLS_ON, tls=certs.router_tls()))
    r = await _logged(caplog, "dlep.router", "certificate rejected")
    assert "local issuer" in r or "unknown" in r.lower(), r
    m = await _logged(caplog, "dlep.modem", "TLS handshake failed from")
    # A peer that sends the alert is named exactly ("unknown CA"); asyncio's
    # client closes without it, so here the modem can only say it was rejected.
    assert ("unknown CA" in m or "rejected our certificate" in m) and f"{V4}:" in m, m
    refused = await mev.next(ConnectionRefused)
    assert "TLS handshake failed" in refused.reason
    await wait_until(lambda: any(p.failure == "tls-failed" for p in router.peers()), 10)


async def test_name_mismatch_logged_at_both_ends(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await daemons.modem(modem_config(port, network=TLS_ON, tls=certs.modem_tls()))
    await daemons.router(
        router_config(port, network=TLS_ON, tls=certs.router_tls(server_name="other.dlep.test"))
    )
    r = await _logged(caplog, "dlep.router", "certificate rejected")
    assert "other.dlep.test" in r or "mismatch" in r.lower(), r
    m = await _logged(caplog, "dlep.modem", "TLS handshake failed from")
    assert "rejected our certificate" in m, m


async def test_plaintext_router_logged_by_the_tls_modem(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await daemons.modem(modem_config(port, network=TLS_ON, tls=certs.modem_tls()))
    await daemons.router(router_config(port))
    m = await _logged(caplog, "dlep.modem", "TLS handshake failed from")
    assert "does not speak TLS" in m, m


async def test_missing_client_certificate_logged_at_both_ends(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await daemons.modem(
        modem_config(
            port, network=TLS_ON, tls=certs.modem_tls(ca=str(certs.ca), require_client_cert=True)
        )
    )
    router = await daemons.router(router_config(port, network=TLS_ON, tls=certs.router_tls()))
    m = await _logged(caplog, "dlep.modem", "TLS handshake failed from")
    assert "no client certificate" in m, m
    r = await _logged(caplog, "dlep.router", "TLS with modem")
    assert "client certificate" in r, r
    # Once, not per retry.
    await wait_until(lambda: any(p.failures >= 3 for p in router.peers()), 15)
    assert len(_lines(caplog, "dlep.router", "TLS with modem")) == 1
    await wait_until(lambda: any(p.failure == "tls-failed" for p in router.peers()), 10)


async def test_tls_router_to_plaintext_modem_is_a_tls_failure(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await daemons.modem(modem_config(port))
    router = await daemons.router(router_config(port, network=TLS_ON, tls=certs.router_tls()))
    await wait_until(lambda: any(p.failure == "tls-failed" for p in router.peers()), 10)
    (p,) = router.peers()
    assert "TLS" in p.last_error or "closed" in p.last_error, p
