"""EvalAI files: results.json, stdout.txt and lowercase keys, byte for byte with the reference converters."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lbcloud.domain.results.evalai_format import (
    NO_DATA_TEXT,
    accuracies,
    dumps_evalai_results,
    evalai_results,
    lowercase_accuracies,
    stdout_summary,
)
from lbcloud.domain.results.model import EVALAI_KEYS_2X
from tests.domain.results.conftest import load

CASES = ["M1_partial", "M2_final", "M6_single_worker"]


@pytest.mark.parametrize("case", CASES)
def test_results_json_is_byte_identical(lb20: Path, case: str) -> None:
    merged = load(lb20 / "peer_merge" / f"{case}.merged.json")
    official = (lb20 / "peer_merge" / f"{case}.evalai" / "results.json").read_bytes()
    assert dumps_evalai_results(merged).encode() == official


@pytest.mark.parametrize("case", CASES)
def test_stdout_is_byte_identical(lb20: Path, case: str) -> None:
    merged = load(lb20 / "peer_merge" / f"{case}.merged.json")
    official = (lb20 / "peer_merge" / f"{case}.evalai" / "stdout.txt").read_bytes()
    assert stdout_summary(merged).encode() == official


def test_no_data_text() -> None:
    assert stdout_summary(None) == NO_DATA_TEXT
    assert "avaialable" in NO_DATA_TEXT and NO_DATA_TEXT.endswith("\n")


def test_split_name_is_a_parameter(lb20: Path) -> None:
    merged = load(lb20 / "peer_merge" / "M2_final.merged.json")
    payload = evalai_results(merged, split="qualifier")
    assert payload[0]["split"] == "qualifier"
    assert list(json.loads(json.dumps(payload))[0]["accuracies"]) == list(EVALAI_KEYS_2X)


def test_10_results_are_12_sorted_keys(real: Path) -> None:
    merged = load(real / "peer_merge" / "agc_lb10_single.merged.json")
    text = dumps_evalai_results(merged)
    payload = json.loads(text)
    acc = payload[0]["accuracies"]
    assert len(acc) == 12 and list(acc) == sorted(acc)
    assert list(payload[0]) == ["accuracies", "show_to_participant", "split"]
    assert acc["Driving score"] == 7.949048566688721


def test_lowercase_keys_use_agent_blocked(lb20: Path) -> None:
    merged = load(lb20 / "peer_merge" / "M2_final.merged.json")
    lower = lowercase_accuracies(accuracies(merged))
    assert lower["driving_score"] == "46.574533"
    assert lower["agent_blocked"] == "0.016"
    assert lower["off-road_infractions"] == "0.156"
    assert len(lower) == 15


def test_unknown_sensor_icon_is_printed_by_name(lb20: Path) -> None:
    merged = replace(load(lb20 / "peer_merge" / "M1_partial.merged.json"), sensors=("sumo_lidar", "carla_imu"))
    text = stdout_summary(merged)
    assert "  - 1 sumo_lidar\n  - 1 IMU\n" in text
