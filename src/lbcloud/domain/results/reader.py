"""Reading leaderboard result files (2.0/2.1 and 1.0) into :mod:`lbcloud.domain.results.model` values.

Public names:

- :func:`parse_results(data, source, fmt=None) -> ResultsFile` — bytes or text of a file. ``source``
  names the file in messages. ``fmt`` forces a format; by default it is detected (:func:`detect_format`).
- :func:`results_from_json(document, source, fmt=None) -> ResultsFile` — the same from parsed JSON.
- :func:`record_from_json(obj, source, path, fmt) -> RouteRecord` — one route record.

Pure: no file access. Every problem raises :class:`~lbcloud.domain.errors.ResultFileError` naming
the source and the JSON path (``_checkpoint.records[3].scores.score_route``). Tolerant of the
pre-June-2023 2.0 format (plural yield key renamed in place, ``"NaN"`` std devs, global ``meta``
without totals) and of unknown statuses and keys, which are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import cast

from lbcloud.domain.errors import ResultFileError
from lbcloud.domain.results.model import (
    INFRACTION_KEYS_2X,
    INFRACTION_KEYS_10,
    OLD_YIELD_KEY,
    STATUS_STARTED,
    YIELD_KEY,
    ExceptionEntry,
    Extra,
    GlobalRecord,
    GlobalScores,
    Json,
    Number,
    ResultFormat,
    ResultsFile,
    RouteMeta,
    RouteRecord,
    RouteScores,
    parse_route_id,
)

ROOT = "(top level)"
_RECORD_KEYS = ("index", "route_id", "status", "num_infractions", "infractions", "scores", "meta")
_SCORE_KEYS = ("score_route", "score_penalty", "score_composed")
_META_KEYS = ("route_length", "duration_game", "duration_system")
_TOP_KEYS = ("_checkpoint", "entry_status", "eligible", "sensors", "values", "labels")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return key if path == ROOT else f"{path}.{key}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> ResultFileError:
        return ResultFileError(self.source, path, problem)

    def obj(self, value: object, path: str) -> dict[str, Json]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, found {_kind(value)}")
        return cast(dict[str, Json], value)

    def lst(self, value: object, path: str) -> list[Json]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, found {_kind(value)}")
        return cast(list[Json], value)

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, found {_kind(value)}")
        return value

    def integer(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, found {_kind(value)} {json.dumps(value)[:40]}")
        return value

    def number(self, value: object, path: str) -> Number:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, found {_kind(value)} {json.dumps(value)[:40]}")
        return value

    def number_or_nan(self, value: object, path: str) -> Number | str:
        if isinstance(value, str) and value.lower() == "nan":
            return value
        return self.number(value, path)

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if isinstance(value, list) and all(type(item) is str for item in value):
            return tuple(value)  # the common case, without building paths
        items = self.lst(value, path)
        return tuple(self.string(item, _join(path, i)) for i, item in enumerate(items))

    def required(self, obj: Mapping[str, Json], key: str, path: str) -> Json:
        if key not in obj:
            raise self.fail(_join(path, key), "missing key")
        return obj[key]


def _numbers(reader: _Reader, obj: Mapping[str, Json], keys: tuple[str, ...], path: str) -> list[Number]:
    """The numbers at ``keys`` (0 when absent); the JSON path is built only for an error."""
    out: list[Number] = []
    for key in keys:
        value = obj.get(key, 0)
        if type(value) is int or type(value) is float:
            out.append(value)
        else:
            out.append(reader.number(value, _join(path, key)))
    return out


def _extra(obj: Mapping[str, Json], known: tuple[str, ...]) -> Extra:
    return tuple((k, v) for k, v in obj.items() if k not in known)


def _infractions(reader: _Reader, value: Json, path: str, fmt: ResultFormat) -> dict[str, tuple[str, ...]]:
    obj = reader.obj(value, path)
    out: dict[str, tuple[str, ...]] = {}
    for key, messages in obj.items():
        name = YIELD_KEY if key == OLD_YIELD_KEY else key
        if isinstance(messages, list) and all(type(item) is str for item in messages):
            out[name] = tuple(cast(list[str], messages))
        else:
            out[name] = reader.strings(messages, _join(path, key))
    if not obj:
        keys = INFRACTION_KEYS_10 if fmt is ResultFormat.V10 else INFRACTION_KEYS_2X
        out = {key: () for key in keys}
    return out


def record_from_json(obj: Json, source: str, path: str, fmt: ResultFormat) -> RouteRecord:
    """One route record; missing standard keys get their defaults (status ``Started``, zeros)."""
    reader = _Reader(source)
    record = reader.obj(obj, path)
    route_id = reader.string(reader.required(record, "route_id", path), _join(path, "route_id"))
    if parse_route_id(route_id) is None:
        raise reader.fail(
            _join(path, "route_id"),
            f"{route_id!r} is not RouteScenario_<integer> or RouteScenario_<integer>_rep<integer>",
        )
    index = reader.integer(record.get("index", 0), _join(path, "index"))
    status = reader.string(record.get("status", STATUS_STARTED), _join(path, "status"))
    num: int | None = None
    if "num_infractions" in record or fmt is ResultFormat.V2X:
        num = reader.integer(record.get("num_infractions", 0), _join(path, "num_infractions"))
    infractions = _infractions(reader, record.get("infractions", {}), _join(path, "infractions"), fmt)

    scores_path = _join(path, "scores")
    scores_obj = reader.obj(record.get("scores", {}), scores_path)
    s = _numbers(reader, scores_obj, _SCORE_KEYS, scores_path)
    scores = RouteScores(s[0], s[1], s[2], _extra(scores_obj, _SCORE_KEYS))

    meta_path = _join(path, "meta")
    meta_obj = reader.obj(record.get("meta", {}), meta_path)
    m = _numbers(reader, meta_obj, _META_KEYS, meta_path)
    meta = RouteMeta(m[0], m[1], m[2], _extra(meta_obj, _META_KEYS))
    return RouteRecord(
        index=index,
        route_id=route_id,
        status=status,
        infractions=infractions,
        scores=scores,
        meta=meta,
        num_infractions=num,
        extra=_extra(record, _RECORD_KEYS),
    )


def _global_scores(reader: _Reader, value: Json, path: str) -> GlobalScores:
    obj = reader.obj(value, path)
    keys = ("score_composed", "score_route", "score_penalty")
    vals = [reader.number_or_nan(obj.get(k, 0), _join(path, k)) for k in keys]
    return GlobalScores(vals[0], vals[1], vals[2])


def _global_record(reader: _Reader, value: Json, path: str) -> GlobalRecord | None:
    obj = reader.obj(value, path)
    if not obj:
        return None
    status = reader.string(obj.get("status", ""), _join(path, "status"))
    inf_path = _join(path, "infractions")
    infractions: dict[str, Number] = {}
    for key, number in reader.obj(obj.get("infractions", {}), inf_path).items():
        infractions[YIELD_KEY if key == OLD_YIELD_KEY else key] = reader.number(number, _join(inf_path, key))
    scores_key = "scores_mean" if "scores_mean" in obj else "scores"
    scores_mean = _global_scores(reader, obj.get(scores_key, {}), _join(path, scores_key))
    std_dev: GlobalScores | int | None = None
    if "scores_std_dev" in obj:
        raw = obj["scores_std_dev"]
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            std_dev = 0 if raw == 0 or math.isnan(raw) else int(raw)
        else:
            std_dev = _global_scores(reader, raw, _join(path, "scores_std_dev"))
    meta_path = _join(path, "meta")
    meta = reader.obj(obj.get("meta", {}), meta_path)

    def optional_number(key: str) -> Number | None:
        return reader.number(meta[key], _join(meta_path, key)) if key in meta else None

    exceptions: tuple[ExceptionEntry, ...] | None = None
    if "exceptions" in meta:
        ex_path = _join(meta_path, "exceptions")
        entries: list[ExceptionEntry] = []
        for i, item in enumerate(reader.lst(meta["exceptions"], ex_path)):
            triple = reader.lst(item, _join(ex_path, i))
            if len(triple) != 3:
                raise reader.fail(_join(ex_path, i), "expected [route_id, index, status]")
            entries.append(
                (
                    reader.string(triple[0], _join(_join(ex_path, i), 0)),
                    reader.integer(triple[1], _join(_join(ex_path, i), 1)),
                    reader.string(triple[2], _join(_join(ex_path, i), 2)),
                )
            )
        exceptions = tuple(entries)
    meta_keys = ("total_length", "duration_game", "duration_system", "exceptions")
    return GlobalRecord(
        status=status,
        infractions=infractions,
        scores_mean=scores_mean,
        scores_std_dev=std_dev,
        total_length=optional_number("total_length"),
        duration_game=optional_number("duration_game"),
        duration_system=optional_number("duration_system"),
        exceptions=exceptions,
        extra=_extra(obj, ("index", "route_id", "status", "infractions", scores_key, "scores_std_dev", "meta")),
        meta_extra=_extra(meta, meta_keys),
    )


def detect_format(document: Mapping[str, Json]) -> ResultFormat:
    """2.x or 1.0, from the records' keys and ids, the global record's keys, or the skeleton's fields."""
    checkpoint = document.get("_checkpoint")
    if isinstance(checkpoint, dict):
        records = checkpoint.get("records")
        if isinstance(records, list):
            for record in records:
                if isinstance(record, dict):
                    if "num_infractions" in record:
                        return ResultFormat.V2X
                    route_id = record.get("route_id")
                    if isinstance(route_id, str) and parse_route_id(route_id) is not None:
                        return ResultFormat.V2X if "_rep" in route_id else ResultFormat.V10
        global_record = checkpoint.get("global_record")
        if isinstance(global_record, dict) and global_record:
            return ResultFormat.V2X if "scores_mean" in global_record else ResultFormat.V10
    if document.get("eligible") == "" or document.get("entry_status") == "":
        return ResultFormat.V10
    return ResultFormat.V2X


def results_from_json(document: Json, source: str, fmt: ResultFormat | None = None) -> ResultsFile:
    """A :class:`ResultsFile` from a parsed JSON document (see :func:`parse_results`)."""
    reader = _Reader(source)
    top = reader.obj(document, ROOT)
    fmt = fmt or detect_format(top)
    checkpoint = reader.obj(reader.required(top, "_checkpoint", ROOT), "_checkpoint")
    records_json = reader.lst(reader.required(checkpoint, "records", "_checkpoint"), "_checkpoint.records")
    records = tuple(
        record_from_json(item, source, f"_checkpoint.records[{i}]", fmt) for i, item in enumerate(records_json)
    )
    progress_json = reader.lst(reader.required(checkpoint, "progress", "_checkpoint"), "_checkpoint.progress")
    progress = tuple(reader.integer(v, f"_checkpoint.progress[{i}]") for i, v in enumerate(progress_json))
    if len(progress) not in (0, 2):
        raise reader.fail("_checkpoint.progress", f"expected [done, total], found {len(progress)} numbers")
    global_record = _global_record(reader, checkpoint.get("global_record", {}), "_checkpoint.global_record")
    sensors = reader.strings(reader.required(top, "sensors", ROOT), "sensors")
    entry_default = "" if fmt is ResultFormat.V10 else STATUS_STARTED
    entry_status = reader.string(top.get("entry_status", entry_default), "entry_status")
    eligible_raw = top.get("eligible", False)
    if not isinstance(eligible_raw, bool) and eligible_raw != "":
        raise reader.fail("eligible", f"expected a boolean, found {_kind(eligible_raw)}")
    return ResultsFile(
        format=fmt,
        records=records,
        progress=progress,
        global_record=global_record,
        entry_status=entry_status,
        eligible=eligible_raw,
        sensors=sensors,
        values=reader.strings(top.get("values", []), "values"),
        labels=reader.strings(top.get("labels", []), "labels"),
        extra=_extra(top, _TOP_KEYS),
        checkpoint_extra=_extra(checkpoint, ("global_record", "progress", "records")),
    )


def parse_results(data: bytes | str, source: str, fmt: ResultFormat | None = None) -> ResultsFile:
    """Parse a result file's bytes or text. Raises ``ResultFileError`` (source + JSON path) on any problem."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ResultFileError(source, ROOT, f"not UTF-8 text (byte {err.start})") from None
    else:
        text = data
    if not text.strip():
        raise ResultFileError(source, ROOT, "the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultFileError(source, f"line {err.lineno} column {err.colno}", f"invalid JSON: {err.msg}") from None
    except RecursionError:
        raise ResultFileError(source, ROOT, "invalid JSON: nested too deeply") from None
    return results_from_json(cast(Json, document), source, fmt)
