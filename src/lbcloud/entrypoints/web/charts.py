"""Chart geometry for the submission page (pure): driving score per route and the attempt timeline.

The SVG itself is written by the Jinja partials ``_chart_scores.html`` and ``_chart_timeline.html``
from these values, so the page renders without JavaScript and the live view swaps in fresh markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lbcloud.entrypoints.web.progress import Span, assign_lanes
from lbcloud.entrypoints.web.views import ProgressOut

WIDTH = 720
PLOT_LEFT = 44
PLOT_RIGHT = 12


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    x: float
    width: float
    ds_y: float
    ds_h: float
    rc_y: float
    rc_h: float
    driving_score: float | None
    route_completion: float | None
    state: str


@dataclass(frozen=True, slots=True)
class ScoreChart:
    width: int
    height: int
    plot_top: float
    plot_bottom: float
    plot_left: float
    plot_right: float
    bars: list[Bar]
    gridlines: list[tuple[float, int]]


def score_chart(progress: ProgressOut, height: int = 220) -> ScoreChart:
    """One bar per route instance: driving score (solid) over route completion (pale)."""
    top, bottom = 12.0, float(height - 34)
    span = bottom - top
    routes = progress.routes
    n = max(len(routes), 1)
    slot = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / n
    width = max(min(slot * 0.7, 48.0), 2.0)
    bars: list[Bar] = []
    for i, r in enumerate(routes):
        x = PLOT_LEFT + i * slot + (slot - width) / 2
        ds = r.driving_score if r.driving_score is not None else 0.0
        rc = r.route_completion if r.route_completion is not None else 0.0
        ds_h = span * max(min(ds, 100.0), 0.0) / 100.0
        rc_h = span * max(min(rc, 100.0), 0.0) / 100.0
        state = "done" if r.record_status else r.status
        bars.append(
            Bar(r.route_id if r.repetition == 0 else f"{r.route_id}/{r.repetition}", x, width,
                bottom - ds_h, ds_h, bottom - rc_h, rc_h, r.driving_score, r.route_completion, state)
        )  # fmt: skip
    grid = [(bottom - span * v / 100.0, v) for v in (0, 25, 50, 75, 100)]
    return ScoreChart(WIDTH, height, top, bottom, PLOT_LEFT, WIDTH - PLOT_RIGHT, bars, grid)


@dataclass(frozen=True, slots=True)
class Segment:
    attempt_id: int
    label: str
    lane: int
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Timeline:
    width: int
    height: int
    plot_left: float
    plot_right: float
    lanes: int
    lane_height: float
    segments: list[Segment]
    ticks: list[tuple[float, str]]
    seconds: float


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}"
    return f"{seconds}s"


def _css(outcome: str | None, blame: str, status: str) -> str:
    if outcome is None:
        return "att-waiting" if status == "waiting_capacity" else "att-running"
    if outcome == "record":
        return "att-agent" if blame == "agent" else "att-record"
    if outcome == "cancelled":
        return "att-cancelled"
    return f"att-{blame}" if blame in ("agent", "simulator", "infrastructure") else "att-failed"


def timeline(progress: ProgressOut, now: datetime, lane_height: float = 22.0) -> Timeline:
    """Attempts on lanes (one lane per concurrently used slot), time from the first attempt's start."""
    started = [a for a in progress.attempts if a.started_at is not None or a.ended_at is not None]
    if not started:
        return Timeline(WIDTH, 60, 64, WIDTH - PLOT_RIGHT, 0, lane_height, [], [], 0.0)
    origin = min((a.started_at or a.created_at) for a in started)
    spans = []
    for a in started:
        start = ((a.started_at or a.created_at) - origin).total_seconds()
        end = ((a.ended_at or now) - origin).total_seconds()
        spans.append(Span(a.id, start, max(end, start)))
    total = max(*(s.end for s in spans), 1.0)
    lanes = assign_lanes(spans)
    n_lanes = max(lanes.values()) + 1
    left, right = 64.0, float(WIDTH - PLOT_RIGHT)
    scale = (right - left) / total
    by_id = {a.id: a for a in started}
    segments = []
    for s in spans:
        a = by_id[s.key]
        lane = lanes[s.key]
        outcome = a.outcome or ("running" if a.status != "waiting_capacity" else "waiting for capacity")
        title = f"attempt {a.id} · {a.route} #{a.number} · {outcome}"
        if a.blame != "none":
            title += f" · blame {a.blame}"
        if a.reason:
            title += f" · {a.reason}"
        title += f" · {_clock(s.end - s.start)}"
        segments.append(
            Segment(a.id, a.route.removeprefix("RouteScenario_"), lane, left + s.start * scale,
                    8 + lane * lane_height, max((s.end - s.start) * scale, 2.0), lane_height - 4,
                    _css(a.outcome, a.blame, a.status), title)
        )  # fmt: skip
    ticks = [(left + (right - left) * i / 4, _clock(total * i / 4)) for i in range(5)]
    height = int(8 + n_lanes * lane_height + 26)
    return Timeline(WIDTH, height, left, right, n_lanes, lane_height, segments, ticks, total)
