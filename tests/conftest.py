"""Suite-wide fixtures. Service fixtures (PostgreSQL, SeaweedFS, Kubernetes) live in tests/services/."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.services.postgres",
    "tests.services.s3",
    "tests.services.kubernetes",
    "tests.services.kube_node",
    "tests.services.docker",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures" / "leaderboard"


@pytest.fixture(scope="session")
def leaderboard_fixtures() -> Path:
    """The official leaderboard fixtures shipped beside the project (../shared/fixtures/leaderboard)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"leaderboard fixtures not found at {FIXTURES}")
    return FIXTURES
