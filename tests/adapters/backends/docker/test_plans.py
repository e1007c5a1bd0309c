"""The containers of a Docker attempt: sandbox, limits, labels, GPUs and commands (no engine needed)."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lbcloud.adapters.backends.docker.plans import (
    AGENT_PRELUDE,
    AGENT_SOCKET,
    ATTEMPT_DIR,
    LINK_DIR,
    ContainerPlan,
    DockerConfig,
    HostPaths,
    ImageFacts,
    Role,
    agent_plan,
    agent_user,
    container_name,
    evaluator_plan,
    memory_bytes,
    nano_cpus,
    simulator_plan,
)
from lbcloud.domain.errors import ConfigError, InputError
from lbcloud.domain.tracks import Pool
from lbcloud.services.ports import AttemptSpec
from tests.adapters.backends.kubernetes.specs import attempt_spec

CONFIG = DockerConfig(instance="test1")
TEAM_IMAGE = ImageFacts(
    ref="team/agent:v1", id="sha256:" + "ab" * 32, env=(("TEAM_AGENT", "/home/lbcloud/agent/agent.py"),), user=""
)


def paths(tmp_path: Path) -> HostPaths:
    return HostPaths(
        folder=tmp_path / "attempt-7",
        contents=(("/opt/lbcloud-track", tmp_path / "contents" / "0"),),
        routes=tmp_path / "attempt-7" / "routes",
        link=tmp_path / "attempt-7" / "link",
    )


def agent_argv(plan: ContainerPlan) -> list[str]:
    """The command the agent container's shell script execs."""
    return shlex.split(plan.entrypoint[2].removeprefix(AGENT_PRELUDE))


def in_process_spec(**kwargs: Any) -> AttemptSpec:
    """A spec of a track whose agent container runs the evaluator (the CARLA convention)."""
    spec = attempt_spec(**kwargs)
    assert spec.track.images is not None
    images = dataclasses.replace(spec.track.images, agent_command=(), trusted_evaluator_command=())
    return dataclasses.replace(spec, track=dataclasses.replace(spec.track, images=images))


def test_the_agent_container_is_sandboxed(tmp_path: Path) -> None:
    pool = Pool(cpu="500m", memory="768Mi")
    kwargs = agent_plan(attempt_spec(pool=pool), CONFIG, paths(tmp_path), TEAM_IMAGE, None).create_kwargs()
    assert kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["user"] == "10001:10001"  # the image runs as root: the unprivileged user instead
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 768 * 2**20
    assert kwargs["nano_cpus"] == 500_000_000
    assert kwargs["pids_limit"] == 512
    assert kwargs["tmpfs"]["/tmp"].startswith("rw,nosuid,nodev,size=1g")
    assert kwargs["network_mode"] == "none"  # it talks to its evaluator over the shared socket only
    assert "privileged" not in kwargs and "device_requests" not in kwargs


def test_an_agent_host_sees_only_the_socket_folder(tmp_path: Path) -> None:
    plan = agent_plan(attempt_spec(), CONFIG, paths(tmp_path), TEAM_IMAGE, None)
    kwargs = plan.create_kwargs()
    assert [(m["Target"], m["Source"]) for m in kwargs["mounts"]] == [(LINK_DIR, str(tmp_path / "attempt-7" / "link"))]
    assert set(kwargs["environment"]) == {"PYTHONUNBUFFERED", "LBCLOUD_ATTEMPT"}  # no lbcloud secrets
    argv = agent_argv(plan)
    assert argv[:3] == ["python3", "-m", "lbcloud.tracks.sumo.agent_host"]
    assert argv[argv.index("--connect") + 1] == f"unix:{AGENT_SOCKET}"
    assert argv[argv.index("--agent") + 1] == "/home/lbcloud/agent/agent.py"


def test_the_trusted_evaluator_writes_the_checkpoint_and_listens_on_the_socket(tmp_path: Path) -> None:
    lbcloud = ImageFacts(ref="lbcloud:latest", id="sha256:" + "cd" * 32, user="10001:10001")
    plan = evaluator_plan(attempt_spec(route_id="4"), CONFIG, paths(tmp_path), lbcloud, TEAM_IMAGE, None)
    kwargs = plan.create_kwargs()
    assert kwargs["image"] == lbcloud.id
    assert kwargs["network_mode"] == f"container:{container_name(CONFIG, 7, Role.SIMULATOR)}"
    assert kwargs["read_only"] is True and kwargs["cap_drop"] == ["ALL"]
    argv = [*plan.entrypoint, *plan.command]
    assert argv[:4] == ["lbcloud", "track", "sumo", "evaluate"]
    assert argv[argv.index("--agent-socket") + 1] == AGENT_SOCKET
    assert argv[argv.index("--checkpoint") + 1] == f"{ATTEMPT_DIR}/checkpoint.json"
    assert argv[argv.index("--routes") + 1] == "/opt/lbcloud-track/routes/sumo-test.xml"
    assert argv[argv.index("--routes-subset") + 1] == "4"
    targets = {m["Target"]: m["ReadOnly"] for m in kwargs["mounts"]}
    assert targets == {
        ATTEMPT_DIR: False,
        LINK_DIR: False,
        "/opt/lbcloud-track": True,
        "/opt/lbcloud-track/routes": True,
    }


def test_an_agent_running_the_evaluator_sees_its_folder_and_the_read_only_contents(tmp_path: Path) -> None:
    kwargs = agent_plan(in_process_spec(), CONFIG, paths(tmp_path), TEAM_IMAGE, None).create_kwargs()
    assert kwargs["network_mode"] == f"container:{container_name(CONFIG, 7, Role.SIMULATOR)}"
    mounts = {(m["Target"], m["Source"], m["ReadOnly"]) for m in kwargs["mounts"]}
    assert mounts == {
        (ATTEMPT_DIR, str(tmp_path / "attempt-7"), False),
        ("/opt/lbcloud-track", str(tmp_path / "contents" / "0"), True),
        ("/opt/lbcloud-track/routes", str(tmp_path / "attempt-7" / "routes"), True),
    }
    assert not any("docker.sock" in m["Source"] for m in kwargs["mounts"])
    env = kwargs["environment"]
    assert set(env) == {"PYTHONUNBUFFERED", "LBCLOUD_ATTEMPT", "TMPDIR"}  # no lbcloud secrets
    assert env["TMPDIR"].startswith(ATTEMPT_DIR)


def test_the_evaluator_command_names_the_images_agent_and_the_cut_route_file(tmp_path: Path) -> None:
    plan = agent_plan(in_process_spec(route_id="4"), CONFIG, paths(tmp_path), TEAM_IMAGE, None)
    argv = agent_argv(plan)
    assert argv[argv.index("--agent") + 1] == "/home/lbcloud/agent/agent.py"
    assert argv[argv.index("--routes") + 1] == "/opt/lbcloud-track/routes/sumo-test.xml"
    assert argv[argv.index("--routes-subset") + 1] == "4"
    assert argv[argv.index("--checkpoint") + 1] == f"{ATTEMPT_DIR}/checkpoint.json"
    assert argv[argv.index("--port") + 1] == "8813"
    assert plan.entrypoint[:2] == ("/bin/sh", "-c") and plan.entrypoint[2].startswith(AGENT_PRELUDE)
    assert plan.image == TEAM_IMAGE.id  # the resolved image, not a tag that may move


def test_an_image_naming_no_agent_is_the_teams_error(tmp_path: Path) -> None:
    bare = dataclasses.replace(TEAM_IMAGE, env=())
    with pytest.raises(InputError, match="TEAM_AGENT"):
        agent_plan(attempt_spec(), CONFIG, paths(tmp_path), bare, None)


def test_a_non_root_image_user_is_kept_and_root_is_replaced() -> None:
    assert agent_user(dataclasses.replace(TEAM_IMAGE, user="carla"), CONFIG) == "carla"
    assert agent_user(dataclasses.replace(TEAM_IMAGE, user="1000:1000"), CONFIG) == "1000:1000"
    assert agent_user(dataclasses.replace(TEAM_IMAGE, user="root"), CONFIG) == "10001:10001"
    assert agent_user(dataclasses.replace(TEAM_IMAGE, user="0:0"), CONFIG) == "10001:10001"
    assert agent_user(dataclasses.replace(TEAM_IMAGE, user="1000:0"), CONFIG) == "1000:10001"


def test_the_simulator_has_loopback_only_and_its_own_limits(tmp_path: Path) -> None:
    pool = Pool(simulator_cpu="2", simulator_memory="3G")
    plan = simulator_plan(attempt_spec(pool=pool), CONFIG, paths(tmp_path), None, image_id="sha256:simulator")
    kwargs = plan.create_kwargs()
    assert kwargs["network_mode"] == "none"
    assert kwargs["mem_limit"] == 3 * 10**9 and kwargs["nano_cpus"] == 2 * 10**9
    assert kwargs["image"] == "sha256:simulator"
    assert [kwargs["entrypoint"][0], *kwargs["command"]][:6] == [
        "lbcloud",
        "track",
        "sumo",
        "simulator",
        "--port",
        "8813",
    ]
    assert {(m["Target"], m["ReadOnly"]) for m in kwargs["mounts"]} == {(ATTEMPT_DIR, True)}


def test_labels_find_the_attempt_again(tmp_path: Path) -> None:
    kwargs = agent_plan(attempt_spec(attempt_id=12, submission_id=5), CONFIG, paths(tmp_path), TEAM_IMAGE, None)
    labels = kwargs.create_kwargs()["labels"]
    assert labels["io.lbcloud.backend"] == "docker"
    assert labels["io.lbcloud.instance"] == "test1"
    assert labels["io.lbcloud.attempt"] == "12"
    assert labels["io.lbcloud.submission"] == "5"
    assert labels["io.lbcloud.role"] == "agent"
    assert labels["io.lbcloud.route"] == "2"


def test_a_gpu_slot_becomes_a_device_request_for_both_containers(tmp_path: Path) -> None:
    spec = attempt_spec(pool=Pool(gpus_per_attempt=1))
    for plan in (
        simulator_plan(spec, CONFIG, paths(tmp_path), "2"),
        agent_plan(spec, CONFIG, paths(tmp_path), TEAM_IMAGE, "2"),
    ):
        kwargs = plan.create_kwargs()
        [request] = kwargs["device_requests"]
        assert request["DeviceIDs"] == ["2"] and request["Capabilities"] == [["gpu"]]
        assert kwargs["labels"]["io.lbcloud.gpu"] == "2"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("2Gi", 2 * 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9), ("1500000", 1_500_000), ("1.5Gi", 3 * 2**29)],
)
def test_memory_quantities(quantity: str, expected: int) -> None:
    assert memory_bytes(quantity) == expected


@pytest.mark.parametrize(("quantity", "expected"), [("1", 10**9), ("500m", 5 * 10**8), ("2.5", 25 * 10**8)])
def test_cpu_quantities(quantity: str, expected: int) -> None:
    assert nano_cpus(quantity) == expected


@pytest.mark.parametrize("bad", ["", "lots", "-1Gi", "0", "2GB"])
def test_bad_quantities_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        memory_bytes(bad)
    with pytest.raises(ConfigError):
        nano_cpus(bad)


def test_image_environment_placeholders_expand_when_the_agent_runs_after_its_sources(tmp_path: Path) -> None:
    spec = in_process_spec()
    assert spec.track.images is not None
    command = ("env", "PYTHONPATH=/trusted:{env_PYTHONPATH}", "printenv", "PYTHONPATH")
    track = dataclasses.replace(spec.track, images=dataclasses.replace(spec.track.images, evaluator_command=command))
    plan = agent_plan(dataclasses.replace(spec, track=track), CONFIG, paths(tmp_path), TEAM_IMAGE, None)
    (tmp_path / "agent_sources.sh").write_text("PYTHONPATH=/team/code; export PYTHONPATH\n")
    done = subprocess.run(
        list(plan.entrypoint), env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "/trusted:/team/code"


def test_an_agent_running_the_evaluator_keeps_the_tracks_read_only_choice(tmp_path: Path) -> None:
    writable = in_process_spec()
    writable = dataclasses.replace(writable, track=dataclasses.replace(writable.track, read_only_root=False))
    assert "read_only" not in agent_plan(writable, CONFIG, paths(tmp_path), TEAM_IMAGE, None).create_kwargs()
    # an agent host is read-only whatever the track says
    sumo = attempt_spec()
    sumo = dataclasses.replace(sumo, track=dataclasses.replace(sumo.track, read_only_root=False))
    assert agent_plan(sumo, CONFIG, paths(tmp_path), TEAM_IMAGE, None).create_kwargs()["read_only"]
