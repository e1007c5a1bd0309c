"""Logging set-up: human-readable lines on a terminal, JSON lines for machines.

Every log record may carry ``submission``, ``route`` and ``attempt`` ids through ``extra=``; the JSON
formatter writes them as fields so logs can be filtered per submission.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

CONTEXT_FIELDS = ("submission", "route", "attempt", "team", "track", "component")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and any context fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                payload[field] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "info", json_lines: bool = False) -> None:
    """Configure the root logger once for a process (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level.upper())
