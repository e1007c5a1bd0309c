"""Cost metering: GPU-hours and estimated cost per attempt, submission and team."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import Attempt, AttemptStatus
from lbcloud.domain.tracks import Pool
from lbcloud.services.costs import Usage, attempt_seconds, attempt_usage, cost_report

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _attempt(attempt_id: int, submission_id: int, start_min: float, end_min: float | None) -> Attempt:
    return Attempt(
        id=attempt_id,
        task_id=attempt_id,
        submission_id=submission_id,
        number=1,
        backend="local",
        pool="gpu",
        status=AttemptStatus.ENDED if end_min is not None else AttemptStatus.RUNNING,
        owner="me",
        lease_expires_at=None,
        handle=None,
        token="t",
        outcome=None,
        blame=Blame.NONE,
        reason=None,
        exit_code=None,
        counted=False,
        created_at=T0 + timedelta(minutes=start_min - 1),
        started_at=T0 + timedelta(minutes=start_min),
        ended_at=None if end_min is None else T0 + timedelta(minutes=end_min),
    )


GPU_POOL = Pool(name="gpu", gpus_per_attempt=2, price_per_hour=1.5)


def test_an_ended_attempt_is_charged_from_start_to_end() -> None:
    usage = attempt_usage(_attempt(1, 1, 0, 30), GPU_POOL, now=T0 + timedelta(hours=5))
    assert usage == Usage(attempts=1, hours=0.5, gpu_hours=1.0, cost=0.75)


def test_a_running_attempt_is_charged_until_now() -> None:
    assert attempt_seconds(_attempt(1, 1, 0, None), T0 + timedelta(minutes=90)) == 5400.0


def test_an_attempt_that_never_started_is_charged_from_creation() -> None:
    attempt = replace(_attempt(1, 1, 10, 20), started_at=None)
    assert attempt_seconds(attempt, T0) == pytest.approx(11 * 60)


def test_clock_skew_never_gives_negative_usage() -> None:
    assert attempt_seconds(_attempt(1, 1, 10, 5), T0) == 0.0


def test_a_gpu_free_pool_has_no_gpu_hours_but_may_have_a_price() -> None:
    usage = attempt_usage(_attempt(1, 1, 0, 60), Pool(name="cpu", gpus_per_attempt=0, price_per_hour=0.1), T0)
    assert usage.gpu_hours == 0.0
    assert usage.cost == pytest.approx(0.1)


def test_report_sums_per_submission_per_team_and_in_total() -> None:
    cheap = Pool(name="cpu", gpus_per_attempt=1, price_per_hour=1.0)
    attempts = [_attempt(1, 10, 0, 60), _attempt(2, 10, 0, 30), _attempt(3, 11, 0, 60), _attempt(4, 12, 0, 60)]
    owners = {10: ("alpha", GPU_POOL), 11: ("alpha", cheap), 12: ("beta", cheap)}
    report = cost_report(attempts, owners, now=T0)
    assert report.by_submission[10] == Usage(2, 1.5, 3.0, 2.25)
    assert report.by_team["alpha"] == Usage(3, 2.5, 4.0, 3.25)
    assert report.by_team["beta"] == Usage(1, 1.0, 1.0, 1.0)
    assert report.total == Usage(4, 3.5, 5.0, 4.25)


def test_attempts_of_unknown_submissions_are_ignored() -> None:
    report = cost_report([_attempt(1, 99, 0, 60)], {}, now=T0)
    assert report.total == Usage()
    assert not report.by_team
