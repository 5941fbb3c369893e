"""Run Wireshark's tshark on a capture file and return its DLEP dissection.

tshark's DLEP dissector was written independently of this project, so it
serves as a second opinion on our encoder's bytes. Output is read as PDML
(XML) because it keeps everything the dissector produced, in order: repeated
fields (several Data Items of one type), hidden fields, the raw bytes
(``value``), offsets and sizes, and expert info nested where it was raised.
``-T json`` repeats keys inside one object, which most JSON parsers drop.

Only files are read; tshark is run with name resolution off (``-n``) so it
performs no lookups on the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

TSHARK = "tshark"
SKIP_REASON = "tshark not installed: apt-get install tshark"

# Wireshark expert severities (epan/proto.h, PI_SEVERITY_MASK values).
SEVERITY_COMMENT = 0x00100000
SEVERITY_CHAT = 0x00200000
SEVERITY_NOTE = 0x00400000
SEVERITY_WARN = 0x00600000
SEVERITY_ERROR = 0x00800000
SEVERITY_NAMES = {
    SEVERITY_COMMENT: "Comment",
    SEVERITY_CHAT: "Chat",
    SEVERITY_NOTE: "Note",
    SEVERITY_WARN: "Warning",
    SEVERITY_ERROR: "Error",
}

# Preferences applied to every run. The checksum checks make tshark verify
# the checksums our pcap writer computes; the desegment options make TCP
# reassembly of DLEP Messages explicit rather than relying on defaults.
DEFAULT_PREFS: dict[str, str] = {
    "tcp.desegment_tcp_streams": "TRUE",
    "dlep.desegment": "TRUE",
    "tcp.analyze_sequence_numbers": "TRUE",
    "tcp.check_checksum": "TRUE",
    "udp.check_checksum": "TRUE",
    "ip.check_checksum": "TRUE",
}

# Protocol nodes tshark adds when a dissector runs off the end of its data
# or a reassembly is left incomplete.
ANOMALY_PROTOS = frozenset({"_ws.malformed", "_ws.short", "_ws.unreassembled"})

tshark_path: str | None = shutil.which(TSHARK)

_skip_without_tshark = pytest.mark.skipif(tshark_path is None, reason=SKIP_REASON)

F = TypeVar("F", bound=Callable[..., object])


def requires_tshark(fn: F) -> F:
    """Decorator: mark a test ``tshark`` and skip it when tshark is not installed."""
    return pytest.mark.tshark(_skip_without_tshark(fn))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def tshark_exe() -> str:
    """Path to tshark; skips the requesting test when it is not installed."""
    if tshark_path is None:
        pytest.skip(SKIP_REASON)
    return tshark_path


@dataclass
class Field:
    """One PDML <field>: a node of the dissection tree."""

    name: str
    show: str
    value: str  # raw bytes as hex ("" for fields without bytes)
    pos: int
    size: int
    hidden: bool
    showname: str
    children: list[Field] = field(default_factory=list)

    def walk(self) -> Iterator[Field]:
        """This field and all its descendants, depth first, in tree order."""
        yield self
        for c in self.children:
            yield from c.walk()


@dataclass(frozen=True)
class Expert:
    """An expert info item and the field(s) that name it."""

    severity: int
    group: int
    message: str
    names: tuple[str, ...]  # e.g. ("dlep.dataitem.unexpected_length",)
    proto: str  # top-level protocol node it was raised under

    @property
    def severity_name(self) -> str:
        return SEVERITY_NAMES.get(self.severity, hex(self.severity))


@dataclass
class DataItem:
    """One DLEP Data Item as the dissector shows it."""

    type: int
    length: int
    summary: str  # the dissector's one-line text, e.g. "Status Data Item, Code: ..."
    node: Field

    def fields(self) -> list[Field]:
        """Value sub-fields in tree order (the type/length header excluded)."""
        return [
            f
            for f in self.node.walk()
            if f is not self.node and f.name not in ("dlep.dataitem.type", "dlep.dataitem.length")
        ]

    def all(self, name: str) -> list[str]:
        """Every ``show`` value of the named field, in order."""
        return [f.show for f in self.fields() if f.name == name]

    def get(self, name: str) -> str:
        """The single ``show`` value of the named field."""
        vals = self.all(name)
        if len(vals) != 1:
            raise KeyError(f"{name}: expected exactly one value, got {vals!r} in {self.summary!r}")
        return vals[0]

    def raw(self, name: str) -> str:
        """The single raw hex value of the named field."""
        vals = [f.value for f in self.fields() if f.name == name]
        if len(vals) != 1:
            raise KeyError(f"{name}: expected exactly one value, got {vals!r}")
        return vals[0]

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields())


@dataclass
class DlepPdu:
    """One DLEP Signal or Message (one ``dlep`` protocol node)."""

    kind: str  # "signal" or "message"
    type: int
    length: int
    signature: str | None  # "DLEP" prefix, Signals only
    size: int  # bytes the dissector attributed to the PDU
    items: list[DataItem]
    experts: list[Expert]
    node: Field


@dataclass
class Packet:
    """One frame of the capture and what tshark made of it."""

    number: int
    protocols: str  # frame.protocols, e.g. "eth:ethertype:ip:tcp:dlep"
    dlep: list[DlepPdu]
    experts: list[Expert]  # every expert item in the frame, any layer
    anomalies: list[str]  # names of _ws.malformed / _ws.short / ... nodes
    protos: list[Field]  # every top-level protocol node, in order

    @property
    def malformed(self) -> bool:
        return bool(self.anomalies)

    def experts_at_least(self, severity: int) -> list[Expert]:
        return [e for e in self.experts if e.severity >= severity]

    def find(self, name: str) -> list[str]:
        """``show`` of every field with this name, in any layer, in order."""
        return [f.show for p in self.protos for f in p.walk() if f.name == name]

    def find_one(self, name: str) -> str:
        vals = self.find(name)
        if len(vals) != 1:
            raise KeyError(f"frame {self.number}: {name}: expected one value, got {vals!r}")
        return vals[0]


def run_tshark(
    capture: str | Path,
    *,
    prefs: dict[str, str] | None = None,
    decode_as: Sequence[str] = (),
    display_filter: str | None = None,
    tshark: str | None = None,
    timeout: float = 120.0,
) -> str:
    """Run tshark on a capture file and return its PDML output.

    decode_as entries are passed as ``-d`` rules, e.g. "tcp.port==8854,dlep";
    port 854 is bound to DLEP by default (UDP: Signals, TCP: Messages).
    """
    exe = tshark or tshark_path
    if exe is None:
        raise FileNotFoundError(SKIP_REASON)
    args = [exe, "-n", "-r", str(capture), "-T", "pdml"]
    for k, v in {**DEFAULT_PREFS, **(prefs or {})}.items():
        args += ["-o", f"{k}:{v}"]
    for rule in decode_as:
        args += ["-d", rule]
    if display_filter:
        args += ["-Y", display_filter]
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C.UTF-8")  # text fields are UTF-8
    proc = subprocess.run(args, capture_output=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"tshark failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}"
        )
    return proc.stdout.decode("utf-8")


def dissect(capture: str | Path, **kw: object) -> list[Packet]:
    """Run tshark on ``capture`` and parse every frame (see run_tshark for options)."""
    return parse_pdml(run_tshark(capture, **kw))  # type: ignore[arg-type]


def tshark_version(tshark: str | None = None) -> str:
    exe = tshark or tshark_path
    if exe is None:
        raise FileNotFoundError(SKIP_REASON)
    out = subprocess.run([exe, "--version"], capture_output=True, check=True, timeout=60)
    return out.stdout.decode(errors="replace").splitlines()[0].strip()


def _field(el: ET.Element) -> Field:
    return Field(
        name=el.get("name", ""),
        show=el.get("show", ""),
        value=el.get("value", ""),
        pos=int(el.get("pos", "0")),
        size=int(el.get("size", "0")),
        hidden=el.get("hide") == "yes",
        showname=el.get("showname", ""),
        children=[_field(c) for c in el if c.tag in ("field", "proto")],
    )


def _experts(node: Field, proto: str) -> list[Expert]:
    out = []
    for f in node.walk():
        if f.name != "_ws.expert":
            continue
        sev = grp = 0
        msg = ""
        names = []
        for c in f.children:
            if c.name == "_ws.expert.severity":
                sev = int(c.show, 0)
            elif c.name == "_ws.expert.group":
                grp = int(c.show, 0)
            elif c.name == "_ws.expert.message":
                msg = c.show
            else:
                names.append(c.name)
        out.append(Expert(sev, grp, msg, tuple(names), proto))
    return out


def _int(node: Field, name: str) -> int:
    for f in node.children:
        if f.name == name:
            return int(f.show, 0)
    raise KeyError(f"{name} missing under {node.showname!r}")


def _dlep_pdu(node: Field) -> DlepPdu:
    names = {c.name for c in node.children}
    kind = "signal" if "dlep.signal.type" in names else "message"
    sig = next((c.show for c in node.children if c.name == "dlep.signal.signature"), None)
    items = []
    for c in node.children:
        if c.name != "dlep.dataitem":
            continue
        items.append(
            DataItem(
                type=_int(c, "dlep.dataitem.type"),
                length=_int(c, "dlep.dataitem.length"),
                summary=c.showname,
                node=c,
            )
        )
    return DlepPdu(
        kind=kind,
        type=_int(node, f"dlep.{kind}.type"),
        length=_int(node, f"dlep.{kind}.length"),
        signature=sig,
        size=node.size,
        items=items,
        experts=_experts(node, "dlep"),
        node=node,
    )


def parse_pdml(text: str) -> list[Packet]:
    """Parse tshark PDML into Packet records."""
    root = ET.fromstring(text)
    packets = []
    for pel in root.iter("packet"):
        protos = [_field(p) for p in pel if p.tag == "proto"]
        number = 0
        protocols = ""
        experts: list[Expert] = []
        anomalies: list[str] = []
        dlep: list[DlepPdu] = []
        for p in protos:
            if p.name == "geninfo":
                number = int(next(f.show for f in p.children if f.name == "num"))
            elif p.name == "frame":
                protocols = next((f.show for f in p.children if f.name == "frame.protocols"), "")
            if p.name in ANOMALY_PROTOS:
                anomalies.append(p.name)
            # dissectors may also nest these inside their own tree
            anomalies += [f.name for f in p.walk() if f is not p and f.name in ANOMALY_PROTOS]
            experts += _experts(p, p.name)
            if p.name == "dlep":
                dlep.append(_dlep_pdu(p))
        packets.append(Packet(number, protocols, dlep, experts, anomalies, protos))
    return packets
