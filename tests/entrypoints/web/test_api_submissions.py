"""API: tracks, leaderboard, submissions (create, list, get, cancel, resume), history, events, results."""

from __future__ import annotations

from fastapi.testclient import TestClient

from lbcloud.domain.submissions import SubmissionStatus
from lbcloud.entrypoints.wiring import System
from tests.entrypoints.web.conftest import ALPHA, BETA, OPERATOR, Lifecycle, auth

IMAGE = {"track": "sumo-dev", "agent": "registry.example/alpha/agent:1"}


# --------------------------------------------------------------------------------------- tracks


def test_tracks_are_public(client: TestClient) -> None:
    response = client.get("/api/v1/tracks")
    assert response.status_code == 200
    names = [t["name"] for t in response.json()]
    assert names == ["sumo-dev", "sumo-test"]
    assert client.get("/api/v1/tracks/sumo-test").json()["scorer"] == "lb2.0"


def test_an_unknown_track_is_404_with_one_clear_line(client: TestClient) -> None:
    response = client.get("/api/v1/tracks/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "no track 'nope' (tracks: sumo-dev, sumo-test)"}


def test_leaderboard_is_public_and_ranks_by_driving_score(client: TestClient, lifecycle: Lifecycle) -> None:
    weaker = lifecycle.finished("beta", (50.0, 50.0))
    stronger = lifecycle.finished("alpha", (100.0, 90.0))
    lifecycle.submit("alpha", agent="registry.example/alpha:still-running")
    board = client.get("/api/v1/tracks/sumo-dev/leaderboard").json()
    assert [e["submission_id"] for e in board["entries"]] == [stronger.id, weaker.id]
    assert [e["rank"] for e in board["entries"]] == [1, 2]
    assert board["columns"][0] == {
        "key": "avg_driving_score",
        "label": "Avg. driving score",
        "short": "Driving score",
        "higher_is_better": True,
    }
    assert len(board["columns"]) == 15
    top = board["entries"][0]
    assert top["values"][:3] == [95.0, 95.0, 1.0]
    assert len(top["values"]) == 15
    assert top["manifest_url"] == f"/api/v1/submissions/{stronger.id}/manifest"
    assert top["entry_status"] == "Finished"


def test_leaderboard_of_an_unknown_track_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/tracks/nope/leaderboard").status_code == 404


# ---------------------------------------------------------------------------------- create/list


def test_a_team_submits_an_image_for_itself(client: TestClient, system: System) -> None:
    response = client.post("/api/v1/submissions", json={**IMAGE, "method_name": "PlanT"}, headers=ALPHA)
    assert response.status_code == 201
    body = response.json()
    assert (body["team"], body["track"], body["status"], body["method_name"]) == (
        "alpha",
        "sumo-dev",
        "submitted",
        "PlanT",
    )
    assert system.store.get_submission(body["id"]).agent.ref == IMAGE["agent"]


def test_resubmitting_with_the_same_external_id_returns_the_same_submission(client: TestClient) -> None:
    first = client.post("/api/v1/submissions", json={**IMAGE, "external_id": "ext-1"}, headers=ALPHA)
    again = client.post("/api/v1/submissions", json={**IMAGE, "external_id": "ext-1"}, headers=ALPHA)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_a_team_cannot_submit_for_another_team_or_a_local_agent(client: TestClient) -> None:
    other = client.post("/api/v1/submissions", json={**IMAGE, "team": "beta"}, headers=ALPHA)
    assert other.status_code == 403
    assert other.json() == {"error": "a alpha token cannot submit for team 'beta'"}
    local = client.post("/api/v1/submissions", json={**IMAGE, "kind": "local"}, headers=ALPHA)
    assert local.status_code == 403


def test_the_operator_submits_a_local_agent_for_a_team(client: TestClient, tmp_path: object) -> None:
    from pathlib import Path

    agent = Path(str(tmp_path)) / "agent.py"
    agent.write_text("class Agent:\n    pass\n")
    body = {"track": "sumo-dev", "agent": str(agent), "kind": "local", "team": "gamma"}
    response = client.post("/api/v1/submissions", json=body, headers=OPERATOR)
    assert response.status_code == 201, response.text
    assert response.json()["agent_kind"] == "local"
    assert response.json()["agent_digest"].startswith("sha256:")


def test_the_operator_must_name_the_team(client: TestClient) -> None:
    response = client.post("/api/v1/submissions", json=IMAGE, headers=OPERATOR)
    assert response.status_code == 400
    assert "team" in response.json()["error"]


def test_an_unknown_track_is_refused_as_input(client: TestClient) -> None:
    response = client.post("/api/v1/submissions", json={**IMAGE, "track": "nope"}, headers=ALPHA)
    assert response.status_code == 400
    assert response.json()["error"].startswith("unknown track 'nope'")


def test_a_malformed_body_is_422_with_the_field_named(client: TestClient) -> None:
    response = client.post("/api/v1/submissions", json={"agent": "x"}, headers=ALPHA)
    assert response.status_code == 422
    assert response.json() == {"error": "track: Field required"}


def test_the_same_image_digest_twice_while_active_is_a_conflict(client: TestClient) -> None:
    pinned = {**IMAGE, "agent": "registry.example/alpha/agent@sha256:" + "a" * 64}
    assert client.post("/api/v1/submissions", json=pinned, headers=ALPHA).status_code == 201
    second = client.post("/api/v1/submissions", json=pinned, headers=ALPHA)
    assert second.status_code == 409
    assert second.json()["error"].startswith("duplicate submission: team 'alpha' already has submission")


def test_a_malformed_image_reference_is_400(client: TestClient) -> None:
    response = client.post("/api/v1/submissions", json={**IMAGE, "agent": "Not An Image"}, headers=ALPHA)
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]


def test_anonymous_and_invalid_tokens_are_401(client: TestClient) -> None:
    assert client.get("/api/v1/submissions").status_code == 401
    response = client.get("/api/v1/submissions", headers=auth("wrong"))
    assert response.status_code == 401
    assert response.json() == {"error": "the token is not valid; use an operator or team token"}


def test_a_team_lists_only_its_own_submissions(client: TestClient, lifecycle: Lifecycle) -> None:
    mine = lifecycle.submit("alpha")
    theirs = lifecycle.submit("beta")
    assert [s["id"] for s in client.get("/api/v1/submissions", headers=ALPHA).json()] == [mine.id]
    assert [s["id"] for s in client.get("/api/v1/submissions", headers=BETA).json()] == [theirs.id]
    assert client.get("/api/v1/submissions?team=beta", headers=ALPHA).status_code == 403
    everyone = client.get("/api/v1/submissions", headers=OPERATOR).json()
    assert [s["id"] for s in everyone] == [theirs.id, mine.id]


def test_listing_filters_by_status_and_track(client: TestClient, lifecycle: Lifecycle) -> None:
    done = lifecycle.finished("alpha")
    waiting = lifecycle.submit("alpha", agent="registry.example/other:1")
    rows = client.get("/api/v1/submissions?status=finished", headers=OPERATOR).json()
    assert [s["id"] for s in rows] == [done.id]
    rows = client.get("/api/v1/submissions?status=submitted&track=sumo-dev", headers=OPERATOR).json()
    assert [s["id"] for s in rows] == [waiting.id]
    assert client.get("/api/v1/submissions?track=sumo-test", headers=OPERATOR).json() == []


# ------------------------------------------------------------------------------------------- get


def test_get_returns_progress_with_routes_attempts_and_partial_scores(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 80.0)
    lifecycle.start(tasks[1])
    body = client.get(f"/api/v1/submissions/{submission.id}", headers=ALPHA).json()
    assert body["submission"]["status"] == "partially_evaluated"
    assert (body["done"], body["total"]) == (1, 3)
    assert body["counts"] == {"done": 1, "running": 1, "pending": 1}
    assert body["final"] is False
    assert body["driving_score"] == 80.0  # mean over the routes with a record so far
    assert [r["status"] for r in body["routes"]] == ["done", "running", "pending"]
    done = body["routes"][0]
    assert (done["record_status"], done["route_completion"], done["sim_ratio"]) == ("Failed", 80.0, 10.0)
    assert done["duration_game_s"] == 120.0
    assert [a["route"] for a in body["attempts"]] == ["RouteScenario_0_rep0", "RouteScenario_1_rep0"]
    assert body["queue_position"] is None
    assert body["eta_s"] is not None and body["eta_s"] > 0


def test_a_waiting_submission_has_a_queue_position(client: TestClient, lifecycle: Lifecycle) -> None:
    first = lifecycle.submit("alpha")
    lifecycle.plan(first)
    second = lifecycle.submit("beta")
    lifecycle.plan(second)
    assert client.get(f"/api/v1/submissions/{first.id}", headers=ALPHA).json()["queue_position"] == 1
    body = client.get(f"/api/v1/submissions/{second.id}", headers=BETA).json()
    assert body["queue_position"] == 2
    # 3 routes of 60 s ahead plus 3 of its own, over the local backend's 2 slots
    assert body["eta_s"] == 180.0


def test_a_team_cannot_read_another_teams_submission(client: TestClient, lifecycle: Lifecycle) -> None:
    theirs = lifecycle.submit("beta")
    response = client.get(f"/api/v1/submissions/{theirs.id}", headers=ALPHA)
    assert response.status_code == 403
    assert response.json() == {"error": f"submission {theirs.id} belongs to another team"}
    assert client.get(f"/api/v1/submissions/{theirs.id}").status_code == 401


def test_a_missing_submission_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/submissions/999", headers=OPERATOR)
    assert response.status_code == 404
    assert "999" in response.json()["error"]


# -------------------------------------------------------------------------------- cancel/resume


def test_a_team_cancels_its_own_submission_and_cancel_is_idempotent(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    response = client.post(f"/api/v1/submissions/{submission.id}/cancel", headers=ALPHA)
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["reason"] == "cancelled by alpha"
    assert all(t.status.value == "cancelled" for t in lifecycle.store.route_tasks(submission.id))
    assert len(tasks) == 3
    again = client.post(f"/api/v1/submissions/{submission.id}/cancel", headers=OPERATOR, json={"reason": "twice"})
    assert again.status_code == 200
    assert again.json()["reason"] == "cancelled by alpha"


def test_a_team_cannot_cancel_another_teams_submission(client: TestClient, lifecycle: Lifecycle) -> None:
    theirs = lifecycle.submit("beta")
    assert client.post(f"/api/v1/submissions/{theirs.id}/cancel", headers=ALPHA).status_code == 403
    assert lifecycle.store.get_submission(theirs.id).status is SubmissionStatus.SUBMITTED


def test_cancelling_a_finished_submission_is_a_conflict(client: TestClient, lifecycle: Lifecycle) -> None:
    done = lifecycle.finished("alpha")
    response = client.post(f"/api/v1/submissions/{done.id}/cancel", headers=OPERATOR)
    assert response.status_code == 409
    assert response.json() == {"error": f"submission {done.id} is already finished"}


def test_only_the_operator_resumes(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    lifecycle.plan(submission)
    client.post(f"/api/v1/submissions/{submission.id}/cancel", headers=ALPHA)
    assert client.post(f"/api/v1/submissions/{submission.id}/resume", headers=ALPHA).status_code == 403
    response = client.post(f"/api/v1/submissions/{submission.id}/resume", headers=OPERATOR)
    assert response.status_code == 200
    assert response.json()["status"] == "resuming"
    assert {t.status.value for t in lifecycle.store.route_tasks(submission.id)} == {"pending"}


def test_resuming_a_finished_submission_is_a_conflict(client: TestClient, lifecycle: Lifecycle) -> None:
    done = lifecycle.finished("alpha")
    assert client.post(f"/api/v1/submissions/{done.id}/resume", headers=OPERATOR).status_code == 409


# ----------------------------------------------------------------------------- history, events


def test_history_lists_every_status_change(client: TestClient, lifecycle: Lifecycle) -> None:
    done = lifecycle.finished("alpha", (100.0,))
    changes = client.get(f"/api/v1/submissions/{done.id}/history", headers=ALPHA).json()
    assert [c["to_status"] for c in changes] == ["submitted", "queued", "running", "finished"]
    assert client.get(f"/api/v1/submissions/{done.id}/history", headers=BETA).status_code == 403


def test_events_page_by_id(client: TestClient, lifecycle: Lifecycle) -> None:
    done = lifecycle.finished("alpha", (100.0,))
    events = client.get(f"/api/v1/submissions/{done.id}/events", headers=ALPHA).json()
    kinds = [e["kind"] for e in events]
    assert "submitted" in kinds
    assert "route_done" in kinds
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    later = client.get(f"/api/v1/submissions/{done.id}/events?after={events[1]['id']}", headers=ALPHA).json()
    assert [e["id"] for e in later] == [e["id"] for e in events[2:]]


# ------------------------------------------------------------------------------ results, manifest


def test_results_serve_the_merged_document(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    assert client.get(f"/api/v1/submissions/{submission.id}/results", headers=ALPHA).status_code == 404
    tasks = lifecycle.plan(submission)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 100.0)
    response = client.get(f"/api/v1/submissions/{submission.id}/results", headers=ALPHA)
    assert response.status_code == 200
    assert response.json()["_checkpoint"]["progress"] == [1, 3]
    assert client.get(f"/api/v1/submissions/{submission.id}/results", headers=BETA).status_code == 403


def test_manifest_is_public_once_finished(client: TestClient, lifecycle: Lifecycle) -> None:
    done = lifecycle.finished("alpha", (100.0,))
    response = client.get(f"/api/v1/submissions/{done.id}/manifest")
    assert response.status_code == 200
    assert response.json()["submission"] == done.id


def test_manifest_of_a_running_submission_is_private(client: TestClient, lifecycle: Lifecycle) -> None:
    running = lifecycle.submit("alpha")
    assert client.get(f"/api/v1/submissions/{running.id}/manifest").status_code == 401
    assert client.get(f"/api/v1/submissions/{running.id}/manifest", headers=BETA).status_code == 403
    response = client.get(f"/api/v1/submissions/{running.id}/manifest", headers=ALPHA)
    assert response.status_code == 404
    assert response.json() == {"error": f"submission {running.id} has no manifest yet"}
