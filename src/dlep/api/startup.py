"""Start what a daemon's configuration asks for, and import only that.

``dlep-router``, ``dlep-modem`` and ``dlep-emu`` call these after
``spawn()``. They take the same decisions as
:func:`dlep.api.server.start_api_server` and
:func:`dlep.api.metrics.start_metrics_server`, but look at the configuration
*before* importing those modules: gRPC with protobuf costs an idle daemon
about 17 MiB of resident memory (most of it the ``cygrpc`` shared object),
``prometheus_client`` about 1 MiB, and a daemon with ``[api] enabled = false``
or no ``[metrics] listen`` should not pay for them. Importing this module
imports neither.

A missing package is reported only when the part that needs it is
configured, and the message says how to install it or switch the part off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ApiSetupError, MetricsSetupError

if TYPE_CHECKING:
    from ..config import MetricsEndpointConfig
    from ..daemon import ModemDaemon, RouterDaemon
    from ..daemon.base import DaemonBase
    from .metrics import MetricsServer
    from .server import ManagementServer

__all__ = ["ApiSetupError", "MetricsSetupError", "start_api_server", "start_metrics_server"]


def _is_missing(exc: ImportError, packages: tuple[str, ...]) -> bool:
    """True if ``exc`` says one of ``packages`` is not installed (an import
    error inside dlep itself is a bug and must not be reported as that)."""
    return exc.name is not None and exc.name.split(".")[0] in packages


async def start_api_server(daemon: RouterDaemon | ModemDaemon) -> ManagementServer | None:
    """Start the management API as ``daemon.cfg.api`` says (see
    :func:`dlep.api.server.start_api_server`); gRPC is imported only if
    ``api.enabled`` is true.

    Raises:
        ApiSetupError: the API cannot listen, or gRPC / protobuf are not installed.
    """
    if not daemon.cfg.api.enabled:
        return None
    try:
        from . import server
    except ImportError as exc:
        if not _is_missing(exc, ("grpc", "google")):
            raise
        raise ApiSetupError(
            f"management API: the Python package {exc.name!r} is not installed "
            "(pip install grpcio protobuf), or turn the API off "
            "([api] enabled = false, or --no-api)"
        ) from exc
    return await server.start_api_server(daemon)


async def start_metrics_server(
    daemon: DaemonBase, cfg: MetricsEndpointConfig | None = None
) -> MetricsServer | None:
    """Start the Prometheus endpoint that ``cfg`` (default:
    ``daemon.cfg.metrics``) asks for (see
    :func:`dlep.api.metrics.start_metrics_server`); ``prometheus_client`` is
    imported only if ``listen`` is set.

    Raises:
        OSError: the address cannot be bound.
        MetricsSetupError: ``prometheus_client`` is not installed.
    """
    if cfg is None:
        cfg = getattr(daemon.cfg, "metrics", None)
    if cfg is None or cfg.address() is None:
        return None
    try:
        from . import metrics
    except ImportError as exc:
        if not _is_missing(exc, ("prometheus_client",)):
            raise
        raise MetricsSetupError(
            f"the Python package {exc.name!r} is not installed "
            "(pip install prometheus-client), or remove [metrics] listen"
        ) from exc
    return await metrics.start_metrics_server(daemon, cfg)
