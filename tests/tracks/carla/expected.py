"""What the official system's behaviours must become in lbcloud: outcome, blame and retries."""

from __future__ import annotations

from dataclasses import dataclass

from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import AttemptOutcome, RouteTaskStatus

MAX_SIMULATOR_RETRIES = 1


@dataclass(frozen=True, slots=True)
class Expected:
    attempts: tuple[tuple[AttemptOutcome, Blame], ...]
    task: RouteTaskStatus
    log_says: str = ""


RECORD_OK = (AttemptOutcome.RECORD, Blame.NONE)
SIM_FAILED = (AttemptOutcome.FAILED, Blame.SIMULATOR)
AGENT_FAILED = (AttemptOutcome.FAILED, Blame.AGENT)
AGENT_RECORD = (AttemptOutcome.RECORD, Blame.AGENT)

EXPECTED = {
    "normal": Expected((RECORD_OK,), RouteTaskStatus.DONE, "sourced agent_sources.sh"),
    # the simulator dies (SIGSEGV): retried, and the second attempt drives the route
    "sim_crash_once": Expected((SIM_FAILED, RECORD_OK), RouteTaskStatus.DONE),
    # exit 255 with a "Simulation crashed" record while the server lives: retried too
    "sim_error_once": Expected((SIM_FAILED, RECORD_OK), RouteTaskStatus.DONE),
    "sim_crash_always": Expected((SIM_FAILED,) * (MAX_SIMULATOR_RETRIES + 1), RouteTaskStatus.FAILED_FINAL),
    # exit 255 + Rejected: the record stands and blames the agent, no retry
    "rejected": Expected((AGENT_RECORD,), RouteTaskStatus.DONE, "wrong track"),
    # exit 0 + "Agent couldn't be set up" / "Agent crashed": results, blamed on the agent
    "setup_failure": Expected((AGENT_RECORD,), RouteTaskStatus.DONE, "weights are missing"),
    "agent_crash": Expected((AGENT_RECORD,), RouteTaskStatus.DONE, "agent bug"),
    # exit 1: an uncaught error, the agent's (its module cannot be imported)
    "uncaught": Expected((AGENT_FAILED,), RouteTaskStatus.FAILED_FINAL, "cannot even be imported"),
    # no output for the no-output timeout: hung, the agent's
    "hang": Expected((AGENT_FAILED,), RouteTaskStatus.FAILED_FINAL, "printed nothing"),
    "no_team_agent": Expected((AGENT_FAILED,), RouteTaskStatus.FAILED_FINAL, "$TEAM_AGENT"),
    "no_team_config": Expected((RECORD_OK,), RouteTaskStatus.DONE, "agent set up with config ''"),
}
