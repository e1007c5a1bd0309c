"""deploy/tracks/carla-workstation.yaml: valid settings whose containers match the official run scripts."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

from lbcloud.adapters.backends.docker.plans import (
    DockerConfig,
    HostPaths,
    ImageFacts,
    agent_plan,
    simulator_plan,
)
from lbcloud.adapters.backends.kubernetes.carla_wrapper import TRUSTED_SHELL_SCRIPT
from lbcloud.domain.submissions import AgentKind, AgentRef
from lbcloud.services.ports import AttemptSpec
from lbcloud.settings import load_settings

TRACK_FILE = Path(__file__).resolve().parents[2] / "deploy" / "tracks" / "carla-workstation.yaml"
TEAM = ImageFacts(
    ref="my-team/agent:1", id="sha256:" + "12" * 32, user="",
    env=(("TEAM_AGENT", "/workspace/team_code/npc_agent.py"), ("PYTHONPATH", "/workspace/team_code")),
)  # fmt: skip


def _spec() -> AttemptSpec:
    settings = load_settings(TRACK_FILE)
    return AttemptSpec(
        attempt_id=4, attempt_number=1, submission_id=2, task_id=9, team="lab", track=settings.track("SENSORS"),
        agent=AgentRef(AgentKind.IMAGE, TEAM.ref), route_id="17", repetition=0, budget_s=3600.0, token="t",
    )  # fmt: skip


def test_the_workstation_file_selects_the_docker_backend_with_one_gpu_slot() -> None:
    settings = load_settings(TRACK_FILE)
    assert settings.backend == "docker"
    assert settings.docker.gpus == ["0"] and settings.docker.slots == 1
    assert settings.track("SENSORS").pool.gpus_per_attempt == 1


def test_the_simulator_renders_off_screen_on_the_slots_gpu(tmp_path: Path) -> None:
    plan = simulator_plan(_spec(), DockerConfig(instance="t"), HostPaths(folder=tmp_path), "0")
    argv = [*plan.entrypoint, *plan.command]
    assert argv[:4] == ["/home/carla/CarlaUE4.sh", "-vulkan", "-RenderOffScreen", "-nosound"]
    assert "-carla-rpc-port=2000" in argv
    assert "-ini:[/Script/Engine.RendererSettings]:r.GraphicsAdapter=0" in argv
    [request] = plan.create_kwargs()["device_requests"]
    assert request["DeviceIDs"] == ["0"]


def test_the_team_image_runs_the_leaderboard_as_the_official_script_does(tmp_path: Path) -> None:
    paths = HostPaths(folder=tmp_path, contents=(("/workspace", tmp_path / "c"),), routes=tmp_path / "routes")
    plan = agent_plan(_spec(), DockerConfig(instance="t"), paths, TEAM, "0")
    script = plan.entrypoint[2]
    # ~/.bashrc and ~/agent_sources.sh first, then the trusted packages in front of the image's PYTHONPATH
    assert shlex.quote(TRUSTED_SHELL_SCRIPT) in script
    argv = shlex.split(script.split(" lbcloud-agent ", 1)[1])
    assert argv[:3] == ["python3", "-u", "/workspace/leaderboard/leaderboard/leaderboard_evaluator.py"]
    assert "--agent=/workspace/team_code/npc_agent.py" in argv
    assert "--routes=/workspace/routes/routes_testing.xml" in argv and "--routes-subset=17" in argv
    assert "--track=SENSORS" in argv and "--port=2000" in argv and "--record=/lbcloud/attempt/recordings" in argv
    kwargs = plan.create_kwargs()
    env = kwargs["environment"]
    assert env["CARLA_ROOT"] == "/workspace/CARLA" and env["LEADERBOARD_ROOT"] == "/workspace/leaderboard"
    assert env["CHALLENGE_TRACK_CODENAME"] == "SENSORS" and env["ROUTES_SUBSET"] == "17"
    assert kwargs["network_mode"].startswith("container:")  # its simulator's loopback only
    assert "read_only" not in kwargs  # the track lets CARLA agents write
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["user"] == "10001:10001"


def test_no_wall_clock_budget_and_one_seed_as_the_official_system() -> None:
    track = _spec().track
    assert track.attempt_budget_s(5000) == 0 and track.seed_for(3) == 0


def test_every_cloud_carla_track_also_plans_on_the_docker_backend(tmp_path: Path) -> None:
    settings = load_settings(TRACK_FILE.with_name("carla.yaml"))
    paths = HostPaths(folder=tmp_path, contents=(("/workspace", tmp_path / "c"),), routes=tmp_path / "routes")
    for track in settings.track_map().values():
        spec = dataclasses.replace(_spec(), track=track)
        simulator_plan(spec, DockerConfig(instance="t"), paths, "0").create_kwargs()
        assert "lbcloud-agent" in agent_plan(spec, DockerConfig(instance="t"), paths, TEAM, "0").entrypoint[2]
