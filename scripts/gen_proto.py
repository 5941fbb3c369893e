#!/usr/bin/env python3
"""Regenerate the gRPC modules of the management API from proto/.

    python scripts/gen_proto.py            # writes src/dlep/api/_pb/
    python scripts/gen_proto.py --out DIR  # writes DIR/ (tests compare the two)

Needs grpcio-tools (in the ``test`` extra, pinned so that the output is the
same byte for byte on every machine). ``make proto`` runs this.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO = "dlep/v1/management.proto"
DEFAULT_OUT = ROOT / "src" / "dlep" / "api" / "_pb"
#: The Python package the generated modules live in.
PACKAGE = "dlep.api._pb"
OUTPUTS = ("management_pb2.py", "management_pb2.pyi", "management_pb2_grpc.py")


def generate(out: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) and fix the imports; returns the files."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        rc = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{PROTO_DIR}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                str(PROTO_DIR / PROTO),
            ]
        )
        if rc != 0:
            raise SystemExit(f"protoc failed with exit code {rc}")
        gen = Path(tmp) / Path(PROTO).parent
        written: list[Path] = []
        for name in OUTPUTS:
            text = (gen / name).read_text()
            # protoc writes imports relative to the proto root ("from dlep.v1
            # import ..."); the modules live in dlep.api._pb instead.
            text = text.replace("from dlep.v1 import ", f"from {PACKAGE} import ")
            dest = out / name
            dest.write_text(text)
            written.append(dest)
    init = out / "__init__.py"
    init.write_text(
        '"""Generated from proto/dlep/v1/management.proto by scripts/gen_proto.py; '
        'do not edit."""\n'
    )
    written.append(init)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = p.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
