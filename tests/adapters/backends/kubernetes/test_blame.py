"""Pod and Job state → verdict: the blame table of docs/kubernetes.md, row by row."""

from __future__ import annotations

from typing import Any

import pytest

from lbcloud.adapters.backends.kubernetes.blame import Phase, assess, exit_code_failure
from lbcloud.domain.blame import Blame
from tests.adapters.backends.kubernetes import pod_states

JOB: dict[str, Any] = {"metadata": {"name": "lb-x-a1", "labels": {"lbcloud.io/attempt": "1"}}, "status": {}}


def pod(status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "lb-x-a1-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "agent", "image": "team/agent:1",
                                     "resources": {"limits": {"memory": "2Gi"}}}], **spec},
            "status": status}  # fmt: skip


def job_with(condition: dict[str, Any]) -> dict[str, Any]:
    return {**JOB, "status": {"conditions": [{"status": "True", **condition}]}}


@pytest.mark.parametrize(
    ("status", "phase", "blame", "preempted"),
    [
        (pod_states.unschedulable(), Phase.WAITING_CAPACITY, Blame.NONE, False),
        (pod_states.running(), Phase.RUNNING, Blame.NONE, False),
        (pod_states.agent_exited(0), Phase.SUCCEEDED, Blame.NONE, False),
        (pod_states.agent_exited(3), Phase.FAILED, Blame.AGENT, False),
        (pod_states.agent_exited(4), Phase.FAILED, Blame.SIMULATOR, False),
        (pod_states.agent_exited(5), Phase.FAILED, Blame.SIMULATOR, False),
        (pod_states.agent_exited(2), Phase.FAILED, Blame.INFRASTRUCTURE, False),
        (pod_states.agent_exited(1), Phase.FAILED, Blame.AGENT, False),
        (pod_states.agent_exited(137, "OOMKilled"), Phase.FAILED, Blame.AGENT, False),
        (pod_states.evicted(), Phase.FAILED, Blame.INFRASTRUCTURE, True),
        (pod_states.preempted(), Phase.FAILED, Blame.INFRASTRUCTURE, True),
        (pod_states.image_pull_backoff("agent", "team/agent:1", "not found"), Phase.FAILED, Blame.AGENT, False),
        (pod_states.image_pull_backoff("contents", "lb/c:1", "denied"), Phase.FAILED, Blame.INFRASTRUCTURE, False),
        (pod_states.deadline_exceeded(agent_started=True), Phase.FAILED, Blame.AGENT, False),
        (pod_states.deadline_exceeded(agent_started=False), Phase.FAILED, Blame.INFRASTRUCTURE, False),
    ],
)
def test_pod_states_map_to_verdicts(status: dict[str, Any], phase: Phase, blame: Blame, preempted: bool) -> None:
    verdict = assess(JOB, [pod(status)])
    assert (verdict.phase, verdict.blame, verdict.preempted) == (phase, blame, preempted)
    assert verdict.message


def test_agent_oom_message_names_the_limit() -> None:
    verdict = assess(JOB, [pod(pod_states.agent_exited(137, "OOMKilled"))])
    assert verdict.message == "the agent ran out of memory (limit 2Gi)"


def test_participant_image_pull_keeps_the_registry_message_and_asks_to_stop_the_job() -> None:
    status = pod_states.image_pull_backoff("agent", "team/agent:1", "pull access denied, repository does not exist")
    verdict = assess(JOB, [pod(status)])
    assert verdict.stop_job
    assert "team/agent:1" in verdict.message and "pull access denied" in verdict.message


def test_a_first_err_image_pull_is_not_yet_final() -> None:
    status = pod_states.image_pull_backoff("agent", "team/agent:1", "timeout")
    status["containerStatuses"][0]["state"]["waiting"]["reason"] = "ErrImagePull"
    assert assess(JOB, [pod(status)]).phase is Phase.PENDING


def test_simulator_that_never_got_ready_before_the_deadline_blames_the_simulator() -> None:
    status = pod_states.deadline_exceeded(agent_started=False)
    status["initContainerStatuses"] = [{"name": "simulator", "ready": False, "started": False,
                                        "state": {"running": {}}, "restartCount": 3}]  # fmt: skip
    assert assess(JOB, [pod(status)]).blame is Blame.SIMULATOR


@pytest.mark.parametrize(
    ("message", "blame", "preempted"),
    [
        ("Container agent for pod lbcloud/p failed with exit code 3 matching FailJob rule at index 0", Blame.AGENT,
         False),
        ("Container agent for pod lbcloud/p failed with exit code 4 matching FailJob rule at index 1",
         Blame.SIMULATOR, False),
        ("Pod lbcloud/p has condition DisruptionTarget matching FailJob rule at index 3", Blame.INFRASTRUCTURE,
         True),
    ],
)  # fmt: skip
def test_pod_failure_policy_messages_are_read_back_when_the_pod_is_gone(
    message: str, blame: Blame, preempted: bool
) -> None:
    verdict = assess(job_with({"type": "Failed", "reason": "PodFailurePolicy", "message": message}), [])
    assert (verdict.phase, verdict.blame, verdict.preempted) == (Phase.FAILED, blame, preempted)


def test_job_conditions_decide_when_no_pod_is_left() -> None:
    assert assess(job_with({"type": "Complete"}), []).phase is Phase.SUCCEEDED
    failed = assess(job_with({"type": "Failed", "reason": "BackoffLimitExceeded", "message": "limit"}), [])
    assert failed.blame is Blame.INFRASTRUCTURE


def test_deleted_jobs_are_cancelled_only_when_lbcloud_asked() -> None:
    assert assess(None, [], cancel_requested=True).phase is Phase.CANCELLED
    assert assess(JOB, [pod(pod_states.running())], cancel_requested=True).phase is Phase.PENDING
    gone = assess(None, [])
    assert (gone.phase, gone.blame) == (Phase.FAILED, Blame.INFRASTRUCTURE)


def test_a_failed_reporter_is_infrastructure() -> None:
    status = pod_states.agent_exited(0)
    status["phase"] = "Failed"
    status["containerStatuses"][2]["state"]["terminated"] = {"exitCode": 1, "reason": "Error"}
    verdict = assess(JOB, [pod(status)])
    assert verdict.blame is Blame.INFRASTRUCTURE and "reporter" in verdict.message


def test_exit_code_table() -> None:
    assert exit_code_failure(3)[0] is Blame.AGENT
    assert exit_code_failure(4)[0] is Blame.SIMULATOR
    assert exit_code_failure(2)[0] is Blame.INFRASTRUCTURE
    assert exit_code_failure(139)[0] is Blame.AGENT


def test_a_failed_job_seen_before_its_pods_final_state_waits_for_the_pod() -> None:
    failed_job = job_with({"type": "Failed", "reason": "BackoffLimitExceeded", "message": "limit"})
    assert assess(failed_job, [pod(pod_states.running())]).phase is Phase.PENDING
    assert assess(failed_job, [pod(pod_states.agent_exited(5))]).blame is Blame.SIMULATOR
    deleting = pod(pod_states.running())
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:01Z"
    assert assess(failed_job, [deleting]).phase is Phase.FAILED


def test_a_job_suspended_by_kueue_is_waiting_for_capacity() -> None:
    queued = {"metadata": {"name": "lb-x-a1", "labels": {"kueue.x-k8s.io/queue-name": "lbcloud-gpu"}},
              "spec": {"suspend": True}, "status": {}}  # fmt: skip
    verdict = assess(queued, [])
    assert verdict.phase is Phase.WAITING_CAPACITY
    assert "lbcloud-gpu" in verdict.message


# ------------------------------------------------------------------------------ CARLA pods

CARLA_ANNOTATIONS = {"lbcloud.io/simulator": "carla"}


def _carla_pod(status: dict[str, object]) -> dict[str, object]:
    made = pod(status)
    made["metadata"]["annotations"] = dict(CARLA_ANNOTATIONS)  # type: ignore[index]
    return made


def _ended(name: str, code: int, at: str, restarts: int = 0, reason: str = "Error") -> dict[str, object]:
    state = {"exitCode": code, "reason": reason, "finishedAt": at}
    status: dict[str, object] = {"name": name, "restartCount": restarts, "state": {"terminated": state}}
    if restarts:
        status["state"] = {"running": {"startedAt": at}}
        status["lastState"] = {"terminated": state}
    return status


def _carla_status(agent: dict[str, object], simulator: dict[str, object], **extra: object) -> dict[str, object]:
    failed = agent["state"].get("terminated", {}).get("exitCode", 0) != 0  # type: ignore[attr-defined]
    return {"phase": "Failed" if failed else "Succeeded", "containerStatuses": [agent, simulator], **extra}


@pytest.mark.parametrize("agent_code", [255, 1, 124, 4])
def test_a_simulator_that_died_first_is_blamed_whatever_the_agent_did_next(agent_code: int) -> None:
    status = _carla_status(
        _ended("agent", agent_code, "2026-01-01T00:05:00Z"), _ended("simulator", 139, "2026-01-01T00:04:00Z")
    )
    verdict = assess(JOB, [_carla_pod(status)])
    assert (verdict.phase, verdict.blame) == (Phase.FAILED, Blame.SIMULATOR), verdict.message
    assert verdict.simulator_died and "139" in verdict.message


def test_a_simulator_death_comes_before_the_pod_deadline() -> None:
    status = _carla_status(
        _ended("agent", 137, "2026-01-01T00:05:00Z"), _ended("simulator", 139, "2026-01-01T00:01:00Z"),
        reason="DeadlineExceeded",
    )  # fmt: skip
    assert assess(JOB, [_carla_pod(status)]).blame is Blame.SIMULATOR


def test_a_restarted_sidecar_simulator_is_a_death_even_if_the_agent_exited_0() -> None:
    status = _carla_status(
        _ended("agent", 0, "2026-01-01T00:05:00Z"), _ended("simulator", 134, "2026-01-01T00:02:00Z", restarts=1)
    )
    verdict = assess(JOB, [_carla_pod(status)])
    assert (verdict.phase, verdict.blame) == (Phase.FAILED, Blame.SIMULATOR)


def test_a_simulator_crash_after_the_agent_ended_does_not_count() -> None:
    status = _carla_status(
        _ended("agent", 0, "2026-01-01T00:05:00Z"), _ended("simulator", 139, "2026-01-01T00:05:09Z")
    )
    assert assess(JOB, [_carla_pod(status)]).phase is Phase.SUCCEEDED


@pytest.mark.parametrize(
    ("code", "blame", "record_decides"),
    [(255, Blame.SIMULATOR, True), (1, Blame.AGENT, True), (124, Blame.AGENT, False), (3, Blame.AGENT, False)],
)
def test_official_exit_codes_of_a_carla_evaluator(code: int, blame: Blame, record_decides: bool) -> None:
    status = _carla_status(
        _ended("agent", code, "2026-01-01T00:05:00Z"), _ended("simulator", 0, "2026-01-01T00:05:01Z")
    )
    verdict = assess(JOB, [_carla_pod(status)])
    assert (verdict.blame, verdict.record_decides) == (blame, record_decides), verdict.message


def test_a_job_failed_on_the_carla_crash_rule_lets_a_final_record_decide() -> None:
    message = "Container agent for pod lbcloud/p failed with exit code 255 matching FailJob rule at index 4"
    verdict = assess(job_with({"type": "Failed", "reason": "PodFailurePolicy", "message": message}), [])
    assert (verdict.blame, verdict.exit_code, verdict.record_decides) == (Blame.SIMULATOR, 255, True)


def test_any_tracks_simulator_that_died_first_is_blamed_before_the_agents_exit() -> None:
    status = _carla_status(
        _ended("agent", 1, "2026-01-01T00:05:00Z"), _ended("simulator", 139, "2026-01-01T00:04:58Z")
    )
    verdict = assess(JOB, [pod(status)])  # a SUMO pod: no CARLA annotation
    assert (verdict.blame, verdict.simulator_died) == (Blame.SIMULATOR, True)
    oom = _ended("simulator", 137, "2026-01-01T00:04:58Z", reason="OOMKilled")
    assert assess(JOB, [pod(_carla_status(_ended("agent", 1, "2026-01-01T00:05:00Z"), oom))]).blame is (
        Blame.INFRASTRUCTURE
    )


def test_a_sidecar_simulator_that_restarted_before_the_agent_started_did_not_interrupt_the_route() -> None:
    agent = _ended("agent", 0, "2026-01-01T00:05:00Z")
    agent["state"]["terminated"]["startedAt"] = "2026-01-01T00:02:00Z"  # type: ignore[index]
    simulator = _ended("simulator", 139, "2026-01-01T00:01:00Z", restarts=1)
    assert assess(JOB, [_carla_pod(_carla_status(agent, simulator))]).phase is Phase.SUCCEEDED


def _failed_pod(agent: tuple[int, str], simulator: tuple[int, str], reporter: tuple[int, str]) -> dict[str, Any]:
    ended = {"agent": "2026-01-01T00:05:00Z", "simulator": "2026-01-01T00:05:01Z", "reporter": "2026-01-01T00:05:02Z"}

    def terminated(name: str, code: int, reason: str) -> dict[str, Any]:
        return {"name": name, "ready": False, "restartCount": 0, "image": f"{name}:1", "imageID": "",
                "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": ended[name]}}}  # fmt: skip

    return pod({"phase": "Failed", "containerStatuses": [terminated("agent", *agent),
                terminated("simulator", *simulator), terminated("reporter", *reporter)]})  # fmt: skip


def test_a_simulator_killed_after_the_agent_finished_leaves_the_route_finished() -> None:
    # seen on a real node: the simulator's container killed just after the evaluator finished the route;
    # the pod fails (a container ended non-zero) but the route's record is complete
    verdict = assess(JOB, [_failed_pod((0, "Completed"), (137, "Error"), (0, "Completed"))])
    assert (verdict.phase, verdict.blame) == (Phase.SUCCEEDED, Blame.NONE)
    # still the simulator's fault while the route ran (the evaluator says so with exit 4)
    verdict = assess(JOB, [_failed_pod((4, "Error"), (137, "Error"), (0, "Completed"))])
    assert (verdict.phase, verdict.blame) == (Phase.FAILED, Blame.SIMULATOR)
    # a reporter that could not deliver is ours, whatever the agent did
    verdict = assess(JOB, [_failed_pod((0, "Completed"), (0, "Completed"), (1, "Error"))])
    assert (verdict.phase, verdict.blame) == (Phase.FAILED, Blame.INFRASTRUCTURE)
