"""`lbcloud results ...` as a user runs it: outputs, exit codes and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lbcloud.domain.errors import InputError, MergeRefused, ResultFileError
from lbcloud.entrypoints.cli.main import main

W = [f"partial_agent_results{k}.json" for k in (1, 2, 3)]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process exactly as the console script does; return (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def lb20(leaderboard_fixtures: Path) -> Path:
    return leaderboard_fixtures / "lb20"


def test_merge_reproduces_official_final_merge(capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path) -> None:
    out = tmp_path / "agent_results.json"
    code, stdout, _ = run(capsys, "results", "merge", *(str(lb20 / w) for w in W), "-o", str(out))
    assert code == 0
    assert out.read_bytes() == (lb20 / "peer_merge" / "M2_final.merged.json").read_bytes()
    assert "merged 10 records of 10 instances (Finished)" in stdout
    assert not list(tmp_path.glob(".*.tmp"))


def test_merge_with_expected_names_the_missing_worker(
    capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path
) -> None:
    out = tmp_path / "agent_results.json"
    inputs = [str(lb20 / W[0]), str(lb20 / W[1]), str(tmp_path / W[2])]
    code, stdout, stderr = run(
        capsys, "results", "merge", *inputs, "-o", str(out), "--expected", "10", "--workers", "3"
    )
    assert code == 0
    merged = json.loads(out.read_text())
    assert merged["_checkpoint"]["progress"] == [7, 10]
    assert merged["entry_status"] == "Started"
    assert f"{W[2]}: missing, skipped" in stderr
    assert (
        "RouteScenario_7_rep0, RouteScenario_8_rep0, RouteScenario_9_rep0 (expected in partial_agent_results3.json)"
        in stderr
    )
    assert "(partial)" in stdout


def test_refused_merge_exits_4_and_leaves_output_untouched(
    capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path
) -> None:
    out = tmp_path / "agent_results.json"
    out.write_text("previous result")
    code, _, stderr = run(capsys, "results", "merge", str(lb20 / W[0]), str(lb20 / W[0]), "-o", str(out))
    assert code == MergeRefused.exit_code == 4
    assert stderr.startswith("error: Stopping. Found that the route RouteScenario_0_rep0 has more than one record")
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert out.read_text() == "previous result"


def test_merge_with_route_file_and_subset(capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path) -> None:
    routes = tmp_path / "routes.xml"
    routes.write_text(
        "<routes>"
        + "".join(f'<route id="{i}" town="Town13"><waypoints/><scenarios/></route>' for i in range(10))
        + "</routes>"
    )
    out = tmp_path / "merged.json"
    args = ["results", "merge", str(lb20 / W[1]), "-o", str(out), "--expected-routes", str(routes), "--subset", "4-6"]
    code, _, _ = run(capsys, *args)
    assert code == 0
    assert out.read_bytes() == (lb20 / W[1]).read_bytes()


def test_score_rescores_under_21(capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path) -> None:
    out = tmp_path / "lb21.json"
    code, _, _ = run(capsys, "results", "score", str(lb20 / W[0]), "--scorer", "lb2.1", "-o", str(out))
    assert code == 0
    rescored = json.loads(out.read_text())
    assert rescored["_checkpoint"]["records"][1]["scores"]["score_penalty"] == 0.468209
    code, stdout, _ = run(capsys, "results", "score", str(lb20 / W[0]), "--scorer", "lb2.0")
    assert code == 0
    assert stdout.encode() == (lb20 / W[0]).read_bytes() + b"\n"


def test_evalai_writes_the_three_official_files(capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path) -> None:
    for case in ("M1_partial", "M2_final"):
        folder = tmp_path / case
        code, _, _ = run(
            capsys, "results", "evalai", str(lb20 / "peer_merge" / f"{case}.merged.json"), "-o", str(folder)
        )
        assert code == 0
        for name in ("results.json", "stdout.txt", "metadata.json"):
            assert (folder / name).read_bytes() == (lb20 / "peer_merge" / f"{case}.evalai" / name).read_bytes()


def test_evalai_without_merged_file_says_no_data(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, "results", "evalai", str(tmp_path / "absent.json"), "-o", str(tmp_path / "ev"))
    assert code == 0
    assert (tmp_path / "ev" / "stdout.txt").read_text().startswith("Initializing the submission, no data")
    assert not (tmp_path / "ev" / "metadata.json").exists()
    assert json.loads((tmp_path / "ev" / "results.json").read_text())[0]["accuracies"]["Driving score"] == 0


def test_show_prints_routes_and_global(capsys: pytest.CaptureFixture[str], lb20: Path) -> None:
    code, stdout, _ = run(capsys, "results", "show", str(lb20 / "peer_merge" / "M2_final.merged.json"))
    assert code == 0
    assert "RouteScenario_9_rep0" in stdout
    assert "46.574533" in stdout


@pytest.fixture(scope="module")
def malformed(leaderboard_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path, str]]:
    """(label, file, expected message fragment) for each kind of bad input; built once (one is 50 MB)."""
    lb20 = leaderboard_fixtures / "lb20"
    tmp_path = tmp_path_factory.mktemp("malformed")
    base = json.loads((lb20 / W[0]).read_text())
    cases: list[tuple[str, Path, str]] = []

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    cases.append(("truncated", write("truncated.json", (lb20 / W[0]).read_text()[:700]), "invalid JSON"))
    doc = json.loads(json.dumps(base))
    del doc["_checkpoint"]["records"][2]["scores"]
    doc["_checkpoint"]["records"][3]["scores"]["score_route"] = "61.2"
    cases.append(("wrong type", write("wrongtype.json", json.dumps(doc)), "_checkpoint.records[3].scores.score_route"))
    doc = json.loads(json.dumps(base))
    del doc["_checkpoint"]["progress"]
    cases.append(("missing key", write("missing.json", json.dumps(doc)), "_checkpoint.progress: missing key"))
    doc = json.loads(json.dumps(base))
    doc["_checkpoint"]["records"][0]["route_id"] = "RouteScenario_zero_rep0"
    cases.append(("non-integer id", write("badid.json", json.dumps(doc)), "_checkpoint.records[0].route_id"))
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.write(b'{"_checkpoint": {"records": [' + b'{"route_id": 1}, ' * (50 * 1024 * 1024 // 17))
    cases.append(("50 MB", big, "invalid JSON"))
    directory = tmp_path / "adir"
    directory.mkdir()
    cases.append(("directory", directory, "is a directory"))
    return cases


@pytest.mark.parametrize("command", ["show", "merge", "score", "evalai"])
def test_malformed_input_gives_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path, command: str, malformed: list[tuple[str, Path, str]]
) -> None:
    for label, path, fragment in malformed:
        if label == "50 MB" and command != "show":
            continue  # parsing 50 MB takes seconds; once through the CLI is enough
        args = {
            "show": ["results", "show", str(path)],
            "merge": ["results", "merge", str(lb20 / W[1]), str(path), "-o", str(tmp_path / "out.json")],
            "score": ["results", "score", str(path), "--scorer", "lb2.1"],
            "evalai": ["results", "evalai", str(path), "-o", str(tmp_path / "ev")],
        }[command]
        code, _, stderr = run(capsys, *args)
        assert code == ResultFileError.exit_code == 3, (label, stderr)
        assert stderr.startswith(f"error: {path}: "), (label, stderr)
        assert fragment in stderr, (label, stderr)
        assert stderr.count("\n") == 1 and "Traceback" not in stderr, label
    assert not (tmp_path / "out.json").exists()


def test_unknown_status_is_kept_not_an_error(capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path) -> None:
    doc = json.loads((lb20 / W[0]).read_text())
    doc["_checkpoint"]["records"][2]["status"] = "Failed - TickRuntime"
    path = tmp_path / "w1.json"
    path.write_text(json.dumps(doc, indent=4))
    out = tmp_path / "out.json"
    code, _, _ = run(capsys, "results", "merge", str(path), "-o", str(out))
    assert code == 0
    merged = json.loads(out.read_text())
    assert merged["_checkpoint"]["records"][2]["status"] == "Failed - TickRuntime"
    assert ["RouteScenario_2_rep0", 2, "Failed - TickRuntime"] in merged["_checkpoint"]["global_record"]["meta"][
        "exceptions"
    ]


def test_bad_options_are_input_errors(capsys: pytest.CaptureFixture[str], lb20: Path, tmp_path: Path) -> None:
    args = ["results", "merge", str(lb20 / W[0]), "-o", str(tmp_path / "o.json"), "--subset", "0-3"]
    code, _, stderr = run(capsys, *args)
    assert code == InputError.exit_code == 2
    assert stderr == "error: --subset needs --expected-routes\n"


def test_debug_shows_the_traceback(lb20: Path, tmp_path: Path) -> None:
    with pytest.raises(ResultFileError):
        main(["--debug", "results", "show", str(tmp_path)])


def test_console_script_reports_errors_in_one_line(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "lbcloud"
    if not exe.exists():
        found = shutil.which("lbcloud")
        if found is None:
            pytest.skip("the lbcloud console script is not installed in this environment")
        exe = Path(found)
    bad = tmp_path / "bad.json"
    bad.write_text('{"_checkpoint": ')
    done = subprocess.run([str(exe), "results", "show", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 3
    assert done.stderr.startswith(f"error: {bad}: line 1 column 17: invalid JSON")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("command", ["merge", "score", "evalai", "show"])
def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, stdout, _ = run(capsys, "results", command, "--help")
    assert code == 0
    assert "Example:" in stdout and f"lbcloud results {command}" in stdout
