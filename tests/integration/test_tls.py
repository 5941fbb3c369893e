"""TLS between the daemons: trust, mutual authentication, TLS policy, overrides.

Certificates come from trustme (fixture ``certs``): the modem's server
certificate names 127.0.0.1, ::1 and localhost; the router trusts our CA.
"""

from __future__ import annotations

import logging

import pytest

from dlep.daemon import (
    ConnectFailed,
    DaemonError,
    DaemonEvent,
    SessionConnected,
    SessionEvent,
)
from dlep.fsm import DestinationUp, SessionTerminated, SessionUp
from dlep.transport import TlsSettings

from .conftest import (
    FAMILIES,
    MAC1,
    V4,
    Certs,
    Daemons,
    Events,
    modem_config,
    need_host,
    peer_str,
    router_config,
)

pytestmark = pytest.mark.timeout(60)

TLS_ON = {"use_tls": True}


@FAMILIES
async def test_untrusted_modem_certificate_is_refused(
    daemons: Daemons, port: int, host: str, certs: Certs
) -> None:
    need_host(host)
    modem = await daemons.modem(
        modem_config(
            port,
            host,
            network=TLS_ON,
            tls={"cert": str(certs.rogue_modem_cert), "key": str(certs.rogue_modem_key)},
        )
    )
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, host, network=TLS_ON, tls=certs.router_tls()))
    rev = Events(router.subscribe(), "router")
    failed = await rev.next(ConnectFailed)
    assert failed.peer == peer_str(host, port)
    assert "CERTIFICATE_VERIFY_FAILED" in failed.reason, failed.reason
    assert not any(isinstance(e, SessionConnected) for e in rev.seen)
    # It keeps trying (static peer), and keeps failing the same way.
    again = await rev.next(ConnectFailed)
    assert "CERTIFICATE_VERIFY_FAILED" in again.reason
    await rev.none_of(SessionUp, within=0.3)
    # The router keeps retrying: an attempt may be under way right now (a
    # connection whose handshake has not failed yet); none ever came up.
    assert all(s.up_since is None for s in router.sessions())
    assert all(s.up_since is None for s in modem.sessions())
    assert not any(isinstance(e, SessionConnected) for e in mev.drain())


async def test_server_name_checked_when_configured(
    daemons: Daemons, port: int, certs: Certs
) -> None:
    await daemons.modem(modem_config(port, network=TLS_ON, tls=certs.modem_tls()))
    router = await daemons.router(
        router_config(port, network=TLS_ON, tls=certs.router_tls(server_name="other.dlep.test"))
    )
    rev = Events(router.subscribe(), "router")
    failed = await rev.next(ConnectFailed)
    assert "other.dlep.test" in failed.reason or "mismatch" in failed.reason, failed.reason
    assert router.sessions() == []


@FAMILIES
async def test_mutual_tls_with_client_certificate(
    daemons: Daemons, port: int, host: str, certs: Certs
) -> None:
    need_host(host)
    modem = await daemons.modem(
        modem_config(
            port,
            host,
            network=TLS_ON,
            tls=certs.modem_tls(ca=str(certs.ca), require_client_cert=True),
        )
    )
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(
        router_config(port, host, network=TLS_ON, tls=certs.router_tls(client_cert=True))
    )
    rev = Events(router.subscribe(), "router")
    assert (await rev.next(SessionConnected)).tls
    await rev.next(SessionUp)
    await rev.next(DestinationUp, lambda e: e.info.mac_str == MAC1)
    assert (await mev.next(SessionConnected)).tls
    await mev.next(SessionUp)
    assert [s.tls for s in router.sessions()] == [True]
    assert [s.tls for s in modem.sessions()] == [True]


async def test_mutual_tls_without_client_certificate(
    daemons: Daemons, port: int, certs: Certs
) -> None:
    """The modem requires a client certificate and the router has none: no
    session ever comes up, and the router is told why."""
    modem = await daemons.modem(
        modem_config(
            port,
            network=TLS_ON,
            tls=certs.modem_tls(ca=str(certs.ca), require_client_cert=True),
        )
    )
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, network=TLS_ON, tls=certs.router_tls()))
    rev = Events(router.subscribe(), "router")

    # TLS 1.3 lets the client finish its handshake before the server checks
    # the (missing) certificate, so the refusal shows up either as a failed
    # connect or as a connection that dies before the session is up.
    def refused(e: DaemonEvent) -> bool:
        inner = e.event if isinstance(e, SessionEvent) else e
        return isinstance(inner, ConnectFailed) or (
            isinstance(inner, SessionTerminated) and inner.status is None
        )

    ev = await rev.next(DaemonEvent, refused)
    inner = ev.event if isinstance(ev, SessionEvent) else ev
    assert isinstance(inner, ConnectFailed | SessionTerminated)
    reason = inner.reason
    assert "CERTIFICATE" in reason.upper() or "closed" in reason or "lost" in reason, reason
    await rev.none_of(SessionUp, within=0.5)
    assert not [s for s in router.sessions() if s.state == "in-session"]
    assert not [s for s in modem.sessions() if s.state == "in-session"]
    assert not any(isinstance(getattr(e, "event", None), SessionUp) for e in mev.drain())


async def test_tls_router_refuses_plaintext_connection_point(
    daemons: Daemons, port: int, certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    """network.use_tls = true with a static peer marked tls = false: the
    router never opens the plaintext connection (§7.1, conformance.md)."""
    caplog.set_level(logging.WARNING, logger="dlep.router")
    modem = await daemons.modem(modem_config(port))  # plaintext modem
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(
        router_config(port, network=TLS_ON, tls=certs.router_tls(), peer_tls=False)
    )
    rev = Events(router.subscribe(), "router")
    failed = await rev.next(ConnectFailed)
    assert failed.peer == peer_str(V4, port)
    assert "offers plaintext but TLS is required; refused" in failed.reason
    assert any(
        "offers plaintext but TLS is required; refused" in r.getMessage() for r in caplog.records
    )
    await mev.none_of(SessionConnected, within=0.4)
    assert modem.sessions() == []
    assert router.sessions() == []


async def test_tls_router_against_plaintext_modem(
    daemons: Daemons, port: int, certs: Certs
) -> None:
    """The modem takes the ClientHello for garbage and closes silently
    (§7.2); the router reports a failed connect."""
    modem = await daemons.modem(modem_config(port))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, network=TLS_ON, tls=certs.router_tls()))
    rev = Events(router.subscribe(), "router")
    failed = await rev.next(ConnectFailed)
    assert failed.peer == peer_str(V4, port)
    term = await mev.next(SessionTerminated)
    assert term.status is not None and term.status >= 128  # garbage before Session Init
    assert not term.destinations
    await rev.none_of(SessionUp, within=0.3)


async def test_plain_router_against_tls_modem(daemons: Daemons, port: int, certs: Certs) -> None:
    modem = await daemons.modem(modem_config(port, network=TLS_ON, tls=certs.modem_tls()))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port))
    rev = Events(router.subscribe(), "router")
    # TCP connects, the modem's TLS layer rejects our Session Initialization.
    conn = await rev.next(SessionConnected)
    assert not conn.tls
    term = await rev.next(SessionTerminated)
    assert term.status is None and not term.destinations
    await rev.none_of(SessionUp, within=0.3)
    assert not any(isinstance(e, SessionConnected) for e in mev.drain())


async def test_no_tls_override(daemons: Daemons, port: int, certs: Certs) -> None:
    """``no_tls()`` beats network.use_tls = true on both sides (``--no-tls``)."""
    modem = await daemons.modem(
        modem_config(port, network=TLS_ON, tls=certs.modem_tls()), lambda b: b.no_tls()
    )
    router = await daemons.router(
        router_config(port, network=TLS_ON, tls=certs.router_tls()), lambda b: b.no_tls()
    )
    rev = Events(router.subscribe(), "router")
    conn = await rev.next(SessionConnected)
    assert not conn.tls
    await rev.next(SessionUp)
    assert [s.tls for s in router.sessions()] == [False]
    assert [s.tls for s in modem.sessions()] == [False]
    assert not modem.use_tls and not router.use_tls


async def test_with_tls_override(daemons: Daemons, port: int, certs: Certs) -> None:
    """``with_tls()`` turns TLS on over a plaintext configuration."""
    modem = await daemons.modem(
        modem_config(port),
        lambda b: b.with_tls(TlsSettings(cert=certs.modem_cert, key=certs.modem_key)),
    )
    router = await daemons.router(
        router_config(port),
        lambda b: b.with_tls(TlsSettings(ca=certs.ca, server_name="localhost")),
    )
    rev = Events(router.subscribe(), "router")
    assert (await rev.next(SessionConnected)).tls
    await rev.next(SessionUp)
    assert [s.tls for s in modem.sessions()] == [True]


async def test_tls_setup_errors_are_daemon_errors(daemons: Daemons, port: int) -> None:
    with pytest.raises(DaemonError, match=r"tls\.cert and tls\.key"):
        await daemons.modem(modem_config(port), lambda b: b.with_tls(TlsSettings()))
    with pytest.raises(DaemonError, match=r"tls\.ca"):
        await daemons.router(router_config(port), lambda b: b.with_tls(TlsSettings()))
