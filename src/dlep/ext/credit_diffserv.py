"""RFC 9894 Diffserv Aware Credit Window extension (Extension Type Value 6).

Credit-window flow control (RFC 9893, :mod:`dlep.ext.credit`) with traffic
classified by DSCP: the modem's Traffic Classification items (RFC 9892,
:mod:`dlep.ext.traffic_class`) carry Diffserv Traffic Classification
sub-data items (type 1). Everything else -- messages, data items, session
behaviour, the credit accounting -- is the shared machinery of
:class:`~dlep.ext.credit.CreditWindowExtension`.

Modem::

    ext = DiffservCreditWindow(
        classifications=[TrafficClassification(1, (
            DiffservClassification(10, (46,)),      # EF -> window 10
            DiffservClassification(11),             # everything else -> 11
        ))],
        windows=[CreditWindowInitialization.from_octets(10, 65536, 1 << 20),
                 CreditWindowInitialization.from_octets(11, 65536, 1 << 20)],
    )
    credit = credit_state(session)
    session.add_destination(mac, extra=credit.destination_items(mac, tid=1), now=now)
    credit.grant(10, 1500, now=now)

Router::

    credit = credit_state(session)
    fid = credit.classify(mac, dscp=46)
    if fid is not None and credit.consume(fid, len(frame)):
        send(frame)
    else:
        credit.request_credits([fid] if fid is not None else None, now=now)
"""

from __future__ import annotations

from typing import ClassVar, Final

from ..wire import UnitSpec
from .credit import CreditWindowExtension, credit_message_specs
from .traffic_class import DIFFSERV_SUB_TYPE

__all__ = ["EXTENSION_CODE", "DiffservCreditWindow"]

#: Extension Type Value of RFC 9894 §5.
EXTENSION_CODE: Final = 6


class DiffservCreditWindow(CreditWindowExtension):
    """RFC 9894 Diffserv Aware Credit Window ("DA Credit")."""

    code: ClassVar[int] = EXTENSION_CODE
    name: ClassVar[str] = "credit-diffserv"
    title: ClassVar[str] = "Diffserv Aware Credit Window Extension (RFC 9894)"
    SUB_TYPES: ClassVar[frozenset[int]] = frozenset({DIFFSERV_SUB_TYPE})
    messages: ClassVar[tuple[UnitSpec, ...]] = credit_message_specs()
