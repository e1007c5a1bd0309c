"""The CLI starts, prints help for every group and reports its version."""

from __future__ import annotations

from typer.testing import CliRunner

from lbcloud import __version__
from lbcloud.entrypoints.cli.main import app


def test_version_prints_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_every_command_group_has_help() -> None:
    runner = CliRunner()
    for group in ["results", "routes", "track", "k8s", "cluster"]:
        result = runner.invoke(app, [group, "--help"])
        assert result.exit_code == 0, (group, result.output)
        assert "Usage" in result.output
