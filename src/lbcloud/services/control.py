"""Operator and participant requests on a submission: cancel, resume.

Both are state changes only; the dispatcher notices them on its next tick (it stops the attempts of
a cancelled submission, and plans the missing route tasks of a resuming one), so they work from any
process that can reach the state store: the CLI, the web API, an EvalAI poller.
"""

from __future__ import annotations

from lbcloud.domain.errors import Conflict
from lbcloud.domain.submissions import NewSubmission, Submission, SubmissionStatus
from lbcloud.services.ports import StateStore


def cancel_submission(store: StateStore, submission_id: int, reason: str = "cancelled on request") -> Submission:
    """Mark a submission cancelled (idempotent). Its pending route tasks will never run; running
    attempts are stopped by the dispatcher; route records already done are kept."""
    submission = store.get_submission(submission_id)
    if submission.status is SubmissionStatus.CANCELLED:
        return submission
    if submission.status.terminal:
        raise Conflict(f"submission {submission_id} is already {submission.status.value}")
    store.cancel_pending_tasks(submission_id, reason)
    return store.transition(submission_id, SubmissionStatus.CANCELLED, reason)


def resume_submission(store: StateStore, submission_id: int, reason: str = "resume requested") -> Submission:
    """Continue a failed or cancelled submission: route records already done are kept, the others
    run again. A submission that is still active is left as it is (idempotent)."""
    submission = store.get_submission(submission_id)
    if submission.status.active or submission.status is SubmissionStatus.SUBMITTED:
        return submission
    if submission.status is SubmissionStatus.FINISHED:
        raise Conflict(f"submission {submission_id} is finished; nothing to resume")
    resumed = store.transition(submission_id, SubmissionStatus.RESUMING, reason)
    store.reopen_tasks(submission_id)
    return resumed


def rerun_submission(store: StateStore, submission_id: int, reason: str = "re-run requested") -> Submission:
    """Evaluate a submission's agent again from scratch, as a new submission (the original keeps its
    results; an active original is cancelled first, as EvalAI's re-run does). Returns the new one."""
    original = store.get_submission(submission_id)
    if not original.status.terminal:
        cancel_submission(store, submission_id, f"replaced by a re-run ({reason})")
    new, _ = store.create_submission(
        NewSubmission(
            team=original.team,
            track=original.track,
            agent=original.agent,
            source=original.source,
            external_id=None,
            method_name=original.method_name,
            challenge_id=original.challenge_id,
            phase_id=original.phase_id,
        )
    )
    store.add_event(new.id, "rerun", f"re-run of submission {submission_id} ({reason})")
    store.add_event(submission_id, "rerun", f"re-run as submission {new.id} ({reason})")
    return new
