"""An agent that raises in the middle of every route: "Failed - Agent crashed"."""

from __future__ import annotations

from typing import Any

from competent import CompetentAgent

from lbcloud.tracks.sumo.agent_api import InputData, VehicleControl

CRASH_AFTER_S = 15.0


def get_entry_point() -> str:
    return "CrashingAgent"


class CrashingAgent(CompetentAgent):
    """Drives well for 15 simulated seconds, then raises an exception from ``run_step``."""

    def sensors(self) -> list[dict[str, Any]]:
        return super().sensors()

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        if timestamp >= CRASH_AFTER_S:
            raise RuntimeError("index out of range in the planner")
        return super().run_step(input_data, timestamp)
