"""deploy/tracks/carla-workstation.yaml: valid settings whose containers match the official run scripts."""

from __future__ import annotations

import shlex
from pathlib import Path

from lbcloud.adapters.backends.carla_startup import SHELL_CHOICE, TRUSTED_SHELL_SCRIPT
from lbcloud.adapters.backends.docker.plans import (
    DockerConfig,
    HostPaths,
    ImageFacts,
    agent_plan,
    simulator_plan,
)
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


def test_the_team_image_runs_the_leaderboard_with_its_agent_and_the_trusted_code_first(tmp_path: Path) -> None:
    paths = HostPaths(folder=tmp_path, contents=(("/workspace", tmp_path / "c"),), routes=tmp_path / "routes")
    plan = agent_plan(_spec(), DockerConfig(instance="t"), paths, TEAM, "0")
    script = plan.entrypoint[2]
    # ~/.bashrc and ~/agent_sources.sh first, then the trusted code first, as run_leaderboard.sh does
    assert script.startswith(SHELL_CHOICE) and shlex.quote(TRUSTED_SHELL_SCRIPT) in script
    argv = shlex.split(script.split(" lbcloud-agent ", 1)[1])
    assert argv[:3] == ["python3", "-u", "/workspace/leaderboard/leaderboard/leaderboard_evaluator.py"]
    assert "--agent=/workspace/team_code/npc_agent.py" in argv
    assert "--routes=/workspace/routes/routes_testing.xml" in argv and "--routes-subset=17" in argv
    assert "--track=SENSORS" in argv and "--port=2000" in argv and "--record=/lbcloud/attempt/recordings" in argv
    assert not any(a.startswith(("--resume", "--timeout")) for a in argv), "the official defaults"
    env = dict(plan.environment)
    assert (env["CARLA_ROOT"], env["CHALLENGE_TRACK_CODENAME"], env["DEBUG_CHALLENGE"]) == (
        "/workspace/CARLA", "SENSORS", "0",
    )  # fmt: skip
    kwargs = plan.create_kwargs()
    assert kwargs["network_mode"].startswith("container:")  # its simulator's loopback only
    assert "read_only" not in kwargs  # the track lets CARLA agents write
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["user"] == "10001:10001"


def test_the_workstation_budgets_and_seeds_are_the_official_ones() -> None:
    track = load_settings(TRACK_FILE).track("SENSORS")
    assert track.attempt_budget_s(8000.0) == 0.0 and track.silence_timeout_s == 800
    assert {track.seed_for(r) for r in range(5)} == {0}
