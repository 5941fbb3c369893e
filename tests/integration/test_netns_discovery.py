"""Discovery between two network namespaces joined by a veth pair (needs root).

A router namespace and a modem namespace are created for this module (see
``netns.py``: nothing outside them is touched, both are always removed).
``dlep-modem`` and ``dlep-router`` run there as real processes with their CLI
and a TOML file, so this covers the whole path: multicast Peer Discovery with
TTL 255, the Peer Offer and its connection points, the TCP session (GTSM on)
and a destination reaching the router.

* IPv4: discovery over 224.0.0.117, session over IPv4.
* IPv6: discovery over ff02::1:7 only; the modem derives its connection
  points from the interface, so it offers its fe80:: address, which the
  router can only reach with the interface as scope.
* TTL: a Peer Discovery sent with TTL / hop limit 254 (multicast and
  unicast, IPv4 and IPv6) gets no Peer Offer and the modem logs why; the
  same signal with 255 gets one, so the check is real (RFC 8175 §12.1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from .netns import Daemon, NetnsPair, unavailable, veth_pair
except ImportError:  # run without the package __init__
    from netns import Daemon, NetnsPair, unavailable, veth_pair  # type: ignore[no-redef]

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

PORT = 854  # the IANA port: we are root, and the namespaces are ours alone
DEST_MAC = "02:00:00:00:99:01"
DEST_V4 = "10.200.0.11"


@pytest.fixture(scope="module")
def pair() -> Iterator[NetnsPair]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    with veth_pair() as p:
        yield p


def _modem_toml(
    p: NetnsPair, *, v4: bool, v6: bool, points: str = "[]", listen: str = '["0.0.0.0", "::"]'
) -> str:
    return f"""
[network]
interface = "{p.modem_if}"
discovery_v4 = {str(v4).lower()}
discovery_v6 = {str(v6).lower()}
discovery_port = {PORT}
tcp_port = {PORT}
listen_addresses = {listen}
connection_points = {points}

[timers]
heartbeat_interval_ms = 1000
discovery_interval_ms = 1000
shutdown_timeout_ms = 2000

[logging]
level = "debug"

[api]
enabled = false  # no management socket in the shared /tmp

[modem]
peer_type = "netns test modem"

[[modem.destinations]]
mac = "{DEST_MAC}"
ipv4 = ["{DEST_V4}"]
metrics = {{ cdrr = "1M", cdrt = "1M", latency = "2ms" }}

[modem.session_metrics]
mdrr = "10M"
mdrt = "10M"
cdrr = "5M"
cdrt = "5M"
latency = "1ms"
"""


def _router_toml(p: NetnsPair, *, v4: bool, v6: bool) -> str:
    return f"""
[network]
interface = "{p.router_if}"
discovery_v4 = {str(v4).lower()}
discovery_v6 = {str(v6).lower()}
discovery_port = {PORT}
tcp_port = {PORT}

[timers]
heartbeat_interval_ms = 1000
discovery_interval_ms = 1000
shutdown_timeout_ms = 2000

[logging]
level = "debug"

[api]
enabled = false  # no management socket in the shared /tmp

[router]
peer_type = "netns test router"
discovery = true
"""


class _Procs:
    """Daemons started by one test; all stopped at its end."""

    def __init__(self, pair: NetnsPair, tmp: Path) -> None:
        self.pair = pair
        self.tmp = tmp
        self.running: list[Daemon] = []

    def start(self, role: str, toml: str) -> Daemon:
        cfg = self.tmp / f"{role}.toml"
        cfg.write_text(toml)
        ns = self.pair.router_ns if role == "router" else self.pair.modem_ns
        d = Daemon(self.pair, ns, role, cfg, self.tmp / f"{role}.log")
        self.running.append(d)
        return d

    def stop_all(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for d in reversed(self.running):  # router first: it terminates its sessions
            try:
                codes[d.role] = d.stop()
            except Exception as exc:  # keep stopping the others
                codes[d.role] = None
                print(f"stopping dlep-{d.role}: {exc!r}")
        self.running.clear()
        return codes


@pytest.fixture
def procs(pair: NetnsPair, tmp_path: Path) -> Iterator[_Procs]:
    p = _Procs(pair, tmp_path)
    try:
        yield p
    finally:
        p.stop_all()


def _discover(
    procs: _Procs, pair: NetnsPair, *, v4: bool, v6: bool, points: str, **modem_kw: str
) -> Daemon:
    """Modem then router; wait until the destination reached the router."""
    modem = procs.start("modem", _modem_toml(pair, v4=v4, v6=v6, points=points, **modem_kw))
    modem.wait_for("answering Peer Discovery", 10)
    router = procs.start("router", _router_toml(pair, v4=v4, v6=v6))
    router.wait_for(f"destination {DEST_MAC} up", 15)
    return router


def _offers_after_session(modem: Daemon, settle: float = 2.2) -> int:
    """Peer Offers the modem sends once a session is up (RFC 8175 §7.1: none).

    The router keeps sending Peer Discovery; the modem must recognise it as
    coming from the router it already serves.
    """
    before = modem.text().count("sending Peer Offer")
    time.sleep(settle)  # > 2 discovery intervals of the router
    text = modem.text()
    assert "already in session with it" in text, text
    return text.count("sending Peer Offer") - before


def _check_order(log: str) -> None:
    # SessionConnected (logged "connected to") comes before the session's events.
    assert log.index("connected to") < log.index("up: peer"), log


def test_discovery_ipv4(pair: NetnsPair, procs: _Procs) -> None:
    points = f'[{{ address = "{pair.modem_v4}" }}]'
    router = _discover(procs, pair, v4=True, v6=False, points=points)
    log = router.text()
    assert f"Peer Offer from {pair.modem_v4}" in log
    assert f"connected to {pair.modem_v4}:{PORT}" in log
    assert "up: peer 'netns test modem'" in log
    _check_order(log)
    modem = procs.running[0]
    assert f"Peer Discovery from {pair.router_v4}" in modem.text()
    assert _offers_after_session(modem) == 0, modem.text()
    codes = procs.stop_all()
    assert codes == {"router": 0, "modem": 0}


def test_discovery_ipv6_link_local(pair: NetnsPair, procs: _Procs) -> None:
    # connection_points = []: the modem offers its interface's addresses,
    # fe80:: among them; the router tries IPv6 first and needs the scope.
    router = _discover(procs, pair, v4=False, v6=True, points="[]")
    log = router.text()
    assert f"Peer Offer from {pair.modem_ll}" in log
    assert f"connected to [{pair.modem_ll}]:{PORT}" in log
    assert "up: peer 'netns test modem'" in log
    _check_order(log)
    modem = procs.running[0]
    assert f"Peer Discovery from {pair.router_ll}" in modem.text()
    assert _offers_after_session(modem) == 0, modem.text()
    codes = procs.stop_all()
    assert codes == {"router": 0, "modem": 0}


def test_offer_names_only_points_the_modem_listens_on(pair: NetnsPair, procs: _Procs) -> None:
    """Without connection_points the Peer Offer carries the interface's
    addresses the modem listens on, not every address of the interface
    (here: IPv4 only, though the interface has an IPv6 link-local too)."""
    router = _discover(procs, pair, v4=True, v6=True, points="[]", listen=f'["{pair.modem_v4}"]')
    log = router.text()
    offers = [ln for ln in log.splitlines() if "Peer Offer from" in ln]
    assert offers, log
    for line in offers:
        points = line.rsplit("): ", 1)[1]  # "Peer Offer from <src> (<type>): <points>"
        assert points.strip() == f"{pair.modem_v4}:{PORT}", line
    assert f"connected to {pair.modem_v4}:{PORT}" in log


def _clock(line: str) -> float:
    """Seconds since midnight of a log line's ``HH:MM:SS.mmm`` stamp."""
    h, m, s = line.split()[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_dead_connection_point_does_not_delay_the_session(pair: NetnsPair, procs: _Procs) -> None:
    """Connection points are tried Happy-Eyeballs style (RFC 8305): the first
    one here is a closed port, which with GTSM looks dead (the kernel's RST
    has TTL 64 and is dropped), yet the session comes up through the second
    long before the first attempt could time out (5 s)."""
    dead = PORT + 1
    points = (
        f'[{{ address = "{pair.modem_v4}", port = {dead} }}, '
        f'{{ address = "{pair.modem_v4}", port = {PORT} }}]'
    )
    router = _discover(procs, pair, v4=True, v6=False, points=points)
    log = router.text()
    offer = next(ln for ln in log.splitlines() if "Peer Offer from" in ln)
    connected = next(ln for ln in log.splitlines() if "connected to" in ln)
    assert f"connected to {pair.modem_v4}:{PORT}" in connected
    assert f"{pair.modem_v4}:{dead}" in offer
    assert _clock(connected) - _clock(offer) < 4.0, (offer, connected)


def test_router_first_then_modem_restart(pair: NetnsPair, procs: _Procs) -> None:
    """The router keeps looking: a modem that starts later is found at the
    next Peer Discovery, and found again after it restarted."""
    points = f'[{{ address = "{pair.modem_v4}" }}]'
    router = procs.start("router", _router_toml(pair, v4=True, v6=False))
    router.wait_for("discovery on", 10)
    time.sleep(1.2)  # the router's first Peer Discovery went unanswered
    toml = _modem_toml(pair, v4=True, v6=False, points=points)
    modem = procs.start("modem", toml)
    router.wait_for(f"destination {DEST_MAC} up", 15)
    assert modem.stop() == 0
    procs.running.remove(modem)
    log = router.wait_for("ended", 10)
    assert log.count(f"destination {DEST_MAC} up") == 1
    # Same log file name: keep the first modem's log for the report.
    modem.log_path.rename(modem.log_path.with_suffix(".1.log"))
    procs.start("modem", toml)
    deadline = time.monotonic() + 15
    while router.text().count(f"destination {DEST_MAC} up") < 2:
        assert time.monotonic() < deadline, router.text()
        time.sleep(0.05)
    assert "session 2" in router.text()
    assert procs.stop_all() == {"router": 0, "modem": 0}


# A tiny prober run inside the router namespace: send Peer Discovery with a
# given TTL / hop limit (a bounded number of times) and report every reply
# received on the sending socket before the deadline.
_PROBE = r"""
import json, select, socket, struct, sys, time
from dlep.wire import Signal, SignalType, decode_signal, encode_signal

family, dest, port, ttl, mode, ifname, wait = sys.argv[1:8]
port, ttl, wait = int(port), int(ttl), float(wait)
ifindex = socket.if_nametoindex(ifname)
data = encode_signal(Signal(SignalType.PEER_DISCOVERY, ()))
if family == "4":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 0))
    if mode == "multicast":
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        mreqn = struct.pack("@4s4si", b"\0" * 4, b"\0" * 4, ifindex)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    target = (dest, port)
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", 0))
    if mode == "multicast":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ttl)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    target = (dest, port, 0, ifindex)
replies = []
sent = 0
deadline = time.monotonic() + wait
next_send = time.monotonic()
while True:
    now = time.monotonic()
    if now >= deadline:
        break
    if sent < 3 and now >= next_send:  # bounded: at most 3 signals
        s.sendto(data, target)
        sent += 1
        next_send = now + wait / 4
    r, _, _ = select.select([s], [], [], max(0.0, min(deadline, next_send) - now))
    if r:
        pkt, src = s.recvfrom(65535)
        try:
            replies.append(SignalType(decode_signal(pkt).type).name)
        except Exception as exc:
            replies.append(f"undecodable: {exc}")
        if ttl == 255:
            break
print(json.dumps({"sent": sent, "replies": replies}))
"""


def _probe(pair: NetnsPair, family: str, dest: str, mode: str, ttl: int, wait: float) -> dict:
    res = pair.run_python(
        pair.router_ns,
        _PROBE,
        family,
        dest,
        str(PORT),
        str(ttl),
        mode,
        pair.router_if,
        str(wait),
        timeout=wait + 15,
    )
    assert res.returncode == 0, res.stderr
    out: dict = json.loads(res.stdout)
    return out


@pytest.fixture
def lone_modem(pair: NetnsPair, procs: _Procs) -> Daemon:
    """A modem answering discovery on IPv4 and IPv6, and no router."""
    modem = procs.start("modem", _modem_toml(pair, v4=True, v6=True))
    text = modem.wait_for("answering Peer Discovery", 10)
    assert "unavailable" not in text, text
    return modem


@pytest.mark.parametrize(
    ("family", "mode"),
    [("4", "multicast"), ("4", "unicast"), ("6", "multicast"), ("6", "unicast")],
)
def test_ttl_not_255_is_ignored(
    pair: NetnsPair, lone_modem: Daemon, family: str, mode: str
) -> None:
    if mode == "multicast":
        dest = "224.0.0.117" if family == "4" else "ff02::1:7"
    else:
        dest = pair.modem_v4 if family == "4" else pair.modem_ll
    low = _probe(pair, family, dest, mode, 254, wait=2.0)
    assert low["sent"] >= 1
    assert low["replies"] == [], f"TTL 254 got an answer: {low}"
    lone_modem.wait_for("TTL/hop limit 254, not 255", 2)
    assert "sending Peer Offer" not in lone_modem.text()

    ok = _probe(pair, family, dest, mode, 255, wait=3.0)
    assert ok["replies"] == ["PEER_OFFER"], f"TTL 255 got no Peer Offer: {ok}"
    lone_modem.wait_for("sending Peer Offer", 2)
