"""The qualification gate as use cases: check a team before a gated submission, record a qualifier result.

- :func:`ensure_qualified` — intake calls it for a track with ``Track.qualification``; raises
  :class:`Conflict` with the message the participant sees.
- :func:`record_qualification_result` — the dispatcher calls it when a submission on a qualifier
  track finishes; it evaluates every gate that names that qualifier and stores the verdict.
- :func:`qualification_hook` — the same, shaped as the dispatcher's ``on_final`` callback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

from lbcloud.domain.errors import Conflict
from lbcloud.domain.qualification import (
    QualificationVerdict,
    combine,
    evaluate_qualification,
    gate_message,
    global_values,
)
from lbcloud.domain.submissions import Submission, SubmissionStatus
from lbcloud.domain.tracks import Qualification, Track
from lbcloud.services.ports import Publication, StateStore

log = logging.getLogger(__name__)


def ensure_qualified(store: StateStore, team: str, track: Track) -> None:
    """Raise :class:`Conflict` (participant-readable) unless ``team`` may submit to ``track``."""
    gate = track.qualification
    if gate is None or store.qualification(team, gate.track):
        return
    raise Conflict(gate_message(team, gate, track.name))


def gates_for(qualifier: str, tracks: Mapping[str, Track]) -> list[Qualification]:
    """The gates (of any track) that a result on ``qualifier`` decides."""
    return [t.qualification for t in tracks.values() if t.qualification and t.qualification.track == qualifier]


def record_qualification_result(
    store: StateStore,
    track: Track,
    submission: Submission,
    merged_global_values: Mapping[str, object],
    *,
    tracks: Mapping[str, Track] | None = None,
) -> QualificationVerdict | None:
    """Record whether a finished ``submission`` passes the gates its track decides.

    ``track`` is either the submission's own (qualifier) track, with the gated tracks in ``tracks``,
    or a gated track whose ``qualification`` names the submission's track. ``merged_global_values``
    maps metric names (labels, EvalAI keys or lowercase keys) to the merged global values. Returns
    the stored verdict, or None when no gate depends on this track or the submission did not finish.
    """
    if submission.status is not SubmissionStatus.FINISHED:
        return None
    gates = gates_for(submission.track, tracks or {})
    own = track.qualification
    if own is not None and own.track == submission.track and own not in gates:
        gates.append(own)
    verdict = combine(evaluate_qualification(gate, merged_global_values) for gate in gates)
    if verdict is None:
        return None
    store.record_qualification(submission.team, submission.track, submission.id, verdict.passed, verdict.detail)
    store.add_event(submission.id, "qualification", verdict.detail)
    log.info("qualification recorded", extra={"submission": submission.id, "passed": verdict.passed})
    return verdict


def values_of_merged_document(document: str) -> dict[str, object]:
    """Global values of a merged result document (``labels`` → ``values``); empty if unreadable."""
    try:
        data = json.loads(document)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    labels, values = data.get("labels", []), data.get("values", [])
    if not isinstance(labels, list) or not isinstance(values, list):
        return {}
    return global_values((str(label) for label in labels), values)


def qualification_hook(
    store: StateStore, tracks: Mapping[str, Track]
) -> Callable[[Submission, Track, Publication | None], None]:
    """An ``on_final`` callback for the dispatcher that records qualifier results."""

    def on_final(submission: Submission, track: Track, publication: Publication | None) -> None:
        if publication is None or not gates_for(track.name, tracks):
            return
        record_qualification_result(
            store, track, submission, values_of_merged_document(publication.merged_document), tracks=tracks
        )

    return on_final
