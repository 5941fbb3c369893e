"""The management API server (gRPC, ``grpc.aio``) for a running daemon.

::

    daemon = await ModemDaemon.builder().config(cfg).spawn()
    api = ManagementServer(daemon, cfg.api)
    await api.start()        # Unix socket (mode 0600), plus TCP + mutual TLS if configured
    ...
    await api.stop()
    await daemon.shutdown()

The server runs on the daemon's event loop and only uses the daemon's public
API (snapshots, ``subscribe()``, the write calls), so the library daemons
work the same with or without it. The service is defined in
``proto/dlep/v1/management.proto``; docs/api.md describes it.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import os
import socket
import stat
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import grpc
from google.protobuf.message import Message

from .. import __version__
from ..daemon import (
    DaemonEvent,
    Lagged,
    ModemDaemon,
    RouterDaemon,
    SessionEvent,
    Subscription,
)
from ..daemon.changes import check_offered
from ..ext.values import ExtensionValues, parse_extension_values
from ..fsm import (
    AlreadyExistsError,
    DestinationInfo,
    DestinationRefused,
    DestinationUp,
    DestKey,
    DlepError,
    InvalidArgumentError,
    LinkCharacteristicsResponse,
    Metrics,
    NotFoundError,
)
from ..wire import MacAddress, format_mac, status_name
from . import convert, paging
from ._pb import management_pb2 as pb
from ._pb import management_pb2_grpc as pb_grpc
from .errors import ApiSetupError, SocketInUseError
from .paths import default_socket_path, ensure_private_dir, private_tmp_dir

if TYPE_CHECKING:
    from ..config import ApiConfig

__all__ = [
    "SERVICE_NAME",
    "ApiError",
    "ApiSetupError",
    "EventCache",
    "ManagementServer",
    "SocketInUseError",
    "start_api_server",
]

log = logging.getLogger("dlep.api")

SERVICE_NAME: Final = "dlep.v1.Management"
#: Longest wait a RequestLinkCharacteristics call may ask for.
MAX_WAIT_MS: Final = 60_000
#: Unix socket paths longer than this do not fit in sockaddr_un.
_MAX_UNIX_PATH: Final = 107

Daemon = RouterDaemon | ModemDaemon
Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class ApiError(Exception):
    """A call failed; becomes the gRPC status ``code`` with ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


#: How much of a caller's input an error message quotes.
ECHO_LIMIT: Final = 64
#: The longest error message a call answers with (whatever it quotes).
MESSAGE_LIMIT: Final = 1024


def _echo(text: str) -> str:
    """``text`` quoted for an error message, cut to :data:`ECHO_LIMIT`
    characters: a 3 MB MAC string must not come back as a 6 MB status."""
    if len(text) <= ECHO_LIMIT:
        return repr(text)
    return f"{text[:ECHO_LIMIT]!r}... ({len(text)} characters)"


def _bounded(message: str) -> str:
    """The message a status carries: at most :data:`MESSAGE_LIMIT` characters
    (an error of a lower layer may quote input whole), and encodable."""
    if len(message) > MESSAGE_LIMIT:
        message = f"{message[:MESSAGE_LIMIT]}... ({len(message)} characters)"
    return convert.safe_text(message)


def _invalid(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _not_found(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def _precondition(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message)


def _error_of(exc: Exception) -> ApiError | None:
    """The gRPC status of a refused call, by the error's category (never by
    its message text)."""
    if isinstance(exc, ApiError):
        return exc
    if not isinstance(exc, DlepError):
        return None
    message = str(exc)
    if isinstance(exc, NotFoundError):
        return ApiError(grpc.StatusCode.NOT_FOUND, message)
    if isinstance(exc, AlreadyExistsError):
        return ApiError(grpc.StatusCode.ALREADY_EXISTS, message)
    if isinstance(exc, InvalidArgumentError):
        return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message)


# ---------------------------------------------------------------------------
# Argument checks (each error names the field)
# ---------------------------------------------------------------------------


async def _send_then_wait(
    router: RouterDaemon,
    wait_ms: int,
    send: Callable[[], Awaitable[None]],
    match: Callable[[DaemonEvent], bool],
) -> DaemonEvent | None:
    """Send a request and, if ``wait_ms``, wait that long for the first event
    ``match`` accepts, its answer (None: not asked for, or none came).
    Subscribed before sending: the answer may come before we would look;
    and only to matching events, so that a burst of others (100,000
    Destination Ups) cannot crowd the answer out of the queue."""
    sub = router.subscribe(16, match=match) if wait_ms else None
    try:
        await send()
        if sub is None:
            return None
        try:
            return await sub.get(wait_ms / 1000.0)
        except (TimeoutError, StopAsyncIteration):
            return None
    finally:
        if sub is not None:
            router.unsubscribe(sub)


def _peer_address(host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A peer's ``host`` (an IP address, brackets allowed) checked with its
    ``port`` (0: the default); INVALID_ARGUMENT names the bad field."""
    try:
        addr = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        raise _invalid(f"host: {_echo(host)} is not an IP address") from None
    if port > 65535:
        raise _invalid(f"port: {port} out of range 1..65535")
    return addr


def _mac(text: str, field: str = "mac") -> bytes:
    if not text:
        raise _invalid(f"{field}: required")
    try:
        return MacAddress.parse(text.strip()).address
    except ValueError as exc:
        raise _invalid(f"{field}: {_echo(text)} is not a MAC address ({exc})") from None


def _metrics(msg: pb.Metrics, field: str = "metrics") -> Metrics:
    m = convert.metrics_from_pb(msg)
    try:
        m.validate()
    except ValueError as exc:
        text = str(exc)
        if field != "metrics":
            text = text.replace("metrics.", f"{field}.")
        raise _invalid(text) from None
    return m


def _addresses(values: list[str], field: str, *, subnets: bool = True) -> list[str]:
    out: list[str] = []
    for i, text in enumerate(values):
        text = text.strip()
        try:
            if "/" in text:
                if not subnets:
                    raise ValueError("subnets are not allowed here (addresses only)")
                out.append(str(ipaddress.ip_network(text, strict=False)))
            else:
                out.append(str(ipaddress.ip_address(text)))
        except ValueError as exc:
            raise _invalid(f"{field}[{i}]: {_echo(text)}: {exc}") from None
    return out


def _ext_values(modem: ModemDaemon, req: Any, *, add: bool) -> ExtensionValues:
    """The request's extension values, checked (INVALID_ARGUMENT names the key);
    each needs its extension offered by the modem (a DaemonError:
    FAILED_PRECONDITION)."""
    if isinstance(req, pb.DropDestinationRequest):
        data: dict[str, Any] = {"link_id": req.link_id} if req.link_id else {}
    elif req.HasField("ext"):
        data = convert.extension_values_from_pb(req.ext)
    else:
        data = {}
    try:
        ext = parse_extension_values(data, "ext")
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    if add and (ext.pause or ext.restart):
        raise _invalid("ext.pause: Pause/Restart go in UpdateDestination (RFC 8651 §3.2)")
    check_offered(modem.registry, ext.items())
    return ext


def _optional(msg: Message, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _page_request(
    req: pb.ListDestinationsRequest,
) -> tuple[int, tuple[str, bytes] | None, paging.KeyFilter | None]:
    """The page size, the position after the page token, and the MAC filter
    of a listing (INVALID_ARGUMENT names the field)."""
    limit = paging.page_size(req.page_size)
    after = None
    if req.page_token:
        try:
            after = paging.decode_token(req.page_token)
        except paging.PageTokenError as exc:
            raise _invalid(f"page_token: {_echo(req.page_token)}: {exc}") from None
    keep = None
    if req.mac:
        try:
            keep = paging.parse_key_filter(req.mac)
        except ValueError as exc:
            raise _invalid(
                f"mac: {_echo(req.mac)} is not a MAC address or destination key ({exc})"
            ) from None
    return limit, after, keep


def _page_response(
    page: paging.Page, fetch: Callable[[str, bytes | DestKey], pb.Destination | None]
) -> tuple[pb.ListDestinationsResponse, int]:
    """The response of a listing: ``page``'s destinations (converted by
    ``fetch``) while they fit :data:`~dlep.api.paging.MAX_PAGE_BYTES`, and
    the token of the next page if anything is left; and how many of the
    page's entries it used."""
    out: list[pb.Destination] = []
    size = 0
    used = 0
    last: tuple[str, bytes] | None = None
    for sid, key, slot in page.entries:
        msg = fetch(sid, slot)
        if msg is not None:
            n = msg.ByteSize() + 8  # and its tag and length in the response
            if out and size + n > paging.MAX_PAGE_BYTES:
                break
            size += n
            out.append(msg)
        used += 1
        last = (sid, key)
    more = last is not None and used < page.remaining
    token = paging.encode_token(*last) if more and last is not None else ""
    resp = pb.ListDestinationsResponse(destinations=out, next_page_token=token, total=page.total)
    return resp, used


# ---------------------------------------------------------------------------
# The service
# ---------------------------------------------------------------------------


Ctx = grpc.aio.ServicerContext[Any, Any]


def _refusal(exc: Exception, rpc: str) -> ApiError:
    """The status an RPC that raised ``exc`` ends with: by the error's type,
    INTERNAL (logged with the traceback) for anything unexpected."""
    err = _error_of(exc)
    if err is None:
        log.exception("api: %s failed", rpc)
        err = ApiError(grpc.StatusCode.INTERNAL, f"internal error: {exc!r}")
    return err


def _rpc(
    fn: Callable[[_Service, Req], Awaitable[Resp]],
) -> Callable[[_Service, Req, Ctx], Coroutine[Any, Any, Resp]]:
    """An RPC implementation whose refusals become gRPC status codes."""

    @functools.wraps(fn)
    async def method(self: _Service, request: Req, context: Ctx) -> Resp:
        try:
            return await fn(self, request)
        except Exception as exc:
            err = _refusal(exc, fn.__name__)
        await context.abort(err.code, _bounded(err.message))
        raise AssertionError("context.abort returned")  # pragma: no cover

    return method


def _rpc_stream(
    fn: Callable[[_Service, AsyncIterator[Req]], AsyncIterator[Resp]],
) -> Callable[[_Service, AsyncIterator[Req], Ctx], AsyncIterator[Resp]]:
    """A stream-stream RPC implementation whose refusals become gRPC status
    codes, as :func:`_rpc` does for the unary ones."""

    @functools.wraps(fn)
    async def method(
        self: _Service, requests: AsyncIterator[Req], context: Ctx
    ) -> AsyncIterator[Resp]:
        try:
            async for out in fn(self, requests):
                yield out
            return
        except Exception as exc:
            err = _refusal(exc, fn.__name__)
        await context.abort(err.code, _bounded(err.message))

    return method


class _Service(pb_grpc.ManagementServicer):
    """The RPC implementations (the generated servicer's methods); one per server."""

    def __init__(self, server: ManagementServer) -> None:
        self.server = server
        self.daemon: Daemon = server.daemon

    # -- helpers -------------------------------------------------------------

    @property
    def role(self) -> str:
        return "modem" if isinstance(self.daemon, ModemDaemon) else "router"

    def _modem(self, rpc: str) -> ModemDaemon:
        if not isinstance(self.daemon, ModemDaemon):
            raise _precondition(f"{rpc} is a modem operation; this daemon is a router")
        return self.daemon

    def _router(self, rpc: str) -> RouterDaemon:
        if not isinstance(self.daemon, RouterDaemon):
            raise _precondition(f"{rpc} is a router operation; this daemon is a modem")
        return self.daemon

    def _check_session(self, session_id: str | None) -> None:
        """NOT_FOUND for an unknown id; FAILED_PRECONDITION if none is up.
        (The sessions' states only: a snapshot of each would count its
        destinations, on every write call.)"""
        states = self.daemon.session_states()
        if session_id is not None:
            if session_id not in states:
                known = ", ".join(states) or "none"
                raise _not_found(f"session_id: no session {session_id} (sessions: {known})")
            return
        if "in-session" not in states.values():
            raise _precondition("no session is up")

    def _session_of(self, key: bytes, session_id: str | None) -> str:
        """The session that carries destination ``key`` (looked up by key in
        each session, not by a walk through the destinations)."""
        self._check_session(session_id)
        d = self.daemon
        ids = [session_id] if session_id is not None else list(d.session_states())
        for sid in ids:
            if d.destination(sid, key) is not None:
                return sid
        # One with identity items (RFC 8703) behind that MAC: its keys only.
        for sid, slots in d.destination_keys(session_id):
            if any(isinstance(k, DestKey) and k.mac == key for k in slots):
                return sid
        where = f" in session {session_id}" if session_id is not None else ""
        raise _not_found(f"mac: no destination {format_mac(key)}{where}")

    def _single_session(self, session_id: str | None) -> str:
        self._check_session(session_id)
        if session_id is not None:
            return session_id
        ids = [i for i, st in self.daemon.session_states().items() if st == "in-session"]
        if len(ids) == 1:
            return ids[0]
        up = [s for s in self.daemon.sessions() if s.state == "in-session"]
        if len(up) > 1:
            raise _precondition(
                f"session_id: {len(up)} sessions are up; say which: "
                + ", ".join(f"{s.id} ({s.peer})" for s in up)
            )
        return up[0].id

    # -- read ----------------------------------------------------------------

    @_rpc
    async def GetInfo(self, req: pb.GetInfoRequest) -> pb.DaemonInfo:
        d = self.daemon
        now = time.time()
        sessions = d.sessions()
        up = [s for s in sessions if s.state == "in-session"]
        # A configured peer that is not in session (static, connect target,
        # discovered modem) degrades a router even without any session.
        down = (
            [p for p in d.peers() if p.state != "in-session"] if isinstance(d, RouterDaemon) else []
        )
        if self.server.stopping:
            health, detail = pb.HEALTH_STOPPING, "shutting down"
        elif down:
            health = pb.HEALTH_DEGRADED
            detail = ", ".join(
                f"peer {p.peer} {p.state}" + (f" ({p.failure})" if p.failure else "") for p in down
            )
        elif not sessions:
            peer = "router" if self.role == "modem" else "modem"
            health, detail = pb.HEALTH_IDLE, f"no session; waiting for a {peer}"
        elif len(up) == len(sessions):
            health, detail = pb.HEALTH_OK, f"{len(up)} session(s) up"
        else:
            health = pb.HEALTH_DEGRADED
            detail = ", ".join(f"session {s.id} {s.state}" for s in sessions if s not in up)
        if isinstance(d, ModemDaemon):
            peer_type = d.mcfg.modem.peer_type
            listening = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in d.listening]
        else:
            peer_type = d.rcfg.router.peer_type
            listening = []
        return pb.DaemonInfo(
            role=convert.role_to_pb(self.role),
            version=__version__,
            pid=os.getpid(),
            started_at=d.started_at,
            uptime=max(0.0, now - d.started_at),
            health=health,
            health_detail=detail,
            sessions=len(sessions),
            sessions_up=len(up),
            destinations=sum(s.destinations for s in sessions),
            tls=d.use_tls,
            peer_type=peer_type,
            listening=listening,
            watch_streams=len(self.server.watching),
        )

    @_rpc
    async def ListSessions(self, req: pb.ListSessionsRequest) -> pb.ListSessionsResponse:
        now = time.time()
        sessions = sorted(self.daemon.sessions(), key=lambda s: int(s.id) if s.id.isdigit() else 0)
        names = self.daemon.extension_names
        return pb.ListSessionsResponse(
            sessions=[convert.session_to_pb(s, now, names) for s in sessions]
        )

    @_rpc
    async def ListDestinations(
        self, req: pb.ListDestinationsRequest
    ) -> pb.ListDestinationsResponse:
        d = self.daemon
        sid: str | None = _optional(req, "session_id")
        if sid is not None and sid not in d.session_states():
            raise _not_found(f"session_id: no session {sid}")
        limit, after, keep = _page_request(req)
        filters = f"{sid}\0{req.mac}"
        now = time.monotonic()
        listings = self.server.listings
        page = listings.take(req.page_token, filters, limit, now) if req.page_token else None
        modem_table = sid is None and isinstance(d, ModemDaemon)
        if page is None:
            groups = d.destination_keys(sid)
            if modem_table:
                assert isinstance(d, ModemDaemon)
                # The modem's own table: destinations no router session carries yet.
                carried: set[bytes | DestKey] = set()
                for _, slots in groups:
                    carried.update(slots)
                groups.append(
                    (
                        "",
                        [
                            k
                            for k in d.known_destinations()
                            if (k if k.ident else k.mac) not in carried
                        ],
                    )
                )
            keeps = keep.keeps if keep else None
            # A first page orders only what it gives (a client may want no
            # more, as top does); the second orders the rest once, and
            # later pages take theirs from that order (ListingCache).
            if req.page_token:
                page = paging.ordered_page(groups, limit, after, keeps)
            else:
                page = paging.select_page(groups, limit, after, keeps)
        flaps = d.destination_flaps
        table: dict[DestKey, Metrics] | None = None

        def fetch(s: str, slot: bytes | DestKey) -> pb.Destination | None:
            nonlocal table
            if s == "" and modem_table:
                assert isinstance(d, ModemDaemon)
                if table is None:
                    table = d.known_destinations()
                key = slot if isinstance(slot, DestKey) else DestKey(slot)
                metrics = table.get(key)
                if metrics is None:
                    return None
                return pb.Destination(
                    session_id="",
                    mac=key.mac_str,
                    key=str(key),
                    metrics=convert.metrics_to_pb(metrics),
                )
            info = d.destination(s, slot)
            if info is None:
                return None
            return convert.destination_to_pb(s, info, flaps(s, info.key))

        resp, used = _page_response(page, fetch)
        listings.keep_rest(page, used, resp.next_page_token, filters, now)
        return resp

    @_rpc
    async def GetSessionMetrics(
        self, req: pb.GetSessionMetricsRequest
    ) -> pb.GetSessionMetricsResponse:
        sid: str | None = _optional(req, "session_id")
        sessions = self.daemon.sessions()
        if sid is not None:
            sessions = [s for s in sessions if s.id == sid]
            if not sessions:
                raise _not_found(f"session_id: no session {sid}")
        out = pb.GetSessionMetricsResponse(
            sessions=[
                pb.SessionMetrics(
                    session_id=s.id, peer=s.peer, metrics=convert.metrics_to_pb(s.session_metrics)
                )
                for s in sessions
            ]
        )
        if isinstance(self.daemon, ModemDaemon):
            out.defaults.CopyFrom(convert.metrics_to_pb(self.daemon.session_metrics))
        return out

    # -- write: modem ----------------------------------------------------------

    @_rpc
    async def AddDestination(self, req: pb.AddDestinationRequest) -> pb.AddDestinationResponse:
        modem = self._modem("AddDestination")
        key = _mac(req.mac)
        metrics = _metrics(req.metrics)
        addresses = _addresses(list(req.addresses), "addresses")
        ext = _ext_values(modem, req, add=True)
        await modem.add_destination(key, metrics, addresses=addresses, extra=ext.items())
        log.info("api: destination %s added", format_mac(key))
        return pb.AddDestinationResponse()

    @_rpc
    async def UpdateDestination(
        self, req: pb.UpdateDestinationRequest
    ) -> pb.UpdateDestinationResponse:
        modem = self._modem("UpdateDestination")
        key = _mac(req.mac)
        metrics = _metrics(req.metrics)
        add = _addresses(list(req.add_addresses), "add_addresses")
        drop = _addresses(list(req.drop_addresses), "drop_addresses")
        ext = _ext_values(modem, req, add=False)
        only_id = set(ext.extensions_needed()) <= {"link_id"}
        if metrics.is_empty() and not add and not drop and only_id:
            raise _invalid("metrics: nothing to update (give metrics, addresses or ext)")
        await modem.update_destination(key, metrics, add=add, drop=drop, extra=ext.items())
        log.info("api: destination %s updated", format_mac(key))
        return pb.UpdateDestinationResponse()

    @_rpc
    async def DropDestination(self, req: pb.DropDestinationRequest) -> pb.DropDestinationResponse:
        key = _mac(req.mac)
        sid: str | None = _optional(req, "session_id")
        if isinstance(self.daemon, ModemDaemon):
            if sid is not None:
                raise _invalid("session_id: a modem drops a destination from every session")
            ident = _ext_values(self.daemon, req, add=False).identity()
            await self.daemon.drop_destination(key, extra=list(ident))
        else:
            sid = self._session_of(key, sid)
            await self.daemon.drop_destination(key, session_id=sid)
        log.info("api: destination %s dropped", format_mac(key))
        return pb.DropDestinationResponse()

    @_rpc
    async def ReleaseDestination(
        self, req: pb.ReleaseDestinationRequest
    ) -> pb.ReleaseDestinationResponse:
        modem = self._modem("ReleaseDestination")
        key = _mac(req.mac)
        simulated = modem.release_destination(key)
        log.info(
            "api: destination %s released%s",
            format_mac(key),
            "" if simulated else " (the simulator is off)",
        )
        return pb.ReleaseDestinationResponse(simulated=simulated)

    @_rpc
    async def UpdateSessionMetrics(
        self, req: pb.UpdateSessionMetricsRequest
    ) -> pb.UpdateSessionMetricsResponse:
        modem = self._modem("UpdateSessionMetrics")
        metrics = _metrics(req.metrics)
        if metrics.is_empty():
            raise _invalid("metrics: nothing to update")
        await modem.update_session_metrics(metrics)
        log.info("api: session metrics updated")
        return pb.UpdateSessionMetricsResponse()

    # -- write: router ---------------------------------------------------------

    @_rpc
    async def RequestLinkCharacteristics(
        self, req: pb.RequestLinkCharacteristicsRequest
    ) -> pb.RequestLinkCharacteristicsResponse:
        router = self._router("RequestLinkCharacteristics")
        key = _mac(req.mac)
        cdrr: int | None = _optional(req, "cdrr")
        cdrt: int | None = _optional(req, "cdrt")
        latency: int | None = _optional(req, "latency")
        if cdrr is None and cdrt is None and latency is None:
            raise _invalid("cdrr: give at least one of cdrr, cdrt, latency")
        _metrics(pb.Metrics(cdrr=cdrr, cdrt=cdrt, latency=latency), "request")
        if req.wait_ms > MAX_WAIT_MS:
            raise _invalid(f"wait_ms: {req.wait_ms} exceeds {MAX_WAIT_MS}")
        sid = self._session_of(key, _optional(req, "session_id"))

        async def send() -> None:
            await router.request_link_characteristics(
                key, cdrr=cdrr, cdrt=cdrt, latency=latency, session_id=sid
            )
            log.info("api: link characteristics request for %s", format_mac(key))

        got = await _send_then_wait(router, req.wait_ms, send, _link_answer(sid, key))
        answer = got.event if isinstance(got, SessionEvent) else None
        assert answer is None or isinstance(answer, LinkCharacteristicsResponse)
        out = pb.RequestLinkCharacteristicsResponse(session_id=sid)
        if answer is not None:
            out.answered = True
            out.status = answer.status
            out.status_name = status_name(answer.status)
            out.metrics.CopyFrom(convert.metrics_to_pb(answer.metrics))
            out.text = answer.text
        return out

    @_rpc
    async def AnnounceDestination(
        self, req: pb.AnnounceDestinationRequest
    ) -> pb.AnnounceDestinationResponse:
        router = self._router("AnnounceDestination")
        key = _mac(req.mac)
        addresses = _addresses(list(req.addresses), "addresses", subnets=False)
        if req.wait_ms > MAX_WAIT_MS:
            raise _invalid(f"wait_ms: {req.wait_ms} exceeds {MAX_WAIT_MS}")
        sid = self._single_session(_optional(req, "session_id"))

        async def send() -> None:
            await router.announce_destination(key, addresses=addresses, session_id=sid)
            log.info("api: destination announce for %s", format_mac(key))

        got = await _send_then_wait(router, req.wait_ms, send, _announce_answer(sid, key))
        answer = got.event if isinstance(got, SessionEvent) else None
        assert answer is None or isinstance(answer, DestinationUp | DestinationRefused)
        out = pb.AnnounceDestinationResponse(session_id=sid)
        if answer is not None:
            out.answered = True
            out.status = answer.status if isinstance(answer, DestinationRefused) else 0
            out.status_name = status_name(out.status)
            if isinstance(answer, DestinationRefused):
                out.text = answer.text
        return out

    @_rpc
    async def ListPendingDestinations(
        self, req: pb.ListDestinationsRequest
    ) -> pb.ListDestinationsResponse:
        router = self._router("ListPendingDestinations")
        sid: str | None = _optional(req, "session_id")
        if sid is not None:
            self._check_session(sid)
        limit, after, keep = _page_request(req)
        pending: dict[tuple[str, bytes | DestKey], DestinationInfo] = {}
        for s, info in router.pending_destinations(sid):
            pending[(s, info.mac if not info.ident else info.key)] = info
        groups: dict[str, list[bytes | DestKey]] = {}
        for s, slot in pending:
            groups.setdefault(s, []).append(slot)

        def fetch(s: str, slot: bytes | DestKey) -> pb.Destination | None:
            info = pending.get((s, slot))
            if info is None:
                return None
            return convert.destination_to_pb(s, info, router.destination_flaps(s, info.key))

        page = paging.select_page(groups.items(), limit, after, keep.keeps if keep else None)
        return _page_response(page, fetch)[0]

    @_rpc
    async def RespondDestinationUp(
        self, req: pb.RespondDestinationUpRequest
    ) -> pb.RespondDestinationUpResponse:
        router = self._router("RespondDestinationUp")
        key = _mac(req.mac)
        sid: str | None = _optional(req, "session_id")
        if sid is not None:
            self._check_session(sid)
        pending = [(s, info) for s, info in router.pending_destinations(sid) if info.mac == key]
        if not pending:
            where = f" in session {sid}" if sid is not None else ""
            raise _not_found(f"mac: no destination {format_mac(key)} awaits an answer{where}")
        if len(pending) > 1:
            raise _precondition(
                f"session_id: {format_mac(key)} awaits an answer in sessions "
                + ", ".join(s for s, _ in pending)
                + "; say which"
            )
        s, info = pending[0]
        await router.respond_destination_up(info.key, req.accept, session_id=s)
        log.info(
            "api: destination %s %s in session %s",
            format_mac(key),
            "accepted" if req.accept else "refused (Not Interested)",
            s,
        )
        return pb.RespondDestinationUpResponse()

    @_rpc
    async def ConnectStatic(self, req: pb.ConnectStaticRequest) -> pb.ConnectStaticResponse:
        router = self._router("ConnectStatic")
        addr = _peer_address(req.host, req.port)
        port = req.port or None
        tls: bool | None = _optional(req, "tls")
        if tls and not router.use_tls:
            raise _precondition("tls: this router has no TLS configuration ([tls], use_tls)")
        gtsm: bool | None = _optional(req, "gtsm_enforce")
        router.connect_static(str(addr), port, tls=tls, gtsm_enforce=gtsm, origin="api")
        log.info(
            "api: static peer %s port %s added%s",
            addr,
            port or "default",
            "" if gtsm is None else f" (gtsm_enforce {str(gtsm).lower()})",
        )
        return pb.ConnectStaticResponse()

    @_rpc
    async def ListPeers(self, req: pb.ListPeersRequest) -> pb.ListPeersResponse:
        router = self._router("ListPeers")
        return pb.ListPeersResponse(peers=[convert.peer_to_pb(p) for p in router.peers()])

    @_rpc
    async def DisconnectPeer(self, req: pb.DisconnectPeerRequest) -> pb.DisconnectPeerResponse:
        router = self._router("DisconnectPeer")
        addr = _peer_address(req.host, req.port)
        before = await router.disconnect(str(addr), req.port or None)
        log.info("api: peer %s disconnected", before.peer)
        return pb.DisconnectPeerResponse(peer=convert.peer_to_pb(before))

    @_rpc
    async def TerminateSession(
        self, req: pb.TerminateSessionRequest
    ) -> pb.TerminateSessionResponse:
        if not req.session_id:
            raise _invalid("session_id: required")
        self._check_session(req.session_id)
        status = req.status if req.HasField("status") else 255
        if status > 255:
            raise _invalid(f"status: {status} out of range 0..255")
        await self.daemon.terminate_session(req.session_id, status, req.text)
        log.info("api: session %s terminated", req.session_id)
        return pb.TerminateSessionResponse()

    # -- events ----------------------------------------------------------------

    async def WatchEvents(
        self, req: pb.WatchEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        # Written with context.write, not yielded: a write that fails because
        # the client went away while the stream was blocked (a client that
        # never read fills the HTTP/2 window, then cancels) fails here, where
        # it is the normal end of a stream, instead of in grpc's generator
        # driver, which logged it as an ERROR with a traceback per stream.
        sid: str | None = _optional(req, "session_id")
        server = self.server
        limit = server.config.max_watch_streams
        if len(server.watching) >= limit:
            self.daemon.count_bound_refusal("max_watch_streams")
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{limit} WatchEvents streams are open already (api.max_watch_streams); "
                "close one (each dlepctl watch or top holds one)",
            )
        names = self.daemon.extension_names
        events = server.events
        sub = self.daemon.subscribe(server.watch_queue)
        server.watching.add(sub)
        try:
            async for ev in sub:
                if (
                    sid is not None
                    and not isinstance(ev, Lagged)
                    and getattr(ev, "session_id", None) != sid
                ):
                    continue
                msg = events.convert(ev, names)
                try:
                    await context.write(msg)
                except Exception as exc:  # grpc's error types for a gone client are internal
                    # A failed write means the stream is gone (the client
                    # cancelled or the connection broke): its normal end.
                    log.debug("api: a WatchEvents stream ended: %s: %s", type(exc).__name__, exc)
                    return
        finally:
            server.watching.discard(sub)
            self.daemon.unsubscribe(sub)
            if not server.watching:
                events.clear()  # nobody reads them any more

    # -- feed (modem) ----------------------------------------------------------

    @_rpc_stream
    async def FeedDestinations(
        self, requests: AsyncIterator[pb.FeedBatch]
    ) -> AsyncIterator[pb.FeedBatchResult]:
        modem = self._modem("FeedDestinations")
        limit = modem.mcfg.modem.feed.max_batch
        n = 0
        async for batch in requests:
            records = [convert.feed_record_from_pb(r) for r in batch.records]
            results = await modem.apply_destination_changes(records, max_batch=limit)
            ok = all(r.ok for r in results)
            log.info(
                "api: feed batch %d: %d record(s) %s",
                n,
                len(results),
                "applied" if ok else "rejected",
            )
            yield pb.FeedBatchResult(
                batch=n,
                ok=ok,
                results=[
                    pb.FeedRecordResult(index=r.index, id=r.id or "", ok=r.ok, error=r.error)
                    for r in results
                ],
            )
            n += 1


def _link_answer(sid: str, key: bytes) -> Callable[[DaemonEvent], bool]:
    """Matches the modem's Link Characteristics Response for ``key``."""

    def match(ev: DaemonEvent) -> bool:
        return (
            isinstance(ev, SessionEvent)
            and ev.session_id == sid
            and isinstance(ev.event, LinkCharacteristicsResponse)
            and ev.event.mac == key
        )

    return match


def _announce_answer(sid: str, key: bytes) -> Callable[[DaemonEvent], bool]:
    """Matches the modem's answer to our Destination Announce for ``key``:
    the destination came up (Success) or was refused (its status)."""

    def match(ev: DaemonEvent) -> bool:
        if not isinstance(ev, SessionEvent) or ev.session_id != sid:
            return False
        e = ev.event
        if isinstance(e, DestinationUp):
            return e.announced and e.info.mac == key
        return isinstance(e, DestinationRefused) and e.mac == key

    return match


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


async def _add_standard_services(server: grpc.aio.Server) -> Any:
    """The standard gRPC health service (``grpc.health.v1.Health``: SERVING
    for ``""`` and :data:`SERVICE_NAME` while the API runs) and server
    reflection, so generic tools (grpcurl, grpc_health_probe, a container
    orchestrator's probe) work without our ``.proto``. Returns the health
    servicer; None when the packages are missing (the API works without)."""
    try:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
        from grpc_reflection.v1alpha import reflection
    except ImportError as exc:  # dependencies of the package: only a broken install lacks them
        log.warning("management API: no health or reflection service (%s)", exc)
        return None
    # health.aio (the asyncio servicer) is re-exported at run time, not in its stubs.
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", SERVICE_NAME):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return servicer


class EventCache:
    """Each daemon event converted to protobuf once for every WatchEvents
    stream.

    Every stream's subscription yields the same event object, so the first
    stream that reads it converts it and the others take that message (the
    same object: nothing mutates a message once it is sent). With N streams
    an event costs one conversion, not N. The last ``size`` conversions are
    kept (by the event's identity; the entry holds the event, so the
    identity is not reused meanwhile): a stream that reads an event later
    than that converts it again, as does a stream's own :class:`Lagged` or an
    update merged for a lagging stream (events of that stream alone).
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = max(1, size)
        self._done: OrderedDict[int, tuple[DaemonEvent, pb.Event]] = OrderedDict()
        #: Events converted, since the start.
        self.conversions = 0

    def clear(self) -> None:
        """Forget the messages kept (no stream is open)."""
        self._done.clear()

    def convert(self, ev: DaemonEvent, names: Mapping[int, str] | None = None) -> pb.Event:
        """The message of ``ev`` (converted now if no stream did yet)."""
        hit = self._done.get(id(ev))
        if hit is not None and hit[0] is ev:
            return hit[1]
        msg = convert.event_to_pb(ev, names=names)
        self.conversions += 1
        if not isinstance(ev, Lagged):  # each stream's own: never shared
            done = self._done
            done[id(ev)] = (ev, msg)
            if len(done) > self.size:
                done.popitem(last=False)
        return msg


class ManagementServer:
    """Serves the management API of ``daemon`` on a Unix socket (mode 0600)
    and, if ``api.tcp_listen`` is set, on TCP with mutual TLS.

    ``config`` None = defaults (the role's default socket, no TCP). The
    socket's directory must exist; a stale socket file left by a daemon that
    died is replaced, a live one is not (:class:`ApiSetupError`).
    """

    def __init__(
        self,
        daemon: Daemon,
        config: ApiConfig | None = None,
        *,
        socket_path: str | Path | None = None,
    ) -> None:
        from ..config import ApiConfig

        self.daemon = daemon
        self.config = config if config is not None else ApiConfig()
        role = "modem" if isinstance(daemon, ModemDaemon) else "router"
        chosen = socket_path if socket_path is not None else self.config.socket
        self.socket_path: Path = Path(chosen) if chosen is not None else default_socket_path(role)
        #: False when the socket is the role's default path (not configured).
        self.socket_configured = chosen is not None
        self.watch_queue = self.config.watch_queue
        #: TCP port actually bound (``tcp_listen`` with port 0 picks one), or None.
        self.tcp_port: int | None = None
        self.stopping = False
        self._server: grpc.aio.Server | None = None
        self._health: Any = None  # grpc_health's servicer (untyped)
        self._socket_ino: int | None = None
        #: The subscriptions of the WatchEvents streams now open.
        self.watching: set[Subscription] = set()
        #: The events those streams read, each converted once for all of them.
        self.events = EventCache()
        #: The order of listings in progress, kept between their pages.
        self.listings = paging.ListingCache()

    @property
    def watchers(self) -> list[Subscription]:
        """The subscriptions of the WatchEvents streams now open (a copy)."""
        return list(self.watching)

    async def start(self) -> None:
        """Bind and serve. Raises :class:`ApiSetupError` with the reason."""
        if self._server is not None:
            return
        path = self.socket_path
        self._prepare_socket_path(path)
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        # The generated grpc module has no type annotations.
        pb_grpc.add_ManagementServicer_to_server(_Service(self), server)  # type: ignore[no-untyped-call]
        self._health = await _add_standard_services(server)
        old = os.umask(0o177)  # the socket file is created 0600, never wider
        try:
            bound = server.add_insecure_port(f"unix:{path}")
        except RuntimeError as exc:  # lost a race with another daemon binding it
            raise SocketInUseError(f"management API: cannot listen on {path}: {exc}") from None
        finally:
            os.umask(old)
        if not bound:
            raise SocketInUseError(f"management API: cannot listen on {path}")
        try:
            os.chmod(path, 0o600)
            self._socket_ino = os.stat(path).st_ino
            addr = self.config.tcp_address()
            if addr is not None:
                self.tcp_port = self._add_tcp(server, *addr)
            await server.start()
        except BaseException:
            await server.stop(None)
            self._remove_socket()
            raise
        self._server = server
        log.info(
            "management API on unix:%s%s",
            path,
            f" and {self.config.tcp_listen} (mutual TLS, port {self.tcp_port})"
            if self.tcp_port is not None
            else "",
        )

    def _prepare_socket_path(self, path: Path) -> None:
        if len(os.fsencode(path)) > _MAX_UNIX_PATH:
            raise ApiSetupError(
                f"management API socket {path}: path too long for a Unix socket "
                f"(max {_MAX_UNIX_PATH} bytes); set api.socket to a shorter path"
            )
        parent = path.parent
        if parent == private_tmp_dir():
            try:
                ensure_private_dir(parent)
            except PermissionError as exc:
                raise ApiSetupError(f"management API socket {path}: {exc}") from None
        if not parent.is_dir():
            raise ApiSetupError(
                f"management API socket {path}: directory {parent} does not exist "
                "(create it, or set api.socket to a path in an existing directory)"
            )
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ApiSetupError(
                f"management API socket {path}: exists and is not a socket; "
                "not removing it (set api.socket to another path)"
            )
        if st.st_uid != os.geteuid():
            # Someone else's socket: never removed, never served beside.
            raise ApiSetupError(
                f"management API socket {path}: belongs to uid {st.st_uid}, not to us "
                f"({os.geteuid()}); not removing it (set api.socket to another path)"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(str(path))
        except OSError:
            pass  # nobody listening: a stale file from a daemon that died
        else:
            raise SocketInUseError(
                f"management API socket {path}: another process is serving on it "
                "(is a daemon already running?)"
            )
        finally:
            probe.close()
        try:
            path.unlink()
        except OSError as exc:
            raise ApiSetupError(
                f"management API socket {path}: cannot remove the stale socket: "
                f"{exc.strerror or exc}"
            ) from None
        log.info("removed stale management API socket %s", path)

    def _add_tcp(self, server: grpc.aio.Server, host: str, port: int) -> int:
        cfg = self.config
        assert cfg.tls_cert is not None and cfg.tls_key is not None
        assert cfg.tls_client_ca is not None
        try:
            cert = cfg.tls_cert.read_bytes()
            key = cfg.tls_key.read_bytes()
            ca = cfg.tls_client_ca.read_bytes()
        except OSError as exc:
            raise ApiSetupError(
                f"management API TLS: cannot read {exc.filename}: {exc.strerror}"
            ) from None
        creds = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            bound = server.add_secure_port(target, creds)
        except RuntimeError as exc:
            raise ApiSetupError(f"management API: cannot listen on {target}: {exc}") from None
        if not bound:
            raise ApiSetupError(f"management API: cannot listen on {target}")
        return bound

    async def stop(self, grace: float = 1.0) -> None:
        """Stop serving (open streams end after ``grace`` seconds) and
        remove the socket file."""
        self.stopping = True
        server, self._server = self._server, None
        if self._health is not None:
            # A health check during the grace period says NOT_SERVING.
            await self._health.enter_graceful_shutdown()
            self._health = None
        if server is not None:
            for sub in list(self.watching):
                self.daemon.unsubscribe(sub)  # ends the WatchEvents streams
            await server.stop(grace)
            self._remove_socket()
            log.info("management API stopped")

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            if self._socket_ino is not None and os.stat(self.socket_path).st_ino == (
                self._socket_ino
            ):
                self.socket_path.unlink()
        self._socket_ino = None

    async def __aenter__(self) -> ManagementServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_api_server(daemon: Daemon) -> ManagementServer | None:
    """Start the management API as ``daemon.cfg.api`` says.

    Returns None if ``api.enabled`` is false, or if ``api.socket`` is not set
    and another daemon of the same role already serves on the default path
    (logged as a warning: this daemon then runs without an API, so a second
    daemon on one machine still starts). Raises :class:`ApiSetupError` for
    everything else, including a configured socket that is in use.
    """
    cfg: ApiConfig = daemon.cfg.api
    if not cfg.enabled:
        return None
    server = ManagementServer(daemon, cfg)
    try:
        await server.start()
    except SocketInUseError as exc:
        if server.socket_configured:
            raise
        log.warning("%s; running without the management API (set api.socket)", exc)
        return None
    return server
