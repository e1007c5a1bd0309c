"""The real command runner (subprocess) and the printing wrappers."""

from __future__ import annotations

import sys

from lbcloud.cluster.runner import (
    NOT_FOUND,
    TIMED_OUT,
    CommandResult,
    EchoingRunner,
    PrintOnlyRunner,
    SubprocessRunner,
    format_command,
)
from tests.cluster.fakes import FakeRunner


def test_captures_output_exit_code_and_stdin() -> None:
    runner = SubprocessRunner()
    result = runner.run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); sys.exit(3)"], stdin="abc")
    assert result.returncode == 3
    assert result.stdout.strip() == "ABC"
    assert not result.ok


def test_a_missing_program_is_exit_127_not_an_exception() -> None:
    result = SubprocessRunner().run(["lbcloud-no-such-program", "--help"])
    assert result.returncode == NOT_FOUND
    assert "not found on PATH" in result.last_error_line()


def test_streaming_shows_lines_as_they_come_and_keeps_them() -> None:
    seen: list[str] = []
    runner = SubprocessRunner(on_output=seen.append)
    code = "import sys; print('one'); print('two', file=sys.stderr); sys.stdout.flush()"
    result = runner.run([sys.executable, "-c", code], stream=True)
    assert result.ok
    assert sorted(seen) == ["one", "two"]
    assert "one" in result.stdout and "two" in result.stdout


def test_timeout_is_exit_124() -> None:
    result = SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.2)
    assert result.returncode == TIMED_OUT
    assert "timed out" in result.stderr


def test_echoing_runner_prints_the_command_before_it_runs_and_never_stdin() -> None:
    printed: list[str] = []
    fake = FakeRunner()

    def echo(line: str) -> None:
        printed.append(f"{line} (after {len(fake.calls)} calls)")

    EchoingRunner(fake, echo).run(["kubectl", "apply", "-f", "my file.yaml"], stdin="SECRET-VALUE")
    assert printed == ["    $ kubectl apply -f 'my file.yaml' (after 0 calls)"]
    assert fake.calls[0].stdin == "SECRET-VALUE"


def test_print_only_runner_runs_nothing() -> None:
    printed: list[str] = []
    result = PrintOnlyRunner(printed.append).run(["eksctl", "delete", "cluster", "--name", "x"])
    assert result == CommandResult(("eksctl", "delete", "cluster", "--name", "x"), 0)
    assert printed == ["    $ eksctl delete cluster --name x"]


def test_last_error_line_prefers_stderr() -> None:
    result = CommandResult(("x",), 1, "out\n", "warning\nError: boom\n\n")
    assert result.last_error_line() == "Error: boom"
    assert CommandResult(("x",), 2).last_error_line() == "exit code 2"
    assert format_command(["a", "b c"]) == "a 'b c'"
