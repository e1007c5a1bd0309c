"""Leaderboard rows: a track's finished submissions with the 15 (2.x) or 12 (1.0) global values.

The numbers come from the results engine reading each final merged document (``values`` and
``labels``, spec §2.4), never from hand-parsed JSON.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.model import LABELS_2X, ResultsFile
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.statistics import labels_for, values_for
from lbcloud.services.ports import MergedResult, StateStore

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
    rank: int
    submission_id: int
    team: str
    method: str | None
    values: list[float | None]
    entry_status: str
    date: datetime
    manifest_url: str


class Leaderboard(BaseModel):
    track: str
    columns: list[LeaderboardColumn]
    entries: list[LeaderboardEntry]


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


def build_leaderboard(store: StateStore, track: str) -> Leaderboard:
    """The leaderboard of ``track``, best driving score first (the store's order)."""
    labels: tuple[str, ...] = LABELS_2X
    entries: list[LeaderboardEntry] = []
    for rank, (submission, merged) in enumerate(store.leaderboard(track), start=1):
        results, values = _values(merged)
        if results is not None and results.global_record is not None:
            labels = labels_for(results.format)
        entries.append(
            LeaderboardEntry(
                rank=rank,
                submission_id=submission.id,
                team=submission.team,
                method=submission.method_name,
                values=values,
                entry_status=merged.entry_status,
                date=merged.updated_at,
                manifest_url=f"/api/v1/submissions/{submission.id}/manifest",
            )
        )
    columns = [
        LeaderboardColumn(
            key=column_key(lb), label=lb, short=SHORT_LABELS.get(lb, lb), higher_is_better=lb in SCORE_LABELS
        )
        for lb in labels
    ]
    return Leaderboard(track=track, columns=columns, entries=entries)
