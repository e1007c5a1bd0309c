"""Cost metering: GPU-hours and estimated cost of attempts, per submission and per team (pure).

The rule: an attempt occupies its pool from the moment it started (or was created, when the backend
never reported a start) until it ended (or ``now`` while it runs). Its GPU-hours are
``hours × Track.pool.gpus_per_attempt`` and its estimated cost is ``hours × pool.price_per_hour``,
where ``price_per_hour`` is the price of one attempt's share of a node (``lbcloud cluster`` fills it
as node price / attempts per node). Time spent waiting for capacity is included: the figure is an
estimate for operators, not an invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from lbcloud.domain.tasks import Attempt
from lbcloud.domain.tracks import Pool


@dataclass(frozen=True, slots=True)
class Usage:
    """Accumulated usage: attempts counted, wall hours, GPU-hours and estimated cost (pool currency)."""

    attempts: int = 0
    hours: float = 0.0
    gpu_hours: float = 0.0
    cost: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.attempts + other.attempts,
            self.hours + other.hours,
            self.gpu_hours + other.gpu_hours,
            self.cost + other.cost,
        )


def attempt_seconds(attempt: Attempt, now: datetime) -> float:
    """Wall seconds the attempt held its slot (never negative; a running attempt counts until ``now``)."""
    start = attempt.started_at or attempt.created_at
    end = attempt.ended_at or now
    return max((end - start).total_seconds(), 0.0)


def attempt_usage(attempt: Attempt, pool: Pool, now: datetime) -> Usage:
    """The usage of one attempt run in ``pool``."""
    hours = attempt_seconds(attempt, now) / 3600.0
    return Usage(1, hours, hours * pool.gpus_per_attempt, hours * pool.price_per_hour)


@dataclass(frozen=True, slots=True)
class CostReport:
    """Usage per submission, per team and in total."""

    by_submission: Mapping[int, Usage]
    by_team: Mapping[str, Usage]
    total: Usage


def cost_report(
    attempts: Iterable[Attempt],
    owners: Mapping[int, tuple[str, Pool]],
    now: datetime,
) -> CostReport:
    """Sum the usage of ``attempts``. ``owners`` maps a submission id to its team and its track's pool;
    attempts of submissions missing from ``owners`` are ignored."""
    by_submission: dict[int, Usage] = {}
    by_team: dict[str, Usage] = {}
    total = Usage()
    for attempt in attempts:
        owner = owners.get(attempt.submission_id)
        if owner is None:
            continue
        team, pool = owner
        usage = attempt_usage(attempt, pool, now)
        by_submission[attempt.submission_id] = by_submission.get(attempt.submission_id, Usage()) + usage
        by_team[team] = by_team.get(team, Usage()) + usage
        total = total + usage
    return CostReport(by_submission, by_team, total)
