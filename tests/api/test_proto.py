"""The generated gRPC modules are current, and the server implements the whole service."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc_tools

from dlep.api import server
from dlep.api._pb import management_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
PB_DIR = ROOT / "src" / "dlep" / "api" / "_pb"
GENERATED = (
    "__init__.py",
    "management_pb2.py",
    "management_pb2.pyi",
    "management_pb2_grpc.py",
)


def test_generated_modules_are_current(tmp_path: Path) -> None:
    out = tmp_path / "pb"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    stale = [
        name for name in GENERATED if (out / name).read_bytes() != (PB_DIR / name).read_bytes()
    ]
    assert not stale, (
        f"src/dlep/api/_pb/{stale} differ from what proto/dlep/v1/management.proto generates "
        f"(grpcio-tools {getattr(grpc_tools, '__version__', '?')}): run `make proto` and commit"
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(GENERATED)


def test_every_rpc_has_a_handler() -> None:
    """The service is the generated servicer with every RPC overridden (an
    RPC left to the base class would answer UNIMPLEMENTED)."""
    from dlep.api._pb import management_pb2_grpc

    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["Management"].methods}
    base = management_pb2_grpc.ManagementServicer
    assert issubclass(server._Service, base)
    assert pb.DESCRIPTOR.services_by_name["Management"].full_name == server.SERVICE_NAME
    for name in methods:
        assert getattr(server._Service, name) is not getattr(base, name), name


def test_generated_grpc_module_imports() -> None:
    from dlep.api._pb import management_pb2_grpc

    assert hasattr(management_pb2_grpc, "ManagementStub")
    assert hasattr(management_pb2_grpc, "add_ManagementServicer_to_server")
