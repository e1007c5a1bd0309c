"""Writing result files byte for byte as the official code does (spec §2.3, §3).

Public names:

- :func:`results_to_json(results) -> dict` — the document with keys in the official order.
- :func:`dumps_results(results) -> str` — the file text: ``json.dumps(indent=4)`` (1.0 also
  ``sort_keys=True``), no trailing newline. Write it with ``encoding="utf-8"``.
- :func:`record_to_json(record, fmt) -> dict` and :func:`global_record_to_json(global_record, fmt) -> dict`.
- :func:`dumps_indent4(document, sort_keys=False) -> str` — ``json.dumps(indent=4)``'s exact text, faster.

Pure: returns text, writes nothing.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring_ascii

from lbcloud.domain.results.model import (
    GlobalRecord,
    GlobalScores,
    Json,
    ResultFormat,
    ResultsFile,
    RouteRecord,
)


def record_to_json(record: RouteRecord, fmt: ResultFormat = ResultFormat.V2X) -> dict[str, Json]:
    """A route record: the seven standard keys in order, then unknown keys in input order."""
    out: dict[str, Json] = {
        "index": record.index,
        "route_id": record.route_id,
        "status": record.status,
    }
    if record.num_infractions is not None:
        out["num_infractions"] = record.num_infractions
    out["infractions"] = {key: list(messages) for key, messages in record.infractions.items()}
    scores: dict[str, Json] = {
        "score_route": record.scores.score_route,
        "score_penalty": record.scores.score_penalty,
        "score_composed": record.scores.score_composed,
    }
    scores.update(record.scores.extra)
    meta: dict[str, Json] = {
        "route_length": record.meta.route_length,
        "duration_game": record.meta.duration_game,
        "duration_system": record.meta.duration_system,
    }
    meta.update(record.meta.extra)
    out["scores"] = scores
    out["meta"] = meta
    for key, value in record.extra:
        out.setdefault(key, value)
    return out


def _scores(scores: GlobalScores) -> dict[str, Json]:
    return {
        "score_composed": scores.score_composed,
        "score_route": scores.score_route,
        "score_penalty": scores.score_penalty,
    }


def global_record_to_json(global_record: GlobalRecord, fmt: ResultFormat = ResultFormat.V2X) -> dict[str, Json]:
    """The global record in the official key order (1.0 output is key-sorted by the dump anyway)."""
    out: dict[str, Json] = {"index": -1, "route_id": -1, "status": global_record.status}
    out["infractions"] = dict(global_record.infractions)
    out["scores" if fmt is ResultFormat.V10 else "scores_mean"] = _scores(global_record.scores_mean)
    std = global_record.scores_std_dev
    if isinstance(std, GlobalScores):
        out["scores_std_dev"] = _scores(std)
    elif std is not None:
        out["scores_std_dev"] = std
    meta: dict[str, Json] = {}
    if global_record.total_length is not None:
        meta["total_length"] = global_record.total_length
    if global_record.duration_game is not None:
        meta["duration_game"] = global_record.duration_game
    if global_record.duration_system is not None:
        meta["duration_system"] = global_record.duration_system
    if global_record.exceptions is not None:
        meta["exceptions"] = [list(entry) for entry in global_record.exceptions]
    meta.update(global_record.meta_extra)
    out["meta"] = meta
    for key, value in global_record.extra:
        out.setdefault(key, value)
    return out


def results_to_json(results: ResultsFile) -> dict[str, Json]:
    """The whole document as the official code builds it."""
    fmt = results.format
    checkpoint: dict[str, Json] = {
        "global_record": {} if results.global_record is None else global_record_to_json(results.global_record, fmt),
        "progress": list(results.progress),
        "records": [record_to_json(record, fmt) for record in results.records],
    }
    checkpoint.update(results.checkpoint_extra)
    out: dict[str, Json] = {
        "_checkpoint": checkpoint,
        "entry_status": results.entry_status,
        "eligible": results.eligible,
        "sensors": list(results.sensors),
        "values": list(results.values),
        "labels": list(results.labels),
    }
    for key, value in results.extra:
        out.setdefault(key, value)
    return out


def dumps_results(results: ResultsFile) -> str:
    """The file's exact text (no trailing newline)."""
    return dumps_indent4(results_to_json(results), sort_keys=results.format is ResultFormat.V10)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _encode(value: Json, indent: str, sort_keys: bool, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(encode_basestring_ascii(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float_text(value))
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = indent + "    "
        out.append("[\n" + inner)
        first = True
        for item in value:
            if not first:
                out.append(",\n" + inner)
            first = False
            _encode(item, inner, sort_keys, out)
        out.append("\n" + indent + "]")
    else:
        if not value:
            out.append("{}")
            return
        inner = indent + "    "
        out.append("{\n" + inner)
        first = True
        items = sorted(value.items()) if sort_keys else value.items()
        for key, item in items:
            if not first:
                out.append(",\n" + inner)
            first = False
            out.append(encode_basestring_ascii(key) + ": ")
            _encode(item, inner, sort_keys, out)
        out.append("\n" + indent + "}")


def dumps_indent4(document: Json, *, sort_keys: bool = False) -> str:
    """Exactly ``json.dumps(document, indent=4, sort_keys=sort_keys)`` for JSON values with string
    keys, about twice as fast (the standard library's C encoder is not used when indenting)."""
    out: list[str] = []
    _encode(document, "", sort_keys, out)
    return "".join(out)
