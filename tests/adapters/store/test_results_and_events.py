"""Merged results, the leaderboard, the artifact index, events, qualifications and tracks."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.errors import NotFound
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tracks import LocalCommands, ScorerVersion, SimulatorKind, Track
from lbcloud.services.ports import ArtifactRef, MergedResult

from .conftest import FakeClock, new_submission, queued_submission


def merged(submission_id: int, score: float | None, *, final: bool, at: FakeClock) -> MergedResult:
    return MergedResult(
        submission_id=submission_id,
        document='{"_checkpoint": {}}',
        final=final,
        records=3 if final else 1,
        total=3,
        driving_score=score,
        route_completion=score,
        infraction_penalty=1.0,
        entry_status="Finished" if final else "Started",
        updated_at=at.now(),
    )


def finish(store: SqlStateStore, submission_id: int) -> None:
    store.transition(submission_id, SubmissionStatus.FINISHED)


def test_save_merged_result_replaces_the_previous_one(store: SqlStateStore, clock: FakeClock) -> None:
    submission = queued_submission(store)
    assert store.merged_result(submission.id) is None
    partial = merged(submission.id, 10.0, final=False, at=clock)
    store.save_merged_result(partial)
    clock.advance(30)
    final = merged(submission.id, 55.5, final=True, at=clock)
    store.save_merged_result(final)

    assert store.merged_result(submission.id) == final
    with pytest.raises(NotFound):
        store.save_merged_result(dataclasses.replace(final, submission_id=999))


def test_leaderboard_lists_finished_submissions_of_the_track_best_first(store: SqlStateStore, clock: FakeClock) -> None:
    scores = {"Alpha": 40.0, "Beta": 75.0, "Gamma": None}
    ids = {}
    for team, score in scores.items():
        submission = queued_submission(store, team=team)
        store.save_merged_result(merged(submission.id, score, final=True, at=clock))
        finish(store, submission.id)
        ids[team] = submission.id
    running = queued_submission(store, team="Delta")
    store.save_merged_result(merged(running.id, 99.0, final=False, at=clock))
    other_track = queued_submission(store, team="Echo", track="MAP")
    store.save_merged_result(merged(other_track.id, 99.0, final=True, at=clock))
    finish(store, other_track.id)

    board = store.leaderboard("SENSORS")

    assert [s.team for s, _ in board] == ["Beta", "Alpha", "Gamma"]
    assert [r.driving_score for _, r in board] == [75.0, 40.0, None]
    assert [s.id for s, _ in store.leaderboard("MAP")] == [other_track.id]
    assert store.leaderboard("QUALIFIER") == []


def test_index_artifact_upserts_by_key_and_lists_per_submission(store: SqlStateStore, clock: FakeClock) -> None:
    a = queued_submission(store, team="Alpha")
    b = queued_submission(store, team="Beta")
    log = ArtifactRef(a.id, f"submissions/{a.id}/attempts/1/agent.log", "log", 10, "0" * 64, 1, clock.now())
    record = ArtifactRef(
        a.id, f"submissions/{a.id}/routes/RouteScenario_0_rep1.json", "record", 5, "1" * 64, 1, clock.now()
    )
    store.index_artifact(log)
    store.index_artifact(record)
    grown = dataclasses.replace(log, size=20, sha256="2" * 64)
    store.index_artifact(grown)
    store.index_artifact(ArtifactRef(b.id, f"submissions/{b.id}/merged.json", "merged", 1, "3" * 64, None, clock.now()))

    assert store.artifacts(a.id) == [grown, record]
    assert [r.kind for r in store.artifacts(b.id)] == ["merged"]
    with pytest.raises(NotFound):
        store.index_artifact(dataclasses.replace(log, submission_id=999, key="submissions/999/merged.json"))


def test_events_page_by_id_and_filter_by_submission(store: SqlStateStore) -> None:
    a, _ = store.create_submission(new_submission(team="Alpha"))
    b, _ = store.create_submission(new_submission(team="Beta"))
    started = store.add_event(a.id, "attempt", "attempt 1 started", route_id="0", attempt_id=1)

    assert (started.kind, started.route_id, started.attempt_id) == ("attempt", "0", 1)
    every = store.events()
    assert [e.submission_id for e in every] == [a.id, b.id, a.id]
    assert store.events(after_id=every[0].id) == every[1:]
    assert store.events(submission_id=a.id) == [every[0], started]
    assert store.events(limit=1) == every[:1]
    with pytest.raises(NotFound):
        store.add_event(999, "x", "y")


def test_qualification_passes_once_any_passing_record_exists(store: SqlStateStore) -> None:
    first = queued_submission(store, team="Alpha", track="QUALIFIER")
    assert not store.qualification("Alpha", "QUALIFIER")
    store.record_qualification("Alpha", "QUALIFIER", first.id, False, "driving score 10 < 50")
    assert not store.qualification("Alpha", "QUALIFIER")
    store.record_qualification("Alpha", "QUALIFIER", first.id, True, "driving score 60 >= 50")
    assert store.qualification("Alpha", "QUALIFIER")
    assert not store.qualification("Beta", "QUALIFIER")
    assert not store.qualification("Alpha", "SENSORS")


def test_sync_tracks_upserts_configured_tracks(store: SqlStateStore) -> None:
    commands = LocalCommands(simulator=("sim",), evaluator=("eval",))
    tracks = [
        Track(
            name="sumo-dev",
            simulator=SimulatorKind.SUMO,
            scorer=ScorerVersion.LB20,
            routes_file="a.xml",
            local=commands,
        ),
        Track(
            name="SENSORS",
            simulator=SimulatorKind.CARLA,
            scorer=ScorerVersion.LB21,
            routes_file="b.xml",
            local=commands,
        ),
    ]
    store.sync_tracks(tracks)
    store.sync_tracks([dataclasses.replace(tracks[0], repetitions=3)])
    synced = store.synced_tracks()
    assert list(synced) == ["SENSORS", "sumo-dev"]
    assert json.loads(synced["sumo-dev"])["repetitions"] == 3
    assert json.loads(synced["SENSORS"])["scorer"] == "lb2.1"
