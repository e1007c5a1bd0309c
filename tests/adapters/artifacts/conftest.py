"""An in-memory remote store that can be made unreachable, to test the outbox deterministically."""

from __future__ import annotations

import pytest

from lbcloud.domain.errors import NotFound, Unavailable
from lbcloud.services.ports import BlobInfo


class FlakyRemote:
    """An ArtifactStore in memory; while ``down`` every call raises :class:`Unavailable`."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.down = False
        self.calls: list[tuple[str, str]] = []

    def _check(self, op: str, key: str) -> None:
        if self.down:
            raise Unavailable(f"remote down while {op} {key}")
        self.calls.append((op, key))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._check("put", key)
        self.blobs[key] = data
        self.content_types[key] = content_type

    def get(self, key: str) -> bytes:
        self._check("get", key)
        if key not in self.blobs:
            raise NotFound(key)
        return self.blobs[key]

    def exists(self, key: str) -> bool:
        self._check("exists", key)
        return key in self.blobs

    def list(self, prefix: str) -> list[BlobInfo]:
        self._check("list", prefix)
        return sorted((BlobInfo(k, len(v)) for k, v in self.blobs.items() if k.startswith(prefix)), key=lambda b: b.key)

    def delete(self, key: str) -> None:
        self._check("delete", key)
        self.blobs.pop(key, None)


@pytest.fixture
def remote() -> FlakyRemote:
    return FlakyRemote()
