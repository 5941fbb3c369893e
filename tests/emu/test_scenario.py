"""Scenario files: the examples load, and every error names its key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dlep.config import ConfigError
from dlep.emu.configs import router_config_data
from dlep.emu.runner import toml_dumps
from dlep.emu.scenario import load_scenario, parse_duration, parse_scenario

REPO = Path(__file__).resolve().parents[2]


def minimal(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "nodes": [{"name": "a"}, {"name": "b"}],
        "links": [{"a": "a", "b": "b", "rate": "20M", "latency": "10ms", "loss": 0.01}],
    }
    data.update(extra)
    return data


def keys_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_scenario(data, source="t.toml")
    return info.value.keys


def test_examples_load() -> None:
    for path in sorted((REPO / "examples").glob("*.toml")):
        text = path.read_text()
        if "[[nodes]]" in text:
            topo = load_scenario(path).topology()
            assert topo.nodes


def test_resolution_defaults_and_directions() -> None:
    topo = parse_scenario(
        minimal(
            links=[{"a": "a", "b": "b", "rate": "20M", "ba": {"rate": "5M", "mtu": 1400}}],
            timeline=[{"at": "2s", "link": ["a", "b"], "set": {"up": False}}],
        )
    ).topology()
    ab, ba = topo.links[(0, 1)], topo.links[(1, 0)]
    assert (ab.rate, ab.mtu, ba.rate, ba.mtu) == (20_000_000, 1500, 5_000_000, 1400)
    assert [(c.at, c.src, c.dst, dict(c.changes)) for c in topo.timeline] == [
        (2.0, 0, 1, {"up": False}),
        (2.0, 1, 0, {"up": False}),
    ]
    assert topo.nodes[1].address == ("127.0.0.1", 47001)
    assert topo.nodes[1].mac == "02:e0:00:00:00:02"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"nodez": []}, "nodez"),
        ({"links": [{"a": "a", "b": "c"}]}, "links[0].b"),
        ({"links": [{"a": "a", "b": "b", "loss": 1.5}]}, "links[0].loss"),
        ({"links": [{"a": "a", "b": "b", "rate": "fast"}]}, "links[0].rate"),
        ({"links": [{"a": "a", "b": "b", "ab": {"jiter": 1}}]}, "links[0].ab.jiter"),
        ({"emulator": {"dead_intervals": 1}}, "emulator.dead_intervals"),
        (
            {"timeline": [{"at": "1s", "link": ["a", "x"], "set": {"up": False}}]},
            "timeline[0].link",
        ),
        ({"timeline": [{"at": "soon", "node": "a", "in_range": False}]}, "timeline[0].at"),
        ({"router_config": {"router": {"bogus": 1}}}, "nodes[0].router_config.router.bogus"),
    ],
)
def test_errors_name_the_bad_key(change: dict[str, Any], key: str) -> None:
    assert key in keys_of(minimal(**change))


def test_error_messages_are_the_daemon_configs_ones() -> None:
    """dlep.config.problems_from words the scenario's errors (one converter)."""
    with pytest.raises(ConfigError) as info:
        parse_scenario(minimal(links=[{"a": "a", "b": "b", "ab": {"jiter": 1}}]), source="t.toml")
    assert str(info.value) == "t.toml: links[0].ab.jiter: unknown key (did you mean 'jitter'?)"
    with pytest.raises(ConfigError) as info:
        parse_scenario(minimal(emulator={"dead_intervals": 1}), source="t.toml")
    assert "emulator.dead_intervals: Input should be greater than or equal to" in str(info.value)
    assert str(info.value).endswith(", got 1")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[scenario]\nname = "\xff"\n', "bad.toml: not UTF-8 text"),
        (b"[scenario]\nname = \n", "bad.toml: line 2, column 8: TOML syntax error"),
        (None, "bad.toml: cannot read scenario"),
    ],
)
def test_unreadable_files_are_config_errors(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    """The file is read as the daemons' configurations are (dlep.config.read_toml)."""
    path = tmp_path / "bad.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{tmp_path}/{message}")


def test_a_node_out_of_range_takes_all_its_links_down() -> None:
    data = minimal(
        nodes=[{"name": "a"}, {"name": "b"}, {"name": "c"}],
        links=[{"a": "a", "b": "b"}, {"a": "b", "b": "c"}],
        timeline=[{"at": 5, "node": "b", "in_range": False}],
    )
    topo = parse_scenario(data).topology()
    assert sorted((c.src, c.dst) for c in topo.timeline) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert all(dict(c.changes) == {"up": False} and c.at == 5.0 for c in topo.timeline)


def test_several_hosts_need_addresses() -> None:
    data = minimal()
    data["nodes"][1]["host"] = "other"
    assert keys_of(data) == ["nodes[0].address", "nodes[1].address"]


def test_duplicate_names_and_node_passthrough() -> None:
    assert "nodes[1].name" in keys_of({"nodes": [{"name": "a"}, {"name": "a"}]})
    data = minimal()
    data["nodes"][1]["modem_config"] = {"modem": {"peer_typo": "x"}}
    assert keys_of(data) == ["nodes[1].modem_config.modem.peer_typo"]


def test_passthrough_tables_reach_the_router_config(tmp_path: Path) -> None:
    sc = parse_scenario(
        minimal(router_config={"logging": {"level": "debug"}, "router": {"extensions": [4]}})
    )
    topo = sc.topology()
    data = router_config_data(topo, topo.nodes[0], run_dir=tmp_path)
    assert data["logging"] == {"level": "debug"}
    assert data["router"]["extensions"] == [4]
    assert data["router"]["static_peers"] == ["127.0.0.1:854"]  # generated keys kept
    assert tomllib.loads(toml_dumps(data)) == data


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120.0
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError):
        parse_duration("3 days")


def test_check_command_reports_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[nodes]]\nname = "a"\n[[links]]\na = "a"\nb = "zz"\n')
    res = subprocess.run(
        [sys.executable, "-m", "dlep.cli.emu", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert "links[0].b: no node named 'zz'" in res.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "dlep.cli.emu", "check", str(REPO / "examples/line4.toml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and "4 nodes" in ok.stdout


def test_without_root_it_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlep.emu import system

    monkeypatch.setattr(system, "_effective_caps", lambda: 0)
    why = system.missing_privileges()
    assert why is not None
    assert "CAP_NET_ADMIN" in why and "CAP_SYS_ADMIN" in why and "--radios-only" in why


def test_commands_loopback_and_placeholders(tmp_path: Path) -> None:
    hook = ["python3", "{scenario_dir}/hook.py", "--socket", "{run_dir}/{node}.sock"]
    sc = parse_scenario(
        minimal(
            commands=[{"argv": ["babeld", "-S", "", "{interface}"]}],
            router_config={"router": {"hooks": {"command": hook}}},
            nodes=[
                {"name": "a", "loopback": ["10.90.0.1/32"]},
                {"name": "b", "commands": [{"argv": ["sleep", "{{literal}}"]}]},
            ],
        )
    )
    topo = sc.topology()
    a, b = topo.nodes
    assert a.loopback == ("10.90.0.1/32",)
    assert a.commands == (("babeld", "-S", "", "{interface}"),)  # expanded at run time
    assert b.commands == (("babeld", "-S", "", "{interface}"), ("sleep", "{{literal}}"))
    data = router_config_data(topo, b, run_dir=tmp_path / "run", scenario_dir=tmp_path)
    assert data["router"]["hooks"]["command"] == [
        "python3",
        f"{tmp_path}/hook.py",
        "--socket",
        f"{tmp_path}/run/b.sock",
    ]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"commands": [{"argv": ["babeld", "{nod}"]}]}, "commands[0].argv[1]"),
        ({"commands": [{"argv": ["x", "{"]}]}, "commands[0].argv[1]"),
        ({"commands": [{"argv": []}]}, "commands[0].argv"),
        ({"commands": [{"argv": [""]}]}, "commands[0]"),
        ({"commands": [{"argv": "babeld radio0"}]}, "commands[0].argv"),
        ({"commands": [{"args": ["x"]}]}, "commands[0].args"),
        (
            {"router_config": {"router": {"hooks": {"command": ["h", "{run}"]}}}},
            "nodes[0].router_config.router.hooks.command[1]",
        ),
    ],
)
def test_command_errors_name_the_key(change: dict[str, Any], key: str) -> None:
    assert key in keys_of(minimal(**change))
    data = minimal()
    data["nodes"][1]["commands"] = [{"argv": ["x", "{node!r}"]}]
    assert keys_of(data) == ["nodes[1].commands[0].argv[1]"]
    data["nodes"][0]["loopback"] = ["10.90.0.1"]
    assert keys_of(data) == ["nodes[0].loopback[0]"]
