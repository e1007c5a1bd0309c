"""Artifacts in any S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph RGW, GCS interop...).

Configured by ``s3://bucket/prefix`` plus an optional endpoint URL, region and keys (without keys
boto3's usual credential chain applies: environment, profile, instance role). botocore errors
become :class:`NotFound` (missing key) or :class:`Unavailable` (everything that a retry or an
operator can fix: unreachable endpoint, 5xx, throttling, missing bucket, refused credentials).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lbcloud.adapters.artifacts.keys import check_key, check_prefix
from lbcloud.domain.errors import ConfigError, NotFound, Unavailable
from lbcloud.services.ports import ArtifactStore, BlobInfo

MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix/")``; raises :class:`ConfigError`."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ConfigError(f"artifact URL {url!r} is not of the form s3://bucket[/prefix]")
    prefix = parsed.path.strip("/")
    return parsed.netloc, f"{prefix}/" if prefix else ""


class S3ArtifactStore:
    """:class:`lbcloud.services.ports.ArtifactStore` in an S3 bucket, keys under an optional prefix."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
        page_size: int = 1000,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self.region = region
        self.page_size = page_size
        self.endpoint = endpoint_url or f"s3.{region}.amazonaws.com"
        if client is None:
            config = Config(
                region_name=region,
                connect_timeout=connect_timeout_s,
                read_timeout=read_timeout_s,
                retries={"max_attempts": max_attempts, "mode": "standard"},
                # custom endpoints (SeaweedFS, MinIO) rarely have per-bucket DNS names
                s3={"addressing_style": "path" if endpoint_url else "auto"},
            )
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=config,
            )
        self._client = client

    def __repr__(self) -> str:
        return f"S3ArtifactStore(s3://{self.bucket}/{self.prefix} at {self.endpoint})"

    @contextmanager
    def _errors(self, doing: str, key: str | None = None) -> Iterator[None]:
        where = f"s3://{self.bucket}/{self.prefix}{key or ''} at {self.endpoint}"
        try:
            yield
        except ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code", "?"))
            if key is not None and code in MISSING_KEY_CODES:
                raise NotFound(f"artifact {key} does not exist ({where})") from err
            message = error.get("Message") or code
            raise Unavailable(f"object store refused {doing} {where}: {code}: {message}") from err
        except BotoCoreError as err:
            raise Unavailable(f"object store unreachable while {doing} {where}: {err}") from err

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        check_key(key)
        with self._errors("writing", key):
            self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._errors("reading", key):
            response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            body: bytes = response["Body"].read()
            return body

    def exists(self, key: str) -> bool:
        check_key(key)
        try:
            with self._errors("checking", key):
                self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str) -> list[BlobInfo]:
        """Blobs whose key starts with ``prefix``, sorted by key."""
        check_prefix(prefix)
        found: list[BlobInfo] = []
        with self._errors("listing", None):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": self.page_size}
            ):
                for item in page.get("Contents", []):
                    found.append(BlobInfo(key=item["Key"][len(self.prefix) :], size=int(item["Size"])))
        return sorted(found, key=lambda blob: blob.key)

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing key is a no-op."""
        check_key(key)
        with self._errors("deleting", key):
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (for development endpoints; production buckets are
        usually created by the operator with their own policies)."""
        try:
            with self._errors("checking bucket", None):
                self._client.head_bucket(Bucket=self.bucket)
        except Unavailable as err:
            cause = err.__cause__
            if not isinstance(cause, ClientError) or str(cause.response.get("Error", {}).get("Code")) not in (
                "404",
                "NoSuchBucket",
                "NotFound",
            ):
                raise
            extra: dict[str, Any] = {}
            if self.region != "us-east-1":
                extra["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            with self._errors("creating bucket", None):
                self._client.create_bucket(Bucket=self.bucket, **extra)


if TYPE_CHECKING:

    def _implements_the_port(store: S3ArtifactStore) -> ArtifactStore:
        return store  # mypy checks S3ArtifactStore against the ArtifactStore protocol here
