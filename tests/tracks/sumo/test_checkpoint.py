"""Resume rules (spec §5.1) and atomic, byte-exact checkpoint writes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lbcloud.domain.results.model import ResultFormat, ResultsFile, RouteRecord
from lbcloud.domain.results.scoring import build_route_record
from lbcloud.domain.results.writer import dumps_results
from lbcloud.tracks.sumo.checkpoint import read_checkpoint, resume_point, write_checkpoint

IDS = ["RouteScenario_0_rep0", "RouteScenario_1_rep0", "RouteScenario_2_rep0"]


def record(index: int, route_id: str, failure: str | None = None) -> RouteRecord:
    return build_route_record(
        index=index, route_id=route_id, route_completion=100 if failure is None else 20.0, events=[],
        route_length=100.0, duration_game=10.0, duration_system=1.0, failure=failure,
    )  # fmt: skip


def document(records: list[RouteRecord], done: int, total: int = 3, status: str = "Started") -> ResultsFile:
    return ResultsFile(ResultFormat.V2X, tuple(records), (done, total), entry_status=status, sensors=("carla_gnss",))


def test_no_checkpoint_starts_from_zero() -> None:
    assert resume_point(None, IDS).start == 0


def test_a_finished_route_is_skipped() -> None:
    point = resume_point(document([record(0, IDS[0])], 1), IDS)
    assert point.start == 1
    assert [r.route_id for r in point.records] == IDS[:1]
    assert point.sensors == ("carla_gnss",)


def test_a_crashed_route_runs_again() -> None:
    crashed = record(1, IDS[1], "Simulation crashed")
    assert resume_point(document([record(0, IDS[0]), crashed], 2, status="Crashed"), IDS).start == 1


def test_fewer_records_than_progress_restart_at_the_last_record() -> None:
    assert resume_point(document([record(0, IDS[0])], 3), IDS).start == 0
    assert resume_point(document([record(0, IDS[0]), record(1, IDS[1])], 3), IDS).start == 1


def test_resume_is_abandoned_for_another_run_shape_or_unexpected_ids() -> None:
    assert resume_point(document([record(0, IDS[0])], 1, total=5), IDS).start == 0
    assert resume_point(document([record(0, IDS[1])], 1), IDS).start == 0
    assert resume_point(document([record(0, IDS[0])], 1, status="Invalid"), IDS).start == 0


def test_written_file_is_the_writer_text_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "out" / "results.json"
    doc = document([record(0, IDS[0])], 1)
    write_checkpoint(path, doc)
    assert path.read_text(encoding="utf-8") == dumps_results(doc)
    assert not path.read_text().endswith("\n")
    assert read_checkpoint(path) == doc
    assert list(path.parent.iterdir()) == [path]


def test_unreadable_checkpoints_read_as_none(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path / "missing.json") is None
    (tmp_path / "empty.json").write_text("")
    assert read_checkpoint(tmp_path / "empty.json") is None
    (tmp_path / "junk.json").write_text("{not json")
    assert read_checkpoint(tmp_path / "junk.json") is None


@given(
    st.integers(0, 5),
    st.integers(0, 6),
    st.sampled_from(["Started", "Crashed", "Rejected", "Finished"]),
)
def test_resume_never_starts_outside_the_run_or_beyond_the_records(count: int, done: int, status: str) -> None:
    ids = [f"RouteScenario_{i}_rep0" for i in range(5)]
    records = [record(i, ids[i]) for i in range(count)]
    point = resume_point(document(records, done, total=5, status=status), ids)
    assert 0 <= point.start <= 5
    assert point.start <= max(len(point.records), 0) or point.start == 0
    if status == "Crashed" and 0 < done <= count:
        assert point.start == done - 1
