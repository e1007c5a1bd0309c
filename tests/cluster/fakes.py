"""A recording stand-in for the command runner (aws, eksctl, packer and kubectl cannot run here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lbcloud.cluster.runner import CommandResult


@dataclass(frozen=True)
class Call:
    argv: tuple[str, ...]
    stdin: str | None
    stream: bool

    @property
    def line(self) -> str:
        return " ".join(self.argv)


@dataclass
class _Rule:
    words: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    times: int | None
    then: Callable[[tuple[str, ...]], None] | None


def _contains_in_order(argv: Sequence[str], words: Sequence[str]) -> bool:
    position = 0
    for word in argv:
        if position < len(words) and word == words[position]:
            position += 1
    return position == len(words)


@dataclass
class FakeRunner:
    """Records every command; answers from rules (latest matching rule wins), else ``default_returncode``.

    ``on("eksctl", "get", "cluster", returncode=1)`` answers every command whose words contain those
    words in that order; ``times=n`` makes a rule expire after n uses; ``then`` is called with the
    command after it "ran" (to change what later checks see, as the real command would).
    """

    default_returncode: int = 0
    calls: list[Call] = field(default_factory=list)
    rules: list[_Rule] = field(default_factory=list)

    def on(
        self,
        *words: str,
        returncode: int = 0,
        stdout: str = "",
        stderr: str = "",
        times: int | None = None,
        then: Callable[[tuple[str, ...]], None] | None = None,
    ) -> None:
        self.rules.append(_Rule(words, returncode, stdout, stderr, times, then))

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, stream: bool = False, timeout: float | None = None
    ) -> CommandResult:
        args = tuple(argv)
        self.calls.append(Call(args, stdin, stream))
        for rule in reversed(self.rules):
            if rule.times != 0 and _contains_in_order(args, rule.words):
                if rule.times is not None:
                    rule.times -= 1
                if rule.then is not None:
                    rule.then(args)
                return CommandResult(args, rule.returncode, rule.stdout, rule.stderr)
        return CommandResult(args, self.default_returncode)

    def lines(self) -> list[str]:
        return [call.line for call in self.calls]

    def ran(self, *words: str) -> list[Call]:
        return [call for call in self.calls if _contains_in_order(call.argv, words)]
