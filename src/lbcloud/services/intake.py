"""Intake: validate a submission and record it durably (the first step of every source).

Local CLI/API submissions, EvalAI and SQS deliveries all come through :meth:`Intake.submit`:

- the team name, the track and the agent reference are validated (one clear error each);
- a gated track (``Track.qualification``) requires a passing qualification of the team;
- ``external_id`` (e.g. the EvalAI submission pk) makes a delivery idempotent: a duplicate returns
  the existing row with ``created=False``;
- a local submission whose agent content is identical to an active one of the same team and track
  is refused as a duplicate;
- the track's submission limits (per day, in total, at once; :mod:`lbcloud.domain.limits`) are
  enforced per team, with a message saying which limit and when the next submission is possible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Conflict, InputError
from lbcloud.domain.limits import LimitUsage, limit_usage
from lbcloud.domain.submissions import (
    AgentRef,
    NewSubmission,
    SourceKind,
    Submission,
    SubmissionStatus,
    check_field_lengths,
    validate_team_name,
)
from lbcloud.domain.tracks import Track
from lbcloud.services.ports import StateStore

log = logging.getLogger(__name__)

DUPLICATE_STATUSES = (
    SubmissionStatus.SUBMITTED,
    SubmissionStatus.QUEUED,
    SubmissionStatus.RUNNING,
    SubmissionStatus.PARTIALLY_EVALUATED,
    SubmissionStatus.RESUMING,
)


class AgentInspector(Protocol):
    """Checks an agent reference and returns its content digest (``sha256:...``).

    Raises :class:`InputError` naming what is wrong (missing file, malformed image reference,
    registry not allowed)."""

    def inspect(self, agent: AgentRef) -> AgentRef: ...


class Intake:
    """Validates and records submissions."""

    def __init__(
        self,
        store: StateStore,
        tracks: Mapping[str, Track],
        inspector: AgentInspector,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._tracks = tracks
        self._inspector = inspector
        self._now = now or (lambda: datetime.now(UTC))

    def track(self, name: str) -> Track:
        if name not in self._tracks:
            known = ", ".join(sorted(self._tracks)) or "none"
            raise InputError(f"unknown track {name!r} (known tracks: {known})")
        return self._tracks[name]

    def submit(self, new: NewSubmission) -> tuple[Submission, bool]:
        """Record ``new``; returns the submission and whether it was created now.

        Raises :class:`InputError` for invalid input and :class:`Conflict` for a duplicate or a
        team that has not passed the track's qualification gate. Nothing is recorded on error.
        """
        check_field_lengths(new)
        if new.external_id is not None:
            existing = self._store.find_submission(new.source.value, new.external_id)
            if existing is not None:
                return existing, False
        team = validate_team_name(new.team)
        track = self.track(new.track)
        agent = self._inspector.inspect(new.agent)
        self._check_qualification(team, track)
        self._check_limits(team, track)
        if new.source is SourceKind.LOCAL and agent.digest:
            self._check_duplicate(team, track.name, agent)
        submission, created = self._store.create_submission(replace(new, team=team, agent=agent))
        if created:
            self._store.add_event(
                submission.id, "submitted", f"{team} submitted {agent.ref} to {track.name} (via {new.source.value})"
            )
            log.info("submission recorded", extra={"submission": submission.id, "team": team, "track": track.name})
        return submission, created

    def limit_usage(self, team: str, track: Track) -> LimitUsage:
        """How much of ``track``'s submission limits ``team`` has used now."""
        subs = self._store.list_submissions(track=track.name, team=team, limit=100_000)
        platform_failed = {s.id for s in subs if s.status is SubmissionStatus.FAILED and self._platform_failed(s.id)}
        return limit_usage(track.limits, subs, platform_failed, self._now())

    def _platform_failed(self, submission_id: int) -> bool:
        blames = {t.blame for t in self._store.route_tasks(submission_id)}
        return Blame.AGENT not in blames and bool(blames & {Blame.SIMULATOR, Blame.INFRASTRUCTURE})

    def _check_limits(self, team: str, track: Track) -> None:
        if not track.limits.any:
            return
        refusal = self.limit_usage(team, track).refusal(team, track.name)
        if refusal:
            raise Conflict(f"submission refused: {refusal}")

    def _check_qualification(self, team: str, track: Track) -> None:
        gate = track.qualification
        if gate is None or self._store.qualification(team, gate.track):
            return
        needs = ", ".join(f"{metric} >= {value:g}" for metric, value in gate.thresholds)
        raise Conflict(
            f"team {team!r} must first pass the qualification track {gate.track!r}"
            + (f" ({needs})" if needs else "")
            + f" before submitting to {track.name!r}"
        )

    def _check_duplicate(self, team: str, track: str, agent: AgentRef) -> None:
        for other in self._store.list_submissions(track=track, team=team, statuses=DUPLICATE_STATUSES):
            if other.agent.digest == agent.digest:
                raise Conflict(
                    f"duplicate submission: team {team!r} already has submission {other.id} "
                    f"({other.status.value}) with the same agent on {track!r}"
                )
