"""Find a participant's agent class from ``--agent`` (in the agent host's process only).

Three forms, as a CARLA participant would expect plus two explicit ones:

- ``path/to/agent.py`` — the class named by the module's ``get_entry_point()``;
- ``path/to/agent.py:ClassName``;
- ``package.module:ClassName`` — an importable module.

Importing an agent runs its code: only the agent host (:mod:`lbcloud.tracks.sumo.agent_host`) and
tools that inspect an agent the operator trusts call this, never the evaluator.
"""

from __future__ import annotations

from lbcloud.domain.errors import InputError
from lbcloud.tracks.sumo.agent_host import AgentLoadError, find_agent_class


def load_agent_class(reference: str) -> type:
    """The agent class ``reference`` names; raises InputError with a one-line reason."""
    try:
        return find_agent_class(reference)
    except AgentLoadError as err:
        raise InputError(str(err)) from err
