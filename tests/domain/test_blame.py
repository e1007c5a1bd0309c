"""Blame: who is at fault, and whether an attempt is retried."""

from __future__ import annotations

import pytest

from lbcloud.domain.blame import Blame, Failure, blame_of_record_status, should_retry


@pytest.mark.parametrize(
    ("status", "blame"),
    [
        ("Perfect", Blame.NONE),
        ("Completed", Blame.NONE),
        ("Failed", Blame.NONE),
        ("Failed - Agent timed out", Blame.NONE),
        ("Failed - Agent deviated from the route", Blame.NONE),
        ("Failed - Agent got blocked", Blame.NONE),
        ("Failed - Agent crashed", Blame.AGENT),
        ("Failed - Agent couldn't be set up", Blame.AGENT),
        ("Failed - Agent's sensors were invalid", Blame.AGENT),
        ("Failed - Simulation crashed", Blame.SIMULATOR),
        ("Failed - TickRuntime", Blame.NONE),
    ],
)
def test_record_status_carries_blame(status: str, blame: Blame) -> None:
    assert blame_of_record_status(status) is blame


def test_agent_faults_are_never_retried() -> None:
    assert not should_retry(Failure(Blame.AGENT, "crashed"), 0, 3, 5)


def test_simulator_faults_are_retried_up_to_the_limit() -> None:
    failure = Failure(Blame.SIMULATOR, "died")
    assert [should_retry(failure, n, 3, 5) for n in range(5)] == [True, True, True, False, False]


def test_preemption_is_retried_without_counting() -> None:
    assert should_retry(Failure(Blame.INFRASTRUCTURE, "evicted", preempted=True), 99, 3, 5)


def test_infrastructure_has_its_own_limit() -> None:
    failure = Failure(Blame.INFRASTRUCTURE, "node lost")
    assert should_retry(failure, 4, 0, 5)
    assert not should_retry(failure, 5, 0, 5)
