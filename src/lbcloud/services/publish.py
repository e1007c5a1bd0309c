"""Publication: from a submission's route records to the merged document, EvalAI files and manifest.

A submission's score is the merge of its route records (one per route task), built with the results
engine exactly as the official merge would build it from worker files, with the expected instance
set known: progress ``[records, expected]``, and a global record only once every instance has its
record. Route tasks that ended without a record (agent fault, retries exhausted) get a synthesized
record, so a participant's hung agent costs that route and not the whole submission.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol

from lbcloud import __version__
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.results.evalai_format import dumps_evalai_results, stdout_summary
from lbcloud.domain.results.merge import ExpectedInstances, MergeOutcome, merge_route_records
from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord, route_id_for
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.scoring import FailureReason, build_route_record
from lbcloud.domain.results.statistics import scores_so_far
from lbcloud.domain.results.writer import dumps_results
from lbcloud.domain.submissions import Submission
from lbcloud.domain.tasks import Attempt, RouteTask, RouteTaskStatus
from lbcloud.domain.tracks import ScorerVersion, Track
from lbcloud.services.ports import Publication


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route of a track's route file, in file order."""

    route_id: str
    length_m: float
    town: str = ""


class RouteCatalog(Protocol):
    """Reads a track's routes (parsed once, cached by the adapter)."""

    def routes(self, track: Track) -> list[RouteInfo]:
        """Routes in XML order; raises :class:`lbcloud.domain.errors.ConfigError` if unreadable."""
        ...

    def file_hash(self, track: Track) -> str:
        """``sha256:<hex>`` of the route file."""
        ...


def result_format(track: Track) -> ResultFormat:
    return ResultFormat.V10 if track.scorer is ScorerVersion.LB10 else ResultFormat.V2X


def expected_instances(track: Track, tasks: Sequence[RouteTask]) -> ExpectedInstances:
    """The instances a complete result holds: every planned task, in run (position) order."""
    fmt = result_format(track)
    ordered = sorted(tasks, key=lambda t: t.position)
    ids = tuple(route_id_for(t.route_id, t.repetition, fmt) for t in ordered)
    owners = {route_id_for(t.route_id, t.repetition, fmt): f"route task {t.id}" for t in ordered}
    return ExpectedInstances(ids, owners)


def synthesized_record(task: RouteTask, track: Track) -> RouteRecord:
    """The record of a task that ended without one: RC 0 with the failure its blame implies."""
    failure = (
        FailureReason.SIMULATION_CRASHED.value
        if task.blame in (Blame.SIMULATOR, Blame.INFRASTRUCTURE)
        else FailureReason.AGENT_CRASHED.value
    )
    return build_route_record(
        index=task.position,
        route_id=route_id_for(task.route_id, task.repetition, result_format(track)),
        route_completion=0,
        events=(),
        route_length=task.route_length_m,
        duration_game=0.0,
        duration_system=0.0,
        scorer=track.scorer,
        failure=failure,
    )


def task_records(track: Track, tasks: Sequence[RouteTask]) -> tuple[list[RouteRecord], tuple[str, ...]]:
    """Records of the tasks that have one (stored or synthesized) and the first non-empty sensors."""
    records: list[RouteRecord] = []
    sensors: tuple[str, ...] = ()
    for task in sorted(tasks, key=lambda t: t.position):
        if task.record_json:
            doc = parse_results(task.record_json, f"route task {task.id} ({task.instance_id})")
            if doc.records:
                records.append(doc.records[-1])
            if not sensors and doc.sensors:
                sensors = doc.sensors
        elif task.status is RouteTaskStatus.FAILED_FINAL:
            records.append(synthesized_record(task, track))
    return records, sensors


def merge_submission(track: Track, tasks: Sequence[RouteTask]) -> MergeOutcome:
    """The merged document of a submission's route records (partial or complete)."""
    records, sensors = task_records(track, tasks)
    return merge_route_records(
        records, sensors=sensors, expected=expected_instances(track, tasks), fmt=result_format(track)
    )


def _global_numbers(results: ResultsFile) -> tuple[float | None, float | None, float | None]:
    glob = results.global_record
    if glob is None:
        return None, None, None
    values = []
    for key in ("score_composed", "score_route", "score_penalty"):
        value = getattr(glob.scores_mean, key)
        values.append(float(value) if isinstance(value, int | float) else None)
    return values[0], values[1], values[2]


def global_numbers(results: ResultsFile) -> tuple[float | None, float | None, float | None]:
    """(driving score, route completion, infraction penalty) of a merged document, None while partial."""
    return _global_numbers(results)


def public_ref(kind: str, ref: str) -> str:
    """An agent reference fit for the public manifest: an image reference as is; a local agent by its
    file name (and class), never the server's absolute path. The digest identifies the content."""
    if kind != "local":
        return ref
    path, _, cls = ref.partition(":")
    return PurePath(path).name + (f":{cls}" if cls else "")


def manifest(
    submission: Submission,
    track: Track,
    tasks: Sequence[RouteTask],
    attempts: Sequence[Attempt],
    *,
    route_file_hash: str,
    facts: Mapping[str, str],
) -> str:
    """The reproducibility manifest (JSON text): what ran, with which versions, and every attempt's blame."""
    by_task: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        by_task.setdefault(attempt.task_id, []).append(attempt)
    doc = {
        "submission": submission.id,
        "team": submission.team,
        "track": track.name,
        "source": submission.source.value,
        "external_id": submission.external_id,
        "agent": {
            "kind": submission.agent.kind.value,
            "ref": public_ref(submission.agent.kind.value, submission.agent.ref),
            "digest": submission.agent.digest,
        },
        "scorer": track.scorer.value,
        "simulator": track.simulator.value,
        "routes_file": PurePath(track.routes_file).name,
        "routes_file_hash": route_file_hash,
        "repetitions": track.repetitions,
        "seed": track.seed,
        "lbcloud_version": __version__,
        "facts": dict(sorted(facts.items())),
        "status": submission.status.value,
        "reason": submission.reason,
        "routes": [
            {
                "route": task.route_id,
                "repetition": task.repetition,
                "status": task.status.value,
                "blame": task.blame.value,
                "reason": task.reason,
                "attempts": [
                    {
                        "attempt": a.id,
                        "number": a.number,
                        "backend": a.backend,
                        "node": a.node,
                        "outcome": a.outcome.value if a.outcome else None,
                        "blame": a.blame.value,
                        "reason": a.reason,
                        "exit_code": a.exit_code,
                        "counted": a.counted,
                        "started_at": a.started_at.isoformat() if a.started_at else None,
                        "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                    }
                    for a in sorted(by_task.get(task.id, []), key=lambda a: a.number)
                ],
            }
            for task in sorted(tasks, key=lambda t: t.position)
        ],
    }
    return json.dumps(doc, indent=2)


def attributed_failures(tasks: Sequence[RouteTask]) -> list[str]:
    """One line per route that failed for a fault (not a driving result), with its blame."""
    lines = []
    for task in sorted(tasks, key=lambda t: t.position):
        if task.blame is not Blame.NONE and task.reason:
            lines.append(f"route {task.route_id} (rep {task.repetition}): {task.blame.value} — {task.reason}")
    return lines


def participant_stdout(merged: ResultsFile, tasks: Sequence[RouteTask], eta_s: float | None = None) -> str:
    """The reference's stdout summary, followed by attributed failures and, while running, an ETA."""
    text = stdout_summary(merged)
    failures = attributed_failures(tasks)
    extra = []
    if failures:
        extra.append("Attributed failures:")
        extra.extend(f"- {line}" for line in failures)
    if eta_s is not None:
        extra.append(f"Estimated time to completion: {eta_s / 60:.0f} min")
    return text + ("\n" + "\n".join(extra) + "\n" if extra else "")


def build_publication(
    submission: Submission,
    track: Track,
    tasks: Sequence[RouteTask],
    attempts: Sequence[Attempt],
    *,
    route_file_hash: str,
    facts: Mapping[str, str],
    split: str = "leaderboard",
    eta_s: float | None = None,
) -> tuple[MergeOutcome, Publication]:
    """Merge the records and render what sinks publish. Raises :class:`LbcloudError` if a stored
    record cannot be read (the caller reports it; nothing is published then)."""
    outcome = merge_submission(track, tasks)
    merged = outcome.results
    final = outcome.complete and all(t.status.settled for t in tasks)
    try:
        # a partial publication carries the scores of the routes evaluated so far, not zeros
        evalai = dumps_evalai_results(merged if final else scores_so_far(merged), split)
    except (ValueError, KeyError) as err:  # an unknown sensor icon, say
        raise LbcloudError(f"submission {submission.id}: cannot render the EvalAI result: {err}") from None
    publication = Publication(
        submission=submission,
        merged_document=dumps_results(merged),
        final=final,
        records=len(merged.records),
        total=merged.total,
        participant_stdout=participant_stdout(merged, tasks, None if final else eta_s),
        evalai_result=evalai,
        manifest=manifest(submission, track, tasks, attempts, route_file_hash=route_file_hash, facts=facts),
        stderr="\n".join(attributed_failures(tasks)),
    )
    return outcome, publication
