"""How a submission's, a route's and an attempt's state are shown to people: one place for the words,
the tone (colour) and the progress, used by the CLI, the web pages and EvalAI's stdout alike.

Every view is computed from the same counts, so a page can never say "finished" next to a half bar,
or "done" in green for a route where the agent crashed:

- the progress bar counts route tasks that **have a result** (a record or a final failure); a cancelled
  or failed submission shows how far it got, never a full bar;
- a route's word says what happened to *it* (``agent failed``, ``not run``), not what the scheduler
  did with its task (``done``);
- an attempt that produced a record blamed on the agent is an agent failure, not a green ``record``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lbcloud.domain.blame import Blame
from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.domain.tasks import AttemptOutcome, AttemptStatus, RouteTaskStatus


class Tone(StrEnum):
    """The colour family of a state (CSS class ``tone-<value>``, a rich style in the CLI)."""

    NEUTRAL = "neutral"
    ACTIVE = "active"
    GOOD = "good"
    WARN = "warn"
    BAD = "bad"


TONE_STYLE: dict[Tone, str] = {
    Tone.NEUTRAL: "blue",
    Tone.ACTIVE: "cyan",
    Tone.GOOD: "green",
    Tone.WARN: "yellow",
    Tone.BAD: "red",
}
"""The terminal style of each tone (rich markup)."""


@dataclass(frozen=True, slots=True)
class RouteCounts:
    """A submission's route tasks by what they came to. ``total`` includes every task."""

    total: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    cancelled: int = 0

    @property
    def settled(self) -> int:
        """Route tasks with a result: a record, or a final failure (cancelled ones have neither)."""
        return self.done + self.failed

    @property
    def waiting(self) -> int:
        return max(self.total - self.settled - self.running - self.cancelled, 0)


@dataclass(frozen=True, slots=True)
class StateView:
    """What to show for one state.

    ``word`` is the short status (a badge); ``detail`` one sentence that never contradicts it;
    ``progress`` the fraction of the bar to fill (``None``: show no bar); ``terminal``: nothing more
    will happen unless someone acts."""

    word: str
    tone: Tone
    detail: str
    progress: float | None
    terminal: bool

    @property
    def percent(self) -> int | None:
        return None if self.progress is None else round(100 * self.progress)


def _routes(n: int) -> str:
    return f"{n} route" + ("" if n == 1 else "s")


def _fraction(counts: RouteCounts) -> float:
    return counts.settled / counts.total if counts.total else 0.0


def _so_far(counts: RouteCounts) -> str:
    text = f"{counts.settled} of {_routes(counts.total)} evaluated"
    if counts.failed:
        text += f" ({counts.failed} failed)"
    return text


def describe_submission(status: SubmissionStatus, counts: RouteCounts, reason: str | None = None) -> StateView:
    """The words, tone and progress of a submission in ``status`` whose route tasks are ``counts``."""
    s = SubmissionStatus
    why = f": {reason}" if reason else ""
    if status is s.SUBMITTED:
        return StateView("submitted", Tone.NEUTRAL, "received; its routes are being planned", None, False)
    if status is s.QUEUED:
        detail = f"waiting for a free slot; {_so_far(counts)}" if counts.settled else "waiting for a free slot"
        return StateView("queued", Tone.NEUTRAL, detail, _fraction(counts), False)
    if status is s.RESUMING:
        kept = f"{counts.settled} of {_routes(counts.total)} kept" if counts.total else "done routes kept"
        return StateView("resuming", Tone.NEUTRAL, f"{kept}; the others run again", _fraction(counts), False)
    if status in (s.RUNNING, s.PARTIALLY_EVALUATED):
        running = f", {counts.running} running now" if counts.running else ""
        word = "running" if status is s.RUNNING else "partially evaluated"
        return StateView(word, Tone.ACTIVE, f"{_so_far(counts)}{running}", _fraction(counts), False)
    if status is s.FINISHED:
        detail = f"all {_routes(counts.total)} evaluated" if counts.total else "evaluated"
        if counts.failed:
            detail += f" ({counts.failed} failed, scored as the leaderboard does)"
        return StateView("finished", Tone.GOOD, detail, 1.0, True)
    when = f"after {_so_far(counts)}" if counts.settled else "before any route was evaluated"
    if status is s.FAILED:
        return StateView("failed", Tone.BAD, f"stopped {when}{why}", _fraction(counts), True)
    if status is s.CANCELLED:
        return StateView("cancelled", Tone.WARN, f"cancelled {when}{why}", _fraction(counts), True)
    raise ValueError(f"no words for submission status {status!r}")  # pragma: no cover - enum is exhaustive


def describe_route(
    status: RouteTaskStatus, *, blame: Blame = Blame.NONE, record_status: str | None = None, reason: str | None = None
) -> StateView:
    """The words of one route task: what happened to the route, not to its scheduling."""
    t = RouteTaskStatus
    why = f": {reason}" if reason else ""
    if status is t.PENDING:
        retry = f" (retrying after a {blame.value} fault)" if blame in (Blame.SIMULATOR, Blame.INFRASTRUCTURE) else ""
        return StateView("waiting", Tone.NEUTRAL, f"waiting for a slot{retry}", 0.0, False)
    if status is t.RUNNING:
        return StateView("running", Tone.ACTIVE, "being evaluated now", None, False)
    if status is t.CANCELLED:
        return StateView(
            "not run", Tone.NEUTRAL, f"not evaluated{why or ' (the submission stopped first)'}", None, True
        )
    if status is t.FAILED_FINAL:
        words = {Blame.AGENT: "agent failed", Blame.SIMULATOR: "simulator failed"}
        word = words.get(blame, "failed")
        return StateView(word, Tone.BAD, f"no result{why}", 1.0, True)
    if status is t.DONE:
        if blame is Blame.AGENT:
            return StateView("agent failed", Tone.BAD, reason or record_status or "the agent failed", 1.0, True)
        if blame is not Blame.NONE:
            return StateView("failed", Tone.BAD, f"{record_status or 'failed'} ({blame.value})", 1.0, True)
        if record_status and record_status.startswith("Failed"):
            return StateView("done", Tone.WARN, record_status, 1.0, True)
        return StateView("done", Tone.GOOD, record_status or "evaluated", 1.0, True)
    raise ValueError(f"no words for route status {status!r}")  # pragma: no cover - enum is exhaustive


def describe_attempt(status: AttemptStatus, outcome: AttemptOutcome | None, blame: Blame = Blame.NONE) -> StateView:
    """The words of one attempt (a try at a route)."""
    if status is AttemptStatus.STARTING:
        return StateView("starting", Tone.ACTIVE, "simulator and agent are starting", None, False)
    if status is AttemptStatus.WAITING_CAPACITY:
        return StateView("waiting", Tone.NEUTRAL, "waiting for capacity in the cluster", None, False)
    if status is AttemptStatus.RUNNING or outcome is None:
        return StateView("running", Tone.ACTIVE, "simulator and agent are running", None, False)
    if outcome is AttemptOutcome.CANCELLED:
        return StateView("cancelled", Tone.WARN, "stopped on request", None, True)
    if outcome is AttemptOutcome.LOST:
        return StateView("lost", Tone.WARN, "lost by the infrastructure; not counted against the team", None, True)
    if blame is Blame.AGENT:
        return StateView("agent failed", Tone.BAD, "the agent failed; counts against the team", None, True)
    if blame is Blame.SIMULATOR:
        return StateView(
            "simulator failed", Tone.WARN, "the simulator failed; retried, not the team's fault", None, True
        )
    if blame is Blame.INFRASTRUCTURE:
        return StateView(
            "infra failed", Tone.WARN, "the infrastructure failed; retried, not the team's fault", None, True
        )
    if outcome is AttemptOutcome.RECORD:
        return StateView("record", Tone.GOOD, "the route record was written", None, True)
    return StateView("failed", Tone.BAD, "ended without a route record", None, True)


def count_routes(statuses: list[RouteTaskStatus]) -> RouteCounts:
    """Tally route task statuses into :class:`RouteCounts`."""
    t = RouteTaskStatus
    return RouteCounts(
        total=len(statuses),
        done=sum(1 for s in statuses if s is t.DONE),
        failed=sum(1 for s in statuses if s is t.FAILED_FINAL),
        running=sum(1 for s in statuses if s is t.RUNNING),
        cancelled=sum(1 for s in statuses if s is t.CANCELLED),
    )


def format_number(value: float | None, digits: int = 2) -> str:
    """One number format everywhere: fixed ``digits`` decimals, ``–`` for no value."""
    return "–" if value is None else f"{value:.{digits}f}"
