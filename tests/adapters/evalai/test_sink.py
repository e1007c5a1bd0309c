"""The EvalAI sink against the stand-in: running, throttled partials, verified finals, the durable outbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.sink import EvalAISink, FinalOutbox
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.results.model import EVALAI_KEYS_2X
from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, SourceKind, Submission, SubmissionStatus
from lbcloud.services.ports import Publication
from tests.adapters.evalai.conftest import FakeClock, make_config
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant

IMAGE = "registry.local/team-alpha/agent:v1"


def evalai_result(driving_score: float) -> str:
    accuracies = dict.fromkeys(EVALAI_KEYS_2X, 0)
    accuracies["Driving score"] = driving_score
    return json.dumps([{"split": "leaderboard", "show_to_participant": True, "accuracies": accuracies}])


def publication(sub: Submission, records: int, *, total: int = 20, final: bool = False, ds: float = 0.0) -> Publication:
    merged = json.dumps({"_checkpoint": {"progress": [records, total]}, "labels": [], "values": []})
    manifest = json.dumps({"submission": sub.id, "track": sub.track, "routes": [{"attempts": [{}, {}]}]})
    return Publication(
        submission=sub,
        merged_document=merged,
        final=final,
        records=records,
        total=total,
        participant_stdout=f"Completed {records} out of the {total} routes\n",
        evalai_result=evalai_result(ds),
        manifest=manifest,
        stderr="",
    )


@pytest.fixture
def evalai_submission(standin: EvalAIStandIn, store: SqlStateStore) -> tuple[int, Submission]:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    sub, _ = store.create_submission(
        NewSubmission(
            team="alpha",
            track="sumo-dev",
            agent=AgentRef(AgentKind.IMAGE, IMAGE),
            source=SourceKind.EVALAI,
            external_id=str(pk),
            challenge_id=standin.challenge_id,
            phase_id=1,
        )
    )
    store.transition(sub.id, SubmissionStatus.QUEUED)
    return pk, store.transition(sub.id, SubmissionStatus.RUNNING)


def end(store: SqlStateStore, sub: Submission, status: SubmissionStatus, reason: str = "done") -> Submission:
    return store.transition(sub.id, status, reason)


def test_only_evalai_submissions_are_handled(sink: EvalAISink, evalai_submission: tuple[int, Submission]) -> None:
    _, sub = evalai_submission
    assert sink.handles(sub)
    from dataclasses import replace

    assert not sink.handles(replace(sub, source=SourceKind.LOCAL, external_id=None))


def test_running_is_patched_once(
    standin: EvalAIStandIn, sink: EvalAISink, evalai_submission: tuple[int, Submission]
) -> None:
    pk, sub = evalai_submission
    sink.started(sub)
    sink.started(sub)
    assert standin.count("E7", pk) == 1 and standin.submissions[pk].status == "running"
    assert standin.submissions[pk].job_name == []


def test_partials_are_cumulative_throttled_and_skipped_when_unchanged(
    standin: EvalAIStandIn, sink: EvalAISink, evalai_submission: tuple[int, Submission], clock: FakeClock
) -> None:
    pk, sub = evalai_submission
    sink.publish(publication(sub, 1, ds=10.0))
    assert standin.count("E9", pk) == 1 and standin.submissions[pk].status == "partially_evaluated"
    assert standin.submissions[pk].stdout.endswith("Status: partially evaluated (1 of 20 routes evaluated)\n")
    sink.publish(publication(sub, 2, ds=20.0))  # too soon: held back
    sink.publish(publication(sub, 3, ds=30.0))  # replaces the held one
    assert standin.count("E9", pk) == 1
    clock.advance(61)
    sink.flush()
    assert standin.count("E9", pk) == 2
    assert standin.submissions[pk].results["leaderboard"]["Driving score"] == 30.0
    clock.advance(61)
    sink.publish(publication(sub, 3, ds=30.0))  # unchanged
    sink.flush()
    assert standin.count("E9", pk) == 2
    page = EvalAIClient(make_config(standin)).leaderboard(101)
    assert page.results[0].values()["Driving score"] == 30.0


def test_a_partial_never_overwrites_a_cancellation(
    standin: EvalAIStandIn, sink: EvalAISink, evalai_submission: tuple[int, Submission]
) -> None:
    pk, sub = evalai_submission
    standin.cancel(pk)
    sink.publish(publication(sub, 1, ds=10.0))
    assert standin.count("E9", pk) == 0 and standin.submissions[pk].status == "cancelled"


def test_the_final_result_is_put_and_verified(
    standin: EvalAIStandIn, sink: EvalAISink, store: SqlStateStore, evalai_submission: tuple[int, Submission]
) -> None:
    pk, sub = evalai_submission
    done = end(store, sub, SubmissionStatus.FINISHED, "every route evaluated")
    final = publication(done, 20, final=True, ds=77.5)
    sink.publish(final)  # finals go through ended()
    assert standin.count("E9", pk) == 0
    sink.ended(done, final)
    remote = standin.submissions[pk]
    assert remote.status == "finished" and remote.results["leaderboard"]["Driving score"] == 77.5
    # the summary, then the state in the same words the web pages and the CLI use
    assert remote.stdout == final.participant_stdout + "\nStatus: finished (all 20 routes evaluated)\n"
    metadata = json.loads(remote.metadata or "")
    assert metadata["lbcloud_submission"] == sub.id and metadata["manifest"]["routes"] == 1
    assert metadata["manifest"]["attempts"] == 2 and metadata["results"]["_checkpoint"]["progress"] == [20, 20]
    assert [r.endpoint for r in standin.requests if r.submission == pk][-3:] == ["E6", "E8", "E6"]
    assert sink.pending_finals() == []
    assert any(e.kind == "evalai_reported" for e in store.events(submission_id=sub.id))


def test_finished_is_never_reported_over_cancelled(
    standin: EvalAIStandIn, sink: EvalAISink, store: SqlStateStore, evalai_submission: tuple[int, Submission]
) -> None:
    pk, sub = evalai_submission
    standin.cancel(pk)
    done = end(store, sub, SubmissionStatus.FINISHED)
    sink.ended(done, publication(done, 20, final=True, ds=90.0))
    assert standin.submissions[pk].status == "cancelled" and standin.count("E8", pk) == 0
    assert any(e.kind == "evalai_not_reported" for e in store.events(submission_id=sub.id))
    assert sink.pending_finals() == []


def test_a_failure_reports_an_empty_result_and_the_reason(
    standin: EvalAIStandIn, sink: EvalAISink, store: SqlStateStore, evalai_submission: tuple[int, Submission]
) -> None:
    pk, sub = evalai_submission
    failed = end(store, sub, SubmissionStatus.FAILED, "route 3 could not be evaluated: simulator crashed 4 times")
    sink.ended(failed, None)
    remote = standin.submissions[pk]
    assert remote.status == "failed" and remote.results == {}
    assert "simulator crashed 4 times" in remote.stderr


def test_finals_survive_a_minute_of_outage_and_a_restart(
    standin: EvalAIStandIn,
    client: EvalAIClient,
    config: EvalAIConfig,
    store: SqlStateStore,
    clock: FakeClock,
    outbox_dir: Path,
    evalai_submission: tuple[int, Submission],
) -> None:
    pk, sub = evalai_submission
    sink = EvalAISink(client, store, config, clock, outbox=FinalOutbox(outbox_dir))
    standin.fail(60.0, status=500, endpoints={"E6", "E8"})
    done = end(store, sub, SubmissionStatus.FINISHED)
    sink.ended(done, publication(done, 20, final=True, ds=64.0))
    assert standin.submissions[pk].status == "submitted"
    assert [r.submission_pk for r in sink.pending_finals()] == [pk]
    assert "gave up" in (sink.pending_finals()[0].last_error or "")
    # the dispatcher restarts; a new sink finds the report in the outbox folder
    restarted = EvalAISink(client, store, config, clock, outbox=FinalOutbox(outbox_dir))
    for _ in range(120):
        if restarted.flush():
            break
        clock.advance(1.0)
    assert standin.submissions[pk].status == "finished"
    assert standin.submissions[pk].results["leaderboard"]["Driving score"] == 64.0
    assert restarted.pending_finals() == [] and list(outbox_dir.glob("final-*.json")) == []


def test_an_expired_token_keeps_finals_and_backs_off(
    standin: EvalAIStandIn,
    sink: EvalAISink,
    store: SqlStateStore,
    clock: FakeClock,
    outbox_dir: Path,
    evalai_submission: tuple[int, Submission],
) -> None:
    pk, sub = evalai_submission
    standin.expire_token(standin.host_jwt)
    done = end(store, sub, SubmissionStatus.FINISHED)
    sink.ended(done, publication(done, 20, final=True, ds=50.0))
    assert "expired" in (sink.pending_finals()[0].last_error or "")
    requests = len(standin.requests)
    sink.flush()  # within auth_backoff_s: no request at all
    sink.flush()
    assert len(standin.requests) == requests
    clock.advance(sink.config.auth_backoff_s)
    sink.flush()  # one try after the pause, then quiet again
    sink.flush()
    assert len(standin.requests) == requests + 1
    # the operator installs a valid token (here the account's 40-hex key) and restarts
    fixed = EvalAIClient(make_config(standin, auth_scheme="Token", token=standin.host_key), clock=clock)
    assert EvalAISink(fixed, store, sink.config, clock, outbox=FinalOutbox(outbox_dir)).flush() == 1
    assert standin.submissions[pk].status == "finished"


def test_a_permanent_refusal_is_kept_for_operators_and_not_retried(
    clock: FakeClock, store: SqlStateStore, outbox_dir: Path
) -> None:
    with EvalAIStandIn(clock=clock.monotonic, labels=["Driving score"], phases={1: False}) as standin:
        client = EvalAIClient(make_config(standin), clock=clock)
        sink = EvalAISink(client, store, make_config(standin), clock, outbox=FinalOutbox(outbox_dir))
        alpha = standin.add_participant("alpha")
        pk = submit_as_participant(standin, alpha, IMAGE)
        sub, _ = store.create_submission(
            NewSubmission(
                team="alpha",
                track="sumo-dev",
                agent=AgentRef(AgentKind.IMAGE, IMAGE),
                source=SourceKind.EVALAI,
                external_id=str(pk),
                challenge_id=1,
                phase_id=1,
            )
        )
        for status in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING, SubmissionStatus.FINISHED):
            sub = store.transition(sub.id, status)
        sink.ended(sub, publication(sub, 20, final=True, ds=50.0))
        assert sink.pending_finals() == []
        kept = FinalOutbox(outbox_dir).all()
        assert len(kept) == 1 and kept[0].rejected and "missing in the leaderboard data" in (kept[0].last_error or "")
        assert any(e.kind == "evalai_rejected" for e in store.events(submission_id=sub.id))
        before = standin.count("E8")
        clock.advance(3600)
        sink.flush()
        assert standin.count("E8") == before
        assert standin.unknown_requests == []


def test_a_minute_of_timeouts_and_errors_delays_updates_without_losing_them(
    standin: EvalAIStandIn,
    store: SqlStateStore,
    clock: FakeClock,
    outbox_dir: Path,
    evalai_submission: tuple[int, Submission],
) -> None:
    pk, sub = evalai_submission
    config = make_config(standin, timeout_s=0.1, max_attempts=3)
    sink = EvalAISink(EvalAIClient(config, clock=clock), store, config, clock, outbox=FinalOutbox(outbox_dir))
    standin.fail(30.0, hang_s=0.3)  # requests hang past the client's timeout...
    standin.fail(60.0, status=500)  # ...then fail outright, for a minute in all
    sink.publish(publication(sub, 5, ds=25.0))
    done = end(store, sub, SubmissionStatus.FINISHED)
    sink.ended(done, publication(done, 20, final=True, ds=81.0))
    assert standin.submissions[pk].status == "submitted"  # nothing got through yet
    assert [r.submission_pk for r in sink.pending_finals()] == [pk]
    for _ in range(120):
        if sink.flush():
            break
        clock.advance(1.0)
    remote = standin.submissions[pk]
    assert remote.status == "finished" and remote.results["leaderboard"]["Driving score"] == 81.0
    assert sink.pending_finals() == []


def test_running_is_retried_after_an_outage_and_no_calls_are_made_meanwhile(
    standin: EvalAIStandIn, sink: EvalAISink, evalai_submission: tuple[int, Submission], clock: FakeClock
) -> None:
    pk, sub = evalai_submission
    standin.fail(20.0, status=502, endpoints={"E7"})
    sink.started(sub)
    failed_calls = standin.count("E7", pk)
    assert standin.submissions[pk].status == "submitted" and failed_calls == sink.config.max_attempts
    sink.flush()
    assert standin.count("E7", pk) == failed_calls  # quiet while EvalAI is failing
    for _ in range(60):
        clock.advance(1.0)
        sink.flush()
    assert standin.submissions[pk].status == "running"
