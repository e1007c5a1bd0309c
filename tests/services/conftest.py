"""Fixtures shared by the dispatcher's service tests: a fresh SQLite state store and a folder artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lbcloud.adapters.store.sql import SqlStateStore, open_state_store
from lbcloud.services.ports import ArtifactStore
from tests.services.artifact_helpers import folder_artifacts


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    s = open_state_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return folder_artifacts(tmp_path / "artifacts")
