"""Where each artifact of a submission lives in the artifact store (one naming scheme for all).

```
submissions/<id>/routes/<RouteScenario_<route>_rep<r>>.json     the route record as the evaluator wrote it
submissions/<id>/attempts/<attempt>/<stream>.log                 simulator / agent / lbcloud logs
submissions/<id>/attempts/<attempt>/recording.log               CARLA's recorder file of the route (size-capped)
submissions/<id>/attempts/<attempt>/timeline.json                route completion over time, infraction times
submissions/<id>/merged.json                                     latest merged results (leaderboard format)
submissions/<id>/evalai/{results.json,stdout.txt,metadata.json}  EvalAI-format files
submissions/<id>/manifest.json                                   reproducibility manifest
```
"""

from __future__ import annotations

from enum import StrEnum


class LogStream(StrEnum):
    SIMULATOR = "simulator"
    AGENT = "agent"
    LBCLOUD = "lbcloud"


def submission_prefix(submission_id: int) -> str:
    return f"submissions/{submission_id}/"


def route_record_key(submission_id: int, route_id: str, repetition: int) -> str:
    return f"submissions/{submission_id}/routes/RouteScenario_{route_id}_rep{repetition}.json"


def attempt_log_key(submission_id: int, attempt_id: int, stream: LogStream | str) -> str:
    return f"submissions/{submission_id}/attempts/{attempt_id}/{LogStream(stream).value}.log"


RECORDING_MAX_BYTES = 256 << 20
"""Recorder files above this size are not kept (a CARLA route's recording is typically tens of MiB)."""


def attempt_recording_key(submission_id: int, attempt_id: int) -> str:
    """The simulator's recording of an attempt's route (CARLA ``--record``), replayable in CARLA."""
    return f"submissions/{submission_id}/attempts/{attempt_id}/recording.log"


def attempt_timeline_key(submission_id: int, attempt_id: int) -> str:
    return f"submissions/{submission_id}/attempts/{attempt_id}/timeline.json"


def merged_key(submission_id: int) -> str:
    return f"submissions/{submission_id}/merged.json"


def evalai_key(submission_id: int, name: str) -> str:
    if name not in ("results.json", "stdout.txt", "metadata.json"):
        raise ValueError(f"unknown EvalAI file {name!r}")
    return f"submissions/{submission_id}/evalai/{name}"


def manifest_key(submission_id: int) -> str:
    return f"submissions/{submission_id}/manifest.json"
