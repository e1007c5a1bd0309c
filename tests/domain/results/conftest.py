"""Shared helpers for the results engine tests: the official fixtures, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.domain.results.model import ResultsFile
from lbcloud.domain.results.reader import parse_results


def load(path: Path) -> ResultsFile:
    return parse_results(path.read_bytes(), path.name)


@pytest.fixture(scope="session")
def lb20(leaderboard_fixtures: Path) -> Path:
    return leaderboard_fixtures / "lb20"


@pytest.fixture(scope="session")
def real(leaderboard_fixtures: Path) -> Path:
    return leaderboard_fixtures / "real"
