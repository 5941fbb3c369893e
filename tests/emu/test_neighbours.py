"""Neighbour lifecycle, RTT and loss from probes, with a fake clock."""

from __future__ import annotations

from dlep.emu.neighbours import NeighbourDown, NeighbourState, NeighbourTable, NeighbourUp
from dlep.emu.packet import Probe


def table(**kw: object) -> NeighbourTable:
    args = {"interval": 0.1, "dead_intervals": 5, "loss_window": 10, "rtt_smoothing": 1.0}
    return NeighbourTable([1], **{**args, **kw})  # type: ignore[arg-type]


def probe(t: NeighbourTable, peer: int, now: float) -> Probe:
    """What ``t`` sends to ``peer`` at ``now``."""
    st = t.stamp(peer, now)
    return _from_peer(st.seq, echo=st.echo_ts, now=now, dwell=st.dwell)


def test_two_way_handshake_gives_up_and_rtt() -> None:
    a, b = (
        table(),
        NeighbourTable([0], interval=0.1, dead_intervals=5, loss_window=10, rtt_smoothing=1.0),
    )
    # a -> b takes 10 ms, b -> a takes 20 ms; b holds a's probe 30 ms before answering.
    assert b.receive(0, probe(a, 1, 0.0), 0.010) == []
    assert b.peers[0].state is NeighbourState.HEARD
    events = a.receive(1, probe(b, 0, 0.040), 0.060)
    assert events == [NeighbourUp(1)]
    assert abs(a.peers[1].rtt - 0.030) < 1e-9  # 60 ms - 0 - 30 ms dwell
    assert a.stamp(1, 0.1).hello is False


def test_silence_expires_after_the_bound() -> None:
    a = table()
    b = table()
    b.peers = {0: b.peers.pop(1)}
    b.peers[0].peer = 0
    b.receive(0, probe(a, 1, 0.0), 0.0)
    a.receive(1, probe(b, 0, 0.0), 0.0)
    assert a.up() == [1]
    assert a.next_deadline() == 0.5
    assert a.expire(0.49) == []
    assert a.expire(0.5) == [NeighbourDown(1, "no probe heard")]
    assert a.peers[1].state is NeighbourState.DOWN


def test_one_way_break_is_detected_by_stale_echoes() -> None:
    a = table()
    a.receive(1, _from_peer(1, echo=None, now=0.0), 0.0)
    st = a.stamp(1, 0.0)
    a.receive(1, _from_peer(2, echo=0.0, now=0.01, dwell=0.0), 0.01)
    assert a.up() == [1]
    del st
    # From now on the peer still sends but never echoes anything newer.
    t = 0.01
    events = []
    while t < 1.0 and not events:
        t += 0.1
        events = a.receive(1, _from_peer(int(t * 100), echo=0.0, now=t, dwell=t), t)
        events += a.expire(t)
    assert events == [NeighbourDown(1, "our probes no longer echoed")]
    assert 0.5 <= t <= 0.62


def test_loss_window_counts_missing_sequence_numbers() -> None:
    a = table(loss_window=10)
    for seq in (1, 2, 4, 5, 6, 8, 9, 10):  # 3 and 7 lost
        a.receive(1, _from_peer(seq), seq * 0.1)
    assert abs(a.peers[1].rx_loss(10) - 0.2) < 1e-9


def test_restarted_peer_goes_down_and_starts_afresh() -> None:
    a = table(loss_window=10)
    a.receive(1, _from_peer(100), 0.0)
    a.receive(1, _from_peer(101, echo=0.0), 0.1)
    assert a.up() == [1]
    events = a.receive(1, _from_peer(1), 0.2)
    assert events == [NeighbourDown(1, "restarted")]
    assert a.peers[1].state is NeighbourState.HEARD


def _from_peer(seq: int, echo: float | None = None, now: float = 0.0, dwell: float = 0.0) -> Probe:
    return Probe(
        seq=seq,
        ts=now,
        echo_ts=echo,
        dwell=dwell,
        rx_loss=0.0,
        rate=1000,
        granted_rate=None,
        loss=0.0,
        latency_us=0,
        mtu=1500,
        up=True,
        want_rate=0,
        mac=b"\x02\x00\x00\x00\x00\x01",
        name="p",
    )
