"""The EvalAI host client against the stand-in: paths, auth forms, statuses, result rules, retries, budget."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from lbcloud.adapters.evalai.client import EvalAIClient, RequestBudget
from lbcloud.adapters.evalai.errors import EvalAIAuthError, EvalAINotFound, EvalAIRequestError, EvalAIUnavailable
from lbcloud.adapters.evalai.models import parse_message
from lbcloud.domain.errors import Unavailable
from tests.adapters.evalai.conftest import FakeClock, make_config
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant

FULL = {"Driving score": 55.1, "Route completion": 80.2}


def result(accuracies: dict[str, object], split: str = "leaderboard") -> str:
    return json.dumps([{"split": split, "show_to_participant": True, "accuracies": accuracies}])


def test_both_auth_header_forms_reach_host_endpoints(standin: EvalAIStandIn, clock: FakeClock) -> None:
    for scheme, token in (("Bearer", standin.host_jwt), ("Token", standin.host_key)):
        with EvalAIClient(make_config(standin, auth_scheme=scheme, token=token), clock=clock) as client:
            assert client.challenge_by_queue(standin.queue_name).id == standin.challenge_id
            assert {p.id for p in client.phases(standin.challenge_id)} == {1, 2}
            assert client.phase(standin.challenge_id, 2).is_partial_submission_evaluation_enabled is False


def test_token_prefix_must_match_token_type(standin: EvalAIStandIn, clock: FakeClock) -> None:
    client = EvalAIClient(make_config(standin, auth_scheme="Token", token=standin.host_jwt), clock=clock)
    with client, pytest.raises(EvalAIAuthError) as err:
        client.receive(standin.queue_name)
    assert err.value.status == 401
    assert "E4" in str(err.value) and "evalai.token" in str(err.value)


def test_expired_token_gives_one_operator_message_without_retries(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    standin.expire_token(standin.host_jwt)
    with pytest.raises(EvalAIAuthError) as err:
        client.receive(standin.queue_name)
    assert "expired" in str(err.value) and "Manage tab" in str(err.value)
    assert standin.count("E4") == 1


def test_unverified_email_and_non_host_accounts_are_auth_errors(standin: EvalAIStandIn, clock: FakeClock) -> None:
    unverified = standin.add_user("unverified", host=True, verified=False)
    client = EvalAIClient(make_config(standin, token=unverified.jwt), clock=clock)
    with client, pytest.raises(EvalAIAuthError, match="verify your email"):
        client.receive(standin.queue_name)
    participant = standin.add_participant("alpha")
    with EvalAIClient(make_config(standin, token=participant.jwt), clock=clock) as client:
        with pytest.raises(EvalAIAuthError) as on_queue:
            client.receive(standin.queue_name)
        with pytest.raises(EvalAIAuthError) as on_list:
            client.list_submissions(standin.challenge_id, status="cancelled")
    assert on_queue.value.status == 401
    assert on_list.value.status == 400


def test_missing_token_is_refused_before_any_request(standin: EvalAIStandIn, clock: FakeClock) -> None:
    client = EvalAIClient(make_config(standin, token=None), clock=clock)
    with client, pytest.raises(EvalAIAuthError, match="no host token"):
        client.receive(standin.queue_name)
    assert standin.requests == []


def test_receive_ack_and_redelivery_after_visibility_timeout(
    standin: EvalAIStandIn, client: EvalAIClient, clock: FakeClock
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "registry.local/team-alpha/agent:v1")
    first = client.receive(standin.queue_name)
    assert first.body is not None and first.receipt_handle
    message = parse_message(first.body)
    assert (message.challenge_pk, message.phase_pk, message.submission_pk) == (1, 1, pk)
    assert json.loads(first.body)["phase_pk"] == "1"  # new submissions carry string ids
    assert client.receive(standin.queue_name).empty  # invisible while in flight
    clock.advance(standin.visibility_timeout_s + 1)
    second = client.receive(standin.queue_name)
    assert second.body == first.body and second.receipt_handle != first.receipt_handle
    client.ack(standin.queue_name, first.receipt_handle)  # stale handle: stays queued
    assert standin.queued_messages() == 1
    client.ack(standin.queue_name, second.receipt_handle)
    assert standin.queued_messages() == 0


def test_submission_read_and_input_file(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "registry.local/team-alpha/agent:v1", method="m1")
    sub = client.submission(pk)
    assert (sub.status, sub.participant_team_name, sub.challenge_phase, sub.method_name) == (
        "submitted",
        "alpha",
        1,
        "m1",
    )
    assert sub.input_file is not None
    assert json.loads(client.input_file(sub.input_file))["submitted_image_uri"] == "registry.local/team-alpha/agent:v1"
    with pytest.raises(EvalAINotFound, match="Submission 999 does not exist"):
        client.submission(999)


def test_running_by_patch_and_terminal_by_put(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "registry.local/a:v1")
    client.set_status(1, pk, "running")
    with pytest.raises(ValueError):
        client.set_status(1, pk, "finished")
    with pytest.raises(ValueError):
        client.put_result(1, 1, pk, "running", result="[]", stdout="", stderr="")
    client.put_result(1, 1, pk, "finished", result=result(FULL), stdout="done\n", stderr="", metadata="{}")
    assert standin.status_history(pk)[-2:] == [("E7", "running"), ("E8", "finished")]
    # the server's own rule for a PUT of `running`
    raw = httpx.put(
        f"{standin.base_url}/api/jobs/challenge/1/update_submission/",
        headers={"Authorization": f"Bearer {standin.host_jwt}"},
        json={
            "challenge_phase": 1,
            "submission": pk,
            "submission_status": "running",
            "result": "[]",
            "stdout": "",
            "stderr": "",
        },
    )
    assert raw.status_code == 400 and raw.json() == {"error": "Sorry, submission status is invalid"}


def test_result_must_be_a_string_and_labels_must_match(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "registry.local/a:v1", phase=2)
    raw = httpx.put(
        f"{standin.base_url}/api/jobs/challenge/1/update_submission/",
        headers={"Authorization": f"Token {standin.host_key}"},
        json={
            "challenge_phase": 2,
            "submission": pk,
            "submission_status": "finished",
            "result": [{"split": "leaderboard", "accuracies": FULL}],
            "stdout": "",
            "stderr": "",
        },
    )
    assert raw.status_code == 400 and "must be str, bytes or bytearray, not list" in raw.text
    with pytest.raises(EvalAIRequestError, match="missing in the leaderboard data") as err:
        client.put_result(1, 2, pk, "finished", result=result({"Bogus": 1}), stdout="", stderr="")
    assert err.value.submission == pk and err.value.status == 400
    with pytest.raises(EvalAIRequestError, match="not of float/int"):
        client.put_result(1, 2, pk, "finished", result=result({"Driving score": "high"}), stdout="", stderr="")
    with pytest.raises(EvalAIRequestError, match="Challenge Phase Split does not exist"):
        client.put_result(1, 2, pk, "finished", result=result(FULL, split="test"), stdout="", stderr="")
    # partial evaluation disabled on phase 2: unknown labels are refused on E9 too
    with pytest.raises(EvalAIRequestError, match="missing in the leaderboard data"):
        client.put_result(
            1, 2, pk, "partially_evaluated", result=result({"Bogus": 1}), stdout="", stderr="", partial=True
        )


def test_partial_updates_use_the_plural_path_and_show_on_the_leaderboard(
    standin: EvalAIStandIn, client: EvalAIClient
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "registry.local/a:v1", method="first")
    client.put_result(
        1, 1, pk, "partially_evaluated", result=result({"Driving score": 10.0}), stdout="1/20", stderr="", partial=True
    )
    assert standin.count("E9", pk) == 1
    page = client.leaderboard(101)
    assert page.count == 1
    assert page.results[0].values()["Driving score"] == 10.0
    assert page.results[0].values()["Route completion"] == "#"
    client.put_result(1, 1, pk, "finished", result=result(FULL), stdout="", stderr="")
    assert client.leaderboard(101).results[0].values()["Route completion"] == 80.2


def test_list_submissions_filters(standin: EvalAIStandIn, client: EvalAIClient, clock: FakeClock) -> None:
    alpha = standin.add_participant("alpha")
    first = submit_as_participant(standin, alpha, "registry.local/a:v1")
    second = submit_as_participant(standin, alpha, "registry.local/a:v2")
    standin.cancel(second)
    cancelled = client.list_submissions(1, status="cancelled")
    assert [s.id for s in cancelled] == [second]
    after = client.submission(first).submitted_at
    assert after is not None
    assert {s.id for s in client.list_submissions(1, submitted_after=after - timedelta(seconds=1))} == {first, second}
    with pytest.raises(ValueError):
        client.list_submissions(1, status="partially_evaluated")


def test_resume_and_rerun_publish_messages_with_integer_ids(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, "registry.local/a:v1")
    client.ack(standin.queue_name, client.receive(standin.queue_name).receipt_handle or "")
    with pytest.raises(EvalAIRequestError) as err:
        client.resume(pk)
    assert err.value.status == 400
    client.put_result(1, 1, pk, "failed", result="[]", stdout="", stderr="simulator lost")
    client.resume(pk)
    resumed = json.loads(client.receive(standin.queue_name).body or "")
    assert resumed["phase_pk"] == 1 and resumed["submission_pk"] == pk
    client.rerun(pk)
    assert client.submission(pk).status == "cancelled"
    assert standin.queued_messages() == 2


def test_server_errors_are_retried_until_they_stop(standin: EvalAIStandIn, clock: FakeClock) -> None:
    standin.fail(3.0, status=503)
    with EvalAIClient(make_config(standin, max_attempts=5), clock=clock) as client:
        assert client.receive(standin.queue_name).empty
    assert standin.count("E4") >= 2
    assert sum(clock.slept) >= 3.0


def test_persistent_server_errors_become_unavailable(standin: EvalAIStandIn, client: EvalAIClient) -> None:
    standin.fail(3600.0, status=500)
    with pytest.raises(EvalAIUnavailable) as err:
        client.submission(7)
    assert isinstance(err.value, Unavailable)
    assert "E6" in str(err.value) and "submission 7" in str(err.value)
    assert standin.count("E6") == client.config.max_attempts


def test_timeouts_are_retried(standin: EvalAIStandIn, clock: FakeClock) -> None:
    standin.fail(2.0, hang_s=0.6, endpoints={"E2"})
    with EvalAIClient(make_config(standin, timeout_s=0.2, max_attempts=5), clock=clock) as client:
        assert len(client.phases(1)) == 2
    assert standin.count("E2") >= 2


def test_throttling_honours_retry_after(clock: FakeClock) -> None:
    with EvalAIStandIn(clock=clock.monotonic, rate_limit_per_min=5) as standin:
        config = make_config(standin, requests_per_minute=600, max_inline_wait_s=120.0)
        with EvalAIClient(config, clock=clock) as client:
            for _ in range(7):
                client.receive(standin.queue_name)
        throttled = [r for r in standin.requests if r.status == 429]
        assert throttled, "the stand-in should have throttled the burst"
        assert max(clock.slept) >= 1.0  # waited Retry-After, not a blind backoff
        assert standin.unknown_requests == []


def test_a_long_retry_after_is_left_to_the_caller(clock: FakeClock) -> None:
    with EvalAIStandIn(clock=clock.monotonic, rate_limit_per_min=2) as standin:
        with EvalAIClient(make_config(standin, requests_per_minute=600), clock=clock) as client:
            client.receive(standin.queue_name)
            client.receive(standin.queue_name)
            with pytest.raises(EvalAIUnavailable, match="throttled by EvalAI: retry after 60 s"):
                client.receive(standin.queue_name)
        assert sum(clock.slept) < 10.0  # did not block for the minute
        assert standin.unknown_requests == []


def test_request_budget_spaces_requests(clock: FakeClock) -> None:
    budget = RequestBudget(6, clock)  # 0.1 request/s, burst of 1
    start = clock.monotonic()
    for _ in range(3):
        budget.acquire()
    assert clock.monotonic() - start == pytest.approx(20.0)


def test_default_budget_stays_under_sixty_per_minute(clock: FakeClock) -> None:
    budget = RequestBudget(50, clock)
    start = clock.monotonic()
    sent = 0
    while clock.monotonic() - start < 60.0:
        budget.acquire()
        sent += 1
    assert sent <= 59


def test_undocumented_paths_are_refused_by_the_standin(standin: EvalAIStandIn) -> None:
    auth = {"Authorization": f"Bearer {standin.host_jwt}"}
    assert httpx.get(f"{standin.base_url}/api/jobs/submission/1/", headers=auth).status_code == 404  # extra slash
    assert (
        httpx.put(
            f"{standin.base_url}/api/jobs/challenge/1/update_partially_evaluated_submission/", headers=auth, json={}
        ).status_code
        == 404
    )  # singular `challenge`
    assert len(standin.unknown_requests) == 2
    standin.requests.clear()
