"""Submission limits per team and track: per day (a rolling 24 hours), in total, and at once.

Every recorded submission counts, whatever became of it, except one the platform failed (its failure
was blamed on the simulator or the infrastructure, never on the agent): a team's failures are not
free retries, and the platform's failures never cost a team a submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from lbcloud.domain.submissions import ACTIVE, Submission, SubmissionStatus

DAY = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class SubmissionLimits:
    """``None`` means no limit. ``concurrent`` counts submissions not yet settled."""

    per_day: int | None = None
    total: int | None = None
    concurrent: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.per_day, self.total, self.concurrent))


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """How much of its limits a team has used on a track at ``now``."""

    limits: SubmissionLimits
    last_day: int
    total: int
    concurrent: int
    next_day_slot_at: datetime | None

    def refusal(self, team: str, track: str) -> str | None:
        """Why one more submission is refused, or None when it is allowed."""
        lim = self.limits
        if lim.total is not None and self.total >= lim.total:
            return f"team {team!r} has used all {lim.total} submissions allowed on {track!r}"
        if lim.per_day is not None and self.last_day >= lim.per_day:
            when = (
                f"; the next one is possible at {self.next_day_slot_at:%Y-%m-%d %H:%M} UTC"
                if self.next_day_slot_at
                else ""
            )
            return (
                f"team {team!r} has made {self.last_day} submissions to {track!r} in the last 24 hours, "
                f"the limit is {lim.per_day}{when}"
            )
        if lim.concurrent is not None and self.concurrent >= lim.concurrent:
            return (
                f"team {team!r} already has {self.concurrent} submission(s) being evaluated on {track!r}, "
                f"the limit is {lim.concurrent}; wait for one to finish or cancel it"
            )
        return None

    def summary(self) -> str:
        """``2 of 3 today · 5 of 20 in total · 1 of 1 at once`` (only the limits that are set)."""
        lim = self.limits
        parts = []
        if lim.per_day is not None:
            parts.append(f"{self.last_day} of {lim.per_day} in the last 24 hours")
        if lim.total is not None:
            parts.append(f"{self.total} of {lim.total} in total")
        if lim.concurrent is not None:
            parts.append(f"{self.concurrent} of {lim.concurrent} at once")
        return " · ".join(parts) or "no limits"


def limit_usage(
    limits: SubmissionLimits, submissions: Sequence[Submission], platform_failed: set[int], now: datetime
) -> LimitUsage:
    """Usage of one team on one track: ``submissions`` are the team's on the track, ``platform_failed``
    the ids of those the platform failed (they do not count)."""
    counted = [s for s in submissions if s.id not in platform_failed]
    recent = sorted(s.created_at for s in counted if s.created_at > now - DAY)
    next_slot = None
    if limits.per_day is not None and len(recent) >= limits.per_day and recent:
        next_slot = recent[len(recent) - limits.per_day] + DAY
    busy = [s for s in counted if s.status in ACTIVE or s.status is SubmissionStatus.SUBMITTED]
    return LimitUsage(limits, len(recent), len(counted), len(busy), next_slot)
