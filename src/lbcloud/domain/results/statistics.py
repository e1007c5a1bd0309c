"""Global statistics: the global record, values, entry status and validation (spec §4.3, §4.4).

Public names:

- :func:`compute_global_record(records, total_instances) -> GlobalRecord` — 2.x (§4.3 steps 1–6).
- :func:`compute_global_record_10(records, total_instances) -> GlobalRecord` — 1.0 (§4.4).
- :func:`scores_so_far(results) -> ResultsFile` — a provisional global record over the records so far.
- :func:`values_for(global_record, fmt) -> tuple[str, ...]` and :func:`labels_for(fmt)` (§2.4).
- :func:`entry_status_from_records(records) -> str` — ``Finished`` / ``Crashed`` / ``Rejected`` (§4.3.8).
- :func:`validation_problem(results, sensors_set_up) -> str | None` — §4.3 step 9.
- :func:`finalize_results(results, *, sensors_set_up=True) -> FinalizedResults` — what a non-crashed
  evaluator run (or a complete 2.x merge) does at the end: global record, values, labels, entry
  status, eligibility and validation, in the official order. ``FinalizedResults.messages`` holds the
  lines the official code prints when it sets ``Invalid``.
- :func:`finalize_results_10(results, source_records=None) -> ResultsFile` — the 1.0 equivalent.
- :func:`rescore_results(results, scorer) -> ResultsFile` — re-score every record (e.g. a 2.0 file
  under lb2.1) and recompute the global record if the file has one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from lbcloud.domain.errors import InputError
from lbcloud.domain.results.model import (
    INFRACTION_KEYS_2X,
    INFRACTION_KEYS_10,
    LABELS_2X,
    LABELS_10,
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PERFECT,
    STATUS_STARTED,
    VALUE_SOURCES,
    ExceptionEntry,
    GlobalRecord,
    GlobalScores,
    Number,
    ResultFormat,
    ResultsFile,
    RouteRecord,
)
from lbcloud.domain.results.scoring import rescore_record
from lbcloud.domain.tracks import ScorerVersion

SCORE_DIGITS = 6
STAT_DIGITS = 3
_SCORE_KEYS = ("score_composed", "score_route", "score_penalty")

INVALID_HEADER = "The statistics are badly formed. Setting their status to 'Invalid':"


def _score(record: RouteRecord, key: str) -> Number:
    return getattr(record.scores, key)  # type: ignore[no-any-return]


def off_road_km(record: RouteRecord) -> float | int:
    """Kilometres off-lane of one record: metres of the first off-road message / 1000, else 0."""
    messages = record.messages("outside_route_lanes")
    if not messages:
        return 0
    return float(messages[0].split(" ")[8]) / 1000


def compute_global_record(records: Sequence[RouteRecord], total_instances: int) -> GlobalRecord:
    """The 2.x global record over ``records`` (in the given order) with N = ``total_instances``.

    Follows §4.3's order of operations so the result is bit-identical to the official code's.
    Raises ``ValueError`` if ``total_instances`` is not positive or an off-road message is malformed.
    """
    n = total_instances
    if n <= 0:
        raise ValueError("the global record needs at least one instance")
    means: dict[str, Number] = dict.fromkeys(_SCORE_KEYS, 0)
    total_length: Number = 0
    duration_game: Number = 0
    duration_system: Number = 0
    status = STATUS_PERFECT
    exceptions: list[ExceptionEntry] = []
    for record in records:
        for key in _SCORE_KEYS:
            means[key] += _score(record, key) / n
        total_length += record.meta.route_length
        duration_game += record.meta.duration_game
        duration_system += record.meta.duration_system
        if STATUS_FAILED in record.status:
            exceptions.append((record.route_id, record.index, record.status))
            status = STATUS_FAILED
        elif status == STATUS_PERFECT and record.status != STATUS_PERFECT:
            status = record.status
    for key in _SCORE_KEYS:
        means[key] = round(means[key], SCORE_DIGITS)

    std_dev: GlobalScores | int
    if n == 1:
        std_dev = 0
    else:
        devs: dict[str, Number] = {}
        for key in _SCORE_KEYS:
            acc: Number = 0
            for record in records:
                acc += (_score(record, key) - means[key]) ** 2
            devs[key] = round(math.sqrt(acc / (n - 1)), STAT_DIGITS)
        std_dev = GlobalScores(devs["score_composed"], devs["score_route"], devs["score_penalty"])

    km: Number = 0
    for record in records:
        km += record.meta.route_length / 1000 * record.scores.score_route / 100
    km = max(km, 0.001)

    infractions: dict[str, Number] = {}
    for key in INFRACTION_KEYS_2X:
        if key == "outside_route_lanes":
            off: Number = 0.0  # the current code's total is a float even with no off-road message
            for record in records:
                off += off_road_km(record)
            infractions[key] = round(off, STAT_DIGITS)
        else:
            count = sum(len(record.messages(key)) for record in records)
            infractions[key] = round(count / km, STAT_DIGITS)

    return GlobalRecord(
        status=status,
        infractions=infractions,
        scores_mean=GlobalScores(means["score_composed"], means["score_route"], means["score_penalty"]),
        scores_std_dev=std_dev,
        total_length=total_length,
        duration_game=duration_game,
        duration_system=duration_system,
        exceptions=tuple(exceptions),
    )


def compute_global_record_10(records: Sequence[RouteRecord], total_instances: int) -> GlobalRecord:
    """The 1.0 global record (§4.4): unrounded means, sum of per-route rates, all-failed exceptions.

    Records read back from JSON always count as "not Completed" in the official code (an identity
    test), so every record lands in ``exceptions`` and the status is ``Failed`` whenever there is one.
    """
    n = total_instances
    if n <= 0:
        raise ValueError("the global record needs at least one instance")
    sums: dict[str, Number] = dict.fromkeys(_SCORE_KEYS, 0)
    infractions: dict[str, Number] = dict.fromkeys(INFRACTION_KEYS_10, 0.0)
    total_length: Number = 0
    duration_game: Number = 0
    duration_system: Number = 0
    exceptions: list[ExceptionEntry] = []
    status = STATUS_COMPLETED
    for record in records:
        for key in _SCORE_KEYS:
            sums[key] += _score(record, key)
        route_km = record.scores.score_route / 100 * record.meta.route_length / 1000
        if record.scores.score_route != 0 and route_km != 0:
            for key in INFRACTION_KEYS_10:
                infractions[key] += len(record.messages(key)) / route_km
        total_length += record.meta.route_length
        duration_game += record.meta.duration_game
        duration_system += record.meta.duration_system
        exceptions.append((record.route_id, record.index, record.status))
        status = STATUS_FAILED
    means = {key: sums[key] / n for key in _SCORE_KEYS}
    std_dev: GlobalScores
    if n == 1:
        std_dev = GlobalScores("NaN", "NaN", "NaN")
    else:
        devs: dict[str, Number] = {}
        for key in _SCORE_KEYS:
            acc: Number = 0
            for record in records:
                acc += (_score(record, key) - means[key]) ** 2
            devs[key] = math.sqrt(acc / (n - 1))
        std_dev = GlobalScores(devs["score_composed"], devs["score_route"], devs["score_penalty"])
    return GlobalRecord(
        status=status,
        infractions=infractions,
        scores_mean=GlobalScores(means["score_composed"], means["score_route"], means["score_penalty"]),
        scores_std_dev=std_dev,
        total_length=total_length,
        duration_game=duration_game,
        duration_system=duration_system,
        exceptions=tuple(exceptions) if exceptions else None,
    )


def scores_so_far(results: ResultsFile) -> ResultsFile:
    """``results`` with a provisional global record over the records it holds (N = their count),
    for partial publications; unchanged when it already has a global record or holds no record.
    Raises ``ValueError`` as the global record functions do (a malformed off-road message)."""
    if results.global_record is not None or not results.records:
        return results
    compute = compute_global_record_10 if results.format is ResultFormat.V10 else compute_global_record
    return replace(results, global_record=compute(results.records, len(results.records)))


def values_for(global_record: GlobalRecord, fmt: ResultFormat = ResultFormat.V2X) -> tuple[str, ...]:
    """``values``: ``str()`` of each global number (2.x, 15) or 3-decimal strings (1.0, 12)."""
    if fmt is ResultFormat.V10:
        return tuple(f"{float(global_record.value_of(s, k)):.3f}" for s, k in VALUE_SOURCES[:12])
    return tuple(str(global_record.value_of(s, k)) for s, k in VALUE_SOURCES)


def labels_for(fmt: ResultFormat = ResultFormat.V2X) -> tuple[str, ...]:
    return LABELS_10 if fmt is ResultFormat.V10 else LABELS_2X


def entry_status_from_records(records: Sequence[RouteRecord]) -> str:
    """``Finished``, or ``Crashed``/``Rejected`` when a record's status says so (the last one decides)."""
    status = "Finished"
    for record in records:
        if "Simulation crashed" in record.status:
            status = "Crashed"
        elif "Agent's sensors were invalid" in record.status:
            status = "Rejected"
    return status


def validation_problem(results: ResultsFile, *, sensors_set_up: bool = True) -> str | None:
    """The message of the first failing validation rule (§4.3 step 9), or ``None`` if valid."""
    if sensors_set_up and not results.sensors:
        return "Missing 'sensors' data"
    if not results.values:
        return "Missing 'values' data"
    if results.entry_status == STATUS_STARTED:
        return "'entry_status' has the 'Started' value"
    if results.global_record is None:
        return "Missing 'global_records' data"
    if not results.progress:
        return "Missing 'progress' data"
    if results.progress[0] != results.total or results.progress[0] != len(results.records):
        return "'progress' data doesn't match its expected value"
    if any(record.status == STATUS_STARTED for record in results.records):
        return "Found a route record with missing data"
    return None


@dataclass(frozen=True, slots=True)
class FinalizedResults:
    """A finalized document and the lines the official code prints while finalizing it."""

    results: ResultsFile
    messages: tuple[str, ...] = ()


def finalize_results(results: ResultsFile, *, sensors_set_up: bool = True) -> FinalizedResults:
    """Compute the 2.x global record over ``results.records`` with N = ``progress[1]``, then
    ``values``, ``labels``, the entry status, ``eligible`` and validation (``Invalid`` on failure).

    Raises ``ValueError`` when ``progress[1]`` is 0.
    """
    global_record = compute_global_record(results.records, results.total)
    entry_status = entry_status_from_records(results.records)
    done = replace(
        results,
        global_record=global_record,
        values=values_for(global_record),
        labels=LABELS_2X,
        entry_status=entry_status,
        eligible=entry_status == "Finished",
    )
    problem = validation_problem(done, sensors_set_up=sensors_set_up)
    if problem is None:
        return FinalizedResults(done)
    invalid = replace(done, entry_status="Invalid", eligible=False)
    return FinalizedResults(invalid, (INVALID_HEADER, f"> {problem}"))


def entry_status_10(records: Sequence[RouteRecord], progress: Sequence[int], total: int) -> str:
    """1.0 entry status at the end: missing data, agent errors, or ``Finished`` (§4.4)."""
    if len(records) != total or len(progress) < 2 or progress[0] != progress[1]:
        return "Finished with missing data"
    if any("Agent" in record.status for record in records):
        return "Finished with agent errors"
    return "Finished"


def finalize_results_10(results: ResultsFile, source_records: Sequence[RouteRecord] | None = None) -> ResultsFile:
    """The 1.0 global record, values, labels, entry status and eligibility of ``results``.

    ``source_records`` are the records the global record is computed from (a 1.0 merge passes the
    inputs' records in argument order, with their worker-local indices); default ``results.records``.
    """
    records = results.records if source_records is None else tuple(source_records)
    global_record = compute_global_record_10(records, results.total)
    entry_status = entry_status_10(records, results.progress, results.total)
    return replace(
        results,
        global_record=global_record,
        values=values_for(global_record, ResultFormat.V10),
        labels=LABELS_10,
        entry_status=entry_status,
        eligible=entry_status != "Finished with missing data",
    )


def rescore_results(results: ResultsFile, scorer: ScorerVersion) -> ResultsFile:
    """``results`` with every record re-scored under ``scorer`` from its messages and stored RC.

    If the file has a global record, it and ``values``/``labels`` are recomputed (N = ``progress[1]``);
    ``entry_status`` and ``eligible`` are kept. Raises :class:`InputError` when the scorer's format
    (1.0 vs 2.x) differs from the file's.
    """
    wants_10 = scorer is ScorerVersion.LB10
    if wants_10 != (results.format is ResultFormat.V10):
        raise InputError(
            f"scorer {scorer.value} cannot score a Leaderboard {results.format.value} file "
            "(its records have different infraction lists)"
        )
    records = tuple(rescore_record(record, scorer) for record in results.records)
    rescored = replace(results, records=records)
    if results.global_record is None or results.total <= 0:
        return rescored
    if wants_10:
        global_record = compute_global_record_10(records, results.total)
        return replace(rescored, global_record=global_record, values=values_for(global_record, ResultFormat.V10))
    global_record = compute_global_record(records, results.total)
    return replace(rescored, global_record=global_record, values=values_for(global_record), labels=LABELS_2X)
