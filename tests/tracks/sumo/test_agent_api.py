"""Sensor validation and the icon mapping of the SUMO agent API."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbcloud.tracks.sumo.agent_api import (
    MAX_RADAR_RANGE_M,
    SENSOR_ICONS,
    AutonomousAgent,
    InvalidSensors,
    VehicleControl,
    validate_sensors,
)

LEADERBOARD_ICONS = {
    "carla_camera",
    "carla_lidar",
    "carla_radar",
    "carla_gnss",
    "carla_imu",
    "carla_opendrive_map",
    "carla_speedometer",
}


def test_every_sensor_type_maps_to_a_leaderboard_icon() -> None:
    assert set(SENSOR_ICONS.values()) <= LEADERBOARD_ICONS


@given(st.permutations(sorted(SENSOR_ICONS)).flatmap(lambda types: st.integers(0, len(types)).map(lambda n: types[:n])))
def test_any_set_of_distinct_types_is_valid_and_keeps_declaration_order(types: list[str]) -> None:
    specs = [{"type": kind, "id": f"s{i}"} for i, kind in enumerate(types)]
    configs = validate_sensors(specs)
    assert [c.type for c in configs] == types
    assert [c.icon for c in configs] == [SENSOR_ICONS[t] for t in types]


@pytest.mark.parametrize(
    ("specs", "problem"),
    [
        ("speed", "list"),
        ([{"type": "sensor.camera.rgb", "id": "cam"}], "unknown type"),
        ([{"type": "sumo.speedometer"}], "'id'"),
        ([{"type": "sumo.speedometer", "id": "a"}, {"type": "sumo.speedometer", "id": "b"}], "only one"),
        ([{"type": "sumo.speedometer", "id": "a"}, {"type": "sumo.gnss", "id": "a"}], "duplicate id"),
        ([{"type": "sumo.radar", "id": "r", "range": MAX_RADAR_RANGE_M + 1}], "range"),
        ([{"type": "sumo.radar", "id": "r", "range": 0}], "range"),
        ([{"type": "sumo.route_map", "id": "m", "horizon": "far"}], "horizon"),
        (["sumo.gnss"], "not a mapping"),
    ],
)
def test_sensors_breaking_a_rule_are_rejected_with_the_reason(specs: object, problem: str) -> None:
    with pytest.raises(InvalidSensors, match=problem):
        validate_sensors(specs)


def test_radar_range_defaults_and_is_kept() -> None:
    configs = validate_sensors([{"type": "sumo.radar", "id": "r"}])
    assert configs[0].range == 50.0
    assert validate_sensors([{"type": "sumo.radar", "id": "r", "range": 80}])[0].range == 80.0


def test_base_agent_stands_still_and_keeps_its_global_plan() -> None:
    agent = AutonomousAgent("127.0.0.1", 2000)
    agent.set_global_plan([(1.0, 2.0, 0.0)])
    assert agent.global_plan == [(1.0, 2.0, 0.0)]
    assert agent.run_step({}, 0.0) == VehicleControl(brake=1.0)
    assert agent.sensors() == []


@pytest.mark.parametrize(
    "control",
    [None, "go", VehicleControl(throttle=float("nan")), VehicleControl(brake=float("inf"))],
)
def test_unusable_controls_are_agent_faults(control: object) -> None:
    from lbcloud.tracks.sumo.agent_protocol import control_message

    with pytest.raises(TypeError):
        control_message(control)


def test_a_control_like_object_is_accepted() -> None:
    from types import SimpleNamespace

    from lbcloud.tracks.sumo.agent_protocol import control_message, parse_control

    control = parse_control(control_message(SimpleNamespace(throttle=1, steer=0, brake=0)))
    assert control == VehicleControl(throttle=1.0)
