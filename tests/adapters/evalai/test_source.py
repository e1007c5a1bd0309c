"""The EvalAI source against the stand-in and a real SQLite store: spec §11's checklist, item by item."""

from __future__ import annotations

import json

import pytest

from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig, EvalAISubmission
from lbcloud.adapters.evalai.source import EvalAISource, MessageHandler, ParkedMessages, Verdict, team_name_for
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.submissions import AgentKind, SourceKind, SubmissionStatus
from tests.adapters.evalai.conftest import FakeClock
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant

IMAGE = "registry.local/team-alpha/agent:v1"


def rows(store: SqlStateStore) -> list[tuple[str | None, str]]:
    return sorted((s.external_id, s.team) for s in store.list_submissions())


def test_a_new_submission_is_recorded_before_the_ack(
    standin: EvalAIStandIn,
    source: EvalAISource,
    store: SqlStateStore,
    client: EvalAIClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE, method="baseline")
    real_ack = client.ack

    def ack_after_record(queue: str, handle: str, *, submission: int | None = None) -> None:
        assert store.find_submission("evalai", str(pk)) is not None, "acked before the submission was recorded"
        real_ack(queue, handle, submission=submission)

    monkeypatch.setattr(client, "ack", ack_after_record)
    result = source.poll_once()
    assert result.acked and result.decision is not None and result.decision.verdict is Verdict.ACK
    sub = store.find_submission("evalai", str(pk))
    assert sub is not None
    assert (sub.team, sub.track, sub.source, sub.status) == (
        "alpha",
        "sumo-dev",
        SourceKind.EVALAI,
        SubmissionStatus.SUBMITTED,
    )
    assert (sub.agent.kind, sub.agent.ref, sub.method_name) == (AgentKind.IMAGE, IMAGE, "baseline")
    assert (sub.challenge_id, sub.phase_id) == (standin.challenge_id, 1)
    assert standin.queued_messages() == 0


def test_phase_maps_to_track_by_configuration(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE, phase=2)
    source.poll_once()
    sub = store.find_submission("evalai", str(pk))
    assert sub is not None and sub.track == "sumo-test"


def test_a_duplicate_delivery_is_acked_without_a_second_record(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, clock: FakeClock
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    standin.publish({"challenge_pk": 1, "phase_pk": 1, "submission_pk": pk})  # re-published message
    clock.advance(10)
    result = source.poll_once(force=True)
    assert result.acked and result.decision is not None and "duplicate" in result.decision.detail
    assert rows(store) == [(str(pk), "alpha")]


def test_killed_between_record_and_ack_does_not_evaluate_twice(
    standin: EvalAIStandIn,
    handler: MessageHandler,
    client: EvalAIClient,
    config: EvalAIConfig,
    store: SqlStateStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Killed(BaseException):
        pass

    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)

    def die(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(client, "ack", die)
    with pytest.raises(Killed):
        EvalAISource(client, handler, config, clock).poll_once()
    monkeypatch.undo()
    assert standin.queued_messages() == 1 and rows(store) == [(str(pk), "alpha")]
    # restart: a fresh source; the message comes back after the visibility timeout
    restarted = EvalAISource(client, handler, config, clock)
    assert not restarted.poll_once().received
    clock.advance(standin.visibility_timeout_s + 1)
    result = restarted.poll_once(force=True)
    assert result.acked and result.decision is not None and "duplicate" in result.decision.detail
    assert rows(store) == [(str(pk), "alpha")]
    assert store.get_submission(store.list_submissions()[0].id).status is SubmissionStatus.SUBMITTED
    assert standin.queued_messages() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json at all", "not JSON"),
        (json.dumps([1, 2]), "must be a JSON object"),
        (json.dumps({"challenge_pk": "1", "phase_pk": "1"}), "no 'submission_pk'"),
        (json.dumps({"challenge_pk": "1", "phase_pk": "one", "submission_pk": 3}), "'phase_pk' must be an integer"),
        (json.dumps({"challenge_pk": 1, "phase_pk": 9, "submission_pk": 3}), "phase 9 is not mapped"),
        (json.dumps({"challenge_pk": 2, "phase_pk": 1, "submission_pk": 3}), "not the configured challenge"),
    ],
)
def test_unusable_messages_are_parked_with_a_reason_and_others_proceed(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, parked: ParkedMessages, body: str, reason: str
) -> None:
    standin.publish(body)
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    first = source.poll_once(force=True)
    assert first.acked and first.decision is not None and first.decision.verdict is Verdict.PARK
    assert reason in first.decision.detail
    assert [p.reason for p in parked.entries()] == [first.decision.detail]
    assert parked.entries()[0].body == body
    source.poll_once(force=True)
    assert rows(store) == [(str(pk), "alpha")]
    assert standin.queued_messages() == 0


def test_a_submission_without_an_image_is_parked(
    standin: EvalAIStandIn, source: EvalAISource, parked: ParkedMessages
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    standin.submissions[pk].input_file = b'{"something": "else"}'
    result = source.poll_once()
    assert result.acked and result.decision is not None and result.decision.verdict is Verdict.PARK
    assert "names no image" in parked.entries()[0].reason and parked.entries()[0].submission_pk == pk


def test_a_refused_image_is_reported_to_the_participant(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "docker.io/someone/agent:v1")
    result = source.poll_once()
    assert result.acked and rows(store) == []
    sub = standin.submissions[pk]
    assert sub.status == "failed" and "not in an allowed registry" in sub.stderr and sub.results == {}


def test_the_qualification_gate_refusal_reaches_the_participant(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lbcloud.domain.errors import Conflict

    def gate(new: object) -> object:
        raise Conflict("team 'alpha' must first pass the qualification track 'sumo-qualifier' before submitting")

    monkeypatch.setattr(source.handler.intake, "submit", gate)
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    assert source.poll_once().acked
    assert standin.submissions[pk].status == "failed"
    assert "must first pass the qualification track" in standin.submissions[pk].stderr


def test_terminal_submissions_are_acked_without_work(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    standin.cancel(pk)
    result = source.poll_once()
    assert result.acked and result.decision is not None and "already cancelled" in result.decision.detail
    assert rows(store) == []


def test_unexpected_statuses_wait_then_are_parked(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, clock: FakeClock, parked: ParkedMessages
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    standin.submissions[pk].status = "archived"
    verdicts = []
    for _ in range(3):
        result = source.poll_once(force=True)
        assert result.decision is not None
        verdicts.append(result.decision.verdict)
        clock.advance(standin.visibility_timeout_s + 1)
    assert verdicts == [Verdict.KEEP, Verdict.KEEP, Verdict.PARK]
    assert rows(store) == [] and standin.queued_messages() == 0
    assert "'archived'" in parked.entries()[0].reason


def test_resume_reopens_a_failed_submission_and_keeps_its_row(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, client: EvalAIClient
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    sub = store.find_submission("evalai", str(pk))
    assert sub is not None
    store.transition(sub.id, SubmissionStatus.FAILED, "simulator lost")
    client.put_result(1, 1, pk, "failed", result="[]", stdout="", stderr="simulator lost")
    client.resume(pk)
    assert json.loads(standin.queue[0].body)["phase_pk"] == 1  # resume messages carry integer ids
    result = source.poll_once(force=True)
    assert result.acked and result.decision is not None and result.decision.detail.endswith("resumed")
    assert store.get_submission(sub.id).status is SubmissionStatus.RESUMING
    assert rows(store) == [(str(pk), "alpha")]


def test_a_rerun_copy_is_a_new_submission(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, client: EvalAIClient
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    client.rerun(pk)
    source.poll_once(force=True)
    assert [external for external, _ in rows(store)] == [str(pk), str(pk + 1)]


def test_a_cancellation_seen_on_redelivery_cancels_ours(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    standin.cancel(pk)
    standin.publish({"challenge_pk": 1, "phase_pk": 1, "submission_pk": pk})
    source.poll_once(force=True)
    sub = store.find_submission("evalai", str(pk))
    assert sub is not None and sub.status is SubmissionStatus.CANCELLED


def test_polling_slows_down_while_the_queue_is_empty(
    standin: EvalAIStandIn, source: EvalAISource, clock: FakeClock
) -> None:
    polls = 0
    for _ in range(240):  # 4 minutes in 1 s steps
        if not source.poll_once().skipped:
            polls += 1
        clock.advance(1.0)
    # 5 s, 10, 20, 40, then every 60 s: far fewer than the 48 polls of a fixed 5 s interval
    assert 5 <= polls <= 8
    assert standin.count("E4") == polls


def test_a_minute_of_server_errors_loses_nothing(
    standin: EvalAIStandIn, source: EvalAISource, store: SqlStateStore, clock: FakeClock
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    standin.fail(60.0, status=500)
    errors = 0
    for _ in range(200):
        result = source.poll_once()
        errors += result.error is not None
        if store.find_submission("evalai", str(pk)) is not None and standin.queued_messages() == 0:
            break
        clock.advance(1.0)
    assert errors >= 1
    assert rows(store) == [(str(pk), "alpha")] and standin.queued_messages() == 0


def test_an_expired_token_backs_off_with_one_clear_error(
    standin: EvalAIStandIn, source: EvalAISource, clock: FakeClock
) -> None:
    standin.expire_token(standin.host_jwt)
    first = source.poll_once()
    assert first.error is not None and "expired" in first.error
    for _ in range(60):
        clock.advance(1.0)
        assert source.poll_once().skipped  # no crash loop: waits auth_backoff_s
    assert standin.count("E4") == 1


def test_team_names_are_made_valid() -> None:
    def sub(name: str) -> EvalAISubmission:
        return EvalAISubmission(id=5, status="submitted", participant_team=9, participant_team_name=name)

    assert team_name_for(sub("Team Alpha")) == "Team Alpha"
    assert team_name_for(sub("Équipe #1!")) == "Equipe -1"
    assert team_name_for(sub("!!!")) == "team-9"
