"""ReportingService over a real SQLite state store: auth, idempotent records, offset-checked logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.artifact_keys import attempt_log_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Conflict, InputError
from lbcloud.domain.tasks import Attempt, AttemptOutcome
from lbcloud.services.ports import AttemptEnd
from lbcloud.services.reporting import (
    OffsetMismatch,
    ReportGone,
    ReportingService,
    ReportTooLarge,
    ReportUnauthorized,
    attempt_record_key,
)
from tests.adapters.backends.kubernetes.live_attempts import claimed_attempt, open_store
from tests.adapters.backends.kubernetes.memory_artifacts import MemoryArtifacts
from tests.adapters.backends.kubernetes.records import checkpoint_document


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_store(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def artifacts() -> MemoryArtifacts:
    return MemoryArtifacts()


@pytest.fixture
def service(store: SqlStateStore, artifacts: MemoryArtifacts) -> ReportingService:
    return ReportingService(store, artifacts, max_record_bytes=64 * 1024, max_chunk_bytes=1024, max_log_bytes=4096)


@pytest.fixture
def attempt(store: SqlStateStore) -> Attempt:
    return claimed_attempt(store)


def _end(store: SqlStateStore, attempt: Attempt) -> None:
    store.end_attempt(attempt.id, AttemptEnd(AttemptOutcome.CANCELLED, Blame.NONE, "cancelled", None, None, False))


def test_a_record_is_stored_once_and_a_replay_succeeds(
    service: ReportingService, attempt: Attempt, artifacts: MemoryArtifacts
) -> None:
    document = checkpoint_document("RouteScenario_2_rep0").encode()
    first = service.put_record(attempt.token, attempt.id, document)
    again = service.put_record(attempt.token, attempt.id, document)
    assert (first.created, again.created) == (True, False)
    assert artifacts.get(attempt_record_key(attempt.submission_id, attempt.id)) == document


def test_a_different_record_after_one_exists_is_a_conflict(service: ReportingService, attempt: Attempt) -> None:
    service.put_record(attempt.token, attempt.id, checkpoint_document("RouteScenario_2_rep0").encode())
    other = checkpoint_document("RouteScenario_2_rep0", status="Failed - Agent timed out").encode()
    with pytest.raises(Conflict, match="different route record"):
        service.put_record(attempt.token, attempt.id, other)


def test_a_replay_after_the_attempt_ended_still_succeeds_but_new_data_is_gone(
    service: ReportingService, store: SqlStateStore, attempt: Attempt
) -> None:
    document = checkpoint_document("RouteScenario_2_rep0").encode()
    service.put_record(attempt.token, attempt.id, document)
    service.append_log(attempt.token, attempt.id, "agent", 0, b"hello\n")
    _end(store, attempt)
    assert service.put_record(attempt.token, attempt.id, document).created is False
    assert service.append_log(attempt.token, attempt.id, "agent", 0, b"hello\n").appended == 0
    with pytest.raises(ReportGone):
        service.append_log(attempt.token, attempt.id, "agent", 6, b"more\n")


def test_a_record_for_an_ended_attempt_is_refused(
    service: ReportingService, store: SqlStateStore, attempt: Attempt
) -> None:
    _end(store, attempt)
    with pytest.raises(ReportGone):
        service.put_record(attempt.token, attempt.id, checkpoint_document("RouteScenario_2_rep0").encode())


@pytest.mark.parametrize("token_of", ["wrong", "other attempt"])
def test_tokens_must_match_the_attempt(
    service: ReportingService, store: SqlStateStore, attempt: Attempt, token_of: str
) -> None:
    token = "not-a-token" if token_of == "wrong" else claimed_attempt(store, route_id="3").token
    with pytest.raises(ReportUnauthorized):
        service.put_record(token, attempt.id, checkpoint_document("RouteScenario_2_rep0").encode())


def test_records_of_another_route_or_not_records_at_all_are_refused(
    service: ReportingService, attempt: Attempt
) -> None:
    with pytest.raises(InputError, match="not this attempt's route"):
        service.put_record(attempt.token, attempt.id, checkpoint_document("RouteScenario_9_rep0").encode())
    with pytest.raises(InputError):
        service.put_record(attempt.token, attempt.id, b'{"route_id": 3}')
    with pytest.raises(InputError):
        service.put_record(attempt.token, attempt.id, b"not json")


def test_records_over_the_size_limit_are_refused(service: ReportingService, attempt: Attempt) -> None:
    with pytest.raises(ReportTooLarge):
        service.put_record(attempt.token, attempt.id, b" " * (64 * 1024 + 1))


def test_log_chunks_append_by_offset_without_duplicates(
    service: ReportingService, attempt: Attempt, artifacts: MemoryArtifacts
) -> None:
    key = attempt_log_key(attempt.submission_id, attempt.id, "agent")
    assert service.append_log(attempt.token, attempt.id, "agent", 0, b"one\n").next_offset == 4
    assert service.append_log(attempt.token, attempt.id, "agent", 0, b"one\n").appended == 0, "a retry"
    overlap = service.append_log(attempt.token, attempt.id, "agent", 2, b"e\ntwo\n")
    assert (overlap.appended, overlap.next_offset) == (4, 8)
    assert artifacts.get(key) == b"one\ntwo\n"
    with pytest.raises(OffsetMismatch) as gap:
        service.append_log(attempt.token, attempt.id, "agent", 20, b"lost?\n")
    assert gap.value.expected == 8
    assert service.log_offset(attempt.token, attempt.id, "agent") == 8


def test_logs_beyond_the_limit_are_dropped_but_acknowledged(service: ReportingService, attempt: Attempt) -> None:
    offset = 0
    for _ in range(5):
        receipt = service.append_log(attempt.token, attempt.id, "simulator", offset, b"x" * 1000)
        offset = receipt.next_offset
    assert receipt.truncated
    assert service.log_offset(attempt.token, attempt.id, "simulator") == 4096


def test_unknown_streams_and_oversized_chunks_are_refused(service: ReportingService, attempt: Attempt) -> None:
    with pytest.raises(InputError, match="unknown log stream"):
        service.append_log(attempt.token, attempt.id, "secrets", 0, b"x")
    with pytest.raises(ReportTooLarge):
        service.append_log(attempt.token, attempt.id, "agent", 0, b"x" * 2000)


def test_the_first_heartbeat_becomes_an_event(
    service: ReportingService, store: SqlStateStore, attempt: Attempt
) -> None:
    service.heartbeat(attempt.token, attempt.id, "agent log 10 bytes")
    service.heartbeat(attempt.token, attempt.id)
    events = [e for e in store.events(submission_id=attempt.submission_id) if e.kind == "reporter"]
    assert len(events) == 1
    beat = service.last_heartbeat(attempt.id)
    assert beat is not None and beat.attempt_id == attempt.id
