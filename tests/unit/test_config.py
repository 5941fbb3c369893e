"""dlep.config: TOML loading, validation, error messages, overrides, unit parsing."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path
from typing import Any

import pydantic
import pytest

from dlep.config import (
    EXTENSION_NAMES,
    ConfigError,
    DestinationConfig,
    MetricsConfig,
    ModemConfig,
    RouterConfig,
    format_key,
    format_rate,
    load_modem_config,
    load_router_config,
    parse_extension,
    parse_latency,
    parse_modem_config,
    parse_peer,
    parse_rate,
    parse_router_config,
    problems_from,
)
from dlep.fsm import ConnectionPoint, Metrics, SessionConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SRC = "test.toml"
MAC1 = "02:00:00:00:00:01"
MAC2 = "02:00:00:00:00:02"


def modem_error(data: dict[str, Any], **kw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_modem_config(data, source=SRC, **kw)
    return info.value


def router_error(data: dict[str, Any], **kw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_router_config(data, source=SRC, **kw)
    return info.value


def assert_problem(err: ConfigError, key: str, fragment: str = "") -> None:
    """``err`` has a line ``test.toml: <key>: ...<fragment>...``."""
    lines = str(err).splitlines()
    prefix = f"{SRC}: {key}: "
    hits = [ln for ln in lines if ln.startswith(prefix)]
    assert hits, f"no problem for {key!r} in:\n{err}"
    assert any(fragment in ln for ln in hits), f"{fragment!r} not in {hits}"


def dest(mac: str = MAC1, **kw: Any) -> dict[str, Any]:
    return {"mac": mac, **kw}


# --------------------------------------------------------------------------
# Examples
# --------------------------------------------------------------------------


def test_router_example_loads() -> None:
    cfg = load_router_config(EXAMPLES / "router.toml")
    assert cfg.network.interface == "lo"
    assert cfg.router.discovery is False
    assert [(p.address, p.port) for p in cfg.router.static_peers] == [("127.0.0.1", 8854)]
    assert cfg.timers.heartbeat_interval_ms == 1000
    assert cfg.timers.allow_fast_timers is False
    peers = cfg.resolved_static_peers()
    assert [(p.host, p.port, p.tls) for p in peers] == [("127.0.0.1", 8854, False)]
    sc = cfg.session_config()
    assert isinstance(sc, SessionConfig)
    assert sc.heartbeat_interval_ms == 1000


def test_modem_example_loads() -> None:
    cfg = load_modem_config(EXAMPLES / "modem.toml")
    net = cfg.network
    assert net.interface == "lo"
    assert net.tcp_port == 8854
    assert [str(a) for a in net.listen_addresses] == ["127.0.0.1", "::1"]
    assert cfg.timers.heartbeat_interval_ms == 1000
    m = cfg.modem
    assert 3 <= len(m.destinations) <= 4
    assert m.simulate.enabled and m.simulate.interval_ms == 1000
    assert 0 < m.simulate.flap_probability < 0.2
    for d in m.destinations:
        merged = m.session_metrics.to_metrics().merged(d.metrics.to_metrics())
        merged.validate()
        assert merged.cdrr is not None and merged.mdrr is not None
        assert merged.cdrr <= merged.mdrr
    sc = cfg.session_config()
    sc.validate_for_modem()
    assert sc.peer_type.description == m.peer_type


@pytest.mark.parametrize(
    ("name", "loader"),
    [("modem-tls.toml", load_modem_config), ("router-tls.toml", load_router_config)],
)
def test_tls_examples_need_their_certificates(name: str, loader: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        loader(EXAMPLES / name)
    text = str(info.value)
    for key in ("cert", "key", "ca"):
        assert f"{EXAMPLES / name}: tls.{key}: file not found: " in text
    assert str(EXAMPLES / "certs") in text
    # --no-tls makes them usable as they are.
    cfg = loader(EXAMPLES / name, overrides={"network.use_tls": False})
    assert cfg.network.use_tls is False
    # With certificate files next to a copy, they load; paths are absolute.
    shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / "certs").mkdir()
    for f in ("ca.crt", "modem.crt", "modem.key", "router.crt", "router.key"):
        (tmp_path / "certs" / f).write_text("placeholder\n")
    cfg = loader(tmp_path / name)
    assert cfg.network.use_tls is True
    assert cfg.tls.ca == tmp_path / "certs" / "ca.crt"


def test_modem_tls_example_connection_points() -> None:
    cfg = load_modem_config(EXAMPLES / "modem-tls.toml", overrides={"network.use_tls": False})
    # use_tls = false is a master switch: no point offers TLS then.
    assert cfg.network.resolved_connection_points() == (
        ConnectionPoint(ipaddress.ip_address("127.0.0.1"), 8855, False),
    )


# --------------------------------------------------------------------------
# Defaults and helpers
# --------------------------------------------------------------------------


def test_defaults() -> None:
    r = parse_router_config({})
    assert r == RouterConfig()
    assert r.network.interface is None
    assert str(r.network.discovery_v4_group) == "224.0.0.117"
    assert str(r.network.discovery_v6_group) == "ff02::1:7"
    assert (r.network.discovery_port, r.network.tcp_port) == (854, 854)
    assert r.network.use_tls is False and r.network.gtsm_enforce is True
    assert r.timers.heartbeat_interval_ms == 60_000
    assert r.timers.discovery_interval_ms == 5_000
    assert r.timers.missed_heartbeats == 2
    assert r.timers.effective_init_timeout_ms == 240_000
    assert r.timers.reconnect_interval_ms == 1_000
    assert r.timers.shutdown_timeout_ms == 2_000
    assert r.timers.max_peer_heartbeat_interval_ms == 3_600_000
    assert r.session_config().max_peer_heartbeat_interval_ms == 3_600_000
    assert r.logging.level == "info" and r.logging.format == "text"
    assert r.api.socket is None
    assert r.router.peer_type == "dlep router" and r.router.discovery
    assert r.router.auto_accept_destinations
    m = parse_modem_config({})
    assert m == ModemConfig()
    assert [str(a) for a in m.network.listen_addresses] == ["0.0.0.0", "::"]
    assert m.modem.peer_type == "dlep modem" and m.modem.max_sessions == 1
    limit = parse_modem_config({"timers": {"max_peer_heartbeat_interval_ms": 7_200_000}})
    assert limit.session_config().max_peer_heartbeat_interval_ms == 7_200_000
    assert m.modem.session_metrics.to_metrics() == Metrics(0, 0, 0, 0, 0)
    sim = m.modem.simulate
    assert (sim.enabled, sim.interval_ms, sim.seed) == (False, 1000, None)
    assert (sim.walk_percent, sim.flap_probability, sim.down_ms) == (10.0, 0.0, 5000)


def test_partial_session_metrics_get_mandatory_zeros() -> None:
    m = parse_modem_config({"modem": {"session_metrics": {"mdrr": "1G", "mtu": 1500}}})
    assert m.modem.session_metrics.to_metrics() == Metrics(
        mdrr=10**9, mdrt=0, cdrr=0, cdrt=0, latency=0, mtu=1500
    )


def test_models_are_frozen() -> None:
    cfg = parse_router_config({})
    with pytest.raises(pydantic.ValidationError):
        cfg.network.tcp_port = 1


def test_destination_helpers() -> None:
    d = DestinationConfig(
        mac="02-AA-bb-00-00-01",
        ipv4=("10.0.0.1",),  # type: ignore[arg-type]
        ipv6_subnets=("fd00:1::/64",),  # type: ignore[arg-type]
    )
    assert d.mac == "02:aa:bb:00:00:01"
    assert d.mac_bytes() == bytes.fromhex("02aabb000001")
    assert not d.is_eui64
    assert d.addresses() == ["10.0.0.1", "fd00:1::/64"]
    e = DestinationConfig(mac="02:00:00:ff:fe:00:00:01")
    assert e.is_eui64 and len(e.mac_bytes()) == 8


def test_metrics_to_metrics() -> None:
    mc = MetricsConfig(mdrr="54M", cdrr="1.5M", latency="2ms", rlqr="80%")  # type: ignore[arg-type]
    assert mc.to_metrics() == Metrics(mdrr=54_000_000, cdrr=1_500_000, latency=2000, rlqr=80)


def test_extensions_by_name_and_number() -> None:
    cfg = parse_router_config(
        {"router": {"extensions": ["latency-range", "Multi_Hop", 65000, 4, "pause"]}}
    )
    assert cfg.router.extensions == (4, 1, 65000, 2)
    assert cfg.session_config().extensions == (4, 1, 65000, 2)
    assert EXTENSION_NAMES["credit-diffserv"] == 6


def test_static_peer_forms() -> None:
    cfg = parse_router_config(
        {
            "network": {"tcp_port": 9000, "use_tls": True},
            "tls": {"verify_peer": False},
            "router": {
                "static_peers": [
                    "192.0.2.1",
                    "[fe80::1]:854",
                    "2001:db8::7",
                    {"address": "192.0.2.2", "port": 855, "tls": False},
                ]
            },
        }
    )
    peers = [(p.host, p.port, p.tls) for p in cfg.resolved_static_peers()]
    assert peers == [
        ("192.0.2.1", 9000, True),
        ("fe80::1", 854, True),
        ("2001:db8::7", 9000, True),
        ("192.0.2.2", 855, False),
    ]


def test_relative_tls_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    for f in ("m.crt", "m.key"):
        (tmp_path / "pki" / f).write_text("x")
    path = tmp_path / "m.toml"
    path.write_text(
        '[network]\nuse_tls = true\n[tls]\ncert = "pki/m.crt"\nkey = "pki/m.key"\n',
        encoding="utf-8",
    )
    cfg = load_modem_config(path)
    assert cfg.tls.cert == tmp_path / "pki" / "m.crt"
    assert cfg.tls.key == tmp_path / "pki" / "m.key"


# --------------------------------------------------------------------------
# Validation rules: each names the file and the key
# --------------------------------------------------------------------------

ROUTER_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("multicast v4", {"network": {"discovery_v4_group": "10.0.0.1"}},
     "network.discovery_v4_group", "not an IPv4 multicast"),
    ("multicast v6", {"network": {"discovery_v6_group": "fe80::1"}},
     "network.discovery_v6_group", "not an IPv6 multicast"),
    ("v4 group not v4", {"network": {"discovery_v4_group": "ff02::1:7"}},
     "network.discovery_v4_group", "not an IPv4 address"),
    ("port 0", {"network": {"discovery_port": 0}}, "network.discovery_port", "got 0"),
    ("port big", {"network": {"tcp_port": 70000}}, "network.tcp_port", "65535"),
    ("port type", {"network": {"tcp_port": "854"}}, "network.tcp_port", "integer"),
    ("bool type", {"network": {"use_tls": "yes"}}, "network.use_tls", "boolean"),
    ("interface", {"network": {"interface": "eth 0"}}, "network.interface", "interface name"),
    ("listen addr", {"network": {"listen_addresses": ["1.2.3.4", "nope"]}},
     "network.listen_addresses[1]", "not an IPv4 or IPv6"),
    ("heartbeat rfc", {"timers": {"heartbeat_interval_ms": 500}},
     "timers.heartbeat_interval_ms", "RFC 8175 §7.3.1 minimum of 1000"),
    ("discovery rfc", {"timers": {"discovery_interval_ms": 999}},
     "timers.discovery_interval_ms", "§7.1"),
    ("fast floor", {"timers": {"heartbeat_interval_ms": 50, "allow_fast_timers": True}},
     "timers.heartbeat_interval_ms", "even with allow_fast_timers"),
    ("missed heartbeats", {"timers": {"missed_heartbeats": 1}},
     "timers.missed_heartbeats", "greater than or equal to 2"),
    ("init timeout", {"timers": {"init_timeout_ms": 0}}, "timers.init_timeout_ms", "got 0"),
    ("max peer heartbeat", {"timers": {"max_peer_heartbeat_interval_ms": 999}},
     "timers.max_peer_heartbeat_interval_ms", "below 1000 ms"),
    ("max peer heartbeat u32", {"timers": {"max_peer_heartbeat_interval_ms": 2**32}},
     "timers.max_peer_heartbeat_interval_ms", "less than or equal to 4294967295"),
    ("log level", {"logging": {"level": "loud"}}, "logging.level", "'debug'"),
    ("log format", {"logging": {"format": "xml"}}, "logging.format", "'json'"),
    ("api socket type", {"api": {"socket": 1}}, "api.socket", "string"),
    ("ext name", {"router": {"extensions": ["pase"]}},
     "router.extensions[0]", "did you mean 'pause'"),
    ("ext range", {"router": {"extensions": [65535]}}, "router.extensions[0]", "1..65534"),
    ("peer port", {"router": {"static_peers": ["127.0.0.1:0"]}},
     "router.static_peers[0]", "out of range"),
    ("peer host", {"router": {"static_peers": ["modem.local:854"]}},
     "router.static_peers[0].address", "not an IP address"),
    ("peer v6 no brackets", {"router": {"static_peers": ["fe80::1::2:854"]}},
     "router.static_peers[0]", "[addr]:port"),
    ("peer table", {"router": {"static_peers": [{"port": 854}]}},
     "router.static_peers[0].address", "required key is missing"),
    ("peer duplicate", {"router": {"static_peers": ["127.0.0.1:1", {"address": "127.0.0.1",
     "port": 1}]}}, "router.static_peers[1]", "duplicate of static_peers[0]"),
    ("discovery no family", {"network": {"discovery_v4": False, "discovery_v6": False}},
     "router.discovery", "both false"),
    ("section type", {"timers": 5}, "timers", "expected a table"),
    ("array type", {"router": {"static_peers": "127.0.0.1:854"}},
     "router.static_peers", "expected an array"),
    ("tls ca", {"network": {"use_tls": True}}, "tls.ca", "verify the modem"),
    ("tls cert pair", {"network": {"use_tls": True}, "tls": {"verify_peer": False,
     "cert": "/nonexistent/r.crt"}}, "tls.key", "together with tls.cert"),
    ("tls file", {"network": {"use_tls": True}, "tls": {"verify_peer": False,
     "cert": "/nonexistent/r.crt", "key": "/nonexistent/r.key"}},
     "tls.cert", "file not found: /nonexistent/r.crt"),
    ("tls dir", {"network": {"use_tls": True}, "tls": {"ca": "/"}}, "tls.ca", "is not a file"),
    ("server name", {"network": {"use_tls": True}, "tls": {"verify_peer": False,
     "server_name": "m"}}, "tls.server_name", "verify_peer = true"),
]  # fmt: skip

MODEM_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("mac", {"modem": {"destinations": [dest(), dest(MAC2), dest("02:00:00")]}},
     "modem.destinations[2].mac", "not an EUI-48 or EUI-64"),
    ("mac missing", {"modem": {"destinations": [{"ipv4": ["10.0.0.1"]}]}},
     "modem.destinations[0].mac", "required key is missing"),
    ("mac dup", {"modem": {"destinations": [dest(), dest("02:00:00:00:00:01".upper())]}},
     "modem.destinations[1].mac", "duplicates destinations[0].mac"),
    ("mac mixed", {"modem": {"destinations": [dest(), dest("02:00:00:ff:fe:00:00:02")]}},
     "modem.destinations[1].mac", "§13.7"),
    ("addr dup", {"modem": {"destinations": [dest(ipv4=["10.0.0.1"]),
     dest(MAC2, ipv4=["10.0.0.2", "10.0.0.1"])]}},
     "modem.destinations[1].ipv4[1]", "destinations[0].ipv4[0]"),
    ("v6 dup", {"modem": {"destinations": [dest(ipv6=["fd00::1", "fd00::0:1"])]}},
     "modem.destinations[0].ipv6[1]", "already listed"),
    ("subnet dup", {"modem": {"destinations": [dest(ipv4_subnets=["10.1.0.0/16"]),
     dest(MAC2, ipv4_subnets=["10.1.0.0/16"])]}},
     "modem.destinations[1].ipv4_subnets[0]", "already listed"),
    ("subnet host bits", {"modem": {"destinations": [dest(ipv4_subnets=["10.1.0.5/16"])]}},
     "modem.destinations[0].ipv4_subnets[0]", "host bits"),
    ("v6 subnet", {"modem": {"destinations": [dest(ipv6_subnets=["10.0.0.0/8"])]}},
     "modem.destinations[0].ipv6_subnets[0]", "not an IPv6 subnet"),
    ("v4 in v6", {"modem": {"destinations": [dest(ipv6=["10.0.0.1"])]}},
     "modem.destinations[0].ipv6[0]", "not an IPv6 address"),
    ("cdrr > mdrr", {"modem": {"session_metrics": {"mdrr": "10M", "cdrr": "20M"}}},
     "modem.session_metrics.cdrr", "§13.14"),
    ("cdrt > mdrt", {"modem": {"destinations": [dest(metrics={"mdrt": "1M", "cdrt": "2M"})]}},
     "modem.destinations[0].metrics.cdrt", "§13.15"),
    ("cdrr > inherited mdrr", {"modem": {"destinations": [dest(metrics={"cdrr": "2M"})]}},
     "modem.destinations[0].metrics.cdrr", "inherited from modem.session_metrics"),
    ("mdrt < inherited cdrt", {"modem": {"session_metrics": {"mdrt": "10M", "cdrt": "5M"},
     "destinations": [dest(metrics={"mdrt": "1M"})]}},
     "modem.destinations[0].metrics.mdrt", "inherited"),
    ("undeclared optional", {"modem": {"destinations": [dest(metrics={"rlqr": 50})]}},
     "modem.destinations[0].metrics.rlqr", "§12.6"),
    ("resources", {"modem": {"session_metrics": {"resources": 101}}},
     "modem.session_metrics.resources", "100"),
    ("rlqr percent str", {"modem": {"session_metrics": {"rlqr": "120%"}}},
     "modem.session_metrics.rlqr", "100"),
    ("rlqt negative", {"modem": {"session_metrics": {"rlqt": -1}}},
     "modem.session_metrics.rlqt", "greater than or equal to 0"),
    ("mtu", {"modem": {"session_metrics": {"mtu": 65536}}}, "modem.session_metrics.mtu", "65535"),
    ("rate unit", {"modem": {"session_metrics": {"mdrr": "1 MBps"}}},
     "modem.session_metrics.mdrr", "bytes"),
    ("rate fraction", {"modem": {"session_metrics": {"mdrr": "1.0005k"}}},
     "modem.session_metrics.mdrr", "whole number"),
    ("rate bool", {"modem": {"session_metrics": {"mdrr": True}}},
     "modem.session_metrics.mdrr", "boolean"),
    ("latency unit", {"modem": {"session_metrics": {"latency": "2 min"}}},
     "modem.session_metrics.latency", "units are us, ms, s"),
    ("metric unknown", {"modem": {"session_metrics": {"cdr": 1}}},
     "modem.session_metrics.cdr", "did you mean"),
    ("max sessions", {"modem": {"max_sessions": 0}}, "modem.max_sessions", "got 0"),
    ("flap", {"modem": {"simulate": {"flap_probability": 1.5}}},
     "modem.simulate.flap_probability", "less than or equal to 1"),
    ("walk", {"modem": {"simulate": {"walk_percent": 150}}},
     "modem.simulate.walk_percent", "100"),
    ("sim interval", {"modem": {"simulate": {"interval_ms": 0}}},
     "modem.simulate.interval_ms", "got 0"),
    ("seed type", {"modem": {"simulate": {"seed": "x"}}}, "modem.simulate.seed", "integer"),
    ("connection point", {"network": {"connection_points": [{"address": "x"}]}},
     "network.connection_points[0].address", "not an IPv4 or IPv6"),
    ("connection point dup", {"network": {"tcp_port": 900, "connection_points": [
     {"address": "::1"}, {"address": "::1", "port": 900}]}},
     "network.connection_points[1]", "duplicate"),
    ("tls cert", {"network": {"use_tls": True}}, "tls.cert", "modem is the TLS server"),
    ("tls key", {"network": {"use_tls": True}}, "tls.key", "modem is the TLS server"),
    ("mutual ca", {"network": {"use_tls": True}, "tls": {"require_client_cert": True}},
     "tls.ca", "client certificates"),
    ("mutual verify", {"network": {"use_tls": True}, "tls": {"require_client_cert": True,
     "verify_peer": False}}, "tls.require_client_cert", "verify_peer = true"),
    ("peer type long", {"modem": {"peer_type": "x" * 70000}}, "modem.peer_type", "65534"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [pytest.param(d, k, f, id=n) for n, d, k, f in ROUTER_CASES],
)
def test_router_rule(data: dict[str, Any], key: str, fragment: str) -> None:
    assert_problem(router_error(data), key, fragment)


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [pytest.param(d, k, f, id=n) for n, d, k, f in MODEM_CASES],
)
def test_modem_rule(data: dict[str, Any], key: str, fragment: str) -> None:
    assert_problem(modem_error(data), key, fragment)


def test_fast_timers_allowed_when_asked() -> None:
    cfg = parse_router_config(
        {"timers": {"heartbeat_interval_ms": 100, "discovery_interval_ms": 250,
                    "allow_fast_timers": True}}
    )  # fmt: skip
    assert cfg.timers.heartbeat_interval_ms == 100
    assert cfg.timers.effective_init_timeout_ms == 400


def test_tls_not_checked_when_off() -> None:
    cfg = parse_modem_config({"tls": {"cert": "/nonexistent.crt", "require_client_cert": True}})
    assert cfg.tls.cert == Path("/nonexistent.crt")


def test_every_problem_listed_one_per_line() -> None:
    err = modem_error(
        {
            "network": {"tcp_port": 0, "interfce": "lo"},
            "logging": {"level": "loud"},
            "modem": {"destinations": [dest("bad"), dest(MAC2, ipv4=["300.0.0.1"])]},
        }
    )
    lines = str(err).splitlines()
    assert len(lines) == len(err.problems) == 5
    assert all(ln.startswith(f"{SRC}: ") for ln in lines)
    assert set(err.keys) == {
        "network.tcp_port",
        "network.interfce",
        "logging.level",
        "modem.destinations[0].mac",
        "modem.destinations[1].ipv4[0]",
    }
    assert err.source == SRC


# --------------------------------------------------------------------------
# Unknown keys
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"network": {"interfce": "lo"}}, "network.interfce", "did you mean 'interface'"),
        ({"timers": {"heartbeat_ms": 1000}}, "timers.heartbeat_ms", "unknown key"),
        ({"tls": {"zzz": 1}}, "tls.zzz", "valid keys: cert, key, ca"),
        ({"modem": {"destinations": [dest(mtu=1500)]}}, "modem.destinations[0].mtu", "unknown"),
        ({"modem": {"simulate": {"enable": True}}}, "modem.simulate.enable", "'enabled'"),
        ({"network": {"connection_points": [{"address": "::1", "prot": 1}]}},
         "network.connection_points[0].prot", "'port'"),
        ({"router": {}}, "router", "belongs in a router configuration"),
        ({"extra": {}}, "extra", "unknown key"),
    ],
)  # fmt: skip
def test_unknown_key_rejected_modem(data: dict[str, Any], key: str, fragment: str) -> None:
    assert_problem(modem_error(data), key, fragment)


def test_unknown_key_rejected_router() -> None:
    assert_problem(router_error({"modem": {}}), "modem", "belongs in a modem configuration")
    assert_problem(
        router_error({"router": {"static_peers": [{"address": "::1", "tsl": True}]}}),
        "router.static_peers[0].tsl",
        "did you mean 'tls'",
    )


class _Inner(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    jitter: int = 0


class _Outer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    links: list[_Inner] = []


def test_problems_from_serves_any_model() -> None:
    """The public converter (used by dlep-emu's scenario loader) gives the
    same key paths and hints for a model that is not a daemon configuration,
    and no daemon-specific hint for its top-level keys."""
    with pytest.raises(pydantic.ValidationError) as info:
        _Outer.model_validate({"links": [{}, {"jiter": 1}], "router": {}})
    got = {p.key: p.message for p in problems_from(info.value, _Outer)}
    assert got == {
        "links[1].jiter": "unknown key (did you mean 'jitter'?)",
        "router": "unknown key (valid keys: links)",
    }
    assert format_key(("links", 2, "ab", "loss")) == "links[2].ab.loss"


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[network]\ninterface = "lo"\ntcp_port = \n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_router_config(path)
    err = info.value
    assert str(err).startswith(f"{path}: line 3, column ")
    assert "TOML syntax error" in str(err)
    assert err.problems[0].line == 3 and err.problems[0].column is not None


def test_toml_duplicate_table(tmp_path: Path) -> None:
    path = tmp_path / "dup.toml"
    path.write_text("[modem]\n[network]\n[modem]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dup\.toml: line 3, column \d+: TOML syntax error"):
        load_modem_config(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    with pytest.raises(ConfigError, match=rf"^{path}: cannot read configuration"):
        load_modem_config(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[modem]\npeer_type = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"latin1\.toml: "):
        load_modem_config(path)


def test_validation_error_from_file_names_file(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[[modem.destinations]]\nmac = "02:00:00:00:00:01"\n'
        '[[modem.destinations]]\nmac = "02:00:00:00:00:02"\n'
        '[[modem.destinations]]\nmac = "nope"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_modem_config(path)
    assert str(info.value).startswith(f"{path}: modem.destinations[2].mac: ")


def test_config_error_plain_message() -> None:
    err = ConfigError("boom")
    assert str(err) == "boom" and err.keys == [""]
    err = ConfigError("f.toml", "cannot read configuration: gone")
    assert str(err) == "f.toml: cannot read configuration: gone"


def test_top_level_not_a_table() -> None:
    with pytest.raises(ConfigError, match="expected a table"):
        parse_router_config([], source=SRC)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------


def test_overrides_apply_before_validation() -> None:
    data: dict[str, Any] = {
        "network": {"interface": "eth0", "use_tls": True},
        "tls": {"verify_peer": False},
    }
    cfg = parse_router_config(
        data,
        overrides={
            "network.interface": "lo",
            "network.use_tls": False,
            "logging.level": "debug",
            "logging.format": None,  # a flag that was not given
        },
    )
    assert cfg.network.interface == "lo"
    assert cfg.network.use_tls is False
    assert cfg.logging.level == "debug"
    assert cfg.logging.format == "text"
    assert data["network"]["interface"] == "eth0"  # input left alone


def test_overrides_on_file(tmp_path: Path) -> None:
    cfg = load_modem_config(
        EXAMPLES / "modem.toml", overrides={"network.interface": "eth1", "logging.level": "WARN"}
    )
    assert cfg.network.interface == "eth1"
    assert cfg.logging.level == "warning"


def test_override_can_fix_an_invalid_file_value() -> None:
    cfg = parse_router_config({"network": {"use_tls": True}}, overrides={"network.use_tls": False})
    assert cfg.network.use_tls is False


def test_bad_override_is_flagged() -> None:
    err = router_error({}, overrides={"logging.level": "loud", "network.interfce": "lo"})
    assert_problem(err, "logging.level", "(value set by override)")
    assert_problem(err, "network.interfce", "did you mean 'interface'")


def test_override_through_non_table() -> None:
    err = router_error({"network": {"interface": "lo"}}, overrides={"network.interface.x": 1})
    assert_problem(err, "network.interface.x", "network.interface is not a table")
    err = router_error({}, overrides={"network..x": 1})
    assert_problem(err, "network..x", "malformed")


# --------------------------------------------------------------------------
# Unit parsing
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        (0, 0),
        (100_000_000, 100_000_000),
        ("100M", 100_000_000),
        ("54 Mbps", 54_000_000),
        ("54Mbps", 54_000_000),
        ("1.5G", 1_500_000_000),
        ("2k", 2_000),
        ("2K", 2_000),
        ("2 kbit/s", 2_000),
        ("100m", 100_000_000),
        ("3 Tbps", 3 * 10**12),
        ("512", 512),
        ("512 bps", 512),
        ("10 b/s", 10),
        ("100_000", 100_000),
        (".5M", 500_000),
        (1e9, 1_000_000_000),
        (str((1 << 64) - 1), (1 << 64) - 1),
    ],
)
def test_parse_rate(text: str | int, bits: int) -> None:
    assert parse_rate(text) == bits


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "invalid data rate"),
        ("fast", "invalid data rate"),
        ("10 MBps", "bytes"),
        ("10 MiB", "binary"),
        ("10Mi", "binary"),
        ("1.0001k", "whole number"),
        (-1, "negative"),
        (1.5, "whole number"),
        (True, "boolean"),
        (1 << 64, "64-bit"),
        ("1 Mbps extra", "invalid data rate"),
    ],
)
def test_parse_rate_rejects(text: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        (0, 0),
        (1500, 1500),
        ("1500", 1500),
        ("1500us", 1500),
        ("1500 µs", 1500),
        ("1500 μs", 1500),
        ("2ms", 2000),
        ("2.5 ms", 2500),
        ("0.5s", 500_000),
        ("1 S", 1_000_000),
    ],
)
def test_parse_latency(text: str | int, micros: int) -> None:
    assert parse_latency(text) == micros


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2 min", "units"),
        ("1.5us", "whole number"),
        ("ms", "units"),
        (-5, "negative"),
        (False, "boolean"),
    ],
)
def test_parse_latency_rejects(text: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_latency(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8854", ("127.0.0.1", 8854)),
        ("127.0.0.1", ("127.0.0.1", 854)),
        ("[::1]:854", ("::1", 854)),
        ("[fe80::0001]:9", ("fe80::1", 9)),
        ("[::1]", ("::1", 854)),
        ("::1", ("::1", 854)),
        ("fe80::1%eth0", ("fe80::1%eth0", 854)),
        ("modem.example:855", ("modem.example", 855)),
        (" 10.0.0.1:1 ", ("10.0.0.1", 1)),
    ],
)
def test_parse_peer(text: str, expected: tuple[str, int]) -> None:
    assert parse_peer(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:0", "1.2.3.4:65536", "[::1", "[::1]854",
     "[nothost]:1", "bad_host:1", "1.2.3.4.5:1", "a::b::c"],
)  # fmt: skip
def test_parse_peer_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_peer(text)


@pytest.mark.parametrize(
    ("value", "code"),
    [("multi-hop", 1), ("pause", 2), ("link-identifier", 3), ("latency-range", 4),
     ("credit-8021q", 5), ("credit-diffserv", 6), ("LATENCY_RANGE", 4), (65534, 65534),
     ("65520", 65520)],
)  # fmt: skip
def test_parse_extension(value: str | int, code: int) -> None:
    assert parse_extension(value) == code


@pytest.mark.parametrize("value", [0, 65535, -1, "nope", True, "0"])
def test_parse_extension_rejects(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_extension(value)


@pytest.mark.parametrize(
    ("bits", "text"),
    [(0, "0 bit/s"), (999, "999 bit/s"), (54_000_000, "54 Mbit/s"), (1_500_000_000, "1.5 Gbit/s")],
)
def test_format_rate(bits: int, text: str) -> None:
    assert format_rate(bits) == text


@pytest.mark.parametrize(
    "mac",
    ["02:00:00:00:00:01", "02-00-00-00-00-01", "AA:BB:CC:DD:EE:FF", "02:00:00:ff:fe:00:00:01"],
)
def test_mac_accepted(mac: str) -> None:
    d = parse_modem_config({"modem": {"destinations": [dest(mac)]}}).modem.destinations[0]
    assert d.mac == mac.replace("-", ":").lower()


@pytest.mark.parametrize(
    "mac",
    ["02:00:00:00:00", "02:00:00:00:00:01:02", "02:00:00:00:00:0g", "02:00-00:00:00:01",
     "2:0:0:0:0:1", "0200.0000.0001", "02:00:00:00:00:00:00:00:01"],
)  # fmt: skip
def test_mac_rejected(mac: str) -> None:
    assert_problem(modem_error({"modem": {"destinations": [dest(mac)]}}),
                   "modem.destinations[0].mac", "EUI-48 or EUI-64")  # fmt: skip
