"""How a Docker attempt's end becomes outcome and blame."""

from __future__ import annotations

import dataclasses

import pytest

from lbcloud.adapters.backends.docker.engine import ContainerState
from lbcloud.adapters.backends.docker.outcome import Stop, judge_carla_ended, judge_ended, process_exit_code, stopped
from lbcloud.adapters.backends.docker.plans import Role
from lbcloud.domain.blame import EXIT_SIMULATION_CRASHED, Blame
from lbcloud.domain.tasks import AttemptOutcome

AGENT = ContainerState("a", Role.AGENT, 1, "exited", 0, False, 0, 1.0, ())
SIMULATOR = ContainerState("s", Role.SIMULATOR, 1, "running", None, False, 42, 1.0, ())


def test_a_clean_exit_with_a_record_is_a_record() -> None:
    ending = judge_ended(AGENT, SIMULATOR, has_record=True)
    assert (ending.outcome, ending.blame, ending.keep_record) == (AttemptOutcome.RECORD, Blame.NONE, True)


def test_an_oom_kill_blames_the_agent_with_a_clear_reason() -> None:
    killed = dataclasses.replace(AGENT, exit_code=137, oom_killed=True)
    ending = judge_ended(killed, SIMULATOR, has_record=False)
    assert (ending.outcome, ending.blame) == (AttemptOutcome.FAILED, Blame.AGENT)
    assert "memory" in ending.reason and "OOM" in ending.reason


def test_an_agent_exit_without_record_blames_the_agent_while_the_simulator_lives() -> None:
    ending = judge_ended(dataclasses.replace(AGENT, exit_code=1), SIMULATOR, has_record=False)
    assert (ending.outcome, ending.blame) == (AttemptOutcome.FAILED, Blame.AGENT)


def test_a_failure_after_the_simulator_container_died_blames_the_simulator() -> None:
    dead = dataclasses.replace(SIMULATOR, status="exited", exit_code=137)
    ending = judge_ended(dataclasses.replace(AGENT, exit_code=1), dead, has_record=False)
    assert (ending.outcome, ending.blame) == (AttemptOutcome.FAILED, Blame.SIMULATOR)
    assert "137" in ending.reason


def test_a_simulation_crash_keeps_its_record_and_blames_the_simulator() -> None:
    ending = judge_ended(dataclasses.replace(AGENT, exit_code=EXIT_SIMULATION_CRASHED), SIMULATOR, has_record=True)
    assert (ending.outcome, ending.blame, ending.keep_record) == (AttemptOutcome.FAILED, Blame.SIMULATOR, True)


def test_signal_exit_codes_become_negative() -> None:
    assert process_exit_code(137) == -9
    assert process_exit_code(139) == -11
    assert process_exit_code(3) == 3
    assert process_exit_code(None) is None


def test_the_backends_own_stops() -> None:
    assert stopped(Stop.CANCELLED, "x").outcome is AttemptOutcome.CANCELLED
    assert stopped(Stop.SILENCE, "x").blame is Blame.AGENT
    assert stopped(Stop.BUDGET, "x").blame is Blame.AGENT
    assert stopped(Stop.AGENT_IMAGE, "x").blame is Blame.AGENT
    assert stopped(Stop.SIMULATOR_NOT_READY, "x").blame is Blame.SIMULATOR
    assert stopped(Stop.SIMULATOR_EXITED_EARLY, "x").blame is Blame.SIMULATOR


@pytest.mark.parametrize(
    ("code", "status", "sim_code", "expected"),
    [
        (0, "Completed", None, (AttemptOutcome.RECORD, Blame.NONE, True)),
        (255, "Failed - Agent's sensors were invalid", None, (AttemptOutcome.RECORD, Blame.NONE, True)),
        (255, "Failed - Simulation crashed", None, (AttemptOutcome.FAILED, Blame.SIMULATOR, True)),
        (255, None, None, (AttemptOutcome.FAILED, Blame.SIMULATOR, False)),
        (1, None, None, (AttemptOutcome.FAILED, Blame.AGENT, False)),
        (0, "Failed - Agent crashed", 139, (AttemptOutcome.FAILED, Blame.SIMULATOR, True)),
        (255, None, 139, (AttemptOutcome.FAILED, Blame.SIMULATOR, False)),
    ],
)
def test_a_carla_agent_containers_end_is_judged_simulator_death_first(
    code: int, status: str | None, sim_code: int | None, expected: tuple[AttemptOutcome, Blame, bool]
) -> None:
    simulator = SIMULATOR if sim_code is None else dataclasses.replace(SIMULATOR, status="exited", exit_code=sim_code)
    ending = judge_carla_ended(dataclasses.replace(AGENT, exit_code=code), simulator, status)
    assert (ending.outcome, ending.blame, ending.keep_record) == expected, ending.reason
