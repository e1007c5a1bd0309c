"""Estimates shown while a submission waits or runs (pure): queue position, ETA, attempt lanes.

The ETA is deliberately simple and explainable: the work ahead (expected seconds of the route tasks
of older active submissions sharing the pool) plus this submission's remaining work, spread over the
pool's slots, and never less than its longest remaining route.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Workload:
    """What is left of one active submission: its age order and remaining expected seconds."""

    submission_id: int
    created_at: datetime
    pool: str
    remaining_s: float
    longest_s: float
    started: bool


@dataclass(frozen=True, slots=True)
class Estimate:
    """``queue_position`` is 1-based among submissions that have not started (None once started);
    ``eta_s`` is the expected seconds until the submission finishes (None when nothing remains)."""

    queue_position: int | None
    ahead_s: float
    eta_s: float | None


def estimate(target: Workload, active: Sequence[Workload], slots: int) -> Estimate:
    """Queue position and ETA of ``target`` among the ``active`` submissions (``target`` included or not)."""
    slots = max(slots, 1)
    older = [
        w
        for w in active
        if w.submission_id != target.submission_id
        and w.pool == target.pool
        and (w.created_at, w.submission_id) < (target.created_at, target.submission_id)
    ]
    ahead_s = sum(w.remaining_s for w in older)
    position = None
    if not target.started:
        position = 1 + sum(1 for w in older if not w.started)
    if target.remaining_s <= 0:
        return Estimate(position, ahead_s, None)
    # fair share lets a newer submission start before older ones finish: the wait is at most the work ahead
    eta = max((ahead_s + target.remaining_s) / slots, target.longest_s)
    return Estimate(position, ahead_s, eta)


@dataclass(frozen=True, slots=True)
class Span:
    """An interval to place on a lane: ``start``/``end`` in seconds from the timeline's origin."""

    key: int
    start: float
    end: float


def assign_lanes(spans: Sequence[Span]) -> dict[int, int]:
    """Place intervals on the fewest lanes so that no two on one lane overlap (greedy by start time,
    which is optimal for intervals). Returns ``key → lane`` (0-based)."""
    lane_ends: list[float] = []
    lanes: dict[int, int] = {}
    for span in sorted(spans, key=lambda s: (s.start, s.end, s.key)):
        for lane, end in enumerate(lane_ends):
            if end <= span.start:
                lane_ends[lane] = span.end
                lanes[span.key] = lane
                break
        else:
            lanes[span.key] = len(lane_ends)
            lane_ends.append(span.end)
    return lanes
