"""The Kubernetes :class:`~lbcloud.services.ports.AttemptBackend`: one Job per attempt.

Two informers (Jobs and pods, selected by lbcloud's labels) keep a cache of the cluster in
background threads; :meth:`KubernetesBackend.poll` only reads that cache for the attempts that
changed since the last poll, so it never blocks on the API server. Verdicts come from
:func:`lbcloud.adapters.backends.kubernetes.blame.assess`; on success the route record is read from
the artifact store, where the dispatcher's reporter API put it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from lbcloud.adapters.backends.kubernetes.blame import Phase, Verdict, assess, attempt_id_of, job_failed
from lbcloud.adapters.backends.kubernetes.client import Kind, KubeApi, KubeApiError
from lbcloud.adapters.backends.kubernetes.manifests import (
    EVALUATION_SELECTOR,
    KubernetesConfig,
    Manifest,
    render_attempt,
    render_network_policy,
)
from lbcloud.adapters.backends.kubernetes.watch import Informer
from lbcloud.domain.blame import Blame, blame_of_record_status
from lbcloud.domain.carla import record_is_final, record_outlives_simulator
from lbcloud.domain.errors import Conflict, LbcloudError, NotFound
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.services.ports import ArtifactStore, AttemptSpec, BackendEvent, BackendEventKind
from lbcloud.services.reporting import attempt_record_key

# a failed Job whose pod the watch has not delivered yet: wait this long for the pod's details
POD_GRACE_S = 5.0
log = logging.getLogger(__name__)


class ClusterView:
    """The informers' sink: latest Job and pods per attempt id, and which attempts changed."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.jobs: dict[int, Manifest] = {}
        self.pods: dict[int, dict[str, Manifest]] = {}
        self.dirty: dict[int, float] = {}
        self.lock = threading.Lock()
        self.wakeup = threading.Event()
        self._monotonic = monotonic

    def _touch(self, attempt_id: int) -> None:
        self.dirty.setdefault(attempt_id, self._monotonic())
        self.wakeup.set()

    def relisted(self, kind: Kind, items: list[Manifest]) -> None:
        fresh: dict[int, list[Manifest]] = {}
        for obj in items:
            attempt_id = attempt_id_of(obj)
            if attempt_id is not None:
                fresh.setdefault(attempt_id, []).append(obj)
        with self.lock:
            if kind == "jobs":
                for attempt_id in set(self.jobs) | set(fresh):
                    new = fresh.get(attempt_id, [None])[0]
                    if self.jobs.get(attempt_id) != new:
                        if new is None:
                            self.jobs.pop(attempt_id, None)
                        else:
                            self.jobs[attempt_id] = new
                        self._touch(attempt_id)
            else:
                for attempt_id in set(self.pods) | set(fresh):
                    new_pods = {str(p["metadata"]["name"]): p for p in fresh.get(attempt_id, [])}
                    if self.pods.get(attempt_id, {}) != new_pods:
                        if new_pods:
                            self.pods[attempt_id] = new_pods
                        else:
                            self.pods.pop(attempt_id, None)
                        self._touch(attempt_id)

    def changed(self, kind: Kind, event_type: str, obj: Manifest) -> None:
        attempt_id = attempt_id_of(obj)
        if attempt_id is None:
            return
        with self.lock:
            if kind == "jobs":
                if event_type == "DELETED":
                    self.jobs.pop(attempt_id, None)
                else:
                    self.jobs[attempt_id] = obj
            else:
                name = str(obj["metadata"]["name"])
                if event_type == "DELETED":
                    pods = self.pods.get(attempt_id, {})
                    pods.pop(name, None)
                    if not pods:
                        self.pods.pop(attempt_id, None)
                else:
                    self.pods.setdefault(attempt_id, {})[name] = obj
            self._touch(attempt_id)

    def take_dirty(self) -> dict[int, float]:
        with self.lock:
            dirty, self.dirty = self.dirty, {}
            self.wakeup.clear()
            return dirty

    def snapshot(self, attempt_id: int) -> tuple[Manifest | None, list[Manifest]]:
        with self.lock:
            return self.jobs.get(attempt_id), list(self.pods.get(attempt_id, {}).values())


@dataclass(slots=True)
class _Tracked:
    attempt_id: int
    submission_id: int
    job_name: str
    seen_job: bool = False
    cancel_requested: bool = False
    last_phase: Phase | None = None
    failed_without_pod_since: float | None = None


@dataclass(slots=True)
class BackendStats:
    launched: int = 0
    ended: int = 0
    api_calls: int = 0
    polls: int = 0
    change_latencies_s: list[float] = field(default_factory=list)


class KubernetesBackend:
    """Runs attempts as Kubernetes Jobs. See ``docs/kubernetes.md``.

    ``api``: a :class:`KubeApi` bound to ``config.namespace``; ``artifacts``: where the reporter API
    stores records (read back on success). ``start_watch=False`` leaves the informers to the caller
    (tests drive them by hand); ``allowed_registries`` (prefixes) refuses other agent images.
    """

    name = "kubernetes"

    def __init__(
        self,
        api: KubeApi,
        artifacts: ArtifactStore,
        config: KubernetesConfig,
        *,
        start_watch: bool = True,
        watch_timeout_s: int = 60,
        allowed_registries: Sequence[str] = (),
        ensure_network_policy: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.artifacts = artifacts
        self.config = config
        self.allowed_registries = tuple(allowed_registries)
        self.stats = BackendStats()
        self._monotonic = monotonic
        self.view = ClusterView(monotonic)
        self._tracked: dict[int, _Tracked] = {}
        self._pending: list[BackendEvent] = []
        self._lock = threading.Lock()
        self._policy_ready = not ensure_network_policy
        self.informers = [
            Informer(api, "jobs", EVALUATION_SELECTOR, self.view, watch_timeout_s=watch_timeout_s),
            Informer(api, "pods", EVALUATION_SELECTOR, self.view, watch_timeout_s=watch_timeout_s),
        ]
        if start_watch:
            for informer in self.informers:
                informer.start()

    # ---------------------------------------------------------------------------------- launch
    def launch(self, spec: AttemptSpec) -> str:
        """Create the attempt's Job (idempotent for the same attempt); return the Job name.

        Raises :class:`ConfigError` when the track cannot run here and :class:`Unavailable` when the
        API server cannot be reached (nothing was created then, or the Job is found again by adopt).
        """
        objects = render_attempt(spec, self.config)
        name = str(objects.job["metadata"]["name"])
        tracked = _Tracked(spec.attempt_id, spec.submission_id, name)
        refusal = self._registry_refusal(spec.agent.ref)
        if refusal is not None:
            with self._lock:
                self._pending.append(
                    BackendEvent(
                        spec.attempt_id,
                        BackendEventKind.ENDED,
                        refusal,
                        outcome=AttemptOutcome.FAILED,
                        blame=Blame.AGENT,
                        reason=refusal,
                    )
                )
            return name
        if not self._policy_ready:
            self._ensure_network_policy()
        with self._lock:
            self._tracked[spec.attempt_id] = tracked
        try:
            self.stats.api_calls += 1
            created = self.api.create(objects.job)
        except Conflict:
            log.info("Job %s already exists; attaching to it", name)
            created = {}
        except LbcloudError:
            with self._lock:
                self._tracked.pop(spec.attempt_id, None)
            raise
        if objects.claim_template is not None:
            claim = objects.claim_template
            uid = (created.get("metadata") or {}).get("uid")
            if uid:  # owned by the Job, so deleting the Job removes it
                claim["metadata"]["ownerReferences"] = [
                    {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid, "blockOwnerDeletion": True}
                ]
            try:
                self.stats.api_calls += 1
                self.api.create(claim)
            except Conflict:
                pass
        self.stats.launched += 1
        with self.view.lock:
            self.view._touch(spec.attempt_id)
        return name

    def _ensure_network_policy(self) -> None:
        """Apply the evaluation NetworkPolicy once; without the right to, rely on the cluster's own
        (``lbcloud cluster`` installs the same policy) and say so once."""
        self.stats.api_calls += 1
        try:
            self.api.ensure(render_network_policy(self.config))
        except KubeApiError as err:
            log.warning("cannot apply the evaluation NetworkPolicy (%s); relying on the cluster's policies", err)
        self._policy_ready = True

    def _registry_refusal(self, image: str) -> str | None:
        if not self.allowed_registries or any(image.startswith(p) for p in self.allowed_registries):
            return None
        return f"the agent image {image} is not from an allowed registry ({', '.join(self.allowed_registries)})"

    # ------------------------------------------------------------------------------------ poll
    def poll(self) -> list[BackendEvent]:
        """Events for attempts whose Job or pods changed since the last poll (reads the cache only;
        talks to the API server just to stop a Job whose attempt already failed)."""
        self.stats.polls += 1
        with self._lock:
            events, self._pending = self._pending, []
        now = self._monotonic()
        dirty = self.view.take_dirty()
        for waiting in self._tracked.values():  # a failed Job still waiting for its pod's details
            if waiting.failed_without_pod_since is not None:
                dirty.setdefault(waiting.attempt_id, now)
        for attempt_id, since in dirty.items():
            tracked = self._tracked.get(attempt_id)
            if tracked is None:
                continue
            event = self._assess(tracked)
            if event is not None:
                self.stats.change_latencies_s.append(now - since)
                events.append(event)
        return events

    def _assess(self, tracked: _Tracked) -> BackendEvent | None:
        job, pods = self.view.snapshot(tracked.attempt_id)
        if job is not None:
            tracked.seen_job = True
        elif not tracked.seen_job and not tracked.cancel_requested:
            return None  # created a moment ago; the watch has not shown it yet
        now = self._monotonic()
        if job_failed(job) and not pods:
            tracked.failed_without_pod_since = tracked.failed_without_pod_since or now
        else:
            tracked.failed_without_pod_since = None
        waited = now - tracked.failed_without_pod_since if tracked.failed_without_pod_since else 0.0
        verdict = assess(job, pods, cancel_requested=tracked.cancel_requested, pod_grace_over=waited >= POD_GRACE_S)
        if verdict.phase is tracked.last_phase and not verdict.phase.ended:
            return None
        tracked.last_phase = verdict.phase
        if verdict.phase is Phase.RUNNING:
            return BackendEvent(tracked.attempt_id, BackendEventKind.RUNNING, verdict.message, node=verdict.node)
        if verdict.phase is Phase.WAITING_CAPACITY:
            return BackendEvent(tracked.attempt_id, BackendEventKind.WAITING_CAPACITY, verdict.message)
        if not verdict.phase.ended:
            return None
        if verdict.stop_job:
            self._delete(tracked.job_name, "Background")
        return self._end(tracked, verdict)

    def _end(self, tracked: _Tracked, verdict: Verdict) -> BackendEvent:
        with self._lock:
            self._tracked.pop(tracked.attempt_id, None)
        self.stats.ended += 1
        if verdict.phase is Phase.CANCELLED:
            return BackendEvent(
                tracked.attempt_id,
                BackendEventKind.ENDED,
                "cancelled",
                outcome=AttemptOutcome.CANCELLED,
                reason="cancelled",
                node=verdict.node,
            )
        record = self._record(tracked.submission_id, tracked.attempt_id)
        status, ratio = _record_facts(record) if record is not None else ("", None)
        summary = {"lbcloud": f"kubernetes: Job {tracked.job_name}: {verdict.message}\n".encode()}
        record_stands = verdict.phase is Phase.SUCCEEDED or verdict.blame is Blame.AGENT
        if verdict.record_decides:  # CARLA: e.g. 255 with a "sensors were invalid" record
            record_stands = record_stands or record_is_final(status)
        reason = None if verdict.phase is Phase.SUCCEEDED else verdict.message
        if verdict.simulator_died:  # only a driving result, complete before the death, still counts
            record_stands = record_outlives_simulator(status)
            reason = "the route ended before the simulator died; its record stands"
        if record is not None and record_stands:
            # a record is the result, whatever the exit code (agent faults are written into it)
            return BackendEvent(
                tracked.attempt_id,
                BackendEventKind.ENDED,
                f"route record reported ({status})",
                outcome=AttemptOutcome.RECORD,
                blame=blame_of_record_status(status),
                reason=reason,
                exit_code=verdict.exit_code,
                record_json=record,
                node=verdict.node,
                sim_ratio=ratio,
                logs=summary,
            )
        if verdict.phase is Phase.SUCCEEDED:
            verdict = Verdict(
                Phase.FAILED,
                "the evaluator finished but no route record reached the dispatcher",
                Blame.INFRASTRUCTURE,
                exit_code=verdict.exit_code,
                node=verdict.node,
            )
            summary = {"lbcloud": f"kubernetes: Job {tracked.job_name}: {verdict.message}\n".encode()}
        return BackendEvent(
            tracked.attempt_id,
            BackendEventKind.ENDED,
            verdict.message,
            outcome=AttemptOutcome.FAILED,
            blame=verdict.blame,
            reason=verdict.message,
            exit_code=verdict.exit_code,
            record_json=record,
            preempted=verdict.preempted,
            node=verdict.node,
            sim_ratio=ratio,
            logs=summary,
        )

    def _record(self, submission_id: int, attempt_id: int) -> str | None:
        key = attempt_record_key(submission_id, attempt_id)
        try:
            return self.artifacts.get(key).decode("utf-8")
        except NotFound:
            return None

    # ---------------------------------------------------------------------------------- cancel
    def cancel(self, attempt_id: int, handle: str) -> None:
        """Foreground-delete the Job (pods first); ``ended/cancelled`` follows once it is gone."""
        with self._lock:
            tracked = self._tracked.get(attempt_id)
            if tracked is None:
                tracked = _Tracked(attempt_id, 0, handle)
                self._tracked[attempt_id] = tracked
            tracked.cancel_requested = True
        if not self._delete(handle, "Foreground"):
            with self.view.lock:
                self.view._touch(attempt_id)

    def _delete(self, name: str, propagation: str) -> bool:
        self.stats.api_calls += 1
        return self.api.delete_job(name, "Foreground" if propagation == "Foreground" else "Background")

    # ----------------------------------------------------------------------------------- adopt
    def adopt(self, attempts: Sequence[Attempt]) -> list[BackendEvent]:
        """Re-attach to live attempts after a restart, by the ``lbcloud.io/attempt`` label.

        Lists Jobs and pods once (unless the informers are already synced); attempts whose Job ended
        or vanished come back as ``ended`` events (a vanished Job whose record was reported counts
        as a record: its Job was cleaned up after success)."""
        for informer in self.informers:
            if not informer.synced.wait(0 if not informer.alive else 10):
                self.stats.api_calls += 1
                informer.relist()
        events: list[BackendEvent] = []
        for attempt in attempts:
            job, _ = self.view.snapshot(attempt.id)
            name = attempt.handle or (str(job["metadata"]["name"]) if job else f"attempt-{attempt.id}")
            tracked = _Tracked(attempt.id, attempt.submission_id, name, seen_job=job is not None)
            with self._lock:
                self._tracked[attempt.id] = tracked
            if job is None:
                record = self._record(attempt.submission_id, attempt.id)
                if record is not None:
                    events.append(self._end(tracked, Verdict(Phase.SUCCEEDED, "finished")))
                else:
                    with self._lock:
                        self._tracked.pop(attempt.id, None)
                    self.stats.ended += 1
                    message = f"the Job of attempt {attempt.id} was not found after a dispatcher restart"
                    events.append(
                        BackendEvent(
                            attempt.id,
                            BackendEventKind.ENDED,
                            message,
                            outcome=AttemptOutcome.LOST,
                            blame=Blame.INFRASTRUCTURE,
                            reason=message,
                        )
                    )
                continue
            event = self._assess(tracked)
            if event is not None and attempt.handle is None:
                # the dispatcher stopped before recording the Job's name: tell it now (to cancel it)
                event = replace(event, handle=name)
            if event is not None and event.kind is BackendEventKind.ENDED:
                events.append(event)
            elif event is not None:
                with self._lock:
                    self._pending.append(event)
        return events

    # --------------------------------------------------------------------------------- cleanup
    def cleanup_finished(self) -> list[str]:
        """Delete finished Jobs no attempt is waiting on (for servers without the TTL controller)."""
        deleted = []
        with self.view.lock:
            jobs = list(self.view.jobs.items())
        for attempt_id, job in jobs:
            if attempt_id in self._tracked:
                continue
            conditions = (job.get("status") or {}).get("conditions") or []
            if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions):
                name = str(job["metadata"]["name"])
                if self._delete(name, "Background"):
                    deleted.append(name)
        return deleted

    def tracked(self) -> Iterable[int]:
        """Attempt ids the backend is watching for (launched or adopted, not yet ended)."""
        with self._lock:
            return list(self._tracked)

    def close(self) -> None:
        """Stop the watch threads and close the API connections (which ends watches in flight)."""
        for informer in self.informers:
            informer.stop(join_s=0)
        closer = getattr(self.api, "close", None)
        if callable(closer):
            closer()
        for informer in self.informers:
            informer.stop(join_s=1.0)


def _record_facts(record: str) -> tuple[str, float | None]:
    """The last record's status and simulation ratio (game time / system time)."""
    try:
        results = parse_results(record, "reported route record")
    except LbcloudError:
        return "", None
    if not results.records:
        return "", None
    last = results.records[-1]
    system = float(last.meta.duration_system)
    ratio = round(float(last.meta.duration_game) / system, 3) if system > 0 else None
    return last.status, ratio
