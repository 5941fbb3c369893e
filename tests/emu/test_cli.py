"""``dlepctl emu ...`` hands over to ``dlep-emu status`` before dlepctl parses
its own arguments (no daemon socket is needed), and dlepctl's help says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlep.cli import dlepctl


def test_dlepctl_emu_reads_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gone = tmp_path / "n1.emu.sock"  # no emulator answers: the node is listed without status
    run = {"nodes": {"n1": {"sockets": {"emu": str(gone)}}}}
    (tmp_path / "run.json").write_text(json.dumps(run))
    assert dlepctl.main(["emu", "links", "--run-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n1": {"node": "n1"}}
    assert dlepctl.main(["emu", "--run-dir", str(tmp_path), "--node", "zz"]) == 2
    assert "no node 'zz'" in capsys.readouterr().err


def test_dlepctl_emu_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dlepctl.main(["emu", "--run-dir", str(tmp_path)]) == 3
    assert "run.json" in capsys.readouterr().err


def test_dlepctl_help_names_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        dlepctl.main(["--help"])
    assert "dlepctl emu [summary|links|neighbours|macs|drops]" in capsys.readouterr().out
