"""The files EvalAI receives for a submission (spec §9): ``results.json``, ``stdout.txt``, lowercase keys.

Public names:

- :func:`accuracies(results) -> dict[str, Number]` — the 15 (2.x) or 12 (1.0) EvalAI accuracies,
  the global numbers unchanged, or int ``0`` each while there is no global record.
- :func:`evalai_results(results, split="leaderboard") -> list[dict]` — the ``results.json`` payload
  (``[{split, show_to_participant, accuracies}]``), ready to JSON-encode.
- :func:`dumps_evalai_results(results, split="leaderboard") -> str` — its exact file text.
- :func:`stdout_summary(results) -> str` — the participant-facing summary (``None``: no data yet).
- :func:`lowercase_accuracies(accuracies) -> dict[str, str]` — ``driving_score``, ``agent_blocked``, …
  with string values (§9.3).

Pure: returns values and text; the metadata file is a byte copy of the merged file, made by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from lbcloud.domain.results.model import (
    EVALAI_KEYS_2X,
    EVALAI_KEYS_10,
    VALUE_SOURCES,
    Json,
    Number,
    ResultFormat,
    ResultsFile,
)

DEFAULT_SPLIT = "leaderboard"

SENSOR_NAMES: Mapping[str, str] = {
    "carla_camera": "RGB Camera",
    "carla_lidar": "LIDAR",
    "carla_radar": "Radar",
    "carla_gnss": "GNSS",
    "carla_imu": "IMU",
    "carla_opendrive_map": "OpenDrive Map",
    "carla_speedometer": "Speedometer",
}
"""Display names of the sensor icons (§9.2)."""

NO_DATA_TEXT = (
    "Initializing the submission, no data avaialable yet.\n"
    "More information will be found here once the submission starts running.\n"
)
"""The official "no data" text, typo included."""


def accuracies(results: ResultsFile) -> dict[str, Number]:
    """EvalAI accuracies in the official key order (12 keys for 1.0)."""
    v10 = results.format is ResultFormat.V10
    keys = EVALAI_KEYS_10 if v10 else EVALAI_KEYS_2X
    global_record = results.global_record
    out: dict[str, Number] = {}
    for key, (section, name) in zip(keys, VALUE_SOURCES, strict=False):
        if global_record is None:
            out[key] = 0
            continue
        value = global_record.value_of(section, name)
        out[key] = value if isinstance(value, int | float) else float(value)
    return out


def evalai_results(results: ResultsFile, split: str = DEFAULT_SPLIT) -> list[dict[str, Json]]:
    """The ``results.json`` payload for one split."""
    acc: dict[str, Json] = dict(accuracies(results))
    return [{"split": split, "show_to_participant": True, "accuracies": acc}]


def dumps_evalai_results(results: ResultsFile, split: str = DEFAULT_SPLIT) -> str:
    """``results.json`` text: ``indent=4``, no trailing newline; key-sorted for 1.0."""
    return json.dumps(evalai_results(results, split), indent=4, sort_keys=results.format is ResultFormat.V10)


def lowercase_accuracies(values: Mapping[str, Number]) -> dict[str, str]:
    """Accuracies with lowercase, underscore keys and string values (``Agent blocked`` → ``agent_blocked``)."""
    return {key.lower().replace(" ", "_"): str(value) for key, value in values.items()}


def _ratio(game: Number, system: Number) -> Number:
    return game / system if system != 0 else 0


def stdout_summary(results: ResultsFile | None) -> str:
    """The participant-facing summary, byte for byte as the reference converter prints it.

    ``None`` (the merged file is missing, empty or unreadable) or a document without progress gives
    the "no data" text. Unknown sensor icons are printed by their icon name (the original crashes).
    """
    if results is None or len(results.progress) < 2:
        return NO_DATA_TEXT
    lines: list[str] = []
    if results.global_record is not None:
        lines.append("Here is a summary of the submission's results")
    else:
        lines.append("Here is a summary of the submission's current results")
    lines += ["", "General information:", "- Sensors:"]
    counts: dict[str, int] = {}
    for icon in results.sensors:
        counts[icon] = counts.get(icon, 0) + 1
    for icon, count in counts.items():
        lines.append(f"  - {count} {SENSOR_NAMES.get(icon, icon)}")
    done, total = results.progress[0], results.progress[1]
    if done == total:
        lines.append(f"- All {total} route have been completed")
    else:
        lines.append(f"- Completed {done} out of the {total} routes")
    game: Number = 0
    system: Number = 0
    for record in results.records:
        game += record.meta.duration_game
        system += record.meta.duration_system
    ratio = round(game / system, 4) if system != 0 else 0.0
    lines.append(f"- Submission ratio of {ratio}x")
    lines.append(f"- Submission FPS of {round(20 * ratio, 4)}")
    if results.global_record is not None:
        lines.append("- Results:")
        for key, value in accuracies(results).items():
            lines.append(f"  - {key}: {value}")
    lines.append("")
    if results.records:
        lines.append("Glossary of each route:")
        for record in results.records:
            raw = _ratio(record.meta.duration_game, record.meta.duration_system)
            lines += [
                "",
                f"- Index: {record.index}",
                f"  - Route ID: {record.route_id}",
                f"  - Status: {record.status}",
                f"  - Ratio: {round(raw, 4)}x",
                f"  - FPS: {round(20 * raw, 4)}",
            ]
    return "\n".join(lines) + "\n"
