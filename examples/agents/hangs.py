"""An agent that stops answering mid-route; the evaluator's step timeout ends the route."""

from __future__ import annotations

import time

from competent import CompetentAgent

from lbcloud.tracks.sumo.agent_api import InputData, VehicleControl

HANG_AFTER_S = 10.0


def get_entry_point() -> str:
    return "HangingAgent"


class HangingAgent(CompetentAgent):
    """Drives well for 10 simulated seconds, then blocks forever inside ``run_step``."""

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        if timestamp >= HANG_AFTER_S:
            while True:
                time.sleep(3600)
        return super().run_step(input_data, timestamp)
