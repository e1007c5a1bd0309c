"""Artifact keys are relative, dot-free, and the same for every store."""

from __future__ import annotations

import pytest

from lbcloud.adapters.artifacts import check_key
from lbcloud.adapters.artifacts.keys import check_prefix
from lbcloud.domain import artifact_keys
from lbcloud.domain.errors import InputError


@pytest.mark.parametrize(
    "key",
    [
        artifact_keys.route_record_key(7, "12", 1),
        artifact_keys.attempt_log_key(7, 3, "agent"),
        artifact_keys.merged_key(7),
        artifact_keys.evalai_key(7, "results.json"),
        "a",
        "a/b-c_d.e f",
    ],
)
def test_keys_of_the_naming_scheme_are_accepted(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("submissions/../../etc", "'.'"),
        ("submissions/./x", "'.'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\b", "backslash"),
        ("a/\x00", "control"),
        ("a/.hidden", "'.'"),
        ("x" * 1025, "longer"),
    ],
)
def test_unsafe_keys_are_refused_with_the_reason(key: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        check_key(key)


def test_prefixes_may_end_with_a_slash_or_be_empty() -> None:
    assert check_prefix("") == ""
    assert check_prefix("submissions/") == "submissions/"
    assert check_prefix("submissions/1/rou") == "submissions/1/rou"
    with pytest.raises(InputError):
        check_prefix("../")
