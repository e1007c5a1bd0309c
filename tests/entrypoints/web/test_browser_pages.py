"""Every page in real headless Chromium against a real server over a seeded SQLite store: the
leaderboard (one row per team, ties, links, keyboard sorting, the running-now strip), a route with
infractions, the phone layout at 390 px without sideways scroll, dark mode, and axe-core (WCAG 2.1
A/AA) on every page in light and dark mode with zero serious or critical violations.
Screenshots go to ``test-artifacts/screenshots/``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from lbcloud.domain.blame import Blame
from lbcloud.entrypoints.web.app import create_app
from lbcloud.entrypoints.wiring import System
from lbcloud.settings import Deadline, TeamProfile, WebSettings
from tests.entrypoints.web.conftest import OPERATOR_TOKEN, TEAM_TOKENS, Lifecycle, make_system
from tests.entrypoints.web.test_browser import CHROMIUM, SCREENSHOTS, _free_port, chromium_context, wait_until
from tests.entrypoints.web.test_route_detail import AGENT_LOG

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"),
]


@dataclass
class Seeded:
    system: System
    base_url: str
    ids: dict[str, int]
    route_with_infractions: str
    crashed_route: str


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp("pages")
    system = make_system(tmp, WebSettings(operator_token=OPERATOR_TOKEN, team_tokens=dict(TEAM_TOKENS)))
    system.settings.web.team_profiles["alpha"] = TeamProfile(
        affiliation="Example University", method_url="https://example.org/method"
    )
    system.settings.web.challenge.deadlines.append(Deadline(name="Final submissions", at="2027-05-31 23:59 UTC"))
    life = Lifecycle(system)
    ids = {
        "alpha_best": life.finished("alpha", (100.0, 100.0)).id,
        "alpha_worse": life.finished("alpha", (40.0, 60.0)).id,
        "beta": life.finished("beta", (100.0, 100.0)).id,
        "gamma": life.finished("gamma", (80.0, 50.0), collisions=2).id,
    }
    running = life.submit("delta")
    tasks = life.plan(running)
    life.finish(tasks[0], life.start(tasks[0]), 100.0)
    life.start(tasks[1])
    crashed = life.submit("alpha", "sumo-test")
    crash_tasks = life.plan(crashed)
    attempt = life.start(crash_tasks[1])
    life.log(attempt, AGENT_LOG)
    life.fail(crash_tasks[1], attempt, Blame.AGENT, "the agent crashed: ValueError: no lane found", final=True)
    ids.update(running=running.id, crashed=crashed.id)
    gamma_tasks = system.store.route_tasks(ids["gamma"])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(system), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    wait_until(lambda: server.started, "the web server to start", 30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield Seeded(system, f"http://127.0.0.1:{port}", ids, gamma_tasks[0].instance_id, crash_tasks[1].instance_id)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        system.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium_context(tmp_path_factory.mktemp("chromium-pages"), 1280, 800) as context:
        yield context


def pages(s: Seeded) -> dict[str, str]:
    """Every page, by a name used for screenshots."""
    return {
        "leaderboard": "/leaderboard/sumo-dev",
        "leaderboard-running": "/leaderboard/sumo-test",
        "challenge": "/challenge",
        "login": "/login",
        "api-docs": "/api/docs",
        "submissions": "/submissions",
        "submission": f"/submissions/{s.ids['gamma']}",
        "submission-crashed": f"/submissions/{s.ids['crashed']}",
        "route": f"/submissions/{s.ids['gamma']}/routes/{s.route_with_infractions}",
        "route-crashed": f"/submissions/{s.ids['crashed']}/routes/{s.crashed_route}",
        "operator": "/operator",
        "not-found": "/leaderboard/nope",
    }


def sign_in(page: Any, s: Seeded, token: str = OPERATOR_TOKEN) -> None:
    page.goto(f"{s.base_url}/challenge?token={token}")


def test_the_leaderboard_ranks_teams_links_rows_and_sorts_by_keyboard(seeded: Seeded, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{seeded.base_url}/logout")
    page.goto(f"{seeded.base_url}/")
    assert page.url.endswith("/leaderboard/sumo-dev")
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(3)  # alpha's two submissions make one row
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.rank)") == ["1", "1", "3"]
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.submission)") == [
        str(seeded.ids["alpha_best"]), str(seeded.ids["beta"]), str(seeded.ids["gamma"])
    ]  # fmt: skip
    alpha = page.locator(f'tr[data-submission="{seeded.ids["alpha_best"]}"]')
    expect(alpha.locator("td.col-method a")).to_have_attribute("href", "https://example.org/method")
    expect(alpha).to_contain_text("Example University")
    expect(page.locator('[data-testid="running-now"]')).to_contain_text("delta")
    assert page.locator("#leaderboard thead th").count() == 4 + 15 + 3  # every infraction rate
    # keyboard only: Tab to the Team header, Enter sorts ascending, Enter again descending
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Team":
            break
    else:
        pytest.fail("the Team header cannot be reached with Tab")
    page.keyboard.press("Enter")
    team_header = page.locator("#leaderboard thead th", has_text="Team")
    expect(team_header).to_have_attribute("aria-sort", "ascending")
    assert rows.evaluate_all("rs => rs.map(r => r.querySelector('th').textContent.trim())") == [
        "alpha",
        "beta",
        "gamma",
    ]
    page.keyboard.press("Enter")
    expect(team_header).to_have_attribute("aria-sort", "descending")
    assert rows.first.locator("th").inner_text().strip() == "gamma"
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-teams.png"), full_page=True)
    # each row links to its submission (a sign-in first for people who may see it)
    page.locator(f'tr[data-submission="{seeded.ids["beta"]}"] [data-testid="entry-link"]').click()
    page.wait_for_url(lambda url: "/login?next=" in url and url.endswith(f"/submissions/{seeded.ids['beta']}"))
    page.fill('input[name="token"]', TEAM_TOKENS["beta"])
    page.click('button[type="submit"]')
    page.wait_for_url(f"**/submissions/{seeded.ids['beta']}")
    expect(page.locator('[data-testid="status"]')).to_have_text("finished")
    page.close()


def test_a_route_page_lists_its_infractions_and_a_crash_its_traceback(seeded: Seeded, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    sign_in(page, seeded)
    page.goto(f"{seeded.base_url}{pages(seeded)['submission']}")
    page.locator(f'#routes-table a[href$="/routes/{seeded.route_with_infractions}"]').click()
    expect(page.locator('[data-testid="infractions"] tbody tr')).to_have_count(2)
    expect(page.locator('[data-testid="infractions"] tbody tr').first).to_contain_text("Collision with a vehicle")
    expect(page.locator('[data-testid="infractions"] tbody tr').first).to_contain_text("×0.600")
    page.screenshot(path=str(SCREENSHOTS / "route-infractions.png"), full_page=True)
    page.goto(f"{seeded.base_url}{pages(seeded)['route-crashed']}")
    expect(page.locator('[data-testid="route-status"]')).to_have_text("agent failed")
    expect(page.locator('[data-testid="traceback"]')).to_contain_text("ValueError: no lane found")
    page.screenshot(path=str(SCREENSHOTS / "route-crashed.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("width", [360, 390])
def test_every_page_fits_a_phone_without_sideways_scroll(seeded: Seeded, browser: Any, width: int) -> None:
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": 844})
    sign_in(page, seeded)
    for name, path in pages(seeded).items():
        page.goto(f"{seeded.base_url}{path}")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        # what sticks out, for the failure message (wide tables scroll inside their .table-wrap)
        wide = page.evaluate(
            "w => Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > w"
            " && e.parentElement.getBoundingClientRect().right <= w && !e.closest('.table-wrap'))"
            ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
            width + 1,
        )
        assert scroll <= width, f"{name} is {scroll} px wide at {width} px: {wide}"
        header = page.evaluate("document.querySelector('.topbar').scrollWidth")
        assert header <= width, f"the header of {name} is {header} px wide"
        page.screenshot(path=str(SCREENSHOTS / f"phone-{width}-{name}.png"), full_page=True)
    page.close()


def test_dark_mode_follows_the_system_setting(seeded: Seeded, browser: Any) -> None:
    page = browser.new_page()
    page.emulate_media(color_scheme="dark")
    sign_in(page, seeded)
    page.goto(f"{seeded.base_url}/leaderboard/sumo-dev")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 20, 32)"
    page.screenshot(path=str(SCREENSHOTS / "dark-leaderboard.png"), full_page=True)
    page.goto(f"{seeded.base_url}{pages(seeded)['submission']}")
    page.screenshot(path=str(SCREENSHOTS / "dark-submission.png"), full_page=True)
    page.emulate_media(color_scheme="light")
    page.goto(f"{seeded.base_url}/leaderboard/sumo-dev")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 248)"
    page.close()


def test_skip_link_and_favicon(seeded: Seeded, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{seeded.base_url}/leaderboard/sumo-dev")
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.request.get(f"{seeded.base_url}/favicon.ico").ok
    page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_on_any_page(seeded: Seeded, browser: Any, scheme: str) -> None:
    page = browser.new_page()
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    sign_in(page, seeded)
    problems: list[str] = []
    for name, path in pages(seeded).items():
        page.goto(f"{seeded.base_url}{path}")
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", WCAG
        )
        for violation in result["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [node["target"] for node in violation["nodes"][:3]]
                problems.append(f"{name}: {violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    page.close()
    assert not problems, "\n".join(problems)


def test_a_team_chooses_which_submission_the_leaderboard_shows(seeded: Seeded, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{seeded.base_url}/submissions/{seeded.ids['alpha_worse']}?token={TEAM_TOKENS['alpha']}")
    page.locator('[data-testid="choose"]').click()
    page.wait_for_url("**/leaderboard/sumo-dev")
    row = page.locator(f'tr[data-submission="{seeded.ids["alpha_worse"]}"]')
    expect(row).to_contain_text("chosen")
    expect(page.locator(f'tr[data-submission="{seeded.ids["alpha_best"]}"]')).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-chosen.png"), full_page=True)
    page.close()
