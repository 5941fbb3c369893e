"""Daemon configuration: a TOML file in, validated immutable objects out.

Two entry points per role::

    cfg = load_modem_config("examples/modem.toml", overrides={"logging.level": "debug"})
    cfg = parse_router_config({"router": {"discovery": False}}, source="<test>")

Every section is a pydantic model with ``extra="forbid"`` and ``frozen=True``:
an unknown key is an error that names it, and a loaded configuration never
changes. Whatever goes wrong — unreadable file, TOML syntax, a wrong type, a
value out of range, an inconsistency between keys — surfaces as one
:class:`ConfigError` whose text has one line per problem::

    modem.toml: modem.destinations[2].mac: not an EUI-48 or EUI-64 MAC address: '02:00:00'

The schema is documented key by key in ``docs/configuration.md``.

Units: times are integer milliseconds (``*_ms``); data rates are bits/s and
accept SI strings (``"100M"``, ``"54 Mbps"``, ``"1.5G"``); latency is
microseconds and accepts ``"1500us"``, ``"2ms"``, ``"0.5s"`` (see
:func:`parse_rate`, :func:`parse_latency`).
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .ext.profiles import PROFILES
from .fsm.discovery import ConnectionPoint
from .fsm.metrics import METRIC_FIELDS, Metrics
from .fsm.session_config import SessionConfig
from .wire import DEFAULT_REGISTRY, DLEP_PORT, PeerType, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "EXTENSION_NAMES",
    "PLUGIN_PREFIX",
    "U64_MAX",
    "ApiConfig",
    "ConfigError",
    "ConfigProblem",
    "ConnectionPointConfig",
    "DestinationConfig",
    "FeedConfig",
    "HooksConfig",
    "KernelConfig",
    "LoggingConfig",
    "MetricsConfig",
    "MetricsEndpointConfig",
    "ModemConfig",
    "ModemSection",
    "NetworkConfig",
    "Nl80211Config",
    "PeerEndpoint",
    "RouteMetricConfig",
    "RouterConfig",
    "RouterSection",
    "SimulateConfig",
    "StaticPeerConfig",
    "TimersConfig",
    "TlsConfig",
    "format_key",
    "format_rate",
    "load_modem_config",
    "load_router_config",
    "parse_extension",
    "parse_latency",
    "parse_modem_config",
    "parse_peer",
    "parse_plugin_ref",
    "parse_rate",
    "parse_router_config",
    "problems_from",
    "read_toml",
]

U64_MAX: Final = (1 << 64) - 1
U32_MAX: Final = (1 << 32) - 1

#: Extension names accepted in ``extensions`` lists -> Extension Type Value
#: (IANA "Extension Type Values" registry; see rfc/INDEX.md).
EXTENSION_NAMES: Final[dict[str, int]] = {
    "multi-hop": 1,  # RFC 8629 Multi-Hop Forwarding
    "pause": 2,  # RFC 8651 Control-Plane-Based Pause
    "link-identifier": 3,  # RFC 8703 Link Identifier
    "latency-range": 4,  # RFC 8757 Latency Range
    "credit-8021q": 5,  # RFC 9895 IEEE 802.1Q Aware Credit Window
    "credit-diffserv": 6,  # RFC 9894 Diffserv Aware Credit Window
}

#: Prefix of ``extensions`` entries naming a third-party extension by its
#: entry point, e.g. ``"plugin:signal-strength"``.
PLUGIN_PREFIX: Final = "plugin:"
#: Entry-point group third-party extensions are published in.
ENTRY_POINT_GROUP: Final = "dlep.extensions"
_PLUGIN_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: RFC 8175 §7.1 and §7.3.1: discovery and heartbeat intervals MUST be >= 1 s.
RFC_MIN_INTERVAL_MS: Final = 1000
#: Floor for both intervals when ``timers.allow_fast_timers`` is set (not RFC).
FAST_MIN_INTERVAL_MS: Final = 100

Loc: TypeAlias = tuple[str | int, ...]


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration.

    Attributes:
        key: dotted key path (``"modem.destinations[2].mac"``); empty when the
            problem concerns the whole file.
        message: what is wrong.
        line, column: position in the file (TOML syntax errors only).
    """

    key: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, source: str) -> str:
        """``<source>: [line L, column C: ][<key>: ]<message>`` (no source if empty)."""
        parts = [source] if source else []
        if self.line is not None:
            parts.append(f"line {self.line}, column {self.column}")
        if self.key:
            parts.append(self.key)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(Exception):
    """The configuration cannot be used; ``str()`` lists every problem, one per line.

    Attributes:
        source: the file name (or ``"<dict>"``/the ``source`` given to ``parse_*``).
        problems: the individual problems, in file order where known.
    """

    def __init__(self, source: str, problems: Sequence[ConfigProblem] | str | None = None) -> None:
        if problems is None:  # ConfigError("just a message")
            source, problems = "", source
        if isinstance(problems, str):
            problems = [ConfigProblem("", problems)]
        self.source = source
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__("\n".join(p.format(source) for p in self.problems))

    @property
    def keys(self) -> list[str]:
        """The key paths of all problems (handy in tests and UIs)."""
        return [p.key for p in self.problems]


class _Problems(ValueError):
    """Raised by cross-field validators: problems at paths *below* the model.

    Pydantic reports a model validator's error at the model's own location;
    the converter in :func:`problems_from` appends each relative path so the
    message names the exact key.
    """

    def __init__(self, problems: Sequence[tuple[Loc, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{format_key(loc)}: {msg}" for loc, msg in self.problems))


def format_key(loc: Sequence[str | int]) -> str:
    """A pydantic error location as a dotted key path: ``("links", 2, "loss")``
    -> ``"links[2].loss"`` (the form :attr:`ConfigProblem.key` takes)."""
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out


# --------------------------------------------------------------------------
# Value parsers (public: the daemon and CLI use them too)
# --------------------------------------------------------------------------

_SI: Final[dict[str, int]] = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_RATE_RE: Final = re.compile(
    r"^(?P<num>\d[\d_]*(?:\.\d*)?|\.\d+)\s*(?P<prefix>[kKmMgGtT]?)\s*"
    r"(?P<unit>bps|bit/s|bits/s|b/s|bit|bits)?$"
)
_LATENCY_UNITS: Final[dict[str, int]] = {"": 1, "us": 1, "µs": 1, "μs": 1, "ms": 1000, "s": 10**6}
_LATENCY_RE: Final = re.compile(r"^(?P<num>\d[\d_]*(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-zA-Zµμ]*)$")


def _number_from(value: object, what: str, example: str) -> Decimal | None:
    """An int/float value as Decimal, or None if ``value`` is a string to parse."""
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got a boolean ({example})")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not a whole number ({example})")
        return Decimal(int(value))
    if isinstance(value, str):
        return None
    raise ValueError(f"expected {what}, got {type(value).__name__} ({example})")


def _to_u64(num: Decimal, text: object, unit: str) -> int:
    if num != num.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of {unit}")
    out = int(num)
    if out < 0:
        raise ValueError(f"{text!r} is negative")
    if out > U64_MAX:
        raise ValueError(f"{text!r} exceeds the 64-bit maximum {U64_MAX}")
    return out


def parse_rate(value: str | int | float) -> int:
    """A data rate in bits/s from an int or a string with an SI prefix.

    Accepted: ``100000000``, ``"100M"``, ``"54 Mbps"``, ``"1.5G"``, ``"2k"``,
    ``"2 kbit/s"``, ``"100_000"``. Prefixes are decimal (k=10³, M=10⁶, G=10⁹,
    T=10¹²; case-insensitive); the unit is bits, so ``Bps``/``B/s`` (bytes)
    and binary prefixes (``Mi``) are rejected. The result must be a whole
    number of bits/s in 0..2⁶⁴-1 (a float, e.g. TOML ``1e9``, must be integral).

    Raises:
        ValueError: with a message suitable for a configuration error.
    """
    example = "e.g. 100000000, '100M', '54 Mbps', '1.5G'"
    num = _number_from(value, "a data rate in bits/s", example)
    if num is None:
        text = str(value).strip()
        m = _RATE_RE.match(text)
        if m is None:
            if re.search(r"B(ps|/s)|[Bb]ytes?\b|[KkMmGgTt]i", text):
                raise ValueError(
                    f"invalid data rate {value!r}: rates are bits/s with decimal (SI) "
                    f"prefixes; bytes and binary prefixes are not accepted ({example})"
                )
            raise ValueError(f"invalid data rate {value!r} ({example})")
        try:
            num = Decimal(m["num"].replace("_", "")) * _SI[m["prefix"].lower()]
        except InvalidOperation:  # pragma: no cover - the regex admits only numbers
            raise ValueError(f"invalid data rate {value!r} ({example})") from None
    return _to_u64(num, value, "bits/s")


def parse_latency(value: str | int | float) -> int:
    """A latency in microseconds from an int (µs) or a string with a unit.

    Accepted: ``1500``, ``"1500us"``, ``"1500 µs"``, ``"2ms"``, ``"0.5s"``.
    A bare number is microseconds (the unit of RFC 8175 §13.16). The result
    must be a whole number of microseconds in 0..2⁶⁴-1.

    Raises:
        ValueError: with a message suitable for a configuration error.
    """
    example = "e.g. 1500, '1500us', '2ms', '0.5s'"
    num = _number_from(value, "a latency in microseconds", example)
    if num is None:
        text = str(value).strip()
        m = _LATENCY_RE.match(text)
        unit = m["unit"].lower() if m is not None else ""
        if m is None or unit not in _LATENCY_UNITS:
            raise ValueError(f"invalid latency {value!r}: units are us, ms, s ({example})")
        num = Decimal(m["num"].replace("_", "")) * _LATENCY_UNITS[unit]
    return _to_u64(num, value, "microseconds")


def format_rate(bits: int) -> str:
    """Human form of a rate in bits/s, e.g. ``54000000 -> "54 Mbit/s"``."""
    for prefix, factor in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if bits >= factor:
            return f"{Decimal(bits) / factor:g} {prefix}bit/s"
    return f"{bits} bit/s"


def parse_extension(value: str | int) -> int:
    """An Extension Type Value from a known name (:data:`EXTENSION_NAMES`) or an int.

    Names are case-insensitive and ``_`` equals ``-``. Integers must be
    1..65534 (0 and 65535 are reserved, RFC 8175 §15.4).
    """
    if isinstance(value, bool):
        raise ValueError("expected an extension name or number, got a boolean")
    if isinstance(value, int):
        if not 1 <= value <= 65534:
            raise ValueError(f"extension type {value} out of range 1..65534")
        return value
    if isinstance(value, str):
        name = value.strip().lower().replace("_", "-")
        if name in EXTENSION_NAMES:
            return EXTENSION_NAMES[name]
        if name.isdigit():
            return parse_extension(int(name))
        hint = difflib.get_close_matches(name, EXTENSION_NAMES, n=1)
        did = f"did you mean {hint[0]!r}? " if hint else ""
        raise ValueError(
            f"unknown extension {value!r} ({did}known names: {', '.join(EXTENSION_NAMES)}; "
            f"or a number 1..65534; or {PLUGIN_PREFIX}NAME for an installed "
            f"{ENTRY_POINT_GROUP!r} entry point)"
        )
    raise ValueError(f"expected an extension name or number, got {type(value).__name__}")


def parse_plugin_ref(value: object) -> str | None:
    """The entry-point name of a ``"plugin:NAME"`` entry of an ``extensions``
    list, or None if ``value`` is not one (then it is a built-in name or a code).

    NAME is an entry point of the ``dlep.extensions`` group (e.g.
    ``plugin:signal-strength``); ValueError if it is empty or not a valid
    entry-point name (letters, digits, ``.``, ``_``, ``-``).
    """
    if not isinstance(value, str) or not value.strip().lower().startswith(PLUGIN_PREFIX):
        return None
    name = value.strip()[len(PLUGIN_PREFIX) :].strip()
    if not _PLUGIN_NAME.fullmatch(name):
        raise ValueError(
            f"{value!r}: expected {PLUGIN_PREFIX}NAME with NAME an entry point of the "
            f"{ENTRY_POINT_GROUP!r} group (letters, digits, '.', '_', '-')"
        )
    return name


def _split_plugins(data: Any) -> Any:
    """Before validation of ``[router]``/``[modem]``: move ``plugin:NAME``
    entries of ``extensions`` to ``plugins`` (errors name ``extensions[i]``)."""
    if not isinstance(data, dict):
        return data
    exts = data.get("extensions")
    if not isinstance(exts, list | tuple):
        return data
    keep: list[object] = []
    plugins: list[str] = []
    problems: list[tuple[Loc, str]] = []
    for i, entry in enumerate(exts):
        try:
            name = parse_plugin_ref(entry)
            if name is None:
                # Check codes here too, so an error names the index the user wrote.
                keep.append(_extension(entry))
            elif name not in plugins:
                plugins.append(name)
        except ValueError as exc:
            problems.append((("extensions", i), str(exc)))
    if problems:
        raise _Problems(problems)
    if not plugins:
        return data
    out = dict(data)
    out["extensions"] = keep
    given = out.get("plugins", ())
    out["plugins"] = [*(given if isinstance(given, list | tuple) else [given]), *plugins]
    return out


_HOSTNAME_RE: Final = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def _check_host(host: str, text: str) -> str:
    """Normalise an IP literal, accept a host name, reject anything else."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _HOSTNAME_RE.match(host) and not host.replace(".", "").isdigit():
        return host
    raise ValueError(f"{text!r}: {host!r} is neither an IP address nor a host name")


def _check_port(port: int | str, text: str) -> int:
    if isinstance(port, str):
        if not port.isdigit():
            raise ValueError(f"{text!r}: port {port!r} is not a number")
        port = int(port)
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port} out of range 1..65535")
    return port


def _split_peer(text: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``host``, ``[v6]`` or a bare IPv6 address."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty peer address")
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0:
            raise ValueError(f"{text!r}: missing ']' after the IPv6 address")
        host, rest = raw[1:close], raw[close + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} in brackets is not an IPv6 address") from None
        if not rest:
            return str(ipaddress.IPv6Address(host)), None
        if not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected ':port' after ']'")
        return str(ipaddress.IPv6Address(host)), _check_port(rest[1:], text)
    if raw.count(":") > 1:  # bare IPv6 address, no port possible
        try:
            return str(ipaddress.IPv6Address(raw)), None
        except ValueError:
            raise ValueError(
                f"{text!r}: not an address; write IPv6 with a port as '[addr]:port'"
            ) from None
    host, sep, port = raw.partition(":")
    return _check_host(host, text), (_check_port(port, text) if sep else None)


def _with_port(value: object, expected: str) -> tuple[str, int]:
    """``host:port`` text -> (host, port); ValueError saying ``expected``."""
    if not isinstance(value, str):
        raise ValueError(f"expected {expected}, got {_describe(value)}")
    host, port = _split_peer(value)
    if port is None:
        raise ValueError(f"{value!r}: expected {expected} (the port is required)")
    return host, port


def _host_port(text: str | None) -> tuple[str, int] | None:
    """``(host, port)`` of a validated ``host:port`` / ``[v6]:port``, or None."""
    if text is None:
        return None
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def parse_peer(text: str, default_port: int = DLEP_PORT) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; IPv6 as ``"[::1]:854"``.

    ``host`` is an IP literal (returned in canonical form) or a host name;
    without a port, ``default_port`` is used.

    Raises:
        ValueError: with a message suitable for a configuration error.
    """
    host, port = _split_peer(text)
    return host, default_port if port is None else port


# --------------------------------------------------------------------------
# Annotated field types
# --------------------------------------------------------------------------


def _v4_address(value: object) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 address string, got {type(value).__name__}")
    try:
        return ipaddress.IPv4Address(value.strip())
    except ValueError as exc:
        raise ValueError(f"not an IPv4 address: {exc}") from None


def _v6_address(value: object) -> ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv6 address string, got {type(value).__name__}")
    try:
        return ipaddress.IPv6Address(value.strip())
    except ValueError as exc:
        raise ValueError(f"not an IPv6 address: {exc}") from None


def _any_address(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IP address string, got {type(value).__name__}")
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


def _v4_network(value: object) -> ipaddress.IPv4Network:
    if isinstance(value, ipaddress.IPv4Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 subnet string, got {type(value).__name__}")
    try:
        return ipaddress.IPv4Network(value.strip())
    except ValueError as exc:
        raise ValueError(f"not an IPv4 subnet: {exc}") from None


def _v6_network(value: object) -> ipaddress.IPv6Network:
    if isinstance(value, ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv6 subnet string, got {type(value).__name__}")
    try:
        return ipaddress.IPv6Network(value.strip())
    except ValueError as exc:
        raise ValueError(f"not an IPv6 subnet: {exc}") from None


def _v4_multicast(value: object) -> ipaddress.IPv4Address:
    addr = _v4_address(value)
    if not addr.is_multicast:
        raise ValueError(f"{addr} is not an IPv4 multicast address (224.0.0.0/4)")
    return addr


def _v6_multicast(value: object) -> ipaddress.IPv6Address:
    addr = _v6_address(value)
    if not addr.is_multicast:
        raise ValueError(f"{addr} is not an IPv6 multicast address (ff00::/8)")
    return addr


_MAC_RE: Final = re.compile(
    r"^[0-9A-Fa-f]{2}(?P<sep>[:-])[0-9A-Fa-f]{2}(?:(?P=sep)[0-9A-Fa-f]{2}){4}"
    r"(?:(?P=sep)[0-9A-Fa-f]{2}){0,2}$"
)


def _mac(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a MAC address string, got {type(value).__name__}")
    text = value.strip()
    m = _MAC_RE.match(text)
    groups = len(re.split(r"[:-]", text))
    if m is None or groups not in (6, 8):
        raise ValueError(
            f"not an EUI-48 or EUI-64 MAC address: {value!r} "
            "(6 or 8 hex octets separated by ':', e.g. '02:00:00:00:00:01')"
        )
    return text.replace("-", ":").lower()


def _percent(value: object) -> object:
    if isinstance(value, str) and value.strip().endswith("%"):
        num = value.strip()[:-1].strip()
        if num.isdigit():
            return int(num)
        raise ValueError(f"invalid percentage {value!r} (e.g. 80 or '80%')")
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _log_level(value: object) -> object:
    value = _lower(value)
    return "warning" if value == "warn" else value


def _peer_type_text(value: object) -> object:
    if isinstance(value, str) and len(value.encode("utf-8")) > 0xFFFE:
        raise ValueError("longer than 65534 octets (RFC 8175 §13.4)")
    return value


def _rate(value: object) -> int:
    if isinstance(value, str | int | float):
        return parse_rate(value)
    raise ValueError(f"expected a data rate in bits/s, got {type(value).__name__}")


def _latency(value: object) -> int:
    if isinstance(value, str | int | float):
        return parse_latency(value)
    raise ValueError(f"expected a latency in microseconds, got {type(value).__name__}")


def _plugin_name(value: object) -> str:
    if isinstance(value, str):
        name = parse_plugin_ref(value if value.startswith(PLUGIN_PREFIX) else PLUGIN_PREFIX + value)
        if name is not None:
            return name
    raise ValueError(f"expected a {ENTRY_POINT_GROUP!r} entry-point name, got {value!r}")


def _extension(value: object) -> int:
    if isinstance(value, str | int):
        return parse_extension(value)
    raise ValueError(f"expected an extension name or number, got {type(value).__name__}")


def _profile(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a profile name, got {type(value).__name__}")
    name = value.strip().lower()
    if name not in PROFILES:
        known = ", ".join(repr(n) for n in PROFILES)
        raise ValueError(f"unknown interoperability profile {value!r} (known: {known})")
    return name


StrictInt: TypeAlias = Annotated[int, Field(strict=True)]
Port: TypeAlias = Annotated[int, Field(strict=True, ge=1, le=65535)]
Milliseconds: TypeAlias = Annotated[int, Field(strict=True, ge=0, le=U32_MAX)]
PositiveMs: TypeAlias = Annotated[int, Field(strict=True, ge=1, le=U32_MAX)]
Probability: TypeAlias = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
Rate: TypeAlias = Annotated[int, BeforeValidator(_rate)]
LatencyUs: TypeAlias = Annotated[int, BeforeValidator(_latency)]
Percent: TypeAlias = Annotated[int, BeforeValidator(_percent), Field(strict=True, ge=0, le=100)]
MtuOctets: TypeAlias = Annotated[int, Field(strict=True, ge=0, le=0xFFFF)]
Extension: TypeAlias = Annotated[int, BeforeValidator(_extension)]
PluginName: TypeAlias = Annotated[str, BeforeValidator(_plugin_name)]
IPv4: TypeAlias = Annotated[ipaddress.IPv4Address, PlainValidator(_v4_address)]
IPv6: TypeAlias = Annotated[ipaddress.IPv6Address, PlainValidator(_v6_address)]
IPAny: TypeAlias = Annotated[
    ipaddress.IPv4Address | ipaddress.IPv6Address, PlainValidator(_any_address)
]
IPv4Subnet: TypeAlias = Annotated[ipaddress.IPv4Network, PlainValidator(_v4_network)]
IPv6Subnet: TypeAlias = Annotated[ipaddress.IPv6Network, PlainValidator(_v6_network)]
Mac: TypeAlias = Annotated[str, PlainValidator(_mac)]
PeerTypeText: TypeAlias = Annotated[str, BeforeValidator(_peer_type_text), Field(strict=True)]
#: Interoperability profile name (:data:`dlep.ext.profiles.PROFILES`).
ProfileName: TypeAlias = Annotated[str, PlainValidator(_profile)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _dedupe(values: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(values))


# --------------------------------------------------------------------------
# [network]
# --------------------------------------------------------------------------


class ConnectionPointConfig(_Model):
    """A modem connection point advertised in Peer Offer (RFC 8175 §13.2-13.3).

    ``port`` None = ``network.tcp_port``; ``tls`` None = ``network.use_tls``.
    Use :meth:`NetworkConfig.resolved_connection_points` for final values.
    """

    address: IPAny
    port: Port | None = None
    tls: StrictBool | None = None


class NetworkConfig(_Model):
    """``[network]``: interface, discovery, TCP/TLS transport, GTSM."""

    interface: str | None = None
    discovery_v4_group: Annotated[ipaddress.IPv4Address, PlainValidator(_v4_multicast)] = Field(
        default=ipaddress.IPv4Address("224.0.0.117")
    )
    discovery_v6_group: Annotated[ipaddress.IPv6Address, PlainValidator(_v6_multicast)] = Field(
        default=ipaddress.IPv6Address("ff02::1:7")
    )
    discovery_v4: StrictBool = True
    discovery_v6: StrictBool = True
    discovery_port: Port = DLEP_PORT
    tcp_port: Port = DLEP_PORT
    use_tls: StrictBool = False
    gtsm_enforce: StrictBool = True
    listen_addresses: tuple[IPAny, ...] = Field(
        default=(ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv6Address("::"))
    )
    connection_points: tuple[ConnectionPointConfig, ...] = ()
    #: Output queued for one peer (KiB) above which ``drain()`` waits and a
    #: peer that keeps sending requests without reading the answers is no
    #: longer read, until its output is back under a quarter of this.
    write_high_water_kib: Annotated[int, Field(strict=True, ge=16, le=1_048_576)] = 256
    #: Output queued for one peer (KiB) at which its connection is dropped:
    #: only output the application originates gets past the high-water mark
    #: (a modem's burst of Destination Ups), so this bounds that burst.
    max_write_buffer_kib: Annotated[int, Field(strict=True, ge=64, le=4_194_304)] = 65_536

    @field_validator("interface")
    @classmethod
    def _interface(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c.isspace() or c == "/" for c in value)):
            raise ValueError(f"{value!r} is not an interface name")
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        seen: dict[tuple[str, int], int] = {}
        for i, cp in enumerate(self.connection_points):
            key = (str(cp.address), cp.port or self.tcp_port)
            if key in seen:
                problems.append(
                    (("connection_points", i), f"duplicate of connection_points[{seen[key]}]")
                )
            seen.setdefault(key, i)
        if len(set(self.listen_addresses)) != len(self.listen_addresses):
            problems.append((("listen_addresses",), "lists an address twice"))
        if self.max_write_buffer_kib < 4 * self.write_high_water_kib:
            problems.append(
                (
                    ("max_write_buffer_kib",),
                    f"{self.max_write_buffer_kib} is below 4 x write_high_water_kib "
                    f"({4 * self.write_high_water_kib})",
                )
            )
        if problems:
            raise _Problems(problems)
        return self

    def resolved_connection_points(self) -> tuple[ConnectionPoint, ...]:
        """Connection points with ``port``/``tls`` defaults applied.

        ``use_tls = false`` is a master switch: no point is TLS then, whatever
        its own ``tls`` says (so ``--no-tls`` really means plain TCP).
        """
        return tuple(
            ConnectionPoint(
                cp.address,
                cp.port if cp.port is not None else self.tcp_port,
                self.use_tls and (cp.tls if cp.tls is not None else True),
            )
            for cp in self.connection_points
        )


# --------------------------------------------------------------------------
# [tls]
# --------------------------------------------------------------------------


class TlsConfig(_Model):
    """``[tls]``: certificates and verification policy (used when TLS is in use).

    Relative paths are resolved against the directory of the configuration
    file while loading.
    """

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    verify_peer: StrictBool = True
    require_client_cert: StrictBool = False
    server_name: str | None = None
    #: A TLS handshake not done within this is abandoned and its connection
    #: closed (asyncio's default is 60 s, each holding ~0.3 MB meanwhile).
    handshake_timeout_ms: PositiveMs = 10_000

    @field_validator("cert", "key", "ca", mode="after")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        base = info.context.get("base_dir") if isinstance(info.context, dict) else None
        if not value.is_absolute() and base is not None:
            value = Path(base) / value
        return value

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("empty server name")
        return value


def _tls_problems(tls: TlsConfig, net: NetworkConfig, *, modem: bool) -> list[tuple[Loc, str]]:
    """TLS cross-checks, applied only when ``network.use_tls`` is true."""
    if not net.use_tls:
        return []
    out: list[tuple[Loc, str]] = []
    if modem:
        for name in ("cert", "key"):
            if getattr(tls, name) is None:
                out.append(
                    (
                        ("tls", name),
                        "required: network.use_tls is true and the modem is the TLS server",
                    )
                )
        if tls.require_client_cert:
            if not tls.verify_peer:
                out.append(
                    (
                        ("tls", "require_client_cert"),
                        "needs tls.verify_peer = true (a client "
                        "certificate that is not verified proves nothing)",
                    )
                )
            elif tls.ca is None:
                out.append(
                    (
                        ("tls", "ca"),
                        "required to verify client certificates (tls.require_client_cert is true)",
                    )
                )
    else:
        if (tls.cert is None) != (tls.key is None):
            missing = "key" if tls.key is None else "cert"
            present = "cert" if missing == "key" else "key"
            out.append(
                (("tls", missing), f"required together with tls.{present} (client certificate)")
            )
        if tls.verify_peer and tls.ca is None:
            out.append(
                (
                    ("tls", "ca"),
                    "required to verify the modem's certificate "
                    "(tls.verify_peer is true; set it to false only for testing)",
                )
            )
        if tls.server_name is not None and not tls.verify_peer:
            out.append(
                (("tls", "server_name"), "checking the server name needs tls.verify_peer = true")
            )
    for name in ("cert", "key", "ca"):
        path: Path | None = getattr(tls, name)
        if path is not None and not path.is_file():
            what = "is not a file" if path.exists() else "file not found"
            out.append((("tls", name), f"{what}: {path}"))
    return out


# --------------------------------------------------------------------------
# [timers], [logging], [api]
# --------------------------------------------------------------------------


class TimersConfig(_Model):
    """``[timers]``: all values in milliseconds."""

    heartbeat_interval_ms: PositiveMs = 60_000
    discovery_interval_ms: PositiveMs = 5_000
    allow_fast_timers: StrictBool = False
    missed_heartbeats: Annotated[int, Field(strict=True, ge=2, le=1000)] = 2
    init_timeout_ms: PositiveMs | None = None
    link_characteristics_timeout_ms: PositiveMs = 10_000
    #: First delay before a router reconnects to a static peer; it doubles
    #: with every failed attempt up to ``reconnect_max_interval_ms``.
    reconnect_interval_ms: PositiveMs = 1_000
    reconnect_max_interval_ms: PositiveMs = 60_000
    #: Each reconnect delay is scaled by a random factor in 1 ± this percent,
    #: so that routers restarted together do not retry in lock-step.
    reconnect_jitter_percent: Annotated[int, Field(strict=True, ge=0, le=50)] = 20
    shutdown_timeout_ms: Milliseconds = 2_000
    #: The longest Heartbeat Interval a peer may announce (longer: session
    #: refused). One hour: 60 times the RFC's recommended 60 s, yet a dead
    #: peer still frees its session within hours rather than 99 days.
    max_peer_heartbeat_interval_ms: PositiveMs = 3_600_000

    @model_validator(mode="after")
    def _check(self) -> Self:
        floor = FAST_MIN_INTERVAL_MS if self.allow_fast_timers else RFC_MIN_INTERVAL_MS
        problems: list[tuple[Loc, str]] = []
        for name, section in (("heartbeat_interval_ms", "7.3.1"), ("discovery_interval_ms", "7.1")):
            value: int = getattr(self, name)
            if value < floor:
                if self.allow_fast_timers:
                    msg = f"{value} is below {FAST_MIN_INTERVAL_MS}, the floor even with "
                    msg += "allow_fast_timers"
                else:
                    msg = (
                        f"{value} is below the RFC 8175 §{section} minimum of 1000 ms "
                        f"(set timers.allow_fast_timers = true to allow down to "
                        f"{FAST_MIN_INTERVAL_MS} ms for tests)"
                    )
                problems.append(((name,), msg))
        if self.reconnect_max_interval_ms < self.reconnect_interval_ms:
            problems.append(
                (
                    ("reconnect_max_interval_ms",),
                    f"{self.reconnect_max_interval_ms} is below reconnect_interval_ms "
                    f"({self.reconnect_interval_ms})",
                )
            )
        if self.max_peer_heartbeat_interval_ms < floor:
            problems.append(
                (
                    ("max_peer_heartbeat_interval_ms",),
                    f"{self.max_peer_heartbeat_interval_ms} is below {floor} ms, the shortest "
                    "heartbeat interval a peer may use (RFC 8175 §7.3.1)",
                )
            )
        if problems:
            raise _Problems(problems)
        return self

    @property
    def effective_init_timeout_ms(self) -> int:
        """``init_timeout_ms``, or 4 heartbeat intervals when unset."""
        if self.init_timeout_ms is not None:
            return self.init_timeout_ms
        return 4 * self.heartbeat_interval_ms


class LoggingConfig(_Model):
    """``[logging]``."""

    level: Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_log_level)] = (
        "info"
    )
    format: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = "text"
    #: Log each Destination Update and Session Update (metrics moving) at
    #: info. Off: at debug only, since a busy radio sends one per
    #: destination every second; the demo turns it on.
    metric_updates: StrictBool = False


class ApiConfig(_Model):
    """``[api]``: the management API (gRPC, see docs/api.md).

    ``socket`` None = the default path for the role
    (:func:`dlep.api.paths.default_socket_path`). A TCP listener
    (``tcp_listen``) serves mutual TLS only, so it needs ``tls_cert``,
    ``tls_key`` and ``tls_client_ca``. Relative paths are resolved against
    the directory of the configuration file.
    """

    enabled: StrictBool = True
    socket: Path | None = None
    tcp_listen: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    watch_queue: Annotated[int, Field(strict=True, ge=16, le=1_000_000)] = 1024
    #: WatchEvents streams open at once (dlepctl watch and top hold one
    #: each): each costs a queue and a task woken per event; beyond it a
    #: new stream is refused (RESOURCE_EXHAUSTED).
    max_watch_streams: Annotated[int, Field(strict=True, ge=1, le=4096)] = 64

    @field_validator("socket", "tls_cert", "tls_key", "tls_client_ca", mode="before")
    @classmethod
    def _non_empty(cls, value: object) -> object:
        if value is None or isinstance(value, Path):
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a path string, got {_describe(value)}")
        if not value.strip():
            raise ValueError("empty path")
        return value

    @field_validator("socket", "tls_cert", "tls_key", "tls_client_ca", mode="after")
    @classmethod
    def _resolve(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        value = value.expanduser()
        base = info.context.get("base_dir") if isinstance(info.context, dict) else None
        if not value.is_absolute() and base is not None:
            value = Path(base) / value
        return value

    @field_validator("tcp_listen", mode="before")
    @classmethod
    def _listen(cls, value: object) -> object:
        if value is None:
            return None
        host, port = _with_port(value, "'host:port'")
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.tcp_listen is not None:
            for name in ("tls_cert", "tls_key", "tls_client_ca"):
                if getattr(self, name) is None:
                    problems.append(
                        (
                            (name,),
                            "required: api.tcp_listen is set, and the TCP listener only "
                            "serves mutual TLS (tls_cert, tls_key and tls_client_ca)",
                        )
                    )
            for name in ("tls_cert", "tls_key", "tls_client_ca"):
                path: Path | None = getattr(self, name)
                if path is not None and not path.is_file():
                    what = "is not a file" if path.exists() else "file not found"
                    problems.append(((name,), f"{what}: {path}"))
        if problems:
            raise _Problems(problems)
        return self

    def tcp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the TCP listener, or None when there is none."""
        return _host_port(self.tcp_listen)


# --------------------------------------------------------------------------
# Metrics and destinations
# --------------------------------------------------------------------------


_MANDATORY: Final = ("mdrr", "mdrt", "cdrr", "cdrt", "latency")
_OPTIONAL: Final = ("resources", "rlqr", "rlqt", "mtu")


class MetricsConfig(_Model):
    """The nine RFC 8175 metrics; None = not reported.

    Rates (mdrr, mdrt, cdrr, cdrt) in bits/s, ``latency`` in microseconds,
    ``resources``/``rlqr``/``rlqt`` in percent, ``mtu`` in octets.
    """

    mdrr: Rate | None = None
    mdrt: Rate | None = None
    cdrr: Rate | None = None
    cdrt: Rate | None = None
    latency: LatencyUs | None = None
    resources: Percent | None = None
    rlqr: Percent | None = None
    rlqt: Percent | None = None
    mtu: MtuOctets | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        for cur, mx, sect in (("cdrr", "mdrr", "13.14"), ("cdrt", "mdrt", "13.15")):
            c: int | None = getattr(self, cur)
            m: int | None = getattr(self, mx)
            if c is not None and m is not None and c > m:
                problems.append(
                    (
                        (cur,),
                        f"{c} ({format_rate(c)}) exceeds {mx} {m} ({format_rate(m)}); "
                        f"RFC 8175 §{sect}: the current rate cannot exceed the maximum",
                    )
                )
        if problems:
            raise _Problems(problems)
        return self

    def to_metrics(self) -> Metrics:
        """As the engine's :class:`dlep.fsm.Metrics` value."""
        return Metrics(**{name: getattr(self, name) for name in METRIC_FIELDS})


class DestinationConfig(_Model):
    """``[[modem.destinations]]``: a destination the modem announces."""

    mac: Mac
    ipv4: tuple[IPv4, ...] = ()
    ipv6: tuple[IPv6, ...] = ()
    ipv4_subnets: tuple[IPv4Subnet, ...] = ()
    ipv6_subnets: tuple[IPv6Subnet, ...] = ()
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    def mac_bytes(self) -> bytes:
        """The MAC address as 6 (EUI-48) or 8 (EUI-64) bytes."""
        return bytes(int(part, 16) for part in self.mac.split(":"))

    def addresses(self) -> list[str]:
        """IPv4/IPv6 addresses then subnets, as strings (``Session.add_destination`` form)."""
        out = [str(a) for a in (*self.ipv4, *self.ipv6)]
        out += [str(n) for n in (*self.ipv4_subnets, *self.ipv6_subnets)]
        return out

    @property
    def is_eui64(self) -> bool:
        """True for an 8-octet (EUI-64) MAC address."""
        return self.mac.count(":") == 7


class SimulateConfig(_Model):
    """``[modem.simulate]``: make the configured destinations' metrics move."""

    enabled: StrictBool = False
    interval_ms: Annotated[int, Field(strict=True, ge=10, le=U32_MAX)] = 1_000
    seed: StrictInt | None = None
    walk_percent: Annotated[float, Field(strict=True, ge=0.0, le=100.0)] = 10.0
    flap_probability: Probability = 0.0
    down_ms: Milliseconds = 5_000


# --------------------------------------------------------------------------
# [router.kernel], [router.hooks], [modem.feed], [modem.nl80211] (dlep.dataplane)
# --------------------------------------------------------------------------

#: Route protocol numbers that iproute2 reserves or other daemons use
#: (rt_protos): owning one of them would make the start-up flush remove
#: someone else's routes.
RESERVED_ROUTE_PROTOCOLS: Final = frozenset(
    {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 42, 99, 186, 187, 188, 189, 192}
)


def _route_protocol(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer 1..255, got {_describe(value)}")
    if not 1 <= value <= 255:
        raise ValueError(f"{value} out of range 1..255")
    if value in RESERVED_ROUTE_PROTOCOLS:
        raise ValueError(
            f"{value} belongs to another routing source (iproute2 rt_protos); the start-up "
            "flush would delete its routes: pick an unused number (default 77)"
        )
    return value


def _hex_handle(value: object) -> int:
    if isinstance(value, str):
        text = value.strip().lower().removesuffix(":")
        try:
            value = int(text, 16)
        except ValueError:
            raise ValueError(f"{value!r} is not a hexadecimal qdisc major (e.g. 'd1e0')") from None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 0xFFFE:
        raise ValueError(f"qdisc major must be 1..fffe, got {value!r}")
    return value


def _loopback_udp(value: object) -> object:
    if value is None:
        return None
    host, port = _with_port(value, "'address:port' on loopback, e.g. '127.0.0.1:8855'")
    addr = ipaddress.ip_address(host)
    if not addr.is_loopback:
        raise ValueError(
            f"{value!r}: the feed listens on loopback only (127.0.0.0/8 or ::1); anything that "
            "can send to it can change what the modem announces"
        )
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


RouteProtocol: TypeAlias = Annotated[int, PlainValidator(_route_protocol)]
QdiscMajor: TypeAlias = Annotated[int, PlainValidator(_hex_handle)]


class RouteMetricConfig(_Model):
    """``[router.kernel.metric]``: how a destination's metrics become a route metric.

    ``formula = "ett"`` (expected transmission time)::

        ett_us  = packet_bits * 1e6 / rate  +  latency_us
        cost_us = ett_us * 100 / max(rlq, 1) * max(hops, 1)
        metric  = clamp(base + round(cost_us / unit_us), 1, max)

    ``rate`` is CDRT (else MDRT, else ``default_rate``), ``rlq`` is RLQT
    (else RLQR, else 100), ``hops`` the RFC 8629 Hop Count if reported.
    ``formula = "fixed"`` gives every route ``fixed``. A new metric is only
    installed when it differs from the installed one by more than
    ``hysteresis_percent``, so small wobbles do not churn the routing table.
    """

    formula: Literal["ett", "fixed"] = "ett"
    base: Annotated[int, Field(strict=True, ge=0, le=U32_MAX)] = 10
    packet_bits: Annotated[int, Field(strict=True, ge=8, le=1_000_000)] = 12_000
    unit_us: Annotated[int, Field(strict=True, ge=1, le=U32_MAX)] = 100
    default_rate: Rate = 1_000_000
    max: Annotated[int, Field(strict=True, ge=1, le=U32_MAX)] = 65_535
    fixed: Annotated[int, Field(strict=True, ge=0, le=U32_MAX)] = 1024
    hysteresis_percent: Annotated[float, Field(strict=True, ge=0.0, le=100.0)] = 10.0

    @field_validator("default_rate")
    @classmethod
    def _positive_rate(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be above 0 bits/s")
        return value


class KernelConfig(_Model):
    """``[router.kernel]``: apply what DLEP says to the Linux kernel (opt-in).

    Neighbour entries, routes with a computed metric and one HTB class per
    destination on ``interface`` (see docs/dataplane.md). ``netns`` applies
    it in a named network namespace instead of the daemon's own.
    """

    enabled: StrictBool = False
    interface: str | None = None
    netns: str | None = None
    neighbours: StrictBool = True
    routes: StrictBool = True
    shaping: StrictBool = True
    route_protocol: RouteProtocol = 77
    route_table: Annotated[int, Field(strict=True, ge=1, le=U32_MAX)] = 254
    qdisc_handle: QdiscMajor = 0xD1E0
    #: Shape to this share of CDRT (below 100 keeps the queue in the router).
    rate_percent: Annotated[float, Field(strict=True, gt=0.0, le=1000.0)] = 100.0
    #: Rate for a destination that reports no CDRT (and no MDRT).
    default_rate: Rate = 1_000_000_000
    queue_limit: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 1000
    metric: RouteMetricConfig = Field(default_factory=RouteMetricConfig)

    @field_validator("interface", "netns")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value or "/" in value or len(value) > 255:
            raise ValueError(f"{value!r} is not a usable name")
        return value


class HooksConfig(_Model):
    """``[router.hooks]``: run a program (or a plug-in) for every destination change.

    ``command`` is an argv list (no shell); it gets one JSON object on its
    standard input per change. ``entry_point`` names a ``dlep.hooks`` entry
    point: a callable taking the same object as a dict (it may be async).
    """

    command: tuple[str, ...] = ()
    entry_point: PluginName | None = None
    timeout_ms: PositiveMs = 5_000
    queue: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 1_000

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError(
                'expected an argv list like ["/usr/local/bin/hook", "--flag"], got a '
                "string (no shell is used: split the words yourself)"
            )
        return value

    @property
    def enabled(self) -> bool:
        """True if a command or an entry point is configured."""
        return bool(self.command) or self.entry_point is not None


# --------------------------------------------------------------------------
# [router] and [modem]
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerEndpoint:
    """A static peer with defaults applied: connect to ``host:port``, with TLS if ``tls``."""

    host: str
    port: int
    tls: bool


class StaticPeerConfig(_Model):
    """A modem the router connects to without discovery.

    Written as ``"host:port"`` (``"[::1]:854"`` for IPv6) or as a table
    ``{address, port, tls}``. ``port`` None = ``network.tcp_port``; ``tls``
    None = ``network.use_tls``.
    """

    address: str
    port: Port | None = None
    tls: StrictBool | None = None
    #: Interoperability profile for this modem; None = ``router.profile``.
    profile: ProfileName | None = None
    #: GTSM for this modem alone (drop its packets sent with TTL < 255);
    #: None = the profile's choice, else ``network.gtsm_enforce``. False
    #: relaxes it for one legacy peer that sends with TTL 64.
    gtsm_enforce: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            host, port = _split_peer(data)
            return {"address": host, "port": port}
        return data

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        host = value.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address (static peers are IPv4 or IPv6 literals)"
            ) from None


class RouterSection(_Model):
    """``[router]``."""

    peer_type: PeerTypeText = "dlep router"
    discovery: StrictBool = True
    static_peers: tuple[StaticPeerConfig, ...] = ()
    extensions: tuple[Extension, ...] = ()
    #: Third-party extensions by ``dlep.extensions`` entry-point name: the
    #: ``"plugin:NAME"`` entries of ``extensions`` end up here (loaded by the daemon).
    plugins: tuple[PluginName, ...] = ()
    auto_accept_destinations: StrictBool = True
    #: Destinations a modem may bring up in one session; a Destination Up
    #: beyond is refused with 'Request Denied' (each costs memory for the
    #: session's lifetime: ~0.5-1.7 kB).
    max_destinations_per_session: Annotated[int, Field(strict=True, ge=1, le=10_000_000)] = 100_000
    #: Peers that may be added through the API (ConnectStatic, dlepctl
    #: connect) and not yet disconnected: each keeps a task and, while it
    #: connects, a socket; without a bound a client could exhaust both.
    max_api_peers: Annotated[int, Field(strict=True, ge=1, le=4096)] = 64
    #: Interoperability profile for discovered modems and static peers
    #: without their own (default: standard codes).
    profile: ProfileName = "standard"
    kernel: KernelConfig = Field(default_factory=KernelConfig)
    hooks: HooksConfig = Field(default_factory=HooksConfig)

    @field_validator("extensions")
    @classmethod
    def _dedupe_extensions(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _dedupe(value)

    @model_validator(mode="before")
    @classmethod
    def _split_plugins(cls, data: Any) -> Any:
        return _split_plugins(data)

    @model_validator(mode="after")
    def _check(self) -> Self:
        seen: dict[tuple[str, int | None], int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, peer in enumerate(self.static_peers):
            key = (peer.address, peer.port)
            if key in seen:
                problems.append((("static_peers", i), f"duplicate of static_peers[{seen[key]}]"))
            seen.setdefault(key, i)
        if problems:
            raise _Problems(problems)
        return self


class FeedConfig(_Model):
    """``[modem.feed]``: destination changes as JSON lines (docs/dataplane.md).

    ``stdin`` reads them from standard input (answers on standard output);
    ``udp`` listens on a loopback address (answers to the sender).
    """

    stdin: StrictBool = False
    udp: Annotated[str | None, BeforeValidator(_loopback_udp)] = None
    max_batch: Annotated[int, Field(strict=True, ge=1, le=100_000)] = 1_000

    def udp_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the UDP feed, or None."""
        return _host_port(self.udp)


class Nl80211Config(_Model):
    """``[modem.nl80211]``: destinations from a Linux Wi-Fi interface's stations."""

    enabled: StrictBool = False
    interface: str | None = None
    netns: str | None = None
    poll_ms: Annotated[int, Field(strict=True, ge=50, le=U32_MAX)] = 1_000
    #: A station silent for longer than this is a Destination Down.
    inactive_ms: PositiveMs = 10_000
    #: Reported as Latency (nl80211 does not measure it).
    latency: LatencyUs = 2_000
    #: Signal (dBm) mapped to RLQ 0 and RLQ 100, linear in between.
    signal_floor_dbm: Annotated[int, Field(strict=True, ge=-127, le=0)] = -90
    signal_ceiling_dbm: Annotated[int, Field(strict=True, ge=-127, le=0)] = -40
    #: Maximum data rates; None = the highest rate seen for the station.
    max_rate: Rate | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.enabled and not self.interface:
            problems.append((("interface",), "required when enabled (the Wi-Fi interface)"))
        if self.signal_floor_dbm >= self.signal_ceiling_dbm:
            problems.append((("signal_floor_dbm",), "must be below signal_ceiling_dbm"))
        if problems:
            raise _Problems(problems)
        return self


class ModemSection(_Model):
    """``[modem]``."""

    peer_type: PeerTypeText = "dlep modem"
    secured_medium: StrictBool = False
    extensions: tuple[Extension, ...] = ()
    #: Third-party extensions by ``dlep.extensions`` entry-point name: the
    #: ``"plugin:NAME"`` entries of ``extensions`` end up here (loaded by the daemon).
    plugins: tuple[PluginName, ...] = ()
    #: Interoperability profile for every router session (default: standard).
    profile: ProfileName = "standard"
    max_sessions: Annotated[int, Field(strict=True, ge=1, le=1024)] = 1
    #: Connections that have not completed Session Initialization, in total
    #: and per source address; further ones are closed at once (nothing is
    #: sent, RFC 8175 §7.2). They do not count toward ``max_sessions``.
    max_pending_connections: Annotated[int, Field(strict=True, ge=1, le=65_535)] = 32
    max_pending_per_source: Annotated[int, Field(strict=True, ge=1, le=65_535)] = 4
    #: How long a connection may stay without a Session Initialization (the
    #: shorter of this and ``timers.init_timeout_ms`` applies).
    pending_timeout_ms: PositiveMs = 10_000
    #: Peer Offers per second and burst, per source address (token bucket).
    discovery_offer_rate: Annotated[float, Field(strict=True, gt=0, le=1_000_000)] = 1.0
    discovery_offer_burst: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 5
    session_metrics: MetricsConfig = Field(
        default_factory=lambda: MetricsConfig(mdrr=0, mdrt=0, cdrr=0, cdrt=0, latency=0)
    )
    destinations: tuple[DestinationConfig, ...] = ()
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    nl80211: Nl80211Config = Field(default_factory=Nl80211Config)

    @field_validator("extensions")
    @classmethod
    def _dedupe_extensions(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return _dedupe(value)

    @model_validator(mode="before")
    @classmethod
    def _split_plugins(cls, data: Any) -> Any:
        return _split_plugins(data)

    @field_validator("session_metrics", mode="after")
    @classmethod
    def _fill_mandatory(cls, value: MetricsConfig) -> MetricsConfig:
        # RFC 8175 §12.6: the Session Initialization Response MUST carry
        # mdrr, mdrt, cdrr, cdrt and latency; unset ones default to 0.
        missing = {n: 0 for n in _MANDATORY if getattr(value, n) is None}
        if not missing:
            return value
        filled = value.model_dump()
        filled.update(missing)
        return MetricsConfig(**filled)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.max_pending_per_source > self.max_pending_connections:
            problems.append(
                (
                    ("max_pending_per_source",),
                    f"{self.max_pending_per_source} is above max_pending_connections "
                    f"({self.max_pending_connections})",
                )
            )
        macs: dict[str, int] = {}
        first_format: tuple[int, bool] | None = None
        owners: dict[object, tuple[int, str, int]] = {}
        session = self.session_metrics
        for i, dest in enumerate(self.destinations):
            at: Loc = ("destinations", i)
            if dest.mac in macs:
                problems.append(
                    (
                        (*at, "mac"),
                        f"{dest.mac} duplicates destinations[{macs[dest.mac]}].mac "
                        "(RFC 8175 §2: MAC addresses MUST be unique within a session)",
                    )
                )
            macs.setdefault(dest.mac, i)
            if first_format is None:
                first_format = (i, dest.is_eui64)
            elif dest.is_eui64 != first_format[1]:
                fmt = "EUI-64" if dest.is_eui64 else "EUI-48"
                other = "EUI-64" if first_format[1] else "EUI-48"
                problems.append(
                    (
                        (*at, "mac"),
                        f"{dest.mac} is {fmt} but destinations[{first_format[0]}]"
                        f".mac is {other}; all MAC addresses of a session must use one format "
                        "(RFC 8175 §13.7)",
                    )
                )
            for field_name in ("ipv4", "ipv6", "ipv4_subnets", "ipv6_subnets"):
                for k, addr in enumerate(getattr(dest, field_name)):
                    if addr in owners:
                        oi, ofield, ok = owners[addr]
                        problems.append(
                            (
                                (*at, field_name, k),
                                f"{addr} is already listed at destinations[{oi}].{ofield}[{ok}]",
                            )
                        )
                    else:
                        owners[addr] = (i, field_name, k)
            # RFC 8175 §12.6: an optional metric may be used during the session
            # only if the Session Initialization Response declared it.
            for name in _OPTIONAL:
                if getattr(dest.metrics, name) is not None and getattr(session, name) is None:
                    problems.append(
                        (
                            (*at, "metrics", name),
                            f"not declared in modem.session_metrics; RFC 8175 §12.6: a "
                            f"metric used during the session must appear in the Session "
                            f"Initialization Response (add {name} to [modem.session_metrics])",
                        )
                    )
            # A destination that reports only one of a current/maximum pair
            # inherits the other from the session metrics (RFC 8175 §12.6).
            dm = dest.metrics
            for cur, mx in (("cdrr", "mdrr"), ("cdrt", "mdrt")):
                c: int | None = getattr(dm, cur)
                m: int | None = getattr(dm, mx)
                if c is not None and m is None:
                    sm: int = getattr(session, mx)
                    if c > sm:
                        problems.append(
                            (
                                (*at, "metrics", cur),
                                f"{c} ({format_rate(c)}) exceeds {mx} "
                                f"{sm} ({format_rate(sm)}) inherited from modem.session_metrics; "
                                f"set metrics.{mx} for this destination",
                            )
                        )
                elif m is not None and c is None:
                    sc: int = getattr(session, cur)
                    if sc > m:
                        problems.append(
                            (
                                (*at, "metrics", mx),
                                f"{m} ({format_rate(m)}) is below {cur} "
                                f"{sc} ({format_rate(sc)}) inherited from modem.session_metrics; "
                                f"set metrics.{cur} for this destination",
                            )
                        )
        if problems:
            raise _Problems(problems)
        return self


class MetricsEndpointConfig(_Model):
    """``[metrics]``: the optional Prometheus endpoint (see docs/metrics.md).

    ``listen`` None (the default) = no endpoint. ``max_destinations`` caps the
    per-destination series so label cardinality stays bounded.
    """

    listen: str | None = None
    max_destinations: Annotated[int, Field(strict=True, ge=0, le=1_000_000)] = 1000

    @field_validator("listen", mode="before")
    @classmethod
    def _check_listen(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"expected 'address:port', got {_describe(value)}")
        text = value.strip()
        if text.count(":") > 1 and not text.startswith("["):
            raise ValueError(f"{value!r}: write IPv6 with a port as '[addr]:port'")
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"{value!r}: expected 'address:port' with a port 0-65535 (0: any)")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} is not an IP address") from None
        return f"[{addr}]:{int(port)}" if addr.version == 6 else f"{addr}:{int(port)}"

    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` to bind, or None when the endpoint is off."""
        return _host_port(self.listen)


# --------------------------------------------------------------------------
# Top level
# --------------------------------------------------------------------------


class RouterConfig(_Model):
    """A ``dlep-router`` configuration."""

    network: NetworkConfig = Field(default_factory=NetworkConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    timers: TimersConfig = Field(default_factory=TimersConfig)
    metrics: MetricsEndpointConfig = Field(default_factory=MetricsEndpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    router: RouterSection = Field(default_factory=RouterSection)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _tls_problems(self.tls, self.network, modem=False)
        net = self.network
        if self.router.discovery and not (net.discovery_v4 or net.discovery_v6):
            problems.append(
                (
                    ("router", "discovery"),
                    "is true but network.discovery_v4 and network.discovery_v6 are both false",
                )
            )
        k = self.router.kernel
        if k.enabled and not (k.interface or net.interface):
            problems.append(
                (
                    ("router", "kernel", "interface"),
                    "required when router.kernel.enabled is true (the modem-facing interface; "
                    "network.interface is used when set)",
                )
            )
        if problems:
            raise _Problems(problems)
        return self

    def resolved_static_peers(self) -> tuple[PeerEndpoint, ...]:
        """Static peers with ``port``/``tls`` defaults applied (``use_tls`` is a master switch)."""
        net = self.network
        return tuple(
            PeerEndpoint(
                p.address,
                p.port if p.port is not None else net.tcp_port,
                net.use_tls and (p.tls if p.tls is not None else True),
            )
            for p in self.router.static_peers
        )

    def session_config(self, *, registry: Registry = DEFAULT_REGISTRY) -> SessionConfig:
        """The :class:`dlep.fsm.SessionConfig` for a router session."""
        t = self.timers
        return SessionConfig(
            heartbeat_interval_ms=t.heartbeat_interval_ms,
            peer_type=PeerType(self.router.peer_type),
            extensions=self.router.extensions,
            registry=registry,
            missed_heartbeats=t.missed_heartbeats,
            init_timeout_ms=t.init_timeout_ms,
            max_peer_heartbeat_interval_ms=t.max_peer_heartbeat_interval_ms,
            link_characteristics_timeout_ms=t.link_characteristics_timeout_ms,
            auto_accept_destinations=self.router.auto_accept_destinations,
            max_peer_destinations=self.router.max_destinations_per_session,
            wire_translation=PROFILES[self.router.profile],
        )


class ModemConfig(_Model):
    """A ``dlep-modem`` configuration."""

    network: NetworkConfig = Field(default_factory=NetworkConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    timers: TimersConfig = Field(default_factory=TimersConfig)
    metrics: MetricsEndpointConfig = Field(default_factory=MetricsEndpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    modem: ModemSection = Field(default_factory=ModemSection)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _tls_problems(self.tls, self.network, modem=True)
        if problems:
            raise _Problems(problems)
        return self

    def session_config(self, *, registry: Registry = DEFAULT_REGISTRY) -> SessionConfig:
        """The :class:`dlep.fsm.SessionConfig` for a modem session."""
        t = self.timers
        m = self.modem
        return SessionConfig(
            heartbeat_interval_ms=t.heartbeat_interval_ms,
            peer_type=PeerType(m.peer_type, m.secured_medium),
            extensions=m.extensions,
            registry=registry,
            missed_heartbeats=t.missed_heartbeats,
            init_timeout_ms=t.init_timeout_ms,
            max_peer_heartbeat_interval_ms=t.max_peer_heartbeat_interval_ms,
            link_characteristics_timeout_ms=t.link_characteristics_timeout_ms,
            session_metrics=m.session_metrics.to_metrics(),
            wire_translation=PROFILES[m.profile],
        )


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

_TOML_POS_RE: Final = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping found at ``loc``."""
    cls: type[BaseModel] = root
    for seg in loc:
        if isinstance(seg, int):
            continue
        info = cls.model_fields.get(seg)
        if info is None:
            return None
        found = _find_model(info.annotation)
        if found is None:
            return None
        cls = found
    return cls


def _find_model(tp: object) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _find_model(arg)
        if found is not None:
            return found
    return None


def _unknown_key_message(root: type[BaseModel], loc: Sequence[str | int]) -> str:
    key = loc[-1]
    parent = _model_at(root, loc[:-1])
    if parent is None:
        return "unknown key"
    if len(loc) == 1 and root in (RouterConfig, ModemConfig):
        other = {"router": "a router", "modem": "a modem"}.get(str(key))
        if other is not None:
            return f"unknown section: [{key}] belongs in {other} configuration"
    valid = list(parent.model_fields)
    hint = difflib.get_close_matches(str(key), valid, n=1)
    if hint:
        return f"unknown key (did you mean {hint[0]!r}?)"
    return f"unknown key (valid keys: {', '.join(valid)})"


def problems_from(exc: ValidationError, root_model: type[BaseModel]) -> list[ConfigProblem]:
    """Every error of ``exc`` as a :class:`ConfigProblem` naming its key.

    ``root_model`` is the model that was validated. It may be any pydantic
    model, not only the daemons' configurations (the dlep-emu scenario
    loader uses this too): an unknown key is answered with the closest valid
    key of the table it was found in ("did you mean ...?") or the list of
    valid keys, and pydantic's wording is made to read like the rest of the
    configuration errors ("required key is missing", "expected a table, got
    a string (...)"). Cross-field problems a model validator raises as
    several located problems are reported at their own keys.
    """
    root = root_model
    out: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _Problems):
            out.extend(ConfigProblem(format_key(loc + sub), msg) for sub, msg in cause.problems)
            continue
        kind = err["type"]
        msg = err["msg"]
        if kind == "extra_forbidden":
            msg = _unknown_key_message(root, loc)
        elif kind == "missing":
            msg = "required key is missing"
        elif kind == "value_error" and msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            msg = f"expected a table, got {_describe(err.get('input'))}"
        elif kind in ("tuple_type", "list_type"):
            msg = f"expected an array, got {_describe(err.get('input'))}"
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            msg = f"{msg}, got {err.get('input')!r}"
        elif kind.endswith("_type") and "input" in err:
            msg = f"{msg}, got {_describe(err['input'])}"
        out.append(ConfigProblem(format_key(loc), msg))
    return out


#: The former private name, kept for code written against it.
_problems_from = problems_from


def _describe(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    for t, name in names.items():
        if type(value) is t:
            return f"{name} ({value!r})"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _apply_overrides(
    data: dict[str, Any], overrides: Mapping[str, object] | None, source: str
) -> dict[str, Any]:
    if not overrides:
        return data
    out = copy.deepcopy(data)
    problems: list[ConfigProblem] = []
    for dotted, value in overrides.items():
        if value is None:  # "flag not given"
            continue
        parts = dotted.split(".")
        if not all(parts):
            problems.append(ConfigProblem(dotted, "override: malformed key path"))
            continue
        node: dict[str, Any] = out
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                problems.append(
                    ConfigProblem(dotted, f"override: {where} is not a table in the file")
                )
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ConfigError(source, problems)
    return out


def _parse(
    root: type[RouterConfig] | type[ModemConfig],
    data: object,
    source: str,
    overrides: Mapping[str, object] | None,
    base_dir: Path | None,
) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(source, f"expected a table of sections, got {_describe(data)}")
    merged = _apply_overrides(data, overrides, source)
    try:
        return root.model_validate(merged, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems = problems_from(exc, root)
        if overrides:
            given = {k for k, v in overrides.items() if v is not None}
            problems = [
                ConfigProblem(p.key, f"{p.message} (value set by override)")
                if p.key in given
                else p
                for p in problems
            ]
        raise ConfigError(source, problems) from None


def read_toml(path: str | Path, *, what: str = "configuration") -> tuple[dict[str, Any], str, Path]:
    """Read a TOML file: ``(data, source, directory of the file)``.

    Every failure is a :class:`ConfigError` for ``source`` (the path as
    given): unreadable (``cannot read <what>: ...``), not UTF-8, or a TOML
    syntax error with its line and column. Used for the daemons'
    configurations and for dlep-emu's scenarios (``what="scenario"``).
    """
    source = str(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(source, f"cannot read {what}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, f"not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        m = _TOML_POS_RE.match(text)
        if m is None:
            raise ConfigError(source, f"TOML syntax error: {text}") from None
        line, col = int(m["line"]), int(m["col"])
        err = ConfigError(source, [ConfigProblem("", f"TOML syntax error: {m['msg']}", line, col)])
        raise err from None
    return data, source, Path(os.path.abspath(path)).parent


def parse_router_config(
    data: dict[str, Any],
    *,
    source: str = "<dict>",
    overrides: Mapping[str, object] | None = None,
    base_dir: str | Path | None = None,
) -> RouterConfig:
    """Validate a router configuration given as a dict (the parsed TOML).

    ``base_dir``: directory that relative TLS paths are resolved against
    (default: left relative, i.e. to the current directory).

    Raises:
        ConfigError: listing every problem.
    """
    bd = Path(base_dir) if base_dir is not None else None
    cfg: RouterConfig = _parse(RouterConfig, data, source, overrides, bd)
    return cfg


def parse_modem_config(
    data: dict[str, Any],
    *,
    source: str = "<dict>",
    overrides: Mapping[str, object] | None = None,
    base_dir: str | Path | None = None,
) -> ModemConfig:
    """Validate a modem configuration given as a dict (see :func:`parse_router_config`)."""
    bd = Path(base_dir) if base_dir is not None else None
    cfg: ModemConfig = _parse(ModemConfig, data, source, overrides, bd)
    return cfg


def load_router_config(
    path: str | Path, *, overrides: Mapping[str, object] | None = None
) -> RouterConfig:
    """Read and validate a router TOML file.

    ``overrides`` maps dotted keys to values (``{"network.interface": "lo"}``)
    and is applied on top of the file before validation; None values are
    skipped (a CLI flag that was not given).

    Raises:
        ConfigError: unreadable file, TOML syntax error (with line and
            column), or validation problems (one line each).
    """
    data, source, base = read_toml(path)
    return parse_router_config(data, source=source, overrides=overrides, base_dir=base)


def load_modem_config(
    path: str | Path, *, overrides: Mapping[str, object] | None = None
) -> ModemConfig:
    """Read and validate a modem TOML file (see :func:`load_router_config`)."""
    data, source, base = read_toml(path)
    return parse_modem_config(data, source=source, overrides=overrides, base_dir=base)
