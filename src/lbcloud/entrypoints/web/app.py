"""The web application: JSON API, pages, live feeds, health and metrics in one FastAPI app.

``create_app(system, role=...)`` builds it:

- ``web``: API (``/api/v1``, OpenAPI at ``/api/openapi.json``, docs at ``/api/docs``), pages, static files;
- ``dispatcher``: the reporter API that attempts talk to (``/api/v1/reporter/...``);
- ``all``: both.

Every role serves ``/healthz`` (the process is up), ``/readyz`` (the state store answers) and
``/metrics`` (Prometheus). Errors are ``{"error": "<one line>"}`` with a fitting status on API paths
and an error page elsewhere. Each request is logged once, with the submission and attempt ids of its
path when it has them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbcloud import __version__
from lbcloud.adapters.metrics import PrometheusMetrics
from lbcloud.domain.errors import LbcloudError
from lbcloud.entrypoints.web import api, pages
from lbcloud.entrypoints.web.api_docs import describe as describe_openapi
from lbcloud.entrypoints.web.auth import QUERY_TOKEN, InvalidToken, principal_for_token
from lbcloud.entrypoints.web.errors import status_for
from lbcloud.entrypoints.web.limits import BodyLimit, CsrfGuard
from lbcloud.entrypoints.web.sse import LiveHub
from lbcloud.entrypoints.web.views import event_out
from lbcloud.entrypoints.wiring import System

log = logging.getLogger("lbcloud.web")

Role = Literal["all", "web", "dispatcher"]


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path in ("/healthz", "/readyz", "/metrics")


class RequestLog:
    """ASGI middleware: one log line and the HTTP metrics per request (logged when the response
    starts, so a long event stream is logged when it opens)."""

    def __init__(self, app: ASGIApp, metrics: PrometheusMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        logged = False

        def done(status: int) -> None:
            nonlocal logged
            if logged:
                return
            logged = True
            route = scope.get("route")
            template = getattr(route, "path", None) or "(unmatched)"
            seconds = time.perf_counter() - started
            self.metrics.http_request(scope["method"], template, status, seconds)
            params = scope.get("path_params") or {}
            extra: dict[str, Any] = {"component": "web"}
            for param, field in (("submission_id", "submission"), ("attempt_id", "attempt")):
                value = str(params.get(param, ""))
                if value.isdigit():
                    extra[field] = int(value)
            if "instance_id" in params:
                extra["route"] = params["instance_id"]
            level = logging.WARNING if status >= 500 else logging.INFO
            log.log(level, "%s %s %d %.1fms", scope["method"], scope["path"], status, seconds * 1000, extra=extra)
            if status >= 500:
                self.metrics.external_error("api", str(status))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                done(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            done(500)
            raise


def _error_response(request: Request, status: int, message: str) -> Response:
    if _is_api(request.url.path):
        return JSONResponse({"error": message}, status_code=status)
    if status == 401:
        return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303)
    return pages.render(request, "error.html", status_code=status, status=status, message=message)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LbcloudError)
    async def project_error(request: Request, err: LbcloudError) -> Response:
        status = status_for(err)
        if status >= 500:
            log.error("unexpected error on %s: %s", request.url.path, err)
        return _error_response(request, status, str(err) or type(err).__name__)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> Response:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
        return _error_response(request, 422, f"{where}: {first.get('msg', 'invalid')}{more}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> Response:
        message = err.detail if isinstance(err.detail, str) else "request failed"
        if err.status_code == 404 and message == "Not Found":
            message = f"no such page or endpoint: {request.url.path}"
        return _error_response(request, err.status_code, message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _error_response(request, 500, f"internal error ({type(err).__name__}); see the server log")


class TokenLink:
    """ASGI middleware: ``?token=`` on a page is remembered in the cookie and the page reloads
    without it (a plain ASGI wrapper, so event streams pass through untouched)."""

    def __init__(self, app: ASGIApp, system: System) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.query_params.get(QUERY_TOKEN)
        if token is None:
            await self.app(scope, receive, send)
            return
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != QUERY_TOKEN]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        try:
            principal_for_token(self.system.settings.web, token)
        except InvalidToken:
            response: Response = RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        else:
            response = RedirectResponse(target, status_code=303)
            pages.set_token_cookie(response, self.system, token)
        await response(scope, receive, send)


def create_app(system: System, *, role: Role = "all") -> FastAPI:
    """Build the web application over ``system`` (see the module docstring for the roles).

    Installs a :class:`PrometheusMetrics` on ``system.metrics`` unless it already has one, so build
    the dispatcher after the app to have its figures on ``/metrics``."""
    if not isinstance(system.metrics, PrometheusMetrics):
        system.metrics = PrometheusMetrics()
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)  # the request log is the server's access log: on unless configured off
    metrics = system.metrics
    templates = pages.make_templates()

    def load(submission_id: int) -> tuple[str, bool, str]:
        return pages.live_payload(system, templates, submission_id)

    def read_events(submission_id: int, after_id: int) -> list[Any]:
        return system.store.events(submission_id=submission_id, after_id=after_id, limit=500)

    hub = LiveHub(
        load,
        read_events,
        lambda event: event_out(event).model_dump_json(),
        on_clients=metrics.sse_clients,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await hub.close()

    app = FastAPI(
        title="lbcloud",
        version=__version__,
        description="Evaluation backend for closed-loop driving leaderboards: tracks, leaderboards, "
        "submissions, route records, attempts and their logs.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.system = system
    app.state.templates = templates
    app.state.live_hub = hub
    app.state.role = role
    _install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        try:
            system.store.list_submissions(limit=1)
        except LbcloudError as err:
            return JSONResponse({"error": f"state store unavailable: {err}"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return PlainTextResponse(metrics.render(), media_type=metrics.content_type)

    if role in ("all", "web"):
        app.include_router(api.router)
        app.include_router(pages.router)
        app.mount("/static", StaticFiles(directory=str(pages.STATIC_DIR)), name="static")

        @app.get("/api/docs", include_in_schema=False, response_class=HTMLResponse)
        def api_docs(request: Request) -> HTMLResponse:
            spec = app.openapi()
            return pages.render(request, "api_docs.html", spec=spec, endpoints=describe_openapi(spec))

        app.add_middleware(TokenLink, system=system)
    if role in ("all", "dispatcher"):
        from lbcloud.entrypoints.web.reporter_api import build_router

        app.include_router(build_router(system))
    app.add_middleware(CsrfGuard, public_url=system.settings.web.public_url)
    app.add_middleware(BodyLimit, max_bytes=system.settings.web.max_body_bytes)
    app.add_middleware(RequestLog, metrics=metrics)
    return app
