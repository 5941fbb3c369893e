"""The nl80211 driver: station messages -> destinations and metrics.

Station messages are decoded from frozen bytes (an ``NL80211_CMD_NEW_STATION``
built with pyroute2's encoder, the layout the kernel sends for a station
dump), then fed through :class:`StationTracker` and into a real modem. The
end-to-end run with the kernel's ``mac80211_hwsim`` radios skips with the
reason where that module cannot be loaded.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

from dlep.config import Nl80211Config
from dlep.dataplane.nl80211 import (
    Nl80211Source,
    Station,
    StationTracker,
    signal_to_rlq,
    station_from_attrs,
    station_from_msg,
)
from dlep.fsm import Metrics

from .conftest import Pair, until

#: NL80211_CMD_NEW_STATION for 02:00:00:00:00:07 on ifindex 3: inactive
#: 120 ms, signal -55 dBm (average -57), TX 54 Mb/s, RX 24 Mb/s, expected
#: throughput 31000 kb/s, 100 frames sent of which 3 failed.
STATION_MSG = bytes.fromhex(
    "7c0000000000000000000000000000001301000008000300030000000a000600020000000007000054"
    "001500080001007800000005000700c900000005000d00c700000014000800080005001c0200000600"
    "01001c0200000c000e0008000500f000000008000a006400000008000c000300000008001b00187900"
    "00"
)
MAC7 = bytes.fromhex("020000000007")
CFG = Nl80211Config(interface="mesh0", latency=2000)


def test_station_message_decodes() -> None:
    from pyroute2.netlink.nl80211 import nl80211cmd

    msg = nl80211cmd(STATION_MSG)
    msg.decode()
    st = station_from_msg(msg)
    assert st == Station(
        mac=MAC7,
        inactive_ms=120,
        signal_dbm=-55,
        signal_avg_dbm=-57,
        tx_bitrate=54_000_000,
        rx_bitrate=24_000_000,
        expected_throughput=31_000_000,
        tx_packets=100,
        tx_failed=3,
    )


def test_sparse_station_info() -> None:
    # Drivers report what they have: a 16-bit legacy bitrate, no throughput.
    st = station_from_attrs(
        MAC7, {"NL80211_STA_INFO_TX_BITRATE": {"NL80211_RATE_INFO_BITRATE": 110}}
    )
    assert st.tx_bitrate == 11_000_000 and st.expected_throughput is None
    assert st.signal_dbm is None and st.rx_bitrate is None


def test_signal_to_rlq() -> None:
    assert signal_to_rlq(-95, -90, -40) == 0
    assert signal_to_rlq(-90, -90, -40) == 0
    assert signal_to_rlq(-65, -90, -40) == 50
    assert signal_to_rlq(-40, -90, -40) == 100
    assert signal_to_rlq(-20, -90, -40) == 100


def _st(**kw: object) -> Station:
    base: dict[str, object] = {
        "mac": MAC7,
        "inactive_ms": 100,
        "signal_avg_dbm": -65,
        "tx_bitrate": 54_000_000,
        "rx_bitrate": 24_000_000,
        "expected_throughput": 31_000_000,
        "tx_packets": 100,
        "tx_failed": 0,
    }
    base.update(kw)
    return Station(**base)  # type: ignore[arg-type]


def test_tracker_up_update_down() -> None:
    t = StationTracker(CFG)
    [up] = t.observe([_st()])
    assert up.kind == "up" and up.mac == MAC7
    assert up.metrics == Metrics(
        mdrt=54_000_000,
        mdrr=24_000_000,
        cdrt=31_000_000,  # expected throughput, not the PHY rate
        cdrr=24_000_000,
        latency=2000,
        rlqr=50,
        rlqt=50,  # no traffic seen yet: RLQR stands in
    )
    assert t.observe([_st()]) == []  # nothing changed
    # 20 frames sent since, 5 failed: 75 % delivered; the signal got worse.
    [upd] = t.observe([_st(tx_packets=120, tx_failed=5, signal_avg_dbm=-80)])
    assert upd.kind == "update"
    assert upd.metrics == Metrics(rlqr=20, rlqt=75)
    # Rate control finds a better rate: MDRT follows the best seen.
    [upd] = t.observe([_st(tx_packets=120, tx_failed=5, signal_avg_dbm=-80, tx_bitrate=65_000_000)])
    assert upd.metrics == Metrics(mdrt=65_000_000)
    # Inactive too long: down, though the driver still lists it.
    [down] = t.observe([_st(inactive_ms=CFG.inactive_ms + 1)])
    assert down.kind == "down"
    [up] = t.observe([_st()])
    assert up.kind == "up"
    [down] = t.observe([])
    assert down.kind == "down" and t.known() == {}


def test_tracker_max_rate_and_declared_metrics() -> None:
    cfg = Nl80211Config(interface="mesh0", max_rate=20_000_000)
    t = StationTracker(cfg, frozenset({"mdrr", "mdrt", "cdrr", "cdrt", "latency"}))
    [up] = t.observe([_st()])
    assert up.metrics.mdrt == up.metrics.mdrr == 20_000_000
    assert up.metrics.cdrt == 20_000_000 and up.metrics.cdrr == 20_000_000  # capped: CDR <= MDR
    assert up.metrics.rlqr is None and up.metrics.rlqt is None  # not declared by the modem


async def test_source_drives_a_modem(pair: Pair) -> None:
    src = Nl80211Source(pair.modem, CFG)
    await src.apply(src.tracker.observe([_st()]))
    await until(lambda: "02:00:00:00:00:07" in pair.router_dests(), what="station at router")
    info = pair.router_dests()["02:00:00:00:00:07"]
    assert info.metrics.cdrt == 31_000_000 and info.metrics.rlqr == 50
    await src.apply(src.tracker.observe([_st(expected_throughput=6_000_000)]))
    await until(
        lambda: pair.router_dests()["02:00:00:00:00:07"].metrics.cdrt == 6_000_000, what="update"
    )
    await src.apply(src.tracker.observe([]))
    await until(lambda: pair.router_dests() == {}, what="station gone")
    assert src.errors == 0


# -- mac80211_hwsim ------------------------------------------------------------------


def _hwsim_unavailable() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "mac80211_hwsim needs root"
    if not Path("/sys/module/mac80211_hwsim").exists():
        release = platform.release()
        if shutil.which("modprobe") is None or not Path(f"/lib/modules/{release}").exists():
            return (
                f"mac80211_hwsim is not loaded and cannot be loaded on this kernel ({release}): "
                "no modprobe or no /lib/modules for it (e.g. a VM kernel without modules)"
            )
        res = subprocess.run(
            ["modprobe", "mac80211_hwsim", "radios=2"], capture_output=True, text=True, check=False
        )
        if res.returncode != 0:
            return f"modprobe mac80211_hwsim failed: {res.stderr.strip()}"
    if shutil.which("iw") is None:
        return "mac80211_hwsim test needs the iw command (Debian package iw)"
    return None


def test_hwsim_stations_become_destinations() -> None:
    why = _hwsim_unavailable()
    if why is not None:
        pytest.skip(why)
    pytest.importorskip("pyroute2")
    # Two simulated radios joined in one IBSS inside a namespace of ours:
    # each sees the other as a station.
    import asyncio

    ns = f"dlepW{os.getpid()}"
    phys = sorted(p.name for p in Path("/sys/class/ieee80211").iterdir())[-2:]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for phy in phys:
            subprocess.run(["iw", "phy", phy, "set", "netns", "name", ns], check=True)
        links = subprocess.run(
            ["ip", "-n", ns, "-o", "link"], capture_output=True, text=True, check=True
        ).stdout
        wlans = [line.split(":")[1].strip() for line in links.splitlines() if "wlan" in line]
        for w in wlans[:2]:
            run = ["ip", "netns", "exec", ns]
            subprocess.run([*run, "iw", "dev", w, "set", "type", "ibss"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", w, "up"], check=True)
            subprocess.run([*run, "iw", "dev", w, "ibss", "join", "dlep-test", "2412"], check=True)
        cfg = Nl80211Config(enabled=True, interface=wlans[0], netns=ns, poll_ms=100)

        async def run() -> list[Station]:
            class _NoModem:
                session_metrics = Metrics(mdrr=0, mdrt=0, cdrr=0, cdrt=0, latency=0)

            src = Nl80211Source(_NoModem(), cfg)  # type: ignore[arg-type]
            await src.start()
            try:
                for _ in range(100):  # bounded: 10 s
                    stations = await src.dump()
                    if stations:
                        return stations
                    await asyncio.sleep(0.1)
                return []
            finally:
                await src.stop()

        stations = asyncio.run(run())
        assert stations, "the other radio never showed up as a station"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
