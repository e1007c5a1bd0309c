"""Artifact stores: a local folder (default), any S3-compatible store, and an outbox wrapper."""

from lbcloud.adapters.artifacts.factory import ArtifactOptions, open_artifact_store
from lbcloud.adapters.artifacts.filesystem import FilesystemArtifactStore
from lbcloud.adapters.artifacts.keys import check_key
from lbcloud.adapters.artifacts.outbox import OutboxArtifactStore
from lbcloud.adapters.artifacts.s3 import S3ArtifactStore, parse_s3_url

__all__ = [
    "ArtifactOptions",
    "FilesystemArtifactStore",
    "OutboxArtifactStore",
    "S3ArtifactStore",
    "check_key",
    "open_artifact_store",
    "parse_s3_url",
]
