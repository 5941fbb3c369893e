"""``python -m dlep.cli.demo``: a modem and a router on loopback, side by side.

Runs ``dlep-modem`` and ``dlep-router`` as two processes with the example
configurations, prefixes and colours their log lines, and stops both on
Ctrl-C (each sends Session Termination as it goes).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

COLOURS = {"modem": "\033[36m", "router": "\033[33m"}
RESET = "\033[0m"


def _pump(name: str, stream: IO[str], lock: threading.Lock, colour: bool) -> None:
    tag = f"{COLOURS[name]}{name:>6}{RESET}" if colour else f"{name:>6}"
    for line in stream:
        with lock:
            sys.stdout.write(f"{tag} | {line}")
            sys.stdout.flush()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C (or ``--seconds``)."""
    p = argparse.ArgumentParser(prog="dlep-demo", description=__doc__)
    p.add_argument("--examples", type=Path, default=Path("examples"), help="folder of *.toml")
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = p.parse_args(argv)
    colour = sys.stdout.isatty()
    lock = threading.Lock()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    procs: dict[str, subprocess.Popen[str]] = {}
    for name in ("modem", "router"):
        cfg = args.examples / f"{name}.toml"
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"dlep.cli.{name}", "--config", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us; we forward it in order
        )
        t = threading.Thread(target=_pump, args=(name, procs[name].stdout, lock, colour))
        t.daemon = True
        t.start()
        if name == "modem":
            time.sleep(0.5)  # let it listen before the router connects
    print("demo running: modem and router on loopback; Ctrl-C stops both", flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    # The daemons run in sessions of their own (so Ctrl-C reaches only us):
    # on SIGTERM or SIGHUP too (kill, timeout, a closed terminal) we must
    # stop them, or they outlive the demo holding its ports.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        while all(pr.poll() is None for pr in procs.values()):
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    for name in ("router", "modem"):
        pr = procs[name]
        if pr.poll() is None:
            pr.send_signal(signal.SIGINT)
            try:
                pr.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pr.kill()
    codes = {n: pr.wait() for n, pr in procs.items()}
    time.sleep(0.1)
    bad = {n: c for n, c in codes.items() if c != 0}
    if bad:
        print(f"demo: exit codes {bad}", file=sys.stderr)
        return 1
    print("demo stopped cleanly", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
