"""The three --agent forms and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.domain.errors import InputError
from lbcloud.tracks.sumo.agent_loader import load_agent_class

from .conftest import AGENTS


def test_a_file_uses_its_entry_point() -> None:
    assert load_agent_class(str(AGENTS / "competent.py")).__name__ == "CompetentAgent"


def test_a_file_with_a_class_name() -> None:
    assert load_agent_class(f"{AGENTS / 'reckless.py'}:RecklessAgent").__name__ == "RecklessAgent"


def test_a_module_with_a_class_name() -> None:
    assert load_agent_class("lbcloud.tracks.sumo.agent_api:AutonomousAgent").__name__ == "AutonomousAgent"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("missing/agent.py", "no such file"),
        ("lbcloud.nowhere:Agent", "cannot import"),
        ("lbcloud.tracks.sumo.agent_api:Nope", "no class"),
        ("just_a_name", "expected"),
    ],
)
def test_bad_references_are_input_errors(reference: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        load_agent_class(reference)


def test_a_file_without_entry_point_asks_for_the_class(tmp_path: Path) -> None:
    path = tmp_path / "agent.py"
    path.write_text("class A:\n    pass\n")
    with pytest.raises(InputError, match="get_entry_point"):
        load_agent_class(str(path))
    assert load_agent_class(f"{path}:A").__name__ == "A"


def test_a_file_that_fails_to_import_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import not_a_module_anywhere\n")
    with pytest.raises(InputError, match="ModuleNotFoundError"):
        load_agent_class(str(path))
