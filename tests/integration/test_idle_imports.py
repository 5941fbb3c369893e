"""A daemon imports only what its configuration uses (issue 13: the idle daemon smaller).

gRPC with protobuf is about 14 MiB of an idle daemon's resident memory and
prometheus_client 1-2 MiB; a daemon with ``[api] enabled = false`` or without
``[metrics] listen`` must not load them. Each test runs ``dlep-router`` /
``dlep-modem`` (their ``main()``) in a subprocess, lets the CLI start
everything the configuration asks for, and reads that process's
``sys.modules``. Everything listens on loopback or a Unix socket in
``tmp_path``; nothing here measures time or memory.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

#: Not needed by an idle daemon with the API and the metrics endpoint off and
#: no data plane: the management API, Prometheus, the full-screen UI, netlink.
HEAVY = ("grpc", "google.protobuf", "prometheus_client", "textual", "pyroute2")

# Runs a daemon's CLI; once start-up is complete, prints sys.modules as JSON
# and stops the daemon with SIGTERM (its normal, clean shutdown).
# start_dataplane is the last step of the CLI's start-up
# (dlep.cli.common.run_daemon: daemon, metrics, API, data plane), so when it
# returns everything the configuration asks for has been imported.
# PRELUDE lets a test hide a package (sys.modules[name] = None).
PROBE = """
import json, os, signal, sys
{prelude}
import dlep.dataplane.service as service
from dlep.cli import {role} as cli

start = service.start_dataplane

async def start_then_report(daemon):
    dp = await start(daemon)
    print(json.dumps(sorted(m for m in sys.modules if sys.modules[m] is not None)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    return dp

service.start_dataplane = start_then_report
sys.exit(cli.main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, role: str, *, api: bool, metrics: bool) -> Path:
    """A loopback-only configuration: no discovery, no peers to reach."""
    if role == "router":
        body = "[router]\ndiscovery = false\n"
    else:
        body = (
            "[network]\ndiscovery_v4 = false\ndiscovery_v6 = false\n"
            f'listen_addresses = ["127.0.0.1"]\ntcp_port = {free_port()}\n'
        )
    body += '[logging]\nlevel = "warning"\n'
    body += f'[api]\nenabled = {str(api).lower()}\nsocket = "{tmp_path / "api.sock"}"\n'
    if metrics:
        body += '[metrics]\nlisten = "127.0.0.1:0"\n'
    path = tmp_path / f"{role}.toml"
    path.write_text(body)
    return path


def run_probe(
    tmp_path: Path, role: str, *, api: bool, metrics: bool, prelude: str = ""
) -> tuple[int, set[str] | None, str]:
    """(exit code, the daemon's modules once started or None, stderr)."""
    cfg = write_config(tmp_path, role, api=api, metrics=metrics)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(role=role, prelude=prelude), "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=45,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    modules = set(json.loads(lines[-1])) if lines else None
    return proc.returncode, modules, proc.stderr


def loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


@pytest.mark.parametrize("role", ["router", "modem"])
def test_idle_daemon_without_api_and_metrics_imports_neither(tmp_path: Path, role: str) -> None:
    code, modules, err = run_probe(tmp_path, role, api=False, metrics=False)
    assert code == 0, err
    assert modules is not None, err
    assert [p for p in HEAVY if loaded(modules, p)] == []
    assert "dlep.api.server" not in modules and "dlep.api.metrics" not in modules


def test_router_does_not_import_the_modem_daemon(tmp_path: Path) -> None:
    code, modules, err = run_probe(tmp_path, "router", api=False, metrics=False)
    assert code == 0 and modules is not None, err
    assert "dlep.daemon.router" in modules
    assert "dlep.daemon.modem" not in modules


def test_configured_parts_are_imported(tmp_path: Path) -> None:
    """The control: the probe does see what a configuration asks for."""
    code, modules, err = run_probe(tmp_path, "router", api=True, metrics=True)
    assert code == 0, err
    assert modules is not None, err
    assert loaded(modules, "grpc") and loaded(modules, "prometheus_client")
    assert not loaded(modules, "textual") and not loaded(modules, "pyroute2")


def test_api_enabled_without_grpc_says_so(tmp_path: Path) -> None:
    code, modules, err = run_probe(
        tmp_path, "router", api=True, metrics=False, prelude="sys.modules['grpc'] = None"
    )
    assert code == 1 and modules is None
    assert "'grpc' is not installed" in err
    assert "--no-api" in err  # and how to do without it


def test_api_disabled_without_grpc_runs(tmp_path: Path) -> None:
    code, modules, err = run_probe(
        tmp_path, "modem", api=False, metrics=False, prelude="sys.modules['grpc'] = None"
    )
    assert code == 0 and modules is not None, err


def test_metrics_without_prometheus_client_says_so(tmp_path: Path) -> None:
    code, modules, err = run_probe(
        tmp_path,
        "modem",
        api=False,
        metrics=True,
        prelude="sys.modules['prometheus_client'] = None",
    )
    assert code == 1 and modules is None
    assert "'prometheus_client' is not installed" in err
    assert "[metrics] listen" in err


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("role", ["router", "modem"])
def test_help_loads_no_event_loop_and_no_schema(role: str) -> None:
    modules = modules_after(
        "import contextlib, io\n"
        f"from dlep.cli import {role} as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])"
    )
    assert "asyncio" not in modules
    assert not loaded(modules, "pydantic")
    assert "dlep.daemon" not in modules


def test_dlepctl_client_does_not_load_the_configuration_schema() -> None:
    modules = modules_after("import dlep.cli.dlepctl, dlep.api.client, dlep.daemon.fmt")
    assert not loaded(modules, "pydantic")
    assert "dlep.config" not in modules
    assert "dlep.daemon.modem" not in modules and "dlep.daemon.router" not in modules


def test_extension_names_by_code_match_the_configuration() -> None:
    """dlep.api.convert reads the names from the extensions, not from dlep.config."""
    from dlep.api.convert import EXTENSION_NAMES_BY_CODE
    from dlep.config import EXTENSION_NAMES

    assert {code: name for name, code in EXTENSION_NAMES.items()} == EXTENSION_NAMES_BY_CODE


def test_every_public_name_of_dlep_daemon_resolves() -> None:
    """dlep.daemon loads its names on first use: each one in __all__ must resolve
    (a name added to __all__ and the TYPE_CHECKING imports but not to _EXPORTS
    would fail only at run time)."""
    import dlep.daemon as daemon

    for name in daemon.__all__:
        assert getattr(daemon, name) is not None, name
    assert daemon.fmt.describe is not None  # submodules stay reachable as attributes
