"""The dispatcher, the state store, the reporter service and the Kubernetes backend together.

The API server is the in-memory fake; each tick a fake "pod" reports through the reporting service
with the token the Job gave its reporter container, then the fake kubelet ends the pod.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.manifests import TOKEN_ENV, KubernetesConfig
from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.route_catalog import FileRouteCatalog
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tasks import RouteTaskStatus
from lbcloud.domain.tracks import ContainerImages
from lbcloud.services.dispatcher import Dispatcher
from lbcloud.services.reporting import ReportingService
from tests.adapters.backends.kubernetes import pod_states
from tests.adapters.backends.kubernetes.fake_api import FakeKubeApi
from tests.adapters.backends.kubernetes.live_attempts import open_store
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.services.dispatch_helpers import make_track, record_doc

IMAGES = ContainerImages("lbcloud:test", "lbcloud:test", ("sim", "{port}"), ("eval", "{route}"), simulator_port=8813)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(tmp_path)
    yield opened
    opened.close()


class FakePods:
    """Plays every new Job's pod: reporter uploads with the Job's token, then the kubelet ends it."""

    def __init__(self, api: FakeKubeApi, reporting: ReportingService, crash_first: set[str]) -> None:
        self.api = api
        self.reporting = reporting
        self.crash_first = set(crash_first)
        self.done: set[str] = set()

    def step(self, *_: Any) -> None:
        for name, job in list(self.api.objects["jobs"].items()):
            if name in self.done:
                continue
            self.done.add(name)
            labels = job["metadata"]["labels"]
            attempt_id, route = int(labels["lbcloud.io/attempt"]), labels["lbcloud.io/route"]
            pod = job["spec"]["template"]["spec"]
            reporter = next(c for c in pod["initContainers"] if c["name"] == "reporter")
            token = next(e["value"] for e in reporter["env"] if e["name"] == TOKEN_ENV)
            self.api.set_pod_status(name, pod_states.running())
            self.reporting.append_log(token, attempt_id, "agent", 0, f"driving route {route}\n".encode())
            if route in self.crash_first:
                self.crash_first.discard(route)
                self.api.set_pod_status(name, pod_states.agent_exited(4))
                continue
            self.reporting.put_record(token, attempt_id, record_doc(route).encode())
            self.api.set_pod_status(name, pod_states.agent_exited(0))


def test_a_submission_runs_to_the_end_on_kubernetes_with_a_simulator_retry(
    store: SqlStateStore, tmp_path: Path
) -> None:
    api = FakeKubeApi()
    artifacts = MemoryArtifacts()
    track = dataclasses.replace(make_track(tmp_path, smoke=None), images=IMAGES)
    backend = KubernetesBackend(api, artifacts, KubernetesConfig(), watch_timeout_s=2)
    dispatcher = Dispatcher(
        store=store, artifacts=artifacts, backend=backend, tracks={track.name: track}, catalog=FileRouteCatalog(),
        clock=SystemClock(), owner="test", capacity={track.pool.name: 2},
    )  # fmt: skip
    pods = FakePods(api, ReportingService(store, artifacts), crash_first={"1"})
    submission, _ = store.create_submission(
        NewSubmission(team="Team K", track=track.name, agent=AgentRef(AgentKind.IMAGE, "registry.example/k:1"))
    )
    try:
        assert dispatcher.run_until_idle(tick_s=0.05, timeout_s=60, on_tick=pods.step)
    finally:
        dispatcher.close()
        api.close()

    final = store.get_submission(submission.id)
    assert final.status is SubmissionStatus.FINISHED, final.reason
    tasks = store.route_tasks(submission.id)
    assert {t.route_id: t.status for t in tasks} == dict.fromkeys(("0", "1", "2"), RouteTaskStatus.DONE)
    attempts = store.attempts(submission_id=submission.id)
    assert len(attempts) == 4, "three routes plus one retry after the simulator crash"
    crashed = [a for a in attempts if a.blame is Blame.SIMULATOR]
    assert len(crashed) == 1 and crashed[0].exit_code == 4
    assert len({a.handle for a in attempts}) == 4, "one Job per attempt"
    logs = [k for k in artifacts.blobs if k.endswith("/agent.log")]
    assert len(logs) == 4
