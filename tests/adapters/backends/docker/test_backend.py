"""The Docker backend against a real engine: team images on the SUMO track, faults, cancel, adoption.

Every test runs real containers (simulator, trusted evaluator, the team's agent host) on the
engine the suite starts; nothing is faked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from lbcloud.adapters.backends.docker.backend import DockerBackend
from lbcloud.domain.artifact_keys import LogStream, attempt_log_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.tasks import AttemptOutcome
from lbcloud.services.ports import BackendEventKind
from tests.adapters.backends.docker.conftest import ended, run_until_ended, spec, sumo_track
from tests.services.docker import DockerTestEngine

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _left_behind(engine: DockerTestEngine, backend: DockerBackend) -> list[str]:
    return [s.name for s in backend.engine.containers(backend.config.instance)]


def test_a_team_image_drives_a_route_and_leaves_nothing_behind(
    docker_engine: DockerTestEngine, team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    image = team_image("competent.py")
    backend = docker_backend()
    networks = {n.name for n in docker_engine.client.networks.list()}
    volumes = {v.name for v in docker_engine.client.volumes.list()}
    backend.launch(spec(image, route="0"))
    events = run_until_ended(backend)
    assert events[0].kind is BackendEventKind.RUNNING
    end = ended(events)
    assert (end.outcome, end.blame) == (AttemptOutcome.RECORD, Blame.NONE), end.reason
    assert end.record_json is not None
    [record] = parse_results(end.record_json, "record").records
    assert record.route_id == "RouteScenario_0_rep0" and record.status in ("Completed", "Perfect")
    assert end.sim_ratio and end.sim_ratio > 1
    assert b"RouteScenario_0" in end.logs[LogStream.AGENT.value]
    assert backend.images[image].id.startswith("sha256:")
    # nothing left: no container, network or volume of the attempt
    assert _left_behind(docker_engine, backend) == []
    assert {n.name for n in docker_engine.client.networks.list()} == networks
    assert {v.name for v in docker_engine.client.volumes.list()} == volumes


def test_an_image_that_is_not_there_blames_the_team_at_once(
    lbcloud_images: list[str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    backend.launch(spec("registry.invalid/team/agent:v9"))
    end = ended(run_until_ended(backend, timeout_s=30))
    assert (end.outcome, end.blame) == (AttemptOutcome.FAILED, Blame.AGENT)
    assert "registry.invalid/team/agent:v9" in (end.reason or "") and "pulled" in (end.reason or "")


def test_a_crashing_agent_gets_its_record_and_the_blame(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    backend.launch(spec(team_image("crashes.py")))
    end = ended(run_until_ended(backend))
    assert end.outcome is AttemptOutcome.RECORD and end.record_json is not None
    [record] = parse_results(end.record_json, "record").records
    assert record.status == "Failed - Agent crashed"


def test_an_agent_over_its_memory_limit_is_killed_and_blamed_with_the_reason(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    import dataclasses

    track = sumo_track()
    track = dataclasses.replace(track, pool=dataclasses.replace(track.pool, memory="256Mi"))
    backend = docker_backend()
    backend.launch(spec(team_image("oom.py"), track=track))
    end = ended(run_until_ended(backend))
    assert end.blame is Blame.AGENT
    assert "OOM" in (end.reason or ""), end.reason


def test_a_killed_simulator_blames_the_simulator(
    docker_engine: DockerTestEngine, team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    backend.launch(spec(team_image("slow.py"), route="9"))
    events = []
    while not any(e.kind is BackendEventKind.RUNNING for e in events):
        events += backend.poll()
        time.sleep(0.1)
    time.sleep(0.5)  # mid-route: the slow agent's routes take seconds of wall time
    [sim] = [s for s in backend.engine.containers(backend.config.instance) if s.role.value == "simulator"]
    docker_engine.client.containers.get(sim.name).kill()
    end = ended(run_until_ended(backend))
    assert (end.outcome, end.blame) == (AttemptOutcome.FAILED, Blame.SIMULATOR), end.reason


def test_cancel_ends_the_attempt_within_two_seconds(
    docker_engine: DockerTestEngine, team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    handle = backend.launch(spec(team_image("slow.py"), route="3"))
    events = []
    while not any(e.kind is BackendEventKind.RUNNING for e in events):
        events += backend.poll()
        time.sleep(0.1)
    started = time.monotonic()
    backend.cancel(1, handle)
    end = ended(run_until_ended(backend, timeout_s=5))
    assert time.monotonic() - started < 2.0
    assert end.outcome is AttemptOutcome.CANCELLED
    assert _left_behind(docker_engine, backend) == []


def test_a_restarted_dispatcher_adopts_a_running_attempt_by_its_labels(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    from tests.adapters.backends.test_local import _attempt

    first = docker_backend()
    handle = first.launch(spec(team_image("competent.py"), route="0"))
    events = []
    while not any(e.kind is BackendEventKind.RUNNING for e in events):
        events += first.poll()
        time.sleep(0.1)
    # the dispatcher dies: its backend object is gone, the containers run on
    second = docker_backend(config=first.config)
    assert second.adopt([_attempt(1, handle)]) == []
    end = ended(run_until_ended(second))
    assert end.outcome is AttemptOutcome.RECORD, end.reason
    assert second.engine.containers(second.config.instance) == []


def test_an_agent_that_prints_nothing_is_stopped_by_the_silence_watchdog(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    backend.launch(spec(team_image("silent.py"), track=sumo_track(silence_timeout_s=4.0)))
    end = ended(run_until_ended(backend, timeout_s=60))
    assert (end.outcome, end.blame) == (AttemptOutcome.FAILED, Blame.AGENT), end.reason
    assert "printed nothing for 4 s" in (end.reason or ""), end.reason


def test_an_agent_that_stops_answering_fails_its_route_with_the_blame(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    backend.launch(spec(team_image("hangs.py"), route="3"))
    end = ended(run_until_ended(backend))
    assert end.outcome is AttemptOutcome.RECORD and end.record_json is not None, end.reason
    [record] = parse_results(end.record_json, "record").records
    assert record.status == "Failed - Agent crashed"  # the evaluator's step timeout, judged on the trusted side
    assert backend.engine.containers(backend.config.instance) == []


def test_the_logs_reach_the_artifact_store_while_the_attempt_runs(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    backend = docker_backend()
    backend.launch(spec(team_image("competent.py"), route="0"))
    end = ended(run_until_ended(backend))
    stored = backend._artifacts.get(attempt_log_key(1, 1, LogStream.AGENT))
    assert stored == end.logs[LogStream.AGENT.value]
    # the end is written down until the dispatcher has it (the next poll), then the folder goes
    assert json.loads((backend.folder_of(1) / "ended.json").read_text())["outcome"] == "record"
    backend.poll()
    assert not backend.folder_of(1).exists()


def test_an_end_the_dispatcher_never_stored_is_reported_again_after_a_restart(
    team_image: Callable[..., str], docker_backend: Callable[..., DockerBackend]
) -> None:
    from tests.adapters.backends.test_local import _attempt

    first = docker_backend()
    handle = first.launch(spec(team_image("competent.py"), route="0"))
    lost = ended(run_until_ended(first))  # the dispatcher dies before storing this
    second = docker_backend(config=first.config)
    assert second.adopt([_attempt(1, handle)]) == []
    again = ended(run_until_ended(second, timeout_s=10))
    assert (again.outcome, again.blame, again.record_json) == (lost.outcome, lost.blame, lost.record_json)
    assert again.logs == lost.logs
