"""Leaderboard rows: one per team (its best finished submission), with the 15 (2.x) or 12 (1.0)
global values, ranked with standard competition ranking (ties share a rank: 1, 2, 2, 4).

The numbers come from the results engine reading each final merged document (``values`` and
``labels``, spec §2.4), never from hand-parsed JSON. Team affiliation and the method's paper or code
link come from the settings' team profiles (``web.team_profiles``).

A team may choose which of its finished submissions is its row, or hide its row; the choice is an
event (``leaderboard_choice``) in the chosen submission's log, the latest one counting. Teams named in
``web.baseline_teams`` are shown as baselines: in score order, marked, and without a rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.evalai_format import SENSOR_NAMES
from lbcloud.domain.results.model import LABELS_2X, ResultsFile
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.statistics import labels_for, values_for
from lbcloud.domain.state_words import count_routes, describe_submission
from lbcloud.domain.submissions import ACTIVE, Submission
from lbcloud.services.ports import MergedResult, StateStore
from lbcloud.settings import TeamProfile

# the first three labels are scores (higher is better for DS/RC, closer to 1 for IP)
SCORE_LABELS = LABELS_2X[:3]


SHORT_LABELS: dict[str, str] = {
    "Avg. driving score": "Driving score",
    "Avg. route completion": "Route compl.",
    "Avg. infraction penalty": "Infr. penalty",
    "Collisions with pedestrians": "Coll. ped.",
    "Collisions with vehicles": "Coll. veh.",
    "Collisions with layout": "Coll. layout",
    "Red lights infractions": "Red light",
    "Stop sign infractions": "Stop sign",
    "Off-road infractions": "Off-road",
    "Route deviations": "Route dev.",
    "Route timeouts": "Route timeout",
    "Agent blocked": "Blocked",
    "Yield emergency vehicles infractions": "Yield emerg.",
    "Scenario timeouts": "Scen. timeout",
    "Min speed infractions": "Min speed",
}
"""Compact column headers for the page (the full label is the header's tooltip and the API's ``label``)."""


class LeaderboardColumn(BaseModel):
    key: str
    label: str
    short: str
    higher_is_better: bool


class LeaderboardEntry(BaseModel):
    """One team's row. ``submissions`` counts the team's finished submissions on the track (the row
    shows the best of them)."""

    rank: int | None = Field(description="Standard competition rank; null for a baseline")
    baseline: bool = False
    chosen: bool = Field(default=False, description="The team chose this submission (else its best)")
    submission_id: int
    team: str
    method: str | None
    method_url: str | None
    affiliation: str | None
    sensors: str
    values: list[float | None]
    entry_status: str
    date: datetime
    submissions: int
    submission_url: str
    manifest_url: str


class RunningEntry(BaseModel):
    """A submission being evaluated on the track right now (the "running now" strip)."""

    submission_id: int
    team: str
    word: str
    detail: str
    percent: int | None


class Leaderboard(BaseModel):
    track: str
    columns: list[LeaderboardColumn]
    entries: list[LeaderboardEntry]
    running: list[RunningEntry]


def column_key(label: str) -> str:
    """``Avg. driving score`` → ``avg_driving_score`` (stable keys for sorting and tests)."""
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_").replace("__", "_")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _values(merged: MergedResult) -> tuple[ResultsFile | None, list[float | None]]:
    try:
        results = parse_results(merged.document, f"submission {merged.submission_id} merged results")
    except InputError:
        return None, []
    if results.global_record is None:
        return results, []
    return results, [_number(v) for v in values_for(results.global_record, results.format)]


def sensor_summary(sensors: Sequence[str]) -> str:
    """``("carla_camera", "carla_camera", "carla_gnss")`` → ``2× RGB Camera, GNSS``."""
    counts: dict[str, int] = {}
    for icon in sensors:
        counts[icon] = counts.get(icon, 0) + 1
    parts = [
        f"{n}× {SENSOR_NAMES.get(icon, icon)}" if n > 1 else SENSOR_NAMES.get(icon, icon) for icon, n in counts.items()
    ]
    return ", ".join(parts) or "–"


def competition_ranks(scores: Sequence[float | None]) -> list[int]:
    """Standard competition ranking of ``scores`` given best first: equal scores share the rank of
    the first of them, and the next rank skips (1, 2, 2, 4)."""
    ranks: list[int] = []
    for index, score in enumerate(scores):
        if index and score == scores[index - 1]:
            ranks.append(ranks[-1])
        else:
            ranks.append(index + 1)
    return ranks


CHOICE_EVENT = "leaderboard_choice"
CHOICES = ("chosen", "hidden", "automatic")
"""``chosen``: this submission is the team's row; ``hidden``: no row for the team; ``automatic``: its best."""


def team_choices(store: StateStore, rows: Sequence[tuple[Submission, MergedResult]]) -> dict[str, tuple[str, int]]:
    """The latest leaderboard choice of each team among ``rows``: ``team -> (choice, submission id)``."""
    latest: dict[str, tuple[int, str, int]] = {}
    for submission, _ in rows:
        for event in store.events(submission_id=submission.id, after_id=0, limit=1000):
            if event.kind == CHOICE_EVENT and event.message in CHOICES:
                seen = latest.get(submission.team)
                if seen is None or event.id > seen[0]:
                    latest[submission.team] = (event.id, event.message, submission.id)
    return {team: (choice, sid) for team, (_, choice, sid) in latest.items()}


def best_per_team(
    rows: Sequence[tuple[Submission, MergedResult]], choices: Mapping[str, tuple[str, int]] | None = None
) -> list[tuple[Submission, MergedResult, int]]:
    """One row per team from ``rows`` (already best first): its chosen submission, else its best; none
    for a team that hid itself. Each with the team's count of finished submissions; best first."""
    choices = choices or {}
    picked: dict[str, tuple[Submission, MergedResult]] = {}
    counts: dict[str, int] = {}
    for submission, merged in rows:
        counts[submission.team] = counts.get(submission.team, 0) + 1
        picked.setdefault(submission.team, (submission, merged))
    for submission, merged in rows:
        choice = choices.get(submission.team)
        if choice is not None and choice[0] == "chosen" and choice[1] == submission.id:
            picked[submission.team] = (submission, merged)
    hidden = {team for team, (choice, _) in choices.items() if choice == "hidden"}
    order = {s.id: i for i, (s, _) in enumerate(rows)}
    kept = [(s, m, counts[s.team]) for s, m in picked.values() if s.team not in hidden]
    return sorted(kept, key=lambda row: order[row[0].id])


def running_now(store: StateStore, track: str) -> list[RunningEntry]:
    """Submissions of ``track`` being evaluated, oldest first."""
    out = []
    for sub in reversed(store.list_submissions(track=track, statuses=sorted(ACTIVE), limit=50)):
        view = describe_submission(sub.status, count_routes([t.status for t in store.route_tasks(sub.id)]), sub.reason)
        out.append(
            RunningEntry(submission_id=sub.id, team=sub.team, word=view.word, detail=view.detail, percent=view.percent)
        )
    return out


def build_leaderboard(
    store: StateStore,
    track: str,
    profiles: Mapping[str, TeamProfile] | None = None,
    baselines: Sequence[str] = (),
) -> Leaderboard:
    """The leaderboard of ``track``: one row per team (its chosen or best finished submission), best
    driving score first, ties sharing a rank; baselines in place without a rank."""
    profiles = profiles or {}
    labels: tuple[str, ...] = LABELS_2X
    entries: list[LeaderboardEntry] = []
    rows = store.leaderboard(track)
    choices = team_choices(store, rows)
    best = best_per_team(rows, choices)
    ranked = [row for row in best if row[0].team not in baselines]
    scores = competition_ranks([merged.driving_score for _, merged, _ in ranked])
    ranks = {s.id: r for (s, _, _), r in zip(ranked, scores, strict=True)}
    for submission, merged, count in best:
        rank = ranks.get(submission.id)
        results, values = _values(merged)
        if results is not None and results.global_record is not None:
            labels = labels_for(results.format)
        profile = profiles.get(submission.team, TeamProfile())
        entries.append(
            LeaderboardEntry(
                rank=rank,
                baseline=submission.team in baselines,
                chosen=choices.get(submission.team) == ("chosen", submission.id),
                submission_id=submission.id,
                team=submission.team,
                method=submission.method_name,
                method_url=profile.method_url,
                affiliation=profile.affiliation,
                sensors=sensor_summary(results.sensors if results else ()),
                values=values,
                entry_status=merged.entry_status,
                date=merged.updated_at,
                submissions=count,
                submission_url=f"/submissions/{submission.id}",
                manifest_url=f"/api/v1/submissions/{submission.id}/manifest",
            )
        )
    columns = [
        LeaderboardColumn(
            key=column_key(lb), label=lb, short=SHORT_LABELS.get(lb, lb), higher_is_better=lb in SCORE_LABELS
        )
        for lb in labels
    ]
    return Leaderboard(track=track, columns=columns, entries=entries, running=running_now(store, track))
