"""Route record validation: honest records pass, forged or mismatched ones are refused with a reason."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord, RouteScores
from lbcloud.domain.results.scoring import FailureReason, InfractionEvent, build_route_record, collision_message
from lbcloud.domain.results.validation import RecordRefused, check_route_record, validate_route_record
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tracks import ScorerVersion

from .conftest import load


def record(**changes: object) -> RouteRecord:
    crash = InfractionEvent("collisions_vehicle", collision_message("vehicle.sumo.car", 7, 1.0, 2.0, 0.0))
    built = build_route_record(
        index=0, route_id="RouteScenario_3_rep1", route_completion=80.5, events=[crash], route_length=420.0,
        duration_game=61.2, duration_system=3.4,
    )  # fmt: skip
    return replace(built, **changes)  # type: ignore[arg-type]


def document(rec: RouteRecord) -> str:
    return dumps_results(ResultsFile(format=ResultFormat.V2X, records=(rec,), progress=(1, 1)))


def check(rec: RouteRecord, scorer: ScorerVersion = ScorerVersion.LB20) -> None:
    check_route_record(rec, route_id="3", repetition=1, scorer=scorer)


def test_an_evaluators_own_record_passes() -> None:
    parsed = validate_route_record(document(record()), route_id="3", repetition=1, scorer=ScorerVersion.LB20)
    assert parsed.scores.score_penalty == pytest.approx(0.6)


def test_failure_records_of_every_official_reason_pass() -> None:
    for reason in FailureReason:
        failed = build_route_record(
            index=0, route_id="RouteScenario_3_rep1", route_completion=0, events=[], route_length=0.0,
            duration_game=0.0, duration_system=0.0, failure=reason.value,
        )  # fmt: skip
        check(failed)


@pytest.mark.parametrize(
    ("name", "scorer"),
    [
        ("Dariorab_AVD__results_simulation_results.json", ScorerVersion.LB20),
        ("JackZihengChen_CARLA-Modified-Pipeline__simulation_results.json", ScorerVersion.LB20),
        ("palma-or_CARLA-AutonomousDrivingAgent__results_simulation_results.json", ScorerVersion.LB20),
        ("AGC_Leaderboard_README__lb10_results.json", ScorerVersion.LB10),
    ],
)
def test_every_record_of_real_leaderboard_files_passes(real: Path, name: str, scorer: ScorerVersion) -> None:
    for rec in load(real / name).records:
        route, repetition = rec.route_and_repetition
        check_route_record(rec, route_id=str(route), repetition=repetition, scorer=scorer)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"route_id": "RouteScenario_4_rep1"}, "the task is 'RouteScenario_3_rep1'"),
        ({"route_id": "RouteScenario_3_rep0"}, "the task is 'RouteScenario_3_rep1'"),
        ({"status": "Perfect!"}, "unknown route status"),
        ({"scores": RouteScores(100, 1.0, 5000)}, "outside [0, 100]"),
        ({"scores": RouteScores(100, 1.0, 100)}, "does not match its infractions"),
        ({"scores": RouteScores(80.5, 0.6, 80.5)}, "is not route completion × infraction penalty"),
        ({"scores": RouteScores(-1, 0.6, 0)}, "outside [0, 100]"),
        ({"scores": RouteScores(80.5, 1.5, 100)}, "outside [0, 1]"),
        ({"scores": RouteScores(float("nan"), 0.6, 0)}, "not a finite number"),
        ({"num_infractions": 0}, "num_infractions 0 but 1"),
        ({"status": "Completed"}, "route completion 80.5 < 100"),
        ({"infractions": {"collisions_vehicle": (), "free_points": ("x",)}}, "unknown infraction list"),
    ],
)
def test_forged_or_mismatched_records_are_refused_with_the_reason(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(RecordRefused) as caught:
        check(record(**changes))
    assert reason in str(caught.value)


def test_a_perfect_status_with_infractions_is_refused() -> None:
    forged = record(status="Perfect", scores=RouteScores(100, 0.6, 60))
    with pytest.raises(RecordRefused, match="'Perfect' with infraction messages"):
        check(forged)


def test_the_penalty_is_recomputed_with_the_tracks_scorer() -> None:
    honest_20 = record()
    check(honest_20, ScorerVersion.LB20)
    with pytest.raises(RecordRefused, match=r"lb2\.1 scorer gives 0\.588235"):
        check(honest_20, ScorerVersion.LB21)


@pytest.mark.parametrize(
    "text",
    ["", "not json", json.dumps({"_checkpoint": {"records": []}}), "[1, 2]"],
)
def test_unreadable_or_empty_documents_are_refused(text: str) -> None:
    with pytest.raises(RecordRefused):
        validate_route_record(text, route_id="3", repetition=1, scorer=ScorerVersion.LB20)


def test_two_records_in_one_document_are_refused() -> None:
    rec = record()
    text = dumps_results(ResultsFile(format=ResultFormat.V2X, records=(rec, rec.with_index(1)), progress=(2, 2)))
    with pytest.raises(RecordRefused, match="exactly one route record, found 2"):
        validate_route_record(text, route_id="3", repetition=1, scorer=ScorerVersion.LB20)
