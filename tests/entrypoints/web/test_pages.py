"""Server-rendered pages: public leaderboard, sign-in (form, cookie, ``?token=``), submission pages
limited to the team, the operator page, error pages; assets are local."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from lbcloud.entrypoints.web.app import create_app
from lbcloud.entrypoints.web.auth import COOKIE_NAME
from lbcloud.entrypoints.wiring import System
from lbcloud.settings import TeamProfile
from tests.entrypoints.web.conftest import ALPHA, OPERATOR_TOKEN, TEAM_TOKENS, Lifecycle


def test_home_redirects_to_the_first_tracks_leaderboard(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.headers["location"] == "/leaderboard/sumo-dev"


def test_home_opens_the_track_that_has_results(client: TestClient, lifecycle: Lifecycle) -> None:
    lifecycle.finished("alpha", (100.0, 100.0), track="sumo-test")
    for path in ("/", "/leaderboard"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/leaderboard/sumo-test"


def test_the_leaderboard_has_one_row_per_team_ties_share_a_rank_and_rows_link(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    alpha_best = lifecycle.finished("alpha", (100.0, 100.0))
    lifecycle.finished("alpha", (40.0, 60.0))
    beta = lifecycle.finished("beta", (100.0, 100.0))
    gamma = lifecycle.finished("gamma", (30.0, 50.0))
    page = client.get("/leaderboard/sumo-dev").text
    rows = re.findall(r'<tr class="rank-(\d+)" data-submission="(\d+)"', page)
    assert rows == [("1", str(alpha_best.id)), ("1", str(beta.id)), ("3", str(gamma.id))]
    assert f'href="/submissions/{alpha_best.id}"' in page
    assert "best of 2" in page
    board = client.get("/api/v1/tracks/sumo-dev/leaderboard").json()
    assert [e["rank"] for e in board["entries"]] == [1, 1, 3]
    assert board["entries"][0]["sensors"] == "RGB Camera"
    assert len(board["columns"]) == 15  # 3 scores and all 12 infraction rates


def test_the_leaderboard_shows_affiliation_and_method_link(system: System, lifecycle: Lifecycle) -> None:
    system.settings.web.team_profiles["alpha"] = TeamProfile(
        affiliation="Example University", method_url="https://example.org/paper"
    )
    lifecycle.finished("alpha", (100.0, 100.0))
    with TestClient(create_app(system)) as client:
        page = client.get("/leaderboard/sumo-dev").text
    assert "Example University" in page
    assert 'href="https://example.org/paper"' in page


def test_the_leaderboard_shows_what_runs_now(client: TestClient, lifecycle: Lifecycle) -> None:
    running = lifecycle.submit("alpha")
    tasks = lifecycle.plan(running)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 100.0)
    page = client.get("/leaderboard/sumo-dev").text
    assert 'data-testid="running-now"' in page
    assert "1 of 3 routes evaluated" in page
    assert "No finished submission on sumo-dev yet: 1 being evaluated now" in page


def test_the_leaderboard_page_is_public_and_lists_finished_submissions(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    best = lifecycle.finished("alpha", (100.0, 100.0))
    lifecycle.finished("beta", (40.0, 60.0))
    page = client.get("/leaderboard/sumo-dev")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="rank-(\d+)" data-submission="(\d+)"', page.text)
    assert rows[0] == ("1", str(best.id))
    assert len(rows) == 2
    assert f"/api/v1/submissions/{best.id}/manifest" in page.text
    assert "Avg. driving score" in page.text


def test_an_empty_leaderboard_says_so(client: TestClient) -> None:
    assert "No submission on sumo-test yet." in client.get("/leaderboard/sumo-test").text


def test_pages_load_only_local_assets(client: TestClient) -> None:
    page = client.get("/leaderboard/sumo-dev").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources
    assert all(not s.startswith(("http:", "https:", "//")) for s in sources)
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_a_submission_page_needs_sign_in(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    response = client.get(f"/submissions/{submission.id}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/submissions/{submission.id}"


def test_the_login_form_sets_the_cookie_and_returns_to_the_page(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    target = f"/submissions/{submission.id}"
    response = client.post("/login", data={"token": TEAM_TOKENS["alpha"], "next": target}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == target
    assert response.cookies[COOKIE_NAME] == TEAM_TOKENS["alpha"]
    page = client.get(target)
    assert page.status_code == 200
    assert f"Submission #{submission.id}" in page.text


def test_a_wrong_token_on_the_login_form_is_refused(client: TestClient) -> None:
    response = client.post("/login", data={"token": "guess", "next": "/operator"}, follow_redirects=False)
    assert response.status_code == 401
    assert "That token is not valid." in response.text
    assert COOKIE_NAME not in response.cookies


def test_login_never_redirects_off_site(client: TestClient) -> None:
    response = client.post("/login", data={"token": OPERATOR_TOKEN, "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/submissions"


def test_a_token_in_the_link_is_kept_in_the_cookie_and_removed_from_the_url(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    submission = lifecycle.submit("alpha")
    response = client.get(f"/submissions/{submission.id}?token={TEAM_TOKENS['alpha']}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/submissions/{submission.id}"
    assert response.cookies[COOKIE_NAME] == TEAM_TOKENS["alpha"]


def test_a_team_sees_only_its_submissions_and_not_other_pages(client: TestClient, lifecycle: Lifecycle) -> None:
    mine = lifecycle.submit("alpha")
    theirs = lifecycle.submit("beta")
    client.cookies.set(COOKIE_NAME, TEAM_TOKENS["alpha"])
    listing = client.get("/submissions").text
    assert f'href="/submissions/{mine.id}"' in listing
    assert f'href="/submissions/{theirs.id}"' not in listing
    forbidden = client.get(f"/submissions/{theirs.id}")
    assert forbidden.status_code == 403
    assert f"submission {theirs.id} belongs to another team" in forbidden.text
    assert client.get("/operator").status_code == 403


def test_the_submission_page_shows_routes_charts_logs_and_controls(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    tasks = lifecycle.plan(submission)
    lifecycle.finish(tasks[0], lifecycle.start(tasks[0]), 100.0)
    lifecycle.start(tasks[1])
    client.cookies.set(COOKIE_NAME, TEAM_TOKENS["alpha"])
    page = client.get(f"/submissions/{submission.id}").text
    assert page.count('<tr data-route="') == 3
    assert 'data-testid="chart-scores"' in page
    assert 'data-testid="chart-timeline"' in page
    assert 'id="log-text"' in page
    assert 'id="cancel-button"' in page
    assert 'id="resume-button"' not in page


def test_the_operator_page_shows_the_queue(client: TestClient, lifecycle: Lifecycle) -> None:
    waiting = lifecycle.submit("beta")
    lifecycle.plan(waiting)
    client.cookies.set(COOKIE_NAME, OPERATOR_TOKEN)
    page = client.get("/operator")
    assert page.status_code == 200
    assert f'href="/submissions/{waiting.id}"' in page.text
    assert "Usage per team" in page.text


def test_an_unknown_page_renders_the_error_page(client: TestClient) -> None:
    response = client.get("/leaderboard/nope")
    assert response.status_code == 404
    assert "no track &#39;nope&#39;" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_logout_clears_the_cookie(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, OPERATOR_TOKEN)
    response = client.get("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert COOKIE_NAME in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"] or "expires" in response.headers["set-cookie"].lower()


def test_a_team_chooses_its_row_or_hides_it_and_baselines_are_not_ranked(system: System, lifecycle: Lifecycle) -> None:
    best = lifecycle.finished("alpha", (100.0, 100.0))
    other = lifecycle.finished("alpha", (40.0, 60.0))
    beta = lifecycle.finished("beta", (90.0, 90.0))
    system.settings.web.baseline_teams.append("gamma")
    baseline = lifecycle.finished("gamma", (95.0, 95.0))
    with TestClient(create_app(system)) as client:
        board = client.get("/api/v1/tracks/sumo-dev/leaderboard").json()["entries"]
        assert [(e["submission_id"], e["rank"], e["baseline"]) for e in board] == [
            (best.id, 1, False), (baseline.id, None, True), (beta.id, 2, False)
        ]  # fmt: skip
        chose = client.post(f"/api/v1/submissions/{other.id}/leaderboard", json={"choice": "chosen"}, headers=ALPHA)
        assert chose.status_code == 200, chose.text
        board = client.get("/api/v1/tracks/sumo-dev/leaderboard").json()["entries"]
        assert [(e["submission_id"], e["rank"], e["chosen"]) for e in board] == [
            (baseline.id, None, False), (beta.id, 1, False), (other.id, 2, True)
        ]  # fmt: skip
        client.post(f"/api/v1/submissions/{other.id}/leaderboard", json={"choice": "hidden"}, headers=ALPHA)
        assert [e["team"] for e in client.get("/api/v1/tracks/sumo-dev/leaderboard").json()["entries"]] == [
            "gamma", "beta"
        ]  # fmt: skip
        client.post(f"/api/v1/submissions/{best.id}/leaderboard", json={"choice": "automatic"}, headers=ALPHA)
        board = client.get("/api/v1/tracks/sumo-dev/leaderboard").json()["entries"]
        assert board[0]["submission_id"] == best.id and board[0]["rank"] == 1
        refused = client.post(f"/api/v1/submissions/{beta.id}/leaderboard", json={"choice": "hidden"}, headers=ALPHA)
        assert refused.status_code == 403
        page = client.get("/leaderboard/sumo-dev").text
        assert ">baseline</span>" in page
