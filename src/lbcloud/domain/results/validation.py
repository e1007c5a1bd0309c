"""Route record validation: nothing an evaluator hands back counts before it passes here.

A record comes from outside the dispatcher's process (a local evaluator's checkpoint, a pod's
reporter, a CARLA evaluator that runs the participant's code in-process), so it is checked against
what the dispatcher already knows: the route task's id and repetition, the track's scorer, the
ranges of every score, the consistency of driving score with completion × penalty, and the penalty
recomputed from the infraction lists. :func:`validate_route_record` returns the parsed record or
raises :class:`RecordRefused` with one sentence saying what is wrong.
"""

from __future__ import annotations

import math

from lbcloud.domain.errors import InputError, LbcloudError
from lbcloud.domain.results.model import (
    INFRACTION_KEYS_2X,
    INFRACTION_KEYS_10,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PERFECT,
    ResultFormat,
    RouteRecord,
    route_id_for,
)
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.scoring import FailureReason, events_from_infractions, infraction_penalty
from lbcloud.domain.tracks import ScorerVersion

KNOWN_STATUSES = frozenset(
    {
        STATUS_PERFECT,
        STATUS_COMPLETED,
        STATUS_FAILED,
        *(f"{STATUS_FAILED} - {reason.value}" for reason in FailureReason),
    }
)
"""Every status an official or lbcloud evaluator writes (spec §5.2)."""

PENALTY_TOLERANCE = 1e-5
"""Stored vs recomputed IP: official records re-score a few 1e-6 away (2-decimal off-road shares)."""
COMPOSED_TOLERANCE = 2e-4
"""Stored DS vs RC × stored IP: both factors are rounded to 6 decimals before the product is."""


class RecordRefused(InputError):
    """A route record that must not count; ``str()`` says why (the agent is blamed)."""


def _number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RecordRefused(f"{name} is not a finite number ({value!r})")
    if not low <= value <= high:
        raise RecordRefused(f"{name} {value!r} is outside [{low:g}, {high:g}]")
    return float(value)


def check_route_record(record: RouteRecord, *, route_id: str, repetition: int, scorer: ScorerVersion) -> None:
    """Raise RecordRefused unless ``record`` is a consistent record of instance (``route_id``, ``repetition``)."""
    v10 = record.num_infractions is None  # a 1.0-format record (whatever the scorer): no repetition in its id
    expected = route_id_for(route_id, repetition, ResultFormat.V10 if v10 else ResultFormat.V2X)
    if v10 and repetition != 0:
        raise RecordRefused(f"a 1.0-format record ({record.route_id!r}) cannot stand for repetition {repetition}")
    if record.route_id != expected:
        raise RecordRefused(f"the record is for {record.route_id!r}, the task is {expected!r}")
    if record.status not in KNOWN_STATUSES:
        raise RecordRefused(f"unknown route status {record.status[:80]!r}")
    keys = set(INFRACTION_KEYS_10 if v10 else INFRACTION_KEYS_2X)
    unknown = sorted(set(record.infractions) - keys)
    if unknown:
        raise RecordRefused(f"unknown infraction list(s) {', '.join(unknown)[:120]}")
    scores = record.scores
    completion = _number(scores.score_route, "route completion (score_route)", 0.0, 100.0)
    penalty = _number(scores.score_penalty, "infraction penalty (score_penalty)", 0.0, 1.0)
    composed = _number(scores.score_composed, "driving score (score_composed)", 0.0, 100.0)
    for name in ("route_length", "duration_game", "duration_system"):
        _number(getattr(record.meta, name), f"meta.{name}", 0.0, math.inf)
    if not math.isclose(composed, completion * penalty, abs_tol=COMPOSED_TOLERANCE):
        raise RecordRefused(
            f"driving score {composed:g} is not route completion × infraction penalty "
            f"({completion:g} × {penalty:g} = {completion * penalty:g})"
        )
    recomputed = infraction_penalty(events_from_infractions(record.infractions), scorer)
    if not math.isclose(penalty, recomputed, abs_tol=PENALTY_TOLERANCE):
        raise RecordRefused(
            f"infraction penalty {penalty:g} does not match its infractions (the {scorer.value} scorer gives "
            f"{recomputed:.6f})"
        )
    if record.num_infractions is not None and record.num_infractions != record.message_count():
        raise RecordRefused(
            f"num_infractions {record.num_infractions} but {record.message_count()} infraction messages"
        )
    if record.status in (STATUS_PERFECT, STATUS_COMPLETED) and completion < 100:
        raise RecordRefused(f"status {record.status!r} with route completion {completion:g} < 100")
    if record.status == STATUS_PERFECT and record.message_count():
        raise RecordRefused("status 'Perfect' with infraction messages")


def validate_route_record(text: str, *, route_id: str, repetition: int, scorer: ScorerVersion) -> RouteRecord:
    """The single route record in results document ``text``, checked; raises RecordRefused."""
    try:
        document = parse_results(text, "route record")
    except LbcloudError as err:
        raise RecordRefused(f"unreadable route record: {err}") from None
    if len(document.records) != 1:
        raise RecordRefused(f"expected exactly one route record, found {len(document.records)}")
    record = document.records[0]
    check_route_record(record, route_id=route_id, repetition=repetition, scorer=scorer)
    return record
