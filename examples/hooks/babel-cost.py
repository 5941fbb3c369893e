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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True, help="babeld's read-write local socket (-G)")
    p.add_argument("--interface", required=True, help="the radio interface in babeld")
    p.add_argument("--factor", type=float, default=4.0, help="rxcost per route-metric point")
    p.add_argument("--state", default="/tmp", help="directory for the last cost per interface")
    args = p.parse_args()

    change = json.load(sys.stdin)
    if change["event"] in ("down", "pause"):
        cost = INFINITY
    else:
        cost = max(1, min(int(change["route_metric"] * args.factor), INFINITY - 1))
    state = Path(args.state) / f"dlep-babel-cost.{args.interface}"
    if state.exists() and state.read_text().strip() == str(cost):
        return 0
    answers = babel(
        args.socket,
        f"flush interface {args.interface}",
        f"interface {args.interface} rxcost {cost}",
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
