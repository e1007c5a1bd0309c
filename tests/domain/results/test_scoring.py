"""Per-route scoring: penalties of lb1.0/2.0/2.1, driving score, statuses and built records."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.results.model import INFRACTION_KEYS_2X
from lbcloud.domain.results.scoring import (
    ROUTE_TIMEOUT_MESSAGE,
    SCENARIO_TIMEOUT_MESSAGE,
    FailureReason,
    InfractionEvent,
    blocked_message,
    build_route_record,
    collision_kind,
    collision_message,
    deviation_message,
    events_from_infractions,
    infraction_penalty,
    min_speed_message,
    off_road_message,
    parse_off_road,
    red_light_message,
    rescore_record,
    route_scores,
    route_status,
)
from lbcloud.domain.tracks import ScorerVersion
from tests.domain.results.conftest import load

SPEC_EVENTS = [
    InfractionEvent("collisions_vehicle", collision_message("vehicle.lincoln.mkz_2020", 1, 1.0, 2.0, 3.0)),
    InfractionEvent("red_light", red_light_message(2871, 1.0, 2.0, 3.0)),
    InfractionEvent("min_speed_infractions", min_speed_message(91.05), 91.05),
]


def test_spec_example_penalty_differs_between_20_and_21() -> None:
    assert round(infraction_penalty(SPEC_EVENTS, ScorerVersion.LB20), 6) == 0.408723
    assert round(infraction_penalty(SPEC_EVENTS, ScorerVersion.LB21), 6) == 0.468209


def test_lb10_ignores_min_speed_and_multiplies_collisions() -> None:
    assert infraction_penalty(SPEC_EVENTS, ScorerVersion.LB10) == 0.6 * 0.7


def test_route_ending_events_carry_no_penalty() -> None:
    events = [
        InfractionEvent("route_dev", deviation_message(0, 0, 0)),
        InfractionEvent("vehicle_blocked", blocked_message(0, 0, 0)),
        InfractionEvent("route_timeout", ROUTE_TIMEOUT_MESSAGE),
    ]
    for scorer in ScorerVersion:
        assert infraction_penalty(events, scorer) == 1.0


def test_off_road_multiplies_in_every_version() -> None:
    events = [InfractionEvent("outside_route_lanes", off_road_message(35.617, 10.0), 10.0)]
    assert infraction_penalty(events, ScorerVersion.LB20) == pytest.approx(0.9)
    assert infraction_penalty(events, ScorerVersion.LB21) == pytest.approx(0.9)
    assert infraction_penalty(events, ScorerVersion.LB10) == pytest.approx(0.9)


def test_scores_keep_int_route_completion_and_round_to_six_decimals() -> None:
    scores = route_scores(100, SPEC_EVENTS, ScorerVersion.LB20)
    assert scores.score_route == 100 and isinstance(scores.score_route, int)
    assert scores.score_penalty == 0.408723
    assert scores.score_composed == 40.8723
    never_started = route_scores(0, [], ScorerVersion.LB20)
    assert isinstance(never_started.score_route, int)
    assert isinstance(never_started.score_composed, float) and never_started.score_composed == 0.0
    assert never_started.score_penalty == 1.0


@pytest.mark.parametrize(
    "case",
    [
        (100, 0, None, False, None, "Perfect"),
        (100, 1, None, False, None, "Completed"),
        (100, 0, "Agent crashed", True, None, "Perfect"),
        (50.0, 0, None, False, None, "Failed"),
        (50.0, 0, "Agent crashed", False, None, "Failed - Agent crashed"),
        (50.0, 1, "Simulation crashed", True, None, "Failed - Agent timed out"),
        (50.0, 2, None, True, "Agent got blocked", "Failed - Agent got blocked"),
        (50.0, 1, "Agent crashed", False, "Agent deviated from the route", "Failed - Agent deviated from the route"),
    ],
)
def test_which_status_text_wins(case: tuple[float, int, str | None, bool, str | None, str]) -> None:
    rc, count, failure, timed_out, ending, expected = case
    assert route_status(rc, count, failure, timed_out=timed_out, route_ending=ending) == expected


def test_build_route_record_reproduces_fixture_route_3(lb20: Path) -> None:
    stored = load(lb20 / "partial_agent_results1.json").records[3]
    events = [
        InfractionEvent("route_timeout", ROUTE_TIMEOUT_MESSAGE),
        InfractionEvent("scenario_timeouts", SCENARIO_TIMEOUT_MESSAGE),
        InfractionEvent("min_speed_infractions", min_speed_message(45.9), 45.9),
        InfractionEvent("min_speed_infractions", min_speed_message(72.14), 72.14),
        InfractionEvent("outside_route_lanes", stored.messages("outside_route_lanes")[0], 0.51),
    ]
    built = build_route_record(
        index=3,
        route_id="RouteScenario_3_rep0",
        route_completion=61.2,
        events=events,
        route_length=11334.7741,
        duration_game=2511.1,
        duration_system=8830.2641,
        scorer=ScorerVersion.LB20,
    )
    assert built.status == "Failed - Agent timed out"
    assert built.num_infractions == 5
    assert built.scores == stored.scores
    assert built.meta == stored.meta
    assert list(built.infractions) == list(INFRACTION_KEYS_2X)


def test_build_route_record_setup_failure_is_zero_route() -> None:
    record = build_route_record(
        index=0,
        route_id="RouteScenario_8_rep0",
        route_completion=0,
        events=[],
        route_length=100.0,
        duration_game=0.0,
        duration_system=0.0,
        failure=FailureReason.AGENT_SETUP_FAILED,
    )
    assert record.status == "Failed - Agent couldn't be set up"
    assert record.scores.score_route == 0 and isinstance(record.scores.score_route, int)
    assert record.num_infractions == 0


def test_build_route_record_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown infraction kind"):
        build_route_record(
            index=0,
            route_id="RouteScenario_0_rep0",
            route_completion=0,
            events=[InfractionEvent("speeding", "x")],
            route_length=1.0,
            duration_game=0.0,
            duration_system=0.0,
        )


def test_collision_kinds_follow_type_ids() -> None:
    assert collision_kind("static.prop.constructioncone") == "collisions_layout"
    assert collision_kind("traffic.traffic_light") == "collisions_layout"
    assert collision_kind("static.sidewalk") is None
    assert collision_kind("vehicle.tesla.model3") == "collisions_vehicle"
    assert collision_kind("walker.pedestrian.0001") == "collisions_pedestrian"
    assert collision_kind("sensor.other") is None


def test_off_road_message_round_trips() -> None:
    assert parse_off_road(off_road_message(35.6171, 0.5123)) == (35.617, 0.51)
    assert parse_off_road("Agent ran a red light") is None


def test_every_fixture_record_rescores_to_its_stored_scores(lb20: Path, real: Path) -> None:
    files = [*sorted(lb20.glob("*.json")), *sorted(real.glob("*.json"))]
    checked = 0
    for path in files:
        results = load(path)
        scorer = ScorerVersion.LB10 if results.format.value == "1.0" else ScorerVersion.LB20
        for record in results.records:
            assert rescore_record(record, scorer) == record, (path.name, record.route_id)
            checked += 1
    assert checked > 20


def test_rescoring_20_file_under_21_changes_penalty(lb20: Path) -> None:
    record = load(lb20 / "partial_agent_results1.json").records[1]
    rescored = rescore_record(record, ScorerVersion.LB21)
    assert rescored.scores.score_penalty == 0.468209
    assert rescored.scores.score_composed == 46.820863  # DS uses the unrounded IP
    assert rescored.status == record.status


_event_kinds = st.sampled_from(
    [k for k in INFRACTION_KEYS_2X if k not in ("min_speed_infractions", "outside_route_lanes")]
)


@st.composite
def _events(draw: st.DrawFn) -> list[InfractionEvent]:
    events: list[InfractionEvent] = []
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            p = round(draw(st.floats(0, 99.99)), 2)
            events.append(InfractionEvent("min_speed_infractions", min_speed_message(p), p))
        elif choice == 1:
            q = round(draw(st.floats(0, 100)), 2)
            events.append(InfractionEvent("outside_route_lanes", off_road_message(12.5, q), q))
        else:
            events.append(InfractionEvent(draw(_event_kinds), "message"))
    return events


@given(events=_events(), scorer=st.sampled_from(list(ScorerVersion)))
def test_penalty_is_between_zero_and_one(events: list[InfractionEvent], scorer: ScorerVersion) -> None:
    assert 0.0 <= infraction_penalty(events, scorer) <= 1.0


@given(events=_events(), scorer=st.sampled_from([ScorerVersion.LB20, ScorerVersion.LB21]))
def test_messages_give_back_the_same_penalty(events: list[InfractionEvent], scorer: ScorerVersion) -> None:
    lists: dict[str, list[str]] = {k: [] for k in INFRACTION_KEYS_2X}
    for event in events:
        lists[event.kind].append(event.message)
    rebuilt = events_from_infractions({k: tuple(v) for k, v in lists.items()})
    assert round(infraction_penalty(rebuilt, scorer), 6) == pytest.approx(
        round(infraction_penalty(events, scorer), 6), abs=1.1e-6
    )


@given(data=st.data(), scorer=st.sampled_from(list(ScorerVersion)))
def test_rescoring_a_record_under_its_own_scorer_changes_nothing(data: st.DataObject, scorer: ScorerVersion) -> None:
    from tests.domain.results.strategies import route_record

    record = data.draw(route_record(3, scorer=scorer))
    assert rescore_record(record, scorer) == record
