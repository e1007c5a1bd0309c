"""The app around the API: health, readiness, metrics, OpenAPI and docs, roles, operator overview,
open mode, request logging."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lbcloud.domain.blame import Blame
from lbcloud.domain.errors import Unavailable
from lbcloud.entrypoints.web.app import create_app
from lbcloud.entrypoints.wiring import System
from lbcloud.settings import WebSettings
from tests.entrypoints.web.conftest import ALPHA, OPERATOR, Lifecycle, make_system


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readiness_fails_when_the_store_is_unreachable(
    client: TestClient, system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**_: object) -> None:
        raise Unavailable("database is unreachable")

    monkeypatch.setattr(system.store, "list_submissions", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"error": "state store unavailable: database is unreachable"}


def test_store_outages_are_503_on_the_api(client: TestClient, system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(**_: object) -> None:
        raise Unavailable("database is unreachable")

    monkeypatch.setattr(system.store, "list_submissions", down)
    response = client.get("/api/v1/submissions", headers=OPERATOR)
    assert response.status_code == 503
    assert response.json() == {"error": "database is unreachable"}


def test_openapi_is_published_with_every_endpoint(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/api/v1/tracks",
        "/api/v1/tracks/{track}/leaderboard",
        "/api/v1/submissions",
        "/api/v1/submissions/{submission_id}",
        "/api/v1/submissions/{submission_id}/cancel",
        "/api/v1/submissions/{submission_id}/resume",
        "/api/v1/submissions/{submission_id}/routes",
        "/api/v1/submissions/{submission_id}/attempts/{attempt_id}/logs/{stream}",
        "/api/v1/submissions/{submission_id}/live",
        "/api/v1/submissions/{submission_id}/manifest",
        "/api/v1/operator/overview",
    ):
        assert path in paths
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert "/api/v1/submissions/{submission_id}/cancel" in docs.text
    assert "cdn" not in docs.text.lower()


def test_the_api_docs_show_request_body_fields_and_no_raw_markup(client: TestClient) -> None:
    docs = client.get("/api/docs").text
    post = docs.split('aria-label="POST /api/v1/submissions"')[1].split("</section>")[0]
    assert "Request body (JSON: SubmissionIn)" in post
    for name in ("track", "agent", "kind", "team", "external_id"):
        assert f"<code>{name}</code>" in post
    assert "Makes the request idempotent" in post
    assert "``" not in docs


def test_unknown_api_paths_are_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "no such page or endpoint: /api/v1/nothing-here"}


def test_metrics_export_http_requests_by_route_template(client: TestClient, lifecycle: Lifecycle) -> None:
    submission = lifecycle.submit("alpha")
    client.get(f"/api/v1/submissions/{submission.id}", headers=ALPHA)
    client.get("/api/v1/submissions/424242", headers=ALPHA)
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    route = "/api/v1/submissions/{submission_id}"
    assert samples[("lbcloud_http_requests_total", (("method", "GET"), ("route", route), ("status", "200")))] == 1
    assert samples[("lbcloud_http_requests_total", (("method", "GET"), ("route", route), ("status", "404")))] == 1
    assert ("lbcloud_queue_depth", ()) in samples


def test_the_app_installs_prometheus_metrics_on_the_system(system: System) -> None:
    from lbcloud.adapters.metrics import PrometheusMetrics

    create_app(system)
    assert isinstance(system.metrics, PrometheusMetrics)


def test_each_request_is_logged_once_with_its_submission_id(
    client: TestClient, lifecycle: Lifecycle, caplog: pytest.LogCaptureFixture
) -> None:
    submission = lifecycle.submit("alpha")
    with caplog.at_level(logging.INFO, logger="lbcloud.web"):
        client.get(f"/api/v1/submissions/{submission.id}", headers=ALPHA)
    lines = [r for r in caplog.records if r.name == "lbcloud.web"]
    assert len(lines) == 1
    assert lines[0].getMessage().startswith(f"GET /api/v1/submissions/{submission.id} 200")
    assert lines[0].submission == submission.id  # type: ignore[attr-defined]


def test_the_dispatcher_role_serves_no_pages_or_public_api(system: System) -> None:
    with TestClient(create_app(system, role="dispatcher")) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/api/v1/tracks").status_code == 404
        assert client.get("/leaderboard/sumo-dev").status_code == 404
        paths = client.get("/api/openapi.json").json()["paths"]
        assert "/api/v1/reporter/attempts/{attempt_id}/record" in paths


def test_the_web_role_serves_no_reporter_api(system: System) -> None:
    with TestClient(create_app(system, role="web")) as client:
        assert client.get("/api/v1/tracks").status_code == 200
        assert not [p for p in client.get("/api/openapi.json").json()["paths"] if "/reporter/" in p]


# ----------------------------------------------------------------------------- operator overview


def test_the_overview_is_operator_only(client: TestClient) -> None:
    assert client.get("/api/v1/operator/overview").status_code == 401
    response = client.get("/api/v1/operator/overview", headers=ALPHA)
    assert response.status_code == 403
    assert response.json() == {"error": "only the operator may do this"}


def test_the_overview_shows_queue_capacity_failures_and_usage(client: TestClient, lifecycle: Lifecycle) -> None:
    lifecycle.finished("beta", (100.0,))
    running = lifecycle.submit("alpha")
    tasks = lifecycle.plan(running)
    failed = lifecycle.start(tasks[0])
    lifecycle.fail(tasks[0], failed, Blame.INFRASTRUCTURE, "node lost", final=False)
    live = lifecycle.start(tasks[0])
    waiting = lifecycle.submit("gamma")
    lifecycle.plan(waiting)
    body = client.get("/api/v1/operator/overview", headers=OPERATOR).json()
    assert [(q["submission"]["id"], q["queue_position"]) for q in body["queue"]] == [
        (running.id, None),
        (waiting.id, 1),
    ]
    assert [a["id"] for a in body["running"]] == [live.id]
    assert body["pools"] == [
        {"name": "local", "slots": 2, "running": 1, "waiting": 5, "gpus_per_attempt": 0, "price_per_hour": 0.0}
    ]
    assert body["failures_by_blame"] == {"infrastructure": 1}
    assert [a["reason"] for a in body["recent_failures"]] == ["node lost"]
    assert set(body["usage_by_team"]) == {"alpha", "beta"}
    assert body["usage_by_team"]["alpha"]["attempts"] == 2
    assert body["total_usage"]["attempts"] == 3
    assert {row["submission_id"] for row in body["usage_by_submission"]} == {running.id, running.id - 1}


def test_the_overview_prices_attempts_with_the_pool(tmp_path: Path) -> None:
    from lbcloud.settings import PoolSettings, default_tracks

    system = make_system(tmp_path, WebSettings())
    tracks = default_tracks()
    for t in tracks:
        t.pool = PoolSettings(name="gpu", slots=4, gpus_per_attempt=2, price_per_hour=3.0)
    system.settings.tracks = tracks
    system.tracks = system.settings.track_map()
    lifecycle = Lifecycle(system)
    lifecycle.finished("alpha", (100.0,))
    with TestClient(create_app(system)) as client:
        body = client.get("/api/v1/operator/overview").json()
    usage = body["usage_by_team"]["alpha"]
    assert usage["gpu_hours"] == pytest.approx(usage["hours"] * 2)
    assert usage["cost"] == pytest.approx(usage["hours"] * 3.0)
    system.close()


# ------------------------------------------------------------------------------------ open mode


def test_open_mode_makes_every_caller_the_operator(tmp_path: Path) -> None:
    system = make_system(tmp_path, WebSettings())
    Lifecycle(system).submit("alpha")
    with TestClient(create_app(system)) as client:
        assert len(client.get("/api/v1/submissions").json()) == 1
        assert client.get("/api/v1/operator/overview").status_code == 200
        assert "Open mode" in client.get("/leaderboard/sumo-dev").text
    system.close()
