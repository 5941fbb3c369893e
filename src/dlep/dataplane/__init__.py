"""From DLEP to the data plane (Linux, netlink through pyroute2).

Router side: :class:`RouterDataplane` follows a :class:`~dlep.daemon.RouterDaemon`
and installs, per destination, neighbour entries, routes with a metric from
its link metrics (:mod:`dlep.dataplane.metric`) and an HTB shaping class at
its current data rate, paused and restarted with RFC 8651; and runs
``[router.hooks]``.

Modem side: sources of destinations for a :class:`~dlep.daemon.ModemDaemon`:
the Linux Wi-Fi driver (:mod:`dlep.dataplane.nl80211`) and the JSON-lines
feed on stdin or loopback UDP (:mod:`dlep.dataplane.feed`). Both hand batches
of changes to the library API's ``ModemDaemon.apply_destination_changes``,
as the management API's streaming ``FeedDestinations`` call does.

The package sits beside :mod:`dlep.api`, on top of the library API
(:mod:`dlep.daemon`); see docs/dataplane.md.
"""

from __future__ import annotations

from .table import Change, DestinationTable, DestState

__all__ = ["Change", "DestState", "DestinationTable"]
