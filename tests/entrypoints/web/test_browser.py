"""The pages in real headless Chromium against a real server: the SQLite store, the filesystem
artifact store, the dispatcher and the local backend running SUMO with the sample agents.

Opens the leaderboard, watches a running submission update live without a reload, follows its logs
and cancels it as the operator. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from lbcloud.domain.submissions import AgentKind, AgentRef, NewSubmission, Submission, SubmissionStatus
from lbcloud.entrypoints.web.app import create_app
from lbcloud.entrypoints.wiring import System, build_system
from lbcloud.settings import Settings, WebSettings, default_tracks

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[3]
AGENTS = REPO / "examples" / "agents"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPERATOR_TOKEN = "browser-operator"
TEAM_TOKENS = {"alpha": "browser-alpha", "beta": "browser-beta"}
WAIT_S = 240.0

pytestmark = [
    pytest.mark.browser,
    pytest.mark.sumo,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after a generous timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


@dataclass
class LiveServer:
    system: System
    base_url: str
    leaderboard_submission: Submission
    running_submission: Submission
    crashing_submission: Submission


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("browser")
    tracks = default_tracks()
    for track in tracks:
        if track.name == "sumo-test":
            track.repetitions = 3  # long enough to watch it run and still cancel it mid-way
    settings = Settings(
        data_dir=str(tmp), web=WebSettings(operator_token=OPERATOR_TOKEN, team_tokens=TEAM_TOKENS), tracks=tracks
    )
    system = build_system(settings)
    app = create_app(system)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    server_thread = threading.Thread(target=server.run, name="web", daemon=True)
    server_thread.start()
    stop = threading.Event()
    dispatcher = system.dispatcher()
    dispatcher_thread = threading.Thread(target=dispatcher.run, args=(stop, 0.2), name="dispatcher", daemon=True)
    dispatcher_thread.start()
    wait_until(lambda: server.started, "the web server to start", 30)

    def submit(team: str, track: str, agent: str) -> Submission:
        ref = AgentRef(AgentKind.LOCAL, str(AGENTS / agent))
        submission, _ = system.intake.submit(NewSubmission(team=team, track=track, agent=ref, method_name=agent))
        return submission

    finished = submit("beta", "sumo-dev", "competent.py")
    running = submit("alpha", "sumo-test", "slow.py")
    crashing = submit("gamma", "sumo-dev", "crashes.py")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield LiveServer(system, f"http://127.0.0.1:{port}", finished, running, crashing)
    finally:
        stop.set()
        dispatcher_thread.join(timeout=30)
        server.should_exit = True
        server_thread.join(timeout=30)
        system.close()


@contextlib.contextmanager
def chromium_context(profile: Path, width: int, height: int) -> Iterator[Any]:
    """Debian's Chromium, headless, with a fresh profile in ``profile`` and a ``width``×``height`` viewport."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=LAUNCH_ARGS,
            headless=True,
            viewport={"width": width, "height": height},
            env={**os.environ, "HOME": str(profile)},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with chromium_context(tmp_path_factory.mktemp("chromium-profile"), 1360, 900) as context:
        yield context


def _status(live: LiveServer, submission: Submission) -> SubmissionStatus:
    return live.system.store.get_submission(submission.id).status


def _done_routes(live: LiveServer, submission: Submission) -> int:
    return sum(1 for t in live.system.store.route_tasks(submission.id) if t.status.value == "done")


def test_the_leaderboard_lists_a_finished_submission_and_sorts(live: LiveServer, browser: object) -> None:
    from playwright.sync_api import BrowserContext, expect

    assert isinstance(browser, BrowserContext)
    wait_until(lambda: _status(live, live.leaderboard_submission).terminal, "the sumo-dev submission to end")
    assert _status(live, live.leaderboard_submission) is SubmissionStatus.FINISHED
    page = browser.new_page()
    page.goto(f"{live.base_url}/leaderboard/sumo-dev")
    row = page.locator(f'tr[data-submission="{live.leaderboard_submission.id}"]')
    expect(row).to_be_visible()
    expect(row.locator("th")).to_have_text("beta")
    expect(row.locator("td.col-method")).to_have_text("competent.py")
    header = page.locator("#leaderboard th", has_text="Team")
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"), full_page=True)
    manifest = page.request.get(f"{live.base_url}/api/v1/submissions/{live.leaderboard_submission.id}/manifest")
    assert manifest.ok
    page.close()


def test_a_running_submission_updates_live_and_its_logs_follow(live: LiveServer, browser: object) -> None:
    from playwright.sync_api import BrowserContext, expect

    assert isinstance(browser, BrowserContext)
    page = browser.new_page()
    page.goto(f"{live.base_url}/login?next=/submissions/{live.running_submission.id}")
    page.fill('input[name="token"]', TEAM_TOKENS["alpha"])
    page.click('button[type="submit"]')
    page.wait_for_url(f"**/submissions/{live.running_submission.id}")
    expect(page.locator('[data-testid="whoami"]')).to_have_text("alpha")
    page.evaluate("window.__sameDocument = true")
    done_before = _done_routes(live, live.running_submission)
    expect(page.locator("#live-dot")).to_have_class("live-dot on")
    # the dispatcher keeps finishing routes; the page must show more done routes without reloading
    target = done_before + 2
    page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=done]').textContent.split('/')[0]) >= n",
        arg=target,
        timeout=WAIT_S * 1000,
    )
    assert page.evaluate("window.__sameDocument") is True
    assert int(page.evaluate("document.body.dataset.updates")) >= 1
    expect(page.locator('[data-testid="status"]')).to_have_text("partially evaluated")
    expect(page.locator('#routes-table tbody tr[data-status="done"]').first).to_be_visible()
    expect(page.locator('[data-testid="chart-timeline"] rect').first).to_be_visible()
    # the log viewer follows the newest live attempt on its own
    page.locator('.logbar [data-stream="lbcloud"]').click()
    expect(page.locator('[data-testid="log-text"]')).not_to_have_text("", timeout=WAIT_S * 1000)
    expect(page.locator('[data-testid="log-status"]')).to_contain_text("attempt")
    page.screenshot(path=str(SCREENSHOTS / "submission-running.png"), full_page=True)
    page.locator("#log-viewer").screenshot(path=str(SCREENSHOTS / "submission-logs.png"))
    page.close()


def test_the_operator_cancels_the_running_submission(live: LiveServer, browser: object) -> None:
    from playwright.sync_api import BrowserContext, expect

    assert isinstance(browser, BrowserContext)
    assert not _status(live, live.running_submission).terminal, "the submission ended before it could be cancelled"
    page = browser.new_page()
    page.goto(f"{live.base_url}/operator?token={OPERATOR_TOKEN}")
    expect(page.locator('[data-testid="whoami"]')).to_have_text("operator")
    expect(page.locator('[data-testid="queue"]')).to_contain_text(f"#{live.running_submission.id}")
    page.screenshot(path=str(SCREENSHOTS / "operator.png"), full_page=True)
    page.goto(f"{live.base_url}/submissions/{live.running_submission.id}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('[data-testid="cancel"]').click()
    expect(page.locator('[data-testid="status"]')).to_have_text("cancelled")
    expect(page.locator('[data-testid="cancel"]')).to_be_hidden()
    wait_until(lambda: not live.system.store.live_attempts(), "the dispatcher to stop the running attempts")
    assert _status(live, live.running_submission) is SubmissionStatus.CANCELLED
    page.reload()
    expect(page.locator('[data-testid="status"]')).to_have_text("cancelled")
    expect(page.locator("#state-detail")).to_contain_text("cancelled by operator")
    assert_consistent(page)
    page.screenshot(path=str(SCREENSHOTS / "submission-cancelled.png"), full_page=True)
    page.close()


def assert_consistent(page: object) -> None:
    """The submission page never contradicts itself: the header and the summary say the same word, the
    bar shows exactly the routes with a result, no route blamed on the agent reads "done", and only a
    finished submission says it finished."""
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    facts = page.evaluate(
        """() => {
        const rows = Array.from(document.querySelectorAll('#routes-table tbody tr[data-route]'));
        return {
          status: document.querySelector('[data-testid=status]').dataset.status,
          word: document.querySelector('[data-testid=status]').textContent.trim(),
          summaryWord: document.querySelector('.summary').dataset.word,
          detail: document.querySelector('#state-detail').textContent,
          percent: document.querySelector('[data-testid=progress]').dataset.percent,
          done: document.querySelector('[data-testid=done]').textContent,
          total: rows.length,
          settled: rows.filter(r => ['done', 'failed_final'].includes(r.dataset.status)).length,
          agentDone: rows.filter(
            r => r.querySelector('.b-agent') && r.children[2].textContent.trim() === 'done').length,
        };
    }"""
    )
    assert facts["word"] == facts["summaryWord"], facts
    assert facts["done"].replace(" ", "") == f"{facts['settled']}/{facts['total']}", facts
    if facts["total"]:
        assert int(facts["percent"]) == round(100 * facts["settled"] / facts["total"]), facts
    assert facts["agentDone"] == 0, facts
    if facts["status"] != "finished":
        assert "finished" not in facts["word"] and "all " not in facts["detail"], facts


def test_crashing_cancelled_and_resumed_submissions_never_contradict_themselves(
    live: LiveServer, browser: object
) -> None:
    from playwright.sync_api import BrowserContext, expect

    assert isinstance(browser, BrowserContext)
    page = browser.new_page()
    page.goto(f"{live.base_url}/submissions/{live.running_submission.id}?token={OPERATOR_TOKEN}")
    page.locator('[data-testid="resume"]').click()
    page.wait_for_load_state("load")
    expect(page.locator('[data-testid="status"]')).not_to_have_text("cancelled", timeout=WAIT_S * 1000)
    assert_consistent(page)
    page.screenshot(path=str(SCREENSHOTS / "submission-resumed.png"), full_page=True)
    wait_until(lambda: _status(live, live.crashing_submission).terminal, "the crashing submission to end")
    page.goto(f"{live.base_url}/submissions/{live.crashing_submission.id}")
    assert_consistent(page)
    crashed = [t for t in live.system.store.route_tasks(live.crashing_submission.id) if t.blame.value == "agent"]
    assert crashed, "the crashing agent crashed on no route"
    page.goto(f"{live.base_url}/submissions/{live.crashing_submission.id}/routes/{crashed[0].instance_id}")
    expect(page.locator('[data-testid="route-status"]')).to_have_text("agent failed")
    expect(page.locator('[data-testid="traceback"]')).to_contain_text("index out of range in the planner")
    page.screenshot(path=str(SCREENSHOTS / "route-agent-crashed.png"), full_page=True)
    page.goto(f"{live.base_url}/operator")
    expect(page.locator('[data-testid="running-submissions"]')).to_be_visible()
    page.goto(f"{live.base_url}/leaderboard/sumo-dev")
    teams = page.locator("#leaderboard tbody th").all_inner_texts()
    assert len(teams) == len(set(teams))  # one row per team
    page.close()
