"""The criteria on synthetic step observations: keys, message texts and route-ending rules."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.results.scoring import ROUTE_TIMEOUT_MESSAGE
from lbcloud.tracks.sumo.criteria import (
    Collision,
    CriteriaConfig,
    LightAhead,
    Observation,
    RouteCriteria,
    RouteEnd,
)

CONFIG = CriteriaConfig(route_length_m=400.0, timeout_s=200.0, blocked_s=30.0)


def obs(t: float, odometer: float, speed: float = 10.0, road: str = "A", **kw: object) -> Observation:
    return Observation(time=t, x=odometer, y=0.0, z=0.0, speed=speed, road_id=road, odometer=odometer, **kw)  # type: ignore[arg-type]


def kinds(criteria: RouteCriteria) -> list[str]:
    return [event.kind for event in criteria.events]


def test_passing_a_red_stop_line_is_a_red_light_infraction_with_the_official_text() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 98.0, light=LightAhead("J3", 1.5, "r")))
    c.update(obs(1.2, 100.0, road=":J3_0"))
    assert kinds(c) == ["red_light"]
    assert c.events[0].message == "Agent ran a red light J3 at (x=100.0, y=0.0, z=0.0)"


def test_passing_on_green_or_yellow_is_not_an_infraction() -> None:
    for state in ("G", "g", "y"):
        c = RouteCriteria(CONFIG)
        c.update(obs(1.0, 98.0, light=LightAhead("J3", 1.5, state)))
        c.update(obs(1.2, 100.0, road=":J3_0"))
        assert c.events == []


def test_stopping_before_a_red_light_is_not_an_infraction() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 90.0, light=LightAhead("J3", 9.0, "r")))
    c.update(obs(1.2, 91.0, light=LightAhead("J3", 8.0, "r")))
    assert c.events == []


def test_a_collision_is_recorded_once_per_contact_with_the_vehicle_list() -> None:
    c = RouteCriteria(CONFIG)
    hit = (Collision("1007", "vehicle.sumo.car"),)
    c.update(obs(1.0, 10.0, collisions=hit))
    c.update(obs(1.2, 12.0, collisions=hit))
    c.update(obs(9.0, 50.0, collisions=hit))
    assert kinds(c) == ["collisions_vehicle", "collisions_vehicle"]
    assert (
        c.events[0].message
        == "Agent collided against object with type=vehicle.sumo.car and id=1007 at (x=10.0, y=0.0, z=0.0)"
    )


def test_standing_still_for_the_blocked_time_ends_the_route() -> None:
    c = RouteCriteria(CONFIG)
    assert c.update(obs(1.0, 20.0, speed=0.0)) is None
    assert c.update(obs(30.0, 20.0, speed=0.05)) is None
    assert c.update(obs(31.0, 20.0, speed=0.0)) is RouteEnd.BLOCKED
    assert c.events[-1].message == "Agent got blocked at (x=20.0, y=0.0, z=0.0)"
    assert c.route_completion == 5.0


def test_moving_again_resets_the_blocked_clock() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 20.0, speed=0.0))
    c.update(obs(25.0, 20.0, speed=1.0))
    assert c.update(obs(50.0, 21.0, speed=0.0)) is None


def test_running_out_of_time_is_a_route_timeout() -> None:
    c = RouteCriteria(CONFIG)
    assert c.update(obs(200.0, 100.0)) is RouteEnd.TIMED_OUT
    assert c.events[-1].message == ROUTE_TIMEOUT_MESSAGE
    assert c.events[-1].kind == "route_timeout"


def test_leaving_the_route_roads_is_a_deviation() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 50.0))
    assert c.update(obs(1.2, 52.0, road="X", on_route=False)) is RouteEnd.DEVIATED
    assert c.events[-1].message == "Agent deviated from the route at (x=52.0, y=0.0, z=0.0)"
    assert c.route_completion == 12.5


def test_reaching_the_end_completes_with_the_int_100() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 200.0))
    assert c.update(obs(2.0, 395.0)) is None  # within 10 m but not above 99 %
    assert c.route_completion == 98.75
    assert c.update(obs(3.0, 397.0)) is RouteEnd.COMPLETED
    assert c.route_completion == 100 and isinstance(c.route_completion, int)


def test_leaving_sumo_near_the_end_counts_as_arrival() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 370.0))
    gone = replace(obs(1.2, 0.0), present=False, arrived=True)
    assert c.update(gone) is RouteEnd.COMPLETED


def test_completion_is_the_int_0_when_the_ego_never_moved() -> None:
    c = RouteCriteria(CONFIG)
    c.update(obs(1.0, 0.0, speed=0.0))
    assert c.route_completion == 0 and isinstance(c.route_completion, int)


def test_slower_than_the_traffic_ahead_fires_min_speed_events_per_checkpoint() -> None:
    c = RouteCriteria(CONFIG)
    for i in range(1, 41):
        c.update(obs(float(i), i * 5.0, speed=5.0, traffic_speeds=(10.0, 10.0)))
    assert kinds(c) == ["min_speed_infractions", "min_speed_infractions"]
    assert c.events[0].message == "Average speed is 50.0% of the surrounding traffic's one"
    assert c.events[0].value == 50.0


def test_no_traffic_means_no_min_speed_event() -> None:
    c = RouteCriteria(CONFIG)
    for i in range(1, 100):
        if c.update(obs(float(i), i * 5.0, speed=5.0)) is not None:
            break
    assert c.events == []


@given(st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=60))
def test_route_completion_never_decreases_and_stays_within_0_and_100(steps: list[float]) -> None:
    c = RouteCriteria(CriteriaConfig(route_length_m=300.0, timeout_s=1e9, blocked_s=1e9))
    odometer, last = 0.0, 0.0
    for i, advance in enumerate(steps):
        odometer += advance
        ended = c.update(obs(float(i), odometer, speed=advance))
        rc = float(c.route_completion)
        assert last <= rc <= 100.0
        last = rc
        if ended is not None:
            break
