"""Reading and writing result files: byte-exact round trips, tolerant reading, precise errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.errors import ResultFileError
from lbcloud.domain.results.model import YIELD_KEY, Json, ResultFormat, empty_results
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.writer import dumps_indent4, dumps_results
from tests.domain.results.conftest import load


def _current_format_files(leaderboard_fixtures: Path) -> list[Path]:
    paths = sorted((leaderboard_fixtures / "lb20").rglob("*.json"))
    paths = [p for p in paths if p.parent.name.endswith(".evalai") is False or p.name == "metadata.json"]
    return paths


def test_every_current_format_file_round_trips_byte_for_byte(leaderboard_fixtures: Path) -> None:
    paths = _current_format_files(leaderboard_fixtures)
    assert len(paths) >= 10
    for path in paths:
        data = path.read_bytes()
        assert dumps_results(parse_results(data, path.name)).encode() == data, path.name


def test_10_files_round_trip_with_sorted_keys(real: Path) -> None:
    for name in [
        "AGC_Leaderboard_README__lb10_results.json",
        "JackZihengChen_CARLA-Modified-Pipeline__simulation_results.json",
    ]:
        data = (real / name).read_bytes()
        results = parse_results(data, name)
        assert results.format is ResultFormat.V10
        assert dumps_results(results).encode() == data


def test_old_20_file_reads_with_current_yield_key_in_place(real: Path) -> None:
    results = load(real / "palma-or_CARLA-AutonomousDrivingAgent__results_simulation_results.json")
    assert results.format is ResultFormat.V2X
    record = results.records[0]
    keys = list(record.infractions)
    assert keys[7] == YIELD_KEY
    assert results.global_record is not None
    assert list(results.global_record.infractions)[7] == YIELD_KEY
    assert results.global_record.total_length is None
    assert results.global_record.scores_std_dev is not None
    text = dumps_results(results)
    assert "yield_emergency_vehicles_infractions" not in text
    assert '"NaN"' in text


def test_numbers_keep_their_json_types(lb20: Path) -> None:
    results = load(lb20 / "partial_agent_results3.inprogress.json")
    setup_failed = results.records[1]
    assert setup_failed.scores.score_route == 0 and type(setup_failed.scores.score_route) is int
    assert type(setup_failed.meta.duration_game) is float


def test_unknown_status_and_extra_keys_are_kept() -> None:
    doc = json.loads(dumps_results(empty_results()))
    doc["_checkpoint"]["records"] = [
        {
            "index": 0,
            "route_id": "RouteScenario_3_rep0",
            "status": "Failed - TickRuntime",
            "timestamp": "2024-01-01",
            "town_name": "Town12",
        }
    ]
    results = parse_results(json.dumps(doc), "x.json")
    record = results.records[0]
    assert record.status == "Failed - TickRuntime"
    assert record.extra == (("timestamp", "2024-01-01"), ("town_name", "Town12"))
    written = json.loads(dumps_results(results))["_checkpoint"]["records"][0]
    assert list(written) == [
        "index",
        "route_id",
        "status",
        "num_infractions",
        "infractions",
        "scores",
        "meta",
        "timestamp",
        "town_name",
    ]
    assert written["num_infractions"] == 0


def test_empty_documents_write_the_official_skeletons() -> None:
    assert json.loads(dumps_results(empty_results())) == {
        "_checkpoint": {"global_record": {}, "progress": [0, 0], "records": []},
        "entry_status": "Started",
        "eligible": False,
        "sensors": [],
        "values": [],
        "labels": [],
    }
    skeleton = dumps_results(empty_results(ResultFormat.V10))
    assert json.loads(skeleton)["eligible"] == ""
    assert parse_results(skeleton, "s.json").format is ResultFormat.V10


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda d: d["_checkpoint"]["records"][3]["scores"].__setitem__("score_route", "61.2"),
            "_checkpoint.records[3].scores.score_route",
        ),
        (
            lambda d: d["_checkpoint"]["records"][1].__setitem__("route_id", "RouteScenario_x_rep0"),
            "_checkpoint.records[1].route_id",
        ),
        (
            lambda d: d["_checkpoint"]["records"][0]["infractions"]["red_light"].append(3),
            "_checkpoint.records[0].infractions.red_light[0]",
        ),
        (lambda d: d["_checkpoint"].pop("progress"), "_checkpoint.progress"),
        (lambda d: d.pop("sensors"), "sensors"),
        (
            lambda d: d["_checkpoint"]["records"][2].__setitem__("num_infractions", True),
            "_checkpoint.records[2].num_infractions",
        ),
        (lambda d: d["_checkpoint"].__setitem__("records", {}), "_checkpoint.records"),
        (lambda d: d["_checkpoint"]["progress"].append(1), "_checkpoint.progress"),
    ],
)
def test_malformed_documents_name_the_json_path(lb20: Path, mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((lb20 / "partial_agent_results1.json").read_text())
    mutate(doc)
    with pytest.raises(ResultFileError) as info:
        parse_results(json.dumps(doc), "worker1.json")
    assert info.value.json_path == path
    assert str(info.value).startswith(f"worker1.json: {path}: ")
    assert "\n" not in str(info.value)


def test_truncated_json_names_line_and_column(lb20: Path) -> None:
    data = (lb20 / "partial_agent_results1.json").read_bytes()[:500]
    with pytest.raises(ResultFileError, match=r"^w\.json: line \d+ column \d+: invalid JSON"):
        parse_results(data, "w.json")


def test_empty_and_binary_files_are_errors() -> None:
    with pytest.raises(ResultFileError, match="empty"):
        parse_results(b"  \n", "e.json")
    with pytest.raises(ResultFileError, match="UTF-8"):
        parse_results(b"\xff\xfe\x00", "b.json")
    with pytest.raises(ResultFileError, match="expected an object"):
        parse_results(b"[]", "l.json")


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)


@given(document=_json_values, sort_keys=st.booleans())
def test_fast_writer_equals_json_dumps_indent_4(document: Json, sort_keys: bool) -> None:
    assert dumps_indent4(document, sort_keys=sort_keys) == json.dumps(document, indent=4, sort_keys=sort_keys)
