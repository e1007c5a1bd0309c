"""A hostile agent that takes memory until the kernel stops it (the container's limit)."""

from __future__ import annotations

from competent import CompetentAgent


def get_entry_point() -> str:
    return "GreedyAgent"


class GreedyAgent(CompetentAgent):
    def setup(self, path_to_conf_file: str) -> None:
        hoard = []
        while True:
            hoard.append(b"x" * (32 * 2**20))
