"""Per-route scoring: infraction penalty, driving score and route status (spec §4.1, §4.2, §5.2).

Public names:

- :class:`InfractionEvent` — one criterion event (kind = infraction list key, message, optional
  percentage ``value``: the min-speed ratio *p* or the off-road share *q*, both in %).
- :func:`infraction_penalty(events, scorer) -> float` — the unrounded IP of lb1.0 / lb2.0 / lb2.1.
- :func:`route_scores(route_completion, events, scorer) -> RouteScores` — RC, IP and DS as stored.
- :func:`route_status(route_completion, message_count, failure=None, *, timed_out, route_ending)`
  — the record status text; :class:`FailureReason` holds the official reason texts.
- :func:`build_route_record(...) -> RouteRecord` — everything above plus the infraction lists,
  ``num_infractions`` and rounded ``meta``: what an evaluator writes for one finished route.
- :func:`events_from_infractions(infractions) -> list[InfractionEvent]` — events back from a
  record's message lists (percentages parsed from the texts), for re-scoring.
- :func:`rescore_record(record, scorer) -> RouteRecord` — recompute IP/DS of a stored record.

Message texts (§2.2) are built by :func:`collision_message` and friends so evaluators and readers
agree on them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from lbcloud.domain.results.model import (
    INFRACTION_KEYS_2X,
    INFRACTION_KEYS_10,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PERFECT,
    Number,
    RouteMeta,
    RouteRecord,
    RouteScores,
)
from lbcloud.domain.tracks import ScorerVersion

SCORE_DIGITS = 6
META_DIGITS = 3

# Per-event multipliers (2.0, 1.0) and additive weights (2.1), spec §4.2.
_FACTORS_20: Mapping[str, float] = {
    "collisions_pedestrian": 0.5,
    "collisions_vehicle": 0.6,
    "collisions_layout": 0.65,
    "red_light": 0.7,
    "stop_infraction": 0.8,
    "scenario_timeouts": 0.7,
    "yield_emergency_vehicle_infractions": 0.7,
}
_FACTORS_10: Mapping[str, float] = {
    "collisions_pedestrian": 0.5,
    "collisions_vehicle": 0.6,
    "collisions_layout": 0.65,
    "red_light": 0.7,
    "stop_infraction": 0.8,
}
_WEIGHTS_21: Mapping[str, float] = {
    "collisions_pedestrian": 1.0,
    "collisions_vehicle": 0.7,
    "collisions_layout": 0.6,
    "red_light": 0.4,
    "stop_infraction": 0.25,
    "scenario_timeouts": 0.4,
    "yield_emergency_vehicle_infractions": 0.4,
}
_MIN_SPEED_BASE = 0.7
_MIN_SPEED_WEIGHT_21 = 0.4
ROUTE_ENDING_KEYS = ("route_dev", "vehicle_blocked", "route_timeout")
"""Lists whose events end a route: messages and a failure reason, no penalty."""


class FailureReason(StrEnum):
    """The official failure texts; a record status is ``Failed - <reason>``."""

    AGENT_TIMED_OUT = "Agent timed out"
    ROUTE_DEVIATION = "Agent deviated from the route"
    AGENT_BLOCKED = "Agent got blocked"
    AGENT_CRASHED = "Agent crashed"
    AGENT_SETUP_FAILED = "Agent couldn't be set up"
    SIMULATION_CRASHED = "Simulation crashed"
    SENSORS_INVALID = "Agent's sensors were invalid"


@dataclass(frozen=True, slots=True)
class InfractionEvent:
    """One event reported by a criterion, in the order the criteria report them.

    ``kind`` is the infraction list it lands in (a key of :data:`INFRACTION_KEYS_2X`). ``value`` is
    the percentage for ``min_speed_infractions`` (*p*, 2 decimals, as in the message) and for
    ``outside_route_lanes`` (*q*, unrounded share of the completed route); ``None`` otherwise.
    """

    kind: str
    message: str
    value: float | None = None


def _fmt(x: float, digits: int) -> str:
    return str(round(x, digits))


def location_text(x: float, y: float, z: float) -> str:
    """``(x=…, y=…, z=…)`` with 3-decimal coordinates."""
    return f"(x={_fmt(x, 3)}, y={_fmt(y, 3)}, z={_fmt(z, 3)})"


def collision_message(type_id: str, actor_id: int, x: float, y: float, z: float) -> str:
    return f"Agent collided against object with type={type_id} and id={actor_id} at {location_text(x, y, z)}"


def collision_kind(type_id: str) -> str | None:
    """The list a collision with ``type_id`` goes to, or ``None`` if it is not recorded (§2.2)."""
    if ("static" in type_id or "traffic" in type_id) and "sidewalk" not in type_id:
        return "collisions_layout"
    if "vehicle" in type_id:
        return "collisions_vehicle"
    if "walker" in type_id:
        return "collisions_pedestrian"
    return None


def red_light_message(light_id: int | str, x: float, y: float, z: float) -> str:
    return f"Agent ran a red light {light_id} at {location_text(x, y, z)}"


def stop_message(stop_id: int | str, x: float, y: float, z: float) -> str:
    return f"Agent ran a stop with id={stop_id} at {location_text(x, y, z)}"


def off_road_message(metres: float, percentage: float) -> str:
    return (
        f"Agent went outside its route lanes for about {_fmt(metres, 3)} meters "
        f"({_fmt(percentage, 2)}% of the completed route)"
    )


def min_speed_message(percentage: float) -> str:
    return f"Average speed is {_fmt(percentage, 2)}% of the surrounding traffic's one"


YIELD_MESSAGE = "Agent failed to yield to an emergency vehicle"
SCENARIO_TIMEOUT_MESSAGE = "Agent timed out a scenario"
ROUTE_TIMEOUT_MESSAGE = "Route timeout."


def deviation_message(x: float, y: float, z: float) -> str:
    return f"Agent deviated from the route at {location_text(x, y, z)}"


def blocked_message(x: float, y: float, z: float) -> str:
    return f"Agent got blocked at {location_text(x, y, z)}"


def parse_min_speed_percentage(message: str) -> float | None:
    """*p* from ``Average speed is <p>% of ...``; ``None`` if the text does not match."""
    prefix = "Average speed is "
    if not message.startswith(prefix):
        return None
    head = message[len(prefix) :].split("%", 1)[0]
    try:
        return float(head)
    except ValueError:
        return None


def parse_off_road(message: str) -> tuple[float, float] | None:
    """``(metres, percentage)`` from the off-road message; ``None`` if the text does not match."""
    tokens = message.split(" ")
    if len(tokens) < 10 or not message.startswith("Agent went outside its route lanes"):
        return None
    try:
        metres = float(tokens[8])
        percentage = float(tokens[10].lstrip("(").rstrip("%"))
    except (ValueError, IndexError):
        return None
    return metres, percentage


def events_from_infractions(infractions: Mapping[str, Sequence[str]]) -> list[InfractionEvent]:
    """Events rebuilt from a record's message lists, in list order (key order, then message order).

    Percentages come from the message texts, so the off-road share is the 2-decimal one: a record
    written by the official evaluator can re-score a few 1e-6 away from its stored IP.
    """
    events: list[InfractionEvent] = []
    for kind, messages in infractions.items():
        for message in messages:
            value: float | None = None
            if kind == "min_speed_infractions":
                value = parse_min_speed_percentage(message)
            elif kind == "outside_route_lanes":
                parsed = parse_off_road(message)
                value = parsed[1] if parsed else None
            events.append(InfractionEvent(kind, message, value))
    return events


def infraction_penalty(events: Iterable[InfractionEvent], scorer: ScorerVersion) -> float:
    """The unrounded infraction penalty of a route's events under ``scorer`` (§4.2)."""
    penalty = 1.0
    weight_sum = 0.0
    for event in events:
        kind = event.kind
        if kind == "outside_route_lanes":
            if event.value is not None:
                penalty *= 1 - event.value / 100
        elif kind == "min_speed_infractions":
            if scorer is ScorerVersion.LB10 or event.value is None:
                continue
            if scorer is ScorerVersion.LB21:
                weight_sum += _MIN_SPEED_WEIGHT_21 * (1 - event.value / 100)
            else:
                penalty *= 1 - (1 - _MIN_SPEED_BASE) * (1 - event.value / 100)
        elif scorer is ScorerVersion.LB21:
            weight_sum += _WEIGHTS_21.get(kind, 0.0)
        else:
            factors = _FACTORS_10 if scorer is ScorerVersion.LB10 else _FACTORS_20
            penalty *= factors.get(kind, 1.0)
    if scorer is ScorerVersion.LB21:
        penalty *= 1 / (1 + weight_sum)
    return penalty


def route_scores(route_completion: Number, events: Iterable[InfractionEvent], scorer: ScorerVersion) -> RouteScores:
    """``scores`` of a route: RC as given, IP and DS rounded to 6 decimals in 2.x, unrounded in 1.0.

    ``route_completion`` keeps its type: pass the int ``100`` for a completed 2.x route and the int
    ``0`` when completion never updated, a float otherwise (the file depends on it).
    """
    penalty = infraction_penalty(events, scorer)
    composed = max(route_completion * penalty, 0.0)
    if scorer is ScorerVersion.LB10:
        return RouteScores(route_completion, penalty, composed)
    return RouteScores(
        round(route_completion, SCORE_DIGITS), round(penalty, SCORE_DIGITS), round(composed, SCORE_DIGITS)
    )


def route_status(
    route_completion: Number,
    message_count: int,
    failure: str | None = None,
    *,
    timed_out: bool = False,
    route_ending: str | None = None,
) -> str:
    """The record status (§5.2 "which text wins").

    RC ≥ 100 gives ``Perfect`` (no messages) or ``Completed``. Otherwise the reason is, from weakest to
    strongest: the external ``failure`` text (agent crash, simulation crash, ...), ``Agent timed out``
    when ``timed_out``, then ``route_ending`` (deviation or blocked). No reason gives plain ``Failed``.
    """
    if route_completion >= 100:
        return STATUS_PERFECT if message_count == 0 else STATUS_COMPLETED
    reason = failure or ""
    if timed_out:
        reason = FailureReason.AGENT_TIMED_OUT.value
    if route_ending:
        reason = route_ending
    return f"{STATUS_FAILED} - {reason}" if reason else STATUS_FAILED


def _route_ending_reason(events: Sequence[InfractionEvent]) -> str | None:
    reason: str | None = None
    for event in events:
        if event.kind == "route_dev":
            reason = FailureReason.ROUTE_DEVIATION.value
        elif event.kind == "vehicle_blocked":
            reason = FailureReason.AGENT_BLOCKED.value
    return reason


def build_route_record(
    *,
    index: int,
    route_id: str,
    route_completion: Number,
    events: Sequence[InfractionEvent],
    route_length: float,
    duration_game: float,
    duration_system: float,
    scorer: ScorerVersion = ScorerVersion.LB20,
    failure: str | None = None,
) -> RouteRecord:
    """The record an evaluator writes for one finished (or failed) route.

    ``events`` are in criteria order; a ``route_timeout`` event (message ``Route timeout.``) marks the
    route as timed out, ``route_dev``/``vehicle_blocked`` events give the deviation/blocked reason.
    ``failure`` is an external reason (e.g. :attr:`FailureReason.AGENT_CRASHED`). 2.x rounds
    ``route_length`` and durations to 3 decimals; 1.0 keeps them (and has no ``num_infractions``).
    """
    v10 = scorer is ScorerVersion.LB10
    keys = INFRACTION_KEYS_10 if v10 else INFRACTION_KEYS_2X
    lists: dict[str, list[str]] = {key: [] for key in keys}
    for event in events:
        if event.kind not in lists:
            raise ValueError(f"unknown infraction kind {event.kind!r} for {scorer.value}")
        lists[event.kind].append(event.message)
    infractions = {key: tuple(msgs) for key, msgs in lists.items()}
    count = sum(len(m) for m in infractions.values())
    status = route_status(
        route_completion,
        count,
        failure,
        timed_out=bool(infractions.get("route_timeout")),
        route_ending=_route_ending_reason(events),
    )
    scores = route_scores(route_completion, events, scorer)
    if v10:
        meta = RouteMeta(route_length, duration_game, duration_system)
    else:
        meta = RouteMeta(
            round(route_length, META_DIGITS), round(duration_game, META_DIGITS), round(duration_system, META_DIGITS)
        )
    return RouteRecord(
        index=index,
        route_id=route_id,
        status=status,
        infractions=infractions,
        scores=scores,
        meta=meta,
        num_infractions=None if v10 else count,
    )


def rescore_record(record: RouteRecord, scorer: ScorerVersion) -> RouteRecord:
    """``record`` with IP and DS recomputed from its messages and stored RC under ``scorer``.

    Status, messages and meta are kept; ``num_infractions`` is recomputed for 2.x records. The file
    does not record the order in which events were applied, so when the new IP and DS equal the stored
    ones up to floating-point reordering error (relative 1e-12), the stored numbers are kept.
    """
    scores = route_scores(record.scores.score_route, events_from_infractions(record.infractions), scorer)
    old = record.scores
    if math.isclose(scores.score_penalty, old.score_penalty, rel_tol=1e-12) and math.isclose(
        scores.score_composed, old.score_composed, rel_tol=1e-12
    ):
        scores = old
    scores = replace(scores, extra=record.scores.extra)
    num = record.num_infractions
    if num is not None:
        num = record.message_count()
    return replace(record, scores=scores, num_infractions=num)
