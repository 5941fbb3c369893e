"""DLEP extensions: the plug-in interface and the built-in extensions."""

from .base import Extension, ExtensionViolation, Placement, load_entry_point_extensions

__all__ = ["Extension", "ExtensionViolation", "Placement", "load_entry_point_extensions"]
