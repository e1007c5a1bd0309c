"""Artifact stores for service tests: the real folder store."""

from __future__ import annotations

from pathlib import Path

from lbcloud.adapters.artifacts.filesystem import FilesystemArtifactStore
from lbcloud.services.ports import ArtifactStore


def folder_artifacts(root: Path) -> ArtifactStore:
    return FilesystemArtifactStore(root)
