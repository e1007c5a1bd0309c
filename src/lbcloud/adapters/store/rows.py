"""Conversions between table rows and the domain's frozen values."""

from __future__ import annotations

from lbcloud.adapters.store.schema import (
    ArtifactRow,
    AttemptRow,
    EventRow,
    MergedResultRow,
    RouteTaskRow,
    StatusChangeRow,
    SubmissionRow,
)
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import AgentKind, AgentRef, SourceKind, StatusChange, Submission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus, RouteTask, RouteTaskStatus
from lbcloud.services.ports import ArtifactRef, Event, MergedResult


def submission(row: SubmissionRow) -> Submission:
    return Submission(
        id=row.id,
        team=row.team,
        track=row.track,
        agent=AgentRef(
            kind=AgentKind(row.agent_kind), ref=row.agent_ref, config=row.agent_config, digest=row.agent_digest
        ),
        source=SourceKind(row.source),
        external_id=row.external_id,
        status=SubmissionStatus(row.status),
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        method_name=row.method_name,
        challenge_id=row.challenge_id,
        phase_id=row.phase_id,
    )


def status_change(row: StatusChangeRow) -> StatusChange:
    return StatusChange(
        submission_id=row.submission_id,
        from_status=SubmissionStatus(row.from_status) if row.from_status is not None else None,
        to_status=SubmissionStatus(row.to_status),
        reason=row.reason,
        at=row.at,
    )


def route_task(row: RouteTaskRow) -> RouteTask:
    return RouteTask(
        id=row.id,
        submission_id=row.submission_id,
        route_id=row.route_id,
        repetition=row.repetition,
        position=row.position,
        route_length_m=row.route_length_m,
        expected_s=row.expected_s,
        smoke=row.smoke,
        status=RouteTaskStatus(row.status),
        attempts=row.attempts,
        counted_retries=row.counted_retries,
        record_json=row.record_json,
        blame=Blame(row.blame),
        reason=row.reason,
        updated_at=row.updated_at,
    )


def attempt(row: AttemptRow) -> Attempt:
    return Attempt(
        id=row.id,
        task_id=row.task_id,
        submission_id=row.submission_id,
        number=row.number,
        backend=row.backend,
        pool=row.pool,
        status=AttemptStatus(row.status),
        owner=row.owner,
        lease_expires_at=row.lease_expires_at,
        handle=row.handle,
        token=row.token,
        outcome=AttemptOutcome(row.outcome) if row.outcome is not None else None,
        blame=Blame(row.blame),
        reason=row.reason,
        exit_code=row.exit_code,
        counted=row.counted,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        node=row.node,
        sim_ratio=row.sim_ratio,
        record_json=row.record_json,
    )


def merged_result(row: MergedResultRow) -> MergedResult:
    return MergedResult(
        submission_id=row.submission_id,
        document=row.document,
        final=row.final,
        records=row.records,
        total=row.total,
        driving_score=row.driving_score,
        route_completion=row.route_completion,
        infraction_penalty=row.infraction_penalty,
        entry_status=row.entry_status,
        updated_at=row.updated_at,
    )


def artifact_ref(row: ArtifactRow) -> ArtifactRef:
    return ArtifactRef(
        submission_id=row.submission_id,
        key=row.key,
        kind=row.kind,
        size=row.size,
        sha256=row.sha256,
        attempt_id=row.attempt_id,
        at=row.at,
    )


def event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        submission_id=row.submission_id,
        kind=row.kind,
        message=row.message,
        at=row.at,
        route_id=row.route_id,
        attempt_id=row.attempt_id,
    )
