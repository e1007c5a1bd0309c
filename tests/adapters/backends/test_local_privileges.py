"""What an attempt inherits and what it may cost: environment allowlist, capped logs, free-space guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.adapters.backends.local_privileges import (
    AgentPolicy,
    attempt_environment,
    check_free_space,
    read_capped,
)
from lbcloud.domain.errors import Unavailable


def test_the_attempt_environment_keeps_only_harmless_variables() -> None:
    environ = {
        "PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "LBCLOUD_SUMO_CACHE": "/cache",
        "LBCLOUD_WEB__OPERATOR_TOKEN": "op", "LBCLOUD_DATABASE_URL": "postgresql://u:p@h/db",
        "AWS_SECRET_ACCESS_KEY": "k", "AWS_ACCESS_KEY_ID": "i", "KUBECONFIG": "/k", "SUMO_HOME": "/sumo",
        "GITHUB_TOKEN": "t",
    }  # fmt: skip
    env = attempt_environment(environ, {"PYTHONUNBUFFERED": "1"})
    assert env == {
        "PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "LBCLOUD_SUMO_CACHE": "/cache", "SUMO_HOME": "/sumo",
        "PYTHONUNBUFFERED": "1",
    }  # fmt: skip


def test_a_log_under_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    path.write_bytes(b"x" * 100)
    assert read_capped(path, 100) == b"x" * 100


def test_a_log_over_the_limit_is_cut_with_a_marker_saying_how_much(tmp_path: Path) -> None:
    path = tmp_path / "agent.log"
    path.write_bytes(b"a" * 1000 + b"SECRET-TAIL")
    data = read_capped(path, 1000)
    assert data.startswith(b"a" * 1000) and b"SECRET-TAIL" not in data
    assert b"log truncated: 11 of 1011 bytes left out after the first 1000" in data


def test_no_attempt_starts_without_the_free_space_it_needs(tmp_path: Path) -> None:
    check_free_space(tmp_path, 0)
    with pytest.raises(Unavailable, match=r"local\.min_free_mb"):
        check_free_space(tmp_path, 1 << 40)


def test_the_policy_fills_the_evaluator_command_placeholders() -> None:
    values = AgentPolicy(sandbox="bwrap", memory_mb=512, pids=32, cpu_s=60, disk_mb=16, log_limit_bytes=4096)
    assert values.placeholders() == {
        "agent_sandbox": "bwrap", "agent_memory_mb": "512", "agent_pids": "32", "agent_cpu_s": "60",
        "agent_disk_mb": "16", "agent_log_bytes": "4096",
    }  # fmt: skip
