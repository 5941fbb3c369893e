"""Operations issue, item 5: what a ``pip install`` user gets.

The wheel carries the example configurations and the ``.proto``;
``--print-example-config`` prints them (valid configurations); the manual
pages are generated from the parsers, one per program.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from dlep.cli.examples import EXAMPLES, example_text
from dlep.config import parse_modem_config, parse_router_config

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ("dlep-router", "dlep-modem", "dlepctl", "dlep-emu")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )


@pytest.mark.parametrize("role", ["router", "modem"])
def test_print_example_config(role: str, tmp_path: Path) -> None:
    res = _run("-m", f"dlep.cli.{role}", "--print-example-config")
    assert res.returncode == 0, res.stderr
    assert res.stdout == (ROOT / "examples" / f"{role}.toml").read_text()
    # What it prints is a configuration the daemon accepts.
    (tmp_path / "c.toml").write_text(res.stdout)
    check = _run("-m", f"dlep.cli.{role}", "--config", str(tmp_path / "c.toml"), "--check")
    assert check.returncode == 0 and "OK" in check.stdout, check.stderr
    for name in EXAMPLES[role]:
        assert example_text(name) == (ROOT / "examples" / f"{name}.toml").read_text()
    bad = _run("-m", f"dlep.cli.{role}", "--print-example-config", "nope")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    helptext = _run("-m", f"dlep.cli.{role}", "--help").stdout
    assert f"dlep-{role} --print-example-config > {role}.toml" in helptext


def test_examples_parse() -> None:
    import tomllib

    parse_router_config(tomllib.loads(example_text("router")))
    parse_modem_config(tomllib.loads(example_text("modem")))


def test_man_pages_one_per_program(tmp_path: Path) -> None:
    res = _run("scripts/gen_man.py", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{p}.1" for p in PROGRAMS)
    ctl = (tmp_path / "dlepctl.1").read_text()
    assert ctl.startswith(".TH DLEPCTL 1 ")
    for text in (".SH SYNOPSIS", ".SH OPTIONS", ".SH COMMANDS", 'dlepctl destination accept"'):
        assert text in ctl, text
    assert "\\-\\-print\\-example\\-config" in (tmp_path / "dlep-modem.1").read_text()
    groff = shutil.which("groff")
    if groff is not None:  # roff that groff reads without a warning
        for p in PROGRAMS:
            out = subprocess.run(
                [groff, "-man", "-Tutf8", "-ww", "-z", str(tmp_path / f"{p}.1")],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert out.returncode == 0 and out.stderr == "", (p, out.stderr)


@pytest.mark.slow
def test_wheel_contents(tmp_path: Path) -> None:
    """Builds the wheel (pip fetches the build backend, hatchling, from the
    package index: skipped when it cannot)."""
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot build the wheel here: {res.stderr.strip()[-300:]}")
    (wheel,) = tmp_path.glob("dlep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for role, examples in EXAMPLES.items():
        for name in examples:
            assert f"dlep/examples/{name}.toml" in names, (role, name)
    assert "dlep/api/proto/dlep/v1/management.proto" in names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    for dep in ("grpcio-health-checking", "grpcio-reflection"):
        assert f"Requires-Dist: {dep}" in text


def test_containerfile_runs_as_non_root() -> None:
    """The image definition (no container engine here to build it): a
    non-root USER before the command, either daemon's example configuration
    installed, every COPY source present in the tree."""
    text = (ROOT / "Containerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert lines.index(next(ln for ln in lines if ln.startswith("USER "))) < lines.index(
        next(ln for ln in lines if ln.startswith("CMD "))
    )
    for ln in lines:
        if ln.startswith("COPY ") and "--from=" not in ln:
            for src in ln.split()[1:-1]:
                assert (ROOT / src).exists(), src
    assert "examples/router.toml examples/modem.toml /etc/dlep/" in text
    assert "HEALTHCHECK" in text and "dlepctl" in text
