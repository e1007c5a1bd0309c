"""Global statistics: bit-exact global records, values, entry status and validation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.model import GlobalScores, ResultFormat, ResultsFile
from lbcloud.domain.results.statistics import (
    INVALID_HEADER,
    compute_global_record,
    compute_global_record_10,
    entry_status_from_records,
    finalize_results,
    rescore_results,
    values_for,
)
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.tracks import ScorerVersion
from tests.domain.results.conftest import load


def _strip(results: ResultsFile) -> ResultsFile:
    return replace(results, global_record=None, values=(), labels=(), entry_status="Started", eligible=False)


@pytest.mark.parametrize(
    "name", ["partial_agent_results1.json", "partial_agent_results2.json", "partial_agent_results3.json"]
)
def test_finalizing_a_finished_worker_reproduces_its_bytes(lb20: Path, name: str) -> None:
    data = (lb20 / name).read_bytes()
    finalized = finalize_results(_strip(load(lb20 / name)))
    assert finalized.messages == ()
    assert dumps_results(finalized.results).encode() == data


def test_resumed_after_finish_has_no_sensors_but_stays_finished(lb20: Path) -> None:
    path = lb20 / "partial_agent_results1.resumed_after_finish.json"
    finalized = finalize_results(_strip(load(path)), sensors_set_up=False)
    assert dumps_results(finalized.results).encode() == path.read_bytes()


def test_sensors_set_up_but_empty_is_invalid(lb20: Path) -> None:
    path = lb20 / "partial_agent_results1.resumed_after_finish.json"
    finalized = finalize_results(_strip(load(path)), sensors_set_up=True)
    assert finalized.results.entry_status == "Invalid"
    assert finalized.results.eligible is False
    assert finalized.messages == (INVALID_HEADER, "> Missing 'sensors' data")


def test_global_record_of_m2_matches_official(lb20: Path) -> None:
    merged = load(lb20 / "peer_merge" / "M2_final.merged.json")
    computed = compute_global_record(merged.records, 10)
    assert computed == merged.global_record
    assert values_for(computed) == merged.values


def test_single_instance_std_dev_is_int_zero(lb20: Path) -> None:
    record = load(lb20 / "partial_agent_results3.json").records[2]
    computed = compute_global_record([record], 1)
    assert computed.scores_std_dev == 0 and type(computed.scores_std_dev) is int
    assert computed.status == "Perfect"


def test_km_floor_avoids_division_by_zero(lb20: Path) -> None:
    setup_failed = load(lb20 / "partial_agent_results3.inprogress.json").records[1]
    computed = compute_global_record([setup_failed], 1)
    assert computed.infractions["route_dev"] == 0.0
    assert computed.status == "Failed"
    assert computed.exceptions == (("RouteScenario_8_rep0", 1, "Failed - Agent couldn't be set up"),)


@pytest.mark.parametrize(
    "name",
    [
        "palma-or_CARLA-AutonomousDrivingAgent__results_simulation_results.json",
        "Dariorab_AVD__results_simulation_results.json",
    ],
)
def test_old_20_files_reproduce_their_stored_figures(real: Path, name: str) -> None:
    stored = load(real / name)
    assert stored.global_record is not None
    computed = compute_global_record(stored.records, stored.total)
    assert computed.scores_mean == stored.global_record.scores_mean
    assert dict(computed.infractions) == dict(stored.global_record.infractions)
    assert computed.status == stored.global_record.status
    assert computed.exceptions == stored.global_record.exceptions


def test_10_global_record_matches_official_single_merge(real: Path) -> None:
    official = load(real / "peer_merge" / "agc_lb10_single.merged.json")
    computed = compute_global_record_10(official.records, 1)
    assert computed == official.global_record
    assert computed.scores_std_dev == GlobalScores("NaN", "NaN", "NaN")


def test_entry_status_last_matching_record_decides(lb20: Path) -> None:
    records = load(lb20 / "partial_agent_results2.crashed.json").records
    assert entry_status_from_records(records) == "Crashed"
    rejected = replace(records[0], status="Failed - Agent's sensors were invalid")
    assert entry_status_from_records([*records, rejected]) == "Rejected"
    assert entry_status_from_records([rejected, *records]) == "Crashed"
    assert entry_status_from_records(records[:1]) == "Finished"


def test_rescoring_files_under_their_own_scorer_changes_nothing(lb20: Path, real: Path) -> None:
    # The published AGC file predates the 1.0 global meta totals; the official re-merge of it has them.
    for path in [*sorted(lb20.glob("*.json")), real / "peer_merge" / "agc_lb10_single.merged.json"]:
        results = load(path)
        scorer = ScorerVersion.LB10 if results.format is ResultFormat.V10 else ScorerVersion.LB20
        assert dumps_results(rescore_results(results, scorer)) == dumps_results(results), path.name


def test_rescoring_20_under_21_changes_scores_and_global(lb20: Path) -> None:
    results = load(lb20 / "partial_agent_results1.json")
    rescored = rescore_results(results, ScorerVersion.LB21)
    assert rescored.records[1].scores.score_penalty == 0.468209
    assert rescored.global_record is not None and results.global_record is not None
    assert rescored.global_record.scores_mean != results.global_record.scores_mean
    assert rescored.entry_status == "Finished"
    assert rescored.values[0] == str(rescored.global_record.scores_mean.score_composed)


def test_rescoring_refuses_a_format_mismatch(lb20: Path) -> None:
    with pytest.raises(InputError, match=r"lb1\.0 cannot score a Leaderboard 2\.x file"):
        rescore_results(load(lb20 / "partial_agent_results1.json"), ScorerVersion.LB10)
