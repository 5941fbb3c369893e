"""The extension plug-in interface (RFC 8175 §9, §13.6).

The interface itself is :class:`dlep.fsm.plugins.Extension` (re-exported
here): the session engine calls its hooks, so it lives with the engine. An
extension is an object that declares

* its Extension Type Value (``code``) and a ``name``;
* the data items and messages it adds (``items``, ``messages``) and where its
  items may appear and how often (``placements``);
* which items, together with the MAC Address, identify a destination
  (``identity_items``, RFC 8703 Link Identifier);
* hooks the session engine calls once the extension is negotiated.

Built-in extensions use exactly this interface; so do third-party ones, which
can be found through the ``dlep.extensions`` entry-point group
(:func:`load_entry_point_extensions`).

Only extensions that both peers list in Extensions Supported are *in use* on
a session: the engine decodes with the negotiated set, so an item of any other
extension ends the session with 130 (Invalid Data) and a message with 128, and
the API refuses to send either.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..fsm.plugins import Extension, ExtensionViolation, Placement

__all__ = ["Extension", "ExtensionViolation", "Placement", "load_entry_point_extensions"]


def load_entry_point_extensions(names: Iterable[str] = ()) -> list[Extension]:
    """Instantiate extensions published in the ``dlep.extensions`` group.

    With ``names`` only those entry points are loaded (ValueError naming a
    missing one); without, all of them.
    """
    # Imported here, not at the top: importlib.metadata brings email, zipfile,
    # csv, ... (about 1.5 MiB), which a daemon without plug-ins never needs.
    from importlib import metadata

    wanted = set(names)
    found: list[Extension] = []
    seen: set[str] = set()
    for ep in metadata.entry_points(group="dlep.extensions"):
        if wanted and ep.name not in wanted:
            continue
        obj = ep.load()
        ext = obj() if isinstance(obj, type) else obj
        if not isinstance(ext, Extension):
            raise TypeError(f"entry point {ep.name!r} is not a dlep Extension: {obj!r}")
        found.append(ext)
        seen.add(ep.name)
    missing = wanted - seen
    if missing:
        raise ValueError("no dlep.extensions entry point named " + ", ".join(sorted(missing)))
    return found
