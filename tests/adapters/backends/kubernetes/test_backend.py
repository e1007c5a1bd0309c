"""KubernetesBackend against the in-memory API: launch, watch, verdicts, cancel, adopt, relist."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from lbcloud.adapters.backends.kubernetes.backend import KubernetesBackend
from lbcloud.adapters.backends.kubernetes.manifests import job_name
from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus
from lbcloud.services.ports import BackendEventKind
from lbcloud.services.reporting import attempt_record_key
from tests.adapters.backends.kubernetes import pod_states
from tests.adapters.backends.kubernetes.conftest import wait_for
from tests.adapters.backends.kubernetes.fake_api import FakeKubeApi
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.adapters.backends.kubernetes.records import checkpoint_document
from tests.adapters.backends.kubernetes.specs import attempt_spec

MakeBackend = Callable[..., KubernetesBackend]


def _attempt(spec_id: int, handle: str | None, submission_id: int = 3) -> Attempt:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Attempt(
        id=spec_id, task_id=spec_id * 10, submission_id=submission_id, number=1, backend="kubernetes",
        pool="default", status=AttemptStatus.RUNNING, owner="d1", lease_expires_at=None, handle=handle,
        token=f"token-{spec_id}", outcome=None, blame=Blame.NONE, reason=None, exit_code=None, counted=False,
        created_at=now, started_at=now, ended_at=None,
    )  # fmt: skip


def test_launch_creates_one_labelled_job_and_the_network_policy(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    assert handle == job_name(attempt_spec(7))
    job = fake_api.objects["jobs"][handle]
    assert job["metadata"]["labels"]["lbcloud.io/attempt"] == "7"
    assert ("NetworkPolicy", "lbcloud-evaluation-egress") in fake_api.others
    backend.launch(attempt_spec(8))
    assert fake_api.calls["ensure NetworkPolicy"] == 1, "the policy is applied once per backend"


def test_success_returns_the_reported_record(
    make_backend: MakeBackend, fake_api: FakeKubeApi, artifacts: MemoryArtifacts
) -> None:
    backend = make_backend()
    spec = attempt_spec(7)
    handle = backend.launch(spec)
    fake_api.set_pod_status(handle, pod_states.running())
    running = wait_for(backend, 7, BackendEventKind.RUNNING)
    assert running.node == "node-1"
    document = checkpoint_document("RouteScenario_2_rep0")
    artifacts.put(attempt_record_key(3, 7), document.encode())
    fake_api.set_pod_status(handle, pod_states.agent_exited(0))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.outcome is AttemptOutcome.RECORD
    assert ended.blame is Blame.NONE
    assert ended.record_json == document
    assert ended.sim_ratio == 3.0
    assert 7 not in backend.tracked()


@pytest.mark.parametrize(
    ("status", "outcome", "blame"),
    [
        # a driving result cannot come from a dead simulator: the route ended before, its record stands
        ("Failed - Agent got blocked", AttemptOutcome.RECORD, Blame.NONE),
        # an agent fault or a crash written after the death follows from it: the simulator's, retried
        ("Failed - Agent crashed", AttemptOutcome.FAILED, Blame.SIMULATOR),
        ("Failed - Simulation crashed", AttemptOutcome.FAILED, Blame.SIMULATOR),
    ],
)
def test_after_a_simulator_death_only_a_driving_result_stands(
    make_backend: MakeBackend, fake_api: FakeKubeApi, artifacts: MemoryArtifacts, status: str,
    outcome: AttemptOutcome, blame: Blame,
) -> None:  # fmt: skip
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    artifacts.put(attempt_record_key(3, 7), checkpoint_document("RouteScenario_2_rep0", status).encode())
    fake_api.set_pod_status(handle, pod_states.simulator_died(agent_code=4))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert (ended.outcome, ended.blame) == (outcome, blame), ended.reason
    if outcome is AttemptOutcome.RECORD:
        assert ended.reason == "the route ended before the simulator died; its record stands"


def test_success_without_a_reported_record_is_an_infrastructure_failure(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.agent_exited(0))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert (ended.outcome, ended.blame) == (AttemptOutcome.FAILED, Blame.INFRASTRUCTURE)
    assert "no route record" in (ended.reason or "")


def test_simulator_crash_exit_code_blames_the_simulator(make_backend: MakeBackend, fake_api: FakeKubeApi) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.agent_exited(4))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert (ended.outcome, ended.blame, ended.exit_code) == (AttemptOutcome.FAILED, Blame.SIMULATOR, 4)
    assert not ended.preempted


def test_eviction_is_infrastructure_and_marked_preempted(make_backend: MakeBackend, fake_api: FakeKubeApi) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.evicted())
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert (ended.blame, ended.preempted) == (Blame.INFRASTRUCTURE, True)
    assert "low on resource" in (ended.reason or "")


def test_participant_image_pull_error_blames_the_agent_and_stops_the_job(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    backend = make_backend()
    spec = attempt_spec(7, agent_image="registry.example.org/team-a/agent:missing")
    handle = backend.launch(spec)
    message = "rpc error: manifest for registry.example.org/team-a/agent:missing not found: manifest unknown"
    fake_api.set_pod_status(handle, pod_states.image_pull_backoff("agent", spec.agent.ref, message))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert (ended.outcome, ended.blame) == (AttemptOutcome.FAILED, Blame.AGENT)
    assert "registry.example.org/team-a/agent:missing cannot be pulled" in (ended.reason or "")
    assert "manifest unknown" in (ended.reason or "")
    assert b"cannot be pulled" in ended.logs["lbcloud"]
    assert handle not in fake_api.objects["jobs"], "a Job that can never start is deleted"


def test_our_image_pull_error_is_infrastructure(make_backend: MakeBackend, fake_api: FakeKubeApi) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.image_pull_backoff("simulator", "lbcloud:latest", "not found"))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.blame is Blame.INFRASTRUCTURE
    assert not ended.preempted


def test_unschedulable_is_waiting_for_capacity_then_running(make_backend: MakeBackend, fake_api: FakeKubeApi) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.unschedulable(), node=None)
    waiting = wait_for(backend, 7, BackendEventKind.WAITING_CAPACITY)
    assert "Insufficient nvidia.com/gpu" in waiting.message
    fake_api.set_pod_status(handle, pod_states.running())
    wait_for(backend, 7, BackendEventKind.RUNNING)
    assert 7 in backend.tracked(), "waiting for capacity is not a failure"


def test_cancel_deletes_the_job_and_its_pods(make_backend: MakeBackend, fake_api: FakeKubeApi) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.running())
    wait_for(backend, 7, BackendEventKind.RUNNING)
    backend.cancel(7, handle)
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.outcome is AttemptOutcome.CANCELLED
    assert handle not in fake_api.objects["jobs"]
    assert not any(p["metadata"]["labels"]["job-name"] == handle for p in fake_api.objects["pods"].values())


def test_cancel_of_a_job_that_is_already_gone_ends_at_once(make_backend: MakeBackend) -> None:
    backend = make_backend()
    backend.cancel(9, "lb-gone-a9")
    ended = wait_for(backend, 9, BackendEventKind.ENDED)
    assert ended.outcome is AttemptOutcome.CANCELLED


def test_a_job_deleted_by_someone_else_is_an_infrastructure_failure(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    backend = make_backend()
    handle = backend.launch(attempt_spec(7))
    fake_api.set_pod_status(handle, pod_states.running())
    wait_for(backend, 7, BackendEventKind.RUNNING)
    fake_api.delete_job_silently(handle)
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.blame is Blame.INFRASTRUCTURE
    assert "outside lbcloud" in (ended.reason or "")


def test_adopt_after_restart_reattaches_by_label_and_loses_nothing(
    make_backend: MakeBackend, fake_api: FakeKubeApi, artifacts: MemoryArtifacts
) -> None:
    first = make_backend()
    running_handle = first.launch(attempt_spec(1))
    finished_handle = first.launch(attempt_spec(2))
    cleaned_handle = first.launch(attempt_spec(3))
    fake_api.set_pod_status(running_handle, pod_states.running())
    for informer in first.informers:  # the dispatcher dies (the API server lives on)
        informer.stop(0)

    # while nobody watches: attempt 2 fails, attempt 3 succeeds and its Job is cleaned up by TTL
    fake_api.set_pod_status(finished_handle, pod_states.agent_exited(3))
    artifacts.put(attempt_record_key(3, 3), checkpoint_document("RouteScenario_2_rep0").encode())
    fake_api.set_pod_status(cleaned_handle, pod_states.agent_exited(0))
    fake_api.delete_job_silently(cleaned_handle)

    second = make_backend()
    attempts = [
        _attempt(1, running_handle), _attempt(2, finished_handle), _attempt(3, cleaned_handle), _attempt(4, "lb-x-a4")
    ]  # fmt: skip
    ended = {e.attempt_id: e for e in second.adopt(attempts)}
    assert set(ended) == {2, 3, 4}
    assert (ended[2].outcome, ended[2].blame) == (AttemptOutcome.FAILED, Blame.AGENT)
    assert ended[3].outcome is AttemptOutcome.RECORD
    assert (ended[4].outcome, ended[4].blame) == (AttemptOutcome.LOST, Blame.INFRASTRUCTURE)
    assert list(second.tracked()) == [1]
    fake_api.set_pod_status(running_handle, pod_states.agent_exited(5))
    late = wait_for(second, 1, BackendEventKind.ENDED)
    assert late.blame is Blame.SIMULATOR
    assert fake_api.calls["create Job"] == 3, "adopting creates nothing"


def test_adopt_finds_a_job_whose_name_the_dispatcher_never_recorded(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    first = make_backend()
    handle = first.launch(attempt_spec(5))
    fake_api.set_pod_status(handle, pod_states.running())
    for informer in first.informers:  # the dispatcher dies before storing the handle
        informer.stop(0)
    second = make_backend()
    assert second.adopt([_attempt(5, None)]) == []
    running = wait_for(second, 5, BackendEventKind.RUNNING)
    assert running.handle == handle, "the dispatcher learns the Job's name, so it can cancel it"


def test_watch_relists_after_410_gone_and_misses_no_change(
    make_backend: MakeBackend, fake_api: FakeKubeApi, artifacts: MemoryArtifacts
) -> None:
    backend = make_backend(start_watch=False)
    jobs, pods = backend.informers
    handle = backend.launch(attempt_spec(7))
    jobs.relist()
    pods.relist()
    assert backend.poll() == []
    fake_api.set_pod_status(handle, pod_states.agent_exited(4))
    fake_api.forget_history()  # compaction: the informers' resourceVersion is now too old
    jobs.start()
    pods.start()
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.blame is Blame.SIMULATOR
    assert pods.stats.expired + jobs.stats.expired >= 1
    assert pods.stats.lists >= 2


def test_agent_images_outside_the_allowed_registries_are_refused(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    backend = make_backend(allowed_registries=["registry.internal/"])
    backend.launch(attempt_spec(7))
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.blame is Blame.AGENT
    assert "not from an allowed registry" in (ended.reason or "")
    assert fake_api.calls["create Job"] == 0


def test_relaunching_the_same_attempt_attaches_to_the_existing_job(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    backend = make_backend()
    first = backend.launch(attempt_spec(7))
    again = backend.launch(attempt_spec(7))
    assert first == again
    assert len(fake_api.objects["jobs"]) == 1


def test_a_failed_job_waits_briefly_for_its_pod_before_blaming_the_infrastructure(
    make_backend: MakeBackend, fake_api: FakeKubeApi
) -> None:
    """The Job's and the pod's updates come on separate watches: a Job seen failed before its pod must
    not be judged from the Job alone (that would blame the infrastructure for an agent's exit code)."""
    from lbcloud.adapters.backends.kubernetes.backend import POD_GRACE_S

    clock = [1000.0]
    backend = make_backend(monotonic=lambda: clock[0])
    handle = backend.launch(attempt_spec(7))
    fake_api.delete_pods_of(handle)  # the pod is not (yet) visible to the backend
    fake_api.set_job_status(
        handle,
        {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]},
    )
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        assert all(e.kind is not BackendEventKind.ENDED for e in backend.poll()), "no verdict without the pod"
        time.sleep(0.05)
    clock[0] += POD_GRACE_S + 1
    ended = wait_for(backend, 7, BackendEventKind.ENDED)
    assert ended.blame is Blame.INFRASTRUCTURE and "BackoffLimitExceeded" in (ended.reason or "")
