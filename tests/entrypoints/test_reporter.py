"""`lbcloud reporter` end to end against the real reporter API (in-process ASGI transport)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lbcloud.adapters.store import SqlStateStore
from lbcloud.domain.artifact_keys import attempt_log_key, attempt_recording_key
from lbcloud.domain.errors import Unavailable
from lbcloud.domain.results.reader import parse_results
from lbcloud.domain.tasks import Attempt
from lbcloud.entrypoints.reporter import Reporter, ReporterClient, ReportRefused, record_document
from lbcloud.entrypoints.web.reporter_api import create_router
from lbcloud.services.reporting import ReportingService, attempt_record_key
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
def http(store: SqlStateStore, artifacts: MemoryArtifacts) -> TestClient:
    app = FastAPI()
    app.include_router(create_router(ReportingService(store, artifacts)))
    return TestClient(app)


def _pod_dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    logs, run, results = tmp_path / "logs", tmp_path / "run", tmp_path / "results"
    for folder in (logs, run, results):
        folder.mkdir()
    return logs, run, results


def _reporter(http: httpx.Client, attempt: Attempt, tmp_path: Path, route_id: str, **kwargs: object) -> Reporter:
    logs, run, results = _pod_dirs(tmp_path)
    return Reporter(
        ReporterClient(http, attempt.id, attempt.token, max_wait_s=0.01),
        route_id=route_id,
        checkpoint=results / "checkpoint.json",
        logs_dir=logs,
        run_dir=run,
        interval_s=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


def test_reporter_streams_logs_and_reports_the_record_once_the_agent_is_done(
    http: TestClient, store: SqlStateStore, artifacts: MemoryArtifacts, tmp_path: Path
) -> None:
    attempt = claimed_attempt(store, route_id="2", repetition=1)
    reporter = _reporter(http, attempt, tmp_path, "RouteScenario_2_rep1")
    (reporter.logs_dir / "agent.log").write_bytes(b"agent starting\n")
    (reporter.logs_dir / "simulator.log").write_bytes(b"simulator ready\n")
    reporter.step()
    with (reporter.logs_dir / "agent.log").open("ab") as handle:
        handle.write(b"route done\n")
    # the evaluator ran one repetition and named it rep0; the reporter names it after the task
    reporter.checkpoint.write_text(checkpoint_document("RouteScenario_2_rep0"), encoding="utf-8")
    (reporter.run_dir / "agent.exit").write_text("0\n")
    assert reporter.run(threading.Event(), exit_when_done=True) == 0
    record = artifacts.get(attempt_record_key(attempt.submission_id, attempt.id))
    assert parse_results(record, "stored").records[-1].route_id == "RouteScenario_2_rep1"
    agent_log = artifacts.get(attempt_log_key(attempt.submission_id, attempt.id, "agent"))
    assert agent_log == b"agent starting\nroute done\n"
    assert [e.kind for e in store.events(submission_id=attempt.submission_id)].count("reporter") == 1


def test_a_restarted_reporter_resumes_from_the_dispatchers_offsets(
    http: TestClient, store: SqlStateStore, artifacts: MemoryArtifacts, tmp_path: Path
) -> None:
    attempt = claimed_attempt(store)
    first = _reporter(http, attempt, tmp_path, "RouteScenario_2_rep0")
    (first.logs_dir / "agent.log").write_bytes(b"a\nb\n")
    first.step()
    second = Reporter(first.client, first.route_id, first.checkpoint, first.logs_dir, first.run_dir, interval_s=0.01)
    with (first.logs_dir / "agent.log").open("ab") as handle:
        handle.write(b"c\n")
    (first.run_dir / "agent.exit").write_text("3\n")  # agent rejected, no checkpoint written
    assert second.run(threading.Event(), exit_when_done=True) == 0
    assert artifacts.get(attempt_log_key(attempt.submission_id, attempt.id, "agent")) == b"a\nb\nc\n"
    assert not artifacts.exists(attempt_record_key(attempt.submission_id, attempt.id))


def test_the_simulator_probe_writes_the_readiness_file(http: TestClient, store: SqlStateStore, tmp_path: Path) -> None:
    attempt = claimed_attempt(store)
    answers = iter([False, True])
    reporter = _reporter(http, attempt, tmp_path, "RouteScenario_2_rep0", probe_port=2000,
                         probe=lambda port: next(answers))  # fmt: skip
    reporter.step()
    assert not (reporter.run_dir / "simulator.ready").exists()
    reporter.step()
    assert (reporter.run_dir / "simulator.ready").exists()


class _RecordingStop(threading.Event):
    """A stop event that records each wait and ends the run after ``rounds`` of them."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self.rounds = rounds

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if len(self.waits) >= self.rounds:
            self.set()
        return self.is_set()


def test_the_probe_runs_every_fifth_of_a_second_until_ready_then_rounds_slow_down(
    http: TestClient, store: SqlStateStore, tmp_path: Path
) -> None:
    attempt = claimed_attempt(store)
    answers = iter([False, False, True])
    reporter = _reporter(http, attempt, tmp_path, "RouteScenario_2_rep0", probe_port=2000,
                         probe=lambda port: next(answers, True))  # fmt: skip
    reporter.interval_s = 2.0
    stop = _RecordingStop(rounds=4)
    reporter.run(stop, exit_when_done=True)
    # the agent waits for the readiness file: probing at the 2 s log interval would delay every start
    assert stop.waits == [0.2, 0.2, 2.0, 2.0]


def test_client_retries_unavailable_dispatchers_and_gives_up_on_refusals(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx.Response(503, json={"error": "store unavailable"})
        if request.url.path.endswith("/heartbeat"):
            return httpx.Response(200, json={"status": "ok"})
        return httpx.Response(410, json={"error": "attempt 1 has ended"})

    client = ReporterClient(httpx.Client(transport=httpx.MockTransport(flaky), base_url="http://d"), 1, "t",
                            max_wait_s=0.001)  # fmt: skip
    client.heartbeat()
    assert calls["n"] == 3
    with pytest.raises(ReportRefused, match="has ended"):
        client.put_record(b"{}")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    dead = ReporterClient(httpx.Client(transport=httpx.MockTransport(down), base_url="http://d"), 1, "t",
                          attempts=2, max_wait_s=0.001)  # fmt: skip
    with pytest.raises(Unavailable, match="unreachable"):
        dead.heartbeat()


def test_record_document_is_deterministic_and_keeps_one_record() -> None:
    text = checkpoint_document("RouteScenario_5_rep0")
    first = record_document(text, "RouteScenario_5_rep2")
    assert first == record_document(text, "RouteScenario_5_rep2")
    parsed = parse_results(first, "doc")
    assert [r.route_id for r in parsed.records] == ["RouteScenario_5_rep2"]


def test_the_reporter_command_reports_over_real_http(
    store: SqlStateStore, artifacts: MemoryArtifacts, tmp_path: Path
) -> None:
    import socket

    import uvicorn
    from typer.testing import CliRunner

    from lbcloud.entrypoints import reporter as reporter_module

    app = FastAPI()
    app.include_router(create_router(ReportingService(store, artifacts)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
            assert thread.is_alive(), "the test server did not start"
        attempt = claimed_attempt(store)
        logs, run, results = _pod_dirs(tmp_path)
        (logs / "agent.log").write_text("driving\n")
        (results / "checkpoint.json").write_text(checkpoint_document("RouteScenario_2_rep0"))
        (run / "agent.exit").write_text("0\n")
        result = CliRunner().invoke(
            reporter_module.app,
            ["--dispatcher-url", f"http://127.0.0.1:{port}", "--attempt-id", str(attempt.id), "--route-id",
             "RouteScenario_2_rep0", "--checkpoint", str(results / "checkpoint.json"), "--logs-dir", str(logs),
             "--run-dir", str(run), "--interval", "0.05", "--exit-when-done"],
            env={"LBCLOUD_REPORTER_TOKEN": attempt.token},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert artifacts.exists(attempt_record_key(attempt.submission_id, attempt.id))
        assert artifacts.get(attempt_log_key(attempt.submission_id, attempt.id, "agent")) == b"driving\n"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.mark.parametrize(("size", "kept"), [(64, True), (5000, False)])
def test_the_reporter_keeps_the_simulators_recording_within_the_cap_and_always_sends_the_record(
    http: TestClient, store: SqlStateStore, artifacts: MemoryArtifacts, tmp_path: Path, size: int, kept: bool
) -> None:
    attempt = claimed_attempt(store, route_id="2")
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "RouteScenario_2_rep0.log").write_bytes(b"R" * size)
    reporter = _reporter(http, attempt, tmp_path, "RouteScenario_2_rep0", recordings_dir=recordings,
                         max_recording_bytes=4096)  # fmt: skip
    reporter.checkpoint.write_text(checkpoint_document("RouteScenario_2_rep0"), encoding="utf-8")
    (reporter.run_dir / "agent.exit").write_text("0\n")
    reporter.finish()
    assert artifacts.exists(attempt_recording_key(attempt.submission_id, attempt.id)) is kept
    assert artifacts.exists(attempt_record_key(attempt.submission_id, attempt.id))
