"""Two network namespaces joined by a veth pair, for discovery tests.

Safety rules this module keeps:

* everything it creates lives inside namespaces it created itself, named
  with the test process id (``dlepR<pid>`` / ``dlepM<pid>``); the veth pair
  is created directly inside those namespaces, so it never exists in the
  host's namespace and no real interface (eth0, ...) is ever touched;
* :func:`veth_pair` deletes both namespaces (which deletes the veth pair)
  whatever happens, including a failure half-way through the set-up;
* every wait is bounded.

Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2; :func:`unavailable`
says why not when it cannot work, for ``pytest.skip``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SKIP_REASON = "needs root and iproute2 (ip netns) to create network namespaces"

#: Private addresses, configured only inside the namespaces.
ROUTER_V4 = "10.199.0.1"
MODEM_V4 = "10.199.0.2"
PREFIX = 24


def _ip() -> str | None:
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )


def _run(argv: Sequence[str], *, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)


def _must(argv: Sequence[str], *, timeout: float = 10.0) -> str:
    res = _run(argv, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def unavailable() -> str | None:
    """Why namespaces cannot be used here (None: they can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{SKIP_REASON}; not running as root"
    ip = _ip()
    if ip is None:
        return f"{SKIP_REASON}; the ip command is missing (Debian package iproute2)"
    probe = f"dlepP{os.getpid()}"
    try:
        res = _run([ip, "netns", "add", probe])
        if res.returncode != 0:
            return f"{SKIP_REASON}; 'ip netns add' failed: {res.stderr.strip()}"
    finally:
        _run([ip, "netns", "del", probe])
    return None


@dataclass(frozen=True)
class NetnsPair:
    """Router namespace and modem namespace, one veth end in each."""

    ip: str
    router_ns: str
    modem_ns: str
    router_if: str
    modem_if: str
    router_v4: str
    modem_v4: str
    router_ll: str  # IPv6 link-local of router_if (no scope)
    modem_ll: str

    def exec_argv(self, ns: str, argv: Sequence[str]) -> list[str]:
        """``ip netns exec <ns> argv...``."""
        return [self.ip, "netns", "exec", ns, *argv]

    def run(self, ns: str, argv: Sequence[str], *, timeout: float = 20.0) -> str:
        """Run to completion inside ``ns``; returns stdout, raises on failure."""
        return _must(self.exec_argv(ns, argv), timeout=timeout)

    def run_python(
        self, ns: str, code: str, *args: str, timeout: float = 20.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code args...`` inside ``ns`` (bounded)."""
        return _run(self.exec_argv(ns, [sys.executable, "-c", code, *args]), timeout=timeout)


def _link_local(ip: str, ns: str, ifname: str, deadline: float) -> str:
    """Wait (bounded) until ``ifname`` has a usable (not tentative) fe80:: address."""
    last = ""
    while time.monotonic() < deadline:
        last = _must([ip, "-n", ns, "-6", "addr", "show", "dev", ifname, "scope", "link"])
        for line in last.splitlines():
            parts = line.split()
            if parts[:1] == ["inet6"] and "tentative" not in parts:
                return parts[1].split("/", 1)[0]
        time.sleep(0.05)
    raise RuntimeError(f"no usable IPv6 link-local address on {ns}/{ifname}: {last!r}")


_OURS = re.compile(r"^dlep[RMP](\d+)$")


def remove_stale(ip: str) -> list[str]:
    """Delete namespaces left by an earlier run of this module that was killed
    (our exact naming pattern, and its process id no longer runs)."""
    removed: list[str] = []
    for line in _run([ip, "netns", "list"]).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _OURS.match(name)
        if m is None or int(m[1]) == os.getpid():
            continue
        try:
            os.kill(int(m[1]), 0)
            continue  # that test run is still alive: not ours to touch
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        if _run([ip, "netns", "del", name]).returncode == 0:
            removed.append(name)
    return removed


@contextlib.contextmanager
def veth_pair(tag: str = "") -> Iterator[NetnsPair]:
    """Create router and modem namespaces joined by a veth pair; always remove them."""
    ip = _ip()
    if ip is None:
        raise RuntimeError(SKIP_REASON)
    remove_stale(ip)
    pid = os.getpid()
    rns, mns = f"dlepR{tag}{pid}", f"dlepM{tag}{pid}"
    rif, mif = f"dR{tag}{pid}"[:15], f"dM{tag}{pid}"[:15]
    created: list[str] = []
    try:
        for ns in (rns, mns):
            _must([ip, "netns", "add", ns])
            created.append(ns)
        # Both ends are born inside the namespaces: nothing appears in ours.
        veth = ["type", "veth", "peer", "name", mif, "netns", mns]
        _must([ip, "link", "add", rif, "netns", rns, *veth])
        for ns, ifname, addr in ((rns, rif, ROUTER_V4), (mns, mif, MODEM_V4)):
            # No duplicate address detection: link-local usable at once.
            for key in (f"net.ipv6.conf.{ifname}.accept_dad", "net.ipv6.conf.default.accept_dad"):
                _run([ip, "netns", "exec", ns, "sysctl", "-qw", f"{key}=0"])
            _must([ip, "-n", ns, "addr", "add", f"{addr}/{PREFIX}", "dev", ifname])
            _must([ip, "-n", ns, "link", "set", "lo", "up"])
            _must([ip, "-n", ns, "link", "set", ifname, "up"])
        deadline = time.monotonic() + 10.0
        rll = _link_local(ip, rns, rif, deadline)
        mll = _link_local(ip, mns, mif, deadline)
        yield NetnsPair(ip, rns, mns, rif, mif, ROUTER_V4, MODEM_V4, rll, mll)
    finally:
        for ns in reversed(created):  # deleting a namespace deletes its veth end
            _run([ip, "netns", "del", ns])


class Daemon:
    """A dlep CLI daemon running inside a namespace, its stderr in a file."""

    def __init__(self, pair: NetnsPair, ns: str, role: str, config: Path, log: Path) -> None:
        self.role = role
        self.log_path = log
        self._fh = open(log, "wb")  # noqa: SIM115 - closed in stop()
        argv = pair.exec_argv(
            ns, [sys.executable, "-m", f"dlep.cli.{role}", "--config", str(config)]
        )
        # `ip netns exec` execs the command: the pid is Python's own.
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._fh, stderr=subprocess.STDOUT
        )

    def text(self) -> str:
        """Everything logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> str:
        """Wait (bounded) until the log contains ``needle``; returns the log."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if needle in text:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"dlep-{self.role} exited ({self.proc.returncode}) before logging "
                    f"{needle!r}:\n{text}"
                )
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"dlep-{self.role} did not log {needle!r} within {timeout} s:\n{text}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL if it hangs; returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5.0)
            return self.proc.returncode
        finally:
            self._fh.close()
