"""A hostile agent that blocks forever while being imported, printing nothing."""

from __future__ import annotations

import time

while True:
    time.sleep(3600)
