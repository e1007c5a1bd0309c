"""Build the configured artifact store from settings values."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lbcloud.adapters.artifacts.filesystem import FilesystemArtifactStore
from lbcloud.adapters.artifacts.outbox import OutboxArtifactStore
from lbcloud.adapters.artifacts.s3 import S3ArtifactStore, parse_s3_url
from lbcloud.services.ports import ArtifactStore


class ArtifactOptions(Protocol):
    """The S3 and spool options of :class:`lbcloud.settings.ArtifactSettings` (matched by shape)."""

    @property
    def s3_endpoint_url(self) -> str | None: ...

    @property
    def s3_region(self) -> str: ...

    @property
    def s3_access_key_id(self) -> str | None: ...

    @property
    def s3_secret_access_key(self) -> str | None: ...

    @property
    def spool_dir(self) -> str | None: ...


def open_artifact_store(
    url: str, options: ArtifactOptions | None = None, *, spool_dir: str | Path | None = None
) -> ArtifactStore:
    """The artifact store at ``url``: a folder path (or ``file://`` URL), or ``s3://bucket/prefix``.

    S3 uses ``options`` for endpoint, region and keys. When a spool folder is given (``spool_dir``,
    else ``options.spool_dir``) the S3 store is wrapped in an :class:`OutboxArtifactStore`, so writes
    survive an unreachable object store. A folder store needs no outbox.

    Raises :class:`lbcloud.domain.errors.ConfigError` for a malformed ``s3://`` URL.
    """
    if not url.startswith("s3://"):
        return FilesystemArtifactStore(url.removeprefix("file://"))
    bucket, prefix = parse_s3_url(url)
    remote = S3ArtifactStore(
        bucket,
        prefix,
        endpoint_url=options.s3_endpoint_url if options else None,
        region=options.s3_region if options else "us-east-1",
        access_key_id=options.s3_access_key_id if options else None,
        secret_access_key=options.s3_secret_access_key if options else None,
    )
    spool = spool_dir if spool_dir is not None else (options.spool_dir if options else None)
    if spool is None:
        return remote
    return OutboxArtifactStore(remote, spool)
