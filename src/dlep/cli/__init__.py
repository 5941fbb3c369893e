"""Command-line programs: ``dlep-router``, ``dlep-modem`` (and the demo)."""
