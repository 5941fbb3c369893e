"""[router.kernel], [router.hooks], [modem.feed], [modem.nl80211]: defaults,
and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dlep.config import (
    ConfigError,
    load_modem_config,
    load_router_config,
    parse_modem_config,
    parse_router_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_defaults_are_off() -> None:
    r = parse_router_config({}).router
    assert not r.kernel.enabled and not r.hooks.enabled
    assert (r.kernel.route_protocol, r.kernel.route_table, r.kernel.qdisc_handle) == (
        77,
        254,
        0xD1E0,
    )
    m = parse_modem_config({}).modem
    assert not m.feed.stdin and m.feed.udp is None and not m.nl80211.enabled


def test_values_in_their_forms() -> None:
    r = parse_router_config(
        {
            "network": {"interface": "radio0"},
            "router": {
                "kernel": {
                    "enabled": True,
                    "qdisc_handle": "BEEF:",
                    "default_rate": "100M",
                    "metric": {"formula": "fixed", "fixed": 300, "default_rate": "2M"},
                },
                "hooks": {"command": ["/bin/true"], "timeout_ms": 100},
            },
        }
    ).router
    assert r.kernel.qdisc_handle == 0xBEEF and r.kernel.default_rate == 100_000_000
    assert r.kernel.metric.formula == "fixed" and r.kernel.metric.default_rate == 2_000_000
    assert r.hooks.enabled
    m = parse_modem_config({"modem": {"feed": {"udp": "[::1]:9000"}}}).modem
    assert m.feed.udp_address() == ("::1", 9000)


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"router": {"kernel": {"enabled": True}}}, "router.kernel.interface", "required"),
        ({"router": {"kernel": {"route_protocol": 42}}}, "router.kernel.route_protocol", "another"),
        ({"router": {"kernel": {"route_protocol": 300}}}, "router.kernel.route_protocol", "1..255"),
        ({"router": {"kernel": {"qdisc_handle": "zz"}}}, "router.kernel.qdisc_handle", "hexadec"),
        ({"router": {"kernel": {"rate_percent": 0}}}, "router.kernel.rate_percent", ""),
        ({"router": {"kernel": {"interface": "a/b"}}}, "router.kernel.interface", "usable"),
        (
            {"router": {"kernel": {"metric": {"formula": "etx"}}}},
            "router.kernel.metric.formula",
            "",
        ),
        ({"router": {"kernel": {"metric": {"unit_us": 0}}}}, "router.kernel.metric.unit_us", ""),
        ({"router": {"kernel": {"speed": 1}}}, "router.kernel.speed", "unknown key"),
        ({"router": {"hooks": {"command": "x y"}}}, "router.hooks.command", "argv list"),
        ({"router": {"hooks": {"entry_point": "a b"}}}, "router.hooks.entry_point", ""),
    ],
)
def test_router_errors_name_the_key(data: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_router_config(data)
    assert key in exc.value.keys, str(exc.value)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"modem": {"feed": {"udp": "192.0.2.1:9000"}}}, "modem.feed.udp", "loopback only"),
        ({"modem": {"feed": {"udp": "127.0.0.1"}}}, "modem.feed.udp", "port is required"),
        ({"modem": {"feed": {"max_batch": 0}}}, "modem.feed.max_batch", ""),
        ({"modem": {"nl80211": {"enabled": True}}}, "modem.nl80211.interface", "required"),
        (
            {"modem": {"nl80211": {"signal_floor_dbm": -40, "signal_ceiling_dbm": -60}}},
            "modem.nl80211.signal_floor_dbm",
            "below",
        ),
        ({"modem": {"nl80211": {"poll_ms": 1}}}, "modem.nl80211.poll_ms", ""),
    ],
)
def test_modem_errors_name_the_key(data: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_modem_config(data)
    assert key in exc.value.keys, str(exc.value)
    assert fragment in str(exc.value)


def test_examples_load() -> None:
    r = load_router_config(EXAMPLES / "router-kernel.toml")
    assert r.router.kernel.enabled and r.router.hooks.command
    m = load_modem_config(EXAMPLES / "modem-feed.toml")
    assert m.modem.feed.stdin and m.modem.feed.udp is not None
