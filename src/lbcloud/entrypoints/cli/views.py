"""Rich renderings shared by the control-plane commands (status tables, leaderboard, live view)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import Submission, SubmissionStatus
from lbcloud.domain.tasks import Attempt, RouteTask, RouteTaskStatus
from lbcloud.services.ports import MergedResult, StateStore

STATUS_STYLE = {
    SubmissionStatus.FINISHED: "green",
    SubmissionStatus.FAILED: "red",
    SubmissionStatus.CANCELLED: "yellow",
    SubmissionStatus.RUNNING: "cyan",
    SubmissionStatus.PARTIALLY_EVALUATED: "cyan",
    SubmissionStatus.QUEUED: "blue",
    SubmissionStatus.RESUMING: "blue",
    SubmissionStatus.SUBMITTED: "blue",
}


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def submissions_table(store: StateStore, submissions: Sequence[Submission], *, title: str = "Submissions") -> Table:
    """One row per submission with a progress bar of settled route tasks."""
    table = Table(title=title, expand=False)
    for column in ("id", "team", "track", "status", "progress", "DS", "RC", "IP", "reason"):
        table.add_column(column, overflow="fold")
    for sub in submissions:
        tasks = store.route_tasks(sub.id)
        total = len(tasks)
        settled = sum(1 for t in tasks if t.status.settled)
        running = sum(1 for t in tasks if t.status is RouteTaskStatus.RUNNING)
        merged = store.merged_result(sub.id)
        bar = Group(
            ProgressBar(total=max(total, 1), completed=settled, width=20),
            Text(f"{settled}/{total}" + (f"  ({running} running)" if running else ""), style="dim"),
        )
        table.add_row(
            str(sub.id),
            sub.team,
            sub.track,
            Text(sub.status.value, style=STATUS_STYLE.get(sub.status, "")),
            bar,
            _num(merged.driving_score if merged else None),
            _num(merged.route_completion if merged else None),
            _num(merged.infraction_penalty if merged else None, 3),
            sub.reason or "",
        )
    return table


def routes_table(tasks: Sequence[RouteTask], attempts: Sequence[Attempt]) -> Table:
    """Per-route detail of one submission: status, record status, blame, attempts, durations."""
    from lbcloud.domain.results.reader import parse_results

    by_task: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        by_task.setdefault(attempt.task_id, []).append(attempt)
    table = Table(title="Routes")
    for column in ("route", "task", "result", "DS", "RC", "blame", "attempts", "wall s", "sim ratio"):
        table.add_column(column, overflow="fold")
    for task in sorted(tasks, key=lambda t: t.position):
        result, ds, rc = "", "", ""
        if task.record_json:
            doc = parse_results(task.record_json, f"route {task.route_id}")
            if doc.records:
                rec = doc.records[-1]
                result, ds, rc = rec.status, str(rec.scores.score_composed), str(rec.scores.score_route)
        tries = sorted(by_task.get(task.id, []), key=lambda a: a.number)
        wall = ""
        ratio = ""
        if tries and tries[-1].ended_at and tries[-1].created_at:
            wall = f"{(tries[-1].ended_at - tries[-1].created_at).total_seconds():.1f}"
            ratio = _num(tries[-1].sim_ratio, 1) if tries[-1].sim_ratio else ""
        blame = "" if task.blame is Blame.NONE else f"{task.blame.value}: {task.reason or ''}"
        table.add_row(
            f"{task.route_id}"
            + (f" rep{task.repetition}" if task.repetition else "")
            + (" (smoke)" if task.smoke else ""),
            task.status.value,
            result,
            ds,
            rc,
            blame,
            str(len(tries)),
            wall,
            ratio,
        )
    return table


def leaderboard_table(track: str, rows: Sequence[tuple[Submission, MergedResult]]) -> Table:
    """The final ranking of a track (best driving score first)."""
    from lbcloud.domain.results.reader import parse_results

    table = Table(title=f"Leaderboard — {track}")
    for column in ("#", "team", "id", "driving score", "route compl.", "penalty", "collisions/km", "red lights/km",
                   "deviations/km", "blocked/km", "timeouts/km", "min speed/km", "status"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("team", "status") else "right")
    for rank, (sub, merged) in enumerate(rows, start=1):
        infr: dict[str, str] = {}
        doc = parse_results(merged.document, f"submission {sub.id}")
        if doc.global_record is not None:
            for key, value in doc.global_record.infractions.items():
                infr[key] = str(value)
        collisions = sum(
            float(infr.get(k, 0) or 0) for k in ("collisions_vehicle", "collisions_pedestrian", "collisions_layout")
        )
        table.add_row(
            str(rank),
            sub.team,
            str(sub.id),
            _num(merged.driving_score),
            _num(merged.route_completion),
            _num(merged.infraction_penalty, 3),
            f"{collisions:.3f}",
            infr.get("red_light", "0"),
            infr.get("route_dev", "0"),
            infr.get("vehicle_blocked", "0"),
            infr.get("route_timeout", "0"),
            infr.get("min_speed_infractions", "0"),
            merged.entry_status,
        )
    return table


def failures_table(submissions: Sequence[Submission], store: StateStore) -> Table | None:
    """Submissions that failed, and routes that failed for a fault, with who is to blame."""
    table = Table(title="Attributed failures")
    for column in ("submission", "team", "where", "blame", "reason"):
        table.add_column(column, overflow="fold")
    rows = 0
    for sub in submissions:
        faults = [
            t
            for t in store.route_tasks(sub.id)
            if t.blame is not Blame.NONE and t.status in (RouteTaskStatus.DONE, RouteTaskStatus.FAILED_FINAL)
        ]
        if sub.status is SubmissionStatus.FAILED:
            blame = faults[0].blame.value if faults else ""
            table.add_row(str(sub.id), sub.team, "whole submission", blame, sub.reason or "")
            rows += 1
            continue
        for task in faults:
            table.add_row(str(sub.id), sub.team, f"route {task.route_id}", task.blame.value, task.reason or "")
            rows += 1
    return table if rows else None
