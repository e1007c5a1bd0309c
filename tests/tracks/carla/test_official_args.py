"""Every CARLA track's rendered evaluator command parses with the official parser of its branch
(copied in standin/.../official_parsers.py with its citation) into the values the official cloud uses."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
from argparse import ArgumentParser
from pathlib import Path
from types import ModuleType

import pytest

from lbcloud.adapters.backends.kubernetes.manifests import (
    RECORDINGS_DIR,
    KubernetesConfig,
    _placeholders,
    render_command,
    render_job,
)
from lbcloud.domain.carla import CODENAMES, codename, leaderboard_environment
from lbcloud.domain.tracks import Track
from lbcloud.settings import load_settings
from tests.adapters.backends.kubernetes.specs import attempt_spec
from tests.tracks.carla.shell_pods import CONTENTS
from tests.tracks.carla.test_standin_kubernetes import REPO

TRACKS = load_settings(REPO / "deploy/tracks/carla.yaml").track_map()
CODENAME_OF = {
    "SENSORS": "SENSORS", "MAP": "MAP", "SENSORS_QUALIFIER": "SENSORS_QUALIFIER", "MAP_QUALIFIER": "MAP_QUALIFIER",
    "LB21-SENSORS": "SENSORS", "LB21-MAP": "MAP", "LB1-SENSORS": "SENSORS", "LB1-MAP": "MAP",
}  # fmt: skip


def _official() -> ModuleType:
    path = CONTENTS / "leaderboard/leaderboard/official_parsers.py"
    spec = importlib.util.spec_from_file_location("official_parsers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parser(track: Track) -> ArgumentParser:
    official = _official()
    parser: ArgumentParser = official.parser_10() if track.scorer.value == "lb1.0" else official.parser_20()
    return parser


def _argv(track: Track, *, repetition: int = 0, env: dict[str, str]) -> list[str]:
    """The evaluator's argv as sh expands the rendered command line in the agent container."""
    spec = attempt_spec(track=track, route_id="12", repetition=repetition)
    spec = dataclasses.replace(spec, seed=track.seed_for(repetition))
    assert track.images is not None
    line = render_command(track.images.evaluator_command, _placeholders(spec, track.images.simulator_port))
    out = subprocess.run(
        ["/bin/sh", "-c", f"set -u; set -- {line}; printf '%s\\0' \"$@\""],
        env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, check=True,
    )  # fmt: skip
    words = out.stdout.decode().split("\0")[:-1]
    assert words[:3] == ["python3", "-u", "/lbcloud/contents/leaderboard/leaderboard/leaderboard_evaluator.py"]
    return words[3:]


def test_every_carla_track_is_covered() -> None:
    assert set(TRACKS) == set(CODENAME_OF)


@pytest.mark.parametrize("name", sorted(CODENAME_OF))
@pytest.mark.parametrize("repetition", [0, 4])
def test_rendered_command_parses_with_the_official_parser_of_its_branch(name: str, repetition: int) -> None:
    track = TRACKS[name]
    env = {"TEAM_AGENT": "/workspace/agent.py", "TEAM_CONFIG": "/workspace/config.yaml"}
    args = _parser(track).parse_args(_argv(track, repetition=repetition, env=env))
    assert args.track == CODENAME_OF[name] == codename(track)
    assert args.agent == "/workspace/agent.py" and args.agent_config == "/workspace/config.yaml"
    assert args.routes == f"/lbcloud/contents/routes/{Path(track.routes_file).name}"
    assert args.routes_subset == "12" and args.repetitions == 1
    assert args.resume is False, "--resume is type=bool: any value given would turn it on"
    assert args.record == RECORDINGS_DIR, "recorder files land where the simulator container writes them"
    assert args.debug == 0
    if track.scorer.value == "lb1.0":
        assert args.timeout == "60.0" and args.trafficManagerSeed == "0", "the official defaults, seed 0 always"
        assert args.scenarios.endswith("all_towns_traffic_scenarios_private.json")
        assert codename(track) in ("SENSORS", "MAP")
    else:
        assert args.timeout == 300.0 and args.traffic_manager_seed == 0, "the official defaults, seed 0 always"
        assert codename(track) in CODENAMES


@pytest.mark.parametrize("name", ["SENSORS", "LB1-SENSORS"])
def test_an_unset_team_config_parses_as_the_official_empty_default(name: str) -> None:
    track = TRACKS[name]
    args = _parser(track).parse_args(_argv(track, env={"TEAM_AGENT": "/workspace/agent.py"}))
    assert args.agent_config == ""


def test_qualifier_tracks_select_qualifier_routes_and_gate_on_the_0_to_100_scale() -> None:
    assert TRACKS["SENSORS"].qualification is not None and TRACKS["MAP"].qualification is not None
    assert TRACKS["SENSORS"].qualification.track == "SENSORS_QUALIFIER"
    assert TRACKS["MAP"].qualification.track == "MAP_QUALIFIER"
    for gate in (TRACKS["SENSORS"].qualification, TRACKS["MAP"].qualification):
        assert all(minimum >= 1 for _, minimum in gate.thresholds), "scores are 0-100, not 0-1"
    assert TRACKS["SENSORS_QUALIFIER"].routes_file.endswith("routes_qualifier.xml")


def test_official_budgets_no_wall_clock_deadline_and_the_800_s_watchdog() -> None:
    for track in TRACKS.values():
        assert track.attempt_budget_s(5000.0) == 0.0
        assert track.silence_timeout_s == 800
        spec = dataclasses.replace(attempt_spec(track=track), budget_s=track.attempt_budget_s(5000.0))
        job = render_job(spec, KubernetesConfig())
        assert "activeDeadlineSeconds" not in job["spec"]["template"]["spec"]


def test_the_agent_gets_the_official_environment() -> None:
    track = TRACKS["MAP_QUALIFIER"]
    env = leaderboard_environment(track, contents="/lbcloud/contents", routes="/r.xml", route="3")
    assert env == {
        "CARLA_ROOT": "/lbcloud/contents/CARLA",
        "SCENARIO_RUNNER_ROOT": "/lbcloud/contents/scenario_runner",
        "LEADERBOARD_ROOT": "/lbcloud/contents/leaderboard",
        "CHALLENGE_TRACK_CODENAME": "MAP_QUALIFIER",
        "ROUTES": "/r.xml",
        "ROUTES_SUBSET": "3",
        "REPETITIONS": "1",
        "DEBUG_CHALLENGE": "0",
    }
