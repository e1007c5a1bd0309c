"""How an attempt of a CARLA track ended, judged from what was observed (pure).

The official leaderboard evaluator (``leaderboard/leaderboard_evaluator.py``, branches
leaderboard-1.0/2.0/2.1) does not use lbcloud's evaluator exit codes 3/4/5. It exits

- ``255`` (``sys.exit(-1)``) when the route "crashed": a simulation crash, *and* rejected sensors;
- ``1`` for an uncaught error (the simulator unreachable at start, the agent module not importable);
- ``0`` otherwise, including an agent that could not be set up or crashed (written into the record).

(1.0 prints most uncaught errors and exits 0; it exits 1 only when the evaluator cannot be built.)

After the simulator dies, the evaluator blocks on every RPC for its client timeout, so what it does
next (exit 255, exit 1, silence, running past a deadline) says little. The judgement therefore looks
at the observations in this order:

1. the simulator died while the evaluator still ran (its process/container exited or restarted)
   → blame simulator, retried, whatever the evaluator wrote afterwards (after a simulator crash an
   agent's RPC errors read as "Agent crashed") — unless the route's record is a driving result
   (completed, deviated, blocked, timed out: no fault in it). A dead simulator produces none of
   those, so the route ended before the death (e.g. CARLA crashed while cleaning up): the record
   stands, as the official cloud keeps a checkpointed route and does not run it again;
2. a route record: its status decides (``Simulation crashed`` → simulator; agent statuses → agent;
   driving results → no blame);
3. the lbcloud watchdogs: silent for the no-output timeout → agent (hung);
4. the evaluator's exit code: 255 without a record → simulator (the official "crashed"), 1 → agent
   (its message is the last error of its log), 0 without a record → infrastructure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from lbcloud.domain.blame import Blame, blame_of_record_status
from lbcloud.domain.tracks import Track

CARLA_EXIT_FINISHED = 0
CARLA_EXIT_ERROR = 1
CARLA_EXIT_CRASHED = 255
"""``sys.exit(-1)`` of the official evaluator: "Simulation crashed" or rejected sensors."""
CARLA_EXIT_CRASHED_SIGNED = -1
"""The same exit as a process would report it when its parent reads a signed status."""

DEFAULT_CODENAME = "SENSORS"
CODENAMES = ("SENSORS", "MAP", "SENSORS_QUALIFIER", "MAP_QUALIFIER")
"""``leaderboard.autoagents.autonomous_agent.Track`` (2.x; 1.0 knows only SENSORS and MAP)."""


class Ending(StrEnum):
    """What ended the evaluator, as the supervising side saw it."""

    EXIT = "exit"
    """It exited on its own (or was stopped because the simulator died)."""
    SILENCE = "silence"
    """It printed nothing for the track's no-output timeout and was stopped."""
    BUDGET = "budget"
    """It ran past the attempt's wall-clock budget (only when the track sets one)."""


class Verdict(StrEnum):
    """The attempt's outcome as the dispatcher understands it."""

    RECORD = "record"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CarlaObservation:
    """Everything observed of one CARLA attempt once it ended.

    ``simulator_death`` is a sentence when the simulator exited or restarted while the route ran
    (``None`` when it was alive until the attempt's end or was stopped by lbcloud afterwards);
    ``simulator_oom`` says it was killed for memory (lbcloud's limit: infrastructure).
    ``record_status`` is the status of the route record the evaluator wrote, ``None`` if none.
    """

    ending: Ending
    exit_code: int | None
    record_status: str | None = None
    simulator_death: str | None = None
    simulator_oom: bool = False
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class CarlaJudgement:
    """Outcome, blame and one sentence for a person."""

    verdict: Verdict
    blame: Blame
    reason: str


def record_is_final(status: str | None) -> bool:
    """Whether a record status is a route result that stands whatever happened afterwards.

    ``Started`` (a route still in progress) and ``Simulation crashed`` are not: the route must run again.
    """
    if not status or status == "Started":
        return False
    return blame_of_record_status(status) is not Blame.SIMULATOR


def record_outlives_simulator(status: str | None) -> bool:
    """Whether a record with ``status`` stands although the simulator died: a final driving result,
    which a dead simulator cannot produce (the route ended before the death)."""
    return record_is_final(status) and blame_of_record_status(str(status)) is Blame.NONE


def judge_carla_attempt(seen: CarlaObservation) -> CarlaJudgement:
    """The outcome of a CARLA attempt from what was observed (see the module docstring for the order)."""
    if (seen.simulator_death or seen.simulator_oom) and record_outlives_simulator(seen.record_status):
        return CarlaJudgement(Verdict.RECORD, Blame.NONE, "route evaluated (the simulator ended after the route)")
    if seen.simulator_oom:
        return CarlaJudgement(Verdict.FAILED, Blame.INFRASTRUCTURE, "the simulator ran out of memory")
    if seen.simulator_death:
        return CarlaJudgement(
            Verdict.FAILED, Blame.SIMULATOR, f"the simulator died during the route: {seen.simulator_death}"
        )
    if record_is_final(seen.record_status):
        status = str(seen.record_status)
        blame = blame_of_record_status(status)
        return CarlaJudgement(Verdict.RECORD, blame, status if blame is not Blame.NONE else "route evaluated")
    if seen.record_status and blame_of_record_status(seen.record_status) is Blame.SIMULATOR:
        return CarlaJudgement(Verdict.FAILED, Blame.SIMULATOR, "the simulation crashed (the evaluator's record)")
    if seen.ending is Ending.SILENCE:
        return CarlaJudgement(
            Verdict.FAILED, Blame.AGENT, "the agent hung: it printed nothing for the track's no-output timeout"
        )
    if seen.ending is Ending.BUDGET:
        return CarlaJudgement(Verdict.FAILED, Blame.AGENT, "the agent ran past the attempt's wall-clock budget")
    code = seen.exit_code
    detail = f": {seen.last_error}" if seen.last_error else ""
    if code in (CARLA_EXIT_CRASHED, CARLA_EXIT_CRASHED_SIGNED):
        return CarlaJudgement(
            Verdict.FAILED, Blame.SIMULATOR, f"the evaluator reported a simulation crash (exit 255), no record{detail}"
        )
    if code == CARLA_EXIT_FINISHED:
        return CarlaJudgement(
            Verdict.FAILED, Blame.INFRASTRUCTURE, "the evaluator exited without writing a route record"
        )
    if code is None:
        return CarlaJudgement(Verdict.FAILED, Blame.INFRASTRUCTURE, "the evaluator's end was not observed")
    return CarlaJudgement(
        Verdict.FAILED, Blame.AGENT, f"the evaluator stopped on an uncaught error (exit {code}){detail}"
    )


def codename(track: Track) -> str:
    """The leaderboard track codename a track's evaluator command passes (``--track=...``)."""
    commands: list[Sequence[str]] = []
    if track.images is not None:
        commands.append(track.images.evaluator_command)
    if track.local is not None:
        commands.append(track.local.evaluator)
    for argv in commands:
        for i, item in enumerate(argv):
            if item.startswith("--track="):
                return item.split("=", 1)[1]
            if item == "--track" and i + 1 < len(argv):
                return argv[i + 1]
    return DEFAULT_CODENAME


def leaderboard_environment(track: Track, *, contents: str, routes: str, route: str) -> dict[str, str]:
    """The variables the official ``run_leaderboard.sh`` sets for the agent's image."""
    return {
        "CARLA_ROOT": f"{contents}/CARLA",
        "SCENARIO_RUNNER_ROOT": f"{contents}/scenario_runner",
        "LEADERBOARD_ROOT": f"{contents}/leaderboard",
        "CHALLENGE_TRACK_CODENAME": codename(track),
        "ROUTES": routes,
        "ROUTES_SUBSET": route,
        "REPETITIONS": "1",
        "DEBUG_CHALLENGE": "0",
    }
