"""A hostile agent that stops its whole process (SIGSTOP) in ``setup``: nothing it runs in prints again."""

from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from competent import CompetentAgent


def get_entry_point() -> str:
    return "FreezingAgent"


class FreezingAgent(CompetentAgent):
    """Says so, then freezes the process it runs in."""

    def setup(self, path_to_conf_file: str) -> None:
        print("freezing now", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)
