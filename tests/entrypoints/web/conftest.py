"""Fixtures for the web tests: a real SQLite state store filled through its own methods, the app,
and helpers that take submissions through their lifecycle as the dispatcher would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lbcloud.adapters.agents import AgentChecker
from lbcloud.adapters.store.sql import open_state_store
from lbcloud.domain import artifact_keys
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import NotFound
from lbcloud.domain.results.model import ResultFormat, ResultsFile
from lbcloud.domain.results.scoring import InfractionEvent, build_route_record, collision_message
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, Submission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus, NewRouteTask, RouteTask, RouteTaskStatus
from lbcloud.entrypoints.web.app import create_app
from lbcloud.entrypoints.wiring import System
from lbcloud.services.intake import Intake
from lbcloud.services.ports import AttemptEnd, BlobInfo, MergedResult, StateStore
from lbcloud.services.publish import global_numbers, merge_submission
from lbcloud.settings import Settings, WebSettings

OPERATOR_TOKEN = "operator-secret"
TEAM_TOKENS = {"alpha": "alpha-secret", "beta": "beta-secret"}


class MemoryArtifacts:
    """An in-memory :class:`~lbcloud.services.ports.ArtifactStore` (logs grow by ``append``)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        if key not in self.blobs:
            raise NotFound(f"no artifact {key}")
        return self.blobs[key]

    def exists(self, key: str) -> bool:
        return key in self.blobs

    def list(self, prefix: str) -> list[BlobInfo]:
        return [BlobInfo(k, len(v)) for k, v in sorted(self.blobs.items()) if k.startswith(prefix)]

    def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    def append(self, key: str, data: bytes) -> None:
        self.blobs[key] = self.blobs.get(key, b"") + data


def make_system(tmp_path: Path, web: WebSettings) -> System:
    settings = Settings(data_dir=str(tmp_path), web=web)
    store = open_state_store(f"sqlite:///{tmp_path / 'lbcloud.db'}")
    tracks = settings.track_map()
    store.sync_tracks(list(tracks.values()))
    intake = Intake(store, tracks, AgentChecker([]))
    return System(settings=settings, store=store, artifacts=MemoryArtifacts(), tracks=tracks, intake=intake)


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    built = make_system(tmp_path, WebSettings(operator_token=OPERATOR_TOKEN, team_tokens=dict(TEAM_TOKENS)))
    yield built
    built.close()


@pytest.fixture
def client(system: System) -> Iterator[TestClient]:
    with TestClient(create_app(system)) as test_client:
        yield test_client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OPERATOR = auth(OPERATOR_TOKEN)
ALPHA = auth(TEAM_TOKENS["alpha"])
BETA = auth(TEAM_TOKENS["beta"])


def record_document(task: RouteTask, route_completion: float, collisions: int = 0) -> str:
    """The evaluator's one-route result file for ``task``."""
    events = [
        InfractionEvent("collisions_vehicle", collision_message("vehicle.car", 7 + i, 1.0, 2.0, 0.0))
        for i in range(collisions)
    ]
    record = build_route_record(
        index=0,
        route_id=task.instance_id,
        route_completion=route_completion,
        events=events,
        route_length=task.route_length_m,
        duration_game=120.0,
        duration_system=12.0,
    )
    return dumps_results(
        ResultsFile(format=ResultFormat.V2X, records=(record,), progress=(1, 1), sensors=("carla_camera",))
    )


@dataclass
class Lifecycle:
    """Drives a submission through the store as the dispatcher does (claims, attempts, records, merge)."""

    system: System

    @property
    def store(self) -> StateStore:
        return self.system.store

    def submit(self, team: str, track: str = "sumo-dev", agent: str = "registry.example/agent:1") -> Submission:
        new = NewSubmission(
            team=team, track=track, agent=AgentRef(AgentKind.IMAGE, agent, digest=f"sha256:{team}{agent}")
        )
        submission, _ = self.store.create_submission(new)
        self.store.add_event(submission.id, "submitted", f"{team} submitted {agent}")
        return submission

    def plan(self, submission: Submission, routes: tuple[str, ...] = ("0", "1", "2")) -> list[RouteTask]:
        tasks = self.store.plan_route_tasks(
            submission.id,
            [
                NewRouteTask(route_id=r, repetition=0, position=i, route_length_m=400.0 + 100 * i, expected_s=60.0)
                for i, r in enumerate(routes)
            ],
        )
        self.store.transition(submission.id, SubmissionStatus.QUEUED, "planned")
        return tasks

    def start(self, task: RouteTask) -> Attempt:
        attempt = self.store.claim_task(task.id, backend="local", pool="local", owner="test", lease_s=60)
        assert attempt is not None
        self.store.set_attempt_status(attempt.id, AttemptStatus.RUNNING, node="test-node")
        submission = self.store.get_submission(task.submission_id)
        if submission.status is SubmissionStatus.QUEUED:
            self.store.transition(submission.id, SubmissionStatus.RUNNING, "first attempt started")
        self.store.add_event(
            task.submission_id,
            "attempt_started",
            f"{task.instance_id} started",
            route_id=task.route_id,
            attempt_id=attempt.id,
        )
        return attempt

    def log(self, attempt: Attempt, text: str, stream: str = "agent") -> None:
        artifacts = self.system.artifacts
        assert isinstance(artifacts, MemoryArtifacts)
        artifacts.append(artifact_keys.attempt_log_key(attempt.submission_id, attempt.id, stream), text.encode())

    def finish(self, task: RouteTask, attempt: Attempt, route_completion: float = 100.0, collisions: int = 0) -> None:
        document = record_document(task, route_completion, collisions)
        end = AttemptEnd(AttemptOutcome.RECORD, Blame.NONE, None, 0, document, counted=False, sim_ratio=10.0)
        self.store.end_attempt(attempt.id, end)
        self.store.set_task_status(task.id, RouteTaskStatus.DONE, record_json=document)
        self.system.artifacts.put(
            artifact_keys.route_record_key(task.submission_id, task.route_id, task.repetition), document.encode()
        )
        self.store.add_event(
            task.submission_id, "route_done", f"{task.instance_id} done", route_id=task.route_id, attempt_id=attempt.id
        )
        self.merge(task.submission_id)

    def fail(self, task: RouteTask, attempt: Attempt, blame: Blame, reason: str, final: bool) -> None:
        end = AttemptEnd(AttemptOutcome.FAILED, blame, reason, 1, None, counted=blame is not Blame.AGENT)
        self.store.end_attempt(attempt.id, end)
        status = RouteTaskStatus.FAILED_FINAL if final else RouteTaskStatus.PENDING
        self.store.set_task_status(task.id, status, blame=blame, reason=reason)
        self.store.add_event(
            task.submission_id, "attempt_failed", reason, route_id=task.route_id, attempt_id=attempt.id
        )

    def merge(self, submission_id: int) -> None:
        submission = self.store.get_submission(submission_id)
        track = self.system.tracks[submission.track]
        tasks = self.store.route_tasks(submission_id)
        outcome = merge_submission(track, tasks)
        ds, rc, ip = global_numbers(outcome.results)
        self.store.save_merged_result(
            MergedResult(
                submission_id=submission_id,
                document=dumps_results(outcome.results),
                final=outcome.complete,
                records=len(outcome.results.records),
                total=len(tasks),
                driving_score=ds,
                route_completion=rc,
                infraction_penalty=ip,
                entry_status=outcome.results.entry_status,
                updated_at=self.system.clock.now(),
            )
        )
        if outcome.complete:
            self.system.artifacts.put(
                artifact_keys.manifest_key(submission_id), b'{"lbcloud": "test", "submission": %d}' % submission_id
            )
            self.store.transition(submission_id, SubmissionStatus.FINISHED, "every route has its record")
        elif submission.status is SubmissionStatus.RUNNING:
            self.store.transition(submission_id, SubmissionStatus.PARTIALLY_EVALUATED, "partial results")

    def finished(
        self,
        team: str,
        completions: tuple[float, ...] = (100.0, 80.0, 60.0),
        collisions: int = 0,
        track: str = "sumo-dev",
    ) -> Submission:
        tag = "-".join(f"{c:g}" for c in completions)
        submission = self.submit(team, track, agent=f"registry.example/{team}:{tag}-{collisions}")
        tasks = self.plan(submission, tuple(str(i) for i in range(len(completions))))
        for task, rc in zip(tasks, completions, strict=True):
            self.finish(task, self.start(task), rc, collisions)
        return self.store.get_submission(submission.id)


@pytest.fixture
def lifecycle(system: System) -> Lifecycle:
    return Lifecycle(system)
