#!/usr/bin/env python3
"""From DLEP to the data plane, in three network namespaces (needs root).

Nodes A, B and C are namespaces joined in a triangle of veth links (A-B,
B-C, A-C); each has a loopback address 10.90.0.N that babeld announces. The
A-C link is the "radio" under DLEP: on A and on C a simulated modem
(dlep-modem) reports the node across the link as a destination, and a
dlep-router with ``[router.kernel]`` installs its neighbour entry, route and
shaping class on the radio interface, while ``[router.hooks]`` runs
examples/hooks/babel-cost.py to turn the DLEP route metric into babeld's
cost for that interface. Then the demo:

1. shows ``ip route``/``ip neigh``/``tc class`` on A: DLEP's route (proto
   77), Babel's route to C's loopback straight over the radio link;
2. degrades the radio link (dlepctl: CDRT 1 Mb/s, latency 20 ms): the DLEP
   route metric rises, the shaping class drops to 1 Mb/s (iperf3 shows it),
   and Babel moves A's route to C onto the two-hop path through B;
3. restores the link: Babel comes back to the direct path;
4. breaks it (the modem drops the destination): the DLEP route and
   neighbour disappear and Babel stays on the path through B;
5. removes everything.

    sudo .venv/bin/python examples/dataplane/mesh_demo.py          # narrate
    sudo .venv/bin/python examples/dataplane/mesh_demo.py --check  # and assert

Traffic stays inside the namespaces it creates (names end in the process
id); they are deleted at the end whatever happens. docs/dataplane.md walks
through the output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOOK = REPO / "examples" / "hooks" / "babel-cost.py"
PID = os.getpid()
NODES = {"A": 1, "B": 2, "C": 3}
#: (node, its interface, peer node, peer's interface, link subnet number)
LINKS = [("A", "ab", "B", "ba", 1), ("B", "bc", "C", "cb", 2), ("A", "ac", "C", "ca", 3)]
DLEP_PORT = 8854


class DemoError(Exception):
    """A step did not show what it should (with --check)."""


def ns(node: str) -> str:
    return f"dlep{node}{PID}"


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> str:
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise DemoError(f"{' '.join(argv)}: {res.stderr.strip() or res.returncode}")
    return res.stdout


def nsx(node: str, *argv: str, **kw: object) -> str:
    return run(["ip", "netns", "exec", ns(node), *argv], **kw)  # type: ignore[arg-type]


def toml(data: dict[str, dict[str, object]]) -> str:
    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    out: list[str] = []
    for table, keys in data.items():
        out.append(f"[{table}]")
        out += [f"{k} = {value(v)}" for k, v in keys.items()]
        out.append("")
    return "\n".join(out)


def wait(cond: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.25)


class Demo:
    def __init__(self, work: Path, check: bool) -> None:
        self.work = work
        self.check = check
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.created: list[str] = []
        self.mac: dict[str, str] = {}

    # -- set-up -----------------------------------------------------------------------

    def build(self) -> None:
        for node, n in NODES.items():
            run(["ip", "netns", "add", ns(node)])
            self.created.append(ns(node))
            run(["ip", "-n", ns(node), "link", "set", "lo", "up"])
            run(["ip", "-n", ns(node), "addr", "add", f"10.90.0.{n}/32", "dev", "lo"])
            nsx(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            nsx(node, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
            nsx(node, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
        for a, aif, b, bif, sub in LINKS:
            # Born inside the namespaces: nothing appears in the host's.
            run(["ip", "link", "add", aif, "netns", ns(a), "type", "veth", "peer", "name", bif,
                 "netns", ns(b)])  # fmt: skip
            for node, ifname in ((a, aif), (b, bif)):
                addr = f"10.91.{sub}.{NODES[node]}/24"
                run(["ip", "-n", ns(node), "addr", "add", addr, "dev", ifname])
                run(["ip", "-n", ns(node), "link", "set", ifname, "up"])
                info = json.loads(run(["ip", "-n", ns(node), "-j", "link", "show", ifname]))
                self.mac[ifname] = info[0]["address"]
        for node in NODES:
            ifs = [i for a, ai, b, bi, _ in LINKS for (nd, i) in ((a, ai), (b, bi)) if nd == node]
            sock = self.work / f"babel-{node}.sock"
            self.spawn(
                f"babeld {node}",
                node,
                ["babeld", "-I", str(self.work / f"babel-{node}.pid"), "-S", "",
                 "-G", str(sock), "-h", "1", "-H", "1",
                 "-C", "redistribute local ip 10.90.0.0/16 allow",
                 "-C", "redistribute local deny", *ifs],
            )  # fmt: skip
        # DLEP on both ends of the A-C radio link.
        for node, ifname, peer_if, sub, peer in (
            ("A", "ac", "ca", 3, "C"),
            ("C", "ca", "ac", 3, "A"),
        ):
            self.dlep(node, ifname, self.mac[peer_if], f"10.91.{sub}.{NODES[peer]}")

    def dlep(self, node: str, ifname: str, dest_mac: str, dest_ip: str) -> None:
        w = self.work
        modem = {
            "network": {"listen_addresses": ["127.0.0.1"], "tcp_port": DLEP_PORT},
            "api": {"socket": str(w / f"modem-{node}.sock")},
            "modem": {"peer_type": f"demo radio {node}"},
            "modem.session_metrics": {"mdrr": "50M", "mdrt": "50M", "cdrr": "20M", "cdrt": "20M",
                                      "latency": "1ms", "rlqr": 100, "rlqt": 100},
        }  # fmt: skip
        text = toml(modem) + (
            "[[modem.destinations]]\n"
            f'mac = "{dest_mac}"\n'
            f'ipv4 = ["{dest_ip}"]\n'
            'metrics = { cdrt = "20M", latency = "1ms" }\n'
        )
        (w / f"modem-{node}.toml").write_text(text)
        router = {
            "network": {"tcp_port": DLEP_PORT},
            "api": {"socket": str(w / f"router-{node}.sock")},
            "timers": {"reconnect_interval_ms": 500},
            "router": {"discovery": False, "static_peers": [f"127.0.0.1:{DLEP_PORT}"]},
            "router.kernel": {"enabled": True, "interface": ifname},
            "router.hooks": {"command": [sys.executable, str(HOOK), "--socket",
                                         str(w / f"babel-{node}.sock"), "--interface", ifname,
                                         "--state", str(w)]},
        }  # fmt: skip
        (w / f"router-{node}.toml").write_text(toml(router))
        py = [sys.executable, "-m"]
        self.spawn(
            f"dlep-modem {node}", node, [*py, "dlep.cli.modem", "-c", str(w / f"modem-{node}.toml")]
        )
        self.spawn(
            f"dlep-router {node}",
            node,
            [*py, "dlep.cli.router", "-c", str(w / f"router-{node}.toml")],
        )

    def spawn(self, name: str, node: str, argv: list[str]) -> None:
        log = open(self.work / f"{name.replace(' ', '-')}.log", "wb")  # noqa: SIM115
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns(node), *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
        )
        self.procs.append((name, p))

    def teardown(self) -> None:
        for _, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for name in reversed(self.created):
            run(["ip", "netns", "del", name], check=False)

    # -- looking ------------------------------------------------------------------------

    def via(self, node: str, dest: str) -> str:
        """The interface A's kernel uses for ``dest`` now."""
        out = json.loads(
            run(["ip", "-n", ns(node), "-j", "route", "get", dest], check=False) or "[]"
        )
        return str(out[0].get("dev", "")) if out else ""

    def dlep_routes(self, node: str) -> list[dict[str, object]]:
        return json.loads(run(["ip", "-n", ns(node), "-j", "route", "show", "proto", "77"]) or "[]")

    def show(self, title: str, node: str = "A") -> None:
        print(f"\n=== {title}")
        print(f"$ ip -n {ns(node)} route")
        print(run(["ip", "-n", ns(node), "route"]).rstrip())
        print(f"$ ip -n {ns(node)} neigh show proto 77")
        print(run(["ip", "-n", ns(node), "neigh", "show", "proto", "77"]).rstrip())
        print(f"$ tc -n {ns(node)} class show dev ac")
        print(run(["tc", "-n", ns(node), "class", "show", "dev", "ac"]).rstrip())
        print(f"route to C (10.90.0.3) leaves A on: {self.via(node, '10.90.0.3')}")

    def dlepctl(self, node: str, *args: str) -> None:
        run([sys.executable, "-m", "dlep.cli.dlepctl", "--socket",
             str(self.work / f"modem-{node}.sock"), *args])  # fmt: skip

    def iperf(self, seconds: int = 4) -> float:
        if shutil.which("iperf3") is None:
            return 0.0
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns("C"), "iperf3", "-s", "-1", "-B", "10.91.3.3", "-p", "5301"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            out = nsx("A", "iperf3", "-c", "10.91.3.3", "-p", "5301", "-t", str(seconds), "-O", "1",
                      "-J", timeout=seconds + 20)  # fmt: skip
            return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])
        finally:
            server.kill()
            server.wait(5)

    def expect(self, ok: bool, what: str) -> None:
        print(("ok: " if ok else "NOT AS EXPECTED: ") + what)
        if self.check and not ok:
            raise DemoError(what)

    # -- the story ------------------------------------------------------------------------

    def story(self) -> None:
        mac_ca = self.mac["ca"]
        wait(lambda: len(self.dlep_routes("A")) == 1, "A's router installed the DLEP route", 30)
        wait(lambda: self.via("A", "10.90.0.3") == "ac", "Babel routes A->C over the radio", 60)
        self.show("1. radio link A-C good (CDRT 20 Mb/s, 1 ms)")
        good = self.dlep_routes("A")[0]["metric"]

        self.dlepctl("A", "destination", "update", mac_ca, "--cdrt", "1M", "--latency", "20ms")
        self.dlepctl(
            "C", "destination", "update", self.mac["ac"], "--cdrt", "1M", "--latency", "20ms"
        )
        wait(lambda: self.via("A", "10.90.0.3") == "ab", "Babel moves A->C onto A-B-C", 60)
        self.show("2. radio link degraded (CDRT 1 Mb/s, 20 ms)")
        bad = self.dlep_routes("A")[0]["metric"]
        self.expect(int(str(bad)) > int(str(good)), f"DLEP route metric rose: {good} -> {bad}")
        self.expect("rate 1Mbit" in run(["tc", "-n", ns("A"), "class", "show", "dev", "ac"]),
                    "shaping class on ac is now 1 Mbit/s")  # fmt: skip
        got = self.iperf()
        if got:
            self.expect(abs(got - 1e6) <= 0.15 * 1e6, f"iperf3 A->C over ac: {got / 1e6:.2f} Mb/s")
        # From A's loopback: C learns only the loopbacks through Babel.
        argv = ["ip", "netns", "exec", ns("A"), "ping", "-c", "2", "-W", "2", "-I", "10.90.0.1",
                "10.90.0.3"]  # fmt: skip
        ping = subprocess.run(argv, capture_output=True, timeout=10, check=False)
        self.expect(ping.returncode == 0, "C's loopback still reachable (through B)")

        self.dlepctl("A", "destination", "update", mac_ca, "--cdrt", "20M", "--latency", "1ms")
        self.dlepctl(
            "C", "destination", "update", self.mac["ac"], "--cdrt", "20M", "--latency", "1ms"
        )
        wait(lambda: self.via("A", "10.90.0.3") == "ac", "Babel returns to the direct link", 60)
        self.show("3. radio link restored")

        self.dlepctl("A", "destination", "drop", mac_ca)
        self.dlepctl("C", "destination", "drop", self.mac["ac"])
        wait(lambda: not self.dlep_routes("A"), "the DLEP route is gone", 15)
        wait(lambda: self.via("A", "10.90.0.3") == "ab", "Babel leaves the broken link", 60)
        self.show("4. radio link broken (Destination Down)")
        self.expect(run(["ip", "-n", ns("A"), "neigh", "show", "proto", "77"]).strip() == "",
                    "DLEP neighbour entry removed")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="fail (exit 1) if a step goes wrong")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "tc", "babeld"):
        if shutil.which(tool) is None:
            print(f"needs {tool} (Debian packages iproute2, babeld)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="dlep-mesh-") as tmp:
        demo = Demo(Path(tmp), args.check)
        try:
            demo.build()
            demo.story()
        except DemoError as exc:
            print(f"\nFAILED: {exc}", file=sys.stderr)
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
            return 1
        finally:
            demo.teardown()
    print("\ndone: namespaces removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
