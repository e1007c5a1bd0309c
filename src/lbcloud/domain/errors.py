"""The project's own error hierarchy.

Every boundary (files, CLI input, stores, HTTP, Kubernetes) translates library errors into one of
these, with enough context (which file, which JSON path, which submission) for a one-line message.
The CLI maps each class to a documented exit code (see ``docs/cli.md``).
"""

from __future__ import annotations


class LbcloudError(Exception):
    """Base of every error lbcloud reports to a person. ``str(err)`` is the one-line message."""

    exit_code: int = 1


class InputError(LbcloudError):
    """Input given by a person or a file is malformed: a clear message, nothing was changed."""

    exit_code = 2


class ResultFileError(InputError):
    """A leaderboard result file cannot be read: names the file and the JSON path."""

    exit_code = 3

    def __init__(self, source: str, json_path: str, problem: str) -> None:
        self.source = source
        self.json_path = json_path
        self.problem = problem
        super().__init__(f"{source}: {json_path}: {problem}")


class MergeRefused(LbcloudError):
    """The merge found genuinely inconsistent input (duplicates, gaps, differing sensors)."""

    exit_code = 4


class ConfigError(InputError):
    """The settings or a spec file are invalid."""

    exit_code = 5


class NotFound(LbcloudError):
    """A named thing (submission, track, route, attempt) does not exist."""

    exit_code = 6


class Conflict(LbcloudError):
    """The request conflicts with the current state (e.g. a duplicate submission, illegal transition)."""

    exit_code = 7


class Unavailable(LbcloudError):
    """A service lbcloud depends on (database, object store, EvalAI, Kubernetes) is unreachable."""

    exit_code = 8
