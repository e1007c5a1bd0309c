"""An agent whose setup fails: every route ends as "Failed - Agent couldn't be set up"."""

from __future__ import annotations

from lbcloud.tracks.sumo.agent_api import AutonomousAgent


def get_entry_point() -> str:
    return "SetupFailsAgent"


class SetupFailsAgent(AutonomousAgent):
    """Raises in ``setup`` (as a model file that cannot be found would)."""

    def setup(self, path_to_conf_file: str) -> None:
        raise FileNotFoundError(f"model weights not found next to {path_to_conf_file!r}")
