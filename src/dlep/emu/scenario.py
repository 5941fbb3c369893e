"""Scenario files: nodes, links, a timeline, and the DLEP reporting policy.

A scenario is a TOML file validated the way :mod:`dlep.config` validates
daemon configurations: every table is a pydantic model with
``extra="forbid"``, and everything wrong surfaces as one
:class:`dlep.config.ConfigError` naming each bad key::

    line4.toml: links[2].loss: Input should be less than or equal to 1, got 1.5

:func:`load_scenario` returns a :class:`Scenario`; :meth:`Scenario.topology`
resolves it into plain values (per directed link its
:class:`~dlep.emu.channel.ChannelParams`, the timeline as
:class:`TimelineChange` records) that the emulator uses. Every key is
documented in ``docs/emulator.md``.

The per-node ``router_config`` / ``modem_config`` tables are passed through
verbatim into the generated ``dlep-router`` / modem configurations (deep
merge, the scenario's values win), and the result is validated with
:mod:`dlep.config` at load time, so a bad key there is reported as
``nodes[1].router_config.router.kernel.xyz``.

``commands`` (scenario-wide and per node) are programs the runner starts
inside each node's namespace after its router, e.g. a routing daemon; their
arguments, like the argv of ``router_config.router.hooks.command``, may name
``{node}``, ``{interface}``, ``{run_dir}`` and ``{scenario_dir}``
(:func:`expand_placeholders`), checked here so a typo names its key.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from ..config import (
    ConfigError,
    ConfigProblem,
    format_key,
    parse_latency,
    parse_modem_config,
    parse_rate,
    parse_router_config,
    problems_from,
    read_toml,
)
from .channel import ChannelParams

__all__ = [
    "DEFAULT_BASE_PORT",
    "PLACEHOLDERS",
    "DlepSettings",
    "EmulatorSettings",
    "LinkSpec",
    "NodeSpec",
    "ResolvedNode",
    "Scenario",
    "TimelineChange",
    "Topology",
    "expand_placeholders",
    "load_scenario",
    "merge_tables",
    "parse_duration",
    "parse_scenario",
]

#: First UDP port of the emulators when nodes give no ``address``.
DEFAULT_BASE_PORT: Final = 47000
#: DLEP TCP port inside each node's namespace (nobody else is there).
DEFAULT_DLEP_PORT: Final = 854
_NAME_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,11}$")
_IFNAME_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAC_RE: Final = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")
_DURATION_RE: Final = re.compile(r"^(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>ms|s|m|min|h)?$")
_DURATION_UNITS: Final[dict[str, float]] = {
    "": 1.0,
    "s": 1.0,
    "ms": 1e-3,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}


# --------------------------------------------------------------------------
# Value parsers
# --------------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string: ``"10s"``, ``"500ms"``, ``"2m"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration, got a boolean (e.g. 10, '10s', '500ms')")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if m is None:
            raise ValueError(f"invalid duration {value!r} (e.g. 10, '10s', '500ms', '2m')")
        return float(m["num"]) * _DURATION_UNITS[m["unit"] or ""]
    raise ValueError(f"expected a duration, got {type(value).__name__}")


def _rate(value: object) -> int:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"expected a data rate ('20M', 20000000), got {value!r}")
    out = parse_rate(value)
    if out < 1:
        raise ValueError("a link's rate must be at least 1 bit/s (use a large rate for 'no limit')")
    return out


def _latency(value: object) -> int:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"expected a latency ('10ms', 10000), got {value!r}")
    return parse_latency(value)


def _size(value: object) -> object:
    """Bytes from an int or ``"64k"`` / ``"1M"`` (decimal prefixes, bytes)."""
    if isinstance(value, str):
        m = re.match(r"^(\d+)\s*([kKmM]?)[bB]?$", value.strip())
        if m is None:
            raise ValueError(f"invalid size {value!r} (bytes, e.g. 65536 or '64k')")
        return int(m[1]) * {"": 1, "k": 1000, "m": 1_000_000}[m[2].lower()]
    return value


def _mac(value: object) -> str:
    if not isinstance(value, str) or not _MAC_RE.match(value.strip()):
        raise ValueError(f"not an EUI-48 MAC address: {value!r} (e.g. '02:00:00:00:00:01')")
    mac = value.strip().replace("-", ":").lower()
    if int(mac[:2], 16) & 1:
        raise ValueError(f"{mac} is a multicast MAC address; a radio needs a unicast one")
    return mac


def _host_port(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected 'host:port', got {value!r}")
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: expected 'host:port' with a port 1-65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{value!r}: {host!r} is not an IP address") from None
    return f"{host}:{port}"


def _interface_address(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an address with prefix length ('10.0.0.1/24'), got {value!r}")
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    if "/" not in value:
        raise ValueError(f"{value!r}: give the prefix length too, e.g. '{value}/24'")
    return str(iface)


Rate = Annotated[int, BeforeValidator(_rate)]
LatencyUs = Annotated[int, BeforeValidator(_latency)]
Seconds = Annotated[float, BeforeValidator(parse_duration)]
Bytes = Annotated[int, BeforeValidator(_size), Field(strict=True, ge=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Mtu = Annotated[int, Field(strict=True, ge=68, le=65535)]
MacStr = Annotated[str, BeforeValidator(_mac)]
HostPort = Annotated[str, BeforeValidator(_host_port)]
IfaceAddr = Annotated[str, BeforeValidator(_interface_address)]
Ms = Annotated[int, Field(strict=True, ge=1, le=3_600_000)]
#: A program and its arguments, run without a shell.
Argv = Annotated[tuple[str, ...], Field(min_length=1)]

#: What ``commands`` and a hook's argv may name: replaced per node at run time.
PLACEHOLDERS: Final = ("node", "interface", "run_dir", "scenario_dir")


def _placeholder_problem(text: str) -> str | None:
    """Why ``text`` is not a valid template (None: it is)."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"{text!r}: {exc} (write {{{{ and }}}} for literal braces)"
    for _literal, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return (
                f"{text!r}: unknown placeholder {{{name}}} (known: {known}; "
                "write {{ and }} for literal braces)"
            )
    return None


def expand_placeholders(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` of :data:`PLACEHOLDERS` replaced from ``values``."""
    return text.format_map(values)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


class ScenarioMeta(_Model):
    """``[scenario]``: name, seed, length of the run, ports."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = "scenario"
    seed: int = 1
    duration: Seconds = 0.0
    base_port: Annotated[int, Field(strict=True, ge=1024, le=65000)] = DEFAULT_BASE_PORT
    dlep_port: Annotated[int, Field(strict=True, ge=1, le=65535)] = DEFAULT_DLEP_PORT


class EmulatorSettings(_Model):
    """``[emulator]``: neighbour detection, MAC learning, metrics endpoints."""

    keepalive_interval_ms: Ms = 200
    dead_intervals: Annotated[int, Field(strict=True, ge=2, le=1000)] = 5
    loss_window: Annotated[int, Field(strict=True, ge=4, le=10_000)] = 100
    rtt_smoothing: Annotated[float, Field(gt=0.0, le=1.0)] = 0.25
    mac_aging: Seconds = 300.0
    mac_table_size: Annotated[int, Field(strict=True, ge=16, le=1_000_000)] = 4096
    metrics_base_port: Annotated[int, Field(strict=True, ge=0, le=65000)] = 0


class DlepSettings(_Model):
    """``[dlep]``: when a measured change is worth a Destination Update."""

    update_interval_ms: Ms = 1000
    rate_change_percent: Annotated[float, Field(ge=0.0, le=100.0)] = 5.0
    latency_change_percent: Annotated[float, Field(ge=0.0, le=1000.0)] = 10.0
    latency_change_min: LatencyUs = 500
    rlq_change: Annotated[int, Field(strict=True, ge=0, le=100)] = 5
    resources_change: Annotated[int, Field(strict=True, ge=0, le=100)] = 10


class LinkParamsTable(_Model):
    """Channel parameters; every key optional (unset: inherited)."""

    rate: Rate | None = None
    latency: LatencyUs | None = None
    jitter: LatencyUs | None = None
    loss: Probability | None = None
    mtu: Mtu | None = None
    queue: Bytes | None = None
    burst: Bytes | None = None
    up: StrictBool | None = None

    def given(self) -> dict[str, Any]:
        """The keys that were set."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class DefaultsTable(_Model):
    """``[defaults]``: what links inherit."""

    link: LinkParamsTable = Field(default_factory=LinkParamsTable)


class CommandSpec(_Model):
    """``[[commands]]`` / a node's ``commands``: a program run in the node's namespace."""

    argv: Argv

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.argv[0].strip():
            raise ValueError("argv[0] is empty: it names the program (no shell is used)")
        return self


class NodeSpec(_Model):
    """``[[nodes]]``: one emulated radio and the router behind it."""

    name: str
    host: str = "local"
    address: HostPort | None = None
    mac: MacStr | None = None
    tap: str = "radio0"
    ipv4: tuple[IfaceAddr, ...] = ()
    ipv6: tuple[IfaceAddr, ...] = ()
    loopback: tuple[IfaceAddr, ...] = ()
    router: StrictBool = True
    metrics_listen: HostPort | None = None
    router_config: dict[str, Any] = Field(default_factory=dict)
    modem_config: dict[str, Any] = Field(default_factory=dict)
    commands: tuple[CommandSpec, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not _NAME_RE.match(self.name):
            raise ValueError(
                f"name {self.name!r}: 1-12 letters, digits or '_', starting with a letter "
                "(it becomes part of namespace and file names)"
            )
        if not _IFNAME_RE.match(self.tap):
            raise ValueError(f"tap {self.tap!r}: an interface name of 1-15 characters")
        for v4 in self.ipv4:
            if ipaddress.ip_interface(v4).version != 4:
                raise ValueError(f"ipv4: {v4} is not an IPv4 address")
        for v6 in self.ipv6:
            if ipaddress.ip_interface(v6).version != 6:
                raise ValueError(f"ipv6: {v6} is not an IPv6 address")
        return self


class LinkSpec(LinkParamsTable):
    """``[[links]]``: a radio link between nodes ``a`` and ``b``."""

    a: str
    b: str
    ab: LinkParamsTable = Field(default_factory=LinkParamsTable)
    ba: LinkParamsTable = Field(default_factory=LinkParamsTable)


class EventSpec(_Model):
    """``[[timeline]]``: a change at time ``at``."""

    at: Seconds
    link: tuple[str, str] | None = None
    direction: Literal["both", "ab", "ba"] = "both"
    set: LinkParamsTable | None = None
    node: str | None = None
    in_range: StrictBool | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.link is None) == (self.node is None):
            raise ValueError("give exactly one of 'link' (with 'set') or 'node' (with 'in_range')")
        if self.link is not None and (self.set is None or not self.set.given()):
            raise ValueError("a link event needs 'set' with at least one channel key")
        if self.link is not None and self.in_range is not None:
            raise ValueError("'in_range' belongs to node events; use set = { up = ... }")
        if self.node is not None and self.in_range is None:
            raise ValueError("a node event needs 'in_range' (true or false)")
        if self.node is not None and self.set is not None:
            raise ValueError("a node event takes 'in_range', not 'set'")
        return self


class Scenario(_Model):
    """A whole scenario file."""

    scenario: ScenarioMeta = Field(default_factory=ScenarioMeta)
    emulator: EmulatorSettings = Field(default_factory=EmulatorSettings)
    dlep: DlepSettings = Field(default_factory=DlepSettings)
    defaults: DefaultsTable = Field(default_factory=DefaultsTable)
    router_config: dict[str, Any] = Field(default_factory=dict)
    modem_config: dict[str, Any] = Field(default_factory=dict)
    commands: tuple[CommandSpec, ...] = ()
    nodes: tuple[NodeSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    timeline: tuple[EventSpec, ...] = ()

    def topology(self) -> Topology:
        """The scenario resolved into plain values (see :class:`Topology`)."""
        return _resolve(self)


# --------------------------------------------------------------------------
# Resolved form
# --------------------------------------------------------------------------

#: Defaults of a link's channel when neither the link nor ``[defaults.link]`` sets them.
LINK_DEFAULTS: Final[dict[str, Any]] = {
    "rate": 54_000_000,
    "latency": 1000,
    "jitter": 0,
    "loss": 0.0,
    "mtu": 1500,
    "queue": 0,
    "burst": 0,
    "up": True,
}


@dataclass(frozen=True, slots=True)
class ResolvedNode:
    """A node with everything defaulted: its index is its id on the wire."""

    index: int
    name: str
    host: str
    address: tuple[str, int]
    mac: str
    tap: str
    ipv4: tuple[str, ...]
    ipv6: tuple[str, ...]
    router: bool
    metrics_listen: tuple[str, int] | None
    router_config: dict[str, Any]
    modem_config: dict[str, Any]
    #: Addresses of the namespace's loopback (e.g. what a routing daemon announces).
    loopback: tuple[str, ...] = ()
    #: Programs started in the namespace after the router: the scenario's, then the node's.
    commands: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class TimelineChange:
    """At ``at`` seconds after the start, the link ``src -> dst`` takes ``changes``."""

    at: float
    src: int
    dst: int
    changes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Topology:
    """Nodes, directed links and the timeline, ready for the emulator."""

    name: str
    seed: int
    duration: float
    dlep_port: int
    emulator: EmulatorSettings
    dlep: DlepSettings
    nodes: tuple[ResolvedNode, ...]
    #: (src index, dst index) -> channel parameters at the start.
    links: Mapping[tuple[int, int], ChannelParams]
    timeline: tuple[TimelineChange, ...]
    by_name: Mapping[str, int] = field(default_factory=dict)

    def peers(self, node: int) -> list[int]:
        """The nodes ``node`` has a link to (its possible neighbours)."""
        return sorted(dst for src, dst in self.links if src == node)

    def hosts(self) -> list[str]:
        """The distinct ``host`` values, in node order."""
        return list(dict.fromkeys(n.host for n in self.nodes))


def default_mac(index: int) -> str:
    """The TAP MAC of node ``index`` when the scenario gives none."""
    return "02:e0:00:00:{:02x}:{:02x}".format(*divmod(index + 1, 256))


def merge_tables(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` deep-merged with ``extra`` (tables merge, anything else is replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_tables(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _channel(values: Mapping[str, Any]) -> ChannelParams:
    return ChannelParams(
        rate=values["rate"],
        latency_us=values["latency"],
        jitter_us=values["jitter"],
        loss=values["loss"],
        mtu=values["mtu"],
        queue_bytes=values["queue"],
        burst_bytes=values["burst"],
        up=values["up"],
    )


Problem = tuple[tuple[str | int, ...], str]


def _resolve(sc: Scenario) -> Topology:
    problems: list[Problem] = []
    by_name: dict[str, int] = {}
    for i, n in enumerate(sc.nodes):
        if n.name in by_name:
            problems.append(
                (("nodes", i, "name"), f"{n.name!r} duplicates nodes[{by_name[n.name]}]")
            )
        by_name.setdefault(n.name, i)
    seen_addr: dict[tuple[str, int], int] = {}
    seen_mac: dict[str, int] = {}
    nodes: list[ResolvedNode] = []
    for i, n in enumerate(sc.nodes):
        if n.address is not None:
            host, port = n.address.rsplit(":", 1)
            addr = (host, int(port))
        else:
            addr = ("127.0.0.1", sc.scenario.base_port + i)
        if addr in seen_addr:
            problems.append(
                (("nodes", i, "address"), f"{addr[0]}:{addr[1]} is also nodes[{seen_addr[addr]}]'s")
            )
        seen_addr.setdefault(addr, i)
        mac = n.mac or default_mac(i)
        if mac in seen_mac:
            problems.append((("nodes", i, "mac"), f"{mac} is also nodes[{seen_mac[mac]}]'s"))
        seen_mac.setdefault(mac, i)
        metrics: tuple[str, int] | None = None
        if n.metrics_listen is not None:
            h, p = n.metrics_listen.rsplit(":", 1)
            metrics = (h, int(p))
        elif sc.emulator.metrics_base_port:
            metrics = ("127.0.0.1", sc.emulator.metrics_base_port + i)
        nodes.append(
            ResolvedNode(
                index=i,
                name=n.name,
                host=n.host,
                address=addr,
                mac=mac,
                tap=n.tap,
                ipv4=n.ipv4,
                ipv6=n.ipv6,
                router=n.router,
                metrics_listen=metrics,
                router_config=merge_tables(sc.router_config, n.router_config),
                modem_config=merge_tables(sc.modem_config, n.modem_config),
                loopback=n.loopback,
                commands=tuple(c.argv for c in (*sc.commands, *n.commands)),
            )
        )
        for k, cmd in enumerate(n.commands):
            problems += _argv_problems(("nodes", i, "commands", k, "argv"), cmd.argv)
        hook = nodes[-1].router_config.get("router", {}).get("hooks", {}).get("command")
        if isinstance(hook, list):
            where = ("nodes", i, "router_config", "router", "hooks", "command")
            problems += _argv_problems(where, [a for a in hook if isinstance(a, str)])
    for k, cmd in enumerate(sc.commands):
        problems += _argv_problems(("commands", k, "argv"), cmd.argv)

    if len({n.host for n in sc.nodes}) > 1:
        for i, n in enumerate(sc.nodes):
            if n.address is None:
                problems.append(
                    (
                        ("nodes", i, "address"),
                        "required when nodes run on several hosts: the address (host:port) "
                        "where the other hosts reach this node's emulator",
                    )
                )
    base = {**LINK_DEFAULTS, **sc.defaults.link.given()}
    links: dict[tuple[int, int], ChannelParams] = {}
    pair_of: dict[frozenset[int], int] = {}
    for k, ln in enumerate(sc.links):
        ends: list[int] = []
        for key, name in (("a", ln.a), ("b", ln.b)):
            if name not in by_name:
                problems.append((("links", k, key), _unknown_node(name, by_name)))
            else:
                ends.append(by_name[name])
        if len(ends) != 2:
            continue
        a, b = ends
        if a == b:
            problems.append((("links", k, "b"), "a link joins two different nodes"))
            continue
        pair = frozenset(ends)
        if pair in pair_of:
            problems.append((("links", k), f"{ln.a}-{ln.b} is already links[{pair_of[pair]}]"))
            continue
        pair_of[pair] = k
        both = {**base, **LinkParamsTable.model_validate(_params_of(ln)).given()}
        for (src, dst), direction, key in ((a, b), ln.ab, "ab"), ((b, a), ln.ba, "ba"):
            values = {**both, **direction.given()}
            try:
                links[(src, dst)] = _channel(values)
            except ValueError as exc:
                problems.append((("links", k, key), str(exc)))

    timeline: list[TimelineChange] = []
    for k, ev in enumerate(sc.timeline):
        if ev.node is not None:
            if ev.node not in by_name:
                problems.append((("timeline", k, "node"), _unknown_node(ev.node, by_name)))
                continue
            me = by_name[ev.node]
            for src, dst in links:
                if me in (src, dst):
                    timeline.append(TimelineChange(ev.at, src, dst, {"up": ev.in_range}))
            continue
        assert ev.link is not None and ev.set is not None
        names = ev.link
        missing = [x for x in names if x not in by_name]
        if missing:
            problems.append((("timeline", k, "link"), _unknown_node(missing[0], by_name)))
            continue
        a, b = by_name[names[0]], by_name[names[1]]
        if (a, b) not in links:
            problems.append(
                (("timeline", k, "link"), f"no link between {names[0]} and {names[1]} in [[links]]")
            )
            continue
        dirs = {"both": [(a, b), (b, a)], "ab": [(a, b)], "ba": [(b, a)]}[ev.direction]
        for src, dst in dirs:
            timeline.append(TimelineChange(ev.at, src, dst, ev.set.given()))
    timeline.sort(key=lambda t: t.at)

    if problems:
        raise _Problems(problems)
    return Topology(
        name=sc.scenario.name,
        seed=sc.scenario.seed,
        duration=sc.scenario.duration,
        dlep_port=sc.scenario.dlep_port,
        emulator=sc.emulator,
        dlep=sc.dlep,
        nodes=tuple(nodes),
        links=links,
        timeline=tuple(timeline),
        by_name=by_name,
    )


def _argv_problems(where: tuple[str | int, ...], argv: Sequence[str]) -> list[Problem]:
    out: list[Problem] = []
    for j, arg in enumerate(argv):
        why = _placeholder_problem(arg)
        if why is not None:
            out.append(((*where, j), why))
    return out


def _params_of(ln: LinkSpec) -> dict[str, Any]:
    return {k: getattr(ln, k) for k in LinkParamsTable.model_fields if getattr(ln, k) is not None}


def _unknown_node(name: str, by_name: Mapping[str, int]) -> str:
    hint = difflib.get_close_matches(name, list(by_name), n=1)
    did = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"no node named {name!r} in [[nodes]]{did}"


class _Problems(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{format_key(p)}: {m}" for p, m in self.problems))


# --------------------------------------------------------------------------
# Loading and error reporting
# --------------------------------------------------------------------------


def _node_configs(sc: Scenario, topo: Topology) -> list[ConfigProblem]:
    """Validate each node's generated router and modem configuration."""
    from .configs import modem_config_data, router_config_data

    out: list[ConfigProblem] = []
    for node in topo.nodes:
        for what, data, parse in (
            (
                "router_config",
                router_config_data(topo, node, run_dir=Path("/run")),
                parse_router_config,
            ),
            (
                "modem_config",
                modem_config_data(topo, node, run_dir=Path("/run")),
                parse_modem_config,
            ),
        ):
            try:
                parse(data, source="")
            except ConfigError as exc:
                for p in exc.problems:
                    key = f"nodes[{node.index}].{what}" + (f".{p.key}" if p.key else "")
                    out.append(ConfigProblem(key, p.message))
    return out


def parse_scenario(data: object, *, source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as the parsed TOML; raises ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(source, "expected a table of sections")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc, Scenario)) from None
    try:
        topo = sc.topology()
    except _Problems as exc:
        problems = [ConfigProblem(format_key(p), m) for p, m in exc.problems]
        raise ConfigError(source, problems) from None
    node_problems = _node_configs(sc, topo)
    if node_problems:
        raise ConfigError(source, node_problems)
    return sc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ConfigError naming every bad key."""
    data, source, _directory = read_toml(path, what="scenario")
    return parse_scenario(data, source=source)
