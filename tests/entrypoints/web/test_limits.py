"""Bounded inputs: bodies over the cap are 413 before anything parses them, long fields are 422,
cookie-authenticated state changes need the page's CSRF token, and cross-site requests are refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from lbcloud.entrypoints.web.auth import COOKIE_NAME
from lbcloud.entrypoints.web.limits import csrf_token_for
from lbcloud.entrypoints.wiring import System
from tests.entrypoints.web.conftest import ALPHA, OPERATOR, OPERATOR_TOKEN, TEAM_TOKENS, Lifecycle
from tests.services.postgres import free_port


def test_a_method_name_over_255_characters_is_422_and_nothing_is_stored(client: TestClient, system: System) -> None:
    body = {"track": "sumo-dev", "agent": "registry.example/a:1", "method_name": "m" * 256}
    response = client.post("/api/v1/submissions", json=body, headers=ALPHA)
    assert response.status_code == 422
    assert "method_name" in response.json()["error"]
    assert system.store.list_submissions() == []


def test_a_body_over_the_limit_is_413(client: TestClient, system: System) -> None:
    big = {"track": "sumo-dev", "agent": "registry.example/a:1", "method_name": "x" * 2_000_000}
    response = client.post("/api/v1/submissions", json=big, headers=ALPHA)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]
    assert system.store.list_submissions() == []
    login = client.post("/login", content=b"token=" + b"a" * 2_000_000,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert login.status_code == 413


def _cookie_client(client: TestClient, token: str) -> TestClient:
    client.cookies.set(COOKIE_NAME, token)
    return client


def test_a_cookie_authenticated_post_needs_the_pages_csrf_token(client: TestClient, lifecycle: Lifecycle) -> None:
    sub = lifecycle.submit("alpha")
    browser = _cookie_client(client, TEAM_TOKENS["alpha"])
    refused = browser.post(f"/api/v1/submissions/{sub.id}/cancel", json={})
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    assert lifecycle.store.get_submission(sub.id).status.value == "submitted", "nothing changed"
    wrong = browser.post(f"/api/v1/submissions/{sub.id}/cancel", json={}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    page = browser.get(f"/submissions/{sub.id}")
    token = csrf_token_for(TEAM_TOKENS["alpha"])
    assert f'<meta name="csrf-token" content="{token}">' in page.text, "the page carries the token"
    accepted = browser.post(f"/api/v1/submissions/{sub.id}/cancel", json={}, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200, accepted.text


def test_bearer_tokens_need_no_csrf_token_and_cross_site_requests_are_refused(
    client: TestClient, lifecycle: Lifecycle
) -> None:
    sub = lifecycle.submit("alpha")
    cross = client.post(f"/api/v1/submissions/{sub.id}/cancel", json={},
                        headers={**OPERATOR, "Origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
    same = client.post(
        f"/api/v1/submissions/{sub.id}/cancel", json={}, headers={**OPERATOR, "Origin": "http://testserver"}
    )
    assert same.status_code == 200, same.text


def test_the_login_form_of_a_signed_in_browser_carries_its_csrf_token(client: TestClient) -> None:
    browser = _cookie_client(client, TEAM_TOKENS["alpha"])
    form = browser.get("/login")
    token = csrf_token_for(TEAM_TOKENS["alpha"])
    assert f'name="csrf_token" value="{token}"' in form.text
    switched = browser.post("/login", data={"token": OPERATOR_TOKEN, "next": "/", "csrf_token": token},
                            follow_redirects=False)  # fmt: skip
    assert switched.status_code == 303
    forged = browser.post("/login", data={"token": OPERATOR_TOKEN, "next": "/"}, follow_redirects=False)
    assert forged.status_code == 403


# ------------------------------------------------------------------- a real server, its memory
def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    config = tmp_path / "lbcloud.yaml"
    config.write_text(
        yaml.safe_dump({"data_dir": str(tmp_path / "data"), "web": {"port": port, "operator_token": OPERATOR_TOKEN}})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LBCLOUD_")}
    proc = subprocess.Popen([sys.executable, "-m", "lbcloud", "--config", str(config), "serve", "--role", "web"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise AssertionError("the server did not start")
    yield port, proc.pid
    proc.terminate()
    proc.wait(timeout=20)


def _stream(port: int, path: str, total: int, *, declare: bool) -> int:
    """POST ``total`` bytes (chunked unless ``declare``); the status, or 0 if the server hung up first."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {total}\r\n\r\n" if declare else "Transfer-Encoding: chunked\r\n\r\n"
        sock.sendall(head.encode())
        chunk = b"a" * 65536
        sent = 0
        try:
            while sent < total:
                data = chunk if declare else b"%x\r\n%s\r\n" % (len(chunk), chunk)
                sock.sendall(data)
                sent += len(chunk)
            if not declare:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # refused mid-way: the server closed the connection
        try:
            reply = sock.recv(4096)
        except OSError:
            return 0
    return int(reply.split()[1]) if reply.startswith(b"HTTP/1.1") else 0


def test_a_huge_login_body_is_refused_without_the_server_growing(server: tuple[int, int]) -> None:
    port, pid = server
    before = _rss_kib(pid)
    assert _stream(port, "/login", 300_000_000, declare=True) in (413, 0)
    assert _stream(port, "/login", 120_000_000, declare=False) in (413, 0)
    assert _stream(port, "/api/v1/submissions", 120_000_000, declare=False) in (413, 0)
    grown_mib = (_rss_kib(pid) - before) / 1024
    assert grown_mib < 8, f"the server grew by {grown_mib:.1f} MiB"
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
