"""Server-rendered pages (Jinja2 templates, small vanilla JavaScript; every asset is served locally).

- ``/leaderboard/<track>`` (public): sortable leaderboard with links to manifests.
- ``/submissions`` and ``/submissions/<id>``: the caller's submissions; the live page follows the
  ``/api/v1/submissions/<id>/live`` event stream and the logs of any attempt.
- ``/operator``: queue, running attempts, capacity, failures by blame, usage and cost.
- ``/login`` (a token form that sets a cookie) and ``/logout``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from lbcloud import __version__
from lbcloud.domain.errors import NotFound
from lbcloud.domain.submissions import ACTIVE, SubmissionStatus
from lbcloud.entrypoints.web.auth import (
    COOKIE_NAME,
    PUBLIC,
    InvalidToken,
    Principal,
    open_mode,
    principal_for_token,
)
from lbcloud.entrypoints.web.charts import score_chart, timeline
from lbcloud.entrypoints.web.deps import PrincipalDep, SystemDep, get_principal, require_operator, visible_submission
from lbcloud.entrypoints.web.errors import NotAuthenticated
from lbcloud.entrypoints.web.leaderboard import build_leaderboard
from lbcloud.entrypoints.web.limits import csrf_token_for
from lbcloud.entrypoints.web.operator import build_overview
from lbcloud.entrypoints.web.route_detail import build_route_detail, completion_chart
from lbcloud.entrypoints.web.views import ProgressOut, build_progress, event_out, submission_with_state, track_out
from lbcloud.entrypoints.wiring import System

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


def format_duration(seconds: float | None) -> str:
    """``75.4`` → ``1m 15s``; ``None`` → ``–``."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def format_number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def format_time(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters["duration"] = format_duration
    env.filters["num"] = format_number
    env.filters["when"] = format_time
    env.globals["version"] = __version__
    env.trim_blocks = True
    env.lstrip_blocks = True
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)  # compile up front: the first live snapshot should not pay for it
    return templates


def render_fragments(templates: Jinja2Templates, progress: ProgressOut, now: datetime) -> dict[str, str]:
    """The live regions of the submission page, rendered once per change for every watcher."""
    context: dict[str, Any] = {
        "p": progress,
        "scores": score_chart(progress),
        "timeline": timeline(progress, now),
    }
    env = templates.env
    return {
        name: env.get_template(f"_{name}.html").render(context)
        for name in ("summary", "routes", "chart_scores", "chart_timeline", "attempts")
    }


def live_payload(system: System, templates: Jinja2Templates, submission_id: int) -> tuple[str, bool, str]:
    """The ``progress`` SSE payload of a submission, whether it is terminal, and its team."""
    submission = system.store.get_submission(submission_id)
    progress = build_progress(system, submission)
    html = render_fragments(templates, progress, system.clock.now())
    payload = {"progress": progress.model_dump(mode="json"), "html": html}
    return json.dumps(payload, separators=(",", ":")), submission.status.terminal, submission.team


def _templates(request: Request) -> Jinja2Templates:
    templates: Jinja2Templates = request.app.state.templates
    return templates


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    system: System = request.app.state.system
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        try:
            principal = get_principal(request)
        except NotAuthenticated:
            principal = PUBLIC
    base = {
        "principal": principal,
        "tracks": list(system.tracks),
        "open_mode": open_mode(system.settings.web),
        "path": request.url.path,
        "csrf_token": csrf_token_for(cookie) if (cookie := request.cookies.get(COOKIE_NAME)) else "",
    }
    return _templates(request).TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def default_track(system: System) -> str | None:
    """The track to open first: the first one with a finished entry, else the first with work in
    progress, else the first track."""
    names = list(system.tracks)
    for name in names:
        if system.store.leaderboard(name):
            return name
    active = system.store.list_submissions(statuses=sorted(ACTIVE), limit=1)
    if active and active[0].track in system.tracks:
        return active[0].track
    return names[0] if names else None


@router.get("/")
def home(system: SystemDep) -> RedirectResponse:
    first = default_track(system)
    return RedirectResponse(f"/leaderboard/{first}" if first else "/challenge", status_code=307)


@router.get("/leaderboard")
def leaderboard_default(system: SystemDep) -> RedirectResponse:
    first = default_track(system)
    return RedirectResponse(f"/leaderboard/{first}" if first else "/challenge", status_code=307)


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/leaderboard/{track}", response_class=HTMLResponse)
def leaderboard_page(track: str, request: Request, system: SystemDep, principal: PrincipalDep) -> HTMLResponse:
    if track not in system.tracks:
        raise NotFound(f"no track {track!r}")
    board = build_leaderboard(
        system.store, track, system.settings.web.team_profiles, system.settings.web.baseline_teams
    )
    return render(request, "leaderboard.html", board=board, track=system.tracks[track], current_track=track)


@router.get("/submissions", response_class=HTMLResponse)
def submissions_page(request: Request, system: SystemDep, principal: PrincipalDep) -> Response:
    if not principal.signed_in:
        return _login_redirect(request)
    team = None if principal.is_operator else principal.team
    rows = [submission_with_state(system.store, s) for s in system.store.list_submissions(team=team, limit=500)]
    usage = []
    if team is not None:
        for track in system.tracks.values():
            if track.limits.any:
                usage.append((track.name, system.intake.limit_usage(team, track).summary()))
    return render(request, "submissions.html", submissions=rows, usage=usage)


@router.get("/challenge", response_class=HTMLResponse)
def challenge_page(request: Request, system: SystemDep, principal: PrincipalDep) -> HTMLResponse:
    boards = {name: len(system.store.leaderboard(name)) for name in system.tracks}
    return render(
        request,
        "challenge.html",
        challenge=system.settings.web.challenge,
        track_rows=[(track_out(t), t, boards[name]) for name, t in system.tracks.items()],
        public_url=system.settings.web.public_url or str(request.base_url).rstrip("/"),
    )


@router.get("/submissions/{submission_id}", response_class=HTMLResponse)
def submission_page(submission_id: int, request: Request, system: SystemDep, principal: PrincipalDep) -> Response:
    if not principal.signed_in:
        return _login_redirect(request)
    submission = visible_submission(system, principal, submission_id)
    progress = build_progress(system, submission)
    events = system.store.events(submission_id=submission_id, after_id=0, limit=1000)[-50:]
    fragments = render_fragments(_templates(request), progress, system.clock.now())
    return render(
        request,
        "submission.html",
        p=progress,
        fragments=fragments,
        events=[event_out(e) for e in reversed(events)],
        can_cancel=not submission.status.terminal,
        can_resume=principal.is_operator and submission.status in (SubmissionStatus.FAILED, SubmissionStatus.CANCELLED),
    )


@router.get("/submissions/{submission_id}/routes/{instance_id}", response_class=HTMLResponse)
def route_page(
    submission_id: int, instance_id: str, request: Request, system: SystemDep, principal: PrincipalDep
) -> Response:
    if not principal.signed_in:
        return _login_redirect(request)
    submission = visible_submission(system, principal, submission_id)
    detail = build_route_detail(system, submission, instance_id)
    return render(request, "route.html", d=detail, r=detail.route, chart=completion_chart(detail))


@router.get("/operator", response_class=HTMLResponse)
def operator_page(request: Request, system: SystemDep, principal: PrincipalDep) -> Response:
    if not principal.signed_in:
        return _login_redirect(request)
    require_operator(principal)
    return render(request, "operator.html", o=build_overview(system))


def _safe_next(target: str | None) -> str:
    # only local paths: never redirect a signed-in user to another site
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/submissions"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), error=None)


def set_token_cookie(response: Response, system: System, token: str) -> None:
    secure = bool(system.settings.web.public_url and system.settings.web.public_url.startswith("https"))
    response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="lax", secure=secure, max_age=30 * 24 * 3600)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, system: SystemDep) -> Response:
    # a plain urlencoded form: two fields do not justify a multipart parser dependency
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or [""])[0])
    try:
        principal: Principal | None = principal_for_token(system.settings.web, token)
    except InvalidToken:
        principal = None
    if principal is None or not principal.signed_in:
        return render(request, "login.html", status_code=401, next=target, error="That token is not valid.")
    response = RedirectResponse(target, status_code=303)
    set_token_cookie(response, system, token)
    return response


@router.get("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE_NAME)
    return response
