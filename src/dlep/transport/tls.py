"""TLS contexts for DLEP sessions (RFC 8175 §7.1, §14), standard ``ssl`` only."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


class TlsSetupError(Exception):
    """A certificate, key or CA could not be loaded (the message says which)."""


@dataclass(frozen=True)
class TlsSettings:
    """Certificate material and policy.

    Attributes:
        cert: our certificate chain (PEM); required for a server (modem).
        key: our private key (PEM).
        ca: CA bundle used to verify the peer.
        verify_peer: verify the peer's certificate (default on).
        require_client_cert: server only: mutual TLS.
        server_name: client only: host name to match in the modem's
            certificate (None: the chain is verified, the name is not).
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    verify_peer: bool = True
    require_client_cert: bool = False
    server_name: str | None = None


def _load_chain(ctx: ssl.SSLContext, s: TlsSettings) -> None:
    if s.cert is None:
        return
    try:
        ctx.load_cert_chain(str(s.cert), str(s.key) if s.key else None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"tls.cert/tls.key ({s.cert}, {s.key}): {exc}") from None


def _load_ca(ctx: ssl.SSLContext, s: TlsSettings) -> None:
    if s.ca is None:
        raise TlsSetupError("tls.ca: required to verify the peer (or set tls.verify_peer = false)")
    try:
        ctx.load_verify_locations(cafile=str(s.ca))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"tls.ca ({s.ca}): {exc}") from None


def server_context(s: TlsSettings) -> ssl.SSLContext:
    """Context for the modem's listener."""
    if s.cert is None or s.key is None:
        raise TlsSetupError("tls.cert and tls.key: required for a TLS listener")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, s)
    if s.require_client_cert:
        _load_ca(ctx, s)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(s: TlsSettings) -> ssl.SSLContext:
    """Context for the router's connections."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if s.verify_peer:
        _load_ca(ctx, s)
        ctx.check_hostname = s.server_name is not None
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _load_chain(ctx, s)
    return ctx


#: OpenSSL reasons of failed handshakes, in an operator's words.
_HINTS: dict[str, str] = {
    "WRONG_VERSION_NUMBER": "the peer does not speak TLS (a plaintext peer?)",
    "HTTP_REQUEST": "the peer does not speak TLS (a plaintext peer?)",
    "UNKNOWN_PROTOCOL": "the peer does not speak TLS (a plaintext peer?)",
    "RECORD_LAYER_FAILURE": "the peer does not speak TLS (a plaintext peer?)",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our certificate (unknown CA)",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer rejected our certificate (name mismatch, or expired)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the peer says our certificate has expired",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the peer requires a client certificate",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": (
        "the peer sent no client certificate (require_client_cert)"
    ),
    "UNEXPECTED_EOF_WHILE_READING": (
        "the peer closed the connection during the handshake: it probably rejected "
        "our certificate (unknown CA, name mismatch), or it does not speak TLS"
    ),
}


def describe_tls_error(exc: BaseException) -> str:
    """Why a TLS handshake failed, for a log line: the certificate check's
    own words (unknown CA, name mismatch) or the peer's alert explained,
    with OpenSSL's reason code in brackets for searching."""
    reason = str(getattr(exc, "reason", None) or "")
    verify = getattr(exc, "verify_message", None)
    if verify:
        return f"certificate rejected: {verify} ({reason or 'CERTIFICATE_VERIFY_FAILED'})"
    if reason in _HINTS:
        return f"{_HINTS[reason]} ({reason})"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError):
        return _HINTS["UNEXPECTED_EOF_WHILE_READING"]
    if isinstance(exc, TimeoutError):
        return "no TLS handshake within the time allowed"
    return str(exc) or type(exc).__name__
