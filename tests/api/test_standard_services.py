"""Operations issue, item 5: the management API offers the standard gRPC
health service and server reflection (grpcurl, grpc_health_probe)."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from dlep.api.server import SERVICE_NAME

from .conftest import Live

pytestmark = pytest.mark.timeout(60)


async def test_health_serving_and_reflection_lists_the_service(live: Live) -> None:
    async with grpc.aio.insecure_channel(f"unix:{live.router_sock}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", SERVICE_NAME):
            r = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING, name
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = refl.ServerReflectionInfo(timeout=5)
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        await call.write(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME)
        )
        await call.done_writing()
        listed = await call.read()
        names = {s.name for s in listed.list_services_response.service}
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names
        files = await call.read()
        assert files.file_descriptor_response.file_descriptor_proto  # the .proto, serialised
    # Stopping: health says NOT_SERVING at once (then the socket goes).
    await live.router_api._health.enter_graceful_shutdown()
    async with grpc.aio.insecure_channel(f"unix:{live.router_sock}") as ch:
        r = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert r.status == health_pb2.HealthCheckResponse.NOT_SERVING
