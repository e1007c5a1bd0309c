"""A warm evaluator process for a standby attempt: Python started and imports done, waiting for its argv.

Starting the evaluator (``python -m lbcloud track sumo evaluate ...``) costs a Python start and a few
hundred milliseconds of imports, which a slot would otherwise spend idle between two routes. A standby
(:mod:`.local_standby`) therefore starts ``python -m lbcloud.adapters.backends.local_warm MODULE``
next to its simulator: this process imports what ``python -m MODULE`` will need and waits. When an
attempt takes the standby, the supervisor writes ``warm.json`` (the evaluator's arguments after
``-m MODULE`` and the attempt's environment) into the process's working directory, and this process
runs ``MODULE`` as ``__main__`` with exactly those arguments: the same code, arguments, environment,
working directory, output file and process group as a cold ``python -m MODULE ...``.

It has run nothing before its attempt, so no state carries over; the agent still runs in its own
sandboxed host that the evaluator starts per route. It exits by itself when its supervisor goes away
or no attempt comes within ``max_wait_s``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import sys
import time
from pathlib import Path

GO_FILE = "warm.json"
MAX_WAIT_S = 900.0
# what `python -m lbcloud track sumo evaluate` imports before it drives (the rest is imported on
# demand either way): the CLI and its track group, the option parser's validators, TraCI
PRELOAD: dict[str, tuple[str, ...]] = {
    "lbcloud": (
        "lbcloud.entrypoints.cli.main",
        "lbcloud.entrypoints.cli.track",
        "lbcloud.tracks.sumo.evaluator",
        "typer._adapters",
        "traci",
    ),
}


def warm_command(evaluator: list[str] | tuple[str, ...]) -> list[str] | None:
    """The warm process's argv for an evaluator command ``[python, -m, MODULE, ...]``; None when the
    evaluator is not started that way (it then starts cold)."""
    if len(evaluator) < 3 or "{" in evaluator[0] or evaluator[1] != "-m":
        return None
    if not evaluator[2].replace(".", "").replace("_", "").isalnum():
        return None
    return [evaluator[0], "-m", __name__, evaluator[2]]


def matches(warm: list[str], evaluator: list[str]) -> bool:
    """Whether ``evaluator`` is what the warm process ``warm`` can become."""
    return len(evaluator) >= 3 and evaluator[:2] == warm[:2] and evaluator[2] == warm[3]


def hand_over(folder: Path, evaluator: list[str], env: dict[str, str]) -> None:
    """Tell the warm process in ``folder`` to run ``evaluator`` (written atomically)."""
    tmp = folder / (GO_FILE + ".tmp")
    tmp.write_text(json.dumps({"argv": evaluator[3:], "env": env}), encoding="utf-8")
    os.replace(tmp, folder / GO_FILE)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m lbcloud.adapters.backends.local_warm MODULE", file=sys.stderr)
        return 2
    module = args[0]
    parent = os.getppid()
    for name in PRELOAD.get(module, ()):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    go = Path(GO_FILE)
    deadline = time.monotonic() + MAX_WAIT_S
    while not go.exists():
        if os.getppid() != parent or time.monotonic() > deadline:
            return 0  # the standby went away before an attempt took it
        time.sleep(0.005)
    order = json.loads(go.read_text(encoding="utf-8"))
    os.environ.update({str(k): str(v) for k, v in order["env"].items()})
    sys.argv = [module, *(str(a) for a in order["argv"])]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
