"""dlep: the Dynamic Link Exchange Protocol (RFC 8175), router and modem sides.

Layers (each a subpackage; dependencies point downwards only):

* :mod:`dlep.wire`  -- byte-level codec for signals, messages and data items.
* :mod:`dlep.fsm`   -- sans-I/O protocol engines (discovery, session), no clock.
"""

__version__ = "0.1.0"
