"""Agent calls with time limits, in both modes (alarm in the main thread, daemon thread elsewhere)."""

from __future__ import annotations

import sys
import time

import pytest

from lbcloud.tracks.sumo.watchdog import AgentRunner, AgentTimeout


def stuck() -> None:
    while True:
        time.sleep(3600)


def stubborn() -> None:
    """Swallows ordinary exceptions and keeps hanging."""
    while True:
        try:
            time.sleep(3600)
        except Exception:
            continue


def boom() -> None:
    raise ValueError("broken agent")


@pytest.mark.parametrize("use_signals", [True, False])
def test_values_and_exceptions_come_back(use_signals: bool) -> None:
    runner = AgentRunner(use_signals=use_signals)
    assert runner.call(2.0, lambda x: x + 1, 41) == 42
    with pytest.raises(ValueError, match="broken agent"):
        runner.call(2.0, boom)
    assert not runner.hung
    runner.close()


@pytest.mark.parametrize("use_signals", [True, False])
@pytest.mark.parametrize("target", [stuck, stubborn])
def test_a_hung_call_times_out_and_marks_the_runner(use_signals: bool, target: object) -> None:
    runner = AgentRunner(use_signals=use_signals)
    began = time.monotonic()
    with pytest.raises(AgentTimeout):
        runner.call(0.3, target)  # type: ignore[arg-type]
    assert time.monotonic() - began < 5
    assert runner.hung
    with pytest.raises(AgentTimeout):
        runner.call(1.0, lambda: 1)


def test_an_agent_calling_sys_exit_fails_the_call_not_the_evaluator() -> None:
    runner = AgentRunner(use_signals=True)
    with pytest.raises(RuntimeError, match=r"sys\.exit\(3\)"):
        runner.call(1.0, lambda: sys.exit(3))
    assert not runner.hung
