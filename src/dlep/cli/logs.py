"""Logging set-up: readable text by default, one JSON object per line on demand."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LEVELS = ("debug", "info", "warning", "error")


#: Structured fields a log call may pass in ``extra`` (the daemons' event
#: and message lines do): a JSON line carries each that is set, so a log
#: pipeline filters by session or MAC without parsing the message text.
FIELDS = (
    "session",
    "peer",
    "event",
    "direction",
    "message_type",
    "mac",
    "status",
    "metrics",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, the structured
    fields of :data:`FIELDS` that the record has (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in FIELDS:
            v = record.__dict__.get(name)
            if v is not None:
                doc[name] = v
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", *, prefix: str = "") -> None:
    """Configure the root logger for a daemon process."""
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    else:
        handler = logging.StreamHandler(sys.stderr)
        tag = f"{prefix} " if prefix else ""
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s.%(msecs)03d {tag}%(levelname)-7s %(name)s: %(message)s",
                datefmt="%H:%M:%S",
            )
        )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # asyncio's own chatter (e.g. failed TLS handshakes) at warning and up only.
    logging.getLogger("asyncio").setLevel(max(root.level, logging.WARNING))


def set_level(level: str) -> None:
    """Change the root logger's level in a running daemon (a configuration reload)."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("asyncio").setLevel(max(root.level, logging.WARNING))
