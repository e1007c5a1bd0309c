"""How an attempt's containers ended, as outcome, blame and a reason a person can act on.

Blame comes from what the trusted side saw: the engine's view of the containers (exit codes,
``OOMKilled``), the backend's watchdogs and the record the evaluator wrote. The evaluator's exit
codes mean what they mean on the local backend (:func:`~lbcloud.adapters.backends.local.classify_exit`).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum

from lbcloud.adapters.backends.docker.engine import ContainerState
from lbcloud.adapters.backends.docker.plans import Role
from lbcloud.adapters.backends.local import classify_exit
from lbcloud.domain.blame import EXIT_SIMULATION_CRASHED, Blame
from lbcloud.domain.carla import CarlaObservation, judge_carla_attempt
from lbcloud.domain.carla import Ending as CarlaEnding
from lbcloud.domain.carla import Verdict as CarlaVerdict
from lbcloud.domain.tasks import AttemptOutcome


class Stop(StrEnum):
    """Why the backend itself ended an attempt (written to the attempt folder, so it survives a restart)."""

    CANCELLED = "cancelled"
    BUDGET = "budget"
    SILENCE = "silence"
    SIMULATOR_NOT_READY = "simulator_not_ready"
    SIMULATOR_EXITED_EARLY = "simulator_exited_early"
    AGENT_IMAGE = "agent_image"
    SETUP_FAILED = "setup_failed"


STOP_ENDINGS: dict[Stop, tuple[AttemptOutcome, Blame]] = {
    Stop.CANCELLED: (AttemptOutcome.CANCELLED, Blame.NONE),
    Stop.BUDGET: (AttemptOutcome.FAILED, Blame.AGENT),
    Stop.SILENCE: (AttemptOutcome.FAILED, Blame.AGENT),
    Stop.SIMULATOR_NOT_READY: (AttemptOutcome.FAILED, Blame.SIMULATOR),
    Stop.SIMULATOR_EXITED_EARLY: (AttemptOutcome.FAILED, Blame.SIMULATOR),
    Stop.AGENT_IMAGE: (AttemptOutcome.FAILED, Blame.AGENT),
    Stop.SETUP_FAILED: (AttemptOutcome.FAILED, Blame.INFRASTRUCTURE),
}


@dataclass(frozen=True, slots=True)
class Ending:
    """An attempt's end. ``keep_record``: the record the evaluator wrote goes to the dispatcher."""

    outcome: AttemptOutcome
    blame: Blame
    reason: str
    exit_code: int | None = None
    keep_record: bool = False


def stopped(stop: Stop, detail: str) -> Ending:
    outcome, blame = STOP_ENDINGS[stop]
    return Ending(outcome, blame, detail)


def process_exit_code(container_code: int | None) -> int | None:
    """A container's exit code as a process's: 128+N (a signal, as init reports it) becomes -N."""
    if container_code is not None and 128 < container_code < 160:
        number = container_code - 128
        if number in signal.Signals._value2member_map_:
            return -number
    return container_code


def judge_ended(
    judge: ContainerState, simulator: ContainerState | None, has_record: bool, agent: ContainerState | None = None
) -> Ending:
    """The end of an attempt whose deciding container exited by itself: the trusted evaluator (then
    ``agent`` is the agent host's container), or the agent container running the evaluator."""
    code = process_exit_code(judge.exit_code)
    if agent is not None and agent.oom_killed:
        # the evaluator judged the route (the agent died mid-route); the reason says why it died
        outcome, blame, reason = classify_exit(code, has_record, None)
        why = "the agent container was killed for using more memory than the track allows (OOM)"
        if outcome is AttemptOutcome.RECORD:
            return Ending(AttemptOutcome.RECORD, Blame.AGENT, why, exit_code=code, keep_record=True)
        return Ending(AttemptOutcome.FAILED, Blame.AGENT, why, exit_code=code)
    if judge.oom_killed and not has_record:
        who = "the agent container" if judge.role is Role.AGENT else "the evaluator container"
        blame = Blame.AGENT if judge.role is Role.AGENT else Blame.INFRASTRUCTURE
        return Ending(
            AttemptOutcome.FAILED, blame, f"{who} was killed for using more memory than allowed (OOM)", exit_code=code
        )
    simulator_gone = simulator is None or simulator.ended
    simulator_code = simulator.exit_code if simulator is not None else None
    outcome, blame, reason = classify_exit(code, has_record, simulator_code)
    if outcome is AttemptOutcome.FAILED and blame is Blame.AGENT and simulator_gone and code != EXIT_SIMULATION_CRASHED:
        # the evaluator lost its simulator and said so only by failing: the simulator is to blame
        what = f"exit code {simulator_code}" if simulator_code is not None else "removed"
        return Ending(
            AttemptOutcome.FAILED, Blame.SIMULATOR,
            f"the simulator container ended during the route ({what})", exit_code=code,
        )  # fmt: skip
    keep = outcome is AttemptOutcome.RECORD or code == EXIT_SIMULATION_CRASHED
    return Ending(outcome, blame, reason, exit_code=code, keep_record=keep)


def judge_carla_ended(judge: ContainerState, simulator: ContainerState | None, record_status: str | None) -> Ending:
    """The end of a CARLA track's agent container (it runs the official evaluator): simulator death
    first, then the record, then the official exit codes (:mod:`lbcloud.domain.carla`)."""
    code = process_exit_code(judge.exit_code)
    death = None
    oom = False
    if simulator is None:
        death = "its container was removed"
    elif simulator.ended and (simulator.exit_code or simulator.oom_killed):
        death = f"its container exited with code {simulator.exit_code}"
        oom = simulator.oom_killed
    if judge.oom_killed and death is None and record_status is None:
        return Ending(AttemptOutcome.FAILED, Blame.AGENT, "the agent container was killed for using more memory than "
                      "the track allows (OOM)", exit_code=code)  # fmt: skip
    judged = judge_carla_attempt(
        CarlaObservation(
            CarlaEnding.EXIT, code, record_status=record_status, simulator_death=death, simulator_oom=oom
        )
    )
    if judged.verdict is CarlaVerdict.RECORD:
        return Ending(AttemptOutcome.RECORD, Blame.NONE, judged.reason, exit_code=code, keep_record=True)
    keep = judged.blame is Blame.SIMULATOR and record_status is not None
    return Ending(AttemptOutcome.FAILED, judged.blame, judged.reason, exit_code=code, keep_record=keep)
