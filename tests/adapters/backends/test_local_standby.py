"""Standby attempts: the next attempt's supervisor and fresh simulator start while a route runs, and
a launch takes them over. Real processes and sockets on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lbcloud.adapters.artifacts import FilesystemArtifactStore
from lbcloud.adapters.backends.local import LocalBackend
from lbcloud.adapters.backends.local_supervisor import exit_handle, wait_any_exit
from lbcloud.adapters.backends.local_warm import warm_command
from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import AttemptOutcome
from tests.adapters.backends.test_local_ports import _port_block, _spec, _track, _wait_end

# listens on its port and writes its pid; stays up until stopped
SIMULATOR = (
    "import os, socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
    "print('simulator pid', os.getpid(), flush=True); time.sleep(60)"
)
# writes a one-record checkpoint and exits 0
EVALUATOR = (
    "import json, sys; from lbcloud.domain.results.scoring import build_route_record; "
    "from lbcloud.domain.results.model import ResultFormat, ResultsFile; "
    "from lbcloud.domain.results.writer import dumps_results; "
    "r = build_route_record(index=0, route_id='RouteScenario_0_rep0', route_completion=100, events=(), "
    "route_length=10.0, duration_game=1.0, duration_system=1.0); "
    "open(sys.argv[1], 'w').write(dumps_results(ResultsFile(ResultFormat.V2X, (r,), (1, 1), sensors=('s',))))"
)


def _backend(tmp_path: Path, ports: tuple[int, int], *, standby: int) -> LocalBackend:
    return LocalBackend(
        tmp_path / "work", FilesystemArtifactStore(tmp_path / "art"), port_range=ports,
        port_lock_dir=tmp_path / "locks", standby=standby,
    )  # fmt: skip


def _ready(folder: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not (folder / "simulator.ready").exists():
        assert time.monotonic() < deadline, "the standby never got ready"
        time.sleep(0.05)


def test_a_launch_takes_the_ready_standby_and_each_attempt_gets_a_fresh_simulator(tmp_path: Path) -> None:
    lo = _port_block(4)
    track = _track(
        tmp_path, (sys.executable, "-c", SIMULATOR, "{port}"), (sys.executable, "-c", EVALUATOR, "{checkpoint}")
    )
    backend = _backend(tmp_path, (lo, lo + 3), standby=1)
    try:
        backend.launch(_spec(track, 1))
        first = _wait_end(backend)
        assert first.outcome is AttemptOutcome.RECORD, first.reason
        (standby,) = (tmp_path / "work").glob("standby-*")
        _ready(standby)
        backend.launch(_spec(track, 2))
        assert not standby.exists(), "the standby became the attempt's folder"
        second = _wait_end(backend)
        assert (second.outcome, second.blame) == (AttemptOutcome.RECORD, Blame.NONE), second.reason
        assert "standby taken by attempt-2" in second.logs["lbcloud"].decode()
        assert "ended (exit)" in second.logs["lbcloud"].decode()
        pids = [event.logs["simulator"].decode().split()[-1] for event in (first, second)]
        assert pids[0] != pids[1], "a fresh simulator process for every attempt"
        assert len(list((tmp_path / "work").glob("standby-*"))) == 1, "the next one is already on its way"
    finally:
        backend.close()
    assert list((tmp_path / "work").glob("standby-*")) == [], "closing the backend stops its standbys"


def test_no_standby_for_a_simulator_command_that_names_the_attempt(tmp_path: Path) -> None:
    lo = _port_block(2)
    track = _track(
        tmp_path, (sys.executable, "-c", SIMULATOR, "{port}", "{workdir}"),
        (sys.executable, "-c", EVALUATOR, "{checkpoint}"),
    )  # fmt: skip
    backend = _backend(tmp_path, (lo, lo + 1), standby=1)
    try:
        backend.launch(_spec(track, 1))
        assert _wait_end(backend).outcome is AttemptOutcome.RECORD
        assert list((tmp_path / "work").glob("standby-*")) == []
    finally:
        backend.close()


def test_a_standby_starts_the_evaluator_warm_and_hands_it_the_attempts_argv_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    # `python -m warm_evaluator CHECKPOINT`: writes its record and shows what it was started with
    (modules / "warm_evaluator.py").write_text(
        "import os, sys\n"
        "print('argv', sys.argv[1:], 'attempt', os.environ.get('LBCLOUD_ATTEMPT'), 'cwd', os.getcwd(), flush=True)\n"
        + EVALUATOR.replace("; ", "\n")
        + "\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")])))
    lo = _port_block(4)
    track = _track(
        tmp_path, (sys.executable, "-c", SIMULATOR, "{port}"),
        (sys.executable, "-m", "warm_evaluator", "{checkpoint}"),
    )  # fmt: skip
    backend = _backend(tmp_path, (lo, lo + 3), standby=1)
    try:
        backend.launch(_spec(track, 1))
        first = _wait_end(backend)
        assert first.outcome is AttemptOutcome.RECORD, first.reason
        assert "warm evaluator" not in first.logs["lbcloud"].decode(), "the first attempt started cold"
        (standby,) = (tmp_path / "work").glob("standby-*")
        _ready(standby)
        backend.launch(_spec(track, 2))
        second = _wait_end(backend)
        assert (second.outcome, second.blame) == (AttemptOutcome.RECORD, Blame.NONE), second.reason
        assert "the warm evaluator takes the attempt" in second.logs["lbcloud"].decode()
        agent = second.logs["agent"].decode()
        folder = tmp_path / "work" / "attempt-2"
        assert f"argv ['{folder / 'checkpoint.json'}'] attempt 2 cwd {folder}" in agent, agent
    finally:
        backend.close()
    assert list((tmp_path / "work").glob("standby-*")) == []


def test_only_python_module_evaluators_start_warm() -> None:
    assert warm_command([sys.executable, "-m", "lbcloud", "track"]) == [
        sys.executable, "-m", "lbcloud.adapters.backends.local_warm", "lbcloud",
    ]  # fmt: skip
    assert warm_command([sys.executable, "-c", "print(1)"]) is None
    assert warm_command(["{python}", "-m", "lbcloud"]) is None
    assert warm_command([sys.executable, "-m", "os; rm"]) is None


def test_the_backends_wait_returns_as_soon_as_an_attempt_ends(tmp_path: Path) -> None:
    lo = _port_block(4)
    slow_evaluator = f"import time; time.sleep(0.5); exec({EVALUATOR!r})"
    track = _track(
        tmp_path, (sys.executable, "-c", SIMULATOR, "{port}"), (sys.executable, "-c", slow_evaluator, "{checkpoint}")
    )
    backend = _backend(tmp_path, (lo, lo + 3), standby=0)
    try:
        backend.launch(_spec(track, 1))
        started = time.monotonic()
        backend.wait(120.0)  # returns when the attempt's supervisor ends, not after two minutes
        assert time.monotonic() - started < 60
        (event,) = backend.poll()
        assert event.outcome is AttemptOutcome.RECORD, event.reason
    finally:
        backend.close()


def test_waiting_on_exit_handles_wakes_when_a_process_ends() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    handle = exit_handle(process.pid)
    assert handle is not None, "this kernel gives exit handles (pidfd)"
    try:
        started = time.monotonic()
        wait_any_exit([handle], 120.0)
        assert time.monotonic() - started < 60
        assert process.wait(timeout=5) == 0
    finally:
        os.close(handle)
    assert exit_handle(process.pid) is None, "a reaped process has no handle"
