"""A small asyncio client of the management API (what ``dlepctl`` uses).

::

    async with ManagementClient.unix("/run/user/1000/dlep-router.sock") as c:
        for s in await c.list_sessions():
            print(s.id, s.peer, s.state)
        async for ev in c.watch():
            print(ev)

Results are the protobuf messages of ``proto/dlep/v1/management.proto``
(typed, see ``dlep.api._pb.management_pb2``); :func:`dlep.api.convert.to_dict`
turns any of them into plain JSON-able dicts. Failures raise
:class:`ApiError` (with the gRPC status code and the daemon's message), or
:class:`DaemonUnreachable` when nothing answers at the address.

The gRPC channel is opened on first use, in the event loop that makes the
call, so a client can be built outside any loop and used inside one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from ..fsm import Metrics
from . import convert
from ._pb import management_pb2 as pb
from .paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

__all__ = ["MAX_PAGE_SIZE", "ApiError", "DaemonUnreachable", "ManagementClient"]

_SERVICE = "/dlep.v1.Management/"
T = TypeVar("T", bound=Message)


class ApiError(Exception):
    """The daemon answered with an error status.

    Attributes:
        code: the ``grpc.StatusCode`` (NOT_FOUND, INVALID_ARGUMENT, ...).
        details: the daemon's message (names the field that was wrong).
        target: the address that was called.
    """

    def __init__(self, code: grpc.StatusCode, details: str, target: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.target = target

    @property
    def code_name(self) -> str:
        """``"NOT_FOUND"`` etc."""
        return str(self.code.name)


class DaemonUnreachable(ApiError):
    """Nothing answers at the address (daemon not running, wrong socket,
    TLS handshake refused)."""


class ManagementClient:
    """Client of one daemon's management API.

    Build with :meth:`unix` or :meth:`tcp` (or give a gRPC ``target`` and
    optional channel credentials). ``timeout`` bounds every unary call.
    """

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = None,
        timeout: float = 10.0,
        display: str | None = None,
    ) -> None:
        self.target = target
        #: How the address is shown in error messages.
        self.display = display or target
        self.timeout = timeout
        self._credentials = credentials
        self._server_name = server_name
        self._channel: grpc.aio.Channel | None = None

    @classmethod
    def unix(cls, path: str | Path, *, timeout: float = 10.0) -> ManagementClient:
        """Client of the daemon serving on the Unix socket ``path``."""
        p = Path(path).expanduser().absolute()
        return cls(f"unix:{p}", timeout=timeout, display=str(p))

    @classmethod
    def tcp(
        cls,
        address: str,
        *,
        cert: str | Path,
        key: str | Path,
        ca: str | Path,
        server_name: str | None = None,
        timeout: float = 10.0,
    ) -> ManagementClient:
        """Client of a TCP listener (``"host:port"``), with our client
        certificate ``cert``/``key`` and the ``ca`` that signed the daemon's."""
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(ca).read_bytes(),
            private_key=Path(key).read_bytes(),
            certificate_chain=Path(cert).read_bytes(),
        )
        return cls(address, credentials=creds, server_name=server_name, timeout=timeout)

    # -- channel -------------------------------------------------------------

    def _chan(self) -> grpc.aio.Channel:
        if self._channel is None:
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(self.target)
            else:
                opts = []
                if self._server_name:
                    opts.append(("grpc.ssl_target_name_override", self._server_name))
                self._channel = grpc.aio.secure_channel(
                    self.target, self._credentials, options=opts
                )
        return self._channel

    async def close(self) -> None:
        """Close the channel (a later call opens a new one)."""
        ch, self._channel = self._channel, None
        if ch is not None:
            await ch.close(None)

    async def __aenter__(self) -> ManagementClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _error(self, exc: grpc.aio.AioRpcError) -> ApiError:
        code = exc.code()
        details = exc.details() or code.name
        if code is grpc.StatusCode.UNAVAILABLE:
            return DaemonUnreachable(code, details, self.display)
        return ApiError(code, details, self.display)

    async def _unary(
        self,
        method: str,
        request: Message,
        response_type: type[T],
        *,
        timeout: float | None = None,
    ) -> T:
        call = self._chan().unary_unary(
            _SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            out = await call(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        assert isinstance(out, response_type)
        return out

    # -- read ----------------------------------------------------------------

    async def get_info(self) -> pb.DaemonInfo:
        """Role, version, uptime, health."""
        return await self._unary("GetInfo", pb.GetInfoRequest(), pb.DaemonInfo)

    async def list_sessions(self) -> list[pb.Session]:
        """Every session with its counters."""
        r = await self._unary("ListSessions", pb.ListSessionsRequest(), pb.ListSessionsResponse)
        return list(r.sessions)

    async def list_destinations(
        self, session_id: str | None = None, *, mac: str | None = None
    ) -> list[pb.Destination]:
        """Destinations of one session (or all), every page: the daemon
        answers a page at a time (1000 destinations here: a page costs the
        daemon's event loop a few tens of milliseconds, which its sessions
        wait for, where 10,000 cost a few hundred) and this follows the page
        tokens. ``mac``: only the destinations
        with this MAC, or the one with this key (``MAC#hex``)."""
        return [d async for d in self.iter_destinations(session_id, mac=mac)]

    async def iter_destinations(
        self,
        session_id: str | None = None,
        *,
        mac: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        method: str = "ListDestinations",
    ) -> AsyncIterator[pb.Destination]:
        """The destinations of one session (or all), fetched ``page_size``
        at a time (ordered by session, then key), as they arrive."""
        token = ""
        seen: set[str] = set()
        while True:
            r = await self._unary(
                method,
                pb.ListDestinationsRequest(
                    session_id=session_id, mac=mac or "", page_size=page_size, page_token=token
                ),
                pb.ListDestinationsResponse,
            )
            for d in r.destinations:
                yield d
            token = r.next_page_token
            # A token never comes twice from a daemon that keeps its order;
            # stopping on one keeps a confused daemon from looping us.
            if not token or token in seen:
                return
            seen.add(token)

    async def first_destinations(
        self, limit: int, session_id: str | None = None
    ) -> tuple[list[pb.Destination], int]:
        """The first ``limit`` destinations (by session, then key; at most
        :data:`MAX_PAGE_SIZE`) and how many there are in all: one call,
        whose cost on the daemon does not grow with what is left out."""
        r = await self._unary(
            "ListDestinations",
            pb.ListDestinationsRequest(
                session_id=session_id, page_size=max(1, min(limit, MAX_PAGE_SIZE))
            ),
            pb.ListDestinationsResponse,
        )
        return list(r.destinations), max(r.total, len(r.destinations))

    async def get_session_metrics(
        self, session_id: str | None = None
    ) -> pb.GetSessionMetricsResponse:
        """Session-wide metrics per session (and the modem's defaults)."""
        return await self._unary(
            "GetSessionMetrics",
            pb.GetSessionMetricsRequest(session_id=session_id),
            pb.GetSessionMetricsResponse,
        )

    # -- write: modem ----------------------------------------------------------

    async def add_destination(
        self, mac: str, metrics: Metrics | None = None, *, addresses: Iterable[str] = ()
    ) -> None:
        """Modem: a new destination (Destination Up to every router)."""
        await self._unary(
            "AddDestination",
            pb.AddDestinationRequest(
                mac=mac, metrics=_pb_metrics(metrics), addresses=list(addresses)
            ),
            pb.AddDestinationResponse,
        )

    async def update_destination(
        self,
        mac: str,
        metrics: Metrics | None = None,
        *,
        add: Iterable[str] = (),
        drop: Iterable[str] = (),
    ) -> None:
        """Modem: new metrics / address changes (Destination Update)."""
        await self._unary(
            "UpdateDestination",
            pb.UpdateDestinationRequest(
                mac=mac,
                metrics=_pb_metrics(metrics),
                add_addresses=list(add),
                drop_addresses=list(drop),
            ),
            pb.UpdateDestinationResponse,
        )

    async def drop_destination(self, mac: str, *, session_id: str | None = None) -> None:
        """Modem: the destination is gone; router: we no longer want it."""
        await self._unary(
            "DropDestination",
            pb.DropDestinationRequest(mac=mac, session_id=session_id),
            pb.DropDestinationResponse,
        )

    async def release_destination(self, mac: str) -> bool:
        """Modem: hand a destination set by hand back to the simulator;
        False if the simulator is off."""
        r = await self._unary(
            "ReleaseDestination",
            pb.ReleaseDestinationRequest(mac=mac),
            pb.ReleaseDestinationResponse,
        )
        return bool(r.simulated)

    async def list_pending_destinations(
        self, session_id: str | None = None
    ) -> list[pb.Destination]:
        """Router: the modem's Destination Ups awaiting our answer
        (``router.auto_accept_destinations = false``), every page."""
        return [
            d async for d in self.iter_destinations(session_id, method="ListPendingDestinations")
        ]

    async def respond_destination_up(
        self, mac: str, accept: bool, *, session_id: str | None = None
    ) -> None:
        """Router: accept (Success) or refuse (Not Interested) a pending Destination Up."""
        await self._unary(
            "RespondDestinationUp",
            pb.RespondDestinationUpRequest(mac=mac, accept=accept, session_id=session_id),
            pb.RespondDestinationUpResponse,
        )

    async def update_session_metrics(self, metrics: Metrics) -> None:
        """Modem: session-wide metrics changed (Session Update)."""
        await self._unary(
            "UpdateSessionMetrics",
            pb.UpdateSessionMetricsRequest(metrics=_pb_metrics(metrics)),
            pb.UpdateSessionMetricsResponse,
        )

    # -- write: router ---------------------------------------------------------

    async def request_link_characteristics(
        self,
        mac: str,
        *,
        cdrr: int | None = None,
        cdrt: int | None = None,
        latency: int | None = None,
        session_id: str | None = None,
        wait_ms: int = 0,
    ) -> pb.RequestLinkCharacteristicsResponse:
        """Router: Link Characteristics Request; with ``wait_ms``, the answer."""
        timeout = max(self.timeout, wait_ms / 1000.0 + 5.0)
        call = self._chan().unary_unary(
            _SERVICE + "RequestLinkCharacteristics",
            request_serializer=pb.RequestLinkCharacteristicsRequest.SerializeToString,
            response_deserializer=pb.RequestLinkCharacteristicsResponse.FromString,
        )
        req = pb.RequestLinkCharacteristicsRequest(
            mac=mac, cdrr=cdrr, cdrt=cdrt, latency=latency, session_id=session_id, wait_ms=wait_ms
        )
        try:
            out = await call(req, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        assert isinstance(out, pb.RequestLinkCharacteristicsResponse)
        return out

    async def announce_destination(
        self,
        mac: str,
        *,
        addresses: Iterable[str] = (),
        session_id: str | None = None,
        wait_ms: int = 0,
    ) -> pb.AnnounceDestinationResponse:
        """Router: Destination Announce; with ``wait_ms``, the modem's answer."""
        req = pb.AnnounceDestinationRequest(
            mac=mac, addresses=list(addresses), session_id=session_id, wait_ms=wait_ms
        )
        return await self._unary(
            "AnnounceDestination",
            req,
            pb.AnnounceDestinationResponse,
            timeout=max(self.timeout, wait_ms / 1000.0 + 5.0),
        )

    async def connect_static(
        self,
        host: str,
        port: int = 0,
        *,
        tls: bool | None = None,
        gtsm_enforce: bool | None = None,
    ) -> None:
        """Router: keep a session with the modem at ``host:port``;
        ``gtsm_enforce`` False accepts its packets whatever their TTL (None:
        the router's default for it)."""
        await self._unary(
            "ConnectStatic",
            pb.ConnectStaticRequest(host=host, port=port, tls=tls, gtsm_enforce=gtsm_enforce),
            pb.ConnectStaticResponse,
        )

    async def list_peers(self) -> list[pb.Peer]:
        """Router: every configured peer, in session or not."""
        r = await self._unary("ListPeers", pb.ListPeersRequest(), pb.ListPeersResponse)
        return list(r.peers)

    async def disconnect_peer(self, host: str, port: int = 0) -> pb.Peer:
        """Router: forget a configured peer (0: any port); returns it as it was."""
        r = await self._unary(
            "DisconnectPeer",
            pb.DisconnectPeerRequest(host=host, port=port),
            pb.DisconnectPeerResponse,
        )
        return r.peer

    async def terminate_session(
        self, session_id: str, *, status: int | None = None, text: str = ""
    ) -> None:
        """End a session (Session Termination); waits until it is closed."""
        await self._unary(
            "TerminateSession",
            pb.TerminateSessionRequest(session_id=session_id, status=status, text=text),
            pb.TerminateSessionResponse,
        )

    # -- events ----------------------------------------------------------------

    async def watch(self, session_id: str | None = None) -> AsyncIterator[pb.Event]:
        """The daemon's events as they happen, until the daemon stops (or the
        caller stops iterating). A ``lagged`` event means the stream fell
        behind and events were dropped."""
        stream = self._chan().unary_stream(
            _SERVICE + "WatchEvents",
            request_serializer=pb.WatchEventsRequest.SerializeToString,
            response_deserializer=pb.Event.FromString,
        )
        call = stream(pb.WatchEventsRequest(session_id=session_id))
        try:
            async for ev in call:
                assert isinstance(ev, pb.Event)
                yield ev
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.CANCELLED:
                return
            raise self._error(exc) from None
        finally:
            call.cancel()

    # -- feed (modem) ------------------------------------------------------------

    async def feed(self, batches: AsyncIterator[pb.FeedBatch]) -> AsyncIterator[pb.FeedBatchResult]:
        """Send ``batches`` on one FeedDestinations stream; yields one result per batch."""
        stream = self._chan().stream_stream(
            _SERVICE + "FeedDestinations",
            request_serializer=pb.FeedBatch.SerializeToString,
            response_deserializer=pb.FeedBatchResult.FromString,
        )
        call = stream(batches)
        try:
            async for result in call:
                assert isinstance(result, pb.FeedBatchResult)
                yield result
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()


def _pb_metrics(m: Metrics | None) -> pb.Metrics:
    return convert.metrics_to_pb(m) if m is not None else pb.Metrics()


def event_kind(ev: pb.Event) -> str:
    """Which event an :class:`Event` message carries (``"destination_up"``...)."""
    kind: Any = ev.WhichOneof("kind")
    return str(kind) if kind else ""
