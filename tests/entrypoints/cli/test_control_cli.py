"""The control-plane commands as a user runs them: submit, status, cancel, resume, logs, leaderboard, serve."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lbcloud.entrypoints.cli.main import build_app
from lbcloud.entrypoints.wiring import build_system
from lbcloud.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
COMPETENT = REPO / "examples" / "agents" / "competent.py"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "lbcloud.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    return path


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["--config", str(config), *args])
    return result.exit_code, result.output


def test_submit_records_a_submission_and_status_shows_it(config: Path) -> None:
    code, out = run(config, "submit", "--track", "sumo-test", "--team", "alpha", "--agent", str(COMPETENT))
    assert code == 0, out
    assert "submission 1 recorded for team alpha on sumo-test" in out
    code, out = run(config, "status")
    assert code == 0 and "alpha" in out and "submitted" in out
    code, out = run(config, "status", "1")
    assert code == 0 and "1 (alpha on sumo-test)" in out and "submitted" in out


def test_submit_refuses_bad_input_with_one_clear_error(config: Path) -> None:
    from lbcloud.domain.errors import InputError

    result = CliRunner().invoke(
        build_app(),
        ["--config", str(config), "submit", "--track", "sumo-test", "--team", "a;b", "--agent", str(COMPETENT)],
    )
    assert isinstance(result.exception, InputError) and "team name" in str(result.exception)
    result = CliRunner().invoke(
        build_app(),
        ["--config", str(config), "submit", "--track", "nope", "--team", "alpha", "--agent", str(COMPETENT)],
    )
    assert isinstance(result.exception, InputError) and "unknown track 'nope'" in str(result.exception)
    result = CliRunner().invoke(build_app(), ["--config", str(config), "submit", "--track", "sumo-test", "--team", "x"])
    assert isinstance(result.exception, InputError) and "exactly one of --agent" in str(result.exception)


def test_cancel_then_resume_changes_the_status(config: Path) -> None:
    run(config, "submit", "--track", "sumo-dev", "--team", "alpha", "--agent", str(COMPETENT))
    code, out = run(config, "cancel", "1", "--reason", "testing")
    assert code == 0 and "is cancelled" in out
    code, out = run(config, "resume", "1")
    assert code == 0 and "is resuming" in out
    system = build_system(load_settings(config))
    assert [c.to_status.value for c in system.store.history(1)][-2:] == ["cancelled", "resuming"]


def test_leaderboard_of_an_unknown_track_is_an_input_error(config: Path) -> None:
    from lbcloud.domain.errors import InputError

    code, out = run(config, "leaderboard", "--track", "sumo-test")
    assert code == 0 and "Leaderboard" in out
    result = CliRunner().invoke(build_app(), ["--config", str(config), "leaderboard", "--track", "nope"])
    assert isinstance(result.exception, InputError)


def test_logs_of_a_missing_route_name_it(config: Path) -> None:
    from lbcloud.domain.errors import NotFound

    run(config, "submit", "--track", "sumo-dev", "--team", "alpha", "--agent", str(COMPETENT))
    result = CliRunner().invoke(build_app(), ["--config", str(config), "logs", "1", "--route", "42"])
    assert isinstance(result.exception, NotFound) and "no route '42'" in str(result.exception)


def test_serve_refuses_a_public_address_without_an_operator_token(config: Path) -> None:
    from lbcloud.domain.errors import ConfigError

    result = CliRunner().invoke(build_app(), ["--config", str(config), "serve", "--host", "0.0.0.0"])
    assert isinstance(result.exception, ConfigError) and "operator_token" in str(result.exception)


def test_rerun_cancels_an_active_original_and_creates_a_fresh_submission(config: Path) -> None:
    run(config, "submit", "--track", "sumo-dev", "--team", "alpha", "--agent", str(COMPETENT))
    code, out = run(config, "rerun", "1")
    assert code == 0 and "re-run as submission 2" in out
    system = build_system(load_settings(config))
    assert system.store.get_submission(1).status.value == "cancelled"
    again = system.store.get_submission(2)
    assert again.status.value == "submitted" and again.agent == system.store.get_submission(1).agent
    assert any(e.kind == "rerun" for e in system.store.events(submission_id=2))
