"""The configurations each node's ``dlep-router`` and modem are started with.

Generated from the scenario, then deep-merged with the scenario's
``router_config`` / ``modem_config`` tables (top level for every node, then
the node's own), so anything a daemon understands — ``[router.kernel]``,
extensions, timers, TLS — can be switched on from a scenario.

Where the DLEP session runs: with namespaces, the modem listens on
127.0.0.1 port ``scenario.dlep_port`` *inside the node's namespace* and the
router connects there (each namespace has its own loopback, so every node
uses the same port). Without namespaces (``--radios-only``) node *i*'s modem
listens on 127.0.0.1 port ``base_port + i`` (TCP; the emulators use the same
numbers over UDP).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .scenario import ResolvedNode, Topology, expand_placeholders, merge_tables

__all__ = [
    "modem_config_data",
    "modem_port",
    "node_placeholders",
    "router_config_data",
    "socket_paths",
]

_TIMERS: dict[str, Any] = {
    "heartbeat_interval_ms": 1000,
    "missed_heartbeats": 3,
    "reconnect_interval_ms": 500,
    "shutdown_timeout_ms": 1000,
}


def modem_port(topo: Topology, node: ResolvedNode, *, radios_only: bool = False) -> int:
    """The TCP port the node's modem listens on (see the module doc)."""
    if radios_only:
        return node.address[1]
    return topo.dlep_port


def socket_paths(run_dir: Path, node: ResolvedNode) -> dict[str, Path]:
    """Unix sockets of a node: its emulator status, its router's and modem's API."""
    return {
        "emu": run_dir / f"{node.name}.emu.sock",
        "router": run_dir / f"{node.name}.router.sock",
        "modem": run_dir / f"{node.name}.modem.sock",
    }


def node_placeholders(
    node: ResolvedNode, *, run_dir: Path, scenario_dir: Path | None = None
) -> dict[str, str]:
    """What ``{node}``, ``{interface}``, ``{run_dir}``, ``{scenario_dir}`` stand for."""
    return {
        "node": node.name,
        "interface": node.tap,
        "run_dir": str(run_dir),
        "scenario_dir": str(scenario_dir if scenario_dir is not None else run_dir),
    }


def router_config_data(
    topo: Topology,
    node: ResolvedNode,
    *,
    run_dir: Path,
    radios_only: bool = False,
    scenario_dir: Path | None = None,
) -> dict[str, Any]:
    """The node's ``dlep-router`` configuration (TOML shape).

    A hook's argv names per-node things (its routing daemon's socket, the
    TAP) that one scenario-wide table cannot spell out, hence the
    placeholders there.
    """
    port = modem_port(topo, node, radios_only=radios_only)
    network: dict[str, Any] = {"tcp_port": port}
    if not radios_only:
        network["interface"] = node.tap  # the modem-facing (radio) interface
    base: dict[str, Any] = {
        "network": network,
        "timers": dict(_TIMERS),
        "api": {"socket": str(socket_paths(run_dir, node)["router"])},
        "router": {
            "peer_type": f"dlep-emu router {node.name}",
            "discovery": False,
            "static_peers": [f"127.0.0.1:{port}"],
        },
    }
    out = merge_tables(base, node.router_config)
    hooks = out.get("router", {}).get("hooks")
    if isinstance(hooks, dict) and isinstance(hooks.get("command"), list):
        values = node_placeholders(node, run_dir=run_dir, scenario_dir=scenario_dir)
        hooks["command"] = [
            expand_placeholders(a, values) if isinstance(a, str) else a for a in hooks["command"]
        ]
    return out


def modem_config_data(
    topo: Topology, node: ResolvedNode, *, run_dir: Path, radios_only: bool = False
) -> dict[str, Any]:
    """The configuration of the node's modem (the ``ModemDaemon`` in its emulator)."""
    out = [p for (src, _dst), p in topo.links.items() if src == node.index]
    rate = max((p.rate for p in out), default=1)
    mtu = max((p.mtu for p in out), default=1500)
    base: dict[str, Any] = {
        "network": {
            "listen_addresses": ["127.0.0.1"],
            "tcp_port": modem_port(topo, node, radios_only=radios_only),
        },
        "timers": dict(_TIMERS),
        "api": {"socket": str(socket_paths(run_dir, node)["modem"])},
        "modem": {
            "peer_type": f"dlep-emu radio {node.name}",
            # Declares all nine metrics (RFC 8175 §12.6) so every destination may use them.
            "session_metrics": {
                "mdrr": rate,
                "mdrt": rate,
                "cdrr": 0,
                "cdrt": 0,
                "latency": 0,
                "resources": 100,
                "rlqr": 100,
                "rlqt": 100,
                "mtu": mtu,
            },
        },
    }
    return merge_tables(base, node.modem_config)
