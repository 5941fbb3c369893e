"""Rendering a run for people: the live view of ``dlep-emu run`` and the
tables of ``dlep-emu status`` (rich renderables built from node snapshots)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = [
    "destinations_table",
    "drops_table",
    "events_text",
    "fmt_rate",
    "links_table",
    "live_view",
    "macs_table",
    "neighbours_table",
]


def fmt_rate(bits: float | None) -> str:
    """``20.0M`` style."""
    if bits is None:
        return "-"
    for prefix, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits >= f:
            return f"{bits / f:.1f}{prefix}"
    return f"{bits:.0f}"


def _us(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}ms"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def links_table(statuses: Mapping[str, dict[str, Any]]) -> Table:
    """Every directed link: its channel now and its counters."""
    t = Table(title="links", title_justify="left", expand=False)
    for col in ("link", "state", "rate", "latency", "loss", "mtu", "queue", "out", "in", "drops"):
        t.add_column(col, justify="right" if col not in ("link", "state", "drops") else "left")
    for name, st in statuses.items():
        for ln in st.get("links", []):
            rate = fmt_rate(ln["rate"])
            if ln.get("granted_rate"):
                rate += f" (grant {fmt_rate(ln['granted_rate'])})"
            fill = ln["queue_bytes"] / max(1, ln["queue_size"])
            drops = ", ".join(f"{k} {v}" for k, v in ln["drops"].items()) or "-"
            t.add_row(
                f"{name}→{ln['peer']}",
                Text("up", "green") if ln["up"] else Text("down", "red"),
                rate,
                _us(ln["latency_us"]) + (f" ±{_us(ln['jitter_us'])}" if ln["jitter_us"] else ""),
                _pct(ln["loss"]),
                str(ln["mtu"]),
                f"{fill * 100:.0f}%",
                f"{ln['frames_out']}",
                f"{ln['frames_in']}",
                drops,
            )
    return t


def neighbours_table(statuses: Mapping[str, dict[str, Any]]) -> Table:
    """What each node's probes measure."""
    t = Table(title="neighbours (measured)", title_justify="left")
    for col in ("node", "neighbour", "state", "RTT", "rx loss", "tx loss", "addresses"):
        t.add_column(col)
    for name, st in statuses.items():
        for nb in st.get("neighbours", []):
            state = nb["state"]
            style = {"up": "green", "heard": "yellow"}.get(state, "red")
            rtt = "-" if nb["rtt_ms"] is None else f"{nb['rtt_ms']:.1f}ms"
            t.add_row(
                name,
                nb["peer"],
                Text(state, style),
                rtt,
                _pct(nb["rx_loss"]),
                _pct(nb["tx_loss"]),
                ", ".join(nb["addresses"]) or "-",
            )
    return t


def destinations_table(
    dests: Mapping[str, Sequence[dict[str, Any]] | str], names: Mapping[str, str]
) -> Table:
    """What each router learned over DLEP (``names``: MAC -> node name)."""
    t = Table(title="destinations at each router (DLEP)", title_justify="left")
    for col in (
        "router",
        "destination",
        "CDRT/MDRT",
        "CDRR/MDRR",
        "latency",
        "RLQT/R",
        "res",
        "mtu",
    ):
        t.add_column(col)
    for router, rows in dests.items():
        if isinstance(rows, str):
            t.add_row(router, Text(rows, "yellow"), "", "", "", "", "", "")
            continue
        if not rows:
            t.add_row(router, Text("(none)", "dim"), "", "", "", "", "", "")
        for d in rows:
            m = d.get("metrics", {})
            t.add_row(
                router,
                f"{names.get(d['mac'], '?')} {d['mac']}",
                f"{fmt_rate(m.get('cdrt'))}/{fmt_rate(m.get('mdrt'))}",
                f"{fmt_rate(m.get('cdrr'))}/{fmt_rate(m.get('mdrr'))}",
                _us(m.get("latency")),
                f"{m.get('rlqt', '-')}/{m.get('rlqr', '-')}",
                str(m.get("resources", "-")),
                str(m.get("mtu", "-")),
            )
    return t


def macs_table(statuses: Mapping[str, dict[str, Any]]) -> Table:
    """Each node's MAC learning table."""
    t = Table(title="MAC tables", title_justify="left")
    for col in ("node", "mac", "behind", "idle"):
        t.add_column(col)
    for name, st in statuses.items():
        for e in st.get("macs", []):
            t.add_row(name, e["mac"], e["owner"], f"{e['idle']:.1f}s")
    return t


def drops_table(statuses: Mapping[str, dict[str, Any]]) -> Table:
    """Every drop counter: per link and per node."""
    t = Table(title="drops", title_justify="left")
    for col in ("node", "where", "reason", "frames"):
        t.add_column(col, justify="right" if col == "frames" else "left")
    for name, st in statuses.items():
        for reason, n in st.get("drops", {}).items():
            t.add_row(name, "node", reason, str(n))
        for ln in st.get("links", []):
            for reason, n in ln["drops"].items():
                t.add_row(name, f"link to {ln['peer']}", reason, str(n))
    return t


def events_text(statuses: Mapping[str, dict[str, Any]], last: int = 8) -> Text:
    """The most recent events of all nodes, oldest first."""
    evs = sorted(
        (e["at"], name, e["text"]) for name, st in statuses.items() for e in st.get("events", [])
    )[-last:]
    out = Text()
    for at, name, text in evs:
        out.append(time.strftime("%H:%M:%S ", time.localtime(at)), "dim")
        out.append(f"{name}: ", "bold")
        out.append(text + "\n")
    return out


def live_view(
    title: str,
    statuses: Mapping[str, dict[str, Any]],
    dests: Mapping[str, Sequence[dict[str, Any]] | str],
    names: Mapping[str, str],
) -> RenderableType:
    """The whole screen of ``dlep-emu run``."""
    clock = next((st.get("time") for st in statuses.values()), None)
    head = Text(f"{title}   t = {clock if clock is not None else '?'} s   (Ctrl-C stops)", "bold")
    return Group(
        head,
        links_table(statuses),
        neighbours_table(statuses),
        destinations_table(dests, names),
        events_text(statuses),
    )
