"""The outbox: writes are spooled durably, uploaded in order, retried with backoff, never lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lbcloud.adapters.artifacts import OutboxArtifactStore, S3ArtifactStore
from lbcloud.domain.errors import InputError, NotFound, Unavailable
from lbcloud.services.ports import BlobInfo
from tests.services.s3 import S3Bucket, SeaweedServer

from .conftest import FlakyRemote


class ManualTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def time() -> ManualTime:
    return ManualTime()


@pytest.fixture
def outbox(remote: FlakyRemote, tmp_path: Path, time: ManualTime) -> OutboxArtifactStore:
    return OutboxArtifactStore(remote, tmp_path / "spool", monotonic=time, min_backoff_s=1, max_backoff_s=8)


def test_put_with_the_remote_up_uploads_at_once_and_leaves_no_spool(
    outbox: OutboxArtifactStore, remote: FlakyRemote
) -> None:
    outbox.put("submissions/1/merged.json", b"{}", "application/json")
    assert remote.blobs == {"submissions/1/merged.json": b"{}"}
    assert remote.content_types["submissions/1/merged.json"] == "application/json"
    assert outbox.pending() == []
    assert outbox.get("submissions/1/merged.json") == b"{}"


def test_put_while_the_remote_is_down_returns_and_reads_see_the_spooled_blob(
    outbox: OutboxArtifactStore, remote: FlakyRemote
) -> None:
    remote.down = True
    outbox.put("submissions/1/routes/a.json", b"record")

    assert outbox.pending() == ["submissions/1/routes/a.json"]
    assert outbox.get("submissions/1/routes/a.json") == b"record"
    assert outbox.exists("submissions/1/routes/a.json")
    assert remote.blobs == {}
    assert outbox.last_error is not None and "remote down" in outbox.last_error


def test_flush_after_the_outage_uploads_everything_in_order(
    outbox: OutboxArtifactStore, remote: FlakyRemote, time: ManualTime
) -> None:
    remote.down = True
    outbox.put("k/a", b"1")
    outbox.put("k/b", b"2")
    outbox.put("k/a", b"3")
    outbox.delete("k/b")
    remote.down = False

    assert outbox.flush() == 0  # still inside the backoff window
    time.now += 1
    assert outbox.flush() == 4

    assert remote.calls == [("put", "k/a"), ("put", "k/b"), ("put", "k/a"), ("delete", "k/b")]
    assert remote.blobs == {"k/a": b"3"}
    assert outbox.pending() == []
    assert outbox.last_error is None


def test_backoff_doubles_between_failed_rounds_and_force_skips_it(
    outbox: OutboxArtifactStore, remote: FlakyRemote, time: ManualTime
) -> None:
    remote.down = True
    outbox.put("k/a", b"1")  # failure 1: next try after 1s
    time.now += 1
    outbox.flush()  # failure 2: next try after 2s
    remote.down = False
    time.now += 1.5
    assert outbox.flush() == 0
    assert outbox.pending() == ["k/a"]
    assert outbox.flush(force=True) == 1
    assert remote.blobs == {"k/a": b"1"}


def test_puts_during_backoff_are_spooled_without_touching_the_remote(
    outbox: OutboxArtifactStore, remote: FlakyRemote
) -> None:
    remote.down = True
    outbox.put("k/a", b"1")
    remote.down = False
    outbox.put("k/b", b"2")  # in the backoff window: spooled only
    assert remote.calls == []
    assert outbox.pending() == ["k/a", "k/b"]


def test_spooled_delete_hides_the_blob_and_list_overlays_the_spool(
    outbox: OutboxArtifactStore, remote: FlakyRemote
) -> None:
    outbox.put("s/1/a", b"1")
    outbox.put("s/1/b", b"22")
    remote.down = True
    outbox.delete("s/1/a")
    outbox.put("s/1/c", b"333")

    with pytest.raises(NotFound):
        outbox.get("s/1/a")
    assert not outbox.exists("s/1/a")
    with pytest.raises(Unavailable):
        outbox.list("s/1/")  # the remote part of the listing is unknown
    remote.down = False
    assert outbox.list("s/1/") == [BlobInfo("s/1/b", 2), BlobInfo("s/1/c", 3)]


def test_a_new_outbox_on_the_same_spool_uploads_what_a_crashed_one_left(remote: FlakyRemote, tmp_path: Path) -> None:
    remote.down = True
    OutboxArtifactStore(remote, tmp_path / "spool").put("k/a", b"survives a restart")
    remote.down = False

    after_restart = OutboxArtifactStore(remote, tmp_path / "spool")
    assert after_restart.get("k/a") == b"survives a restart"
    assert after_restart.flush() == 1
    assert remote.blobs == {"k/a": b"survives a restart"}


def test_a_damaged_entry_is_set_aside_and_does_not_block_the_others(
    outbox: OutboxArtifactStore, remote: FlakyRemote
) -> None:
    remote.down = True
    outbox.put("k/a", b"first")
    outbox.put("k/b", b"second")
    first = outbox.entries()[0].path
    first.write_bytes(first.read_bytes()[:-1])  # truncated blob: checksum no longer matches
    remote.down = False

    assert outbox.flush(force=True) == 1
    assert remote.blobs == {"k/b": b"second"}
    assert [p.name for p in (outbox.spool_dir / "damaged").iterdir()] == [first.name]


def test_unsafe_keys_are_refused_before_spooling(outbox: OutboxArtifactStore) -> None:
    with pytest.raises(InputError):
        outbox.put("../x", b"")
    assert outbox.pending() == []


def test_concurrent_puts_from_threads_all_arrive(outbox: OutboxArtifactStore, remote: FlakyRemote) -> None:
    def write(worker: int) -> None:
        for i in range(20):
            outbox.put(f"w/{worker}/{i}", f"{worker}-{i}".encode())

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(remote.blobs) == 80
    assert outbox.pending() == []


@pytest.mark.s3
def test_seaweedfs_stopped_then_started_loses_nothing(
    s3_server: SeaweedServer, s3_bucket: S3Bucket, tmp_path: Path, time: ManualTime
) -> None:
    remote = S3ArtifactStore(
        s3_bucket.bucket,
        endpoint_url=s3_bucket.endpoint_url,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key=s3_bucket.secret_access_key,
        connect_timeout_s=1,
        max_attempts=1,
    )
    outbox = OutboxArtifactStore(remote, tmp_path / "spool", monotonic=time)
    outbox.put("submissions/1/routes/RouteScenario_0_rep0.json", b"before the outage")
    blobs = {f"submissions/1/attempts/{i}/agent.log": f"log {i}".encode() for i in range(5)}
    try:
        s3_server.stop()
        for key, data in blobs.items():
            outbox.put(key, data)  # returns: the blob is safe in the spool
        assert outbox.pending() == list(blobs)
        assert outbox.get("submissions/1/attempts/3/agent.log") == b"log 3"
        time.now += 120
        assert outbox.flush() == 0  # still down: everything stays spooled
        assert outbox.pending() == list(blobs)
    finally:
        s3_server.start()

    time.now += 120
    assert outbox.flush() == len(blobs)
    assert outbox.pending() == []
    for key, data in {**blobs, "submissions/1/routes/RouteScenario_0_rep0.json": b"before the outage"}.items():
        assert remote.get(key) == data
