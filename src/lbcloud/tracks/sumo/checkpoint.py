"""The evaluator's checkpoint file: resume rules (spec §5.1) and atomic writes of the 2.x document."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.results.writer import dumps_results


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a run starts (instance position), the records it keeps, and the sensors it found."""

    start: int
    records: tuple[RouteRecord, ...]
    sensors: tuple[str, ...] = ()
    reason: str = ""


def read_checkpoint(path: Path) -> ResultsFile | None:
    """The parsed checkpoint, or ``None`` when it is missing, empty or not a readable 2.x file."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.strip():
        return None
    try:
        results = parse_results(data, str(path))
    except (LbcloudError, ValueError):
        return None
    return results if results.format is ResultFormat.V2X else None


def resume_point(existing: ResultsFile | None, expected_ids: Sequence[str]) -> ResumePoint:
    """Apply the 2.x resume rules to an existing checkpoint for a run over ``expected_ids``."""
    if existing is None:
        return ResumePoint(0, (), reason="no readable checkpoint")
    if existing.entry_status in ("", "Invalid"):
        return ResumePoint(0, (), reason=f"entry_status is {existing.entry_status!r}")
    if len(existing.progress) < 2:
        return ResumePoint(0, (), reason="no progress")
    done, total = existing.progress[0], existing.progress[1]
    if total != len(expected_ids):
        return ResumePoint(0, (), reason=f"progress total {total} differs from this run's {len(expected_ids)}")
    records = existing.records
    for position, record in enumerate(records[:done]):
        if position >= len(expected_ids) or record.route_id != expected_ids[position]:
            return ResumePoint(0, (), reason=f"record {position} is {record.route_id}, not the expected instance")
    start = done if len(records) >= done else max(len(records) - 1, 0)
    if existing.entry_status == "Crashed":
        start -= 1
    start = max(start, 0)
    return ResumePoint(start, records, existing.sensors, reason="resumed")


def write_checkpoint(path: Path, results: ResultsFile) -> None:
    """Write the document atomically (temp file + rename), exactly as the official writer would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps_results(results), encoding="utf-8")
    os.replace(tmp, path)
