"""Micro-benchmark of the subscriber queue (``dlep.daemon.Subscription``).

Run: ``.venv/bin/python bench/subscription.py`` (a few seconds; ``--quick``
shorter). Prints figures, never fails.

``Subscription.offer`` runs on the router's hot path: once per engine event,
for every subscriber, inside ``data_received``. The figures, per event, with
the router's real event shape (``SessionEvent`` wrapping a
``DestinationUpdate`` of one of 1,000 destinations):

* **offer, reader keeping up**: offers into a queue that stays below the
  point where coalescing starts (the common case; what every received
  Destination Update costs per subscriber);
* **offer + read**: a producer offers bursts of 64 and yields to the event
  loop, a reader task drains them with ``async for`` (the whole round trip
  an application pays for an event);
* **offer, lagging**: the queue is already past its coalescing point, so
  every update merges into the queued one of its destination;
* **offer, full, nothing to merge into**: Destination Downs into a full
  queue (dropped and counted).

Only the public API is used, so the same script measures any version of the
queue (``git stash`` to compare). Best of ``--repeat`` runs; other load on
the machine only ever makes a figure larger.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
from collections.abc import Callable

from dlep.daemon import SessionEvent, Subscription
from dlep.fsm import DestinationDown, DestinationInfo, DestinationUpdate, Metrics

NDEST = 1000
MAXSIZE = 4096


def mac_of(i: int) -> bytes:
    return b"\x02" + i.to_bytes(5, "big")


def updates(n: int) -> list[SessionEvent]:
    macs = [mac_of(i) for i in range(NDEST)]
    out = []
    for k in range(n):
        m = Metrics(cdrr=1000 + k, cdrt=2000 + k, latency=k % 5000)
        info = DestinationInfo(macs[k % NDEST], m)
        out.append(SessionEvent("1", "127.0.0.1:854", DestinationUpdate(info, m)))
    return out


def best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def offer_fresh(events: list[SessionEvent], rounds: int) -> float:
    """ns per offer into a fresh queue, never past half full."""
    total = 0.0
    for _ in range(rounds):
        sub = Subscription(MAXSIZE)
        offer = sub.offer
        t0 = time.perf_counter()
        for ev in events:
            offer(ev)
        total += time.perf_counter() - t0
    return total / (rounds * len(events)) * 1e9


def offer_lagging(fill: list[SessionEvent], events: list[SessionEvent], rounds: int) -> float:
    """ns per offer into a queue already holding ``fill`` (past its coalescing point)."""
    total = 0.0
    for _ in range(rounds):
        sub = Subscription(MAXSIZE)
        for ev in fill:
            sub.offer(ev)
        offer = sub.offer
        t0 = time.perf_counter()
        for ev in events:
            offer(ev)
        total += time.perf_counter() - t0
    return total / (rounds * len(events)) * 1e9


def offer_full_downs(rounds: int) -> float:
    downs = [SessionEvent("1", "p", DestinationDown(mac_of(i), True)) for i in range(1000)]
    total = 0.0
    for _ in range(rounds):
        sub = Subscription(16)
        for ev in downs[:16]:
            sub.offer(ev)
        offer = sub.offer
        t0 = time.perf_counter()
        for ev in downs:
            offer(ev)
        total += time.perf_counter() - t0
    return total / (rounds * len(downs)) * 1e9


async def offer_and_read(events: list[SessionEvent], burst: int = 64) -> float:
    """ns per event, offered in bursts and read by a task with ``async for``."""
    sub = Subscription(MAXSIZE)
    n = len(events)
    got = 0

    async def reader() -> None:
        nonlocal got
        async for _ev in sub:
            got += 1
            if got == n:
                return

    task = asyncio.ensure_future(reader())
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for i in range(0, n, burst):
        for ev in events[i : i + burst]:
            sub.offer(ev)
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 30)
    return (time.perf_counter() - t0) / n * 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    rounds = 20 if args.quick else 200
    repeat = 3 if args.quick else args.repeat
    events = updates(1000)
    many = updates(50_000 if args.quick else 200_000)
    print(
        f"Subscription micro-benchmark: Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}; ns per event, best of {repeat}"
    )
    fill = many[: MAXSIZE * 3 // 4]
    rows = (
        ("offer, reader keeping up", lambda: offer_fresh(events, rounds)),
        ("offer + read (bursts of 64)", lambda: asyncio.run(offer_and_read(many))),
        ("offer, lagging (merge into queued)", lambda: offer_lagging(fill, events, rounds)),
        ("offer, full, nothing to merge into", lambda: offer_full_downs(rounds)),
    )
    for name, fn in rows:
        print(f"  {name + ':':38} {best(fn, repeat):7.0f} ns")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
