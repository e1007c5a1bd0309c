"""Merging partial result files and route records (spec §6, with the deliberate deviations of §10).

Public names:

- :class:`MergeInput` — one parsed input file and its name.
- :class:`ExpectedInstances` — the route instances a submission must have (``route_id`` in run order,
  each with the worker file that should hold it); :meth:`ExpectedInstances.for_routes` builds it.
- :class:`MergeOutcome` — the merged :class:`ResultsFile`, whether it is complete, diagnostics (why it
  is partial, what was inferred) and the lines the official code prints when it sets ``Invalid``.
- :func:`merge_results(inputs, expected=None, *, allow_duplicates=False) -> MergeOutcome` — the
  file merge. Without ``expected`` it reproduces the official merge byte for byte (plus a refusal
  of duplicates in partial merges); with it, completeness and continuity are judged against the set.
- :func:`merge_route_records(records, *, sensors, expected, fmt, allow_duplicates) -> MergeOutcome` —
  the same document built from records collected one per route task (what the dispatcher uses).

Errors: :class:`~lbcloud.domain.errors.MergeRefused` for genuinely inconsistent input (differing
sensors, duplicates, gaps, records outside the expected set). Message texts start with the official
``Stopping. ...`` text so operators recognise them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from lbcloud.domain.errors import MergeRefused
from lbcloud.domain.results.model import (
    ResultFormat,
    ResultsFile,
    RouteRecord,
    SourcedRecord,
    empty_results,
    route_id_for,
)
from lbcloud.domain.results.statistics import finalize_results, finalize_results_10


@dataclass(frozen=True, slots=True)
class MergeInput:
    """One readable input: its display name (file name, worker) and its parsed content."""

    source: str
    results: ResultsFile


@dataclass(frozen=True, slots=True)
class ExpectedInstances:
    """The instances a complete result must hold, in run order, and who should hold each.

    ``owners`` maps a ``route_id`` to the worker file (or route task) expected to produce it; it is
    used only in diagnostics. In 1.0, repetitions share one ``route_id``, which then appears
    ``repetitions`` times in ``route_ids``.
    """

    route_ids: tuple[str, ...]
    owners: Mapping[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.route_ids)

    @classmethod
    def for_routes(
        cls,
        routes: Sequence[str | int],
        repetitions: int = 1,
        fmt: ResultFormat = ResultFormat.V2X,
        owners: Mapping[str, str] | None = None,
    ) -> ExpectedInstances:
        """Instances of ``routes`` (XML ids in run order) × ``repetitions``; ``owners`` maps XML ids."""
        ids: list[str] = []
        owner_of: dict[str, str] = {}
        for route in routes:
            for rep in range(repetitions):
                route_id = route_id_for(route, rep, fmt)
                ids.append(route_id)
                if owners and str(route) in owners:
                    owner_of[route_id] = owners[str(route)]
        return cls(tuple(ids), owner_of)


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """A merged document and what the merge noticed.

    ``complete`` says whether the global record was computed. ``diagnostics`` are human sentences
    (missing instances and their worker, duplicates kept under ``allow_duplicates``, completeness
    inferred without an expected set). ``messages`` are the lines the official code prints when the
    result is ``Invalid``.
    """

    results: ResultsFile
    complete: bool
    diagnostics: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()


def _sort_key(record: RouteRecord) -> tuple[int, int]:
    return record.route_and_repetition


def _sort_key_10(record: RouteRecord) -> int:
    return record.route_and_repetition[0]


def _sensors(inputs: Sequence[MergeInput]) -> tuple[str, ...]:
    chosen: tuple[str, ...] = ()
    chosen_from = ""
    for item in inputs:
        sensors = item.results.sensors
        if not sensors:
            continue
        if not chosen:
            chosen, chosen_from = sensors, item.source
        elif sensors != chosen:
            raise MergeRefused(
                f"Stopping. Found two files with different sensor configurations ({chosen_from} and {item.source})"
            )
    return chosen


def _holders(sourced: Iterable[SourcedRecord]) -> dict[str, list[str]]:
    holders: dict[str, list[str]] = defaultdict(list)
    for item in sourced:
        holders[item.record.route_id].append(item.source or "?")
    return holders


def _duplicates(sourced: Sequence[SourcedRecord], fmt: ResultFormat, allowed: Counter[str] | None) -> list[str]:
    """Route ids with more records than allowed (one each; in 1.0 ``allowed`` gives the repetitions)."""
    counts = Counter(item.record.route_id for item in sourced)
    limit = allowed or Counter()
    dups = [rid for rid, n in counts.items() if n > (limit[rid] if allowed is not None else 1)]
    key = (lambda rid: (int(rid.split("_")[1]), 0)) if fmt is ResultFormat.V10 else _id_key
    return sorted(dups, key=key)


def _id_key(route_id: str) -> tuple[int, int]:
    number, _, rep = route_id.removeprefix("RouteScenario_").partition("_rep")
    return int(number), int(rep or 0)


def _duplicate_message(route_id: str, holders: Mapping[str, list[str]]) -> str:
    return (
        f"Stopping. Found that the route {route_id} has more than one record "
        f"(in {', '.join(holders.get(route_id, []))})"
    )


def _check_continuity(records: Sequence[RouteRecord]) -> None:
    """The official continuity walk over ids sorted by (route, repetition) (§6.2 step 3)."""
    previous_id = ""
    previous_position = 0
    previous_rep: int | None = None
    multiplier = 1
    multiplier_set = False
    for record in records:
        route, rep = record.route_and_repetition
        if previous_rep is not None and rep < previous_rep and not multiplier_set:
            multiplier = previous_rep + 1
            multiplier_set = True
        position = route * multiplier + rep
        if position - previous_position > 1:
            raise MergeRefused(f"Stopping. Missing some data as the ids jumped from {previous_id} to {record.route_id}")
        previous_id, previous_position, previous_rep = record.route_id, position, rep


def _missing_diagnostic(missing: Sequence[str], expected: ExpectedInstances) -> list[str]:
    by_owner: dict[str, list[str]] = defaultdict(list)
    for route_id in missing:
        by_owner[expected.owners.get(route_id, "")].append(route_id)
    lines = []
    for owner, ids in by_owner.items():
        where = f" (expected in {owner})" if owner else ""
        lines.append(f"missing {len(ids)} of {expected.count} instances: {', '.join(ids)}{where}")
    return lines


def _merge(
    sourced: Sequence[SourcedRecord],
    *,
    sensors: tuple[str, ...],
    total: int,
    fmt: ResultFormat,
    expected: ExpectedInstances | None,
    allow_duplicates: bool,
    records_10: Sequence[RouteRecord] | None = None,
) -> MergeOutcome:
    diagnostics: list[str] = []
    holders = _holders(sourced)
    expected_counts = Counter(expected.route_ids) if expected is not None else None
    if expected is not None and expected_counts is not None:
        outside = [rid for rid in holders if rid not in expected_counts]
        if outside:
            outside.sort(key=_id_key)
            first = outside[0]
            raise MergeRefused(
                f"Stopping. Found the route {first} outside the expected instances "
                f"(in {', '.join(holders[first])}; {len(outside)} such route id(s))"
            )
        total = expected.count
    count = len(sourced)
    complete_by_count = total != 0 and count == total

    # Duplicates: the official merge checks them only when complete; 1.0 never (§10.2 in every merge).
    if fmt is ResultFormat.V2X or expected is not None:
        dups = _duplicates(sourced, fmt, expected_counts)
        if dups:
            if not allow_duplicates:
                raise MergeRefused(_duplicate_message(dups[0], holders))
            sourced = _keep_last(sourced, expected_counts)
            for rid in dups:
                diagnostics.append(f"kept the last of several records for {rid} (in {', '.join(holders[rid])})")
            count = len(sourced)
            complete_by_count = total != 0 and count == total

    records = [item.record for item in sourced]
    ordered = sorted(records, key=_sort_key_10) if fmt is ResultFormat.V10 else sorted(records, key=_sort_key)
    ordered = [record.with_index(i) for i, record in enumerate(ordered)]

    if expected is not None and expected_counts is not None:
        have = Counter(r.route_id for r in ordered)
        missing = [rid for rid in dict.fromkeys(expected.route_ids) if have[rid] < expected_counts[rid]]
        complete = not missing and expected.count > 0
        diagnostics.extend(_missing_diagnostic(missing, expected))
    else:
        complete = complete_by_count
        if complete and fmt is ResultFormat.V2X:
            _check_continuity(ordered)
        diagnostics.append(
            "completeness was inferred from the inputs' progress counts; give the expected routes to detect "
            "missing workers"
        )

    base = replace(empty_results(fmt), records=tuple(ordered), progress=(count, total), sensors=sensors)
    if fmt is ResultFormat.V10:
        base = replace(base, entry_status="Started", eligible=False)
        if not complete:
            return MergeOutcome(base, False, tuple(diagnostics))
        source_records = ordered if records_10 is None else records_10
        return MergeOutcome(finalize_results_10(base, source_records), True, tuple(diagnostics))
    if not complete:
        return MergeOutcome(base, False, tuple(diagnostics))
    finalized = finalize_results(base, sensors_set_up=True)
    return MergeOutcome(finalized.results, True, tuple(diagnostics), finalized.messages)


def _keep_last(sourced: Sequence[SourcedRecord], allowed: Counter[str] | None) -> list[SourcedRecord]:
    """Drop surplus records of an instance, keeping the last ones in input order."""
    seen: Counter[str] = Counter()
    kept: list[SourcedRecord] = []
    for item in reversed(sourced):
        rid = item.record.route_id
        seen[rid] += 1
        if seen[rid] <= (allowed[rid] if allowed is not None else 1):
            kept.append(item)
    kept.reverse()
    return kept


def merge_results(
    inputs: Sequence[MergeInput],
    expected: ExpectedInstances | None = None,
    *,
    allow_duplicates: bool = False,
    fmt: ResultFormat | None = None,
) -> MergeOutcome:
    """Merge parsed partial files in argument order (§6.2 / §6.3 and §10).

    The format is that of the inputs (2.x when there are none), unless ``fmt`` is given; mixing
    formats is refused. Raises :class:`MergeRefused` on differing sensors, duplicates (unless
    ``allow_duplicates``: the last record of an instance is kept and reported), gaps (no expected
    set) or records outside ``expected``.
    """
    formats = {item.results.format for item in inputs}
    if len(formats) > 1:
        raise MergeRefused("Stopping. The inputs mix Leaderboard 1.0 and 2.x result files")
    fmt = fmt or (formats.pop() if formats else ResultFormat.V2X)
    sensors = _sensors(inputs)
    sourced = [SourcedRecord(record, item.source) for item in inputs for record in item.results.records]
    total = sum(item.results.total for item in inputs)
    records_10 = [s.record for s in sourced] if fmt is ResultFormat.V10 else None
    return _merge(
        sourced,
        sensors=sensors,
        total=total,
        fmt=fmt,
        expected=expected,
        allow_duplicates=allow_duplicates,
        records_10=records_10,
    )


def merge_route_records(
    records: Sequence[RouteRecord | SourcedRecord],
    *,
    sensors: Sequence[str],
    expected: ExpectedInstances,
    fmt: ResultFormat = ResultFormat.V2X,
    allow_duplicates: bool = False,
) -> MergeOutcome:
    """The merged document of route records collected one per route task.

    Gives the same document as :func:`merge_results` on worker files holding these records with
    ``expected``: progress ``[records, expected.count]``, a global record only once every expected
    instance has its record. Record indices are renumbered; each record's content is kept as is.
    In 1.0, every record's own ``index`` is what lands in ``exceptions`` (worker-local in a file merge).
    """
    sourced = [item if isinstance(item, SourcedRecord) else SourcedRecord(item, "") for item in records]
    records_10 = [s.record for s in sourced] if fmt is ResultFormat.V10 else None
    return _merge(
        sourced,
        sensors=tuple(sensors),
        total=expected.count,
        fmt=fmt,
        expected=expected,
        allow_duplicates=allow_duplicates,
        records_10=records_10,
    )
