"""Starts a daemon in a new session (setsid, double fork) that should outlive the attempt."""

from __future__ import annotations

import subprocess
import sys

from hostile_common import StandingAgent, report


def get_entry_point() -> str:
    return "EscapeDaemon"


class EscapeDaemon(StandingAgent):
    def setup(self, path_to_conf_file: str) -> None:
        super().setup(path_to_conf_file)
        marker = self.config.get("marker", "lbcloud-hostile")
        code = f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(3600)  # {marker}\n"
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL)
        report("daemon", "started")

    def run_step(self, input_data, timestamp):  # type: ignore[no-untyped-def]
        if self.steps >= 3:
            raise RuntimeError("the daemon is out; giving up the route")
        return super().run_step(input_data, timestamp)
