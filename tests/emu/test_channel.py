"""The channel model with a fake clock: rate, queue, loss, latency, jitter, MTU."""

from __future__ import annotations

import random

import pytest

from dlep.emu.channel import Channel, ChannelParams, DropReason


def chan(**kw: object) -> Channel[int]:
    params = ChannelParams(**{"rate": 8_000_000, **kw})  # type: ignore[arg-type]
    return Channel(params, random.Random(1))


def test_rate_spaces_departures_by_serialisation_time() -> None:
    # 8 Mb/s = 1 byte/us; burst one 1018-byte frame; 1000-byte frames.
    c = chan(latency_us=0, burst_bytes=1000, queue_bytes=100_000)
    for i in range(5):
        assert c.send_data(i, 1000, 986, now=0.0) is None
    arrivals = []
    t = 0.0
    while c.in_flight():
        t = c.next_deadline()  # type: ignore[assignment]
        arrivals += [(round(t * 1e6), x) for x in c.due(t)]
    # The first leaves at once (full bucket), then one every 1000 us.
    assert arrivals == [(0, 0), (1000, 1), (2000, 2), (3000, 3), (4000, 4)]


def test_long_run_rate_matches_configured_rate() -> None:
    c = chan(rate=20_000_000, latency_us=10_000)
    sent = delivered = 0
    t = 0.0
    step = 1e-4
    while t < 2.0:  # offer 40 Mb/s of 1000-byte frames for 2 s
        c.send_data(1000, 1000, 986, t)
        c.send_data(1000, 1000, 986, t + step / 2)
        sent += 2
        delivered += sum(c.due(t))
        t += step * 2
    bits = delivered * 8 / 2.0
    assert bits == pytest.approx(20e6, rel=0.02)


def test_queue_overflows_and_drains() -> None:
    c = chan(queue_bytes=3000, burst_bytes=1018)
    # The first frame leaves at once (a full bucket); three wait; the fifth overflows.
    verdicts = [c.send_data(i, 1000, 986, 0.0) for i in range(5)]
    assert verdicts == [None, None, None, None, DropReason.QUEUE_FULL]
    assert c.backlog(0.0) == 3000
    assert c.queue_fill(0.0) == 1.0
    assert c.backlog(0.0025) == 1000  # two have left by 2.5 ms (1 byte/us)
    assert c.send_data(9, 1000, 986, 0.0025) is None


def test_loss_is_seeded_and_close_to_probability() -> None:
    def run() -> list[DropReason | None]:
        c = Channel(ChannelParams(rate=10**12, loss=0.1), random.Random(42))
        return [c.send_data(i, 100, 86, i * 1e-3) for i in range(5000)]

    a, b = run(), run()
    assert a == b  # repeatable
    lost = a.count(DropReason.CHANNEL_LOSS)
    assert 400 < lost < 600


def test_latency_and_jitter_never_reorder() -> None:
    c = Channel(ChannelParams(rate=10**12, latency_us=10_000, jitter_us=5_000), random.Random(3))
    for i in range(200):
        c.send_data(i, 100, 86, i * 1e-4)
    out: list[int] = []
    times: list[float] = []
    while c.in_flight():
        t = c.next_deadline()
        assert t is not None
        times.append(t)
        out += c.due(t)
    assert out == sorted(out)
    assert min(times) >= 0.005 and max(times) <= 0.0199 + 0.015


def test_mtu_and_link_down() -> None:
    c = chan(mtu=1400)
    assert c.send_data(1, 1500, 1401, 0.0) is DropReason.MTU
    assert c.send_data(2, 1414, 1400, 0.0) is None
    c.set_params(c.params.updated({"up": False}))
    assert c.send_data(3, 100, 86, 0.0) is DropReason.NO_NEIGHBOUR
    assert c.send_control(4, 0.0) is DropReason.NO_NEIGHBOUR


def test_control_skips_a_full_queue_but_not_latency() -> None:
    c = chan(queue_bytes=2036, latency_us=2000)
    while c.send_data(0, 1000, 986, 0.0) is None:
        pass
    assert c.send_control(99, 0.0) is None
    assert c.due(0.0019) == []
    assert 99 in c.due(0.0021)


def test_grant_caps_rate_and_goodput() -> None:
    p = ChannelParams(rate=20_000_000, loss=0.01)
    assert p.goodput == 19_800_000
    g = p.updated({"granted_rate": 5_000_000})
    assert g.effective_rate == 5_000_000 and g.goodput == 4_950_000
    assert g.updated({"granted_rate": None}).effective_rate == 20_000_000
    with pytest.raises(ValueError, match="unknown channel keys"):
        p.updated({"speed": 1})


def test_derived_sizes() -> None:
    p = ChannelParams(rate=20_000_000)
    assert p.queue_size == 250_000  # 100 ms at 20 Mb/s
    assert p.burst_size == 1518
    assert ChannelParams(rate=1000).queue_size == 4 * 1518
    assert ChannelParams(rate=10**12).queue_size == 1_000_000
