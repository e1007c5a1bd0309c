"""A hostile agent that kills its own process (no exception, no record) a few seconds into the route."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from competent import CompetentAgent

from lbcloud.tracks.sumo.agent_api import InputData, VehicleControl


def get_entry_point() -> str:
    return "ExitingAgent"


class ExitingAgent(CompetentAgent):
    """Drives for 3 simulated seconds, then ``os._exit(7)``: the process is gone, mid-route."""

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        if timestamp >= 3.0:
            os._exit(7)
        return super().run_step(input_data, timestamp)
