"""A reckless driver: full throttle, ignores traffic lights and the vehicles ahead."""

from __future__ import annotations

from typing import Any

from lbcloud.tracks.sumo.agent_api import AutonomousAgent, InputData, VehicleControl

TOP_SPEED = 20.0


def get_entry_point() -> str:
    return "RecklessAgent"


class RecklessAgent(AutonomousAgent):
    """Drives at 20 m/s whatever happens: runs red lights and rams whatever is in front of it."""

    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sumo.speedometer", "id": "speed"}]

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        speed = input_data["speed"][1].speed
        if speed < TOP_SPEED:
            return VehicleControl(throttle=1.0)
        return VehicleControl()
