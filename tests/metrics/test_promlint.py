"""The exposition keeps Prometheus' naming rules (the ones ``promtool check
metrics`` enforces, re-stated below), its ``peer`` labels carry no ephemeral
port, and the flap and connect-failure counters move."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import V4, Pair, free_port, samples, scrape, value, wait_until

#: promtool's lint (client_golang promlint): units it knows, and their base unit.
UNITS = {
    "amperes": "amperes",
    "bytes": "bytes",
    "celsius": "celsius",
    "grams": "grams",
    "joules": "joules",
    "kelvin": "kelvin",
    "meters": "meters",
    "metres": "metres",
    "seconds": "seconds",
    "volts": "volts",
    "minutes": "seconds",
    "hours": "seconds",
    "days": "seconds",
    "weeks": "seconds",
    "bits": "bytes",
    "kelvins": "kelvin",
    "fahrenheit": "celsius",
    "rankine": "celsius",
    "inches": "meters",
    "yards": "meters",
    "miles": "meters",
    "calories": "joules",
    "pounds": "grams",
    "ounces": "grams",
}
PREFIXES = [
    "pico",
    "nano",
    "micro",
    "milli",
    "centi",
    "deci",
    "deca",
    "hecto",
    "kilo",
    "kibi",
    "mega",
    "mibi",
    "giga",
    "gibi",
    "tera",
    "tebi",
    "peta",
    "pebi",
]
ABBREVIATIONS = ["s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"]
TYPES = ("counter", "gauge", "summary", "histogram", "gauge_histogram")


def lint(text: str) -> list[str]:
    """What ``promtool check metrics`` would say about ``text`` (its lint rules)."""
    problems: list[str] = []
    helps = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):

        def bad(msg: str, name: str = name) -> None:
            problems.append(f"{name}: {msg}")

        if name not in helps:
            bad("no help text")
        if kind == "counter" and not name.endswith("_total"):
            bad('counter metrics should have "_total" suffix')
        if kind not in ("counter", "untyped") and name.endswith("_total"):
            bad('non-counter metrics should not have "_total" suffix')
        for token in name.split("_"):
            unit = next(
                (
                    token[len(p) :]
                    for p in ("", *PREFIXES)
                    if token[len(p) :] in UNITS and token.startswith(p)
                ),
                None,
            )
            if unit is not None and UNITS[unit] != token:
                bad(f"use base unit {UNITS[unit]!r} instead of {token!r}")
                break
        for abbr in ABBREVIATIONS:
            if f"_{abbr}_" in name or name.endswith(f"_{abbr}"):
                bad("metric names should not contain abbreviated units")
        for t in TYPES:
            if f"_{t}_" in name or name.endswith(f"_{t}"):
                bad(f"metric name should not include type {t!r}")
        if re.search("[a-z][A-Z]", name) or ":" in name:
            bad("not snake_case")
        if kind not in ("histogram", "untyped") and name.endswith("_bucket"):
            bad('non-histogram metrics should not have "_bucket" suffix')
        if kind not in ("histogram", "summary", "untyped") and name.endswith(("_count", "_sum")):
            bad('non-histogram and non-summary metrics should not have "_count"/"_sum" suffix')
    # And it must parse.
    list(text_string_to_metric_families(text))
    return problems


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def test_lint_catches_what_promtool_does() -> None:
    """The re-stated rules find the faults the old exposition had."""
    old = (
        "# HELP dlep_destination_cdrr_bits_per_second x\n"
        "# TYPE dlep_destination_cdrr_bits_per_second gauge\n"
        'dlep_destination_cdrr_bits_per_second{mac="a"} 1.0\n'
        "# HELP dlep_messages x\n# TYPE dlep_messages counter\ndlep_messages 1.0\n"
        "# HELP dlep_latency_ms x\n# TYPE dlep_latency_ms gauge\ndlep_latency_ms 1.0\n"
    )
    found = "\n".join(lint(old))
    assert "use base unit 'bytes' instead of 'bits'" in found
    assert 'dlep_messages: counter metrics should have "_total" suffix' in found
    assert "dlep_latency_ms: metric names should not contain abbreviated units" in found


async def test_exposition_keeps_the_naming_rules(pair: Pair) -> None:
    _, _, ms, rs = await pair.start()
    for url in (ms.url, rs.url):
        text = await asyncio.to_thread(fetch, url)
        assert "_bits_per_second" not in text
        assert "dlep_destination_cdrr_bytes_per_second" in text
        assert lint(text) == [], url


async def test_rates_are_bytes_per_second(pair: Pair) -> None:
    _, _, _, rs = await pair.start()
    r = await asyncio.to_thread(scrape, rs.url)
    # 02:00:00:00:00:01 reports CDRR 36 Mb/s: 4.5 MB/s.
    assert value(r, "dlep_destination_cdrr_bytes_per_second", mac="02:00:00:00:00:01") == 4.5e6


async def test_peer_labels_have_no_ephemeral_port(pair: Pair) -> None:
    modem, router, ms, rs = await pair.start()
    [rsess] = router.sessions()
    modem_port = rsess.peer.rsplit(":", 1)[1]
    [msess] = modem.sessions()
    router_port = msess.peer.rsplit(":", 1)[1]  # the router's ephemeral source port
    m = await asyncio.to_thread(scrape, ms.url)
    r = await asyncio.to_thread(scrape, rs.url)
    for fams, want in ((m, V4), (r, f"{V4}:{modem_port}")):
        peers = {
            s.labels["peer"] for fam in fams.values() for s in fam.samples if "peer" in s.labels
        }
        assert peers == {want}
    assert not any(
        router_port in s.labels.get("peer", "") for fam in m.values() for s in fam.samples
    )
    # The session id is still a label, and the info series has the address.
    assert value(m, "dlep_session_up", session=msess.id, peer=V4) == 1
    [(labels, one)] = samples(m, "dlep_peer_info", session=msess.id)
    assert one == 1 and labels["peer"] == V4 and labels["address"] == V4
    [(labels, _)] = samples(r, "dlep_peer_info", session=rsess.id)
    assert labels["address"] == V4 and labels["peer"] == f"{V4}:{modem_port}"


async def test_flap_and_connect_failure_counters_move(pair: Pair) -> None:
    modem, router, ms, rs = await pair.start()
    [rsess] = router.sessions()
    rpeer = rsess.peer
    r = await asyncio.to_thread(scrape, rs.url)
    assert samples(r, "dlep_session_flaps_total") == []

    # The modem ends the session; the router reconnects (a new session id).
    [msess] = modem.sessions()
    await modem.terminate_session(msess.id)
    await wait_until(
        lambda: any(s.state == "in-session" and s.id != rsess.id for s in router.sessions()),
        what="the router's new session",
    )
    r = await asyncio.to_thread(scrape, rs.url)
    m = await asyncio.to_thread(scrape, ms.url)
    assert value(r, "dlep_session_flaps_total", peer=rpeer) == 1
    assert value(m, "dlep_session_flaps_total", peer=V4) == 1

    # A static peer nobody listens on: connect failures, under its configured name.
    dead = free_port()
    router.connect_static(V4, dead)
    # (GTSM drops the refusal: each attempt takes CONNECT_TIMEOUT.)
    await wait_until(
        lambda: router.connect_failures.get(f"{V4}:{dead}", 0) >= 1, timeout=15, what="failure"
    )
    r = await asyncio.to_thread(scrape, rs.url)
    assert value(r, "dlep_connect_failures_total", peer=f"{V4}:{dead}") >= 1
    await router.disconnect_static(V4, dead)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
async def test_promtool_check_metrics(pair: Pair) -> None:
    _, _, ms, rs = await pair.start()
    for url in (ms.url, rs.url):
        text = await asyncio.to_thread(fetch, url)
        res = subprocess.run(
            ["promtool", "check", "metrics"],
            input=text,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 0, res.stdout + res.stderr
