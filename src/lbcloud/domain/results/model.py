"""The leaderboard result file as typed, frozen values (spec: ``leaderboard-results.md`` §2, §3).

Public names:

- :class:`ResultFormat` — ``V2X`` (Leaderboard 2.0/2.1) or ``V10`` (Leaderboard 1.0).
- :class:`RouteScores`, :class:`RouteMeta`, :class:`RouteRecord` — one route instance's record.
- :class:`GlobalScores`, :class:`GlobalRecord` — the statistics over all instances.
- :class:`ResultsFile` — the whole document (``_checkpoint``, ``entry_status``, ``sensors``, ...).
- :data:`INFRACTION_KEYS_2X`, :data:`INFRACTION_KEYS_10`, :data:`LABELS_2X`, :data:`LABELS_10`,
  :data:`EVALAI_KEYS_2X`, :data:`ENTRY_STATUSES_2X`.
- :func:`parse_route_id` — ``RouteScenario_<n>_rep<r>`` → ``(n, r)``.

Numbers keep their JSON type (``int`` stays ``int``, ``float`` stays ``float``) because the official
files depend on it byte for byte. Keys the leaderboard does not know (third-party forks) are kept, in
their input order, in the ``extra`` fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeAlias

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
Number: TypeAlias = int | float
Extra: TypeAlias = tuple[tuple[str, Json], ...]


class ResultFormat(StrEnum):
    """Which official code wrote (or will write) the file: its keys, key order and number rounding."""

    V2X = "2.x"
    """Leaderboard 2.0 and 2.1: fixed key order, rounded numbers, ``RouteScenario_<id>_rep<r>`` ids."""
    V10 = "1.0"
    """Leaderboard 1.0: sorted keys, unrounded numbers, ``RouteScenario_<id>`` ids."""


INFRACTION_KEYS_2X: tuple[str, ...] = (
    "collisions_layout",
    "collisions_pedestrian",
    "collisions_vehicle",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "min_speed_infractions",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "route_dev",
    "vehicle_blocked",
    "route_timeout",
)
"""The 12 infraction lists of a 2.x record, in file order."""

INFRACTION_KEYS_10: tuple[str, ...] = (
    "collisions_layout",
    "collisions_pedestrian",
    "collisions_vehicle",
    "outside_route_lanes",
    "red_light",
    "route_dev",
    "route_timeout",
    "stop_infraction",
    "vehicle_blocked",
)
"""The 9 infraction lists of a 1.0 record (sorted, as the file is)."""

OLD_YIELD_KEY = "yield_emergency_vehicles_infractions"
"""The plural key of 2.0 files written before 2023-06-21; read as ``yield_emergency_vehicle_infractions``."""
YIELD_KEY = "yield_emergency_vehicle_infractions"

LABELS_2X: tuple[str, ...] = (
    "Avg. driving score",
    "Avg. route completion",
    "Avg. infraction penalty",
    "Collisions with pedestrians",
    "Collisions with vehicles",
    "Collisions with layout",
    "Red lights infractions",
    "Stop sign infractions",
    "Off-road infractions",
    "Route deviations",
    "Route timeouts",
    "Agent blocked",
    "Yield emergency vehicles infractions",
    "Scenario timeouts",
    "Min speed infractions",
)
"""``labels`` of a 2.x file (§2.4)."""

LABELS_10: tuple[str, ...] = LABELS_2X[:12]
"""``labels`` of a 1.0 file: the first 12 of the 2.x labels."""

EVALAI_KEYS_2X: tuple[str, ...] = (
    "Driving score",
    "Route completion",
    "Infraction penalty",
    "Collisions pedestrians",
    "Collisions vehicles",
    "Collisions layout",
    "Red light infractions",
    "Stop sign infractions",
    "Off-road infractions",
    "Route deviations",
    "Route timeouts",
    "Agent blocked",
    "Yield emergency vehicle infractions",
    "Scenario timeouts",
    "Min speed infractions",
)
"""EvalAI ``accuracies`` keys, position by position with :data:`LABELS_2X` (§2.4, §9.1)."""

EVALAI_KEYS_10: tuple[str, ...] = EVALAI_KEYS_2X[:12]

VALUE_SOURCES: tuple[tuple[str, str], ...] = (
    ("scores", "score_composed"),
    ("scores", "score_route"),
    ("scores", "score_penalty"),
    ("infractions", "collisions_pedestrian"),
    ("infractions", "collisions_vehicle"),
    ("infractions", "collisions_layout"),
    ("infractions", "red_light"),
    ("infractions", "stop_infraction"),
    ("infractions", "outside_route_lanes"),
    ("infractions", "route_dev"),
    ("infractions", "route_timeout"),
    ("infractions", "vehicle_blocked"),
    ("infractions", YIELD_KEY),
    ("infractions", "scenario_timeouts"),
    ("infractions", "min_speed_infractions"),
)
"""Where each of the 15 ``values`` comes from in the global record (§2.4)."""

ENTRY_STATUSES_2X: tuple[str, ...] = ("Started", "Finished", "Rejected", "Crashed", "Invalid")
"""The 2.x ``entry_status`` values; ``eligible`` is true only for ``Finished``."""

STATUS_STARTED = "Started"
STATUS_PERFECT = "Perfect"
STATUS_COMPLETED = "Completed"
STATUS_FAILED = "Failed"

_ROUTE_ID_2X = re.compile(r"^RouteScenario_(-?\d+)_rep(\d+)$")
_ROUTE_ID_10 = re.compile(r"^RouteScenario_(-?\d+)$")


def parse_route_id(route_id: str) -> tuple[int, int] | None:
    """``RouteScenario_<n>_rep<r>`` → ``(n, r)``; ``RouteScenario_<n>`` (1.0) → ``(n, 0)``; else ``None``."""
    match = _ROUTE_ID_2X.match(route_id)
    if match:
        return int(match.group(1)), int(match.group(2))
    match = _ROUTE_ID_10.match(route_id)
    if match:
        return int(match.group(1)), 0
    return None


def route_id_for(route: str | int, repetition: int, fmt: ResultFormat = ResultFormat.V2X) -> str:
    """The record ``route_id`` of an instance: ``RouteScenario_7_rep0`` (2.x) or ``RouteScenario_7`` (1.0)."""
    if fmt is ResultFormat.V10:
        return f"RouteScenario_{route}"
    return f"RouteScenario_{route}_rep{repetition}"


@dataclass(frozen=True, slots=True)
class RouteScores:
    """A record's ``scores``: route completion (RC), infraction penalty (IP), driving score (DS)."""

    score_route: Number = 0
    score_penalty: Number = 0
    score_composed: Number = 0
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class RouteMeta:
    """A record's ``meta``: route length in metres and game/system durations in seconds."""

    route_length: Number = 0
    duration_game: Number = 0
    duration_system: Number = 0
    extra: Extra = ()


@dataclass(frozen=True, slots=True)
class RouteRecord:
    """One instance's record.

    ``infractions`` maps each list name to its messages, in file order (a 2.x record has the 12 keys
    of :data:`INFRACTION_KEYS_2X`, a 1.0 record the 9 of :data:`INFRACTION_KEYS_10`).
    ``num_infractions`` is ``None`` for 1.0 records, which have no such key. ``extra`` holds unknown
    keys in input order; they are written after the standard keys.
    """

    index: int
    route_id: str
    status: str
    infractions: Mapping[str, tuple[str, ...]]
    scores: RouteScores
    meta: RouteMeta
    num_infractions: int | None = 0
    extra: Extra = ()

    def messages(self, key: str) -> tuple[str, ...]:
        """The messages of one infraction list (empty if the record lacks it)."""
        return self.infractions.get(key, ())

    def message_count(self) -> int:
        """Total number of messages over every list (what ``num_infractions`` holds in 2.x)."""
        return sum(len(v) for v in self.infractions.values())

    @property
    def route_and_repetition(self) -> tuple[int, int]:
        """``(route, repetition)`` from ``route_id``; raises ``ValueError`` if it is not a leaderboard id."""
        parsed = parse_route_id(self.route_id)
        if parsed is None:
            raise ValueError(f"route_id {self.route_id!r} is not RouteScenario_<int>[_rep<int>]")
        return parsed

    def with_index(self, index: int) -> RouteRecord:
        return self if index == self.index else replace(self, index=index)


@dataclass(frozen=True, slots=True)
class GlobalScores:
    """The three global scores. A value may be the string ``"NaN"`` (1.0 and old 2.0 std devs)."""

    score_composed: Number | str = 0
    score_route: Number | str = 0
    score_penalty: Number | str = 0


ExceptionEntry: TypeAlias = tuple[str, int, str]
"""``[route_id, index, status]`` of a record counted as failed."""


@dataclass(frozen=True, slots=True)
class GlobalRecord:
    """The statistics over all instances (``_checkpoint.global_record``).

    ``scores_mean`` is written as ``scores_mean`` in 2.x and ``scores`` in 1.0. ``scores_std_dev`` is
    the int ``0`` for a single 2.x instance and ``None`` when the file has none (very old 1.0).
    ``total_length``/``duration_*`` are ``None`` when the file's ``meta`` lacks them (old files);
    ``exceptions`` is ``None`` when ``meta`` has no such key (1.0 without failures).
    """

    status: str
    infractions: Mapping[str, Number]
    scores_mean: GlobalScores
    scores_std_dev: GlobalScores | int | None
    total_length: Number | None = None
    duration_game: Number | None = None
    duration_system: Number | None = None
    exceptions: tuple[ExceptionEntry, ...] | None = ()
    extra: Extra = ()
    meta_extra: Extra = ()

    def value_of(self, section: str, key: str) -> Number | str:
        """A number by :data:`VALUE_SOURCES` coordinates: ``("scores", k)`` or ``("infractions", k)``."""
        if section == "scores":
            return getattr(self.scores_mean, key)  # type: ignore[no-any-return]
        return self.infractions.get(key, 0)


@dataclass(frozen=True, slots=True)
class ResultsFile:
    """A whole leaderboard result document: a checkpoint, a partial file or a merged file.

    ``progress`` is ``(done, total)`` or ``()`` (an empty 1.0 skeleton). ``eligible`` is a bool, or
    the empty string of a 1.0 skeleton. ``global_record`` is ``None`` while it is ``{}`` on disk.
    """

    format: ResultFormat
    records: tuple[RouteRecord, ...]
    progress: tuple[int, ...]
    global_record: GlobalRecord | None = None
    entry_status: str = STATUS_STARTED
    eligible: bool | str = False
    sensors: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    extra: Extra = ()
    checkpoint_extra: Extra = ()

    @property
    def total(self) -> int:
        """``progress[1]`` (0 if progress is empty)."""
        return self.progress[1] if len(self.progress) > 1 else 0

    @property
    def done(self) -> int:
        """``progress[0]`` (0 if progress is empty)."""
        return self.progress[0] if self.progress else 0


def empty_results(fmt: ResultFormat = ResultFormat.V2X) -> ResultsFile:
    """The document with no data: 2.x ``Started`` with progress ``[0, 0]``; 1.0 the empty skeleton."""
    if fmt is ResultFormat.V10:
        return ResultsFile(format=fmt, records=(), progress=(), entry_status="", eligible="")
    return ResultsFile(format=fmt, records=(), progress=(0, 0))


@dataclass(frozen=True, slots=True)
class SourcedRecord:
    """A record with the name of the file (or worker) it came from, for diagnostics."""

    record: RouteRecord
    source: str = field(default="")
