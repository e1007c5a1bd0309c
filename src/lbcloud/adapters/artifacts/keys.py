"""Artifact keys: ``/``-separated relative names, checked the same way by every artifact store."""

from __future__ import annotations

from lbcloud.domain.errors import InputError

MAX_KEY_LENGTH = 1024


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe artifact key, else raise :class:`InputError` saying why.

    A key is 1-1024 characters of ``/``-separated segments; no segment is empty or starts with a
    dot (so no ``..``, no hidden files), and there are no backslashes or control characters. The
    same key therefore names the same blob in a folder and in an S3 bucket, and never escapes the
    folder.
    """
    if not key:
        raise InputError("artifact key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InputError(f"artifact key is longer than {MAX_KEY_LENGTH} characters: {key[:80]!r}...")
    if key.startswith("/"):
        raise InputError(f"artifact key {key!r} is absolute; keys are relative (submissions/<id>/...)")
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise InputError(f"artifact key {key!r} contains a backslash or a control character")
    for segment in key.split("/"):
        if not segment:
            raise InputError(f"artifact key {key!r} has an empty segment")
        if segment.startswith("."):
            raise InputError(f"artifact key {key!r} has a segment starting with '.' ({segment!r})")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it may start keys (``""``, ``"a/"``, ``"a/b"``), else raise :class:`InputError`."""
    if prefix == "":
        return prefix
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix
