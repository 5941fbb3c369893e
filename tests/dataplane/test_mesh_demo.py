"""The demonstration of the issue, as a test: examples/dataplane/mesh_demo.py
--check builds three namespaces with babeld and DLEP on one radio link,
degrades, restores and breaks that link, and fails unless the DLEP route
metric, the shaping rate (iperf3 within ±15 %) and Babel's path follow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .netns import need_root

pytestmark = [pytest.mark.root, pytest.mark.slow]

DEMO = Path(__file__).resolve().parents[2] / "examples" / "dataplane" / "mesh_demo.py"


@pytest.mark.timeout(400)
def test_mesh_demo_with_babeld() -> None:
    need_root()
    if shutil.which("babeld") is None:
        pytest.skip("needs babeld (Debian package babeld)")
    res = subprocess.run(
        [sys.executable, str(DEMO), "--check"],
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-6000:]
    assert res.stdout.count("ok: ") >= 4, res.stdout
