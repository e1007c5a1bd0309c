"""The CARLA stand-in run through the Kubernetes backend: the dispatcher launches Jobs on the fake API
server, their rendered wrapper scripts run for real in a shell (fake ``CarlaUE4.sh`` + stand-in
evaluator), and each official behaviour must end with the right outcome, blame and retries."""

from __future__ import annotations

import dataclasses
import json
import random
import socket
from pathlib import Path

import pytest

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.manifests import KubernetesConfig
from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.artifact_keys import LogStream, attempt_log_key, attempt_recording_key
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission
from lbcloud.domain.tracks import Pool, Track
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.reporting import ReportingService
from lbcloud.settings import load_settings
from tests.adapters.backends.kubernetes.fake_api import FakeKubeApi
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.tracks.carla.agents import CASES
from tests.tracks.carla.expected import EXPECTED, MAX_SIMULATOR_RETRIES
from tests.tracks.carla.shell_pods import STANDIN, ShellPods

REPO = Path(__file__).resolve().parents[3]
ROUTES_XML = '<?xml version="1.0"?>\n<routes><route id="0" town="Town01"><waypoints>' + (
    '<position x="0" y="0" z="0"/><position x="120" y="0" z="0"/></waypoints></route></routes>\n'
)


_PORTS = iter(range(24000 + random.randrange(0, 4000, 50), 29000))


def _free_port() -> int:
    """A port below the ephemeral range (outgoing connections never take it meanwhile), free now."""
    for port in _PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port for a stand-in simulator")


def standin_track(name: str, routes: Path, *, gpus: int) -> Track:
    """The deployed SENSORS track (deploy/tracks/carla.yaml) with the stand-in in CARLA's place:
    same evaluator flags, a short client timeout and no-output watchdog so the cases run quickly."""
    official = load_settings(REPO / "deploy/tracks/carla.yaml").track_map()["SENSORS"]
    assert official.images is not None
    simulator = (str(STANDIN / "CarlaUE4.sh"), *official.images.simulator_command[1:])
    evaluator = (*official.images.evaluator_command, "--timeout=2")
    images = dataclasses.replace(
        official.images, simulator_command=simulator, evaluator_command=evaluator, simulator_port=_free_port()
    )
    pool = Pool(name="gpu", slots=4, gpus_per_attempt=gpus)
    return dataclasses.replace(
        official, name=name, routes_file=str(routes), images=images, pool=pool, qualification=None,
        silence_timeout_s=3, setup_timeout_s=20, max_simulator_retries=MAX_SIMULATOR_RETRIES,
    )  # fmt: skip


@pytest.mark.parametrize("gpus", [1, 0], ids=["co-container-gpu-handoff", "native-sidecars"])
def test_every_official_behaviour_gets_its_outcome_blame_and_retries(
    store: SqlStateStore, tmp_path: Path, gpus: int
) -> None:
    routes = tmp_path / "routes_testing.xml"
    routes.write_text(ROUTES_XML)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({name: case.plan for name, case in CASES.items() if case.plan}))
    tracks = {name: standin_track(name, routes, gpus=gpus) for name in EXPECTED}
    api = FakeKubeApi()
    artifacts = MemoryArtifacts()
    backend = KubernetesBackend(api, artifacts, KubernetesConfig(), watch_timeout_s=2)
    dispatcher = Dispatcher(
        store=store, artifacts=artifacts, backend=backend, tracks=tracks, catalog=FileRouteCatalog(),
        clock=SystemClock(), owner="test", capacity={"gpu": 4},
    )  # fmt: skip
    pods = ShellPods(api, ReportingService(store, artifacts), tmp_path, plan)
    submissions = {}
    for name in EXPECTED:
        agent = AgentRef(AgentKind.IMAGE, f"registry.example.org/teams/{name}:1")
        submissions[name], _ = store.create_submission(NewSubmission(team=f"team-{name}", track=name, agent=agent))
    try:
        assert dispatcher.run_until_idle(tick_s=0.05, timeout_s=240, on_tick=pods.step)
    finally:
        pods.stop()
        dispatcher.close()
        api.close()

    for name, expected in EXPECTED.items():
        submission = submissions[name]
        attempts = sorted(store.attempts(submission_id=submission.id), key=lambda a: a.number)
        seen = tuple((a.outcome, a.blame) for a in attempts)
        reasons = [a.reason for a in attempts]
        assert seen == expected.attempts, f"{name}: {seen} ({reasons})"
        (task,) = store.route_tasks(submission.id)
        assert task.status is expected.task, f"{name}: {task.status} ({task.reason})"
        if expected.log_says:
            key = attempt_log_key(submission.id, attempts[0].id, LogStream.AGENT)
            assert expected.log_says in artifacts.get(key).decode(), f"{name}: the team's log explains it"

    # the simulator rendered on the GPU the agent holds (adapter index, not NVIDIA_VISIBLE_DEVICES)
    argv = next(p.simulator_argv for p in pods.played.values() if p.case.name == "normal")
    adapter = next(a for a in argv if "r.GraphicsAdapter=" in a)
    assert adapter.endswith("=1" if gpus else "=0")
    # the server wrote its recording where the Job mounts the recordings volume; the reporter kept it
    normal = next(p for p in pods.played.values() if p.case.name == "normal")
    assert list((normal.root / "recordings").glob("RouteScenario_0_rep0.log"))
    (attempt,) = store.attempts(submission_id=submissions["normal"].id)
    recording = artifacts.get(attempt_recording_key(attempt.submission_id, attempt.id))
    assert recording.startswith(b"CARLA_RECORDER")
