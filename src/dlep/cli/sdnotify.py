"""systemd's readiness protocol (``Type=notify``), with the standard library.

sd_notify(3): when systemd starts a service with ``NOTIFY_SOCKET`` set, the
service sends newline-separated ``KEY=VALUE`` states as one datagram to that
Unix socket: ``READY=1`` once it serves, ``RELOADING=1`` / ``READY=1`` around
a reload, ``STOPPING=1`` when it begins to shut down and ``WATCHDOG=1`` at
least every ``WATCHDOG_USEC`` microseconds. Without ``NOTIFY_SOCKET`` every
call is a no-op, so the daemons behave the same outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("dlep.systemd")


def notify(*states: str) -> bool:
    """Send ``states`` (``"READY=1"``, ...) to systemd; False if not under
    systemd's notify protocol or the socket could not take it."""
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    if addr[0] == "@":
        addr = "\0" + addr[1:]  # Linux abstract namespace
    elif addr[0] != "/":
        log.debug("NOTIFY_SOCKET %r: only Unix socket paths are supported", addr)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall("\n".join(states).encode())
    except OSError as exc:
        # Readiness is best-effort: systemd reports a missing READY=1 itself.
        log.warning("sd_notify %s: %s", ", ".join(states), exc)
        return False
    return True


def reloading() -> bool:
    """``RELOADING=1`` with the monotonic time systemd requires for it."""
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return notify("RELOADING=1", f"MONOTONIC_USEC={usec}")


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``, as
    sd_watchdog_enabled(3) advises), or None when the watchdog is off or
    meant for another process (``WATCHDOG_PID``)."""
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    usec = os.environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 2e6
