"""Pod and Job state → where an attempt stands and, once it ended, who is to blame (pure).

| what the cluster shows                                   | verdict                                       |
|----------------------------------------------------------|-----------------------------------------------|
| the simulator died while the agent ran (checked first)   | failed, blame simulator (OOM: infrastructure) |
| pod ``PodScheduled=False`` (Unschedulable)               | waiting for capacity (not a failure)          |
| Job suspended (Kueue has not admitted it yet)            | waiting for capacity                          |
| participant image cannot be pulled / invalid name        | failed, blame agent, the registry's message   |
| one of our images cannot be pulled, config errors        | failed, blame infrastructure                  |
| agent exits 0 (pod or Job succeeded)                     | succeeded (the record comes from the reporter)|
| agent exits 3 / OOMKilled / other non-zero               | failed, blame agent                           |
| agent exits 4 or 5, simulator dies or never gets ready   | failed, blame simulator                       |
| agent exits 2, our containers fail or run out of memory  | failed, blame infrastructure                  |
| evicted, preempted, node drained (``DisruptionTarget``)  | failed, blame infrastructure, preempted       |
| pod deadline (the route budget) exceeded                 | failed, blame agent (hung past its budget)    |
| agent silent for the track's silence timeout (exit 124)  | failed, blame agent (hung)                    |
| CARLA evaluator exits 255 / 1 (see ``domain.carla``)     | failed, blame simulator / agent               |
| Job deleted after a cancel                               | cancelled                                     |
| Job deleted by someone else                              | failed, blame infrastructure                  |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from lbcloud.adapters.backends.kubernetes.manifests import (
    AGENT,
    EXIT_AGENT_SILENT,
    OUR_CONTAINERS,
    POD_FAILURE_RULES,
    SIMULATOR,
    SIMULATOR_KIND_ANNOTATION,
    Manifest,
)
from lbcloud.domain.blame import (
    EXIT_AGENT_REJECTED,
    EXIT_SIMULATION_CRASHED,
    EXIT_SIMULATOR_UNREACHABLE,
    EXIT_USAGE,
    Blame,
)
from lbcloud.domain.carla import CARLA_EXIT_CRASHED, CarlaObservation, Ending, judge_carla_attempt

IMAGE_PULL_FATAL = frozenset({"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
"""Waiting reasons that end an attempt: the kubelet already retried (or can never succeed)."""
CONFIG_FATAL = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
DISRUPTION_REASONS = frozenset(
    {
        "PreemptionByScheduler",
        "PreemptionByKubeScheduler",
        "DeletionByTaintManager",
        "EvictionByEvictionAPI",
        "DeletionByPodGC",
        "TerminationByKubelet",
    }
)
_RULE_INDEX = re.compile(r"rule at index (\d+)")


class Phase(StrEnum):
    PENDING = "pending"
    WAITING_CAPACITY = "waiting_capacity"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where an attempt stands. For ``failed``: blame, a sentence, and whether it was a preemption."""

    phase: Phase
    message: str = ""
    blame: Blame = Blame.NONE
    exit_code: int | None = None
    preempted: bool = False
    node: str | None = None
    stop_job: bool = False
    """The Job is still alive but the attempt is over (image pull errors): the backend deletes it."""
    simulator_died: bool = False
    """The simulator died while the agent ran: a record the evaluator wrote counts only if it is a
    driving result (:func:`lbcloud.domain.carla.record_outlives_simulator`)."""
    record_decides: bool = False
    """A CARLA evaluator's exit code: a final route record, if one was reported, is the result."""


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _condition(obj: Manifest | None, kind: str) -> Mapping[str, Any] | None:
    for cond in _get(obj, "status", "conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def _statuses(pod: Manifest) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _status_of(pod: Manifest, name: str) -> Mapping[str, Any] | None:
    return next((s for s in _statuses(pod) if s.get("name") == name), None)


def _image_of(pod: Manifest, name: str) -> str:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") == name:
            return str(container.get("image", ""))
    return ""


def _terminated(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if status is None:
        return None
    state = _get(status, "state", "terminated") or _get(status, "lastState", "terminated")
    return dict(state) if state else None


def _newest_pod(pods: Sequence[Manifest]) -> Manifest | None:
    if not pods:
        return None
    return max(pods, key=lambda p: (str(_get(p, "metadata", "creationTimestamp") or ""), _get(p, "metadata", "name")))


def exit_code_failure(code: int) -> tuple[Blame, str]:
    """Blame and sentence for a non-zero exit of the evaluator in the agent container."""
    if code == EXIT_AGENT_REJECTED:
        return Blame.AGENT, "the evaluator rejected the agent (it could not be set up or its sensors were invalid)"
    if code == EXIT_SIMULATION_CRASHED:
        return Blame.SIMULATOR, "the simulation crashed"
    if code == EXIT_SIMULATOR_UNREACHABLE:
        return Blame.SIMULATOR, "the simulator was unreachable"
    if code == EXIT_USAGE:
        return Blame.INFRASTRUCTURE, "the evaluator was started with a wrong command line (exit 2)"
    if code == EXIT_AGENT_SILENT:
        return Blame.AGENT, "the agent hung: it printed nothing for the track's silence timeout and was stopped"
    if code in (137, 143):
        return Blame.AGENT, f"the agent container was killed (exit {code})"
    return Blame.AGENT, f"the agent crashed: the evaluator exited with code {code}"


def _waiting_failure(pod: Manifest) -> Verdict | None:
    """A container stuck waiting for a reason that will not go away (image pulls, bad config)."""
    for status in _statuses(pod):
        waiting = _get(status, "state", "waiting") or {}
        reason = str(waiting.get("reason", ""))
        name = str(status.get("name", ""))
        detail = str(waiting.get("message", "")).strip() or reason
        if reason in IMAGE_PULL_FATAL:
            image = status.get("image") or _image_of(pod, name)
            if name == AGENT:
                return Verdict(
                    Phase.FAILED,
                    f"the agent image {image} cannot be pulled: {detail}",
                    Blame.AGENT,
                    stop_job=True,
                )
            return Verdict(
                Phase.FAILED,
                f"the {name} image {image} cannot be pulled: {detail}",
                Blame.INFRASTRUCTURE,
                stop_job=True,
            )
        if reason in CONFIG_FATAL:
            return Verdict(
                Phase.FAILED,
                f"the {name} container cannot start: {reason}: {detail}",
                Blame.INFRASTRUCTURE,
                stop_job=True,
            )
    return None


def _disruption(pod: Manifest) -> Verdict | None:
    reason = str(_get(pod, "status", "reason") or "")
    message = str(_get(pod, "status", "message") or "").strip()
    cond = _condition(pod, "DisruptionTarget")
    if cond is not None:
        why = cond.get("reason") or "disrupted"
        text = cond.get("message") or message
        return Verdict(
            Phase.FAILED, f"the pod was disrupted ({why}): {text}".rstrip(": "), Blame.INFRASTRUCTURE, preempted=True
        )
    if reason in (
        "Evicted",
        "Preempting",
        "Shutdown",
        "NodeShutdown",
        "Terminated",
        "NodeLost",
        "UnexpectedAdmissionError",
    ):
        return Verdict(
            Phase.FAILED,
            f"the pod was evicted ({reason}): {message}".rstrip(": "),
            Blame.INFRASTRUCTURE,
            preempted=True,
        )
    return None


def _is_carla(pod: Manifest) -> bool:
    return bool(_get(pod, "metadata", "annotations", SIMULATOR_KIND_ANNOTATION) == "carla")


def simulator_death(pod: Manifest) -> tuple[str | None, bool]:
    """Whether the simulator died while the agent still ran: (a sentence or None, killed for memory).

    The simulator's wrapper exits 0 whenever lbcloud or the kubelet stopped it, so a non-zero end
    or a restart (native sidecars are restarted) is a death. One before the agent started (a
    sidecar restarted while starting up, then ready) or after it ended (a crash while shutting
    down) did not interrupt the route and does not count."""
    status = _status_of(pod, SIMULATOR)
    if status is None:
        return None, False
    agent_status = _status_of(pod, AGENT)
    agent = _terminated(agent_status)
    agent_end = str(agent.get("finishedAt") or "") if agent else ""
    agent_start = str(
        (agent or {}).get("startedAt") or _get(agent_status, "state", "running", "startedAt") or ""
    )
    candidates = []
    if int(status.get("restartCount") or 0) > 0 and _get(status, "lastState", "terminated"):
        candidates.append((dict(_get(status, "lastState", "terminated")), True))
    if _get(status, "state", "terminated"):
        candidates.append((dict(_get(status, "state", "terminated")), False))
    for term, restarted in candidates:
        code = int(term.get("exitCode", 0))
        oom = term.get("reason") == "OOMKilled"
        if code == 0 and not restarted and not oom:
            continue
        ended = str(term.get("finishedAt") or "")
        if ended and ((agent_end and ended > agent_end) or (agent_start and ended < agent_start)):
            continue  # outside the route: not what ended it
        what = "was killed for memory" if oom else f"exited with code {code}"
        return f"the simulator {what}" + (" and was restarted" if restarted else ""), oom
    return None, False


def _carla_failure(pod: Manifest) -> Verdict | None:
    """A CARLA pod's failure: simulator death first, then the official evaluator's exit codes."""
    death, oom = simulator_death(pod)
    agent = _terminated(_status_of(pod, AGENT))
    if death is None:
        if agent is None:
            return None
        if agent.get("reason") == "OOMKilled":
            limit = _limit_of(pod, AGENT)
            code = int(agent.get("exitCode", 137))
            return Verdict(Phase.FAILED, f"the agent ran out of memory (limit {limit})", Blame.AGENT, exit_code=code)
        code = int(agent.get("exitCode", 1))
        if code == 0:
            return None
        if code in (EXIT_USAGE, EXIT_AGENT_SILENT, EXIT_AGENT_REJECTED, EXIT_SIMULATOR_UNREACHABLE):
            # the wrapper's own codes (usage, silence, setup, simulator never ready) mean what they say
            blame, text = exit_code_failure(code)
            return Verdict(Phase.FAILED, text, blame, exit_code=code)
    code_seen = int(agent.get("exitCode", 1)) if agent is not None else None
    ending = Ending.SILENCE if code_seen == EXIT_AGENT_SILENT else Ending.EXIT
    judged = judge_carla_attempt(
        CarlaObservation(ending=ending, exit_code=code_seen, simulator_death=death, simulator_oom=oom)
    )
    return Verdict(
        Phase.FAILED,
        judged.reason,
        judged.blame,
        exit_code=code_seen,
        simulator_died=death is not None,
        record_decides=death is None,
    )


def _container_failure(pod: Manifest) -> Verdict | None:
    if _is_carla(pod):
        carla = _carla_failure(pod)
        if carla is not None:
            return carla
    agent = _terminated(_status_of(pod, AGENT))
    if agent is not None:
        code = int(agent.get("exitCode", 1))
        if agent.get("reason") == "OOMKilled":
            limit = _limit_of(pod, AGENT)
            return Verdict(Phase.FAILED, f"the agent ran out of memory (limit {limit})", Blame.AGENT, exit_code=code)
        if code != 0:
            blame, text = exit_code_failure(code)
            return Verdict(Phase.FAILED, text, blame, exit_code=code)
    simulator = _terminated(_status_of(pod, SIMULATOR))
    if agent is not None and int(agent.get("exitCode", 1)) == 0:
        simulator = None  # the route was over: how the simulator ended afterwards changes nothing
    if simulator is not None and simulator.get("reason") == "OOMKilled":
        return Verdict(
            Phase.FAILED, f"the simulator ran out of memory (limit {_limit_of(pod, SIMULATOR)})", Blame.INFRASTRUCTURE
        )
    if simulator is not None and int(simulator.get("exitCode", 0)) != 0 and agent is None:
        return Verdict(Phase.FAILED, f"the simulator exited with code {simulator.get('exitCode')}", Blame.SIMULATOR)
    for name in sorted(OUR_CONTAINERS - {SIMULATOR}):
        state = _terminated(_status_of(pod, name))
        if state is not None and int(state.get("exitCode", 0)) != 0:
            why = (
                "ran out of memory"
                if state.get("reason") == "OOMKilled"
                else f"exited with code {state.get('exitCode')}"
            )
            return Verdict(Phase.FAILED, f"lbcloud's {name} container {why}", Blame.INFRASTRUCTURE)
    return None


def _limit_of(pod: Manifest, name: str) -> str:
    spec = pod.get("spec") or {}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if container.get("name") == name:
            return str(_get(container, "resources", "limits", "memory") or "unknown")
    return "unknown"


def _agent_started(pod: Manifest) -> bool:
    status = _status_of(pod, AGENT)
    return bool(status and (_get(status, "state", "running") or _terminated(status)))


def _deadline(pod: Manifest) -> Verdict:
    seconds = _get(pod, "spec", "activeDeadlineSeconds")
    if _agent_started(pod):
        return Verdict(Phase.FAILED, f"the agent ran past its time budget ({seconds} s)", Blame.AGENT)
    simulator = _status_of(pod, SIMULATOR)
    if simulator is not None and not simulator.get("ready") and not _get(simulator, "started"):
        return Verdict(
            Phase.FAILED, f"the simulator did not become ready within the deadline ({seconds} s)", Blame.SIMULATOR
        )
    return Verdict(
        Phase.FAILED, f"the pod did not start the agent within its deadline ({seconds} s)", Blame.INFRASTRUCTURE
    )


def _pod_failed(pod: Manifest) -> Verdict:
    disruption = _disruption(pod)
    if disruption is not None:
        return disruption
    died, oom = simulator_death(pod)
    if died is not None:  # first: whatever the agent did after the simulator died follows from it
        blame = Blame.INFRASTRUCTURE if oom else Blame.SIMULATOR
        code = _terminated(_status_of(pod, AGENT))
        exit_code = int(code.get("exitCode", 1)) if code is not None else None
        return Verdict(
            Phase.FAILED, f"the simulator died during the route: {died}", blame, exit_code=exit_code,
            simulator_died=True,
        )  # fmt: skip
    if _get(pod, "status", "reason") == "DeadlineExceeded":
        return _deadline(pod)
    failure = _container_failure(pod)
    if failure is not None:
        return failure
    agent = _terminated(_status_of(pod, AGENT))
    if agent is not None and int(agent.get("exitCode", 1)) == 0:
        # the evaluator finished; only a co-container (the simulator, stopped or killed) ended non-zero
        # after it: the route's record stands (the backend turns a missing record into a failure)
        return Verdict(Phase.SUCCEEDED, "finished (the simulator ended with an error after the agent)", exit_code=0)
    message = str(_get(pod, "status", "message") or _get(pod, "status", "reason") or "no reason given")
    return Verdict(Phase.FAILED, f"the pod failed: {message}", Blame.INFRASTRUCTURE)


def _job_failed(job: Manifest) -> Verdict:
    cond = _condition(job, "Failed") or {}
    reason = str(cond.get("reason", ""))
    message = str(cond.get("message", ""))
    match = _RULE_INDEX.search(message)
    if reason == "PodFailurePolicy" and match and int(match.group(1)) < len(POD_FAILURE_RULES):
        rule = POD_FAILURE_RULES[int(match.group(1))]
        code = re.search(r"exit code (\d+)", message)
        exit_code = int(code.group(1)) if code else None
        return Verdict(
            Phase.FAILED,
            f"{rule.reason} ({message})",
            rule.blame,
            exit_code=exit_code,
            preempted=rule.disruption,
            record_decides=exit_code == CARLA_EXIT_CRASHED,
        )
    if reason == "DeadlineExceeded":
        return Verdict(Phase.FAILED, f"the Job ran past its deadline: {message}", Blame.AGENT)
    return Verdict(
        Phase.FAILED, f"the Job failed ({reason or 'no reason'}): {message}".rstrip(": "), Blame.INFRASTRUCTURE
    )


def _unschedulable(pod: Manifest) -> str | None:
    for cond in _get(pod, "status", "conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return str(cond.get("message") or cond.get("reason") or "no node has room for it yet")
    return None


def job_failed(job: Manifest | None) -> bool:
    """Whether the Job carries a true ``Failed`` condition."""
    return job is not None and _condition(job, "Failed") is not None


def assess(
    job: Manifest | None, pods: Sequence[Manifest], *, cancel_requested: bool = False, pod_grace_over: bool = True
) -> Verdict:
    """Where the attempt of ``job`` (``None``: deleted) with these pods stands.

    ``pod_grace_over=False`` says the caller may still see the failed pod of a failed Job (the two
    arrive on separate watches): the verdict then waits for it instead of blaming the Job alone."""
    pod = _newest_pod([p for p in pods if not _get(p, "metadata", "deletionTimestamp")] or list(pods))
    node = str(_get(pod, "spec", "nodeName")) if pod is not None and _get(pod, "spec", "nodeName") else None
    if cancel_requested:
        if job is None:
            return Verdict(Phase.CANCELLED, "cancelled", node=node)
        return Verdict(Phase.PENDING, "being cancelled", node=node)
    if job is None:
        return Verdict(Phase.FAILED, "the Job was deleted outside lbcloud", Blame.INFRASTRUCTURE, node=node)

    if pod is not None:
        phase = _get(pod, "status", "phase")
        if phase == "Succeeded":
            died = _carla_failure(pod) if _is_carla(pod) else None  # simulator death comes first
            if died is not None and died.simulator_died:
                return _with_node(died, node)
            return Verdict(Phase.SUCCEEDED, "finished", exit_code=0, node=node)
        if phase == "Failed":
            return _with_node(_pod_failed(pod), node)
    if _condition(job, "Complete") is not None:
        return Verdict(Phase.SUCCEEDED, "finished", exit_code=0, node=node)
    if _condition(job, "Failed") is not None:
        if pod is not None and not _get(pod, "metadata", "deletionTimestamp"):
            # the Job's update overtook its pod's: the pod's final state has the details
            return Verdict(Phase.PENDING, "the Job failed; waiting for its pod's final state", node=node)
        reason = str((_condition(job, "Failed") or {}).get("reason", ""))
        if pod is None and not pod_grace_over and reason not in ("PodFailurePolicy", "DeadlineExceeded"):
            return Verdict(Phase.PENDING, "the Job failed; waiting for its pod to show up", node=node)
        return _with_node(_job_failed(job), node)
    if pod is None:
        if _get(job, "spec", "suspend") is True:
            queue = _get(job, "metadata", "labels", "kueue.x-k8s.io/queue-name")
            where = f" in queue {queue}" if queue else ""
            return Verdict(Phase.WAITING_CAPACITY, f"waiting for capacity: the Job is suspended until admitted{where}")
        return Verdict(Phase.PENDING, "the Job has no pod yet")
    waiting = _waiting_failure(pod)
    if waiting is not None:
        return _with_node(waiting, node)
    unschedulable = _unschedulable(pod)
    if unschedulable is not None:
        return Verdict(Phase.WAITING_CAPACITY, f"waiting for capacity: {unschedulable}")
    if _get(pod, "status", "phase") == "Running":
        return Verdict(Phase.RUNNING, "running", node=node)
    return Verdict(Phase.PENDING, "starting", node=node)


def _with_node(verdict: Verdict, node: str | None) -> Verdict:
    if verdict.node == node:
        return verdict
    return replace(verdict, node=node)


def attempt_id_of(obj: Manifest) -> int | None:
    """The attempt id label of a Job or pod lbcloud created (None for anything else)."""
    value = _get(obj, "metadata", "labels", "lbcloud.io/attempt")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
