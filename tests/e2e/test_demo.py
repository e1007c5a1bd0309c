"""`lbcloud demo` as the README runs it: every sample agent evaluated, the competent one ranked first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lbcloud.entrypoints.wiring import build_system
from lbcloud.settings import load_settings

pytestmark = [pytest.mark.sumo, pytest.mark.slow]


def test_demo_ranks_the_competent_agent_first_and_attributes_the_failures(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "lbcloud", "demo", "--data-dir", str(data), "--slots", "2"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Leaderboard — sumo-test" in result.stdout and "Attributed failures" in result.stdout
    system = build_system(load_settings(None, data_dir=str(data)))
    board = system.store.leaderboard("sumo-test")
    assert board[0][0].team == "Competent Cars"
    assert {sub.team for sub, _ in board} == {"Competent Cars", "Slow but Steady", "Reckless Racers"}
    reckless = next(merged for sub, merged in board if sub.team == "Reckless Racers")
    assert reckless.driving_score is not None and reckless.driving_score < 50
    failed = {s.team: s.reason or "" for s in system.store.list_submissions() if s.status.value == "failed"}
    assert set(failed) == {"Setup Stumblers", "Crash Test Dummies", "Hang Gliders"}
    assert "couldn't be set up" in failed["Setup Stumblers"]
    assert all("smoke route" in reason for reason in failed.values())
    for team in failed:
        assert team in result.stdout, "the failing teams are shown with their reasons"
    system.close()
