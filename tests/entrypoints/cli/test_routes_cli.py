"""`lbcloud routes info|split`: route tables, the integer split and official subset errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbcloud.entrypoints.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def routes_xml(tmp_path: Path) -> Path:
    path = tmp_path / "routes.xml"
    body = "".join(
        f'<route id="{i}" town="Town13"><waypoints><position x="0" y="0" z="0"/>'
        f'<position x="{3 * (i + 1)}" y="{4 * (i + 1)}" z="0"/></waypoints><scenarios/></route>'
        for i in range(25)
    )
    path.write_text(f"<routes>{body}</routes>")
    return path


def test_info_lists_routes_with_lengths(capsys: pytest.CaptureFixture[str], routes_xml: Path) -> None:
    code, stdout, _ = run(capsys, "routes", "info", str(routes_xml), "--subset", "0-2")
    assert code == 0
    assert "3 routes, 0.030 km along the keypoints" in stdout
    assert "15.000" in stdout


def test_split_prints_one_subset_per_worker(capsys: pytest.CaptureFixture[str], routes_xml: Path) -> None:
    code, stdout, _ = run(capsys, "routes", "split", str(routes_xml), "--workers", "11", "--reference")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == "partial_agent_results1.json 0-2 (3 routes)"
    assert lines[10] == "partial_agent_results11.json 23-24 (2 routes)"
    assert "reference worker 11: positions 23-25 (ends at position 25, past the last route" in stdout


def test_split_of_a_subset(capsys: pytest.CaptureFixture[str], routes_xml: Path) -> None:
    code, stdout, _ = run(capsys, "routes", "split", str(routes_xml), "--workers", "3", "--subset", "0-9")
    assert code == 0
    assert stdout.splitlines() == [
        "partial_agent_results1.json 0-3 (4 routes)",
        "partial_agent_results2.json 4-6 (3 routes)",
        "partial_agent_results3.json 7-9 (3 routes)",
    ]


def test_subset_errors_are_official_texts_with_exit_2(capsys: pytest.CaptureFixture[str], routes_xml: Path) -> None:
    code, _, stderr = run(capsys, "routes", "info", str(routes_xml), "--subset", "9-3")
    assert code == 2
    assert stderr == "error: Malformed route subset '9-3', found the end id before the starting one\n"
    code, _, stderr = run(capsys, "routes", "split", str(routes_xml), "-w", "2", "--subset", "30")
    assert code == 2
    assert stderr == "error: Couldn't find the route with id '30' inside the given routes file\n"


def test_bad_route_files_give_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<routes><route id='x'/></routes>")
    for path in (bad, tmp_path, tmp_path / "absent.xml"):
        code, _, stderr = run(capsys, "routes", "info", str(path))
        assert code == 2, stderr
        assert stderr.startswith(f"error: {path}: ") and stderr.count("\n") == 1


@pytest.mark.parametrize("command", ["info", "split"])
def test_help_has_an_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, stdout, _ = run(capsys, "routes", command, "--help")
    assert code == 0 and f"Example:  lbcloud routes {command}" in stdout
