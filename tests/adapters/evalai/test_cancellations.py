"""Cancellations on EvalAI reach the state store through one E10 call per interval."""

from __future__ import annotations

from lbcloud.adapters.evalai.cancellations import CancellationWatcher
from lbcloud.adapters.evalai.client import EvalAIClient
from lbcloud.adapters.evalai.models import EvalAIConfig
from lbcloud.adapters.evalai.source import EvalAISource, SubmissionDates
from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.submissions import SubmissionStatus
from tests.adapters.evalai.conftest import FakeClock
from tests.adapters.evalai.standin import EvalAIStandIn, submit_as_participant

IMAGE = "registry.local/team-alpha/agent:v1"


def test_no_request_while_nothing_is_active(
    standin: EvalAIStandIn, client: EvalAIClient, store: SqlStateStore, config: EvalAIConfig, clock: FakeClock
) -> None:
    watcher = CancellationWatcher(client, store, config, clock)
    assert watcher.poll_once() == []
    assert standin.requests == []


def test_a_cancellation_on_evalai_cancels_the_run_with_one_call_per_interval(
    standin: EvalAIStandIn,
    source: EvalAISource,
    client: EvalAIClient,
    store: SqlStateStore,
    config: EvalAIConfig,
    clock: FakeClock,
    dates: SubmissionDates,
) -> None:
    alpha, beta = standin.add_participant("alpha"), standin.add_participant("beta")
    first = submit_as_participant(standin, alpha, IMAGE)
    second = submit_as_participant(standin, beta, "registry.local/team-beta/agent:v3")
    source.poll_once()
    source.poll_once(force=True)
    for sub in store.list_submissions():
        store.transition(sub.id, SubmissionStatus.QUEUED)
    watcher = CancellationWatcher(client, store, config, clock, dates=dates)
    assert watcher.poll_once() == []
    standin.cancel(second)
    assert watcher.poll_once() == []  # not due yet
    clock.advance(config.cancel_poll_interval_s)
    stopped = watcher.poll_once()
    beta_row = store.find_submission("evalai", str(second))
    alpha_row = store.find_submission("evalai", str(first))
    assert beta_row is not None and alpha_row is not None
    assert stopped == [beta_row.id]
    assert beta_row.status is SubmissionStatus.CANCELLED and alpha_row.status is SubmissionStatus.QUEUED
    assert standin.count("E10") == 2 and standin.count("E6", first) == 1  # dates came from intake
    query = [r.query for r in standin.requests if r.endpoint == "E10"][-1]
    assert "status=cancelled" in query and "submitted_after=" in query


def test_after_a_restart_unknown_dates_are_read_once(
    standin: EvalAIStandIn,
    source: EvalAISource,
    client: EvalAIClient,
    store: SqlStateStore,
    config: EvalAIConfig,
    clock: FakeClock,
) -> None:
    alpha = standin.add_participant("alpha")
    pk = submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    watcher = CancellationWatcher(client, store, config, clock)  # fresh: no dates known
    before = standin.count("E6", pk)
    watcher.poll_once()
    clock.advance(config.cancel_poll_interval_s)
    standin.cancel(pk)
    watcher.poll_once()
    assert standin.count("E6", pk) == before + 1
    row = store.find_submission("evalai", str(pk))
    assert row is not None and row.status is SubmissionStatus.CANCELLED


def test_outages_do_not_raise(
    standin: EvalAIStandIn,
    source: EvalAISource,
    client: EvalAIClient,
    store: SqlStateStore,
    config: EvalAIConfig,
    clock: FakeClock,
    dates: SubmissionDates,
) -> None:
    alpha = standin.add_participant("alpha")
    submit_as_participant(standin, alpha, IMAGE)
    source.poll_once()
    watcher = CancellationWatcher(client, store, config, clock, dates=dates)
    standin.fail(600.0, status=502)
    assert watcher.poll_once() == []
    assert watcher.last_error is not None and "E10" in watcher.last_error
