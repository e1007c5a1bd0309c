"""A dict-backed artifact store for the Kubernetes backend and reporting tests."""

from __future__ import annotations

import threading

from lbcloud.domain.errors import NotFound
from lbcloud.services.ports import BlobInfo


class MemoryArtifacts:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with self._lock:
            self.blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        with self._lock:
            if key not in self.blobs:
                raise NotFound(f"artifact {key} not found")
            return self.blobs[key]

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self.blobs

    def list(self, prefix: str) -> list[BlobInfo]:
        with self._lock:
            return [BlobInfo(k, len(v)) for k, v in sorted(self.blobs.items()) if k.startswith(prefix)]

    def delete(self, key: str) -> None:
        with self._lock:
            self.blobs.pop(key, None)
