"""Submission lifecycle rules and team-name validation."""

from __future__ import annotations

import itertools

import pytest

from lbcloud.domain.errors import Conflict, InputError
from lbcloud.domain.submissions import LEGAL_TRANSITIONS, SubmissionStatus, check_transition, validate_team_name

S = SubmissionStatus


def test_the_normal_path_is_legal() -> None:
    path = [S.SUBMITTED, S.QUEUED, S.RUNNING, S.PARTIALLY_EVALUATED, S.FINISHED]
    for current, target in itertools.pairwise(path):
        assert check_transition(current, target) is True


def test_replaying_a_transition_is_a_no_op() -> None:
    for status in S:
        assert check_transition(status, status) is False


def test_finished_is_final() -> None:
    for target in S:
        if target is not S.FINISHED:
            with pytest.raises(Conflict, match="finished submission cannot become"):
                check_transition(S.FINISHED, target)


def test_failed_and_cancelled_can_only_resume() -> None:
    assert LEGAL_TRANSITIONS[S.FAILED] == {S.RESUMING}
    assert LEGAL_TRANSITIONS[S.CANCELLED] == {S.RESUMING}
    with pytest.raises(Conflict):
        check_transition(S.FAILED, S.RUNNING)


def test_every_active_state_can_be_cancelled() -> None:
    for status in (S.SUBMITTED, S.QUEUED, S.RUNNING, S.PARTIALLY_EVALUATED, S.RESUMING):
        assert check_transition(status, S.CANCELLED)


@pytest.mark.parametrize("name", ["alpha", "Team 7", "a.b-c_d", "x"])
def test_valid_team_names_are_kept(name: str) -> None:
    assert validate_team_name(f"  {name} ") == name


@pytest.mark.parametrize(
    "name", ["", "   ", "-lead", "trail-", "semi;colon", "ü-team", "a" * 64, "two\nlines", "team?"]
)
def test_invalid_team_names_get_a_clear_error(name: str) -> None:
    with pytest.raises(InputError, match="team name"):
        validate_team_name(name)
