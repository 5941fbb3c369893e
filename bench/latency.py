"""Latency from a modem library call to the router application's event.

Run: ``.venv/bin/python bench/latency.py`` (about 40 s; ``--quick`` about
12 s; ``--gc both`` twice as long). Prints figures, never fails.

Set-up. A ``ModemDaemon`` and a ``RouterDaemon`` (the library API; the
daemons' set-up and the forked-process plumbing are ``bench/e2e.py``'s),
each in its own process with its own event loop: plain TCP on 127.0.0.1, no
TLS, discovery off, the router connecting to the modem as a static peer, no
logging, each daemon's garbage collector set up as ``dlep-router`` /
``dlep-modem`` do it (``dlep.daemon.tune_gc()`` after start-up). 1,000
destinations are brought up first. Then, for each rate (1,000 and 20,000
updates/s), after a one-second unmeasured warm-up at that rate:

* the modem application calls ``update_destination`` on a pacer: the
  destinations round-robin, each call carrying a sequence number in CDRR
  (``cdrr = base + i``), the i-th call due at ``t0 + i / rate``; the calls
  that are due are made back to back (at most 64 before yielding to the
  event loop), the time of each call taken just before it;
* the router application is a task reading ``router.subscribe()`` with
  ``async for`` (a queue of 1,000,000, so that nothing merges and every
  update is timed); for each ``DestinationUpdate`` it takes the time and
  files it under the sequence number in ``changed.cdrr``;
* latency = receive time - call time, per sequence number: p50, p99,
  p99.9 and max, beside the issue's goals.

Last, 1,000 *new* destinations a second (``add_destination`` ->
``DestinationUp``, matched the same way): the destination tables grow, so
the collector runs, which it hardly does while updates only replace values.

Both times are ``time.monotonic()``: on Linux that is CLOCK_MONOTONIC, one
clock for every process of the host, so the two processes' times compare
without skew. Both processes time every pause of the cyclic garbage
collector (``gc.callbacks``, on the same clock): count, longest and total
per generation, and how many of the slow samples (over 1 ms) overlap a
pause in either process. At the end each process times one collection of
each generation, i.e. what a collection triggered by anything at all
would add to an update in flight. The router's ``data_received`` calls are
timed too (how much arrives at once, how long one call holds the loop).

What it shows and what it does not:

* the whole path an application sees: the modem's call (engine, encoding,
  ``transport.write``), the kernel's loopback, the router's read, decoding,
  engine and event queue, and the wake-up of the subscriber task;
* whether the pacer kept up. Latency is measured from the call, so a pacer
  that falls behind hides the wait in front of the modem: the calls'
  lateness behind schedule (p99, max), the achieved rate and the latency
  counted from the scheduled time are printed. "Kept up": the achieved rate
  is within 1 % of the target and p99 lateness under 2 ms. The pacer sleeps
  with ``asyncio.sleep``, whose timer resolution is about 1 ms (epoll), so
  at 20,000/s calls come in bursts of about 20, and lateness up to 1 ms is
  the timer's, not the modem's;
* both processes share the machine (2 cores here) with the benchmark's
  parent (idle meanwhile) and whatever else runs: any other load shows up as
  latency, in the tail first. The load average is printed; compare figures
  only at a low one;
* each figure is one run; the maximum is one sample and varies from run to
  run far more than p99 does.

``--gc python`` leaves Python's collector as it is in both daemons, ``--gc
both`` runs both set-ups one after the other; ``--destinations`` changes
the table size (e.g. 100,000, where a full collection is no longer cheap).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import bisect
import contextlib
import gc
import os
import platform
import sys
import time
from typing import Any

from dlep.daemon import Lagged, SessionEvent
from dlep.fsm import DestinationUp, DestinationUpdate, Metrics
from dlep.transport import SessionProtocol
from e2e import ModemSide, Remote, RouterSide, _pair, _pct, _wait, clock, mac_of

NDEST = 1000
BASE = 100_000_000  # cdrr = BASE + offset of the run + sequence number
BURST = 64  # calls made back to back at most before the pacer yields
MAX_SPANS = 200_000  # GC pauses kept per process (bounded memory)
SLOW_MS = 1.0
GOALS = {1000: 1.0, 20000: 5.0}  # rate -> p99 goal, ms
GOAL_MAX_MS = 10.0


class GcPauses:
    """Wall-clock pauses of the cyclic garbage collector in this process
    (``gc.callbacks``), per generation, and when each one happened."""

    def __init__(self) -> None:
        self.reset()
        self._t0 = 0.0
        gc.callbacks.append(self._cb)

    def reset(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self.spans = array.array("d")  # start, duration, start, duration, ...

    def _cb(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = clock()
            return
        d = clock() - self._t0
        g = info["generation"]
        self.count[g] += 1
        self.total[g] += d
        self.longest[g] = max(self.longest[g], d)
        if len(self.spans) < 2 * MAX_SPANS:
            self.spans.extend((self._t0, d))

    def stats(self) -> dict[str, Any]:
        return {
            "count": list(self.count),
            "total": list(self.total),
            "max": list(self.longest),
            "spans": self.spans.tobytes(),
            "frozen": gc.get_freeze_count(),
            "threshold": gc.get_threshold(),
        }


async def gc_probe(self: Any) -> dict[str, Any]:
    """What a collection of each generation would cost this process now (the
    destinations are up): the pause a collection triggered by anything else
    (an API call, a scrape, new destinations) would add to an update in flight."""
    out: dict[str, Any] = {"tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}
    for gen in (0, 1, 2):
        t = clock()
        gc.collect(gen)
        out[f"gen{gen}"] = clock() - t
    return out


class LatencyModem(ModemSide):
    """The modem application: paced ``update_destination`` calls."""

    def __init__(self, gc_mode: str) -> None:
        super().__init__(gc_mode)  # tune_gc() in start() if "tuned"
        self.gcp: GcPauses | None = None

    async def start(self, port: int) -> None:
        await super().start(port)
        self.gcp = GcPauses()

    gc_probe = gc_probe

    async def paced(
        self, ndest: int, rate: float, seconds: float, seq0: int, first_new: int = 0
    ) -> dict[str, Any]:
        """``update_destination`` round-robin over ``ndest`` destinations or,
        with ``first_new``, ``add_destination`` of new ones from that index on."""
        m = self.m
        assert m is not None and self.gcp is not None
        n = int(rate * seconds)
        if first_new:
            upd = m.add_destination
            macs = [mac_of(first_new + i) for i in range(n)]
            ndest = n
        else:
            upd = m.update_destination
            macs = [mac_of(i) for i in range(ndest)]
        sent = array.array("d", bytes(8 * n))
        late = array.array("d", bytes(8 * n))
        self.gcp.reset()
        cpu0 = time.process_time()
        t0 = clock() + 0.02
        i = 0
        while i < n:
            now = clock()
            due = min(n, int((now - t0) * rate) + 1, i + BURST)
            if due <= i:
                await asyncio.sleep(t0 + i / rate - now)
                continue
            while i < due:
                t = clock()
                sent[i] = t
                late[i] = t - (t0 + i / rate)
                await upd(macs[i % ndest], Metrics(cdrr=seq0 + i))
                i += 1
            await asyncio.sleep(0)  # let the loop write and read between bursts
        t_end = clock()
        return {
            "sent": sent.tobytes(),
            "late": late.tobytes(),
            "t0": t0,
            "t_end": t_end,
            "cpu": time.process_time() - cpu0,
            "gc": self.gcp.stats(),
        }


class LatencyRouter(RouterSide):
    """The router application: files each update's arrival under its sequence number."""

    def __init__(self, gc_mode: str) -> None:
        super().__init__(gc_mode)  # tune_gc() in start() if "tuned"
        self.gcp: GcPauses | None = None
        self.recv: array.array[float] | None = None
        self.seq0 = 0
        self.n = 0
        self.got = 0
        self.dropped = 0
        self.coalesced = 0
        self._cpu0 = 0.0

    async def start(self, port: int) -> None:
        await super().start(port)
        self.gcp = GcPauses()
        self.reads = array.array("d")  # octets, seconds in data_received, ...
        orig = SessionProtocol.data_received
        reads = self.reads

        def timed(proto: SessionProtocol, data: bytes) -> None:
            t = clock()
            orig(proto, data)
            if len(reads) < 2 * MAX_SPANS:
                reads.extend((len(data), clock() - t))

        SessionProtocol.data_received = timed  # type: ignore[method-assign]

    gc_probe = gc_probe

    async def _consume(self) -> None:
        async for ev in self._sub:
            if isinstance(ev, SessionEvent):
                e = ev.event
                if isinstance(e, DestinationUpdate):
                    t = clock()
                    c = e.changed.cdrr
                    if self.recv is not None and c is not None and 0 <= c - self.seq0 < self.n:
                        self.recv[c - self.seq0] = t
                        self.got += 1
                elif isinstance(e, DestinationUp):
                    t = clock()
                    self.ups += 1
                    self.t_last_up = t
                    c = e.info.metrics.cdrr
                    if self.recv is not None and c is not None and 0 <= c - self.seq0 < self.n:
                        self.recv[c - self.seq0] = t
                        self.got += 1
            elif isinstance(ev, Lagged):
                self.dropped += ev.dropped
                self.coalesced += ev.coalesced

    async def record(self, seq0: int, n: int) -> None:
        assert self.gcp is not None
        self.recv = array.array("d", bytes(8 * n))
        self.seq0, self.n, self.got = seq0, n, 0
        self.dropped = self.coalesced = 0
        self.gcp.reset()
        del self.reads[:]
        self._cpu0 = time.process_time()

    async def collect(self) -> dict[str, Any]:
        assert self.gcp is not None and self.recv is not None
        with contextlib.suppress(TimeoutError):
            await _wait(lambda: self.got >= self.n, "the last updates", timeout=5.0)
        out = {
            "recv": self.recv.tobytes(),
            "cpu": time.process_time() - self._cpu0,
            "gc": self.gcp.stats(),
            "dropped": self.dropped,
            "coalesced": self.coalesced,
            "reads": self.reads.tobytes(),
        }
        self.recv = None
        return out


def _doubles(b: bytes) -> array.array[float]:
    a = array.array("d")
    a.frombytes(b)
    return a


def _gc_line(g: dict[str, Any]) -> str:
    parts = []
    for gen in range(3):
        n = g["count"][gen]
        if n:
            mx, total = g["max"][gen] * 1e3, g["total"][gen] * 1e3
            parts.append(f"gen{gen} {n:,}x max {mx:.2f} ms (total {total:.0f} ms)")
        else:
            parts.append(f"gen{gen} none")
    return ", ".join(parts)


def _during_gc(samples: list[tuple[float, float]], g: dict[str, Any]) -> int:
    """How many (start, end) samples overlap one of the GC pauses in ``g``."""
    spans = _doubles(g["spans"])
    starts = spans[0::2]
    durs = spans[1::2]
    hit = 0
    for a, b in samples:
        # Pauses that began before the sample ended; any of the last few may overlap it.
        k = bisect.bisect_right(starts, b)
        for j in range(k - 1, max(-1, k - 50), -1):
            if starts[j] + durs[j] >= a:
                hit += 1
                break
            if starts[j] + 0.1 < a:  # no pause lasts 100 ms here
                break
    return hit


async def run_rate(
    modem: Any,
    router: Any,
    rate: int,
    seconds: float,
    *,
    ndest: int,
    warm: float,
    run: int,
    ups: bool = False,
) -> dict[str, Any]:
    first_new = 10_000_000 if ups else 0  # MACs above those of the ndest updated ones
    if warm and not ups:
        await modem("paced", ndest, rate, warm, BASE + 10_000_000 * (2 * run))
    seq0 = BASE + 10_000_000 * (2 * run + 1)
    n = int(rate * seconds)
    await router("record", seq0, n)
    m = await modem("paced", ndest, rate, seconds, seq0, first_new)
    r = await router("collect")
    return {"rate": rate, "seconds": seconds, "n": n, "m": m, "r": r, "ups": ups, "ndest": ndest}


def report(res: dict[str, Any]) -> None:
    rate, n, m, r = res["rate"], res["n"], res["m"], res["r"]
    sent, recv, late = _doubles(m["sent"]), _doubles(r["recv"]), _doubles(m["late"])
    pairs = [(a, b) for a, b in zip(sent, recv, strict=True) if b > 0]
    lat = [(b - a) * 1e3 for a, b in pairs]
    span = m["t_end"] - m["t0"]
    what = (
        f"new destinations (add_destination -> DestinationUp) at {rate:,}/s"
        if res["ups"]
        else f"{rate:,} updates/s over {res['ndest']:,} destinations"
    )
    print(f"\n  {what} for {res['seconds']:g} s ({n:,} calls, {len(lat):,} events matched):")
    if not lat:
        print("    no event arrived")
        return
    goal = None if res["ups"] else GOALS.get(rate)
    p50, p99, p999, mx = (_pct(lat, 50), _pct(lat, 99), _pct(lat, 99.9), max(lat))
    print(
        f"    modem call -> router event: p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
        f"p99.9 {p999:.3f} ms, max {mx:.3f} ms"
    )
    if goal is not None:
        print(
            f"    goals: p99 < {goal:g} ms ({'met' if p99 < goal else 'MISSED'}), "
            f"max < {GOAL_MAX_MS:g} ms incl. GC ({'met' if mx < GOAL_MAX_MS else 'MISSED'})"
        )
    achieved = n / span if span > 0 else 0.0
    late_ms = [x * 1e3 for x in late]
    kept = achieved >= 0.99 * rate and _pct(late_ms, 99) < 2.0
    print(
        f"    pacer {'kept up' if kept else 'FELL BEHIND'}: {achieved:,.0f} calls/s achieved; "
        f"calls behind schedule p99 {_pct(late_ms, 99):.2f} ms, max {max(late_ms):.2f} ms"
    )
    due = [(b - a + x) * 1e3 for a, b, x in zip(sent, recv, late, strict=True) if b > 0]
    print(
        f"    counted from the scheduled time instead: p99 {_pct(due, 99):.3f} ms, "
        f"max {max(due):.3f} ms"
    )
    print(f"    GC pauses, modem:  {_gc_line(m['gc'])}")
    print(f"    GC pauses, router: {_gc_line(r['gc'])}")
    slow = [(a, b) for a, b in pairs if (b - a) * 1e3 > SLOW_MS]
    if slow:
        print(
            f"    samples over {SLOW_MS:g} ms: {len(slow):,}; overlapping a GC pause: "
            f"modem {_during_gc(slow, m['gc']):,}, router {_during_gc(slow, r['gc']):,}"
        )
    else:
        print(f"    samples over {SLOW_MS:g} ms: none")
    reads = _doubles(r["reads"])
    if reads:
        size, busy = list(reads[0::2]), [x * 1e3 for x in reads[1::2]]
        print(
            f"    router reads: {len(size):,} data_received calls, "
            f"octets p50 {_pct(size, 50):,.0f} "
            f"max {max(size):,.0f}; time in one call p99 {_pct(busy, 99):.2f} ms, "
            f"max {max(busy):.2f} ms"
        )
    extra = ""
    if n - len(lat):
        extra += f"; {n - len(lat):,} calls without a matching event"
    if r["dropped"] or r["coalesced"]:
        extra += f"; subscriber lagged: {r['dropped']:,} dropped, {r['coalesced']:,} merged"
    print(f"    CPU busy: modem {m['cpu'] / span:.0%}, router {r['cpu'] / span:.0%}{extra}")


async def main_async(args: argparse.Namespace) -> None:
    seconds = 2.0 if args.quick else args.seconds
    warm = 0.3 if args.quick else 1.0
    modes = ["tuned", "python"] if args.gc == "both" else [args.gc]
    print(
        f"dlep latency benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}, "
        f"{os.cpu_count()} CPU(s), modem and router in two processes, loopback TCP, "
        f"no TLS, logging off; load average {os.getloadavg()[0]:.2f} at start"
    )
    t_start = clock()
    for mode in modes:
        modem = Remote("modem", None, side=lambda mode=mode: LatencyModem(mode))
        router = Remote("router", None, side=lambda mode=mode: LatencyRouter(mode))
        try:
            await _pair(modem, router)
            await modem("add", 0, args.destinations, 256)
            await router("wait_ups", args.destinations)
            what = (
                "as the daemons run it (dlep.daemon.tune_gc() after start-up)"
                if mode == "tuned"
                else "Python's defaults, untouched"
            )
            print(f"\ngarbage collector: {what}")
            for run, rate in enumerate(args.rates):
                report(
                    await run_rate(
                        modem, router, rate, seconds, ndest=args.destinations, warm=warm, run=run
                    )
                )
            if args.ups:
                # The heap grows, so the collector runs: where its pauses show.
                report(
                    await run_rate(
                        modem, router, args.ups, seconds, ndest=0, warm=0, run=9, ups=True
                    )
                )
            for name, side in (("modem", modem), ("router", router)):
                g = await side("gc_probe")
                print(
                    f"  a collection now would pause the {name:6}: gen0 {g['gen0'] * 1e3:.2f} ms, "
                    f"gen1 {g['gen1'] * 1e3:.2f} ms, gen2 (full) {g['gen2'] * 1e3:.2f} ms "
                    f"({g['tracked']:,} objects tracked, {g['frozen']:,} frozen)"
                )
            await router("stop")
            await modem("stop")
        finally:
            modem.close()
            router.close()
    print(f"\ntotal {clock() - t_start:.0f} s; load average {os.getloadavg()[0]:.2f} at the end")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 s per phase (a smoke run)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    p.add_argument("--rates", type=int, nargs="+", default=[1000, 20000], help="updates per second")
    p.add_argument(
        "--destinations", type=int, default=NDEST, help="destinations up before the updates"
    )
    p.add_argument(
        "--ups",
        type=int,
        default=1000,
        help="then new destinations per second, for as long (0: skip)",
    )
    p.add_argument(
        "--gc",
        choices=["tuned", "python", "both"],
        default="tuned",
        help="the daemons' GC tuning (default), Python's defaults, or both one after the other",
    )
    args = p.parse_args()
    if sys.platform != "linux":
        print("note: cross-process latency assumes one monotonic clock for all processes")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
