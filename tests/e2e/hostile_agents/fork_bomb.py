"""Forks until the system says no."""

from __future__ import annotations

import os
import time

from hostile_common import StandingAgent, report


def get_entry_point() -> str:
    return "ForkBomb"


class ForkBomb(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        children = 0
        for _ in range(5000):
            try:
                pid = os.fork()
            except OSError as err:
                report("fork refused", f"after {children} children: {err}")
                break
            if pid == 0:
                time.sleep(3600)
                os._exit(0)
            children += 1
        report("children", children)
        raise RuntimeError(f"forked {children} children")
