"""Fault tests: the dispatcher SIGKILLed at random moments and restarted after 0, 1, 5 or 40 s (under a
new owner id, as a restarted process is), and two lbcloud installs with the same settings on one host.

Real processes: `lbcloud dispatch` / `lbcloud serve` as subprocesses, SUMO attempts on the local backend.
Each run kills ``LBCLOUD_FAULT_KILLS`` times (default 2; the acceptance runs use 10).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lbcloud.domain.artifact_keys import LogStream, attempt_log_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, RouteTaskStatus
from lbcloud.entrypoints.wiring import System
from tests.e2e.conftest import submit, sumo_dev_track, wait_for
from tests.services.postgres import free_port

pytestmark = [pytest.mark.sumo, pytest.mark.slow]
S = SubmissionStatus
LEASE_S = 4.0
SLOTS = 2
KILLS = int(os.environ.get("LBCLOUD_FAULT_KILLS", "2"))


def _settings(data: Path, **more: object) -> dict[str, object]:
    return {
        "data_dir": str(data),
        "local": {"slots": SLOTS},
        "dispatcher": {"lease_s": LEASE_S, "tick_s": 0.1},
        "tracks": [sumo_dev_track(repetitions=4, smoke_route=None)],  # 3 routes x 4 = 12 route tasks
        **more,
    }


def _start(config: Path, log: Path, command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lbcloud", *command],
        env={**os.environ, "LBCLOUD_CONFIG": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)


def _assert_each_route_has_exactly_one_record(system: System, ids: list[int]) -> None:
    for sid in ids:
        sub = system.store.get_submission(sid)
        assert sub.status is S.FINISHED, (sid, sub.status, sub.reason)
        for task in system.store.route_tasks(sid):
            assert task.status is RouteTaskStatus.DONE
            records = [a for a in system.store.attempts(task_id=task.id) if a.outcome is AttemptOutcome.RECORD]
            assert len(records) == 1, f"route {task.route_id} rep {task.repetition} of {sid}: {len(records)} records"


def _slots_refilled_within(system: System, ids: list[int], dead_owner: str, timeout_s: float) -> float | None:
    """Seconds until the dead owner holds no attempt and every slot runs one again (None: no work left)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if all(system.store.get_submission(i).status.terminal for i in ids):
            return None
        live = system.store.live_attempts()
        pending = sum(1 for i in ids for t in system.store.route_tasks(i) if t.status is RouteTaskStatus.PENDING)
        if all(a.owner != dead_owner for a in live) and (len(live) >= SLOTS or pending == 0):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"slots not refilled within {timeout_s:.0f} s after the restart")


@pytest.mark.parametrize(
    ("command", "delay_s"),
    [(["dispatch"], 0.0), (["dispatch"], 1.0), (["dispatch"], 5.0), (["dispatch"], 40.0), (["serve"], 1.0)],
    ids=["dispatch-0s", "dispatch-1s", "dispatch-5s", "dispatch-40s", "serve-1s"],
)
def test_sigkill_at_random_moments_then_restart_completes_every_submission_with_one_record_per_route(
    command: list[str], delay_s: float, make_system: Callable[..., System], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "lbcloud.yaml"
    extra: dict[str, object] = {"web": {"port": free_port()}} if command == ["serve"] else {}
    config.write_text(yaml.safe_dump(_settings(data, **extra)))
    system = make_system(**_settings(data))
    ids = [submit(system, "competent.py", team=team) for team in ("alpha", "beta", "gamma")]
    rng = random.Random(f"{command}-{delay_s}")
    log = tmp_path / "dispatch.log"
    proc = _start(config, log, command)
    stalls: list[float] = []
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.0, 6.0))
            if all(system.store.get_submission(i).status.terminal for i in ids):
                break
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            dead_owner = f"{socket.gethostname()}-{proc.pid}"  # the default owner id: host and pid
            time.sleep(delay_s)
            proc = _start(config, log, command)
            refill = _slots_refilled_within(system, ids, dead_owner, timeout_s=LEASE_S + 30)
            if refill is not None:
                stalls.append(refill)
        wait_for(lambda: all(system.store.get_submission(i).status.terminal for i in ids), 400)
    finally:
        _stop(proc)
    _assert_each_route_has_exactly_one_record(system, ids)
    # a new process needs a moment to start; beyond that, the dead owner's slots wait one lease at most
    assert all(stall <= LEASE_S + 15 for stall in stalls), stalls


def test_two_installs_with_the_same_settings_on_one_host_never_share_a_simulator(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    installs = []
    for name in ("one", "two"):
        data = tmp_path / name
        config = tmp_path / f"{name}.yaml"
        settings = _settings(data, tracks=[sumo_dev_track()])  # the default port range, on both
        config.write_text(yaml.safe_dump(settings))
        system = make_system(**settings)
        ids = [submit(system, "competent.py", team=team) for team in ("alpha", "beta", "gamma")]
        installs.append((system, ids, config, data))
    procs = [_start(config, tmp_path / f"{data.name}.log", ["dispatch"]) for _, _, config, data in installs]
    try:
        for system, ids, _, _ in installs:
            wait_for(lambda s=system, i=ids: all(s.store.get_submission(x).status.terminal for x in i), 400)  # type: ignore[misc]
    finally:
        for proc in procs:
            _stop(proc)
    spans: list[tuple[int, float, float, str]] = []
    for system, ids, _, data in installs:
        for sid in ids:
            attempts = system.store.attempts(submission_id=sid)
            assert not [a for a in attempts if a.blame is Blame.SIMULATOR], "no simulator faults"
            assert system.store.get_submission(sid).status is S.FINISHED
            for attempt in attempts:
                log = system.artifacts.get(attempt_log_key(sid, attempt.id, LogStream.LBCLOUD)).decode()
                found = re.search(r"waiting for port (\d+)", log)
                assert found is not None and attempt.ended_at is not None, log
                span = (attempt.created_at.timestamp(), attempt.ended_at.timestamp())
                spans.append((int(found.group(1)), *span, f"{data.name}/attempt-{attempt.id}"))
    assert len(spans) >= 18
    for i, (port, start, end, name) in enumerate(spans):
        for other_port, other_start, other_end, other in spans[i + 1 :]:
            overlap = start < other_end and other_start < end
            assert not (overlap and port == other_port), f"{name} and {other} shared port {port} at the same time"
