"""The qualification use cases on a real (SQLite) state store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbcloud.adapters.store import SqlStateStore, open_state_store
from lbcloud.domain.errors import Conflict
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SubmissionStatus
from lbcloud.domain.tracks import LocalCommands, Qualification, ScorerVersion, SimulatorKind, Track
from lbcloud.services.ports import Publication
from lbcloud.services.qualify import (
    ensure_qualified,
    qualification_hook,
    record_qualification_result,
    values_of_merged_document,
)

COMMANDS = LocalCommands(("sim",), ("eval",))
QUALIFIER = Track("sumo-qualifier", SimulatorKind.SUMO, ScorerVersion.LB20, "routes.xml", local=COMMANDS)
GATED = Track(
    "sumo-test",
    SimulatorKind.SUMO,
    ScorerVersion.LB20,
    "routes.xml",
    local=COMMANDS,
    qualification=Qualification("sumo-qualifier", (("Driving score", 50.0),)),
)
TRACKS = {t.name: t for t in (QUALIFIER, GATED)}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStateStore]:
    opened = open_state_store(f"sqlite:///{tmp_path / 'lbcloud.db'}")
    opened.sync_tracks(list(TRACKS.values()))
    yield opened
    opened.close()


def finished_qualifier(store: SqlStateStore, team: str = "alpha") -> int:
    sub, _ = store.create_submission(
        NewSubmission(team=team, track="sumo-qualifier", agent=AgentRef(AgentKind.LOCAL, "agent.py"))
    )
    for status in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING, SubmissionStatus.FINISHED):
        store.transition(sub.id, status)
    return sub.id


def test_an_unqualified_team_is_refused_with_a_clear_message(store: SqlStateStore) -> None:
    with pytest.raises(Conflict, match="must first pass the qualification track 'sumo-qualifier'"):
        ensure_qualified(store, "alpha", GATED)
    ensure_qualified(store, "alpha", QUALIFIER)  # ungated: no error


def test_a_passing_qualifier_result_opens_the_gate(store: SqlStateStore) -> None:
    sid = finished_qualifier(store)
    verdict = record_qualification_result(
        store, QUALIFIER, store.get_submission(sid), {"Avg. driving score": "72.0"}, tracks=TRACKS
    )
    assert verdict is not None and verdict.passed
    assert store.qualification("alpha", "sumo-qualifier")
    ensure_qualified(store, "alpha", GATED)
    assert any(e.kind == "qualification" for e in store.events(submission_id=sid))


def test_a_failing_result_is_stored_and_keeps_the_gate_closed(store: SqlStateStore) -> None:
    sid = finished_qualifier(store)
    verdict = record_qualification_result(store, GATED, store.get_submission(sid), {"Driving score": 10})
    assert verdict is not None and not verdict.passed
    assert not store.qualification("alpha", "sumo-qualifier")
    with pytest.raises(Conflict):
        ensure_qualified(store, "alpha", GATED)


def test_unfinished_or_ungated_submissions_record_nothing(store: SqlStateStore) -> None:
    sub, _ = store.create_submission(
        NewSubmission(team="beta", track="sumo-qualifier", agent=AgentRef(AgentKind.LOCAL, "agent.py"))
    )
    assert record_qualification_result(store, QUALIFIER, sub, {"Driving score": 99}, tracks=TRACKS) is None
    sid = finished_qualifier(store, "gamma")
    assert record_qualification_result(store, QUALIFIER, store.get_submission(sid), {"Driving score": 99}) is None


def test_the_dispatcher_hook_reads_the_merged_document(store: SqlStateStore) -> None:
    sid = finished_qualifier(store)
    merged = json.dumps({"labels": ["Avg. driving score"], "values": ["55.0"]})
    assert values_of_merged_document(merged) == {"Avg. driving score": "55.0"}
    publication = Publication(store.get_submission(sid), merged, True, 1, 1, "", "[]", "{}")
    qualification_hook(store, TRACKS)(store.get_submission(sid), QUALIFIER, publication)
    assert store.qualification("alpha", "sumo-qualifier")
