"""The route detail (API and page): infractions with positions and penalty factors, the attempt
history, the last error with a traceback excerpt, and links to logs."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from lbcloud.domain import artifact_keys
from lbcloud.domain.blame import Blame
from lbcloud.entrypoints.web.auth import COOKIE_NAME
from lbcloud.entrypoints.web.route_detail import traceback_excerpt
from tests.entrypoints.web.conftest import ALPHA, BETA, TEAM_TOKENS, Lifecycle

AGENT_LOG = """12:00:01 INFO    agent: warming up
12:00:02 WARNING lbcloud.tracks.sumo.evaluator: the agent's traceback:
Traceback (most recent call last):
  File "/agents/crashing.py", line 12, in run_step
    return self.policy(data)
  File "/agents/crashing.py", line 20, in policy
    raise ValueError("no lane found")
ValueError: no lane found
12:00:02 ERROR   lbcloud.tracks.sumo.evaluator: RouteScenario_1_rep0: the agent crashed: ValueError: no lane found
"""


def test_a_route_with_collisions_lists_each_with_position_and_penalty(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    attempt = lifecycle.start(tasks[0])
    lifecycle.finish(tasks[0], attempt, 80.0, collisions=2)
    record = json.loads(tasks_record(lifecycle, submission.id, 0))
    messages = record["_checkpoint"]["records"][0]["infractions"]["collisions_vehicle"]
    timeline = {
        "RouteScenario_0_rep0": {
            "samples": [[0.0, 0.0], [10.0, 40.0], [20.5, 80.0]],
            "events": [{"t": 7.5, "kind": "collisions_vehicle", "message": messages[0]},
                       {"t": 12.0, "kind": "collisions_vehicle", "message": messages[1]}],
        }
    }  # fmt: skip
    lifecycle.system.artifacts.put(
        artifact_keys.attempt_timeline_key(submission.id, attempt.id), json.dumps(timeline).encode()
    )
    detail = client.get(f"/api/v1/submissions/{submission.id}/routes/{tasks[0].instance_id}", headers=ALPHA).json()
    assert [i["kind"] for i in detail["infractions"]] == ["collisions_vehicle", "collisions_vehicle"]
    first = detail["infractions"][0]
    assert (first["x"], first["y"], first["z"]) == (1.0, 2.0, 0.0)
    assert first["factor"] == 0.6  # lb2.0: a vehicle collision multiplies the penalty by 0.6
    assert [i["time_s"] for i in detail["infractions"]] == [7.5, 12.0]
    assert [p["completion"] for p in detail["completion"]] == [0.0, 40.0, 80.0]
    assert detail["route"]["state"]["word"] == "done"
    assert len(detail["attempts"]) == 1
    assert detail["last_error"] is None
    page = client.get(
        f"/submissions/{submission.id}/routes/{tasks[0].instance_id}", cookies={COOKIE_NAME: TEAM_TOKENS["alpha"]}
    )
    assert page.status_code == 200
    assert page.text.count('<tr data-kind="collisions_vehicle">') == 2
    assert "×0.600" in page.text
    assert 'data-testid="completion-chart"' in page.text and "7.5 s" in page.text


def test_a_crashed_route_shows_the_attempts_error_and_traceback(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    first = lifecycle.start(tasks[1])
    lifecycle.fail(tasks[1], first, Blame.SIMULATOR, "the simulation crashed", final=False)
    second = lifecycle.start(tasks[1])
    lifecycle.log(second, AGENT_LOG)
    lifecycle.fail(tasks[1], second, Blame.AGENT, "the agent crashed: ValueError: no lane found", final=True)
    detail = client.get(f"/api/v1/submissions/{submission.id}/routes/{tasks[1].instance_id}", headers=ALPHA).json()
    assert [a["state"]["word"] for a in detail["attempts"]] == ["simulator failed", "agent failed"]
    assert detail["route"]["state"]["word"] == "agent failed"
    assert detail["last_error"] == "the agent crashed: ValueError: no lane found"
    assert detail["traceback"].startswith("Traceback (most recent call last):")
    assert detail["traceback"].endswith("ValueError: no lane found")
    page = client.get(
        f"/submissions/{submission.id}/routes/{tasks[1].instance_id}", cookies={COOKIE_NAME: TEAM_TOKENS["alpha"]}
    ).text
    assert 'data-testid="traceback"' in page
    assert f"/api/v1/submissions/{submission.id}/attempts/{second.id}/logs/agent" in page
    assert "done" not in page.split('data-testid="route-status">')[1].split("<")[0]


def tasks_record(lifecycle: Lifecycle, submission_id: int, position: int) -> str:
    task = next(t for t in lifecycle.store.route_tasks(submission_id) if t.position == position)
    assert task.record_json is not None
    return task.record_json


def test_a_malformed_timeline_is_ignored(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    attempt = lifecycle.start(tasks[0])
    lifecycle.finish(tasks[0], attempt, 80.0, collisions=1)
    key = artifact_keys.attempt_timeline_key(submission.id, attempt.id)
    for junk in (b"not json", b"[1, 2]", b'{"RouteScenario_0_rep0": {"samples": [["a", 1]], "events": [{"t": "x"}]}}'):
        lifecycle.system.artifacts.put(key, junk)
        detail = client.get(f"/api/v1/submissions/{submission.id}/routes/{tasks[0].instance_id}", headers=ALPHA)
        assert detail.status_code == 200
        assert detail.json()["completion"] == [] and detail.json()["infractions"][0]["time_s"] is None


def test_another_team_cannot_read_a_route(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    response = client.get(f"/api/v1/submissions/{submission.id}/routes/{tasks[0].instance_id}", headers=BETA)
    assert response.status_code == 403
    missing = client.get(f"/api/v1/submissions/{submission.id}/routes/RouteScenario_9_rep0", headers=ALPHA)
    assert missing.status_code == 404


def test_a_traceback_excerpt_keeps_the_head_and_the_exception() -> None:
    frames = "".join(f'  File "a.py", line {i}, in f\n    g()\n' for i in range(40))
    text = traceback_excerpt(f"noise\nTraceback (most recent call last):\n{frames}RecursionError: deep\nlater line\n")
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "RecursionError: deep"
    assert len(lines) == 25
    assert traceback_excerpt("no traceback here") is None
