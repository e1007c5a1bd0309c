"""The qualification gate's rule (pure): does a qualifier result meet a gated track's thresholds?

A track may declare ``Qualification(track=<qualifier track>, thresholds=((metric, minimum), ...))``;
a team may submit to it only after a finished submission on the qualifier track reached every
minimum. Metric names are matched loosely, so a threshold may be written as the result file's label
(``Avg. driving score``), EvalAI's key (``Driving score``) or the lowercase key (``driving_score``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lbcloud.domain.tracks import Qualification


def metric_key(name: str) -> str:
    """The canonical form of a metric name: ``Avg. driving score`` → ``driving_score``."""
    key = name.strip().lower()
    key = re.sub(r"^avg\.?\s+", "", key)
    key = key.replace("red lights", "red light").replace("vehicles infractions", "vehicle infractions")
    key = re.sub(r"^collisions with ", "collisions ", key)
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


@dataclass(frozen=True, slots=True)
class QualificationVerdict:
    """Whether the values pass, and a one-line explanation for the team and the operator."""

    passed: bool
    detail: str


def evaluate_qualification(gate: Qualification, values: Mapping[str, object]) -> QualificationVerdict:
    """Check ``values`` (metric name → number, or its string) against every threshold of ``gate``.

    A missing or non-numeric metric fails. The verdict's detail lists each metric as
    ``name value >= minimum`` (met) or ``name value < minimum`` (not met)."""
    by_key = {metric_key(name): value for name, value in values.items()}
    parts = []
    passed = True
    for metric, minimum in gate.thresholds:
        number = _number(by_key.get(metric_key(metric)))
        if number is None:
            passed = False
            parts.append(f"{metric} missing (needs >= {minimum:g})")
        elif number >= minimum:
            parts.append(f"{metric} {number:g} >= {minimum:g}")
        else:
            passed = False
            parts.append(f"{metric} {number:g} < {minimum:g}")
    word = "passed" if passed else "did not pass"
    return QualificationVerdict(passed, f"{word} {gate.track}: " + ("; ".join(parts) or "no thresholds"))


def combine(verdicts: Iterable[QualificationVerdict]) -> QualificationVerdict | None:
    """One verdict for several gates on one qualifier track: passed only if every gate passed."""
    items = list(verdicts)
    if not items:
        return None
    return QualificationVerdict(all(v.passed for v in items), " | ".join(v.detail for v in items))


def gate_message(team: str, gate: Qualification, target_track: str) -> str:
    """What a team that has not qualified is told when it submits to ``target_track``."""
    needs = ", ".join(f"{metric} >= {minimum:g}" for metric, minimum in gate.thresholds)
    return (
        f"team {team!r} must first pass the qualification track {gate.track!r}"
        + (f" ({needs})" if needs else "")
        + f" before submitting to {target_track!r}"
    )


def global_values(labels: Iterable[str], values: Iterable[object]) -> dict[str, object]:
    """A result file's ``labels``/``values`` lists as a mapping (empty while the result is partial)."""
    return dict(zip(labels, values, strict=False))
