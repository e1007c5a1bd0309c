"""A hostile agent that allocates memory until the container's limit stops it."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from competent import CompetentAgent

CHUNK = 64 * 1024 * 1024


def get_entry_point() -> str:
    return "MemoryHogAgent"


class MemoryHogAgent(CompetentAgent):
    """Fills memory with written (not just reserved) pages in ``setup``, 64 MiB at a time."""

    def setup(self, path_to_conf_file: str) -> None:
        hoard = []
        while True:
            hoard.append(b"\x01" * CHUNK)
            print(f"holding {len(hoard) * 64} MiB", flush=True)
