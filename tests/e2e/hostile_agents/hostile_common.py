"""What the hostile agents share: their configuration, a loud report, and a standing-still control."""

from __future__ import annotations

import json
from typing import Any

from lbcloud.tracks.sumo.agent_api import AutonomousAgent, InputData, VehicleControl


def load_config(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            return dict(json.load(fh))
    except (OSError, ValueError):
        return {}


def report(what: str, data: object) -> None:
    """Print what was found: whatever an attack obtains ends up in the agent's own log."""
    print(f"HOSTILE {what}: {str(data)[:20000]}", flush=True)


class StandingAgent(AutonomousAgent):
    def setup(self, path_to_conf_file: str) -> None:
        self.config = load_config(path_to_conf_file)
        self.steps = 0

    def sensors(self) -> list[dict[str, Any]]:
        return [{"type": "sumo.speedometer", "id": "speed"}]

    def run_step(self, input_data: InputData, timestamp: float) -> VehicleControl:
        self.steps += 1
        return VehicleControl(brake=1.0)
