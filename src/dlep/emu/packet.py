"""The emulators' UDP packets: Ethernet frames and hello/keepalive probes.

Every datagram starts with an 8-octet header::

    magic "DE" | version (1) | kind | source node (u16) | destination node (u16)

Node numbers are indexes into the scenario's ``[[nodes]]``, the same on
every host because every host reads the same file.

* ``DATA``: the header, then one Ethernet frame as read from the TAP.
* ``HELLO`` / ``KEEPALIVE``: the header, then a :class:`Probe`. A node sends
  hellos to a peer until the peer is a two-way neighbour, keepalives after.
  Both carry the same fields: the sender's sequence number and clock, the
  echo of the last probe it received from us (for RTT), the loss it
  measures on our probes, and the parameters of its own link to us
  (so we can report the receive direction), plus its TAP MAC and name.

Decoding is strict: anything short, of another version or kind, or with
trailing octets raises :class:`PacketError`, which the node counts as a
``malformed`` drop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

__all__ = ["HEADER", "Kind", "PacketError", "Probe", "decode", "encode_data", "encode_probe"]

MAGIC: Final = b"DE"
VERSION: Final = 1
HEADER: Final = struct.Struct("!2sBBHH")
#: seq, ts, echo_ts, dwell, rx_loss, rate, granted rate, loss, latency_us,
#: mtu, flags, want_rate, mac, name length
_PROBE: Final = struct.Struct("!IddddQQdIHBQ6sB")
_FLAG_UP: Final = 1
_FLAG_ECHO: Final = 2
_FLAG_RX_LOSS: Final = 4
_FLAG_GRANT: Final = 8


class Kind(IntEnum):
    """What a datagram carries."""

    DATA = 1
    HELLO = 2
    KEEPALIVE = 3


class PacketError(ValueError):
    """A datagram that is not a well-formed emulator packet."""


@dataclass(frozen=True, slots=True)
class Probe:
    """The body of a hello or keepalive.

    ``ts`` and ``echo_ts`` are seconds of the *sender's* clock (``echo_ts``
    of the receiver's, echoed back), ``dwell`` how long the sender held that
    echo: the receiver's RTT is ``now - echo_ts - dwell`` without any clock
    synchronisation. ``rx_loss`` is the loss the sender measured on our
    probes. ``rate`` ... ``up`` describe the sender's link *to us*;
    ``want_rate`` is the rate the sender asks for on our link to it (a
    granted Link Characteristics Request; 0: none).
    """

    seq: int
    ts: float
    echo_ts: float | None
    dwell: float
    rx_loss: float | None
    rate: int
    granted_rate: int | None
    loss: float
    latency_us: int
    mtu: int
    up: bool
    want_rate: int
    mac: bytes
    name: str


def encode_data(src: int, dst: int, frame: bytes) -> bytes:
    """A DATA datagram carrying ``frame``."""
    return HEADER.pack(MAGIC, VERSION, Kind.DATA, src, dst) + frame


def encode_probe(kind: Kind, src: int, dst: int, p: Probe) -> bytes:
    """A HELLO or KEEPALIVE datagram."""
    name = p.name.encode()[:255]
    flags = (
        (_FLAG_UP if p.up else 0)
        | (_FLAG_ECHO if p.echo_ts is not None else 0)
        | (_FLAG_RX_LOSS if p.rx_loss is not None else 0)
        | (_FLAG_GRANT if p.granted_rate is not None else 0)
    )
    body = _PROBE.pack(
        p.seq & 0xFFFFFFFF,
        p.ts,
        p.echo_ts if p.echo_ts is not None else 0.0,
        p.dwell,
        p.rx_loss if p.rx_loss is not None else 0.0,
        p.rate,
        p.granted_rate or 0,
        p.loss,
        p.latency_us,
        p.mtu,
        flags,
        p.want_rate,
        p.mac,
        len(name),
    )
    return HEADER.pack(MAGIC, VERSION, kind, src, dst) + body + name


def decode(data: bytes) -> tuple[Kind, int, int, bytes | Probe]:
    """``(kind, source, destination, frame or probe)``; PacketError if malformed."""
    if len(data) < HEADER.size:
        raise PacketError(f"{len(data)} octets: shorter than the header")
    magic, version, kind, src, dst = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PacketError("not an emulator packet (bad magic)")
    if version != VERSION:
        raise PacketError(f"version {version}, expected {VERSION}")
    if kind == Kind.DATA:
        if len(data) - HEADER.size < 14:
            raise PacketError("DATA shorter than an Ethernet header")
        return Kind.DATA, src, dst, data[HEADER.size :]
    if kind not in (Kind.HELLO, Kind.KEEPALIVE):
        raise PacketError(f"unknown kind {kind}")
    end = HEADER.size + _PROBE.size
    if len(data) < end:
        raise PacketError(f"{Kind(kind).name} truncated ({len(data)} octets)")
    (seq, ts, echo, dwell, rx_loss, rate, granted, loss, lat, mtu, flags, want, mac, nlen) = (
        _PROBE.unpack_from(data, HEADER.size)
    )
    if len(data) != end + nlen:
        raise PacketError(f"{Kind(kind).name}: name length {nlen} does not match the packet")
    if not (0.0 <= loss <= 1.0 and 0.0 <= rx_loss <= 1.0 and dwell >= 0.0 and rate >= 1):
        raise PacketError(f"{Kind(kind).name}: value out of range")
    try:
        name = data[end:].decode()
    except UnicodeDecodeError:
        raise PacketError("name is not UTF-8") from None
    probe = Probe(
        seq=seq,
        ts=ts,
        echo_ts=echo if flags & _FLAG_ECHO else None,
        dwell=dwell,
        rx_loss=rx_loss if flags & _FLAG_RX_LOSS else None,
        rate=rate,
        granted_rate=granted if flags & _FLAG_GRANT else None,
        loss=loss,
        latency_us=lat,
        mtu=mtu,
        up=bool(flags & _FLAG_UP),
        want_rate=want,
        mac=mac,
        name=name,
    )
    return Kind(kind), src, dst, probe
