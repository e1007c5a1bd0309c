"""Allocates far more memory than any agent should get."""

from __future__ import annotations

from hostile_common import StandingAgent, report


def get_entry_point() -> str:
    return "MemoryHog"


class MemoryHog(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        hoard = []
        for _ in range(64):
            hoard.append(bytearray(64 * 1024 * 1024))  # touches every page: real memory, not a reservation
            report("hoarded MiB", 64 * len(hoard))
