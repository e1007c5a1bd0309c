"""The SQL state store: :class:`lbcloud.services.ports.StateStore` on SQLite or PostgreSQL.

Every public method is one transaction. Writes that must not race (claiming a task, taking over an
expired lease) are conditional ``UPDATE ... WHERE status = ...`` statements whose row count says
who won, so two dispatchers on one database never run a route task twice. Unreachable databases
raise :class:`Unavailable`; the caller retries.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Insert, and_, case, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.store import rows
from lbcloud.adapters.store.engine import make_engine, migrate, redact, translate_errors, writer
from lbcloud.adapters.store.schema import (
    ArtifactRow,
    AttemptRow,
    Base,
    EventRow,
    MergedResultRow,
    QualificationRow,
    RouteTaskRow,
    StatusChangeRow,
    SubmissionRow,
    TeamRow,
    TrackRow,
)
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Conflict, NotFound
from lbcloud.domain.submissions import (
    ACTIVE,
    NewSubmission,
    StatusChange,
    Submission,
    SubmissionStatus,
    check_transition,
    validate_team_name,
)
from lbcloud.domain.tasks import Attempt, AttemptStatus, NewRouteTask, RouteTask, RouteTaskStatus
from lbcloud.domain.tracks import Track
from lbcloud.services.ports import (
    ArtifactRef,
    AttemptEnd,
    Clock,
    Event,
    LiveAttempt,
    MergedResult,
    QueuedWork,
    StateStore,
    TickView,
)

TOKEN_BYTES = 32
EVENTS_LOCK_ID = 7_324_019_552  # PostgreSQL advisory lock serialising event writers
_ENDED = AttemptStatus.ENDED.value
FINAL_PUBLISHED = "final_published"  # event kind: the final result of the current status reached the sinks
TERMINAL = (SubmissionStatus.FINISHED, SubmissionStatus.FAILED, SubmissionStatus.CANCELLED)
IN_CHUNK = 500  # submission ids per IN (...) list, well under every backend's bound-parameter limit


class SqlStateStore:
    """Durable state in SQLite or PostgreSQL (see the module docstring). Thread-safe; share one
    instance per process. Build it with :func:`open_state_store`."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._clock: Clock = clock or SystemClock()
        self._url = redact(engine.url)

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return self._url

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close pooled connections (the store can still be used; it reconnects)."""
        self._engine.dispose()

    # plumbing -----------------------------------------------------------------------------------
    @contextmanager
    def _tx(self, doing: str, *, write: bool = True) -> Iterator[Session]:
        try:
            with (
                translate_errors(self._url, doing),
                Session(self._writer if write else self._engine, expire_on_commit=False) as session,
                session.begin(),
            ):
                yield session
        except IntegrityError as err:
            detail = str(err.orig).strip().splitlines()[0] if err.orig is not None else str(err)
            raise Conflict(f"{doing}: conflicts with stored data ({detail})") from err

    def _now(self) -> datetime:
        return self._clock.now().astimezone(UTC)

    def _insert(self, table: type[Base]) -> Any:
        """A dialect-specific INSERT (both dialects offer ``on_conflict_do_*``)."""
        module: Any = postgresql if self.dialect == "postgresql" else sqlite
        statement: Insert = module.insert(table)
        return statement

    @staticmethod
    def _submission_row(session: Session, submission_id: int, *, lock: bool = False) -> SubmissionRow:
        query = select(SubmissionRow).where(SubmissionRow.id == submission_id)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise NotFound(f"submission {submission_id} does not exist")
        return row

    @staticmethod
    def _task_row(session: Session, task_id: int) -> RouteTaskRow:
        row = session.get(RouteTaskRow, task_id)
        if row is None:
            raise NotFound(f"route task {task_id} does not exist")
        return row

    @staticmethod
    def _attempt_row(session: Session, attempt_id: int) -> AttemptRow:
        row = session.get(AttemptRow, attempt_id)
        if row is None:
            raise NotFound(f"attempt {attempt_id} does not exist")
        return row

    @staticmethod
    def _event(
        session: Session,
        submission_id: int,
        kind: str,
        message: str,
        at: datetime,
        *,
        route_id: str | None = None,
        attempt_id: int | None = None,
    ) -> EventRow:
        if session.get_bind().dialect.name == "postgresql":
            # event ids must become visible in id order, or a reader paging with after_id could skip
            # one committed late; this lock (held to commit) orders id allocation with commits
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENTS_LOCK_ID})
        row = EventRow(
            submission_id=submission_id, kind=kind, message=message, route_id=route_id, attempt_id=attempt_id, at=at
        )
        session.add(row)
        session.flush()
        return row

    # tracks -------------------------------------------------------------------------------------
    def sync_tracks(self, tracks: Sequence[Track]) -> None:
        """Upsert the configured tracks (settings stay the source of truth; rows are for queries)."""
        now = self._now()
        with self._tx("syncing tracks") as session:
            for track in tracks:
                values = {
                    "name": track.name,
                    "simulator": track.simulator.value,
                    "scorer": track.scorer.value,
                    "routes_file": track.routes_file,
                    "repetitions": track.repetitions,
                    "pool": track.pool.name,
                    "description": track.description,
                    "spec_json": json.dumps(dataclasses.asdict(track), sort_keys=True, default=str),
                    "updated_at": now,
                }
                statement = self._insert(TrackRow).values(**values)
                statement = statement.on_conflict_do_update(
                    index_elements=[TrackRow.name], set_={k: v for k, v in values.items() if k != "name"}
                )
                session.execute(statement)

    def synced_tracks(self) -> dict[str, str]:
        """The synced tracks: name → the track's settings as JSON (what :meth:`sync_tracks` last wrote)."""
        with self._tx("listing tracks", write=False) as session:
            query = select(TrackRow.name, TrackRow.spec_json).order_by(TrackRow.name)
            return {name: spec for name, spec in session.execute(query)}

    # submissions --------------------------------------------------------------------------------
    def create_submission(self, new: NewSubmission) -> tuple[Submission, bool]:
        team = validate_team_name(new.team)
        if new.external_id is not None:
            existing = self.find_submission(new.source.value, new.external_id)
            if existing is not None:
                return existing, False
        now = self._now()
        try:
            with self._tx(f"creating a submission of team {team}") as session:
                session.execute(self._insert(TeamRow).values(name=team, created_at=now).on_conflict_do_nothing())
                row = SubmissionRow(
                    team=team,
                    track=new.track,
                    agent_kind=new.agent.kind.value,
                    agent_ref=new.agent.ref,
                    agent_config=new.agent.config,
                    agent_digest=new.agent.digest,
                    source=new.source.value,
                    external_id=new.external_id,
                    status=SubmissionStatus.SUBMITTED.value,
                    reason=None,
                    method_name=new.method_name,
                    challenge_id=new.challenge_id,
                    phase_id=new.phase_id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                session.add(
                    StatusChangeRow(submission_id=row.id, from_status=None, to_status=row.status, reason=None, at=now)
                )
                self._event(session, row.id, "status", f"submitted by {team} for track {new.track}", now)
                return rows.submission(row), True
        except Conflict:
            # another writer recorded the same (source, external_id) between our check and insert
            if new.external_id is not None:
                existing = self.find_submission(new.source.value, new.external_id)
                if existing is not None:
                    return existing, False
            raise

    def get_submission(self, submission_id: int) -> Submission:
        with self._tx(f"reading submission {submission_id}", write=False) as session:
            return rows.submission(self._submission_row(session, submission_id))

    def find_submission(self, source: str, external_id: str) -> Submission | None:
        with self._tx(f"looking up submission {source}:{external_id}", write=False) as session:
            row = session.scalars(
                select(SubmissionRow).where(SubmissionRow.source == source, SubmissionRow.external_id == external_id)
            ).one_or_none()
            return rows.submission(row) if row is not None else None

    def list_submissions(
        self,
        *,
        track: str | None = None,
        team: str | None = None,
        statuses: Sequence[SubmissionStatus] | None = None,
        limit: int = 1000,
        oldest_first: bool = False,
    ) -> list[Submission]:
        query = select(SubmissionRow)
        if track is not None:
            query = query.where(SubmissionRow.track == track)
        if team is not None:
            query = query.where(SubmissionRow.team == team)
        if statuses is not None:
            query = query.where(SubmissionRow.status.in_([s.value for s in statuses]))
        if oldest_first:
            query = query.order_by(SubmissionRow.created_at, SubmissionRow.id).limit(limit)
        else:
            query = query.order_by(SubmissionRow.created_at.desc(), SubmissionRow.id.desc()).limit(limit)
        with self._tx("listing submissions", write=False) as session:
            return [rows.submission(row) for row in session.scalars(query)]

    def transition(self, submission_id: int, target: SubmissionStatus, reason: str | None = None) -> Submission:
        now = self._now()
        with self._tx(f"moving submission {submission_id} to {target.value}") as session:
            row = self._submission_row(session, submission_id, lock=True)
            current = SubmissionStatus(row.status)
            try:
                changed = check_transition(current, target)
            except Conflict as err:
                raise Conflict(f"submission {submission_id}: {err}") from err
            if changed:
                row.status = target.value
                row.reason = reason
                row.updated_at = now
                session.add(
                    StatusChangeRow(
                        submission_id=submission_id,
                        from_status=current.value,
                        to_status=target.value,
                        reason=reason,
                        at=now,
                    )
                )
                message = f"{current.value} → {target.value}" + (f": {reason}" if reason else "")
                self._event(session, submission_id, "status", message, now)
            return rows.submission(row)

    def history(self, submission_id: int) -> list[StatusChange]:
        with self._tx(f"reading the history of submission {submission_id}", write=False) as session:
            self._submission_row(session, submission_id)
            query = (
                select(StatusChangeRow)
                .where(StatusChangeRow.submission_id == submission_id)
                .order_by(StatusChangeRow.id)
            )
            return [rows.status_change(row) for row in session.scalars(query)]

    def set_agent_digest(self, submission_id: int, digest: str) -> None:
        with self._tx(f"recording the agent digest of submission {submission_id}") as session:
            row = self._submission_row(session, submission_id)
            row.agent_digest = digest
            row.updated_at = self._now()

    # route tasks --------------------------------------------------------------------------------
    def plan_route_tasks(self, submission_id: int, tasks: Sequence[NewRouteTask]) -> list[RouteTask]:
        now = self._now()
        with self._tx(f"planning route tasks of submission {submission_id}") as session:
            self._submission_row(session, submission_id)
            values = [
                {
                    "submission_id": submission_id,
                    "route_id": task.route_id,
                    "repetition": task.repetition,
                    "position": task.position,
                    "route_length_m": task.route_length_m,
                    "expected_s": task.expected_s,
                    "smoke": task.smoke,
                    "status": RouteTaskStatus.PENDING.value,
                    "attempts": 0,
                    "counted_retries": 0,
                    "record_json": None,
                    "blame": Blame.NONE.value,
                    "reason": None,
                    "updated_at": now,
                }
                for task in tasks
            ]
            # a few rows per statement, not one statement per row (a replayed plan inserts nothing);
            # 64 rows x 14 columns stays under every SQLite build's bound-parameter limit
            for start in range(0, len(values), 64):
                chunk = values[start : start + 64]
                session.execute(self._insert(RouteTaskRow).values(chunk).on_conflict_do_nothing())
            return self._route_tasks(session, submission_id)

    @staticmethod
    def _route_tasks(session: Session, submission_id: int) -> list[RouteTask]:
        query = (
            select(RouteTaskRow)
            .where(RouteTaskRow.submission_id == submission_id)
            .order_by(RouteTaskRow.position, RouteTaskRow.id)
        )
        return [rows.route_task(row) for row in session.scalars(query)]

    def route_tasks(self, submission_id: int) -> list[RouteTask]:
        with self._tx(f"reading route tasks of submission {submission_id}", write=False) as session:
            return self._route_tasks(session, submission_id)

    def get_task(self, task_id: int) -> RouteTask:
        """One route task; raises :class:`NotFound`."""
        with self._tx(f"reading route task {task_id}", write=False) as session:
            return rows.route_task(self._task_row(session, task_id))

    def runnable_tasks(self) -> list[tuple[RouteTask, Submission]]:
        # plain rows, one Submission per submission: over a whole queue, ORM entities per row cost
        # more than the query itself (the dispatcher reads only its launch window: queued_work and
        # best_pending_tasks)
        tasks = RouteTaskRow.__table__
        subs = SubmissionRow.__table__
        active = [s.value for s in ACTIVE]
        sub_query = select(subs).where(subs.c.status.in_(active))
        task_query = (
            select(tasks)
            .join(subs, subs.c.id == tasks.c.submission_id)
            .where(tasks.c.status == RouteTaskStatus.PENDING.value, subs.c.status.in_(active))
            .order_by(subs.c.created_at, subs.c.id, tasks.c.position, tasks.c.id)
        )
        with self._tx("listing runnable route tasks", write=False) as session:
            by_id = {row.id: rows.submission(row) for row in session.execute(sub_query)}  # type: ignore[arg-type]
            return [
                (rows.route_task(row), by_id[row.submission_id])  # type: ignore[arg-type]
                for row in session.execute(task_query)
                if row.submission_id in by_id
            ]

    def queued_work(self) -> list[QueuedWork]:
        tasks = RouteTaskRow.__table__
        subs = SubmissionRow.__table__
        pending = tasks.c.status == RouteTaskStatus.PENDING.value
        running = tasks.c.status == RouteTaskStatus.RUNNING.value
        smoke = tasks.c.smoke.is_(True)
        counts = (
            select(
                tasks.c.submission_id,
                func.sum(case((pending, 1), else_=0)).label("pending"),
                func.max(case((and_(smoke, pending), 1), else_=0)).label("smoke_pending"),
                func.max(case((and_(smoke, running), 1), else_=0)).label("smoke_running"),
            )
            .where(tasks.c.status.in_([RouteTaskStatus.PENDING.value, RouteTaskStatus.RUNNING.value]))
            .group_by(tasks.c.submission_id)
            .subquery()
        )
        query = (
            select(subs, counts.c.pending, counts.c.smoke_pending, counts.c.smoke_running)
            .join(counts, counts.c.submission_id == subs.c.id)
            .where(subs.c.status.in_([s.value for s in ACTIVE]), counts.c.pending > 0)
            .order_by(subs.c.created_at, subs.c.id)
        )
        with self._tx("summarising the queue", write=False) as session:
            return [
                QueuedWork(
                    rows.submission(row),  # type: ignore[arg-type]
                    int(row.pending),
                    smoke_pending=bool(row.smoke_pending),
                    smoke_running=bool(row.smoke_running),
                )
                for row in session.execute(query)
            ]

    def best_pending_tasks(self, limits: Mapping[int, int]) -> dict[int, list[RouteTask]]:
        tasks = RouteTaskRow.__table__
        rank = (
            func.row_number()
            .over(
                partition_by=tasks.c.submission_id,
                order_by=(tasks.c.smoke.desc(), tasks.c.expected_s.desc(), tasks.c.position, tasks.c.id),
            )
            .label("rank")
        )
        by_limit: dict[int, list[int]] = {}
        for submission_id, limit in limits.items():
            if limit > 0:
                by_limit.setdefault(limit, []).append(submission_id)
        found: dict[int, list[RouteTask]] = {}
        with self._tx("reading the best pending route tasks", write=False) as session:
            for limit, ids in by_limit.items():
                for start in range(0, len(ids), IN_CHUNK):
                    ranked = (
                        select(tasks, rank)
                        .where(
                            tasks.c.status == RouteTaskStatus.PENDING.value,
                            tasks.c.submission_id.in_(ids[start : start + IN_CHUNK]),
                        )
                        .subquery()
                    )
                    query = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.submission_id, ranked.c.rank)
                    for row in session.execute(query):
                        found.setdefault(row.submission_id, []).append(rows.route_task(row))  # type: ignore[arg-type]
        return found

    def set_task_status(
        self,
        task_id: int,
        status: RouteTaskStatus,
        *,
        blame: Blame = Blame.NONE,
        reason: str | None = None,
        record_json: str | None = None,
    ) -> RouteTask:
        """Set a task's status, blame and reason; ``record_json`` replaces the record only when given."""
        with self._tx(f"setting route task {task_id} to {status.value}") as session:
            row = self._task_row(session, task_id)
            row.status = status.value
            row.blame = blame.value
            row.reason = reason
            if record_json is not None:
                row.record_json = record_json
            row.updated_at = self._now()
            return rows.route_task(row)

    def reopen_tasks(self, submission_id: int) -> int:
        """Tasks without a record that are ``failed_final`` or ``cancelled`` go back to ``pending``
        with a fresh retry allowance (``counted_retries`` reset, blame cleared)."""
        with self._tx(f"reopening route tasks of submission {submission_id}") as session:
            self._submission_row(session, submission_id)
            result = session.execute(
                update(RouteTaskRow)
                .where(
                    RouteTaskRow.submission_id == submission_id,
                    RouteTaskRow.record_json.is_(None),
                    RouteTaskRow.status.in_([RouteTaskStatus.FAILED_FINAL.value, RouteTaskStatus.CANCELLED.value]),
                )
                .values(
                    status=RouteTaskStatus.PENDING.value,
                    counted_retries=0,
                    blame=Blame.NONE.value,
                    reason=None,
                    updated_at=self._now(),
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def cancel_pending_tasks(self, submission_id: int, reason: str) -> int:
        """Pending tasks become ``cancelled`` with ``reason``; running ones are left to the dispatcher."""
        with self._tx(f"cancelling pending route tasks of submission {submission_id}") as session:
            result = session.execute(
                update(RouteTaskRow)
                .where(
                    RouteTaskRow.submission_id == submission_id,
                    RouteTaskRow.status == RouteTaskStatus.PENDING.value,
                )
                .values(status=RouteTaskStatus.CANCELLED.value, reason=reason, updated_at=self._now())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    # attempts -----------------------------------------------------------------------------------
    def claim_task(self, task_id: int, *, backend: str, pool: str, owner: str, lease_s: float) -> Attempt | None:
        now = self._now()
        with self._tx(f"claiming route task {task_id}") as session:
            # the WHERE status = 'pending' is the lock: only one concurrent claimer sees rowcount 1
            claimed = session.execute(
                update(RouteTaskRow)
                .where(RouteTaskRow.id == task_id, RouteTaskRow.status == RouteTaskStatus.PENDING.value)
                .values(status=RouteTaskStatus.RUNNING.value, attempts=RouteTaskRow.attempts + 1, updated_at=now)
                .returning(RouteTaskRow.submission_id, RouteTaskRow.attempts)
            ).one_or_none()
            if claimed is None:
                if session.get(RouteTaskRow, task_id) is None:
                    raise NotFound(f"route task {task_id} does not exist")
                return None
            submission_id, number = claimed
            row = AttemptRow(
                task_id=task_id,
                submission_id=submission_id,
                number=number,
                backend=backend,
                pool=pool,
                status=AttemptStatus.STARTING.value,
                owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s),
                token=secrets.token_urlsafe(TOKEN_BYTES),
                blame=Blame.NONE.value,
                counted=False,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return rows.attempt(row)

    def set_attempt_handle(self, attempt_id: int, handle: str) -> None:
        with self._tx(f"recording the handle of attempt {attempt_id}") as session:
            self._attempt_row(session, attempt_id).handle = handle

    def set_attempt_status(self, attempt_id: int, status: AttemptStatus, *, node: str | None = None) -> Attempt:
        """Move a live attempt to ``status`` (``running`` stamps ``started_at`` once). An ended
        attempt is left unchanged; end attempts with :meth:`end_attempt`."""
        with self._tx(f"setting attempt {attempt_id} to {status.value}") as session:
            row = self._attempt_row(session, attempt_id)
            if row.status == _ENDED:
                return rows.attempt(row)
            row.status = status.value
            if node is not None:
                row.node = node
            now = self._now()
            if status is AttemptStatus.RUNNING and row.started_at is None:
                row.started_at = now
            if status is AttemptStatus.ENDED:
                row.ended_at = now
            return rows.attempt(row)

    def end_attempt(self, attempt_id: int, end: AttemptEnd) -> Attempt:
        """Record the outcome once; a counted failure also bumps the task's ``counted_retries``.
        The task's own status is the caller's to set (:meth:`set_task_status`)."""
        now = self._now()
        with self._tx(f"ending attempt {attempt_id}") as session:
            ended = session.execute(
                update(AttemptRow)
                .where(AttemptRow.id == attempt_id, AttemptRow.status != _ENDED)
                .values(
                    status=_ENDED,
                    outcome=end.outcome.value,
                    blame=end.blame.value,
                    reason=end.reason,
                    exit_code=end.exit_code,
                    record_json=end.record_json,
                    counted=end.counted,
                    sim_ratio=end.sim_ratio,
                    ended_at=now,
                    lease_expires_at=None,
                )
                .returning(AttemptRow.task_id)
            ).one_or_none()
            if ended is not None and end.counted:
                session.execute(
                    update(RouteTaskRow)
                    .where(RouteTaskRow.id == ended[0])
                    .values(counted_retries=RouteTaskRow.counted_retries + 1, updated_at=now)
                )
            row = self._attempt_row(session, attempt_id)
            session.refresh(row)
            return rows.attempt(row)

    def get_attempt(self, attempt_id: int) -> Attempt:
        with self._tx(f"reading attempt {attempt_id}", write=False) as session:
            return rows.attempt(self._attempt_row(session, attempt_id))

    def attempt_by_token(self, token: str) -> Attempt | None:
        with self._tx("looking up an attempt token", write=False) as session:
            row = session.scalars(select(AttemptRow).where(AttemptRow.token == token)).one_or_none()
            return rows.attempt(row) if row is not None else None

    def attempts(self, *, submission_id: int | None = None, task_id: int | None = None) -> list[Attempt]:
        query = select(AttemptRow).order_by(AttemptRow.id)
        if submission_id is not None:
            query = query.where(AttemptRow.submission_id == submission_id)
        if task_id is not None:
            query = query.where(AttemptRow.task_id == task_id)
        with self._tx("listing attempts", write=False) as session:
            return [rows.attempt(row) for row in session.scalars(query)]

    def live_attempts(self, *, owner: str | None = None) -> list[Attempt]:
        query = select(AttemptRow).where(AttemptRow.status != _ENDED).order_by(AttemptRow.id)
        if owner is not None:
            query = query.where(AttemptRow.owner == owner)
        with self._tx("listing live attempts", write=False) as session:
            return [rows.attempt(row) for row in session.scalars(query)]

    def renew_leases(self, owner: str, lease_s: float) -> int:
        """Extend the leases of ``owner``'s live attempts to now + ``lease_s``; returns how many."""
        with self._tx(f"renewing the leases of {owner}") as session:
            result = session.execute(
                update(AttemptRow)
                .where(AttemptRow.owner == owner, AttemptRow.status != _ENDED)
                .values(lease_expires_at=self._now() + timedelta(seconds=lease_s))
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def tick_view(self) -> TickView:
        now = self._now()
        with self._tx("reading live attempts", write=False) as session:
            live = []
            for row in session.execute(_LIVE_QUERY):
                attempt = rows.attempt(row)  # type: ignore[arg-type]
                expires = attempt.lease_expires_at
                live.append(
                    LiveAttempt(
                        attempt, SubmissionStatus(row.submission_status), row.submission_team,
                        lease_expired=expires is not None and expires < now,
                    )
                )  # fmt: skip
            waiting = session.execute(_WAITING_QUERY).first() is not None
        return TickView(tuple(live), waiting)

    def unpublished_finals(self, limit: int = 100, *, since: datetime | None = None) -> list[Submission]:
        subs = SubmissionRow.__table__
        events = EventRow.__table__
        published = (
            select(events.c.id)
            .where(
                events.c.submission_id == subs.c.id,
                events.c.kind == FINAL_PUBLISHED,
                events.c.at >= subs.c.updated_at,
            )
            .exists()
        )
        query = select(subs).where(subs.c.status.in_([s.value for s in TERMINAL]), ~published)
        if since is not None:
            query = query.where(subs.c.updated_at >= since)
        query = query.order_by(subs.c.updated_at, subs.c.id).limit(limit)
        with self._tx("listing ended submissions not yet published", write=False) as session:
            return [rows.submission(row) for row in session.execute(query)]  # type: ignore[arg-type]

    def mark_final_published(self, submission_id: int, message: str) -> None:
        with self._tx(f"recording the final publication of submission {submission_id}") as session:
            row = self._submission_row(session, submission_id)
            # never earlier than the status change it covers, even if clocks disagree by a tick
            at = max(self._now(), row.updated_at)
            self._event(session, submission_id, FINAL_PUBLISHED, message, at)

    def take_over_expired(self, owner: str, lease_s: float) -> list[Attempt]:
        now = self._now()
        expired = and_(AttemptRow.status != _ENDED, AttemptRow.lease_expires_at < now)
        with self._tx(f"taking over expired leases for {owner}") as session:
            candidates = list(session.scalars(select(AttemptRow.id).where(expired).order_by(AttemptRow.id)))
            taken: list[Attempt] = []
            for attempt_id in candidates:
                # re-check expiry in the UPDATE: a competing dispatcher may have taken it meanwhile
                won = session.execute(
                    update(AttemptRow)
                    .where(AttemptRow.id == attempt_id, expired)
                    .values(owner=owner, lease_expires_at=now + timedelta(seconds=lease_s))
                    .returning(AttemptRow.id)
                ).one_or_none()
                if won is not None:
                    row = self._attempt_row(session, attempt_id)
                    session.refresh(row)
                    taken.append(rows.attempt(row))
            return taken

    # results, artifacts, events -----------------------------------------------------------------
    def save_merged_result(self, result: MergedResult) -> None:
        values = dataclasses.asdict(result)
        with self._tx(f"saving the merged result of submission {result.submission_id}") as session:
            self._submission_row(session, result.submission_id)
            statement = self._insert(MergedResultRow).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=[MergedResultRow.submission_id],
                set_={k: v for k, v in values.items() if k != "submission_id"},
            )
            session.execute(statement)

    def merged_result(self, submission_id: int) -> MergedResult | None:
        with self._tx(f"reading the merged result of submission {submission_id}", write=False) as session:
            row = session.get(MergedResultRow, submission_id)
            return rows.merged_result(row) if row is not None else None

    def leaderboard(self, track: str) -> list[tuple[Submission, MergedResult]]:
        query = (
            select(SubmissionRow, MergedResultRow)
            .join(MergedResultRow, MergedResultRow.submission_id == SubmissionRow.id)
            .where(
                SubmissionRow.track == track,
                SubmissionRow.status == SubmissionStatus.FINISHED.value,
                MergedResultRow.final.is_(True),
            )
            .order_by(
                func.coalesce(MergedResultRow.driving_score, -1.0).desc(),
                func.coalesce(MergedResultRow.route_completion, -1.0).desc(),
                SubmissionRow.id,
            )
        )
        with self._tx(f"reading the leaderboard of {track}", write=False) as session:
            return [(rows.submission(s), rows.merged_result(m)) for s, m in session.execute(query).all()]

    def index_artifact(self, ref: ArtifactRef) -> None:
        """Record (or re-record, keyed by ``key``) an artifact's metadata."""
        values = dataclasses.asdict(ref)
        with self._tx(f"indexing artifact {ref.key}") as session:
            self._submission_row(session, ref.submission_id)
            statement = self._insert(ArtifactRow).values(**values)
            statement = statement.on_conflict_do_update(
                index_elements=[ArtifactRow.key], set_={k: v for k, v in values.items() if k != "key"}
            )
            session.execute(statement)

    def artifacts(self, submission_id: int) -> list[ArtifactRef]:
        query = select(ArtifactRow).where(ArtifactRow.submission_id == submission_id).order_by(ArtifactRow.key)
        with self._tx(f"listing artifacts of submission {submission_id}", write=False) as session:
            return [rows.artifact_ref(row) for row in session.scalars(query)]

    def add_event(
        self,
        submission_id: int,
        kind: str,
        message: str,
        *,
        route_id: str | None = None,
        attempt_id: int | None = None,
    ) -> Event:
        with self._tx(f"adding an event to submission {submission_id}") as session:
            self._submission_row(session, submission_id)
            row = self._event(
                session, submission_id, kind, message, self._now(), route_id=route_id, attempt_id=attempt_id
            )
            session.flush()
            return rows.event(row)

    def events(self, *, submission_id: int | None = None, after_id: int = 0, limit: int = 500) -> list[Event]:
        """Events with id > ``after_id``, oldest first."""
        query = select(EventRow).where(EventRow.id > after_id).order_by(EventRow.id).limit(limit)
        if submission_id is not None:
            query = query.where(EventRow.submission_id == submission_id)
        with self._tx("reading events", write=False) as session:
            return [rows.event(row) for row in session.scalars(query)]

    # qualification ------------------------------------------------------------------------------
    def record_qualification(self, team: str, track: str, submission_id: int, passed: bool, detail: str) -> None:
        with self._tx(f"recording the qualification of {team} on {track}") as session:
            self._submission_row(session, submission_id)
            session.add(
                QualificationRow(
                    team=team, track=track, submission_id=submission_id, passed=passed, detail=detail, at=self._now()
                )
            )

    def qualification(self, team: str, track: str) -> bool:
        query = select(QualificationRow.id).where(
            QualificationRow.team == team, QualificationRow.track == track, QualificationRow.passed.is_(True)
        )
        with self._tx(f"reading the qualification of {team} on {track}", write=False) as session:
            return session.scalars(query.limit(1)).first() is not None


# the idle tick's two reads, built once (building a statement costs more than running it on SQLite)
_LIVE_QUERY = (
    select(
        AttemptRow.__table__,
        SubmissionRow.__table__.c.status.label("submission_status"),
        SubmissionRow.__table__.c.team.label("submission_team"),
    )
    .join(SubmissionRow.__table__, SubmissionRow.__table__.c.id == AttemptRow.__table__.c.submission_id)
    .where(AttemptRow.__table__.c.status != _ENDED)
    .order_by(AttemptRow.__table__.c.id)
)
_WAITING_QUERY = (
    select(SubmissionRow.__table__.c.id)
    .where(SubmissionRow.__table__.c.status.in_([SubmissionStatus.SUBMITTED.value, SubmissionStatus.RESUMING.value]))
    .limit(1)
)


def open_state_store(url: str, *, clock: Clock | None = None, upgrade: bool = True) -> SqlStateStore:
    """Open the state store at ``url`` (``sqlite:///path`` or ``postgresql://...``), migrating the
    schema to the newest revision first unless ``upgrade`` is False.

    Raises :class:`Unavailable` when the database cannot be reached, :class:`ConfigError` for a bad URL.
    """
    if upgrade:
        migrate(url)
    return SqlStateStore(make_engine(url), clock=clock)


if TYPE_CHECKING:

    def _implements_the_port(store: SqlStateStore) -> StateStore:
        return store  # mypy checks SqlStateStore against the StateStore protocol here
