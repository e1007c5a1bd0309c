"""API: route records, attempts, logs (offset, long-poll, follow) and the live event stream."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

from fastapi.testclient import TestClient

from lbcloud.domain.artifact_keys import attempt_recording_key
from lbcloud.domain.blame import Blame
from lbcloud.domain.tasks import AttemptStatus
from lbcloud.domain.tracks import SimulatorKind
from lbcloud.entrypoints.wiring import System
from tests.entrypoints.web.conftest import ALPHA, BETA, OPERATOR, Lifecycle


def _frames(body: str) -> list[tuple[str, str]]:
    """``(event, data)`` of each SSE frame (comments skipped)."""
    out = []
    for block in body.split("\n\n"):
        lines = [ln for ln in block.split("\n") if ln and not ln.startswith(":")]
        if not lines:
            continue
        event = next((ln[7:] for ln in lines if ln.startswith("event: ")), "message")
        data = "\n".join(ln[6:] for ln in lines if ln.startswith("data: "))
        out.append((event, data))
    return out


# ------------------------------------------------------------------------------------ routes


def test_routes_list_each_route_task_with_its_record_values(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 100.0, collisions=1)
    attempt = lifecycle.start(tasks[1])
    lifecycle.fail(tasks[1], attempt, Blame.AGENT, "agent crashed: ZeroDivisionError", final=True)
    routes = client.get(f"/api/v1/submissions/{submission.id}/routes", headers=ALPHA).json()
    assert [r["instance_id"] for r in routes] == [
        "RouteScenario_0_rep0",
        "RouteScenario_1_rep0",
        "RouteScenario_2_rep0",
    ]
    first, second, third = routes
    assert (first["status"], first["record_status"], first["infractions"]) == ("done", "Completed", 1)
    assert first["infraction_counts"] == {"collisions_vehicle": 1}
    assert first["infraction_penalty"] == 0.6
    assert first["record_url"] == f"/api/v1/submissions/{submission.id}/routes/RouteScenario_0_rep0/record"
    assert (second["status"], second["blame"], second["reason"]) == (
        "failed_final",
        "agent",
        "agent crashed: ZeroDivisionError",
    )
    assert second["record_url"] is None
    assert (third["status"], third["attempts"]) == ("pending", 0)


def test_a_route_record_is_served_as_the_evaluator_wrote_it(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 100.0)
    url = f"/api/v1/submissions/{submission.id}/routes/RouteScenario_0_rep0/record"
    response = client.get(url, headers=ALPHA)
    assert response.status_code == 200
    assert response.text == lifecycle.store.route_tasks(submission.id)[0].record_json
    assert client.get(url, headers=BETA).status_code == 403
    missing = client.get(f"/api/v1/submissions/{submission.id}/routes/RouteScenario_1_rep0/record", headers=ALPHA)
    assert missing.status_code == 404
    assert missing.json() == {"error": f"route RouteScenario_1_rep0 of submission {submission.id} has no record yet"}
    unknown = client.get(f"/api/v1/submissions/{submission.id}/routes/RouteScenario_9_rep0/record", headers=ALPHA)
    assert unknown.status_code == 404


# ---------------------------------------------------------------------------------- attempts


def test_attempts_carry_outcome_blame_and_log_links(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    crashed = lifecycle.start(tasks[0])
    lifecycle.fail(tasks[0], crashed, Blame.SIMULATOR, "simulator died", final=False)
    retried = lifecycle.start(tasks[0])
    attempts = client.get(f"/api/v1/submissions/{submission.id}/attempts", headers=ALPHA).json()
    assert [(a["id"], a["number"], a["outcome"], a["blame"]) for a in attempts] == [
        (crashed.id, 1, "failed", "simulator"),
        (retried.id, 2, None, "none"),
    ]
    assert attempts[0]["counted"] is True
    assert attempts[1]["status"] == "running"
    assert attempts[1]["logs"]["agent"] == f"/api/v1/submissions/{submission.id}/attempts/{retried.id}/logs/agent"
    one = client.get(f"/api/v1/submissions/{submission.id}/attempts/{crashed.id}", headers=ALPHA).json()
    assert one["reason"] == "simulator died"


def test_an_attempt_of_another_submission_is_404(client: TestClient, lifecycle: Lifecycle) -> None:
    mine = lifecycle.submit("alpha")
    other = lifecycle.submit("alpha", agent="registry.example/other:1")
    attempt = lifecycle.start(lifecycle.plan(other)[0])
    lifecycle.plan(mine)
    response = client.get(f"/api/v1/submissions/{mine.id}/attempts/{attempt.id}", headers=ALPHA)
    assert response.status_code == 404
    assert response.json() == {"error": f"submission {mine.id} has no attempt {attempt.id}"}


# --------------------------------------------------------------------------------------- logs


def test_logs_are_read_from_an_offset_and_only_whole_lines_while_running(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    submission = lifecycle.submit("alpha")
    attempt = lifecycle.start(lifecycle.plan(submission)[0])
    lifecycle.log(attempt, "first line\nsecond li")
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/logs/agent"
    chunk = client.get(url, headers=ALPHA).json()
    assert chunk == {"offset": 0, "next_offset": 11, "text": "first line\n", "complete": False, "size": 20}
    lifecycle.log(attempt, "ne\n")
    chunk = client.get(url, params={"offset": 11}, headers=ALPHA).json()
    assert (chunk["text"], chunk["next_offset"], chunk["complete"]) == ("second line\n", 23, False)


def test_a_finished_attempts_log_is_complete_including_a_last_partial_line(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    attempt = lifecycle.start(tasks[0])
    lifecycle.log(attempt, "ok\nno newline at the end", stream="simulator")
    lifecycle.finish(tasks[0], attempt)
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/logs/simulator"
    chunk = client.get(url, params={"offset": 3}, headers=ALPHA).json()
    assert chunk == {"offset": 3, "next_offset": 24, "text": "no newline at the end", "complete": True, "size": 24}


def test_an_attempt_that_wrote_no_log_yet_reads_as_empty(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    attempt = lifecycle.start(lifecycle.plan(submission)[0])
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/logs/lbcloud"
    assert client.get(url, headers=ALPHA).json()["text"] == ""
    assert client.get(url.replace("lbcloud", "nonsense"), headers=ALPHA).status_code == 422


def test_a_team_cannot_read_another_teams_logs(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("beta")
    attempt = lifecycle.start(lifecycle.plan(submission)[0])
    lifecycle.log(attempt, "private route details\n")
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/logs/agent"
    for headers in (ALPHA, {}):
        response = client.get(url, headers=headers)
        assert response.status_code in (401, 403)
        assert "private" not in response.text
    followed = client.get(url, params={"follow": "true"}, headers=ALPHA)
    assert followed.status_code == 403
    assert client.get(url, headers=BETA).json()["text"] == "private route details\n"
    assert client.get(url, headers=OPERATOR).json()["text"] == "private route details\n"


def test_long_poll_returns_once_new_text_arrives(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    attempt = lifecycle.start(lifecycle.plan(submission)[0])
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/logs/agent"

    def later() -> None:
        time.sleep(0.3)
        lifecycle.log(attempt, "arrived\n")

    writer = threading.Thread(target=later)
    writer.start()
    chunk = client.get(url, params={"wait": 30}, headers=ALPHA).json()
    writer.join()
    assert chunk["text"] == "arrived\n"


def test_follow_streams_the_log_until_the_attempt_ends(
    client: TestClient, lifecycle: Lifecycle, system: System
) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    attempt = lifecycle.start(tasks[0])
    lifecycle.log(attempt, "line 0\n")
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/logs/agent"

    def run() -> None:
        for i in range(1, 4):
            time.sleep(0.2)
            lifecycle.log(attempt, f"line {i}\n")
        lifecycle.finish(tasks[0], attempt)

    writer = threading.Thread(target=run)
    writer.start()
    response = client.get(url, params={"follow": "true"}, headers=ALPHA)
    writer.join()
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = _frames(response.text)
    assert frames[-1][0] == "end"
    text = "".join(json.loads(data)["text"] for event, data in frames if event == "log")
    assert text == "line 0\nline 1\nline 2\nline 3\n"
    assert system.store.get_attempt(attempt.id).status is AttemptStatus.ENDED


# --------------------------------------------------------------------------------------- live


def test_live_feed_of_a_finished_submission_sends_one_snapshot_and_ends(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    done = lifecycle.finished("alpha", (100.0,))
    response = client.get(f"/api/v1/submissions/{done.id}/live", headers=ALPHA)
    frames = _frames(response.text)
    assert [event for event, _ in frames] == ["progress", "end"]
    payload = json.loads(frames[0][1])
    assert payload["progress"]["submission"]["status"] == "finished"
    assert set(payload["html"]) == {"summary", "routes", "chart_scores", "chart_timeline", "attempts"}


def test_live_feed_pushes_events_and_snapshots_as_the_submission_runs(
    client: TestClient, lifecycle: Lifecycle, system: System
) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission, ("0", "1"))
    first = lifecycle.start(tasks[0])
    hub = client.app.state.live_hub  # type: ignore[attr-defined]

    def run() -> None:
        while hub.watched == 0:  # wait for the browser-side subscriber
            time.sleep(0.02)
        time.sleep(0.3)  # and for its first snapshot (the feed polls the store every 0.25 s)
        lifecycle.finish(tasks[0], first, 90.0)
        lifecycle.finish(tasks[1], lifecycle.start(tasks[1]), 70.0)

    writer = threading.Thread(target=run)
    writer.start()
    response = client.get(f"/api/v1/submissions/{submission.id}/live", headers=ALPHA)
    writer.join()
    frames = _frames(response.text)
    kinds = [event for event, _ in frames]
    assert kinds[0] == "progress" and kinds[-1] == "end"
    first_snapshot = json.loads(frames[0][1])["progress"]
    # the first snapshot shows the submission still running (its first record may just have landed)
    assert first_snapshot["submission"]["status"] in ("running", "partially_evaluated")
    events = [json.loads(data) for event, data in frames if event == "event"]
    assert [e["kind"] for e in events if e["kind"] == "route_done"] == ["route_done", "route_done"]
    last_snapshot = json.loads([data for event, data in frames if event == "progress"][-1])["progress"]
    assert last_snapshot["submission"]["status"] == "finished"
    assert last_snapshot["driving_score"] == 80.0
    assert hub.watched == 0


def test_live_feed_is_private_to_the_team(client: TestClient, lifecycle: Lifecycle) -> None:
    theirs = lifecycle.submit("beta")
    assert client.get(f"/api/v1/submissions/{theirs.id}/live", headers=ALPHA).status_code == 403


def test_a_carla_attempts_recording_is_linked_from_the_submission_and_served(
    client: TestClient, lifecycle: Lifecycle, system: System
) -> None:
    system.tracks["sumo-dev"] = dataclasses.replace(system.tracks["sumo-dev"], simulator=SimulatorKind.CARLA)
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    attempt = lifecycle.start(tasks[0])
    lifecycle.finish(tasks[0], attempt, 100.0)
    other = lifecycle.start(tasks[1])
    lifecycle.fail(tasks[1], other, Blame.SIMULATOR, "simulator died", final=False)
    system.artifacts.put(attempt_recording_key(submission.id, attempt.id), b"CARLA_RECORDER...")
    listed = client.get(f"/api/v1/submissions/{submission.id}/attempts", headers=ALPHA).json()
    url = f"/api/v1/submissions/{submission.id}/attempts/{attempt.id}/recording"
    assert {a["id"]: a["recording"] for a in listed} == {attempt.id: url, other.id: None}
    page = client.get(f"/submissions/{submission.id}", headers=ALPHA)
    assert f'href="{url}"' in page.text
    served = client.get(url, headers=ALPHA)
    assert served.status_code == 200 and served.content == b"CARLA_RECORDER..."
    assert "attachment" in served.headers["content-disposition"]
    assert client.get(url, headers=BETA).status_code in (403, 404), "another team cannot download it"
    missing = f"/api/v1/submissions/{submission.id}/attempts/{other.id}/recording"
    assert client.get(missing, headers=ALPHA).status_code == 404
