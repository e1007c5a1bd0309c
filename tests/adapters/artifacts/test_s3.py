"""The S3 artifact store against a real SeaweedFS server: round trips, prefixes and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.adapters.artifacts import OutboxArtifactStore, S3ArtifactStore, open_artifact_store, parse_s3_url
from lbcloud.domain.errors import ConfigError, InputError, NotFound, Unavailable
from lbcloud.services.ports import BlobInfo
from tests.services.s3 import S3Bucket, SeaweedServer, free_ports


def s3_store(bucket: S3Bucket, prefix: str = "", **kwargs: object) -> S3ArtifactStore:
    return S3ArtifactStore(
        bucket.bucket,
        prefix,
        endpoint_url=bucket.endpoint_url,
        region=bucket.region,
        access_key_id=bucket.access_key_id,
        secret_access_key=bucket.secret_access_key,
        **kwargs,  # type: ignore[arg-type]
    )


def test_parse_s3_url_splits_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://results") == ("results", "")
    assert parse_s3_url("s3://results/lbcloud/prod/") == ("results", "lbcloud/prod/")
    with pytest.raises(ConfigError):
        parse_s3_url("s3:///nobucket")


@pytest.mark.s3
def test_round_trip_overwrite_exists_and_delete(s3_bucket: S3Bucket, s3_server: SeaweedServer) -> None:
    store = s3_store(s3_bucket)
    store.put("submissions/1/merged.json", b'{"v": 1}', "application/json")
    store.put("submissions/1/merged.json", b'{"v": 2}', "application/json")

    assert store.get("submissions/1/merged.json") == b'{"v": 2}'
    assert store.exists("submissions/1/merged.json")
    head = s3_server.client().head_object(Bucket=s3_bucket.bucket, Key="submissions/1/merged.json")
    assert head["ContentType"] == "application/json"
    store.delete("submissions/1/merged.json")
    store.delete("submissions/1/merged.json")
    assert not store.exists("submissions/1/merged.json")
    with pytest.raises(NotFound, match="submissions/1/merged"):
        store.get("submissions/1/merged.json")


@pytest.mark.s3
def test_keys_live_under_the_prefix_and_list_strips_it(s3_bucket: S3Bucket, s3_server: SeaweedServer) -> None:
    store = s3_store(s3_bucket, "lbcloud/prod")
    store.put("submissions/1/routes/b.json", b"22")
    store.put("submissions/1/routes/a.json", b"1")
    store.put("submissions/2/merged.json", b"333")

    assert store.list("submissions/1/") == [
        BlobInfo("submissions/1/routes/a.json", 1),
        BlobInfo("submissions/1/routes/b.json", 2),
    ]
    assert [b.key for b in store.list("")] == [
        "submissions/1/routes/a.json",
        "submissions/1/routes/b.json",
        "submissions/2/merged.json",
    ]
    raw = s3_server.client().list_objects_v2(Bucket=s3_bucket.bucket)["Contents"]
    assert sorted(item["Key"] for item in raw)[0] == "lbcloud/prod/submissions/1/routes/a.json"


@pytest.mark.s3
def test_list_pages_through_every_page(s3_bucket: S3Bucket) -> None:
    store = s3_store(s3_bucket, page_size=2)
    for i in range(7):
        store.put(f"many/{i}", b"")
    assert [b.key for b in store.list("many/")] == [f"many/{i}" for i in range(7)]


@pytest.mark.s3
def test_unsafe_keys_are_refused_before_any_request(s3_bucket: S3Bucket) -> None:
    with pytest.raises(InputError):
        s3_store(s3_bucket).put("../escape", b"x")


@pytest.mark.s3
def test_missing_bucket_and_bad_credentials_raise_unavailable(s3_bucket: S3Bucket) -> None:
    missing = S3ArtifactStore(
        "no-such-bucket-here",
        endpoint_url=s3_bucket.endpoint_url,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key=s3_bucket.secret_access_key,
    )
    with pytest.raises(Unavailable, match="NoSuchBucket"):
        missing.get("a")
    wrong = S3ArtifactStore(
        s3_bucket.bucket,
        endpoint_url=s3_bucket.endpoint_url,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key="not-the-secret",
    )
    with pytest.raises(Unavailable, match="SignatureDoesNotMatch"):
        wrong.get("a")


@pytest.mark.s3
def test_ensure_bucket_creates_it_once(s3_server: SeaweedServer, s3_bucket: S3Bucket) -> None:
    store = S3ArtifactStore(
        "lbcloud-created-here",
        endpoint_url=s3_bucket.endpoint_url,
        access_key_id=s3_bucket.access_key_id,
        secret_access_key=s3_bucket.secret_access_key,
    )
    store.ensure_bucket()
    store.ensure_bucket()
    store.put("k", b"v")
    assert store.get("k") == b"v"


def test_unreachable_endpoint_raises_unavailable_naming_it() -> None:
    [port] = free_ports(1)
    store = S3ArtifactStore(
        "bucket",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="k",
        secret_access_key="s",
        connect_timeout_s=1,
        max_attempts=1,
    )
    for call in (
        lambda: store.put("a", b"x"),
        lambda: store.get("a"),
        lambda: store.exists("a"),
        lambda: store.list(""),
    ):
        with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
            call()


@pytest.mark.s3
def test_factory_builds_s3_from_settings_values_with_an_outbox_when_spooling(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    plain = open_artifact_store(f"{s3_bucket.url}/prefix", s3_bucket)
    spooled = open_artifact_store(s3_bucket.url, s3_bucket, spool_dir=tmp_path / "outbox")

    assert isinstance(plain, S3ArtifactStore) and plain.prefix == "prefix/"
    assert isinstance(spooled, OutboxArtifactStore) and isinstance(spooled.remote, S3ArtifactStore)
    spooled.put("submissions/1/merged.json", b"{}")
    assert not plain.exists("submissions/1/merged.json")  # plain writes under prefix/ only
    assert (
        S3ArtifactStore(
            s3_bucket.bucket,
            endpoint_url=s3_bucket.endpoint_url,
            access_key_id=s3_bucket.access_key_id,
            secret_access_key=s3_bucket.secret_access_key,
        ).get("submissions/1/merged.json")
        == b"{}"
    )
    assert spooled.pending() == []
