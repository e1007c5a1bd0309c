"""Blame: who is at fault when an attempt does not yield a clean route record, and what follows.

| blame          | retried?                                   | counts against the team? |
|----------------|--------------------------------------------|--------------------------|
| agent          | no                                         | yes                      |
| simulator      | yes, up to the track's limit               | no                       |
| infrastructure | yes; preemption does not count to a limit  | no                       |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Blame(StrEnum):
    """Who caused an attempt to end without a clean record."""

    NONE = "none"
    AGENT = "agent"
    SIMULATOR = "simulator"
    INFRASTRUCTURE = "infrastructure"


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as a value: who is to blame and one sentence a person can act on."""

    blame: Blame
    reason: str
    preempted: bool = False


# Exit codes of the SUMO track's evaluator and of lbcloud's agent wrapper on Kubernetes (3: the agent
# could not be set up, e.g. $TEAM_AGENT unset; 4: the simulator died; 5: it never got ready).
# The official CARLA evaluator's own codes (255, 1, 0) are judged in lbcloud.domain.carla.
EXIT_FINISHED = 0
EXIT_USAGE = 2
EXIT_AGENT_REJECTED = 3
EXIT_SIMULATION_CRASHED = 4
EXIT_SIMULATOR_UNREACHABLE = 5
EXIT_AGENT_HOST_UNAVAILABLE = 6

AGENT_RECORD_STATUSES = (
    "Failed - Agent couldn't be set up",
    "Failed - Agent crashed",
    "Failed - Agent's sensors were invalid",
)
SIMULATOR_RECORD_STATUSES = ("Failed - Simulation crashed",)


def blame_of_record_status(status: str) -> Blame:
    """Blame carried by a route record's status.

    Driving failures (deviation, blocked, route timeout, plain ``Failed``) are results, not faults:
    they have no blame. Agent faults (setup, crash, invalid sensors) blame the agent; a simulation
    crash blames the simulator.
    """
    if any(text in status for text in SIMULATOR_RECORD_STATUSES):
        return Blame.SIMULATOR
    if any(text in status for text in AGENT_RECORD_STATUSES):
        return Blame.AGENT
    return Blame.NONE


def should_retry(failure: Failure, counted_retries: int, max_simulator: int, max_infrastructure: int) -> bool:
    """Whether a failed attempt's route task gets another attempt.

    ``counted_retries`` is how many earlier failures of the same blame were counted toward the limit
    (preemptions are never counted).
    """
    if failure.blame is Blame.AGENT or failure.blame is Blame.NONE:
        return False
    if failure.preempted:
        return True
    limit = max_simulator if failure.blame is Blame.SIMULATOR else max_infrastructure
    return counted_retries < limit
