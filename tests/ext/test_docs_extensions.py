"""Every Python block of docs/extensions.md runs, in order, as written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "extensions.md"


def test_every_python_block_of_extensions_md_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)  # the blocks use repository-relative paths
    monkeypatch.setattr(sys, "path", [str(ROOT / "examples" / "private_extension"), *sys.path])
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "extensions_md"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[python block {i}]", "exec"), namespace)
    assert "not negotiated" in capsys.readouterr().out
