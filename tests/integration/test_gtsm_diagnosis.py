"""GTSM and legacy peers: a modem that sends TCP with TTL 64 is named in one
clear log line (its TTL and the fix), and ``gtsm_enforce = false`` on its
static peer entry alone lets its session start. On the modem side, a router
connecting with TTL 64 (its SYNs dropped by the kernel) is reported from the
kernel's drop counter, naming the router if its Peer Discovery was seen.

The loopback test uses a bare listener (the kernel's default TTL, 64); the
namespace tests run a real dlep-modem made to send with TTL 64, and a real
dlep-modem reached with TTL 64, between two network namespaces joined by a
veth pair (root only; see ``netns.py``)."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlep.api.metrics import DaemonCollector
from dlep.daemon import ModemDaemon, RouterDaemon
from dlep.transport import min_ttl_drops, peer_ttl
from dlep.wire import PeerType, Signal, SignalType, encode_signal

from .conftest import V4, free_port, modem_config, router_config, wait_until

try:
    from .netns import Daemon, NetnsPair, unavailable, veth_pair
except ImportError:  # run without the package __init__
    from netns import Daemon, NetnsPair, unavailable, veth_pair  # type: ignore[no-redef]

pytestmark = pytest.mark.timeout(90)


def _plain_listener() -> socket.socket:
    """A listener with the kernel's default TTL (64): an implementation without GTSM."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((V4, 0))
    s.listen(16)
    return s


async def test_peer_ttl_finds_the_default_ttl_on_loopback() -> None:
    with _plain_listener() as lst:
        port = lst.getsockname()[1]
        seen = await peer_ttl(ipaddress.ip_address(V4), port)
    assert seen == (64, False)
    # A closed port: the kernel's reset, also TTL 64, is told apart (a
    # refusal says nothing about GTSM).
    assert await peer_ttl(ipaddress.ip_address(V4), free_port()) == (64, True)


async def test_router_names_the_legacy_modem_its_ttl_and_the_fix(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first attempt ends at the connect timeout (GTSM drops the SYN-ACK).
    monkeypatch.setattr("dlep.daemon.router.CONNECT_TIMEOUT", 0.5)
    caplog.set_level(logging.INFO, "dlep.router")
    with _plain_listener() as lst:
        port = lst.getsockname()[1]
        cfg = router_config(port, timers={"reconnect_interval_ms": 200})
        router = await RouterDaemon.builder().config(cfg).spawn()
        try:
            await wait_until(
                lambda: any(p.failures >= 2 for p in router.peers()), 20, "two attempts"
            )
            (p,) = router.peers()
            assert p.failure == "gtsm-dropped", p
            assert "TTL 64" in p.last_error
            lines = [r.getMessage() for r in caplog.records if "GTSM:" in r.getMessage()]
            assert len(lines) == 1, lines  # once, not per retry
            assert f"{V4}:{port}" in lines[0] and "TTL 64" in lines[0]
            assert "gtsm_enforce = false on its router.static_peers entry" in lines[0]
        finally:
            await router.shutdown()


async def test_gtsm_off_for_one_peer_connects_to_the_legacy_listener() -> None:
    with _plain_listener() as lst:
        port = lst.getsockname()[1]
        # Network-wide GTSM stays on; only this peer is relaxed.
        cfg = router_config(
            None,
            router={"static_peers": [{"address": V4, "port": port, "gtsm_enforce": False}]},
        )
        assert cfg.network.gtsm_enforce
        router = await RouterDaemon.builder().config(cfg).spawn()
        try:
            # TCP connects (the bare listener never speaks DLEP, so the session
            # stays initializing); with GTSM it would hang at the SYN-ACK.
            await wait_until(
                lambda: [p.state for p in router.peers()] == ["initializing"], 10, "connected"
            )
            assert [p.gtsm_enforce for p in router.peers()] == [False]
        finally:
            await router.shutdown()


async def test_profile_can_relax_gtsm(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlep.ext import profiles

    relaxed = profiles.Profile("legacy-test", gtsm_enforce=False)
    monkeypatch.setitem(profiles.PROFILES, "legacy-test", relaxed)
    cfg = router_config(None)
    router = await RouterDaemon.builder().config(cfg).spawn()
    try:
        router.connect_static(V4, free_port(), profile="legacy-test")
        router.connect_static(V4, free_port())
        assert sorted(p.gtsm_enforce for p in router.peers()) == [False, True]
    finally:
        await router.shutdown()


# ---------------------------------------------------------------------------
# Between two namespaces: a real dlep-modem that sends with TTL 64
# ---------------------------------------------------------------------------

PORT = 854

#: dlep-modem as an implementation without GTSM would behave: TTL 64 on its
#: listening sockets (which accepted connections and the SYN-ACK inherit),
#: no minimum TTL of its own.
_LEGACY_MODEM = textwrap.dedent(
    """
    import socket, sys
    import dlep.daemon.modem as m

    def legacy(sock, *, enforce):
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 64)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)

    m.set_ttl_255 = legacy
    from dlep.cli.modem import main
    sys.exit(main(["--config", sys.argv[1]]))
    """
)


@pytest.fixture(scope="module")
def pair() -> Iterator[NetnsPair]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    with veth_pair("g") as p:
        yield p


def _toml(p: NetnsPair, role: str, static: str = "") -> str:
    common = f"""
[network]
tcp_port = {PORT}
{'listen_addresses = ["' + p.modem_v4 + '"]' if role == "modem" else ""}
discovery_v4 = false
discovery_v6 = false

[timers]
heartbeat_interval_ms = 1000
reconnect_interval_ms = 500
shutdown_timeout_ms = 2000

[logging]
level = "info"

[api]
enabled = false  # no management socket in the shared /tmp
"""
    if role == "modem":
        return common + '\n[modem]\npeer_type = "legacy modem"\n'
    return common + f'\n[router]\npeer_type = "netns router"\ndiscovery = false\n{static}\n'


def _start_legacy_modem(pair: NetnsPair, tmp: Path) -> tuple[object, Path]:
    import subprocess

    cfg = tmp / "modem.toml"
    cfg.write_text(_toml(pair, "modem"))
    log = tmp / "modem.log"
    fh = open(log, "wb")  # noqa: SIM115 - closed by the caller via the process
    argv = pair.exec_argv(pair.modem_ns, [sys.executable, "-c", _LEGACY_MODEM, str(cfg)])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    return proc, log


@pytest.mark.root
def test_netns_legacy_modem_named_then_relaxed_per_peer(pair: NetnsPair, tmp_path: Path) -> None:
    import subprocess
    import time

    proc, mlog = _start_legacy_modem(pair, tmp_path)
    assert isinstance(proc, subprocess.Popen)
    routers: list[Daemon] = []
    try:
        deadline = time.monotonic() + 15
        while "modem listening on" not in mlog.read_text(errors="replace"):
            assert proc.poll() is None, mlog.read_text()
            assert time.monotonic() < deadline, mlog.read_text()
            time.sleep(0.05)

        # 1. GTSM on (the default): the router says who, which TTL, and the fix.
        cfg = tmp_path / "router1.toml"
        cfg.write_text(_toml(pair, "router", f'static_peers = ["{pair.modem_v4}:{PORT}"]'))
        r1 = Daemon(pair, pair.router_ns, "router", cfg, tmp_path / "router1.log")
        routers.append(r1)
        log = r1.wait_for("GTSM: modem", 30)
        line = next(ln for ln in log.splitlines() if "GTSM: modem" in ln)
        assert f"{pair.modem_v4}:{PORT}" in line and "TTL 64" in line, line
        assert "gtsm_enforce = false" in line, line
        r1.stop()

        # 2. gtsm_enforce = false for this peer alone: the session comes up.
        cfg = tmp_path / "router2.toml"
        peer = f'{{ address = "{pair.modem_v4}", port = {PORT}, gtsm_enforce = false }}'
        cfg.write_text(_toml(pair, "router", f"static_peers = [{peer}]"))
        r2 = Daemon(pair, pair.router_ns, "router", cfg, tmp_path / "router2.log")
        routers.append(r2)
        log = r2.wait_for("up: peer 'legacy modem'", 20)
        assert "GTSM: modem" not in log
    finally:
        for r in routers:
            r.stop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def test_closed_port_under_gtsm_reads_as_refused(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dlep.daemon.router.CONNECT_TIMEOUT", 0.5)
    port = free_port()
    router = await RouterDaemon.builder().config(router_config(port)).spawn()
    try:
        await wait_until(lambda: any(p.failures for p in router.peers()), 20, "an attempt")
        (p,) = router.peers()
        assert p.failure == "refused", p
        assert "nothing listens" in p.last_error
        assert not [r for r in caplog.records if "GTSM:" in r.getMessage()]
    finally:
        await router.shutdown()


# ---------------------------------------------------------------------------
# The modem side: the kernel drops the router's SYNs, the modem says so
# ---------------------------------------------------------------------------

_NO_COUNTER = "this kernel does not count GTSM drops (no TcpExt TCPMinTTLDrop in /proc/net/netstat)"


def _gtsm_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if "GTSM: the kernel dropped" in ln]


async def test_modem_reports_ttl_drops_and_names_the_discovering_router(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loopback, in this process: a Peer Discovery and a TCP connection, both
    with TTL 64, from 127.0.0.1. (The counter is the namespace's: other
    tests' drops may add to it, never take from it.)"""
    import asyncio

    if min_ttl_drops() is None:
        pytest.skip(_NO_COUNTER)
    monkeypatch.setattr("dlep.daemon.modem.GTSM_WATCH_INTERVAL", 0.2)
    caplog.set_level(logging.INFO, "dlep.modem")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((V4, 0))
        dport = s.getsockname()[1]
    port = free_port()
    net = {"interface": "lo", "discovery_port": dport, "discovery_v4": True, "discovery_v6": False}
    modem = await ModemDaemon.builder().config(modem_config(port, network=net)).spawn()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        assert modem.gtsm_drops == 0
        udp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
        udp.sendto(
            encode_signal(Signal(SignalType.PEER_DISCOVERY, (PeerType("no gtsm"),))), (V4, dport)
        )
        tcp.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
        tcp.setblocking(False)
        loop = asyncio.get_running_loop()
        with pytest.raises((TimeoutError, OSError)):
            await asyncio.wait_for(loop.sock_connect(tcp, (V4, port)), 1.5)  # SYNs dropped
        await wait_until(lambda: (modem.gtsm_drops or 0) > 0, 10, "drops counted")
        await wait_until(
            lambda: _gtsm_lines("\n".join(r.getMessage() for r in caplog.records)),
            5,
            "the warning",
        )
        metric = {
            s.name: s.value
            for fam in DaemonCollector(modem).collect()
            if fam.name == "dlep_gtsm_drops"
            for s in fam.samples
        }
        assert metric.get("dlep_gtsm_drops_total", 0) >= 1, metric
    finally:
        udp.close()
        tcp.close()
        await modem.shutdown()
    records = [r for r in caplog.records if "GTSM: the kernel dropped" in r.getMessage()]
    assert len(records) == 1  # once; later ones are counted and summarized
    line = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "router 127.0.0.1 sent Peer Discovery" in line and "with TTL 64" in line, line
    assert "network.gtsm_enforce = false" in line and "network namespace" in line, line


async def test_modem_without_gtsm_does_not_watch() -> None:
    port = free_port()
    cfg = modem_config(port, network={"gtsm_enforce": False})
    modem = await ModemDaemon.builder().config(cfg).spawn()
    try:
        assert modem.gtsm_drops is None
        assert not [f for f in DaemonCollector(modem).collect() if f.name == "dlep_gtsm_drops"]
    finally:
        await modem.shutdown()


#: A router without GTSM, as far as the modem can tell: its Peer Discovery
#: and its TCP connection attempts leave with TTL 64 (bounded: 8 attempts).
_TTL64_ROUTER = textwrap.dedent(
    """
    import socket, sys
    from dlep.wire import PeerType, Signal, SignalType, encode_signal

    host, port = sys.argv[1], int(sys.argv[2])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
        sig = Signal(SignalType.PEER_DISCOVERY, (PeerType("ttl64 router"),))
        u.sendto(encode_signal(sig), (host, port))
    for _ in range(8):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 64)
            t.settimeout(1.5)
            try:
                t.connect((host, port))
            except OSError:
                continue
            print("connected: the modem did not enforce GTSM")
            sys.exit(1)
    """
)


@pytest.mark.root
def test_netns_modem_names_the_router_without_gtsm(pair: NetnsPair, tmp_path: Path) -> None:
    import subprocess
    import time

    probe = pair.run_python(
        pair.modem_ns,
        "from dlep.transport import min_ttl_drops; print(min_ttl_drops() is not None)",
    )
    if probe.stdout.strip() != "True":
        pytest.skip(_NO_COUNTER)
    cfg = tmp_path / "modem.toml"
    cfg.write_text(
        _toml(pair, "modem")
        .replace("discovery_v4 = false", "discovery_v4 = true")
        .replace("[network]", f'[network]\ninterface = "{pair.modem_if}"\ndiscovery_port = {PORT}')
    )
    modem = Daemon(pair, pair.modem_ns, "modem", cfg, tmp_path / "modem.log")
    router: subprocess.Popen[bytes] | None = None
    try:
        modem.wait_for("modem listening on", 15)
        argv = pair.exec_argv(
            pair.router_ns, [sys.executable, "-c", _TTL64_ROUTER, pair.modem_v4, str(PORT)]
        )
        router = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        log = modem.wait_for("GTSM: the kernel dropped", 30)  # within two watch intervals
        assert time.monotonic() - t0 < 30
        (line,) = _gtsm_lines(log)
        assert "WARNING" in line, line
        assert f"router {pair.router_v4} sent Peer Discovery" in line and "TTL 64" in line, line
        assert "network.gtsm_enforce = false" in line, line
        out, _ = router.communicate(timeout=30)
        assert router.returncode == 0, out
    finally:
        if router is not None and router.poll() is None:
            router.kill()
            router.wait(5)
        modem.stop()
