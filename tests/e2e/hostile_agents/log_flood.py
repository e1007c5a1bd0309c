"""Prints tens of megabytes per route."""

from __future__ import annotations

import sys

from hostile_common import StandingAgent

LINE = "flood " * 170 + "\n"


def get_entry_point() -> str:
    return "LogFlood"


class LogFlood(StandingAgent):
    def run_step(self, input_data, timestamp):  # type: ignore[no-untyped-def]
        if self.steps == 0:
            for _ in range(40 * 1024):  # ~40 MiB
                sys.stdout.write(LINE)
            sys.stdout.flush()
        if self.steps >= 3:
            raise RuntimeError("flooded")
        return super().run_step(input_data, timestamp)
