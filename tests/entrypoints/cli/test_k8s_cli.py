"""`lbcloud k8s render-attempt` and the in-pod `prepare-contents` step."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from typer.testing import CliRunner

from lbcloud.entrypoints.cli.main import app

REPO = Path(__file__).resolve().parents[3]
ROUTES = """<?xml version="1.0" encoding="utf-8"?>
<routes>
  <route id="1" town="Town12"><waypoints><position x="0" y="0" z="0"/></waypoints></route>
  <route id="2" town="Town13"><waypoints><position x="1" y="1" z="0"/></waypoints></route>
</routes>
"""


def test_render_attempt_prints_a_valid_job_and_network_policy() -> None:
    result = CliRunner().invoke(
        app, ["k8s", "render-attempt", "--track", "sumo-test", "--route", "0", "--submission", "12",
              "--attempt", "34", "--agent-image", "registry.example.org/t/a:1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    objects = list(yaml.safe_load_all(result.output))
    assert [o["kind"] for o in objects] == ["Job", "NetworkPolicy"]
    job = objects[0]
    assert job["metadata"]["name"] == "lb-sumo-test-s12-r0-a34"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.org/t/a:1"
    assert "&id" not in result.output, "no YAML anchors in what operators read"
    for obj in objects:
        kubernetes_validate.validate(obj, "1.33.0", strict=True)


def test_render_attempt_for_carla_with_compat_1_20() -> None:
    result = CliRunner().invoke(
        app, ["--config", str(REPO / "deploy" / "tracks" / "carla.yaml"), "k8s", "render-attempt",
              "--track", "SENSORS", "--route", "7", "--compat", "1.20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = next(yaml.safe_load_all(result.output))
    assert "podFailurePolicy" not in job["spec"]
    assert [c["name"] for c in job["spec"]["template"]["spec"]["containers"]] == ["agent", "simulator", "reporter"]


def test_render_attempt_of_an_unknown_track_is_one_clear_error() -> None:
    result = CliRunner().invoke(app, ["k8s", "render-attempt", "--track", "nope", "--route", "0"])
    assert result.exit_code != 0
    assert "unknown track 'nope'" in str(result.exception) + result.output


def test_prepare_contents_copies_and_keeps_only_the_attempts_route(tmp_path: Path) -> None:
    staging, contents = tmp_path / "staging", tmp_path / "contents"
    (staging / "routes").mkdir(parents=True)
    (staging / "leaderboard").mkdir()
    (staging / "leaderboard" / "evaluator.py").write_text("print('hi')\n")
    (staging / "routes" / "routes_testing.xml").write_text(ROUTES)
    result = CliRunner().invoke(
        app, ["k8s", "prepare-contents", "--staging", str(staging), "--contents", str(contents),
              "--routes-file", "routes/routes_testing.xml", "--only-route", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (contents / "leaderboard" / "evaluator.py").is_file()
    routes = (contents / "routes" / "routes_testing.xml").read_text()
    assert 'id="2"' in routes and 'id="1"' not in routes
    assert 'id="1"' in (staging / "routes" / "routes_testing.xml").read_text(), "staging is left alone"


def test_prepare_contents_refuses_a_route_that_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "staging" / "routes").mkdir(parents=True)
    (tmp_path / "staging" / "routes" / "r.xml").write_text(ROUTES)
    result = CliRunner().invoke(
        app, ["k8s", "prepare-contents", "--staging", str(tmp_path / "staging"), "--contents",
              str(tmp_path / "contents"), "--routes-file", "routes/r.xml", "--only-route", "9"],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "has no route with id '9'" in str(result.exception)
