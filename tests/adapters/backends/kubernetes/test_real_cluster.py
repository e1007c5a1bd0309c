"""KubernetesBackend against a real API server (kube-test-cluster, Kubernetes v1.20).

The server runs the Job, garbage-collector and namespace controllers but no kubelet: the tests play
the kubelet by patching ``pods/status`` (:class:`FakeKubelet`). v1.20 drops ``podFailurePolicy`` and
ignores native sidecars (``initContainers[].restartPolicy``), so these tests render the
``compat="1.20"`` variant (simulator and reporter as ordinary containers, no podFailurePolicy or
TTL); the full variant is validated offline against the 1.29–1.33 schemas in test_manifests.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.client import KubeApiError, KubeClient
from lbcloud.adapters.backends.kubernetes.manifests import KubernetesConfig, render_job
from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus
from lbcloud.services.ports import BackendEvent, BackendEventKind
from lbcloud.services.reporting import attempt_record_key
from tests.adapters.backends.kubernetes import pod_states
from tests.adapters.backends.kubernetes.conftest import wait_for
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.adapters.backends.kubernetes.records import checkpoint_document
from tests.adapters.backends.kubernetes.specs import attempt_spec
from tests.services.kubernetes import KubeNamespace

pytestmark = [pytest.mark.k8s_real, pytest.mark.slow]
# the 1.20 Job controller backs off ~10 s after a failed pod before it marks the Job Failed
TIMEOUT_S = 60.0


class FakeKubelet:
    """Writes pod status as a kubelet would (there is none in the test cluster)."""

    def __init__(self, namespace: KubeNamespace) -> None:
        from kubernetes import client

        self.namespace = namespace.name
        self.api = namespace.cluster.api_client()
        self.core = client.CoreV1Api(self.api)

    def pod_name(self, job: str) -> str:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items
            if pods:
                return str(pods[0].metadata.name)
            time.sleep(0.05)
        raise AssertionError(f"the Job controller made no pod for {job}")

    def set_status(self, job: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(self.pod_name(job), self.namespace, {"status": status})

    def pods_of(self, job: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items)


@pytest.fixture
def kubelet(kube_namespace: KubeNamespace) -> Iterator[FakeKubelet]:
    kubelet = FakeKubelet(kube_namespace)
    yield kubelet
    kubelet.api.close()


@pytest.fixture
def artifacts() -> MemoryArtifacts:
    return MemoryArtifacts()


@pytest.fixture
def make_real_backend(
    kube_namespace: KubeNamespace, artifacts: MemoryArtifacts
) -> Iterator[Callable[[], KubernetesBackend]]:
    made: list[KubernetesBackend] = []

    def make() -> KubernetesBackend:
        api = KubeClient.from_config(kube_namespace.name, kubeconfig=str(kube_namespace.cluster.kubeconfig))
        config = KubernetesConfig(namespace=kube_namespace.name, compat="1.20")
        backend = KubernetesBackend(api, artifacts, config, watch_timeout_s=5)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def _attempt(attempt_id: int, handle: str) -> Attempt:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Attempt(
        id=attempt_id, task_id=attempt_id * 10, submission_id=3, number=1, backend="kubernetes", pool="default",
        status=AttemptStatus.RUNNING, owner="d1", lease_expires_at=None, handle=handle, token="t", outcome=None,
        blame=Blame.NONE, reason=None, exit_code=None, counted=False, created_at=now, started_at=now, ended_at=None,
    )  # fmt: skip


def _wait(backend: KubernetesBackend, attempt_id: int, kind: BackendEventKind, seen: list[BackendEvent] | None = None):  # type: ignore[no-untyped-def]
    return wait_for(backend, attempt_id, kind, timeout_s=TIMEOUT_S, collected=seen)


def test_success_reports_the_record_and_the_job_completes(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet, artifacts: MemoryArtifacts
) -> None:
    backend = make_real_backend()
    handle = backend.launch(attempt_spec(11))
    kubelet.set_status(handle, pod_states.running())
    assert _wait(backend, 11, BackendEventKind.RUNNING).node is None  # no scheduler: no node name
    document = checkpoint_document("RouteScenario_2_rep0")
    artifacts.put(attempt_record_key(3, 11), document.encode())  # what the reporter API stores
    kubelet.set_status(handle, pod_states.agent_exited(0))
    ended = _wait(backend, 11, BackendEventKind.ENDED)
    assert (ended.outcome, ended.record_json) == (AttemptOutcome.RECORD, document)


def test_simulator_failure_then_a_retry_in_a_new_job(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet, artifacts: MemoryArtifacts
) -> None:
    backend = make_real_backend()
    first = backend.launch(attempt_spec(21))
    kubelet.set_status(first, pod_states.agent_exited(4))
    failed = _wait(backend, 21, BackendEventKind.ENDED)
    assert (failed.outcome, failed.blame, failed.exit_code) == (AttemptOutcome.FAILED, Blame.SIMULATOR, 4)
    second = backend.launch(attempt_spec(22))  # the dispatcher's retry: a new attempt, a new Job
    assert second != first
    artifacts.put(attempt_record_key(3, 22), checkpoint_document("RouteScenario_2_rep0").encode())
    kubelet.set_status(second, pod_states.agent_exited(0))
    assert _wait(backend, 22, BackendEventKind.ENDED).outcome is AttemptOutcome.RECORD


def test_eviction_is_infrastructure_and_not_counted(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet
) -> None:
    backend = make_real_backend()
    handle = backend.launch(attempt_spec(31))
    kubelet.set_status(handle, pod_states.running())
    _wait(backend, 31, BackendEventKind.RUNNING)
    kubelet.set_status(handle, pod_states.evicted())
    ended = _wait(backend, 31, BackendEventKind.ENDED)
    assert (ended.blame, ended.preempted) == (Blame.INFRASTRUCTURE, True)


def test_participant_image_pull_error_blames_the_agent_with_the_registrys_message(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet
) -> None:
    backend = make_real_backend()
    spec = attempt_spec(41, agent_image="registry.example.org/team-a/agent:typo")
    handle = backend.launch(spec)
    message = 'Back-off pulling image "registry.example.org/team-a/agent:typo": manifest unknown'
    kubelet.set_status(handle, pod_states.image_pull_backoff("agent", spec.agent.ref, message))
    ended = _wait(backend, 41, BackendEventKind.ENDED)
    assert (ended.outcome, ended.blame) == (AttemptOutcome.FAILED, Blame.AGENT)
    assert ended.reason == f"the agent image {spec.agent.ref} cannot be pulled: {message}"
    deadline = time.monotonic() + TIMEOUT_S
    while backend.api.read_job(handle) is not None:  # the stuck Job is deleted
        assert time.monotonic() < deadline, "the Job was not deleted"
        time.sleep(0.1)


def test_unschedulable_is_waiting_for_capacity(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet
) -> None:
    backend = make_real_backend()
    handle = backend.launch(attempt_spec(51))
    kubelet.set_status(handle, pod_states.unschedulable())
    waiting = _wait(backend, 51, BackendEventKind.WAITING_CAPACITY)
    assert "Insufficient nvidia.com/gpu" in waiting.message
    assert 51 in backend.tracked()


def test_cancel_removes_the_job_and_its_pods(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet
) -> None:
    backend = make_real_backend()
    handle = backend.launch(attempt_spec(61))
    kubelet.set_status(handle, pod_states.running())
    _wait(backend, 61, BackendEventKind.RUNNING)
    backend.cancel(61, handle)
    ended = _wait(backend, 61, BackendEventKind.ENDED)
    assert ended.outcome is AttemptOutcome.CANCELLED
    assert backend.api.read_job(handle) is None
    assert kubelet.pods_of(handle) == [], "Foreground deletion removed the pods before the Job"


def test_dispatcher_restart_mid_run_reconciles_by_labels_without_loss_or_duplicates(
    make_real_backend: Callable[[], KubernetesBackend], kubelet: FakeKubelet, artifacts: MemoryArtifacts
) -> None:
    first = make_real_backend()
    handles = {i: first.launch(attempt_spec(i, route_id=str(i))) for i in (71, 72, 73)}
    for handle in handles.values():
        kubelet.set_status(handle, pod_states.running())
    for attempt_id in handles:
        _wait(first, attempt_id, BackendEventKind.RUNNING)
    first.close()  # the dispatcher dies

    artifacts.put(attempt_record_key(3, 72), checkpoint_document("RouteScenario_72_rep0").encode())
    kubelet.set_status(handles[72], pod_states.agent_exited(0))  # finishes while nobody watches
    kubelet.set_status(handles[73], pod_states.agent_exited(3))  # fails while nobody watches

    second = make_real_backend()
    seen: list[BackendEvent] = list(second.adopt([_attempt(i, h) for i, h in handles.items()]))
    ended_at_adopt = {e.attempt_id: e for e in seen if e.kind is BackendEventKind.ENDED}
    assert set(ended_at_adopt) == {72, 73}
    assert ended_at_adopt[72].outcome is AttemptOutcome.RECORD
    assert ended_at_adopt[73].blame is Blame.AGENT
    assert list(second.tracked()) == [71]
    kubelet.set_status(handles[71], pod_states.agent_exited(4))
    _wait(second, 71, BackendEventKind.ENDED, seen)
    ends = [e.attempt_id for e in seen if e.kind is BackendEventKind.ENDED]
    assert sorted(ends) == [71, 72, 73], "every attempt ended exactly once"
    jobs = second.api.list("jobs", "app.kubernetes.io/component=evaluation")
    assert len(jobs.items) == 3, "nothing was created twice"


def test_a_v1_20_server_refuses_native_sidecars_and_drops_pod_failure_policy(kube_namespace: KubeNamespace) -> None:
    """Why the real-server tests use compat="1.20": the newer fields do not survive a 1.20 server."""
    api = KubeClient.from_config(kube_namespace.name, kubeconfig=str(kube_namespace.cluster.kubeconfig))
    try:
        current = render_job(attempt_spec(81), KubernetesConfig(namespace=kube_namespace.name))
        with pytest.raises(KubeApiError, match=r"startupProbe.*must not be set for init containers"):
            api.create(current)  # without native sidecars, a probed init container is invalid
        old = render_job(attempt_spec(82), KubernetesConfig(namespace=kube_namespace.name, compat="1.20"))
        old["spec"]["podFailurePolicy"] = current["spec"]["podFailurePolicy"]
        created = api.create(old)
        assert "podFailurePolicy" not in created["spec"], "1.20 drops the field silently"
    finally:
        api.close()
