"""The attempt's Kubernetes objects: strict schema validity (1.29–1.33), anatomy, sandbox, names."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from lbcloud.adapters.backends.kubernetes.blame import exit_code_failure
from lbcloud.adapters.backends.kubernetes.manifests import (
    AGENT,
    EVALUATION_SELECTOR,
    POD_FAILURE_RULES,
    KubernetesConfig,
    agent_script,
    job_name,
    label_value,
    render_attempt,
    render_job,
    render_network_policy,
)
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import ConfigError
from lbcloud.domain.tracks import ContainerImages, Pool, Toleration, Track
from lbcloud.settings import load_settings
from tests.adapters.backends.kubernetes.specs import attempt_spec, sumo_track

REPO = Path(__file__).resolve().parents[4]
CARLA_TRACKS = REPO / "deploy" / "tracks" / "carla.yaml"
VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
GPU_POOL = Pool(name="gpu", gpus_per_attempt=1, cpu="3", memory="12Gi", node_selector=(("lbcloud.io/pool", "gpu"),),
                tolerations=(Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule"),),
                priority_class="lbcloud-evaluation", kueue_queue="lbcloud-gpu")  # fmt: skip


def carla_tracks() -> dict[str, Track]:
    return load_settings(CARLA_TRACKS).track_map()


def validate_all(objects: list[dict[str, Any]], versions: list[str] = VERSIONS) -> None:
    for version in versions:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:  # pragma: no cover - the message is the point
                pytest.fail(f"{obj['kind']} {obj['metadata']['name']} invalid for {version}: {err}")


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def _container(job: dict[str, Any], name: str) -> dict[str, Any]:
    pod = _pod(job)
    return next(c for c in [*pod["initContainers"], *pod["containers"]] if c["name"] == name)


# ------------------------------------------------------------------------------------- validity


@pytest.mark.parametrize("compat", ["current", "1.20"])
def test_sumo_attempt_objects_validate_strictly_for_1_29_to_1_33(compat: str) -> None:
    config = KubernetesConfig(compat=compat)  # type: ignore[arg-type]
    objects = [*render_attempt(attempt_spec(), config).all(), render_network_policy(config)]
    validate_all(objects)


CARLA_TRACK_NAMES = ["SENSORS", "MAP", "SENSORS_QUALIFIER", "MAP_QUALIFIER", "LB21-SENSORS", "LB21-MAP", "LB1-SENSORS"]


@pytest.mark.parametrize("track", [*CARLA_TRACK_NAMES, "LB1-MAP"])
def test_carla_tracks_load_from_settings_and_render_valid_jobs(track: str) -> None:
    chosen = carla_tracks()[track]
    assert chosen.images is not None and chosen.pool.gpus_per_attempt == 1
    job = render_job(attempt_spec(track=chosen, route_id="12"), KubernetesConfig())
    validate_all([job])
    script = _container(job, AGENT)["command"][2]
    assert "leaderboard_evaluator.py" in script
    assert "--routes-subset=12" in script
    assert "--checkpoint=/lbcloud/results/checkpoint.json" in script
    assert '--agent="${TEAM_AGENT}"' in script
    assert "${PYTHONPATH:+:$PYTHONPATH}" in script, "the participant's PYTHONPATH is kept, behind the trusted code"
    prepare = _container(job, "prepare")["command"]
    assert prepare[-2:] == ["--only-route", "12"], "the agent only sees its own route"


@pytest.mark.parametrize("version", VERSIONS)
def test_dra_sharing_renders_a_shared_claim_valid_for_each_version(version: str) -> None:
    config = KubernetesConfig(gpu_sharing="dra", kube_version=version)
    spec = attempt_spec(track=carla_tracks()["SENSORS"])
    objects = render_attempt(spec, config)
    assert objects.claim_template is not None
    validate_all([objects.job, objects.claim_template], [version])
    job = objects.job
    assert _container(job, "simulator")["resources"]["claims"] == [{"name": "gpu"}]
    assert _container(job, AGENT)["resources"]["claims"] == [{"name": "gpu"}]
    assert "nvidia.com/gpu" not in _container(job, AGENT)["resources"]["limits"]
    assert _container(job, "simulator").get("restartPolicy") == "Always", "with DRA the simulator is a sidecar"


# ------------------------------------------------------------------------------------- anatomy


def test_job_anatomy_native_sidecars_probe_and_one_route() -> None:
    spec = attempt_spec(route_id="2")
    job = render_job(spec, KubernetesConfig())
    pod = _pod(job)
    assert [c["name"] for c in pod["initContainers"]] == ["contents", "prepare", "reporter", "simulator"]
    assert [c["name"] for c in pod["containers"]] == [AGENT]
    simulator = _container(job, "simulator")
    assert simulator["restartPolicy"] == "Always"
    assert simulator["startupProbe"]["tcpSocket"]["port"] == 8813
    assert _container(job, "reporter")["restartPolicy"] == "Always"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert pod["restartPolicy"] == "Never"
    assert pod["activeDeadlineSeconds"] == 300 + 20, "route budget plus the track's setup time"
    assert _container(job, AGENT)["image"] == spec.agent.ref
    assert "--routes-subset 2" in _container(job, AGENT)["command"][2]
    assert "sleep 60" not in str(job)


def test_pod_failure_policy_rules_map_exit_codes_and_disruptions_in_blame_order() -> None:
    policy = render_job(attempt_spec(), KubernetesConfig())["spec"]["podFailurePolicy"]["rules"]
    assert len(policy) == len(POD_FAILURE_RULES)
    assert policy[0]["onExitCodes"] == {"containerName": AGENT, "operator": "In", "values": [3]}
    assert POD_FAILURE_RULES[0].blame is Blame.AGENT
    assert policy[1]["onExitCodes"]["values"] == [4, 5] and POD_FAILURE_RULES[1].blame is Blame.SIMULATOR
    assert policy[3]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    assert all(rule["action"] == "FailJob" for rule in policy)


def test_compat_1_20_puts_simulator_and_reporter_beside_the_agent_and_drops_new_fields() -> None:
    job = render_job(attempt_spec(), KubernetesConfig(compat="1.20"))
    pod = _pod(job)
    assert [c["name"] for c in pod["initContainers"]] == ["contents", "prepare"]
    assert [c["name"] for c in pod["containers"]] == [AGENT, "simulator", "reporter"]
    assert "podFailurePolicy" not in job["spec"] and "ttlSecondsAfterFinished" not in job["spec"]
    assert "--exit-when-done" in _container(job, "reporter")["command"]
    assert "simulator.ready" in _container(job, AGENT)["command"][2], "the agent waits for the probed simulator"


def test_gpu_device_handoff_gives_the_agent_the_gpu_and_the_simulator_its_uuid() -> None:
    spec = attempt_spec(track=carla_tracks()["SENSORS"])
    job = render_job(spec, KubernetesConfig())
    agent = _container(job, AGENT)
    simulator = _container(job, "simulator")
    assert agent["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in simulator["resources"]["limits"]
    assert "nvidia-smi --query-gpu=uuid" in agent["command"][2]
    # exporting NVIDIA_VISIBLE_DEVICES in a running container changes nothing: CARLA is told the adapter
    assert "--query-gpu=index,uuid" in simulator["command"][2]
    assert "r.GraphicsAdapter=" in simulator["command"][2]
    assert "restartPolicy" not in simulator, "the simulator waits for the agent's UUID, so it cannot start first"


def test_pool_settings_reach_the_pod() -> None:
    job = render_job(attempt_spec(pool=GPU_POOL), KubernetesConfig(image_pull_secrets=("regcred",)))
    pod = _pod(job)
    assert pod["nodeSelector"] == {"lbcloud.io/pool": "gpu"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "lbcloud-evaluation"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert _container(job, AGENT)["resources"]["requests"] == {"cpu": "3", "memory": "12Gi"}
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lbcloud-gpu"


# ------------------------------------------------------------------------------------- sandbox


def test_agent_sandbox_no_token_no_privilege_no_capabilities_read_only_root() -> None:
    track = dataclasses.replace(sumo_track(), read_only_root=True)
    job = render_job(attempt_spec(track=track), KubernetesConfig())
    pod = _pod(job)
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    agent = _container(job, AGENT)
    context = agent["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
    assert all(e["name"] != "LBCLOUD_REPORTER_TOKEN" for e in agent.get("env", [])), "the token is the reporter's"
    assert "envFrom" not in agent
    contents_mount = next(m for m in agent["volumeMounts"] if m["mountPath"] == "/lbcloud/contents")
    assert contents_mount["readOnly"] is True
    reporter = _container(job, "reporter")
    assert {"name": "LBCLOUD_REPORTER_TOKEN", "value": "token-7"} in reporter["env"]


def test_read_only_root_follows_the_track() -> None:
    job = render_job(attempt_spec(track=dataclasses.replace(sumo_track(), read_only_root=False)), KubernetesConfig())
    assert _container(job, AGENT)["securityContext"]["readOnlyRootFilesystem"] is False


def test_network_policy_allows_only_the_dispatcher_and_dns() -> None:
    config = KubernetesConfig(dispatcher_url="http://lbcloud-dispatcher.lbcloud.svc:8080")
    policy = render_network_policy(config)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    selector = ",".join(f"{k}={v}" for k, v in policy["podSelector"]["matchLabels"].items())
    assert selector == EVALUATION_SELECTOR
    dispatcher, dns = policy["egress"]
    assert dispatcher["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert dispatcher["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "dispatcher"
    assert {p["port"] for p in dns["ports"]} == {53}


# --------------------------------------------------------------------------------------- names


def test_job_names_are_dns_labels_unique_per_attempt_even_for_long_inputs() -> None:
    track = dataclasses.replace(sumo_track(), name="A_Very.Long_Track.Name-" + "x" * 40)
    names = {job_name(attempt_spec(i, submission_id=123456, route_id="Route_" + "9" * 40, track=track))
             for i in range(1, 50)}  # fmt: skip
    assert len(names) == 49
    for name in names:
        assert DNS_1123_LABEL.match(name) and len(name) <= 63, name
    assert job_name(attempt_spec(1)) != job_name(attempt_spec(2)), "never only the submission"


@pytest.mark.parametrize(
    "team", ["Team A", "équipe ünïcode", "-leading and trailing-", "x" * 80, "a/b:c?d", "ok-team.1"]
)
def test_team_label_values_are_valid(team: str) -> None:
    value = label_value(team)
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value) and 0 < len(value) <= 63
    assert label_value(team) == value
    job = render_job(attempt_spec(team=team), KubernetesConfig())
    assert job["metadata"]["labels"]["lbcloud.io/team"] == value
    assert label_value("ok-team.1") == "ok-team.1"


def test_labels_name_submission_track_route_attempt_and_component() -> None:
    labels = render_job(attempt_spec(7, submission_id=3, route_id="2"), KubernetesConfig())["metadata"]["labels"]
    assert labels["lbcloud.io/submission"] == "3"
    assert labels["lbcloud.io/track"] == "sumo-test"
    assert labels["lbcloud.io/route"] == "2"
    assert labels["lbcloud.io/attempt"] == "7"
    assert labels["app.kubernetes.io/component"] == "evaluation"


def test_tracks_without_images_or_local_agents_cannot_render() -> None:
    local_only = dataclasses.replace(sumo_track(), images=None)
    with pytest.raises(ConfigError, match="no container images"):
        render_job(attempt_spec(track=local_only), KubernetesConfig())
    with pytest.raises(ConfigError):
        KubernetesConfig(dispatcher_url="ftp://nope")
    bad = dataclasses.replace(
        sumo_track(),
        images=ContainerImages("c:1", "s:1", ("sim",), ("eval", "{nope}")),
    )
    with pytest.raises(ConfigError, match="placeholder"):
        render_job(attempt_spec(track=bad), KubernetesConfig())


# ------------------------------------------------------------------------------ the wrapper


def test_agent_wrapper_runs_the_evaluator_logs_and_propagates_its_exit_code(tmp_path: Path) -> None:
    evaluator = ("python3", "-c", "import sys; print('route', sys.argv[1], 'agent', sys.argv[2]); sys.exit(4)",
                 "{route}", "{agent}")  # fmt: skip
    track = dataclasses.replace(sumo_track(), images=ContainerImages("c:1", "s:1", ("sim",), evaluator))
    script = agent_script(attempt_spec(track=track, route_id="5"), co_container=False, gpu_handoff=False)
    root = tmp_path / "lbcloud"
    (root / "run").mkdir(parents=True)
    local = script.replace("/lbcloud/", f"{root}/")
    env = {**os.environ, "TEAM_AGENT": "my agent.py"}
    done = subprocess.run(["/bin/sh", "-c", local], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 4
    assert (root / "run" / "agent.exit").read_text().strip() == "4"
    first, rest = (root / "logs" / "agent.log").read_text().split("\n", 1)
    assert re.fullmatch(r"lbcloud: simulator ready at -, evaluator started at [\d.]+", first)
    assert rest == "route 5 agent my agent.py\n"


def test_agent_wrapper_without_team_agent_rejects_the_agent_and_tolerates_no_team_config(tmp_path: Path) -> None:
    evaluator = ("python3", "-c", "import sys; print('config', repr(sys.argv[1]))", "{agent_config}", "{agent}")
    track = dataclasses.replace(sumo_track(), images=ContainerImages("c:1", "s:1", ("sim",), evaluator))
    script = agent_script(attempt_spec(track=track), co_container=False, gpu_handoff=False)
    root = tmp_path / "lbcloud"
    (root / "run").mkdir(parents=True)
    local = script.replace("/lbcloud/", f"{root}/")
    env = {k: v for k, v in os.environ.items() if k not in ("TEAM_AGENT", "TEAM_CONFIG")}
    # `set -u` with no TEAM_CONFIG: an empty config, not a shell error (exit 2 would blame us)
    done = subprocess.run(["/bin/sh", "-c", local], env={**env, "TEAM_AGENT": "a.py"}, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "config ''" in (root / "logs" / "agent.log").read_text()
    # no TEAM_AGENT: the image cannot be evaluated, and that is the team's fault (exit 3: rejected)
    (root / "run" / "agent.exit").unlink()
    done = subprocess.run(["/bin/sh", "-c", local], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert (root / "run" / "agent.exit").read_text().strip() == "3"
    assert "does not set TEAM_AGENT" in (root / "logs" / "agent.log").read_text()
    assert exit_code_failure(3)[0] is Blame.AGENT


def test_agent_wrapper_stops_a_silent_agent_with_exit_124(tmp_path: Path) -> None:
    evaluator = ("python3", "-c", "import time; print('started', flush=True); time.sleep(60)")
    track = dataclasses.replace(sumo_track(), images=ContainerImages("c:1", "s:1", ("sim",), evaluator),
                                silence_timeout_s=1)  # fmt: skip
    script = agent_script(attempt_spec(track=track), co_container=False, gpu_handoff=False)
    root = tmp_path / "lbcloud"
    (root / "run").mkdir(parents=True)
    local = script.replace("/lbcloud/", f"{root}/")
    done = subprocess.run(["/bin/sh", "-c", local], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 124
    assert (root / "run" / "agent.exit").read_text().strip() == "124"
    log = (root / "logs" / "agent.log").read_text()
    assert log.split("\n", 1)[1].startswith("started\n") and "printed nothing for 1 s" in log
    assert exit_code_failure(124)[0] is Blame.AGENT
