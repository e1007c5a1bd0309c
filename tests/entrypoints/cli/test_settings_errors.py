"""Bad settings and unusable environments: one clear line on stderr and exit 5, never a traceback or 70."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbcloud.domain.errors import ConfigError
from lbcloud.settings import load_settings


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"dispatcher": {"lease_s": 0}}, "dispatcher.lease_s: Input should be greater than 0"),
        ({"dispatcher": {"tick_s": -1}}, "dispatcher.tick_s: Input should be greater than 0"),
        ({"dispatcher": {"lease_s": 0.5, "tick_s": 0.5}}, "must be at least three ticks"),
        ({"dispatcher": {"team_limit": 0}}, "dispatcher.team_limit: Input should be greater than or equal to 1"),
        ({"local": {"slots": 0}}, "local.slots"),
        ({"local": {"port_range": [22000, 21000]}}, "low <= high"),
        ({"local": {"port_range": [80, 90]}}, "1024 <= low"),
        ({"web": {"port": 99999999}}, "web.port: Input should be less than or equal to 65535"),
        (
            {"web": {"operator_token": "same-secret", "team_tokens": {"alpha": "same-secret"}}},
            "team_tokens.alpha: the same token as the operator",
        ),
        (
            {"web": {"team_tokens": {"alpha": "shared-token", "beta": "shared-token"}}},
            "team_tokens.beta: the same token as team alpha",
        ),
    ],
)
def test_settings_cross_checks_refuse_with_the_field_and_the_reason(
    settings: dict[str, Any], says: str, tmp_path: Path
) -> None:
    path = tmp_path / "lbcloud.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert says in str(caught.value)
    assert str(path) in str(caught.value)


def _lbcloud(tmp_path: Path, settings: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "lbcloud.yaml"
    path.write_text(yaml.safe_dump(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBCLOUD_")}
    return subprocess.run(
        [sys.executable, "-m", "lbcloud", "--config", str(path), *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def _one_line_exit_5(done: subprocess.CompletedProcess[str], says: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 5, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_an_out_of_range_web_port_in_the_settings_is_one_line_exit_5(tmp_path: Path) -> None:
    done = _lbcloud(tmp_path, {"data_dir": str(tmp_path / "d"), "web": {"port": 99999999}}, "serve")
    _one_line_exit_5(done, "web.port")


def test_a_data_dir_that_cannot_be_created_is_one_line_exit_5(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _lbcloud(tmp_path, {"data_dir": str(blocker / "data")}, "status")
    _one_line_exit_5(done, f"data_dir {blocker / 'data'}: cannot create it")


def test_a_web_port_already_taken_is_one_line_exit_5(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _lbcloud(tmp_path, {"data_dir": str(tmp_path / "d"), "web": {"port": port}}, "serve")
    _one_line_exit_5(done, f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("local", "standbys"),
    [({"slots": 1}, 1), ({"slots": 2}, 2), ({"slots": 16}, 4), ({"slots": 8, "standby_attempts": 0}, 0)],
)
def test_the_local_backend_keeps_one_standby_per_slot_unless_told(
    tmp_path: Path, local: dict[str, Any], standbys: int
) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "local": local}))
    assert load_settings(path).local.standbys == standbys
