"""The local backend's CARLA specifics: the official start-up variables, the judgement of an ended
attempt (:func:`lbcloud.domain.carla.judge_carla_attempt`) and the route's recording.

See ``docs/carla.md``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lbcloud.domain.artifact_keys import RECORDING_MAX_BYTES, attempt_recording_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.carla import CarlaObservation, Ending, Verdict, judge_carla_attempt, leaderboard_environment
from lbcloud.domain.errors import LbcloudError
from lbcloud.domain.tasks import AttemptOutcome
from lbcloud.services.ports import ArtifactStore, AttemptSpec

log = logging.getLogger(__name__)

JUDGED_ENDINGS = frozenset({"exit", "silence", "budget", "simulator_died"})
"""Supervisor endings judged the CARLA way (the others mean the same for every track)."""


def carla_environment(spec: AttemptSpec) -> dict[str, str]:
    """The variables the official start-up script gives the agent; the local commands name the
    leaderboard's folders themselves."""
    track = spec.track
    env = leaderboard_environment(track, contents="", routes=track.routes_file, route=spec.route_id)
    return {k: v for k, v in env.items() if k not in ("CARLA_ROOT", "SCENARIO_RUNNER_ROOT", "LEADERBOARD_ROOT")}


@dataclass(frozen=True, slots=True)
class LocalEnding:
    """What the backend reports for an ended CARLA attempt."""

    outcome: AttemptOutcome
    blame: Blame
    reason: str
    message: str
    record_json: str | None


def judge_local_carla(
    result: Mapping[str, object], record: tuple[str, str] | None, last_error: str | None
) -> LocalEnding:
    """``result`` is the supervisor's ``result.json``; ``record`` the record document and its status.

    Simulator death first, then the record, then the official exit codes. A record the dispatcher
    should count is reported with no blame (it reads the blame from the record's status)."""
    ended_by = str(result["ended_by"])
    died = result.get("simulator_died_at") is not None or ended_by == "simulator_died"
    code = result.get("exit_code")
    judged = judge_carla_attempt(
        CarlaObservation(
            ending={"silence": Ending.SILENCE, "budget": Ending.BUDGET}.get(ended_by, Ending.EXIT),
            exit_code=code if isinstance(code, int) else None,
            record_status=record[1] if record is not None else None,
            simulator_death=f"it exited with code {result.get('simulator_exit_code')}" if died else None,
            last_error=last_error,
        )
    )
    if judged.verdict is Verdict.RECORD and record is not None:
        message = (last_error or "") if judged.blame is not Blame.NONE else ""
        return LocalEnding(AttemptOutcome.RECORD, Blame.NONE, judged.reason, message, record[0])
    kept = record[0] if record is not None and judged.blame is Blame.SIMULATOR else None
    return LocalEnding(AttemptOutcome.FAILED, judged.blame, judged.reason, last_error or "", kept)


def keep_recording(artifacts: ArtifactStore, workdir: Path, submission_id: int, attempt_id: int) -> None:
    """The simulator's recorder file of the route (``--record={recordings}``), if within the cap."""
    folder = workdir / "recordings"
    files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if not files:
        return
    size = files[-1].stat().st_size
    if size > RECORDING_MAX_BYTES:
        log.warning("recording %s is %d bytes, over the %d-byte cap: not kept", files[-1], size, RECORDING_MAX_BYTES)
        return
    try:
        data = files[-1].read_bytes()
        artifacts.put(attempt_recording_key(submission_id, attempt_id), data, "application/octet-stream")
    except (LbcloudError, OSError) as err:
        log.warning("recording not kept: %s", err, extra={"attempt": attempt_id})
