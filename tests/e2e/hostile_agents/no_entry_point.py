"""An agent class, but no get_entry_point()."""

from lbcloud.tracks.sumo.agent_api import AutonomousAgent


class Lonely(AutonomousAgent):
    pass
