"""Fixtures for the daemon integration tests: real sockets, loopback only.

Everything here binds or connects to 127.0.0.1 or ::1 and nothing else; no
test joins a multicast group (discovery stays off: ``router.discovery =
false`` and no ``network.interface`` on the modem).

* :func:`free_port` finds a TCP port free on both loopback addresses.
* :func:`modem_config` / :func:`router_config` build validated configurations
  with fast timers (``timers.allow_fast_timers``) for a given port/address.
* :class:`Certs` (fixture ``certs``) is a trustme CA with a modem server
  certificate, a router client certificate, and a second, untrusted CA.
* :class:`Events` wraps a daemon :class:`~dlep.daemon.Subscription` and waits,
  with a timeout, for the first event of a given kind.
* :class:`Proc` runs ``dlep-modem`` / ``dlep-router`` as a subprocess with its
  log in a file, and never leaves it behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme

from dlep.config import ModemConfig, RouterConfig, parse_modem_config, parse_router_config
from dlep.daemon import DaemonEvent, ModemDaemon, RouterDaemon, SessionEvent, Subscription
from dlep.fsm import Event

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

V4 = "127.0.0.1"
V6 = "::1"
FAMILIES = pytest.mark.parametrize("host", [V4, V6], ids=["ipv4", "ipv6"])

MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"
MAC3 = "02:00:00:00:00:03"
MAC_UNKNOWN = "02:00:00:00:00:99"

#: Our heartbeat in the in-process tests (fast, but with missed_heartbeats=4
#: a loaded CI machine has a full second of slack before a false time-out).
FAST_HB_MS = 250

#: Session-wide metrics every test modem declares (all nine, so any metric
#: may be used in updates).
SESSION_METRICS: dict[str, Any] = {
    "mdrr": "100M",
    "mdrt": "100M",
    "cdrr": "50M",
    "cdrt": "50M",
    "latency": "1ms",
    "resources": 100,
    "rlqr": 100,
    "rlqt": 100,
    "mtu": 1500,
}

#: Two destinations, one inheriting most session metrics.
DESTINATIONS: list[dict[str, Any]] = [
    {
        "mac": MAC1,
        "ipv4": ["10.0.0.11"],
        "ipv6": ["fd00::11"],
        "metrics": {
            "mdrr": "54M",
            "mdrt": "54M",
            "cdrr": "36M",
            "cdrt": "24M",
            "latency": "2ms",
            "rlqr": 90,
            "rlqt": 85,
        },
    },
    {
        "mac": MAC2,
        "ipv4": ["10.0.0.12"],
        "ipv4_subnets": ["192.168.12.0/24"],
        "metrics": {"mdrr": "11M", "mdrt": "11M", "cdrr": "5.5M", "cdrt": "2M", "latency": 8000},
    },
]


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------


def _v6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind((V6, 0))
        return True
    except OSError:
        return False


HAVE_V6 = _v6_available()


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 and (if present) on ::1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind((V4, 0))
            port = int(s4.getsockname()[1])
            if not HAVE_V6:
                return port
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind((V6, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found")


@pytest.fixture
def port() -> int:
    """A fresh free loopback port."""
    return free_port()


def need_host(host: str) -> None:
    """Skip if ``host`` is ::1 and this machine has no IPv6 loopback."""
    if host == V6 and not HAVE_V6:
        pytest.skip("no IPv6 loopback (::1) on this machine")


def peer_str(host: str, port: int) -> str:
    """``host:port`` the way the daemons print it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------
# Configurations
# --------------------------------------------------------------------------


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _timers(hb_ms: int) -> dict[str, Any]:
    return {
        "allow_fast_timers": True,
        "heartbeat_interval_ms": hb_ms,
        "missed_heartbeats": 4,
        "reconnect_interval_ms": 150,
        "shutdown_timeout_ms": 1500,
    }


def modem_data(
    port: int,
    host: str = V4,
    *,
    hb_ms: int = FAST_HB_MS,
    destinations: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A modem configuration as a dict (TOML shape), listening on ``host``."""
    data: dict[str, Any] = {
        "network": {"listen_addresses": [host], "tcp_port": port},
        "timers": _timers(hb_ms),
        "modem": {
            "peer_type": "test modem",
            "session_metrics": dict(SESSION_METRICS),
            "destinations": DESTINATIONS if destinations is None else destinations,
        },
    }
    return _merge(data, extra)


def router_data(
    port: int | None,
    host: str = V4,
    *,
    hb_ms: int = FAST_HB_MS,
    peer_tls: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A router configuration as a dict with ``host:port`` as its static peer
    (none if ``port`` is None)."""
    peers: list[Any] = []
    if port is not None:
        peer: dict[str, Any] = {"address": host, "port": port}
        if peer_tls is not None:
            peer["tls"] = peer_tls
        peers.append(peer)
    data: dict[str, Any] = {
        "network": {"tcp_port": port or 8854},
        "timers": _timers(hb_ms),
        "router": {"peer_type": "test router", "discovery": False, "static_peers": peers},
    }
    return _merge(data, extra)


def modem_config(port: int, host: str = V4, **kw: Any) -> ModemConfig:
    """Validated modem configuration (see :func:`modem_data`)."""
    return parse_modem_config(modem_data(port, host, **kw), source="<test modem>")


def router_config(port: int | None, host: str = V4, **kw: Any) -> RouterConfig:
    """Validated router configuration (see :func:`router_data`)."""
    return parse_router_config(router_data(port, host, **kw), source="<test router>")


def toml_dumps(data: dict[str, Any]) -> str:
    """Minimal TOML writer for our config dicts (tables, arrays, inline tables)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {value(v)}")
        lines.append("")
        for k, v in tables.items():
            table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    text = "\n".join(lines)
    tomllib.loads(text)  # our own output must be valid TOML
    return text


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as TOML to ``path``."""
    path.write_text(toml_dumps(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# TLS material
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """PEM files written by trustme."""

    ca: Path
    modem_cert: Path
    modem_key: Path
    router_cert: Path
    router_key: Path
    #: A modem certificate from a CA nobody trusts.
    rogue_ca: Path
    rogue_modem_cert: Path
    rogue_modem_key: Path

    def modem_tls(self, **kw: Any) -> dict[str, Any]:
        """``[tls]`` table of a TLS modem."""
        return {"cert": str(self.modem_cert), "key": str(self.modem_key), **kw}

    def router_tls(self, *, client_cert: bool = False, **kw: Any) -> dict[str, Any]:
        """``[tls]`` table of a TLS router that trusts our CA."""
        out: dict[str, Any] = {"ca": str(self.ca)}
        if client_cert:
            out |= {"cert": str(self.router_cert), "key": str(self.router_key)}
        return out | kw


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, modem and router certificates, and a rogue CA's modem certificate."""
    d = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    rogue = trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.crt"))
    rogue.cert_pem.write_to_path(str(d / "rogue-ca.crt"))
    names = ("127.0.0.1", "::1", "localhost")
    for who, issuer in (("modem", ca), ("router", ca), ("rogue-modem", rogue)):
        cert = issuer.issue_cert(*names, common_name=f"{who}.dlep.test")
        cert.cert_chain_pems[0].write_to_path(str(d / f"{who}.crt"))
        cert.private_key_pem.write_to_path(str(d / f"{who}.key"))
    return Certs(
        ca=d / "ca.crt",
        modem_cert=d / "modem.crt",
        modem_key=d / "modem.key",
        router_cert=d / "router.crt",
        router_key=d / "router.key",
        rogue_ca=d / "rogue-ca.crt",
        rogue_modem_cert=d / "rogue-modem.crt",
        rogue_modem_key=d / "rogue-modem.key",
    )


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------

T = TypeVar("T")


class Events:
    """Reads a subscription, remembering everything, until what is wanted comes.

    ``await ev.next(DestinationUp)`` returns the first *engine* event of that
    type (unwrapped from :class:`SessionEvent`; the wrapper is in
    :attr:`last_wrapper`); for daemon-level types (``ConnectFailed``, ...)
    the event itself. ``where`` filters further. On timeout the assertion
    lists everything seen meanwhile.
    """

    def __init__(self, sub: Subscription, name: str = "") -> None:
        self.sub = sub
        self.name = name
        self.seen: list[DaemonEvent] = []
        self.last_wrapper: SessionEvent | None = None

    async def next(
        self,
        kind: type[T],
        where: Callable[[T], bool] | None = None,
        *,
        timeout: float = 10.0,
        alive: Proc | None = None,
    ) -> T:
        """``alive``: a subprocess that must keep running meanwhile (if it
        exits, fail at once with its log instead of waiting out ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped: list[DaemonEvent] = []
        while True:
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                if alive is not None:
                    alive.check_running()
                    left = min(left, 0.25)
                ev = await asyncio.wait_for(self.sub.__anext__(), left)
            except TimeoutError:
                if alive is not None and loop.time() < deadline:
                    continue
                raise AssertionError(
                    f"{self.name or 'subscriber'}: no {kind.__name__} within {timeout} s; "
                    f"saw {skipped!r}"
                ) from None
            except StopAsyncIteration:
                raise AssertionError(
                    f"{self.name or 'subscriber'}: stream ended before {kind.__name__}; "
                    f"saw {skipped!r}"
                ) from None
            self.seen.append(ev)
            inner: object = ev
            if isinstance(ev, SessionEvent) and issubclass(kind, Event):
                inner = ev.event
            if isinstance(inner, kind) and (where is None or where(inner)):
                if isinstance(ev, SessionEvent):
                    self.last_wrapper = ev
                return inner
            skipped.append(ev)

    async def none_of(self, kind: type[Any], *, within: float) -> None:
        """Assert that no event of ``kind`` arrives for ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (left := deadline - loop.time()) > 0:
            try:
                ev = await asyncio.wait_for(self.sub.__anext__(), left)
            except (TimeoutError, StopAsyncIteration):
                return
            self.seen.append(ev)
            inner = ev.event if isinstance(ev, SessionEvent) else ev
            assert not isinstance(inner, kind), f"unexpected {inner!r}"

    def drain(self) -> list[DaemonEvent]:
        """Everything queued right now (does not wait)."""
        out: list[DaemonEvent] = []
        while self.sub.pending():
            out.append(self.sub.get_nowait())
        self.seen.extend(out)
        return out


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``cond`` every 20 ms until it holds (AssertionError after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or cond}")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------
# Daemons (in-process) and their teardown
# --------------------------------------------------------------------------


Tweak = Callable[[Any], Any]


class Daemons:
    """Spawns daemons and shuts every one of them down at teardown.

    ``tweak`` gets the builder and returns it (``lambda b: b.no_tls()``).
    """

    def __init__(self) -> None:
        self.started: list[RouterDaemon | ModemDaemon] = []

    async def modem(self, cfg: ModemConfig, tweak: Tweak | None = None) -> ModemDaemon:
        b = ModemDaemon.builder().config(cfg)
        if tweak is not None:
            b = tweak(b)
        d = await b.spawn()
        self.started.append(d)
        return d

    async def router(self, cfg: RouterConfig, tweak: Tweak | None = None) -> RouterDaemon:
        b = RouterDaemon.builder().config(cfg)
        if tweak is not None:
            b = tweak(b)
        d = await b.spawn()
        self.started.append(d)
        return d

    async def close(self) -> None:
        for d in reversed(self.started):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(d.shutdown(), 5)


@pytest.fixture
async def daemons() -> AsyncIterator[Daemons]:
    """Factory for in-process daemons; all are shut down after the test."""
    ds = Daemons()
    try:
        yield ds
    finally:
        await ds.close()


async def session_pair(
    daemons: Daemons,
    port: int,
    host: str = V4,
    *,
    modem_kw: dict[str, Any] | None = None,
    router_kw: dict[str, Any] | None = None,
) -> tuple[ModemDaemon, RouterDaemon, Events, Events]:
    """A modem and a router (static peer) with the session up and the
    configured destinations seen by the router."""
    modem = await daemons.modem(modem_config(port, host, **(modem_kw or {})))
    mev = Events(modem.subscribe(), "modem")
    router = await daemons.router(router_config(port, host, **(router_kw or {})))
    rev = Events(router.subscribe(), "router")
    from dlep.fsm import DestinationUp, SessionUp

    await rev.next(SessionUp)
    ndest = len((modem_kw or {}).get("destinations", DESTINATIONS))
    for _ in range(ndest):
        await rev.next(DestinationUp)
    await mev.next(SessionUp)
    return modem, router, mev, rev


# --------------------------------------------------------------------------
# Subprocess daemons
# --------------------------------------------------------------------------


class Proc:
    """A ``dlep-modem`` / ``dlep-router`` subprocess with its log in a file."""

    def __init__(self, role: str, config: Path, log: Path, *args: str) -> None:
        self.role = role
        self.log_path = log
        self._log = open(log, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", f"dlep.cli.{role}", "--config", str(config), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(REPO),
        )
        self.pid = self.popen.pid

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def check_running(self) -> None:
        """AssertionError with the log if the process has exited."""
        if self.popen.poll() is not None:
            raise AssertionError(
                f"{self.role} exited ({self.popen.returncode}) unexpectedly:\n{self.text()}"
            )

    async def wait_log(self, fragment: str, timeout: float = 15.0) -> str:
        """Wait for a log line containing ``fragment``; return that line."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for line in self.text().splitlines():
                if fragment in line:
                    return line
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.role} exited ({self.popen.returncode}) before logging "
                    f"{fragment!r}:\n{self.text()}"
                )
            if loop.time() >= deadline:
                raise AssertionError(f"{self.role}: no {fragment!r} in log:\n{self.text()}")
            await asyncio.sleep(0.05)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (rc := self.popen.poll()) is None:
            if loop.time() >= deadline:
                raise AssertionError(f"{self.role} still running after {timeout} s")
            await asyncio.sleep(0.05)
        return rc

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop(self) -> None:
        """Make sure the process is gone (SIGCONT first in case it is stopped)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        self._log.close()


class Procs:
    """Starts subprocess daemons; kills any still running at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.all: list[Proc] = []

    def start(self, role: str, data: dict[str, Any], *args: str, name: str = "") -> Proc:
        name = name or f"{role}{len(self.all)}"
        cfg = write_toml(self.tmp / f"{name}.toml", data)
        p = Proc(role, cfg, self.tmp / f"{name}.log", *args)
        self.all.append(p)
        return p

    def start_file(self, role: str, config: Path, *args: str, name: str = "") -> Proc:
        name = name or f"{role}{len(self.all)}"
        p = Proc(role, config, self.tmp / f"{name}.log", *args)
        self.all.append(p)
        return p

    def close(self) -> None:
        for p in self.all:
            p.stop()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Subprocess daemons, all killed at teardown."""
    ps = Procs(tmp_path)
    try:
        yield ps
    finally:
        ps.close()
