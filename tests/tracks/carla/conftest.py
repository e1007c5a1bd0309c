"""Fixtures of the CARLA stand-in tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lbcloud.adapters.store import SqlStateStore
from tests.adapters.backends.kubernetes.live_attempts import open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(tmp_path)
    yield opened
    opened.close()
