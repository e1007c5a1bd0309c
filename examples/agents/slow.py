"""A slow but correct agent: the competent driver with extra thinking time at every step."""

from __future__ import annotations

import time

from competent import CompetentAgent

from lbcloud.tracks.sumo.agent_api import InputData, VehicleControl

THINK_S = 0.001


def get_entry_point() -> str:
    return "SlowAgent"


class SlowAgent(CompetentAgent):
    """Sleeps 1 ms of wall time per step before answering; drives exactly like the competent agent."""

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        time.sleep(THINK_S)
        return super().run_step(input_data, timestamp)
