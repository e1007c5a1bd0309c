"""The reporter API over HTTP: status codes, auth header, size limits, idempotency."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.tasks import Attempt
from lbcloud.entrypoints.web.reporter_api import create_router
from lbcloud.services.reporting import ReportingService
from tests.adapters.backends.kubernetes.live_attempts import claimed_attempt, open_store
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.adapters.backends.kubernetes.records import checkpoint_document


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def attempt(store: SqlStateStore) -> Attempt:
    return claimed_attempt(store)


@pytest.fixture
def client(store: SqlStateStore) -> TestClient:
    app = FastAPI()
    service = ReportingService(store, MemoryArtifacts(), max_record_bytes=8192, max_recording_bytes=4096)
    app.include_router(create_router(service))
    return TestClient(app)


def _auth(attempt: Attempt) -> dict[str, str]:
    return {"Authorization": f"Bearer {attempt.token}"}


def test_record_put_is_created_then_replayed_then_conflicting(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/record"
    document = checkpoint_document("RouteScenario_2_rep0")
    assert client.put(url, content=document, headers=_auth(attempt)).status_code == 201
    assert client.put(url, content=document, headers=_auth(attempt)).status_code == 200
    other = checkpoint_document("RouteScenario_2_rep0", status="Failed")
    conflict = client.put(url, content=other, headers=_auth(attempt))
    assert conflict.status_code == 409
    assert "different route record" in conflict.json()["error"]


def test_requests_without_the_attempts_token_are_401(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/record"
    assert client.put(url, content=b"{}").status_code == 401
    assert client.put(url, content=b"{}", headers={"Authorization": "Bearer nope"}).status_code == 401
    other = f"/api/v1/reporter/attempts/{attempt.id + 100}/heartbeat"
    assert client.post(other, headers=_auth(attempt)).status_code == 401


def test_oversized_and_invalid_records_are_413_and_422(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/record"
    assert client.put(url, content=b" " * 9000, headers=_auth(attempt)).status_code == 413
    invalid = client.put(url, content=b'{"_checkpoint": 1}', headers=_auth(attempt))
    assert invalid.status_code == 422
    assert "_checkpoint" in invalid.json()["error"]


def test_log_chunks_with_offsets_and_a_gap(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/logs/agent"
    first = client.post(url, params={"offset": 0}, content=b"line 1\n", headers=_auth(attempt))
    assert first.json() == {"next_offset": 7, "appended": 7, "truncated": False}
    retry = client.post(url, params={"offset": 0}, content=b"line 1\n", headers=_auth(attempt))
    assert retry.json()["appended"] == 0
    gap = client.post(url, params={"offset": 99}, content=b"x", headers=_auth(attempt))
    assert (gap.status_code, gap.json()["expected_offset"]) == (409, 7)
    assert client.get(url, headers=_auth(attempt)).json() == {"offset": 7}
    assert client.post(url, params={"offset": -1}, content=b"x", headers=_auth(attempt)).status_code == 422


def test_heartbeat_accepts_an_optional_detail(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/heartbeat"
    assert client.post(url, json={"detail": "alive"}, headers=_auth(attempt)).status_code == 200
    assert client.post(url, headers=_auth(attempt)).status_code == 200
    assert client.post(url, content=b"{nope", headers=_auth(attempt)).status_code == 422


def test_a_recording_is_kept_once_and_capped(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/recording"
    assert client.put(url, content=b"CARLA_RECORDER-1", headers=_auth(attempt)).status_code == 201
    assert client.put(url, content=b"CARLA_RECORDER-1", headers=_auth(attempt)).status_code == 200
    assert client.put(url, content=b"CARLA_RECORDER-2", headers=_auth(attempt)).status_code == 409
    assert client.put(url, content=b"x", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_an_oversized_recording_is_413(client: TestClient, attempt: Attempt) -> None:
    url = f"/api/v1/reporter/attempts/{attempt.id}/recording"
    assert client.put(url, content=b"x" * 5000, headers=_auth(attempt)).status_code == 413
