"""RFC 9895 IEEE 802.1Q Aware Credit Window extension (Extension Type Value 5).

Credit-window flow control (RFC 9893, :mod:`dlep.ext.credit`) with traffic
classified by VLAN and PCP: the modem's Traffic Classification items
(RFC 9892, :mod:`dlep.ext.traffic_class`) carry Ethernet Traffic
Classification sub-data items (type 2); VID 0 means "any VLAN without its
own mapping", no PCPs means "any PCP without its own mapping". When both
this and the Diffserv extension (RFC 9894) are in use, a class may combine
both sub-data item types and the Ethernet match takes precedence
(RFC 9892 §2.3.1, :class:`~dlep.ext.traffic_class.Classifier`).

Everything else is the shared machinery of
:class:`~dlep.ext.credit.CreditWindowExtension`; see
:mod:`dlep.ext.credit_diffserv` for a usage sketch.
"""

from __future__ import annotations

from typing import ClassVar, Final

from ..wire import UnitSpec
from .credit import CreditWindowExtension, credit_message_specs
from .traffic_class import ETHERNET_SUB_TYPE

__all__ = ["EXTENSION_CODE", "Ieee8021qCreditWindow"]

#: Extension Type Value of RFC 9895 §5.
EXTENSION_CODE: Final = 5


class Ieee8021qCreditWindow(CreditWindowExtension):
    """RFC 9895 IEEE 802.1Q Aware Credit Window ("Ethernet Credit")."""

    code: ClassVar[int] = EXTENSION_CODE
    name: ClassVar[str] = "credit-8021q"
    title: ClassVar[str] = "IEEE 802.1Q Aware Credit Window Extension (RFC 9895)"
    SUB_TYPES: ClassVar[frozenset[int]] = frozenset({ETHERNET_SUB_TYPE})
    messages: ClassVar[tuple[UnitSpec, ...]] = credit_message_specs()
