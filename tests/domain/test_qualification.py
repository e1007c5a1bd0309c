"""The qualification rule: thresholds met, missed, missing; loose metric names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.qualification import combine, evaluate_qualification, gate_message, global_values, metric_key
from lbcloud.domain.results.model import EVALAI_KEYS_2X, LABELS_2X
from lbcloud.domain.tracks import Qualification

GATE = Qualification("sumo-qualifier", (("Driving score", 50.0), ("Route completion", 80.0)))


def test_label_evalai_key_and_lowercase_key_name_the_same_metric() -> None:
    for label, key in zip(LABELS_2X, EVALAI_KEYS_2X, strict=True):
        assert metric_key(label) == metric_key(key), (label, key)
    assert metric_key("Avg. driving score") == metric_key("driving_score") == "driving_score"


def test_every_threshold_met_passes() -> None:
    verdict = evaluate_qualification(GATE, {"Avg. driving score": "62.5", "Avg. route completion": 91})
    assert verdict.passed
    assert "Driving score 62.5 >= 50" in verdict.detail


def test_one_missed_threshold_fails_and_says_which() -> None:
    verdict = evaluate_qualification(GATE, {"driving_score": 70.0, "route_completion": 79.9})
    assert not verdict.passed
    assert "Route completion 79.9 < 80" in verdict.detail


def test_missing_or_unreadable_metrics_fail() -> None:
    assert not evaluate_qualification(GATE, {}).passed
    assert not evaluate_qualification(GATE, {"Driving score": "#", "Route completion": 100}).passed
    assert not evaluate_qualification(GATE, {"Driving score": True, "Route completion": 100}).passed


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_passing_is_exactly_meeting_every_minimum(ds: float, rc: float) -> None:
    verdict = evaluate_qualification(GATE, {"Driving score": ds, "Route completion": rc})
    assert verdict.passed == (ds >= 50.0 and rc >= 80.0)


def test_combined_gates_pass_only_together() -> None:
    ok = evaluate_qualification(GATE, {"Driving score": 90, "Route completion": 90})
    strict = evaluate_qualification(Qualification("sumo-qualifier", (("Driving score", 95.0),)), {"Driving score": 90})
    combined = combine([ok, strict])
    assert combined is not None and not combined.passed
    assert combine([]) is None


def test_gate_message_names_the_qualifier_and_thresholds() -> None:
    message = gate_message("alpha", GATE, "sumo-test")
    assert "'sumo-qualifier'" in message and "Driving score >= 50" in message and "'sumo-test'" in message


def test_global_values_pairs_labels_and_values() -> None:
    assert global_values(["a", "b"], ["1", "2"]) == {"a": "1", "b": "2"}
