"""The third-party example in examples/private_extension (Signal Strength,
private-use extension 65530, item 65410): direct registration, loading
through the ``dlep.extensions`` entry point (simulated: installing the
example would need a build backend from the network), and the
non-negotiated rules (never sent, 130 on receipt)."""

from __future__ import annotations

import asyncio
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from dlep.config import ConfigError, parse_modem_config, parse_router_config
from dlep.daemon import DaemonError, ModemDaemon, RouterDaemon, SessionEvent
from dlep.ext import load_entry_point_extensions
from dlep.fsm import DestinationUp, SessionError, SessionUp
from dlep.wire import MessageType, StatusCode, core_registry
from tests.unit.fsm_harness import MAC1, Pair, modem_config, router_config, status_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "private_extension"
sys.path.insert(0, str(EXAMPLE))

from dlep_signal_strength import (  # noqa: E402
    SIGNAL_STRENGTH_EXTENSION,
    SignalStrength,
    SignalStrengthExtension,
    SignalStrengthReported,
    signal_strength,
    signal_strength_items,
)

M = MessageType
MAC = "02:00:00:00:00:42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configs(port: int, router_ext: list[Any], modem_ext: list[Any]) -> tuple[Any, Any]:
    timers = {"heartbeat_interval_ms": 1000}
    modem = parse_modem_config(
        {
            "network": {"tcp_port": port, "listen_addresses": ["127.0.0.1"]},
            "timers": timers,
            "api": {"enabled": False},
            "modem": {"extensions": modem_ext},
        }
    )
    router = parse_router_config(
        {
            "network": {"tcp_port": port},
            "timers": timers,
            "api": {"enabled": False},
            "router": {
                "discovery": False,
                "static_peers": [f"127.0.0.1:{port}"],
                "extensions": router_ext,
            },
        }
    )
    return router, modem


async def _wait(sub: Any, kind: type, timeout: float = 10.0) -> Any:
    async def loop() -> Any:
        async for ev in sub:
            if isinstance(ev, SessionEvent) and isinstance(ev.event, kind):
                return ev.event
        return None

    return await asyncio.wait_for(loop(), timeout)


def _modem_session(modem: ModemDaemon) -> Any:
    return next(iter(modem._conns.values())).proto


def _entry_point() -> metadata.EntryPoint:
    return metadata.EntryPoint(
        name="signal-strength",
        value="dlep_signal_strength:SignalStrengthExtension",
        group="dlep.extensions",
    )


@pytest.fixture
def entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """Publish the example's entry point as if it were pip-installed."""
    real = metadata.entry_points

    def fake(**kw: Any) -> Any:
        if kw.get("group") == "dlep.extensions":
            return metadata.EntryPoints([_entry_point()])
        return real(**kw)

    monkeypatch.setattr(metadata, "entry_points", fake)


async def _flow(router: RouterDaemon, modem: ModemDaemon) -> None:
    """Negotiated; a Destination Up with the item reaches the router."""
    sub = router.subscribe()
    up = await _wait(sub, SessionUp)
    assert SIGNAL_STRENGTH_EXTENSION in up.extensions
    assert SIGNAL_STRENGTH_EXTENSION in router.sessions()[0].extensions
    proto = _modem_session(modem)
    proto.session.add_destination(
        MAC, extra=signal_strength_items(-67), now=asyncio.get_running_loop().time()
    )
    proto.flush()
    reported = await _wait(sub, SignalStrengthReported)
    assert reported.dbm == -67
    proto.session.update_destination(
        MAC, extra=signal_strength_items(-70), now=asyncio.get_running_loop().time()
    )
    proto.flush()
    assert (await _wait(sub, SignalStrengthReported)).dbm == -70
    ((_, info),) = router.destinations()
    assert signal_strength(info) == -70
    assert SignalStrength(-70) in info.extra


def test_item_codec() -> None:
    item = SignalStrength(-67)
    assert item.encode() == bytes.fromhex("ff82 0002 ffbd")
    assert SignalStrength.decode_value(item.encode_value()) == item
    reg = core_registry()
    SignalStrengthExtension().register(reg)
    assert reg.items[65410] is SignalStrength


@pytest.mark.timeout(30)
async def test_registered_with_the_builder() -> None:
    port = _free_port()
    rcfg, mcfg = _configs(port, [], [])
    modem = (
        await ModemDaemon.builder()
        .config(mcfg)
        .register_extension(SignalStrengthExtension())
        .spawn()
    )
    router = (
        await RouterDaemon.builder()
        .config(rcfg)
        .register_extension(SignalStrengthExtension())
        .spawn()
    )
    try:
        await _flow(router, modem)
    finally:
        await router.shutdown()
        await modem.shutdown()


def test_load_entry_point_extensions(entry_point: None) -> None:
    (ext,) = load_entry_point_extensions(["signal-strength"])
    assert isinstance(ext, SignalStrengthExtension)
    with pytest.raises(ValueError, match=r"no dlep\.extensions entry point named nope"):
        load_entry_point_extensions(["nope"])


def test_pyproject_declares_the_entry_point() -> None:
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    eps = project["entry-points"]["dlep.extensions"]
    assert eps == {"signal-strength": f"{_entry_point().value}"}


@pytest.mark.timeout(30)
async def test_loaded_from_config_through_the_entry_point(entry_point: None) -> None:
    port = _free_port()
    rcfg, mcfg = _configs(
        port, ["multi-hop", "plugin:signal-strength"], ["plugin:signal-strength", "multi-hop"]
    )
    assert rcfg.router.plugins == ("signal-strength",)
    assert mcfg.modem.extensions == (1,)
    modem = await ModemDaemon.builder().config(mcfg).spawn()
    router = await RouterDaemon.builder().config(rcfg).spawn()
    try:
        await _flow(router, modem)
        assert router.sessions()[0].extensions == (1, SIGNAL_STRENGTH_EXTENSION)
    finally:
        await router.shutdown()
        await modem.shutdown()


async def test_missing_entry_point_is_a_clear_error(entry_point: None) -> None:
    _, mcfg = _configs(_free_port(), [], ["plugin:no-such-plugin"])
    with pytest.raises(DaemonError, match=r"no dlep\.extensions entry point named no-such-plugin"):
        await ModemDaemon.builder().config(mcfg).spawn()


def test_bad_plugin_syntax_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"modem\.extensions\[1\]: 'plugin:'"):
        _configs(_free_port(), [], ["multi-hop", "plugin:"])
    with pytest.raises(ConfigError, match="or plugin:NAME"):
        _configs(_free_port(), ["signal-strength"], [])


@pytest.mark.timeout(30)
async def test_only_one_side_offers_it() -> None:
    port = _free_port()
    rcfg, mcfg = _configs(port, [], [])
    modem = (
        await ModemDaemon.builder()
        .config(mcfg)
        .register_extension(SignalStrengthExtension())
        .spawn()
    )
    router = await RouterDaemon.builder().config(rcfg).spawn()
    sub = router.subscribe()
    try:
        up = await _wait(sub, SessionUp)
        assert up.extensions == frozenset()
        await modem.add_destination(MAC)
        await _wait(sub, DestinationUp)
        with pytest.raises(SessionError, match="not negotiated"):
            _modem_session(modem).session.update_destination(
                MAC, extra=signal_strength_items(-50), now=asyncio.get_running_loop().time()
            )
    finally:
        await router.shutdown()
        await modem.shutdown()


def _terminated_with(p: Pair, side: str, status: int) -> bool:
    return any(
        m.type == M.SESSION_TERMINATION and status_of(m) == status
        for m in p.sent(side)  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("router_knows_it", [True, False])
def test_non_negotiated_item_is_130(router_knows_it: bool) -> None:
    """Modem offers 65530, the router does not: the modem's API refuses to
    send the item, and a router that receives it anyway ends with 130 —
    whether it has the codec registered (not negotiated) or not (unknown)."""
    ext = SignalStrengthExtension()
    mreg = core_registry()
    ext.register(mreg)
    rreg = core_registry()
    if router_knows_it:
        ext.register(rreg)
    p = Pair(
        router_config(registry=rreg),
        modem_config(registry=mreg, plugins=(ext,)),
    )
    p.pump()
    assert p.router.extensions == frozenset() == p.modem.extensions
    p.events()
    p.up()
    with pytest.raises(SessionError, match="not negotiated"):
        p.modem.update_destination(MAC1, extra=signal_strength_items(-60), now=p.now)
    body = bytes.fromhex("0007 0006") + bytes.fromhex(MAC1.replace(":", ""))
    body += SignalStrength(-60).encode()
    p.inject(
        "router", M.DESTINATION_UPDATE.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body
    )
    assert _terminated_with(p, "router", StatusCode.INVALID_DATA)
