"""Restart and outage tests: the dispatcher SIGKILLed mid-run, PostgreSQL restarted, S3 away for a while.

Real processes everywhere: `lbcloud dispatch` as a subprocess, SUMO attempts, a PostgreSQL server and a
SeaweedFS S3 server started by the suite.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from lbcloud.adapters.artifacts import S3ArtifactStore
from lbcloud.domain.artifact_keys import manifest_key, merged_key, route_record_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, RouteTaskStatus
from lbcloud.entrypoints.wiring import System
from tests.e2e.conftest import start_dispatch, submit, sumo_dev_track, wait_for
from tests.services.postgres import PostgresServer
from tests.services.s3 import S3Bucket, SeaweedServer

pytestmark = [pytest.mark.sumo, pytest.mark.slow]
S = SubmissionStatus


def _assert_complete_without_duplicates(system: System, ids: list[int]) -> None:
    for sid in ids:
        sub = system.store.get_submission(sid)
        assert sub.status is S.FINISHED, (sid, sub.status, sub.reason)
        tasks = system.store.route_tasks(sid)
        assert all(t.status is RouteTaskStatus.DONE for t in tasks)
        for task in tasks:
            attempts = system.store.attempts(task_id=task.id)
            records = [a for a in attempts if a.outcome is AttemptOutcome.RECORD]
            assert len(records) == 1, f"route {task.route_id} of {sid} has {len(records)} records"
            assert system.artifacts.exists(route_record_key(sid, task.route_id, task.repetition))
        merged = system.store.merged_result(sid)
        assert merged is not None and merged.final and merged.records == len(tasks)


def test_dispatcher_sigkill_mid_run_then_restart_loses_and_duplicates_nothing(
    make_system: Callable[..., System], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    config = tmp_path / "lbcloud.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": str(data),
                "local": {"slots": 2},
                "dispatcher": {"owner": "dispatcher-a", "lease_s": 5, "tick_s": 0.1},
                "tracks": [sumo_dev_track()],
            }
        )
    )
    system = make_system(data_dir=str(data), tracks=[sumo_dev_track()])
    ids = [submit(system, "competent.py", team="alpha"), submit(system, "slow.py", team="beta")]
    env = {**os.environ, "LBCLOUD_CONFIG": str(config)}

    first = start_dispatch(env, tmp_path / "dispatch.log")
    try:
        # kill it while attempts are running and after at least one record was merged
        wait_for(
            lambda: (
                any(system.store.merged_result(i) is not None for i in ids)
                and any(a.handle for a in system.store.live_attempts())
            ),
            180,
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        live = system.store.live_attempts()
        # an attempt the kill caught between claim and handle has none: found again if its supervisor
        # started, else lost and re-run
        in_flight = {a.id for a in live if a.handle}
        unstarted = {a.id for a in live if not a.handle}
        assert in_flight, "the kill landed while attempts were running"
        second = start_dispatch(env, tmp_path / "dispatch.log")
        try:
            wait_for(lambda: all(system.store.get_submission(i).status.terminal for i in ids), 300)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=15)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    _assert_complete_without_duplicates(system, ids)
    for attempt_id in in_flight:
        adopted = system.store.get_attempt(attempt_id)
        assert adopted.outcome is AttemptOutcome.RECORD, "attempts in flight during the kill were collected, not rerun"
    for attempt_id in unstarted:
        caught = system.store.get_attempt(attempt_id)
        if caught.outcome is not AttemptOutcome.RECORD:
            assert caught.outcome is AttemptOutcome.LOST and caught.blame is Blame.INFRASTRUCTURE


@pytest.mark.postgres
def test_postgresql_restart_during_a_run_is_survived(
    postgres_server: PostgresServer, postgres_url: str, make_system: Callable[..., System]
) -> None:
    system = make_system(database_url=postgres_url)
    ids = [submit(system, "competent.py", team="alpha")]
    dispatcher = system.dispatcher()
    wait_for(lambda: system.store.merged_result(ids[0]) is not None, 180, tick=dispatcher.tick)
    postgres_server.stop()
    outage_reports = [dispatcher.tick() for _ in range(5)]
    assert any(r.errors for r in outage_reports), "ticks during the outage report the store as unavailable"
    time.sleep(1.0)
    postgres_server.start()
    assert dispatcher.run_until_idle(tick_s=0.1, timeout_s=240)
    _assert_complete_without_duplicates(system, ids)


@pytest.mark.s3
def test_artifact_store_unreachable_for_a_while_loses_nothing(
    make_system: Callable[..., System], s3_server: SeaweedServer, s3_bucket: S3Bucket
) -> None:
    system = make_system(
        artifacts={
            "url": s3_bucket.url,
            "s3_endpoint_url": s3_bucket.endpoint_url,
            "s3_region": s3_bucket.region,
            "s3_access_key_id": s3_bucket.access_key_id,
            "s3_secret_access_key": s3_bucket.secret_access_key,
        }
    )
    ids = [submit(system, "competent.py", team="alpha")]
    dispatcher = system.dispatcher()
    wait_for(lambda: bool(system.store.live_attempts()), 60, tick=dispatcher.tick)
    s3_server.stop()
    try:
        # records, logs and merged results keep coming while S3 is away
        wait_for(lambda: system.store.merged_result(ids[0]) is not None, 180, tick=dispatcher.tick)
        for _ in range(20):
            dispatcher.tick()
            time.sleep(0.1)
    finally:
        s3_server.start()
    assert dispatcher.run_until_idle(tick_s=0.1, timeout_s=240)
    wait_for(lambda: not getattr(system.artifacts, "pending", lambda: [])(), 30, tick=dispatcher.tick)
    remote = S3ArtifactStore(
        s3_bucket.bucket,
        "",
        endpoint_url=s3_bucket.endpoint_url,
        region=s3_bucket.region,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key=s3_bucket.secret_access_key,
    )
    sid = ids[0]
    for task in system.store.route_tasks(sid):
        assert remote.exists(route_record_key(sid, task.route_id, task.repetition))
    assert remote.exists(merged_key(sid)) and remote.exists(manifest_key(sid))
    _assert_complete_without_duplicates(system, ids)
