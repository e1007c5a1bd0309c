"""A careful driver for the SUMO track: follows its route, stops at red lights and keeps its distance.

Run it:  lbcloud track sumo evaluate --agent examples/agents/competent.py --routes <sumo-dev.xml> ...
"""

from __future__ import annotations

import math
from typing import Any

from lbcloud.tracks.sumo.agent_api import AutonomousAgent, InputData, VehicleControl

MAX_ACCEL = 3.0
MAX_BRAKE = 8.0
COMFORT_DECEL = 3.0
TIME_GAP_S = 1.2
MIN_GAP_M = 3.0
STOP_MARGIN_M = 1.0


def get_entry_point() -> str:
    return "CompetentAgent"


class CompetentAgent(AutonomousAgent):
    """Drives at the speed limit with an intelligent-driver-model controller.

    It treats the vehicle ahead and a red (or stoppable yellow) light as obstacles to keep its
    distance from, so it completes routes without collisions or red-light infractions.
    """

    def setup(self, path_to_conf_file: str) -> None:
        self.cruise_factor = 1.0

    def sensors(self) -> list[dict[str, Any]]:
        return [
            {"type": "sumo.speedometer", "id": "speed"},
            {"type": "sumo.route_map", "id": "route", "horizon": 100.0},
            {"type": "sumo.radar", "id": "radar", "range": 60.0},
            {"type": "sumo.traffic_light", "id": "light", "range": 100.0},
        ]

    def _idm(self, speed: float, desired: float, gap: float, other_speed: float) -> float:
        interaction = 0.0
        if math.isfinite(gap):
            wanted = (
                MIN_GAP_M
                + speed * TIME_GAP_S
                + speed * (speed - other_speed) / (2 * math.sqrt(MAX_ACCEL * COMFORT_DECEL))
            )
            interaction = (max(wanted, 0.0) / max(gap, 0.1)) ** 2
        return MAX_ACCEL * (1 - (speed / max(desired, 0.1)) ** 4 - interaction)

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        speed = input_data["speed"][1].speed
        route = input_data["route"][1]
        radar = input_data["radar"][1]
        light = input_data["light"][1]
        desired = route.speed_limit * self.cruise_factor
        accel = self._idm(speed, desired, math.inf, 0.0)
        if radar.leader is not None:
            accel = min(accel, self._idm(speed, desired, radar.leader.gap, radar.leader.speed))
        if light.state in ("red", "yellow") and light.distance is not None:
            stop_gap = light.distance - STOP_MARGIN_M
            needed = speed * speed / (2 * max(stop_gap, 0.1))
            if light.state == "red" or needed < 4.5:
                accel = min(accel, self._idm(speed, desired, max(stop_gap, 0.0), 0.0))
        if accel >= 0:
            return VehicleControl(throttle=min(accel / MAX_ACCEL, 1.0))
        return VehicleControl(brake=min(-accel / MAX_BRAKE, 1.0))
