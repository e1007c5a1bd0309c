"""The folder artifact store: round trips, atomic writes, listing, deletion, safe keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lbcloud.adapters.artifacts import FilesystemArtifactStore, OutboxArtifactStore, open_artifact_store
from lbcloud.domain.errors import InputError, NotFound, Unavailable
from lbcloud.services.ports import BlobInfo


@pytest.fixture
def store(tmp_path: Path) -> FilesystemArtifactStore:
    return FilesystemArtifactStore(tmp_path / "artifacts")


def test_put_then_get_returns_the_bytes_and_overwrite_replaces_them(store: FilesystemArtifactStore) -> None:
    store.put("submissions/1/merged.json", b'{"a": 1}', "application/json")
    assert store.get("submissions/1/merged.json") == b'{"a": 1}'
    store.put("submissions/1/merged.json", b"{}")
    assert store.get("submissions/1/merged.json") == b"{}"
    assert (store.root / "submissions" / "1" / "merged.json").read_bytes() == b"{}"


def test_missing_key_raises_not_found_and_does_not_exist(store: FilesystemArtifactStore) -> None:
    with pytest.raises(NotFound, match=r"submissions/9/merged\.json"):
        store.get("submissions/9/merged.json")
    assert not store.exists("submissions/9/merged.json")
    store.put("submissions/9/routes/r.json", b"x")
    assert store.exists("submissions/9/routes/r.json")
    with pytest.raises(NotFound):
        store.get("submissions/9/routes")  # a folder is not a blob
    assert not store.exists("submissions/9/routes")


def test_writes_leave_no_temporary_files(store: FilesystemArtifactStore) -> None:
    for i in range(5):
        store.put("submissions/1/attempts/1/agent.log", b"line\n" * i)
    assert os.listdir(store.root / "submissions" / "1" / "attempts" / "1") == ["agent.log"]


def test_list_returns_blobs_under_the_prefix_sorted_without_temp_files(store: FilesystemArtifactStore) -> None:
    store.put("submissions/1/routes/b.json", b"12")
    store.put("submissions/1/routes/a.json", b"1")
    store.put("submissions/1/merged.json", b"123")
    store.put("submissions/10/merged.json", b"1234")
    (store.root / "submissions" / "1" / "routes" / ".a.json.x.partial").write_bytes(b"half")

    assert store.list("submissions/1/routes/") == [
        BlobInfo("submissions/1/routes/a.json", 1),
        BlobInfo("submissions/1/routes/b.json", 2),
    ]
    assert [b.key for b in store.list("submissions/1/")] == [
        "submissions/1/merged.json",
        "submissions/1/routes/a.json",
        "submissions/1/routes/b.json",
    ]
    assert [b.key for b in store.list("submissions/1")] == [
        "submissions/1/merged.json",
        "submissions/1/routes/a.json",
        "submissions/1/routes/b.json",
        "submissions/10/merged.json",
    ]
    assert len(store.list("")) == 4
    assert store.list("nothing/here/") == []


def test_delete_removes_the_blob_and_is_idempotent(store: FilesystemArtifactStore) -> None:
    store.put("submissions/1/manifest.json", b"{}")
    store.delete("submissions/1/manifest.json")
    store.delete("submissions/1/manifest.json")
    assert not store.exists("submissions/1/manifest.json")


def test_keys_cannot_escape_the_folder(store: FilesystemArtifactStore, tmp_path: Path) -> None:
    for key in ("../outside", "/etc/passwd", "submissions/../../outside"):
        with pytest.raises(InputError):
            store.put(key, b"x")
    assert not (tmp_path / "outside").exists()


def test_unwritable_folder_raises_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(Unavailable, match=r"submissions/1/merged\.json"):
        FilesystemArtifactStore(blocker).put("submissions/1/merged.json", b"x")


def test_factory_opens_a_folder_for_plain_paths_and_file_urls(tmp_path: Path) -> None:
    plain = open_artifact_store(str(tmp_path / "a"))
    url = open_artifact_store(f"file://{tmp_path / 'b'}", spool_dir=tmp_path / "spool")
    assert isinstance(plain, FilesystemArtifactStore) and plain.root == tmp_path / "a"
    assert isinstance(url, FilesystemArtifactStore) and url.root == tmp_path / "b"
    assert not isinstance(url, OutboxArtifactStore)
