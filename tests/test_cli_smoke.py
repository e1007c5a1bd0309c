"""The CLI starts, prints help for every group and reports its version."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lbcloud import __version__
from lbcloud.entrypoints.cli.main import app


def test_version_prints_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_every_command_group_has_help() -> None:
    runner = CliRunner()
    for group in ["results", "routes", "track", "k8s", "cluster", "reporter", "demo", "serve", "submit", "status"]:
        result = runner.invoke(app, [group, "--help"])
        assert result.exit_code == 0, (group, result.output)
        assert "Usage" in result.output


def test_a_non_zero_typer_exit_becomes_the_process_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from lbcloud.entrypoints.cli import main as cli_main

    fake = typer.Typer()

    @fake.command()
    def fail() -> None:
        raise typer.Exit(3)

    @fake.command()
    def ok() -> None:
        pass

    monkeypatch.setattr(cli_main, "build_app", lambda only=None: fake)
    with pytest.raises(SystemExit) as exited:
        cli_main.main(["fail"])
    assert exited.value.code == 3
    cli_main.main(["ok"])  # a zero exit does not raise


def test_project_errors_print_one_line_and_their_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    from lbcloud.entrypoints.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["results", "show", "/nonexistent/results.json"])
    assert exited.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("error: /nonexistent/results.json") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
