"""Modem side: destinations from a Linux Wi-Fi interface (nl80211).

The driver polls the stations of a mesh-point, ad-hoc (IBSS) or AP
interface over generic netlink (``NL80211_CMD_GET_STATION`` dump, through
``pyroute2``) every ``poll_ms``. A station that appears is a Destination Up,
its station info becomes metrics (Destination Update when they change), and
a station that disappears from the dump or has been inactive longer than
``inactive_ms`` is a Destination Down.

Which nl80211 field feeds which DLEP metric, and why:

================  ==========================================  ==================================
DLEP metric       nl80211 source                              why
================  ==========================================  ==================================
CDRT              ``STA_INFO_EXPECTED_THROUGHPUT`` (kbit/s),  what the rate-control algorithm
                  else ``TX_BITRATE`` (``BITRATE32``,         expects to deliver, which is what
                  100 kbit/s units)                           a router should shape to; the PHY
                                                              rate overstates it
CDRR              ``RX_BITRATE``                              rate of the frames we receive
MDRT / MDRR       ``max_rate`` if configured, else the        nl80211 has no per-station maximum;
                  highest TX / RX bitrate seen for the        the best seen keeps CDR <= MDR
                  station                                     (RFC 8175 §13.14)
RLQR              ``SIGNAL_AVG`` (else ``SIGNAL``), dBm,      received signal strength is the
                  linear from ``signal_floor_dbm`` (0) to     quality of what we receive from it
                  ``signal_ceiling_dbm`` (100)
RLQT              share of frames sent since the last poll    delivery ratio of our transmissions;
                  that did not fail (``TX_PACKETS``,          no traffic since the last poll:
                  ``TX_FAILED``)                              the previous value, else RLQR
Latency           ``latency`` from the configuration          nl80211 does not measure it
Down              gone from the dump, or ``INACTIVE_TIME``    a peer link that stopped hearing
                  above ``inactive_ms``                       the station
================  ==========================================  ==================================

Only metrics the modem declared in ``modem.session_metrics`` are reported
(RFC 8175 §12.6: the others could not be used in the session).

:func:`station_from_attrs` and :class:`StationTracker` do no I/O: they are
tested with recorded and constructed station messages, and with the
kernel's ``mac80211_hwsim`` radios where that module is available.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from ..daemon import DestinationChange, ModemDaemon
from ..fsm import DestKey, Metrics
from ..wire import format_mac
from .tasks import cancel_all

if TYPE_CHECKING:
    from ..config import Nl80211Config

__all__ = [
    "Nl80211Source",
    "Station",
    "StationChange",
    "StationTracker",
    "signal_to_rlq",
    "station_from_attrs",
    "station_from_msg",
]

log = logging.getLogger("dlep.dataplane.nl80211")


@dataclass(frozen=True, slots=True)
class Station:
    """What one station dump entry says (None: the driver did not report it)."""

    mac: bytes
    inactive_ms: int | None = None
    signal_dbm: int | None = None
    signal_avg_dbm: int | None = None
    tx_bitrate: int | None = None  # bits/s
    rx_bitrate: int | None = None  # bits/s
    expected_throughput: int | None = None  # bits/s
    tx_packets: int | None = None
    tx_failed: int | None = None


def _bitrate(rate_info: Any) -> int | None:
    """bits/s of a ``rate_info`` nest: BITRATE32, else BITRATE (100 kbit/s units)."""
    if rate_info is None:
        return None
    get = _getter(rate_info)
    value = get("NL80211_RATE_INFO_BITRATE32") or get("NL80211_RATE_INFO_BITRATE")
    return int(value) * 100_000 if value else None


def _getter(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj.get
    return obj.get_attr


def station_from_attrs(mac: bytes, info: Any) -> Station:
    """A :class:`Station` from the attributes of an ``NL80211_ATTR_STA_INFO``
    nest (a pyroute2 nla, or a plain mapping of attribute name -> value)."""
    get = _getter(info)
    exp = get("NL80211_STA_INFO_EXPECTED_THROUGHPUT")
    return Station(
        mac=mac,
        inactive_ms=get("NL80211_STA_INFO_INACTIVE_TIME"),
        signal_dbm=get("NL80211_STA_INFO_SIGNAL"),
        signal_avg_dbm=get("NL80211_STA_INFO_SIGNAL_AVG"),
        tx_bitrate=_bitrate(get("NL80211_STA_INFO_TX_BITRATE")),
        rx_bitrate=_bitrate(get("NL80211_STA_INFO_RX_BITRATE")),
        expected_throughput=int(exp) * 1000 if exp else None,
        tx_packets=get("NL80211_STA_INFO_TX_PACKETS"),
        tx_failed=get("NL80211_STA_INFO_TX_FAILED"),
    )


def station_from_msg(msg: Any) -> Station | None:
    """A :class:`Station` from a decoded ``NL80211_CMD_NEW_STATION`` message
    (None if it names no station)."""
    mac_text = msg.get_attr("NL80211_ATTR_MAC")
    info = msg.get_attr("NL80211_ATTR_STA_INFO")
    if not mac_text:
        return None
    mac = bytes(int(x, 16) for x in str(mac_text).split(":"))
    return station_from_attrs(mac, info if info is not None else {})


def signal_to_rlq(dbm: int, floor: int, ceiling: int) -> int:
    """Signal strength in dBm -> RLQ percent, linear between ``floor`` (0)
    and ``ceiling`` (100)."""
    if dbm <= floor:
        return 0
    if dbm >= ceiling:
        return 100
    return round((dbm - floor) * 100 / (ceiling - floor))


@dataclass(frozen=True, slots=True)
class StationChange:
    """A destination change the driver makes."""

    kind: Literal["up", "update", "down"]
    mac: bytes
    metrics: Metrics = field(default_factory=Metrics)


@dataclass(slots=True)
class _Seen:
    metrics: Metrics
    max_tx: int = 0
    max_rx: int = 0
    tx_packets: int | None = None
    tx_failed: int | None = None


class StationTracker:
    """Turns successive station dumps into destination changes (no I/O).

    ``declared``: metric names the modem declared (others are left out).
    """

    def __init__(self, cfg: Nl80211Config, declared: frozenset[str] | None = None) -> None:
        self.cfg = cfg
        self.declared = declared
        self._seen: dict[bytes, _Seen] = {}

    def known(self) -> dict[bytes, Metrics]:
        """Stations that are destinations now, with their last metrics."""
        return {mac: s.metrics for mac, s in self._seen.items()}

    def observe(self, stations: list[Station]) -> list[StationChange]:
        """The changes since the previous dump."""
        out: list[StationChange] = []
        present: set[bytes] = set()
        for st in stations:
            if len(st.mac) != 6:
                continue
            if st.inactive_ms is not None and st.inactive_ms > self.cfg.inactive_ms:
                continue  # treated as gone (below)
            present.add(st.mac)
            prev = self._seen.get(st.mac)
            seen = prev if prev is not None else _Seen(Metrics())
            metrics = self._metrics(st, seen)
            if prev is None:
                self._seen[st.mac] = seen
                seen.metrics = metrics
                out.append(StationChange("up", st.mac, metrics))
            else:
                changed = prev.metrics.changed_in(metrics)
                seen.metrics = metrics
                if not changed.is_empty():
                    out.append(StationChange("update", st.mac, changed))
        for mac in [m for m in self._seen if m not in present]:
            del self._seen[mac]
            out.append(StationChange("down", mac))
        return out

    def _metrics(self, st: Station, seen: _Seen) -> Metrics:
        cfg = self.cfg
        cdrt = st.expected_throughput or st.tx_bitrate
        cdrr = st.rx_bitrate
        seen.max_tx = max(seen.max_tx, st.tx_bitrate or 0, cdrt or 0)
        seen.max_rx = max(seen.max_rx, cdrr or 0)
        mdrt: int | None
        mdrr: int | None
        if cfg.max_rate is not None:
            mdrt = mdrr = cfg.max_rate
            cdrt = min(cdrt, mdrt) if cdrt is not None else None
            cdrr = min(cdrr, mdrr) if cdrr is not None else None
        else:
            mdrt, mdrr = seen.max_tx or None, seen.max_rx or None
        signal = st.signal_avg_dbm if st.signal_avg_dbm is not None else st.signal_dbm
        rlqr = (
            signal_to_rlq(signal, cfg.signal_floor_dbm, cfg.signal_ceiling_dbm)
            if signal is not None
            else None
        )
        rlqt = self._delivery(st, seen)
        if rlqt is None:
            rlqt = seen.metrics.rlqt if seen.metrics.rlqt is not None else rlqr
        values: dict[str, int | None] = {
            "mdrt": mdrt,
            "mdrr": mdrr,
            "cdrt": cdrt,
            "cdrr": cdrr,
            "latency": cfg.latency,
            "rlqr": rlqr,
            "rlqt": rlqt,
        }
        if self.declared is not None:
            values = {k: v for k, v in values.items() if k in self.declared}
        # A field once reported stays reported (its last value) when the
        # driver leaves it out of one dump.
        kept = {k: v for k, v in seen.metrics.as_dict().items() if k in values}
        kept.update({k: v for k, v in values.items() if v is not None})
        return Metrics(**kept)

    @staticmethod
    def _delivery(st: Station, seen: _Seen) -> int | None:
        pk, fl = st.tx_packets, st.tx_failed
        prev_pk, prev_fl = seen.tx_packets, seen.tx_failed
        seen.tx_packets, seen.tx_failed = pk, fl
        if pk is None or fl is None or prev_pk is None or prev_fl is None:
            return None
        d_pk, d_fl = pk - prev_pk, fl - prev_fl
        if d_pk <= 0 or d_fl < 0:  # no traffic, or counters wrapped / reset
            return None
        return max(0, min(100, round(100 * (d_pk - min(d_fl, d_pk)) / d_pk)))


class Nl80211Source:
    """Polls a Wi-Fi interface's stations and drives a :class:`ModemDaemon`."""

    def __init__(self, modem: ModemDaemon, cfg: Nl80211Config) -> None:
        self.modem = modem
        self.cfg = cfg
        declared = frozenset(modem.session_metrics.as_dict())
        self.tracker = StationTracker(cfg, declared)
        self._task: asyncio.Task[None] | None = None
        self._iw: Any = None
        self.ifindex = 0
        self.polls = 0
        self.errors = 0

    async def start(self) -> None:
        """Open nl80211, find the interface, start polling (OSError / LookupError
        if the interface or nl80211 is not there)."""
        from pyroute2 import AsyncIPRoute
        from pyroute2.iwutil import AsyncIW

        assert self.cfg.interface is not None
        kw: dict[str, Any] = {"netns": self.cfg.netns} if self.cfg.netns else {}
        if self.cfg.netns:
            async with AsyncIPRoute(**kw) as ipr:
                found = [x async for x in await ipr.link_lookup(ifname=self.cfg.interface)]
            if not found:
                raise LookupError(f"no interface {self.cfg.interface!r} in netns {self.cfg.netns}")
            self.ifindex = int(found[0])
        else:
            self.ifindex = socket.if_nametoindex(self.cfg.interface)
        iw = AsyncIW(**kw)
        await iw.setup_endpoint()
        self._iw = iw
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="nl80211")
        log.info(
            "nl80211: following the stations of %s every %d ms",
            self.cfg.interface,
            self.cfg.poll_ms,
        )

    async def stop(self) -> None:
        """Stop polling (destinations stay until the modem stops)."""
        task, self._task = self._task, None
        await cancel_all(task)
        if self._iw is not None:
            self._iw.close()
            self._iw = None

    async def dump(self) -> list[Station]:
        """One station dump of the interface."""
        out: list[Station] = []
        result = await self._iw.get_stations(self.ifindex)
        msgs = result if isinstance(result, list) else [m async for m in result]
        for msg in msgs:
            st = station_from_msg(msg)
            if st is not None:
                out.append(st)
        return out

    async def _poll(self) -> None:
        while True:
            try:
                stations = await self.dump()
                self.polls += 1
                await self.apply(self.tracker.observe(stations))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the interface went away, netlink hiccup
                self.errors += 1
                if self.errors == 1 or self.errors % 60 == 0:
                    log.warning("nl80211: station dump of %s failed: %s", self.cfg.interface, exc)
            await asyncio.sleep(self.cfg.poll_ms / 1000.0)

    async def apply(self, changes: list[StationChange]) -> None:
        """Hand the changes to the modem, each as a batch of its own: one
        station's refused change (logged) never holds back another's."""
        for ch in changes:
            if ch.kind != "update":
                log.info("nl80211: station %s %s", format_mac(ch.mac), _SAID[ch.kind])
            change = DestinationChange(ch.kind, DestKey(ch.mac), ch.metrics)
            [result] = await self.modem.apply_destination_changes([change])
            if not result.ok:
                self.errors += 1
                log.warning("nl80211: %s %s: %s", ch.kind, format_mac(ch.mac), result.error)


_SAID: Final = {"up": "up", "down": "gone"}
