"""Why the management API or the metrics endpoint could not start.

These live apart from :mod:`dlep.api.server` and :mod:`dlep.api.metrics` so
that a daemon can catch them without importing gRPC or ``prometheus_client``
(:mod:`dlep.api.startup` imports those only when they are configured).
"""

from __future__ import annotations

__all__ = ["ApiSetupError", "MetricsSetupError", "SocketInUseError"]


class ApiSetupError(Exception):
    """The API cannot listen (missing directory, address in use, bad certificate,
    gRPC not installed)."""


class SocketInUseError(ApiSetupError):
    """Another live process serves on the socket path."""


class MetricsSetupError(Exception):
    """The metrics endpoint is configured but cannot start (``prometheus_client``
    not installed). An address that cannot be bound stays an ``OSError``."""
