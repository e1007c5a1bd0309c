"""The leaderboard's criteria, evaluated on what the ego did in SUMO, step by step.

Pure: it sees one :class:`Observation` per simulation step (built by the session from TraCI) and
emits :class:`~lbcloud.domain.results.scoring.InfractionEvent` values with the leaderboard's keys and
message texts, in the order they happen. Route-ending events (deviation, blocked, timeout) stop the
route; collisions, red lights and min-speed checkpoints only add penalties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lbcloud.domain.results.model import Number
from lbcloud.domain.results.scoring import (
    ROUTE_TIMEOUT_MESSAGE,
    InfractionEvent,
    blocked_message,
    collision_kind,
    collision_message,
    deviation_message,
    min_speed_message,
    red_light_message,
)

RED_STATES = frozenset("rR")
MIN_SPEED_CHECKPOINTS = 4
COLLISION_MEMORY_S = 5.0
COMPLETION_RADIUS_M = 10.0


class RouteEnd(StrEnum):
    """Why a route stopped running (``None`` from :meth:`RouteCriteria.update` while it runs)."""

    COMPLETED = "completed"
    DEVIATED = "deviated"
    BLOCKED = "blocked"
    TIMED_OUT = "timed out"
    VANISHED = "vanished"
    """The ego left the simulation before the end of its route (e.g. removed after a teleport)."""


@dataclass(frozen=True, slots=True)
class LightAhead:
    """The next traffic light on the ego's path: id, distance to its stop line, signal character."""

    light_id: str
    distance: float
    state: str


@dataclass(frozen=True, slots=True)
class Collision:
    """A collision SUMO reported for the ego: the other party's id and leaderboard type id."""

    other_id: str
    type_id: str


@dataclass(frozen=True, slots=True)
class Observation:
    """The ego after one step. ``arrived`` means it reached the end of its route and left SUMO."""

    time: float
    x: float
    y: float
    z: float
    speed: float
    road_id: str
    odometer: float
    light: LightAhead | None = None
    collisions: tuple[Collision, ...] = ()
    traffic_speeds: tuple[float, ...] = ()
    on_route: bool = True
    present: bool = True
    arrived: bool = False


@dataclass(frozen=True, slots=True)
class CriteriaConfig:
    """Thresholds: route length (m), timeout budget and blocked time (simulated s), blocked speed (m/s)."""

    route_length_m: float
    timeout_s: float
    blocked_s: float = 90.0
    blocked_speed_ms: float = 0.1


@dataclass(slots=True)
class _Segment:
    ego_sum: float = 0.0
    traffic_sum: float = 0.0
    frames: int = 0


@dataclass(slots=True)
class RouteCriteria:
    """Running state of every criterion for one route instance."""

    config: CriteriaConfig
    events: list[InfractionEvent] = field(default_factory=list)
    progress_m: float = 0.0
    completed: bool = False
    _moved: bool = False
    _last: Observation | None = None
    _stopped_since: float | None = None
    _recent_collisions: dict[str, float] = field(default_factory=dict)
    _segment: _Segment = field(default_factory=_Segment)
    _checkpoints_done: int = 0

    @property
    def route_completion(self) -> Number:
        """RC in %: the int 100 once completed, the int 0 if it never moved, else 2 decimals."""
        if self.completed:
            return 100
        if not self._moved:
            return 0
        return round(min(self.progress_m / self.config.route_length_m * 100, 100.0), 2)

    @property
    def last(self) -> Observation | None:
        return self._last

    def update(self, obs: Observation) -> RouteEnd | None:
        """Feed one step; returns why the route ends now, or ``None`` to keep running."""
        previous, self._last = self._last, obs if obs.present else self._last
        if not obs.present:
            return self._vanished(previous)
        if obs.on_route and obs.odometer > self.progress_m:
            self.progress_m = min(obs.odometer, self.config.route_length_m)
            self._moved = self._moved or self.progress_m > 0
        self._collisions(obs)
        if previous is not None:
            self._red_light(previous, obs)
        self._min_speed(obs)
        if not obs.on_route:
            self.events.append(InfractionEvent("route_dev", deviation_message(obs.x, obs.y, obs.z)))
            return RouteEnd.DEVIATED
        if self.config.route_length_m - self.progress_m <= COMPLETION_RADIUS_M and self.route_completion_raw > 99:
            return self._complete()
        if self._blocked(obs):
            self.events.append(InfractionEvent("vehicle_blocked", blocked_message(obs.x, obs.y, obs.z)))
            return RouteEnd.BLOCKED
        if obs.time >= self.config.timeout_s:
            self.events.append(InfractionEvent("route_timeout", ROUTE_TIMEOUT_MESSAGE))
            return RouteEnd.TIMED_OUT
        return None

    @property
    def route_completion_raw(self) -> float:
        return self.progress_m / self.config.route_length_m * 100

    def _complete(self) -> RouteEnd:
        self._close_segments(final=True)
        self.completed = True
        self.progress_m = self.config.route_length_m
        return RouteEnd.COMPLETED

    def _vanished(self, previous: Observation | None) -> RouteEnd:
        if previous is not None and previous.on_route and self.config.route_length_m - self.progress_m <= 50.0:
            return self._complete()
        return RouteEnd.VANISHED

    def _collisions(self, obs: Observation) -> None:
        for collision in obs.collisions:
            seen = self._recent_collisions.get(collision.other_id)
            self._recent_collisions[collision.other_id] = obs.time
            if seen is not None and obs.time - seen <= COLLISION_MEMORY_S:
                continue
            kind = collision_kind(collision.type_id)
            if kind is None:
                continue
            number = int(collision.other_id) if collision.other_id.isdigit() else 0
            message = collision_message(collision.type_id, number, obs.x, obs.y, obs.z)
            self.events.append(InfractionEvent(kind, message))

    def _red_light(self, previous: Observation, obs: Observation) -> None:
        light = previous.light
        if light is None or previous.road_id.startswith(":") or obs.road_id == previous.road_id:
            return
        travelled = obs.odometer - previous.odometer
        if light.distance <= travelled + 0.5 and light.state in RED_STATES:
            self.events.append(InfractionEvent("red_light", red_light_message(light.light_id, obs.x, obs.y, obs.z)))

    def _blocked(self, obs: Observation) -> bool:
        if obs.speed >= self.config.blocked_speed_ms:
            self._stopped_since = None
            return False
        if self._stopped_since is None:
            self._stopped_since = obs.time
        return obs.time - self._stopped_since >= self.config.blocked_s

    def _min_speed(self, obs: Observation) -> None:
        # Like the leaderboard's criterion: only frames with surrounding traffic count, for both sides.
        if obs.traffic_speeds:
            segment = self._segment
            segment.ego_sum += obs.speed
            segment.traffic_sum += sum(obs.traffic_speeds) / len(obs.traffic_speeds)
            segment.frames += 1
        self._close_segments(final=False)

    def _close_segments(self, *, final: bool) -> None:
        while self._checkpoints_done < MIN_SPEED_CHECKPOINTS:
            boundary = self.config.route_length_m * (self._checkpoints_done + 1) / MIN_SPEED_CHECKPOINTS
            if not final and self.progress_m < boundary:
                return
            segment = self._segment
            self._segment = _Segment()
            self._checkpoints_done += 1
            if segment.frames == 0 or segment.traffic_sum <= 0:
                continue
            percentage = round(100 * segment.ego_sum / segment.traffic_sum, 2)
            if percentage < 100:
                self.events.append(InfractionEvent("min_speed_infractions", min_speed_message(percentage), percentage))
