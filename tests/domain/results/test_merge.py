"""The merge: official outcomes on every fixture, the spec's deliberate deviations, and invariants."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbcloud.domain.errors import MergeRefused
from lbcloud.domain.results.merge import (
    ExpectedInstances,
    MergeInput,
    merge_results,
    merge_route_records,
)
from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord
from lbcloud.domain.results.statistics import finalize_results
from lbcloud.domain.results.writer import dumps_results
from tests.domain.results.conftest import load
from tests.domain.results.strategies import record_sets

SENSORS = ("carla_camera", "carla_lidar", "carla_speedometer")
W1, W2, W3 = "partial_agent_results1.json", "partial_agent_results2.json", "partial_agent_results3.json"
EXPECTED_10 = ExpectedInstances.for_routes(
    [str(i) for i in range(10)], owners={str(i): W1 if i < 4 else W2 if i < 7 else W3 for i in range(10)}
)


def _inputs(folder: Path, *names: str) -> list[MergeInput]:
    return [MergeInput(name, load(folder / name)) for name in names]


@pytest.mark.parametrize(
    ("case", "names"),
    [
        ("M1_partial", [W1, "partial_agent_results2.crashed.json", "partial_agent_results3.inprogress.json"]),
        ("M2_final", [W1, W2, W3]),
        ("M6_single_worker", [W1]),
    ],
)
def test_official_merge_cases_are_byte_identical(lb20: Path, case: str, names: list[str]) -> None:
    outcome = merge_results(_inputs(lb20, *names))
    official = (lb20 / "peer_merge" / f"{case}.merged.json").read_bytes()
    assert dumps_results(outcome.results).encode() == official
    assert outcome.complete is (case != "M1_partial")


def test_m6_single_worker_reproduces_the_worker_file(lb20: Path) -> None:
    outcome = merge_results(_inputs(lb20, W1))
    assert dumps_results(outcome.results).encode() == (lb20 / W1).read_bytes()


def test_m5_duplicate_worker_is_refused_with_the_official_message(lb20: Path) -> None:
    log = (lb20 / "peer_merge" / "M5_duplicate_worker.log.txt").read_text()
    official = log.splitlines()[0].removeprefix("ValueError: ")
    with pytest.raises(MergeRefused) as info:
        merge_results(_inputs(lb20, W1, W1))
    assert str(info.value).startswith(official)
    assert W1 in str(info.value)


def test_duplicates_in_a_partial_merge_are_refused(lb20: Path) -> None:
    with pytest.raises(MergeRefused, match="RouteScenario_0_rep0 has more than one record"):
        merge_results(_inputs(lb20, W1, "partial_agent_results1.resumed_after_finish.json", W2))


def test_allow_duplicates_keeps_the_last_record_and_reports_it(lb20: Path) -> None:
    outcome = merge_results(_inputs(lb20, "partial_agent_results2.crashed.json", W2, W1, W3), allow_duplicates=True)
    assert outcome.complete is False  # the totals add up to 13 (the crashed attempt counts), 10 records kept
    ids = [r.route_id for r in outcome.results.records]
    assert len(ids) == len(set(ids)) == 10
    route5 = next(r for r in outcome.results.records if r.route_id == "RouteScenario_5_rep0")
    assert route5.status == "Completed"
    assert any("RouteScenario_5_rep0" in d for d in outcome.diagnostics)


def test_missing_trailing_worker_goes_unnoticed_without_expected_set(lb20: Path) -> None:
    outcome = merge_results(_inputs(lb20, W1, W2))
    assert outcome.complete is True
    assert outcome.results.progress == (7, 7)
    assert any("inferred" in d for d in outcome.diagnostics)


def test_missing_trailing_worker_is_partial_with_expected_set(lb20: Path) -> None:
    outcome = merge_results(_inputs(lb20, W1, W2), EXPECTED_10)
    assert outcome.complete is False
    assert outcome.results.progress == (7, 10)
    assert outcome.results.entry_status == "Started"
    assert outcome.results.global_record is None
    assert outcome.diagnostics == (
        f"missing 3 of 10 instances: RouteScenario_7_rep0, RouteScenario_8_rep0, RouteScenario_9_rep0 "
        f"(expected in {W3})",
    )


def test_complete_merge_with_expected_set_equals_official(lb20: Path) -> None:
    outcome = merge_results(_inputs(lb20, W3, W1, W2), EXPECTED_10)
    assert outcome.diagnostics == ()
    assert dumps_results(outcome.results).encode() == (lb20 / "peer_merge" / "M2_final.merged.json").read_bytes()


def test_record_outside_expected_set_is_refused(lb20: Path) -> None:
    expected = ExpectedInstances.for_routes(["0", "1", "2"])
    with pytest.raises(MergeRefused, match="RouteScenario_3_rep0 outside the expected instances"):
        merge_results(_inputs(lb20, W1), expected)


def test_gap_between_workers_is_refused_without_expected_set(lb20: Path) -> None:
    with pytest.raises(MergeRefused, match="ids jumped from RouteScenario_3_rep0 to RouteScenario_7_rep0"):
        merge_results(_inputs(lb20, W1, W3))


def test_subset_not_starting_at_zero(lb20: Path) -> None:
    with pytest.raises(MergeRefused, match="jumped from  to RouteScenario_4_rep0"):
        merge_results(_inputs(lb20, W2))
    outcome = merge_results(_inputs(lb20, W2), ExpectedInstances.for_routes(["4", "5", "6"]))
    assert outcome.complete
    assert dumps_results(outcome.results).encode() == (lb20 / W2).read_bytes()


def test_differing_sensors_are_refused(lb20: Path) -> None:
    first = load(lb20 / W1)
    other = replace(load(lb20 / W2), sensors=("carla_camera",))
    with pytest.raises(MergeRefused, match="different sensor configurations"):
        merge_results([MergeInput("a", first), MergeInput("b", other)])


def test_only_sensorless_inputs_merge_to_invalid(lb20: Path) -> None:
    outcome = merge_results(_inputs(lb20, "partial_agent_results1.resumed_after_finish.json"))
    assert outcome.results.entry_status == "Invalid"
    assert outcome.messages[-1] == "> Missing 'sensors' data"


def test_crashed_worker_makes_a_complete_merge_crashed(lb20: Path) -> None:
    crashed = load(lb20 / "partial_agent_results2.crashed.json")
    # The crashed file's progress is [2, 3]; pretend its total is 2 so the merge completes.
    crashed = replace(crashed, progress=(2, 2))
    outcome = merge_results([MergeInput(W1, load(lb20 / W1)), MergeInput("w2", crashed)])
    assert outcome.complete
    assert outcome.results.entry_status == "Crashed"
    assert outcome.results.eligible is False


def test_no_input_gives_the_empty_document() -> None:
    outcome = merge_results([])
    assert outcome.results.progress == (0, 0)
    assert outcome.results.records == ()
    assert outcome.results.entry_status == "Started"
    assert outcome.complete is False


@pytest.mark.parametrize(
    "name",
    [
        "palma-or_CARLA-AutonomousDrivingAgent__results_simulation_results.json",
        "Dariorab_AVD__results_simulation_results.json",
    ],
)
def test_old_20_file_merges_alone_and_reproduces_its_figures(real: Path, name: str) -> None:
    stored = load(real / name)
    outcome = merge_results([MergeInput(name, stored)])
    merged = outcome.results
    assert outcome.complete and merged.entry_status == "Finished"
    assert merged.global_record is not None and stored.global_record is not None
    assert merged.global_record.scores_mean == stored.global_record.scores_mean
    assert dict(merged.global_record.infractions) == dict(stored.global_record.infractions)
    assert merged.global_record.status == stored.global_record.status
    assert merged.global_record.exceptions == stored.global_record.exceptions
    assert "yield_emergency_vehicles_infractions" not in dumps_results(merged)


def test_10_single_file_merge_matches_official(real: Path) -> None:
    name = "AGC_Leaderboard_README__lb10_results.json"
    outcome = merge_results([MergeInput(name, load(real / name))])
    official = (real / "peer_merge" / "agc_lb10_single.merged.json").read_bytes()
    assert dumps_results(outcome.results).encode() == official


def test_10_merge_sorts_by_route_and_keeps_worker_local_indices(real: Path) -> None:
    name = "AGC_Leaderboard_README__lb10_results.json"
    base = load(real / name)
    second = replace(
        base, records=(replace(base.records[0], route_id="RouteScenario_1", status="Completed"),), progress=(1, 1)
    )
    outcome = merge_results([MergeInput("w2", second), MergeInput("w1", base)])
    merged = outcome.results
    assert [r.route_id for r in merged.records] == ["RouteScenario_0", "RouteScenario_1"]
    assert [r.index for r in merged.records] == [0, 1]
    assert merged.global_record is not None
    assert merged.global_record.exceptions == (
        ("RouteScenario_1", 0, "Completed"),
        ("RouteScenario_0", 0, "Failed - Agent got blocked"),
    )
    assert merged.entry_status == "Finished with agent errors" and merged.eligible is True


def test_mixed_formats_are_refused(lb20: Path, real: Path) -> None:
    with pytest.raises(MergeRefused, match="mix"):
        merge_results(_inputs(lb20, W1) + _inputs(real, "AGC_Leaderboard_README__lb10_results.json"))


def test_route_records_merge_like_files(lb20: Path) -> None:
    records = [r for name in (W3, W1, W2) for r in load(lb20 / name).records]
    outcome = merge_route_records(records, sensors=load(lb20 / W1).sensors, expected=EXPECTED_10)
    assert dumps_results(outcome.results).encode() == (lb20 / "peer_merge" / "M2_final.merged.json").read_bytes()
    partial = merge_route_records(records[:5], sensors=SENSORS, expected=EXPECTED_10)
    assert partial.results.progress == (5, 10) and not partial.complete


def _as_worker_files(records: list[RouteRecord], cuts: list[int]) -> list[MergeInput]:
    bounds = [0, *sorted(set(cuts)), len(records)]
    files = []
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        if hi <= lo:
            continue
        chunk = tuple(r.with_index(i) for i, r in enumerate(records[lo:hi]))
        files.append(
            MergeInput(f"w{k}", ResultsFile(ResultFormat.V2X, chunk, (len(chunk), len(chunk)), sensors=SENSORS))
        )
    return files


@settings(max_examples=60, deadline=None)
@given(records=record_sets(), data=st.data())
def test_merge_does_not_depend_on_input_order(records: list[RouteRecord], data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(records)), max_size=4))
    files = _as_worker_files(records, cuts)
    shuffled = data.draw(st.permutations(files))
    assert dumps_results(merge_results(files).results) == dumps_results(merge_results(list(shuffled)).results)


@settings(max_examples=60, deadline=None)
@given(records=record_sets(), data=st.data())
def test_complete_merge_equals_scoring_all_records_at_once(records: list[RouteRecord], data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(records)), max_size=4))
    merged = merge_results(_as_worker_files(records, cuts))
    one_run = ResultsFile(ResultFormat.V2X, tuple(records), (len(records), len(records)), sensors=SENSORS)
    assert merged.complete
    assert dumps_results(merged.results) == dumps_results(finalize_results(one_run).results)


@settings(max_examples=40, deadline=None)
@given(records=record_sets(), data=st.data())
def test_route_record_merge_equals_file_merge(records: list[RouteRecord], data: st.DataObject) -> None:
    expected = ExpectedInstances.for_routes([str(i) for i in range(len(records))])
    kept = data.draw(st.lists(st.sampled_from(records), min_size=1, unique_by=lambda r: r.route_id))
    by_records = merge_route_records(kept, sensors=SENSORS, expected=expected)
    files = [
        MergeInput(f"w{i}", ResultsFile(ResultFormat.V2X, (r.with_index(0),), (1, 1), sensors=SENSORS))
        for i, r in enumerate(kept)
    ]
    assert dumps_results(by_records.results) == dumps_results(merge_results(files, expected).results)


def _reps(lb20: Path, routes: list[int], reps: int) -> MergeInput:
    template = load(lb20 / W1).records[0]
    records = tuple(
        replace(template, index=i, route_id=f"RouteScenario_{route}_rep{rep}")
        for i, (route, rep) in enumerate((route, rep) for route in routes for rep in range(reps))
    )
    return MergeInput("w.json", ResultsFile(ResultFormat.V2X, records, (len(records), len(records)), sensors=SENSORS))


def test_repetitions_are_continuous(lb20: Path) -> None:
    outcome = merge_results([_reps(lb20, [0, 1, 2], 2)])
    assert outcome.complete
    assert [r.route_id for r in outcome.results.records][:3] == [
        "RouteScenario_0_rep0",
        "RouteScenario_0_rep1",
        "RouteScenario_1_rep0",
    ]


def test_gap_with_repetitions_is_refused(lb20: Path) -> None:
    with pytest.raises(MergeRefused, match="jumped from RouteScenario_0_rep1 to RouteScenario_2_rep0"):
        merge_results([_reps(lb20, [0, 2], 2)])


def test_10_route_records_merge_with_repetitions(real: Path) -> None:
    record = load(real / "AGC_Leaderboard_README__lb10_results.json").records[0]
    expected = ExpectedInstances.for_routes(["0"], repetitions=2, fmt=ResultFormat.V10)
    assert expected.route_ids == ("RouteScenario_0", "RouteScenario_0")
    partial = merge_route_records([record], sensors=SENSORS, expected=expected, fmt=ResultFormat.V10)
    assert not partial.complete and partial.results.progress == (1, 2)
    full = merge_route_records([record, record], sensors=SENSORS, expected=expected, fmt=ResultFormat.V10)
    assert full.complete
    assert full.results.entry_status == "Finished with agent errors"
    assert json.loads(dumps_results(full.results))["_checkpoint"]["global_record"]["scores_std_dev"] == {
        "score_composed": 0.0,
        "score_penalty": 0.0,
        "score_route": 0.0,
    }
    with pytest.raises(MergeRefused, match="more than one record"):
        merge_route_records([record] * 3, sensors=SENSORS, expected=expected, fmt=ResultFormat.V10)
