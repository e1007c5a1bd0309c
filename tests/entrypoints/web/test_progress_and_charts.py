"""Pure pieces of the live view: queue position and ETA, attempt lanes, chart geometry, log chunks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.errors import NotFound
from lbcloud.entrypoints.web.charts import score_chart, timeline
from lbcloud.entrypoints.web.progress import Span, Workload, assign_lanes, estimate
from lbcloud.entrypoints.web.sse import read_log_chunk, sse_frame
from lbcloud.entrypoints.web.views import build_progress
from lbcloud.entrypoints.wiring import System
from lbcloud.services.ports import BlobInfo
from tests.entrypoints.web.conftest import Lifecycle

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _load(sid: int, minutes: int, remaining: float, started: bool = False, pool: str = "p") -> Workload:
    return Workload(sid, T0 + timedelta(minutes=minutes), pool, remaining, remaining / 3 if remaining else 0.0, started)


def test_queue_position_counts_older_waiting_submissions_of_the_same_pool() -> None:
    loads = [_load(1, 0, 600, started=True), _load(2, 1, 300), _load(3, 2, 300), _load(4, 0, 900, pool="other")]
    assert estimate(loads[2], loads, slots=2).queue_position == 2
    assert estimate(loads[1], loads, slots=2).queue_position == 1
    assert estimate(loads[0], loads, slots=2).queue_position is None


def test_eta_spreads_the_work_ahead_and_its_own_over_the_slots() -> None:
    loads = [_load(1, 0, 600, started=True), _load(2, 1, 300)]
    result = estimate(loads[1], loads, slots=3)
    assert result.ahead_s == 600
    assert result.eta_s == 300.0


def test_eta_is_never_shorter_than_the_longest_remaining_route() -> None:
    target = Workload(1, T0, "p", remaining_s=100.0, longest_s=90.0, started=True)
    assert estimate(target, [target], slots=10).eta_s == 90.0


def test_nothing_left_has_no_eta() -> None:
    target = _load(1, 0, 0, started=True)
    assert estimate(target, [target], slots=1).eta_s is None


spans = st.lists(
    st.tuples(st.floats(0, 1000, allow_nan=False), st.floats(0.001, 200, allow_nan=False)), min_size=0, max_size=40
)


@given(spans)
def test_lanes_never_overlap_and_are_as_few_as_the_peak_concurrency(raw: list[tuple[float, float]]) -> None:
    items = [Span(i, start, start + length) for i, (start, length) in enumerate(raw)]
    lanes = assign_lanes(items)
    assert set(lanes) == {s.key for s in items}
    for lane in set(lanes.values()):
        on_lane = sorted((s for s in items if lanes[s.key] == lane), key=lambda s: (s.start, s.end))
        assert all(a.end <= b.start for a, b in itertools.pairwise(on_lane))
    points = sorted({s.start for s in items})
    peak = max((sum(1 for s in items if s.start <= p < s.end) for p in points), default=0)
    assert len(set(lanes.values())) == peak


class _Blobs:
    def __init__(self, data: dict[str, bytes]) -> None:
        self.data = data

    def put(self, key: str, data: bytes, content_type: str = "") -> None:
        self.data[key] = data

    def get(self, key: str) -> bytes:
        if key not in self.data:
            raise NotFound(key)
        return self.data[key]

    def exists(self, key: str) -> bool:
        return key in self.data

    def list(self, prefix: str) -> list[BlobInfo]:
        return []

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def test_a_running_log_never_splits_a_utf8_character_or_a_line() -> None:
    blobs = _Blobs({"k": "voilà\nhalf é".encode()[:-1]})
    chunk = read_log_chunk(blobs, "k", 0, finished=False)
    assert chunk.text == "voilà\n"
    assert chunk.complete is False


def test_large_logs_come_in_bounded_chunks() -> None:
    blobs = _Blobs({"k": b"x" * 100 + b"\n" + b"y" * 100 + b"\n"})
    first = read_log_chunk(blobs, "k", 0, finished=True, max_bytes=150)
    assert (first.text, first.complete) == ("x" * 100 + "\n", False)
    second = read_log_chunk(blobs, "k", first.next_offset, finished=True, max_bytes=150)
    assert (second.text, second.complete) == ("y" * 100 + "\n", True)


def test_an_offset_past_the_end_is_clamped() -> None:
    chunk = read_log_chunk(_Blobs({"k": b"abc\n"}), "k", 99, finished=True)
    assert (chunk.offset, chunk.text, chunk.complete) == (4, "", True)


def test_sse_frames_split_multiline_data() -> None:
    assert sse_frame("log", "a\nb", 7) == "event: log\nid: 7\ndata: a\ndata: b\n\n"


def test_the_timeline_puts_overlapping_attempts_on_separate_slots(lifecycle: Lifecycle, system: System) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    first, second = lifecycle.start(tasks[0]), lifecycle.start(tasks[1])
    lifecycle.finish(tasks[0], first)
    progress = build_progress(system, system.store.get_submission(submission.id))
    chart = timeline(progress, system.clock.now())
    lanes = {s.attempt_id: s.lane for s in chart.segments}
    assert lanes[first.id] != lanes[second.id]
    assert chart.lanes == 2
    css = {s.attempt_id: s.css for s in chart.segments}
    assert (css[first.id], css[second.id]) == ("att-record", "att-running")


def test_the_score_chart_has_one_bar_per_route_scaled_to_100(lifecycle: Lifecycle, system: System) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 50.0)
    progress = build_progress(system, system.store.get_submission(submission.id))
    chart = score_chart(progress)
    assert [b.state for b in chart.bars] == ["done", "pending", "pending"]
    full = chart.plot_bottom - chart.plot_top
    assert chart.bars[0].rc_h == full / 2
    assert chart.bars[0].driving_score == 50.0
