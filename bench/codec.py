"""Throughput of the DLEP wire codec on one core.

Run: ``.venv/bin/python bench/codec.py`` (about 10-20 s; no pass/fail).

Workloads:

(a) Destination Update with MAC + the 9 metric items (MDRR, MDRT, CDRR, CDRT,
    Latency, Resources, RLQR, RLQT, MTU). 10,000 distinct messages are
    generated up front from a per-destination random walk, like a modem's
    metric reports, and cycled through, so no value cache can help. The
    shape (item types, order, lengths) never changes, which is realistic and
    is what the decoder's layout cache keys on.
(b) Heartbeat (header only).

Decode is measured twice for (a):

* "layout"  - the normal path: after the first message of a shape has passed
  the full check, later messages of the same (type, body length) are parsed
  by one precompiled struct (messages._learn_layout / _apply_layout).
* "generic" - the same bytes through a registry whose layout cache is
  disabled (always empty and "full", so nothing is learned or looked up
  successfully). This is what any message of a shape not in the cache costs:
  layouts are learned per (message type, body length), at most 64 per type,
  and only for units made solely of fixed-layout items (MAC and metrics).

Each figure is one pass over the workload, repeated; best and median of the
repetitions are printed. The garbage collector is paused while timing.
"""

from __future__ import annotations

import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dlep.wire import (
    DEFAULT_REGISTRY,
    CurrentDataRateReceive,
    CurrentDataRateTransmit,
    Latency,
    MacAddress,
    MaximumDataRateReceive,
    MaximumDataRateTransmit,
    Message,
    MessageType,
    Mtu,
    Registry,
    RelativeLinkQualityReceive,
    RelativeLinkQualityTransmit,
    Resources,
    UnitSpec,
    core_registry,
    decode_message,
    encode_message,
)

N_MESSAGES = 10_000
N_DESTINATIONS = 64
REPEATS = 7
PASSES = 3  # passes over the workload per repetition


# --------------------------------------------------------------------------
# Workload
# --------------------------------------------------------------------------


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


@dataclass
class _Link:
    """Random-walk state of one destination's link."""

    mac: MacAddress
    mdrr: float
    mdrt: float
    cdrr: float
    cdrt: float
    lat: float
    res: float
    rlqr: float
    rlqt: float
    mtu: int


def destination_updates(n: int = N_MESSAGES, seed: int = 8175) -> list[Message]:
    """``n`` Destination Updates from a random walk over ``N_DESTINATIONS`` links."""
    rng = random.Random(seed)
    links = []
    for i in range(N_DESTINATIONS):
        mdr = rng.choice([54e6, 100e6, 300e6, 1e9])
        links.append(
            _Link(
                mac=MacAddress(bytes((0x02, 0, 0, 0, i >> 8, i & 0xFF))),
                mdrr=mdr,
                mdrt=mdr,
                cdrr=mdr * rng.uniform(0.2, 1.0),
                cdrt=mdr * rng.uniform(0.2, 1.0),
                lat=rng.uniform(500, 20_000),
                res=rng.uniform(20, 100),
                rlqr=rng.uniform(10, 100),
                rlqt=rng.uniform(10, 100),
                mtu=rng.choice([1400, 1500]),
            )
        )
    out = []
    for _ in range(n):
        s = links[rng.randrange(N_DESTINATIONS)]
        s.cdrr = _clamp(s.cdrr + rng.gauss(0, s.mdrr * 0.03), 0, s.mdrr)
        s.cdrt = _clamp(s.cdrt + rng.gauss(0, s.mdrt * 0.03), 0, s.mdrt)
        s.lat = _clamp(s.lat + rng.gauss(0, 300), 100, 500_000)
        s.res = _clamp(s.res - rng.random() * 0.05, 0, 100)
        s.rlqr = _clamp(s.rlqr + rng.gauss(0, 2), 0, 100)
        s.rlqt = _clamp(s.rlqt + rng.gauss(0, 2), 0, 100)
        out.append(
            Message(
                MessageType.DESTINATION_UPDATE,
                (
                    s.mac,
                    MaximumDataRateReceive(int(s.mdrr)),
                    MaximumDataRateTransmit(int(s.mdrt)),
                    CurrentDataRateReceive(int(s.cdrr)),
                    CurrentDataRateTransmit(int(s.cdrt)),
                    Latency(int(s.lat)),
                    Resources(round(s.res)),
                    RelativeLinkQualityReceive(round(s.rlqr)),
                    RelativeLinkQualityTransmit(round(s.rlqt)),
                    Mtu(s.mtu),
                ),
            )
        )
    return out


class _NeverLearn(dict[int, Any]):
    """A layout cache that is always empty and always 'full'."""

    def __len__(self) -> int:
        return 1 << 30


class ColdRegistry(Registry):
    """The core registry with the learned-layout cache switched off."""

    _NONE = _NeverLearn()

    def __init__(self) -> None:
        super().__init__()
        core = core_registry()
        self.items, self.decoders = core.items, core.decoders
        self.item_extension = core.item_extension
        self.messages, self.signals = core.messages, core.signals

    def layouts(self, spec: UnitSpec, extensions: frozenset[int] | None) -> dict[int, Any]:
        return self._NONE


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


def measure(run: Callable[[], object], count: int) -> tuple[float, float]:
    """Best and median seconds per message over ``REPEATS`` timed runs."""
    run()  # warm-up (also teaches the layout cache)
    times = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            run()
            times.append((time.perf_counter() - t0) / count)
    finally:
        if gc_was_enabled:
            gc.enable()
    return min(times), statistics.median(times)


def report(label: str, best: float, median: float) -> None:
    print(
        f"  {label:<34} best {1 / best:>10,.0f} msg/s {best * 1e6:7.2f} us/msg"
        f"   median {1 / median:>10,.0f} msg/s {median * 1e6:7.2f} us/msg"
    )


def _passes(fn: Callable[[Any], object], data: Sequence[Any]) -> Callable[[], object]:
    def run() -> object:
        r: object = None
        for _ in range(PASSES):
            r = [fn(x) for x in data]
        return r

    return run


def main() -> int:
    t_start = time.perf_counter()
    print(
        f"dlep.wire codec benchmark - Python {platform.python_version()} "
        f"({platform.python_implementation()}), one core"
    )
    updates = destination_updates()
    raws = [encode_message(m) for m in updates]
    assert len({len(r) for r in raws}) == 1, "workload must keep one shape"
    assert len(set(raws)) > N_MESSAGES * 0.99, "messages must be distinct"
    cold = ColdRegistry()
    assert [decode_message(r, cold) for r in raws[:100]] == updates[:100]
    assert [decode_message(r) for r in raws[:100]] == updates[:100]
    count = len(raws) * PASSES

    print(
        f"\n(a) Destination Update, MAC + 9 metrics: {len(raws[0])} octets, "
        f"{len(raws):,} distinct messages x {PASSES} passes, {REPEATS} repetitions"
    )
    report("encode (validated)", *measure(_passes(encode_message, updates), count))
    no_check: Callable[[Message], bytes] = lambda m: encode_message(m, validate=False)  # noqa: E731
    report("encode (validate=False)", *measure(_passes(no_check, updates), count))
    report("decode, layout path", *measure(_passes(decode_message, raws), count))
    cold_decode: Callable[[bytes], Message] = lambda b: decode_message(b, cold)  # noqa: E731
    report("decode, generic path (no layout)", *measure(_passes(cold_decode, raws), count))
    spec = DEFAULT_REGISTRY.messages[MessageType.DESTINATION_UPDATE]
    learned = sorted(DEFAULT_REGISTRY.layouts(spec, None))
    print(f"  layouts learned for Destination Update (body lengths): {learned}")

    heartbeat = Message(MessageType.HEARTBEAT)
    hb_raw = encode_message(heartbeat)
    hbs, hb_raws = [heartbeat] * N_MESSAGES, [hb_raw] * N_MESSAGES
    print(f"\n(b) Heartbeat: {len(hb_raw)} octets, {N_MESSAGES:,} x {PASSES} passes")
    report("encode (validated)", *measure(_passes(encode_message, hbs), count))
    report("decode", *measure(_passes(decode_message, hb_raws), count))

    print(f"\ntotal wall time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
