"""``dlep-emu run``: set up a scenario's nodes, run them, remove everything.

:class:`Runner` owns every resource a run creates — namespaces, processes,
the run directory — and :meth:`Runner.teardown` removes them all, whatever
happened before (it is idempotent and never raises). Per node:

* a network namespace ``emu<pid>-<node>`` (none with ``radios_only``);
* the emulator process (``dlep-emu node``), which creates the TAP inside
  the namespace and runs the node's DLEP modem;
* a ``dlep-router`` process inside the namespace (unless the node says
  ``router = false``), with a generated configuration merged with the
  scenario's ``router_config``;
* the scenario's ``commands`` inside the namespace (a routing daemon, say),
  started after the router, stopped before it; like every child, one that
  exits ends the run.

Children run in their own session (Ctrl-C reaches only the runner, which
then stops them in order) and are asked to die with the runner
(``PR_SET_PDEATHSIG``), so even a ``kill -9`` of the runner leaves no
process; the namespaces a killed runner leaves are removed by the next run
(:func:`~dlep.emu.system.stale_namespaces`) or ``dlep-emu cleanup``.

``run.json`` in the run directory says where everything is (namespaces,
sockets, logs, the timeline's start) for tools and tests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .configs import node_placeholders, router_config_data, socket_paths
from .scenario import ResolvedNode, Topology, expand_placeholders
from .status import query
from .system import (
    create_netns,
    missing_privileges,
    namespace_name,
    remove_netns,
    stale_namespaces,
)

__all__ = ["Child", "RunError", "Runner", "toml_dumps"]

log = logging.getLogger("dlep.emu")

#: How long a node may take to answer on its status socket after starting.
READY_TIMEOUT = 20.0
#: Grace period for SIGTERM before SIGKILL.
STOP_TIMEOUT = 5.0


class RunError(Exception):
    """The run cannot start or went wrong; the message says why."""


@dataclass(slots=True)
class Child:
    """One process of the run."""

    node: str
    role: str  # "emulator" | "router" | "command"
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] | None = None
    #: Names it in run.json's pids and in messages ("babeld (command 1)").
    label: str = ""

    @property
    def name(self) -> str:
        """What it is, for messages and run.json."""
        return self.label or self.role

    def tail(self, lines: int = 15) -> str:
        """The end of its log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass(slots=True)
class Runner:
    """One run of a scenario on this host (see the module doc)."""

    scenario_path: Path
    topo: Topology
    run_dir: Path
    only_host: str | None = None
    radios_only: bool = False
    log_level: str = "info"
    start_at: float | None = None
    keep_run_dir: bool = False
    python: str = sys.executable
    children: list[Child] = field(default_factory=list)
    namespaces: dict[str, str] = field(default_factory=dict)
    t0: float = 0.0
    failed: bool = False
    _torn_down: bool = False
    _made_run_dir: bool = False

    # -- which nodes ------------------------------------------------------------

    def local_nodes(self) -> list[ResolvedNode]:
        """The nodes this host runs."""
        hosts = self.topo.hosts()
        if self.only_host is None:
            if len(hosts) > 1:
                raise RunError(
                    f"the scenario places nodes on hosts {', '.join(hosts)}: "
                    "start each host's share with --only-host HOST"
                )
            return list(self.topo.nodes)
        if self.only_host not in hosts:
            raise RunError(f"--only-host {self.only_host}: no node has host = {self.only_host!r}")
        return [n for n in self.topo.nodes if n.host == self.only_host]

    # -- set-up -------------------------------------------------------------------

    def check(self) -> None:
        """Raise RunError if this machine cannot run the scenario as asked."""
        if not self.radios_only:
            why = missing_privileges()
            if why is not None:
                raise RunError(why)
        for n in self.local_nodes():
            values = node_placeholders(
                n, run_dir=self.run_dir, scenario_dir=self.scenario_path.parent
            )
            for k, argv in enumerate(n.commands if not self.radios_only else ()):
                prog = expand_placeholders(argv[0], values)
                if shutil.which(prog) is None:
                    raise RunError(
                        f"{n.name}: command {k + 1} ({' '.join(argv)}): "
                        f"{prog} not found (install it or give its path)"
                    )

    def start(self) -> None:
        """Create everything and start every process (teardown on failure)."""
        try:
            self._start()
        except BaseException:
            self.failed = True
            self.teardown()
            raise

    def _start(self) -> None:
        self.check()
        nodes = self.local_nodes()
        if not self.radios_only:
            for name in stale_namespaces():
                log.warning("removing namespace %s left by a run that no longer exists", name)
                with contextlib.suppress(OSError):
                    remove_netns(name)
        if not self.run_dir.exists():
            self._made_run_dir = True
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.t0 = self.start_at if self.start_at is not None else time.time() + 1.0
        if not self.radios_only:
            for n in nodes:
                ns = namespace_name(n.name)
                create_netns(ns)
                self.namespaces[n.name] = ns
        for n in nodes:
            self._spawn_emulator(n)
        deadline = time.monotonic() + READY_TIMEOUT
        for n in nodes:
            self._wait_ready(n, deadline)
        for n in nodes:
            if n.router:
                self._spawn_router(n)
        if self.radios_only:
            if any(n.commands for n in nodes):
                # Without namespaces they would run in the host's: never that.
                log.warning("--radios-only: the scenario's commands are not started")
        else:
            for n in nodes:
                self._spawn_commands(n)
        self._write_run_json(nodes)

    def _open_log(self, name: str) -> tuple[Path, IO[bytes]]:
        path = self.run_dir / name
        return path, open(path, "wb")

    def _spawn(
        self, node: str, role: str, argv: list[str], log_name: str, label: str = ""
    ) -> Child:
        path, fh = self._open_log(log_name)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        child = Child(node, role, popen, path, fh, label)
        self.children.append(child)
        return child

    def _spawn_emulator(self, n: ResolvedNode) -> None:
        argv = [
            self.python,
            "-m",
            "dlep.cli.emu",
            "node",
            str(self.scenario_path),
            "--node",
            n.name,
            "--run-dir",
            str(self.run_dir),
            "--t0",
            repr(self.t0),
            "--parent",
            str(os.getpid()),
            "--log-level",
            self.log_level,
        ]
        if self.radios_only:
            argv.append("--radios-only")
        else:
            argv += ["--netns", self.namespaces[n.name]]
        self._spawn(n.name, "emulator", argv, f"{n.name}.emu.log")

    def _wait_ready(self, n: ResolvedNode, deadline: float) -> None:
        path = socket_paths(self.run_dir, n)["emu"]
        child = next(c for c in self.children if c.node == n.name and c.role == "emulator")
        while True:
            if child.popen.poll() is not None:
                raise RunError(
                    f"the emulator of {n.name} exited ({child.popen.returncode}) while "
                    f"starting:\n{child.tail()}"
                )
            with contextlib.suppress(OSError, ValueError):
                query(path, "ping", timeout=1.0)
                return
            if time.monotonic() > deadline:
                raise RunError(f"the emulator of {n.name} did not start:\n{child.tail()}")
            time.sleep(0.05)

    def router_config_path(self, n: ResolvedNode) -> Path:
        """Where the node's generated router configuration is written."""
        return self.run_dir / f"{n.name}.router.toml"

    def _spawn_router(self, n: ResolvedNode) -> None:
        data = router_config_data(
            self.topo,
            n,
            run_dir=self.run_dir,
            radios_only=self.radios_only,
            scenario_dir=self.scenario_path.parent,
        )
        cfg = self.router_config_path(n)
        cfg.write_text(toml_dumps(data))
        ns = self.namespaces.get(n.name, "-")
        argv = [
            self.python,
            "-m",
            "dlep.emu.nsexec",
            ns,
            str(os.getpid()),
            "--",
            self.python,
            "-m",
            "dlep.cli.router",
            "--config",
            str(cfg),
            "--log-level",
            self.log_level,
        ]
        self._spawn(n.name, "router", argv, f"{n.name}.router.log")

    def _spawn_commands(self, n: ResolvedNode) -> None:
        values = node_placeholders(n, run_dir=self.run_dir, scenario_dir=self.scenario_path.parent)
        for k, template in enumerate(n.commands):
            argv = [expand_placeholders(a, values) for a in template]
            prog = Path(argv[0]).name
            wrapped = [self.python, "-m", "dlep.emu.nsexec", self.namespaces[n.name]]
            wrapped += [str(os.getpid()), "--", *argv]
            label = f"{prog} (command {k + 1})"
            self._spawn(n.name, "command", wrapped, f"{n.name}.cmd{k + 1}.{prog}.log", label)

    def _write_run_json(self, nodes: list[ResolvedNode]) -> None:
        info = {
            "scenario": str(self.scenario_path),
            "name": self.topo.name,
            "pid": os.getpid(),
            "t0": self.t0,
            "radios_only": self.radios_only,
            "nodes": {
                n.name: {
                    "netns": self.namespaces.get(n.name),
                    "tap": None if self.radios_only else n.tap,
                    "mac": n.mac,
                    "ipv4": list(n.ipv4),
                    "ipv6": list(n.ipv6),
                    "sockets": {k: str(v) for k, v in socket_paths(self.run_dir, n).items()},
                    "router_config": str(self.router_config_path(n)) if n.router else None,
                    "pids": {c.name: c.popen.pid for c in self.children if c.node == n.name},
                }
                for n in nodes
            },
        }
        (self.run_dir / "run.json").write_text(json.dumps(info, indent=2))

    # -- running ------------------------------------------------------------------

    def exited(self) -> Child | None:
        """A child that has exited (a crash, since we have not stopped it)."""
        for c in self.children:
            if c.popen.poll() is not None:
                return c
        return None

    def status_paths(self) -> dict[str, Path]:
        """Node name -> its emulator's status socket."""
        return {n.name: socket_paths(self.run_dir, n)["emu"] for n in self.local_nodes()}

    # -- teardown -------------------------------------------------------------------

    def teardown(self) -> None:
        """Stop every process, remove every namespace and socket. Never raises."""
        if self._torn_down:
            return
        self._torn_down = True
        # Commands first: they may lean on the router (its socket, its routes).
        for role in ("command", "router", "emulator"):
            group = [c for c in self.children if c.role == role]
            for c in group:
                _signal(c.popen, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            for c in group:
                try:
                    c.popen.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s of %s did not stop: killing it", c.name, c.node)
                    _signal(c.popen, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        c.popen.wait(5.0)
        for c in self.children:
            if c.log_file is not None:
                c.log_file.close()
        for ns in self.namespaces.values():
            try:
                remove_netns(ns)
            except OSError as exc:
                log.warning("could not remove namespace %s: %s", ns, exc)
        self.namespaces.clear()
        for n in self.topo.nodes:
            for p in socket_paths(self.run_dir, n).values():
                with contextlib.suppress(OSError):
                    p.unlink()
        if self._made_run_dir and not (self.keep_run_dir or self.failed):
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _signal(p: subprocess.Popen[bytes], sig: int) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(sig)


# --------------------------------------------------------------------------
# A small TOML writer for the generated configurations
# --------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """``data`` as TOML: plain keys first, then each sub-table as a section."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for k, v in data.items():
        key = json.dumps(k) if not k.replace("_", "").replace("-", "").isalnum() else k
        if isinstance(v, dict):
            tables.append((f"{prefix}{key}", v))
        else:
            lines.append(f"{key} = {_toml_value(v)}")
    out = "\n".join(lines)
    for name, table in tables:
        body = toml_dumps(table, f"{name}.")
        out += f"\n\n[{name}]\n{body}" if not body.startswith("\n\n[") else body
    text = out.strip("\n") + "\n"
    tomllib.loads(text)  # what we write must read back
    return text
