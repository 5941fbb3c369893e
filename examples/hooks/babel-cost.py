#!/usr/bin/env python3
"""[router.hooks] example: DLEP link metrics -> the Babel cost of a link.

dlep-router runs this once per destination change with one JSON object on
standard input (docs/dataplane.md, "Hooks"). It sets the receive cost
(``rxcost``) of the radio interface in babeld through babeld's read-write
local socket (``babeld -G /run/babeld.sock``), so Babel routes around a
degraded radio link and back when it recovers:

    rxcost = clamp(route_metric * factor, 1, 65534)     (up, update, restart)
    rxcost = 65535 (infinite: the link is unusable)      (down, pause)

babeld only applies a new rxcost to an interface it re-reads, so the hook
sends ``flush interface IF`` and then ``interface IF rxcost N``; it keeps
the last cost per interface in ``--state`` and does nothing when the cost
did not change, so small metric wobbles cause no re-convergence.

On a shared radio interface (one interface reaching several neighbours, as
with dlep-emu's TAP) an interface cost cannot tell neighbours apart, and
making it infinite because one neighbour went away would cut off all the
others. With ``--shared`` the hook keeps every destination's metric and
sets the interface cost from the best one (infinite only when none is
left); telling the neighbours apart is then babeld's own work (link
quality and RTT on that interface: see examples/mesh.toml). Every new cost
makes babeld flush the interface, which restarts all its neighbours there;
``--hysteresis PERCENT`` leaves the cost alone until the new one differs by
more than that. The flush also forgets the interface's other options (and
babeld applies ``default`` options only at start), so ``--options`` repeats
them: ``--options "type wireless enable-timestamps true"``.

    [router.hooks]
    command = ["/usr/bin/python3", "examples/hooks/babel-cost.py",
               "--socket", "/run/babeld.sock", "--interface", "radio0"]

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

INFINITY = 0xFFFF


def babel(path: str, *lines: str, timeout: float = 3.0) -> list[str]:
    """Send configuration lines to babeld's local socket; its answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        buf = b""
        while not buf.endswith(b"ok\n"):  # the banner ends with "ok"
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("babeld closed the connection")
            buf += chunk
        answers = []
        for line in lines:
            s.sendall(line.encode() + b"\n")
            out = b""
            while not out.endswith((b"ok\n", b"no\n", b"bad\n")):
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("babeld closed the connection")
                out += chunk
            answers.append(out.decode().strip().splitlines()[-1])
        return answers


def shared_cost(state: Path, interface: str, mac: str, cost: int) -> int:
    """Record ``mac``'s cost (infinite: forget it); the best recorded one.

    Hooks run one at a time (docs/dataplane.md), so a plain read-modify-write
    of the file is safe.
    """
    path = state / f"dlep-babel-costs.{interface}.json"
    costs: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}
    if cost >= INFINITY:
        costs.pop(mac, None)
    else:
        costs[mac] = cost
    path.write_text(json.dumps(costs))
    return min(costs.values(), default=INFINITY)


def wait_for(path: str, seconds: float) -> None:
    """Give a babeld started alongside the router time to open its socket."""
    deadline = time.monotonic() + seconds
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True, help="babeld's read-write local socket (-G)")
    p.add_argument("--interface", required=True, help="the radio interface in babeld")
    p.add_argument("--factor", type=float, default=4.0, help="rxcost per route-metric point")
    p.add_argument(
        "--state",
        default="/tmp",
        help="directory for the last cost per interface (created if missing)",
    )
    p.add_argument(
        "--shared",
        action="store_true",
        help="one interface reaches several destinations: cost from the best of them",
    )
    p.add_argument(
        "--options", default="", help="the interface's other babeld options, kept across the flush"
    )
    p.add_argument(
        "--hysteresis",
        type=float,
        default=0.0,
        help="keep the cost until the new one differs by more than this percentage",
    )
    p.add_argument(
        "--wait", type=float, default=3.0, help="seconds to wait for babeld's socket to appear"
    )
    args = p.parse_args()

    change = json.load(sys.stdin)
    if change["event"] in ("down", "pause"):
        cost = INFINITY
    else:
        cost = max(1, min(int(change["route_metric"] * args.factor), INFINITY - 1))
    Path(args.state).mkdir(parents=True, exist_ok=True)
    if args.shared:
        cost = shared_cost(Path(args.state), args.interface, change["destination"]["mac"], cost)
    state = Path(args.state) / f"dlep-babel-cost.{args.interface}"
    last = int(state.read_text()) if state.exists() else None
    if last == cost:
        return 0
    if (
        last is not None
        and INFINITY not in (last, cost)
        and abs(cost - last) <= last * args.hysteresis / 100
    ):
        return 0
    wait_for(args.socket, args.wait)
    answers = babel(
        args.socket,
        f"flush interface {args.interface}",
        " ".join(["interface", args.interface, *args.options.split(), "rxcost", str(cost)]),
    )
    if answers[-1] != "ok":
        print(f"babeld refused the new cost: {answers}", file=sys.stderr)
        return 1
    state.write_text(f"{cost}\n")
    print(
        f"{change['event']} {change['destination']['mac']}: {args.interface} rxcost {cost}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
