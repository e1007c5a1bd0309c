"""An outbox in front of a remote artifact store: nothing acknowledged is lost while it is down.

``put`` and ``delete`` first write an entry durably to a local spool folder, then upload every
spooled entry in order. When the remote store is unavailable the entries stay spooled and
:meth:`OutboxArtifactStore.flush` (called periodically by the dispatcher) retries them, oldest
first, with exponential backoff between failed rounds. Reads see spooled entries before the remote
store, so a blob written during an outage can be read back at once.

Spool layout: ``<spool>/pending/<sequence>.entry`` — one JSON header line (operation, key, content
type, size, sha256) followed by the blob. One spool folder may be shared by several processes:
flushes are serialised with a file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lbcloud.adapters.artifacts.filesystem import write_atomically
from lbcloud.adapters.artifacts.keys import check_key, check_prefix
from lbcloud.domain.errors import LbcloudError, NotFound, Unavailable
from lbcloud.services.ports import ArtifactStore, BlobInfo

log = logging.getLogger(__name__)

PUT = "put"
DELETE = "delete"
ENTRY_SUFFIX = ".entry"


@dataclass(frozen=True, slots=True)
class SpooledEntry:
    """One operation waiting for the remote store."""

    path: Path
    op: str
    key: str
    content_type: str
    size: int
    sha256: str

    def read_blob(self) -> bytes:
        with self.path.open("rb") as handle:
            handle.readline()
            data = handle.read()
        if len(data) != self.size or hashlib.sha256(data).hexdigest() != self.sha256:
            raise ValueError(f"spooled blob {self.path.name} for {self.key} is damaged")
        return data


class OutboxArtifactStore:
    """:class:`lbcloud.services.ports.ArtifactStore` that spools writes locally until ``remote``
    accepts them (see the module docstring). Thread-safe."""

    def __init__(
        self,
        remote: ArtifactStore,
        spool_dir: str | Path,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
    ) -> None:
        self.remote = remote
        self.spool_dir = Path(spool_dir).expanduser().resolve()
        self._pending = self.spool_dir / "pending"
        self._damaged = self.spool_dir / "damaged"
        self._pending.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.spool_dir / "flush.lock"
        self._monotonic = monotonic
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._failures = 0
        self._next_try = 0.0
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        self._last_ns = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"OutboxArtifactStore({self.remote!r}, spool={str(self.spool_dir)!r})"

    # writes -------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Durably spool the blob, then try to upload the spool. Returns once the blob is safe on
        local disk, even if the remote store is down (raises :class:`Unavailable` only when the
        local spool itself cannot be written)."""
        self._spool(PUT, check_key(key), data, content_type)
        self.flush()

    def delete(self, key: str) -> None:
        """Spool a deletion (applied after every earlier spooled write), then try to flush."""
        self._spool(DELETE, check_key(key), b"", "")
        self.flush()

    def _entry_name(self) -> str:
        with self._lock:
            now = max(time.time_ns(), self._last_ns + 1)
            self._last_ns = now
            return f"{now:020d}-{os.getpid():07d}-{next(self._sequence):06d}{ENTRY_SUFFIX}"

    def _spool(self, op: str, key: str, data: bytes, content_type: str) -> None:
        header = {
            "op": op,
            "key": key,
            "content_type": content_type,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        path = self._pending / self._entry_name()
        try:
            write_atomically(path, json.dumps(header).encode() + b"\n" + data)
        except OSError as err:
            raise Unavailable(f"cannot spool artifact {key} to {self._pending}: {err.strerror or err}") from err

    # flushing -----------------------------------------------------------------------------------
    def entries(self) -> list[SpooledEntry]:
        """Spooled operations, oldest first."""
        found = []
        for path in sorted(self._pending.glob(f"*{ENTRY_SUFFIX}")):
            entry = self._read_header(path)
            if entry is not None:
                found.append(entry)
        return found

    def pending(self) -> list[str]:
        """Keys with spooled operations, oldest first (for status pages and metrics)."""
        return [entry.key for entry in self.entries()]

    def _read_header(self, path: Path) -> SpooledEntry | None:
        try:
            with path.open("rb") as handle:
                header = json.loads(handle.readline())
            return SpooledEntry(
                path=path,
                op=str(header["op"]),
                key=str(header["key"]),
                content_type=str(header["content_type"]),
                size=int(header["size"]),
                sha256=str(header["sha256"]),
            )
        except FileNotFoundError:
            return None  # flushed meanwhile by another thread or process
        except (ValueError, KeyError, TypeError) as err:
            self._set_aside(path, f"unreadable header: {err}")
            return None

    def _set_aside(self, path: Path, why: str) -> None:
        log.error("artifact outbox: moving damaged entry %s aside: %s", path.name, why)
        self._damaged.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            shutil.move(str(path), self._damaged / path.name)

    @contextlib.contextmanager
    def _flush_lock(self) -> Iterator[None]:
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def flush(self, *, force: bool = False) -> int:
        """Upload spooled entries in order until the spool is empty or the remote store fails.

        Returns how many entries were applied. After a failure, rounds are skipped until a backoff
        (doubling from ``min_backoff_s`` to ``max_backoff_s``) has passed, unless ``force``. Never
        raises :class:`Unavailable` for the remote store: the entries simply stay spooled.
        """
        if not force and self._monotonic() < self._next_try:
            return 0
        applied = 0
        with self._flush_lock():
            while True:
                batch = self.entries()
                if not batch:
                    break
                for entry in batch:
                    try:
                        self._apply(entry)
                    except Unavailable as err:
                        self._failed(err, len(batch) - batch.index(entry))
                        return applied
                    except (LbcloudError, ValueError) as err:
                        self._set_aside(entry.path, str(err))
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        entry.path.unlink()
                    applied += 1
        if self._failures:
            log.info("artifact outbox: remote store %r is back; spool flushed", self.remote)
        self._failures = 0
        self._next_try = 0.0
        self.last_error = None
        return applied

    def _apply(self, entry: SpooledEntry) -> None:
        if entry.op == PUT:
            self.remote.put(entry.key, entry.read_blob(), entry.content_type)
        elif entry.op == DELETE:
            self.remote.delete(entry.key)
        else:
            raise ValueError(f"unknown spooled operation {entry.op!r}")

    def _failed(self, err: Unavailable, waiting: int) -> None:
        self._failures += 1
        backoff = min(self._max_backoff_s, self._min_backoff_s * 2 ** (self._failures - 1))
        self._next_try = self._monotonic() + backoff
        self.last_error = str(err)
        log.warning("artifact outbox: %d entries wait for the remote store (retry in %.0fs): %s", waiting, backoff, err)

    # reads --------------------------------------------------------------------------------------
    def _latest(self, key: str) -> SpooledEntry | None:
        latest = None
        for entry in self.entries():
            if entry.key == key:
                latest = entry
        return latest

    def get(self, key: str) -> bytes:
        entry = self._latest(check_key(key))
        if entry is None:
            return self.remote.get(key)
        if entry.op == DELETE:
            raise NotFound(f"artifact {key} does not exist (deleted)")
        try:
            return entry.read_blob()
        except FileNotFoundError:
            return self.remote.get(key)  # uploaded while we were reading it

    def exists(self, key: str) -> bool:
        entry = self._latest(check_key(key))
        if entry is None:
            return self.remote.exists(key)
        return entry.op == PUT

    def list(self, prefix: str) -> list[BlobInfo]:
        """The remote listing with spooled writes and deletions applied (raises :class:`Unavailable`
        when the remote store cannot list)."""
        check_prefix(prefix)
        entries = [e for e in self.entries() if e.key.startswith(prefix)]
        blobs = {blob.key: blob for blob in self.remote.list(prefix)}
        for entry in entries:
            if entry.op == PUT:
                blobs[entry.key] = BlobInfo(key=entry.key, size=entry.size)
            else:
                blobs.pop(entry.key, None)
        return sorted(blobs.values(), key=lambda blob: blob.key)


if TYPE_CHECKING:

    def _implements_the_port(store: OutboxArtifactStore) -> ArtifactStore:
        return store  # mypy checks OutboxArtifactStore against the ArtifactStore protocol here
