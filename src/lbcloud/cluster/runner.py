"""The one way lbcloud runs external commands (packer, aws, eksctl, kubectl).

Everything in ``lbcloud.cluster`` that runs a program goes through a :class:`CommandRunner`; the real
one is :class:`SubprocessRunner`, tests pass a recording fake. :class:`EchoingRunner` prints every
command before it runs, so an operator always sees what is being done on their behalf.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

NOT_FOUND = 127
TIMED_OUT = 124


@dataclass(frozen=True, slots=True)
class CommandResult:
    """How a command ended: exit code and its captured output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def last_error_line(self) -> str:
        """The last non-empty line of stderr (else stdout): usually the one that says what went wrong."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit code {self.returncode}"


class CommandRunner(Protocol):
    """Runs one external command to completion.

    ``stdin`` is fed to the command; ``stream`` asks for its output to be shown live (long builds);
    a missing program yields exit code 127 rather than an exception.
    """

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, stream: bool = False, timeout: float | None = None
    ) -> CommandResult: ...


def format_command(argv: Sequence[str]) -> str:
    """The command as a shell line an operator could copy."""
    return shlex.join(argv)


class SubprocessRunner:
    """Runs commands with :mod:`subprocess`; streamed output goes line by line to ``on_output``."""

    def __init__(self, on_output: Callable[[str], None] | None = None, env: Mapping[str, str] | None = None) -> None:
        self._on_output = on_output
        self._env = dict(env) if env is not None else None

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, stream: bool = False, timeout: float | None = None
    ) -> CommandResult:
        args = tuple(argv)
        env = self._env if self._env is not None else dict(os.environ)
        if shutil.which(args[0], path=env.get("PATH")) is None:
            return CommandResult(args, NOT_FOUND, "", f"{args[0]}: not found on PATH (see docs/operator-guide.md)")
        if stream and self._on_output is not None:
            return self._run_streaming(args, stdin, env, timeout)
        try:
            done = subprocess.run(  # noqa: PLW1510 - the exit code is the result
                args, input=stdin, capture_output=True, text=True, env=env, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return CommandResult(args, TIMED_OUT, "", f"{args[0]}: timed out after {timeout} s")
        return CommandResult(args, done.returncode, done.stdout, done.stderr)

    def _run_streaming(
        self, args: tuple[str, ...], stdin: str | None, env: dict[str, str], timeout: float | None
    ) -> CommandResult:
        assert self._on_output is not None
        lines: list[str] = []
        with subprocess.Popen(
            args,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        ) as proc:
            if stdin is not None and proc.stdin is not None:
                proc.stdin.write(stdin)
                proc.stdin.close()
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                self._on_output(line.rstrip("\n"))
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                return CommandResult(args, TIMED_OUT, "".join(lines), f"{args[0]}: timed out after {timeout} s")
        return CommandResult(args, code, "".join(lines), "")


class EchoingRunner:
    """Prints ``$ <command>`` before delegating (never what is fed on stdin: it may hold secrets)."""

    def __init__(self, inner: CommandRunner, echo: Callable[[str], None], prefix: str = "    $ ") -> None:
        self._inner = inner
        self._echo = echo
        self._prefix = prefix

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        stream: bool = False,
        timeout: float | None = None,
    ) -> CommandResult:
        self._echo(f"{self._prefix}{format_command(argv)}")
        return self._inner.run(argv, stdin=stdin, stream=stream, timeout=timeout)


class PrintOnlyRunner:
    """For ``--dry-run``: prints each command and runs nothing (every command "succeeds" with no output)."""

    def __init__(self, echo: Callable[[str], None], prefix: str = "    $ ") -> None:
        self._echo = echo
        self._prefix = prefix

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, stream: bool = False, timeout: float | None = None
    ) -> CommandResult:
        self._echo(f"{self._prefix}{format_command(argv)}")
        return CommandResult(tuple(argv), 0)
