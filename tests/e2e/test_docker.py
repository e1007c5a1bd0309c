"""A team's image on `sumo-test` through `lbcloud serve` + `lbcloud submit --image` on the Docker
backend scores exactly as the same agent file does on the local backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lbcloud.domain.artifact_keys import manifest_key, merged_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, AttemptStatus, RouteTaskStatus
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import default_tracks, load_settings
from tests.e2e.conftest import start_dispatch, submit, sumo_dev_track, wait_for
from tests.services.docker import DockerTestEngine
from tests.services.s3 import free_ports

pytestmark = [pytest.mark.docker, pytest.mark.sumo, pytest.mark.slow]


def _routes(system: System, sid: int) -> dict[str, tuple[object, ...]]:
    merged = parse_results(system.artifacts.get(merged_key(sid)), "merged")
    return {
        r.route_id: (r.status, r.scores.score_route, r.scores.score_penalty, r.scores.score_composed, r.num_infractions)
        for r in merged.records
    }


def test_a_team_image_on_sumo_test_scores_as_the_local_backend(
    docker_engine: DockerTestEngine,
    team_image: Callable[..., str],
    make_system: Callable[..., System],
    tmp_path: Path,
) -> None:
    image = team_image("competent.py")
    [port] = free_ports(1)
    config = tmp_path / "docker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "docker-data"),
                "backend": "docker",
                "docker": {"base_url": docker_engine.url, "slots": 2},
                "dispatcher": {"tick_s": 0.1},
            }
        )
    )
    env = {**os.environ, "LBCLOUD_CONFIG": str(config)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "lbcloud", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "ab"),  # noqa: SIM115
        start_new_session=True,
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lbcloud", "submit", "--track", "sumo-test", "--team", "alpha", "--image", image],
            env=env, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        docker_system = build_system(load_settings(config))
        [submission] = docker_system.store.list_submissions()
        wait_for(lambda: docker_system.store.get_submission(submission.id).status.terminal, 900)
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        serve.wait(timeout=30)
    finished = docker_system.store.get_submission(submission.id)
    assert finished.status is SubmissionStatus.FINISHED, (finished.reason, (tmp_path / "serve.log").read_text()[-2000:])
    manifest = json.loads(docker_system.artifacts.get(manifest_key(submission.id)))
    assert manifest["agent"]["digest"].startswith("sha256:")  # the image that ran, resolved
    assert manifest["facts"]["image lbcloud:latest"].startswith("sha256:")
    assert {a["backend"] for r in manifest["routes"] for a in r["attempts"]} == {"docker"}

    sumo_test = next(t for t in default_tracks() if t.name == "sumo-test").model_dump(mode="json")
    local = make_system(tracks=[sumo_test], local={"slots": 2})
    sid = submit(local, "competent.py", track="sumo-test")
    assert local.dispatcher().run_until_idle(tick_s=0.1, timeout_s=900)
    assert local.store.get_submission(sid).status is SubmissionStatus.FINISHED
    docker_routes, local_routes = _routes(docker_system, submission.id), _routes(local, sid)
    assert len(docker_routes) == 10
    assert docker_routes == local_routes
    docker_system.close()


def test_a_dispatcher_killed_mid_run_adopts_its_running_containers(
    docker_engine: DockerTestEngine, team_image: Callable[..., str], tmp_path: Path
) -> None:
    image = team_image("slow.py")
    config = tmp_path / "docker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(tmp_path / "data"),
                "backend": "docker",
                "docker": {"base_url": docker_engine.url, "slots": 2},
                "dispatcher": {"owner": "dispatcher-a", "lease_s": 5, "tick_s": 0.1},
                "tracks": [sumo_dev_track(smoke_route=None)],
            }
        )
    )
    env = {**os.environ, "LBCLOUD_CONFIG": str(config)}
    system = build_system(load_settings(config))
    sub, _ = system.intake.submit(NewSubmission(team="alpha", track="sumo-dev", agent=AgentRef(AgentKind.IMAGE, image)))

    first = start_dispatch(env, tmp_path / "dispatch.log")
    try:
        wait_for(lambda: any(a.status is AttemptStatus.RUNNING for a in system.store.live_attempts()), 120)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        in_flight = {a.id for a in system.store.live_attempts() if a.status is AttemptStatus.RUNNING}
        assert in_flight, "the kill landed while attempts were running"
        running = docker_engine.client.containers.list(filters={"label": "io.lbcloud.backend=docker"})
        assert running, "the containers run on without their dispatcher"
        second = start_dispatch(env, tmp_path / "dispatch.log")
        try:
            wait_for(lambda: system.store.get_submission(sub.id).status.terminal, 300)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=15)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert system.store.get_submission(sub.id).status is SubmissionStatus.FINISHED
    for attempt_id in in_flight:
        assert system.store.get_attempt(attempt_id).outcome is AttemptOutcome.RECORD, "adopted, not rerun"
    tasks = system.store.route_tasks(sub.id)
    assert all(t.attempts == 1 for t in tasks), [(t.route_id, t.attempts) for t in tasks]
    assert docker_engine.client.containers.list(all=True, filters={"label": "io.lbcloud.backend=docker"}) == []
    system.close()


def test_a_killed_simulator_container_is_retried_and_not_held_against_the_team(
    docker_engine: DockerTestEngine, team_image: Callable[..., str], make_system: Callable[..., System]
) -> None:
    image = team_image("slow.py")
    system = make_system(
        backend="docker", docker={"base_url": docker_engine.url, "slots": 1}, tracks=[sumo_dev_track(smoke_route=None)]
    )
    sub, _ = system.intake.submit(NewSubmission(team="alpha", track="sumo-dev", agent=AgentRef(AgentKind.IMAGE, image)))
    dispatcher = system.dispatcher()
    killed: list[str] = []

    def kill_the_first_simulator() -> None:
        dispatcher.tick()
        if killed or not any(a.status is AttemptStatus.RUNNING for a in system.store.live_attempts()):
            return
        labels = ["io.lbcloud.backend=docker", "io.lbcloud.role=simulator"]
        for container in docker_engine.client.containers.list(filters={"label": labels}):
            container.kill()
            killed.append(container.name)

    wait_for(lambda: system.store.get_submission(sub.id).status.terminal, 300, tick=kill_the_first_simulator)
    assert killed
    assert system.store.get_submission(sub.id).status is SubmissionStatus.FINISHED
    attempts = system.store.attempts(submission_id=sub.id)
    first = min(attempts, key=lambda a: a.id)
    assert (first.outcome, first.blame) == (AttemptOutcome.FAILED, Blame.SIMULATOR), first.reason
    retried = [t for t in system.store.route_tasks(sub.id) if t.attempts == 2]
    assert len(retried) == 1 and retried[0].status is RouteTaskStatus.DONE
