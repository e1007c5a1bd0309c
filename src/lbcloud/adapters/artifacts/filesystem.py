"""Artifacts in a local folder (the default): one file per key, written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lbcloud.adapters.artifacts.keys import check_key, check_prefix
from lbcloud.domain.errors import NotFound, Unavailable
from lbcloud.services.ports import ArtifactStore, BlobInfo

TEMP_SUFFIX = ".partial"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old content or the new, never a torn file, and
    the new content survives a power cut once this returns (file and folder are fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemArtifactStore:
    """:class:`lbcloud.services.ports.ArtifactStore` in a folder: key ``a/b.json`` is ``<root>/a/b.json``.

    Writes are atomic (temp file + rename). Keys are checked by :func:`check_key`, so none escapes
    the folder. Disk errors raise :class:`Unavailable` naming the path.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"FilesystemArtifactStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        try:
            write_atomically(path, data)
        except OSError as err:
            raise Unavailable(f"cannot write artifact {key} to {path}: {err.strerror or err}") from err

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise NotFound(f"artifact {key} does not exist (in {self.root})") from err
        except OSError as err:
            raise Unavailable(f"cannot read artifact {key} from {path}: {err.strerror or err}") from err

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[BlobInfo]:
        """Blobs whose key starts with ``prefix``, sorted by key."""
        check_prefix(prefix)
        # walk only the deepest folder the prefix names
        folder = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        found: list[BlobInfo] = []
        if not folder.is_dir():
            return found
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue  # temp files of writes in progress
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    with contextlib.suppress(FileNotFoundError):
                        found.append(BlobInfo(key=key, size=path.stat().st_size))
        return sorted(found, key=lambda blob: blob.key)

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing key is a no-op."""
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as err:
            raise Unavailable(f"cannot delete artifact {key} at {path}: {err.strerror or err}") from err


if TYPE_CHECKING:

    def _implements_the_port(store: FilesystemArtifactStore) -> ArtifactStore:
        return store  # mypy checks FilesystemArtifactStore against the ArtifactStore protocol here
