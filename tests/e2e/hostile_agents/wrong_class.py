"""get_entry_point() names a class that does not exist."""

from lbcloud.tracks.sumo.agent_api import AutonomousAgent


def get_entry_point() -> str:
    return "Missing"


class Present(AutonomousAgent):
    pass
