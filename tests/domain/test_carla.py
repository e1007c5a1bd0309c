"""The judgement of a CARLA attempt from what was observed: simulator death first, then the record,
the watchdogs and the official evaluator's exit codes (255 crashed/rejected, 1 uncaught, 0)."""

from __future__ import annotations

import pytest

from lbcloud.domain.blame import Blame
from lbcloud.domain.carla import CarlaObservation, Ending, Verdict, judge_carla_attempt, record_is_final

DIED = "it exited with code 139"


@pytest.mark.parametrize(
    ("seen", "verdict", "blame"),
    [
        (CarlaObservation(Ending.EXIT, 0, "Completed"), Verdict.RECORD, Blame.NONE),
        (CarlaObservation(Ending.EXIT, 0, "Failed - Agent couldn't be set up"), Verdict.RECORD, Blame.AGENT),
        (CarlaObservation(Ending.EXIT, 0, "Failed - Agent crashed"), Verdict.RECORD, Blame.AGENT),
        (CarlaObservation(Ending.EXIT, 255, "Failed - Agent's sensors were invalid"), Verdict.RECORD, Blame.AGENT),
        (CarlaObservation(Ending.EXIT, 255, "Failed - Simulation crashed"), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, 255), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, -1), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, 1), Verdict.FAILED, Blame.AGENT),
        (CarlaObservation(Ending.EXIT, 0), Verdict.FAILED, Blame.INFRASTRUCTURE),
        (CarlaObservation(Ending.SILENCE, None), Verdict.FAILED, Blame.AGENT),
        (CarlaObservation(Ending.BUDGET, None), Verdict.FAILED, Blame.AGENT),
        # the simulator died while the evaluator ran: whatever came after is the simulator's
        (CarlaObservation(Ending.EXIT, 255, simulator_death=DIED), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, 1, simulator_death=DIED), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.SILENCE, None, simulator_death=DIED), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.BUDGET, None, simulator_death=DIED), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, 0, "Failed - Agent crashed", DIED), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, 255, simulator_death=DIED, simulator_oom=True), Verdict.FAILED,
         Blame.INFRASTRUCTURE),
        (CarlaObservation(Ending.EXIT, 0, "Failed - Simulation crashed", DIED), Verdict.FAILED, Blame.SIMULATOR),
        (CarlaObservation(Ending.EXIT, 0, "Started", DIED), Verdict.FAILED, Blame.SIMULATOR),
        # a driving result cannot come from a dead simulator: the route ended first, its record stands
        # (no free retry of a route the agent drove badly; the official cloud keeps it too)
        (CarlaObservation(Ending.EXIT, 0, "Completed", DIED), Verdict.RECORD, Blame.NONE),
        (CarlaObservation(Ending.EXIT, 255, "Failed - Agent got blocked", DIED), Verdict.RECORD, Blame.NONE),
        (CarlaObservation(Ending.EXIT, 0, "Failed - Agent deviated from the route", simulator_oom=True),
         Verdict.RECORD, Blame.NONE),
    ],
)  # fmt: skip
def test_each_observation_gets_its_outcome_and_blame(seen: CarlaObservation, verdict: Verdict, blame: Blame) -> None:
    judged = judge_carla_attempt(seen)
    assert (judged.verdict, judged.blame) == (verdict, blame), judged.reason
    assert judged.reason


def test_an_uncaught_error_names_the_evaluators_last_error() -> None:
    judged = judge_carla_attempt(CarlaObservation(Ending.EXIT, 1, last_error="ModuleNotFoundError: No module 'torch'"))
    assert "No module 'torch'" in judged.reason and "exit 1" in judged.reason


def test_only_results_are_final_records() -> None:
    assert record_is_final("Perfect") and record_is_final("Failed - Agent got blocked")
    assert not record_is_final("Started") and not record_is_final("Failed - Simulation crashed")
    assert not record_is_final(None)
