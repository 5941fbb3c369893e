"""Keep the cyclic garbage collector's long pauses off the protocol path."""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc() -> int:
    """Collect once, then move every object alive into the collector's
    permanent generation (:func:`gc.freeze`); returns how many were frozen.

    Call it once, when start-up is over (the daemons, the management API, the
    metrics endpoint and the data plane running, no session yet): ``dlep-router``
    and ``dlep-modem`` do. It changes the whole process's collector, so a
    library user decides for their own program.

    Why: what start-up leaves behind (modules, classes, gRPC, pydantic and
    the configuration: about 40,000 tracked objects) is alive for the whole
    run, yet every full collection walks all of it. With Python's defaults a
    full collection paused a daemon with 1,000 destinations for 14-40 ms, and
    one came whenever the destination table had grown by a quarter; frozen,
    the same collection takes 0.3-4 ms (``bench/latency.py --gc both``,
    figures in the issue-13 note). Frozen objects are still freed by
    reference counting; only cycles among them are never collected, which
    bounds what could leak by what start-up allocated, once.

    The thresholds stay Python's: on the update path nothing survives that
    would make the young generation grow, and a higher first threshold made
    each young collection longer (0.45 -> 0.9 ms) without removing any.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
