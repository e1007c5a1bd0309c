"""The local backend's pieces that do not need a simulator: exit classification, port probing, adoption."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.backends.local import LocalBackend, classify_exit
from lbcloud.adapters.backends.local_supervisor import port_listening
from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import Attempt, AttemptOutcome, AttemptStatus
from lbcloud.services.ports import BackendEventKind


@pytest.mark.parametrize(
    ("code", "has_record", "outcome", "blame"),
    [
        (0, True, AttemptOutcome.RECORD, Blame.NONE),
        (3, True, AttemptOutcome.RECORD, Blame.AGENT),
        (4, True, AttemptOutcome.FAILED, Blame.SIMULATOR),
        (5, False, AttemptOutcome.FAILED, Blame.SIMULATOR),
        (2, False, AttemptOutcome.FAILED, Blame.INFRASTRUCTURE),
        (0, False, AttemptOutcome.FAILED, Blame.INFRASTRUCTURE),
        (-11, False, AttemptOutcome.FAILED, Blame.AGENT),
        (-9, False, AttemptOutcome.FAILED, Blame.INFRASTRUCTURE),
        (1, False, AttemptOutcome.FAILED, Blame.AGENT),
        (1, True, AttemptOutcome.RECORD, Blame.NONE),
    ],
)
def test_evaluator_exit_codes_map_to_outcome_and_blame(
    code: int, has_record: bool, outcome: AttemptOutcome, blame: Blame
) -> None:
    got_outcome, got_blame, reason = classify_exit(code, has_record, None)
    assert (got_outcome, got_blame) == (outcome, blame)
    assert reason


def test_port_listening_sees_a_listener_without_connecting_to_it() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        assert not port_listening(port)
        server.listen()
        assert port_listening(port)


def _attempt(attempt_id: int, handle: str | None) -> Attempt:
    now = datetime.now(UTC)
    return Attempt(
        id=attempt_id, task_id=1, submission_id=1, number=1, backend="local", pool="local",
        status=AttemptStatus.RUNNING, owner="d", lease_expires_at=None, handle=handle, token="t",
        outcome=None, blame=Blame.NONE, reason=None, exit_code=None, counted=False, created_at=now,
        started_at=now, ended_at=None,
    )  # fmt: skip


def test_adopting_attempts_without_a_trace_reports_them_lost(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"))
    gone = tmp_path / "work" / "attempt-3"
    gone.mkdir(parents=True)
    (gone / "attempt.json").write_text(json.dumps({"attempt": 3, "submission": 1, "repetition": 0}))
    (gone / "spec.json").write_text(json.dumps({"port": 1}))
    (gone / "supervisor.pid").write_text("999999999\n")
    (gone / "agent.log").write_text("last words\n")
    (tmp_path / "work" / "attempt-1").mkdir()  # the stop came right after the folder was made
    events = backend.adopt([_attempt(1, None), _attempt(2, str(tmp_path / "missing")), _attempt(3, str(gone))])
    assert not (tmp_path / "work" / "attempt-1").exists(), "an empty folder left by the stop is removed"
    assert [e.attempt_id for e in events] == [1, 2, 3]
    assert all(e.kind is BackendEventKind.ENDED and e.outcome is AttemptOutcome.LOST for e in events)
    assert all(e.blame is Blame.INFRASTRUCTURE for e in events)
    assert events[2].logs["agent"] == b"last words\n", "what the attempt logged is kept"


def _started_folder(work: Path, attempt_id: int, pid: int) -> Path:
    folder = work / f"attempt-{attempt_id}"
    folder.mkdir(parents=True)
    (folder / "attempt.json").write_text(json.dumps({"attempt": attempt_id, "submission": 1, "repetition": 0}))
    (folder / "spec.json").write_text(json.dumps({"port": 1}))
    (folder / "supervisor.pid").write_text(f"{pid}\n")
    return folder


def test_an_attempt_started_but_never_given_its_handle_is_found_and_reports_it(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"))
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = _started_folder(tmp_path / "work", 5, supervisor.pid)
        (folder / "simulator.ready").write_text("")
        assert backend.adopt([_attempt(5, None)]) == [], "a running supervisor is re-attached, not lost"
        (event,) = backend.poll()
        assert event.kind is BackendEventKind.RUNNING and event.handle == str(folder)
        assert backend.poll() == []
    finally:
        supervisor.kill()
        supervisor.wait()


def test_an_unstarted_attempt_whose_supervisor_comes_late_is_lost_and_the_supervisor_stands_down(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"))
    folder = _started_folder(tmp_path / "work", 6, 999_999_999)
    (event,) = backend.adopt([_attempt(6, None)])
    assert event.outcome is AttemptOutcome.LOST and event.blame is Blame.INFRASTRUCTURE
    late = subprocess.run(
        [sys.executable, "-m", "lbcloud.adapters.backends.local_supervisor", str(folder)], timeout=60, check=False
    )
    assert late.returncode == 0
    assert not (folder / "simulator.log").exists(), "the late supervisor started nothing"
    assert json.loads((folder / "result.json").read_text())["ended_by"] == "cancelled"


def test_an_attempt_that_ended_while_nobody_watched_is_collected_on_the_next_poll(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"))
    done = tmp_path / "work" / "attempt-4"
    done.mkdir(parents=True)
    (done / "attempt.json").write_text(json.dumps({"attempt": 4, "submission": 1, "repetition": 0}))
    (done / "spec.json").write_text(json.dumps({"port": 1}))
    (done / "result.json").write_text(
        json.dumps(
            {
                "ended_by": "budget",
                "exit_code": None,
                "simulator_exit_code": None,
                "detail": "the attempt exceeded its wall-clock budget of 9 s",
                "started_at": 0,
                "simulator_ready_at": 1,
                "ended_at": 2,
            }
        )
    )
    assert backend.adopt([_attempt(4, str(done))]) == []
    (event,) = backend.poll()
    assert event.outcome is AttemptOutcome.FAILED and event.blame is Blame.AGENT
    assert event.reason is not None and "budget" in event.reason


def test_the_last_error_line_of_a_log_explains_a_failure() -> None:
    from lbcloud.adapters.backends.local import last_error_line

    log = (
        b"[1/1] RouteScenario_0_rep0\n"
        b"19:31:32 ERROR   lbcloud.tracks.sumo.evaluator: RouteScenario_0_rep0: the agent hung in run_step\n"
        b"    Failed - Agent crashed (driving score 33.7)\n"
    )
    assert last_error_line(log) == "the agent hung in run_step"
    assert last_error_line(b"all good\n") is None
    assert last_error_line(b"ValueError: bad steering\n") == "ValueError: bad steering"
