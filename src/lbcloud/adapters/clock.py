"""The real clock (implements :class:`lbcloud.services.ports.Clock`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    """UTC wall time, a monotonic clock and real sleeps."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
