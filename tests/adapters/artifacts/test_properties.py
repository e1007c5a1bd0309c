"""Properties: accepted keys never leave the folder; the outbox converges to the writes' last state."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lbcloud.adapters.artifacts import FilesystemArtifactStore, OutboxArtifactStore, check_key
from lbcloud.domain.errors import InputError

from .conftest import FlakyRemote

SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), min_size=0, max_size=12)


@given(st.lists(SEGMENT, min_size=1, max_size=5).map("/".join))
def test_any_accepted_key_names_a_file_inside_the_folder(key: str) -> None:
    root = Path("/srv/artifacts")
    try:
        check_key(key)
    except InputError:
        return
    path = FilesystemArtifactStore(root)._path(key)
    assert path.resolve(strict=False).is_relative_to(root)
    assert path.relative_to(root).as_posix() == key


KEYS = st.sampled_from(["s/1/a", "s/1/b", "s/2/c"])
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["put", "delete", "down", "up", "flush"]), KEYS, st.binary(max_size=8)),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(OPERATIONS)
def test_outbox_ends_with_the_same_blobs_as_applying_every_write_in_order(
    operations: list[tuple[str, str, bytes]],
) -> None:
    remote = FlakyRemote()
    expected: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as spool:
        outbox = OutboxArtifactStore(remote, spool, monotonic=lambda: 0.0, min_backoff_s=0, max_backoff_s=0)
        for op, key, data in operations:
            if op == "put":
                outbox.put(key, data)
                expected[key] = data
            elif op == "delete":
                outbox.delete(key)
                expected.pop(key, None)
            elif op == "down":
                remote.down = True
            elif op == "up":
                remote.down = False
            else:
                outbox.flush()
            for k in ("s/1/a", "s/1/b", "s/2/c"):
                if not remote.down:
                    assert outbox.exists(k) == (k in expected)
        remote.down = False
        outbox.flush(force=True)
        assert remote.blobs == expected
        assert outbox.pending() == []
