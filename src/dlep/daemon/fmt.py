"""Human-readable rendering of metrics for logs and tables."""

from __future__ import annotations

from ..fsm import Metrics


def rate(bps: int) -> str:
    """``54000000`` -> ``54 Mb/s``."""
    for unit, scale in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.3g} {unit}"
    return f"{bps} b/s"


def latency(us: int) -> str:
    """``1500`` -> ``1.5 ms``."""
    if us >= 1_000_000:
        return f"{us / 1e6:.3g} s"
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    return f"{us} us"


def metrics(m: Metrics) -> str:
    """One-line summary of the fields that are set."""
    parts: list[str] = []
    for name in ("mdrr", "mdrt", "cdrr", "cdrt"):
        v = getattr(m, name)
        if v is not None:
            parts.append(f"{name}={rate(v)}")
    if m.latency is not None:
        parts.append(f"latency={latency(m.latency)}")
    for name in ("resources", "rlqr", "rlqt"):
        v = getattr(m, name)
        if v is not None:
            parts.append(f"{name}={v}%")
    if m.mtu is not None:
        parts.append(f"mtu={m.mtu}")
    return " ".join(parts) or "-"
