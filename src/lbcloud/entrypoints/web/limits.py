"""Bounded inputs at the door: request bodies capped before anything parses them, and CSRF checks.

- :class:`BodyLimit` refuses a body over ``web.max_body_bytes`` with 413: at once when the declared
  ``Content-Length`` says so, otherwise as soon as the bytes read pass the cap. The body is read (up to
  the cap) before the application sees it, so no handler ever holds more than the cap in memory. The
  reporter API is left to its own, per-endpoint caps (records and log chunks are larger than forms).
- :class:`CsrfGuard` protects state-changing requests a browser could be tricked into sending:
  a request whose ``Origin`` (or ``Sec-Fetch-Site``) says it comes from another site is refused, and
  one authenticated by the page cookie (not by an ``Authorization`` header) must carry the page's
  CSRF token, in the ``X-CSRF-Token`` header or a ``csrf_token`` form field. The token is derived
  from the cookie's secret (:func:`csrf_token_for`), so another site cannot know it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbcloud.entrypoints.web.auth import COOKIE_NAME

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPORTER_PREFIX = "/api/v1/reporter/"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def csrf_token_for(cookie_token: str) -> str:
    """The CSRF token that goes with a page cookie (an HMAC of the cookie's secret)."""
    return hmac.new(cookie_token.encode(), b"lbcloud-csrf-v1", hashlib.sha256).hexdigest()[:40]


async def _send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class BodyLimit:
    """ASGI middleware: 413 for request bodies over ``max_bytes`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(REPORTER_PREFIX):
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is larger than the limit of {self.max_bytes} bytes"
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await _send_error(send, 413, too_large)
            return
        if scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_error(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        scope.setdefault("state", {})["body"] = body
        await self.app(scope, replay, send)


class CsrfGuard:
    """ASGI middleware: refuses cross-site and token-less cookie-authenticated unsafe requests.

    Runs inside :class:`BodyLimit`, which has read the (bounded) body into ``scope["state"]``."""

    def __init__(self, app: ASGIApp, public_url: str | None = None) -> None:
        self.app = app
        self.public_host = urlsplit(public_url).netloc if public_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or scope["path"].startswith(REPORTER_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is not None:
            await _send_error(send, 403, problem)
            return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> str | None:
        origin = _header(scope, b"origin")
        if origin is not None and origin != "null":
            ours = {_header(scope, b"host"), self.public_host} - {None}
            if ours and urlsplit(origin).netloc not in ours:
                return f"cross-site request refused (origin {origin})"
        if origin == "null" or _header(scope, b"sec-fetch-site") == "cross-site":
            return "cross-site request refused"
        if (_header(scope, b"authorization") or "").strip():
            return None  # a bearer token is never sent by a browser on its own
        cookies = SimpleCookie()
        try:
            cookies.load(_header(scope, b"cookie") or "")
        except Exception:
            return None
        morsel = cookies.get(COOKIE_NAME)
        if morsel is None or not morsel.value:
            return None  # not authenticated by the cookie: nothing a forged request could borrow
        expected = csrf_token_for(morsel.value)
        given = _header(scope, CSRF_HEADER.encode())
        if given is None:
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip()
            body = scope.get("state", {}).get("body", b"")
            if content_type == "application/x-www-form-urlencoded" and body:
                form = parse_qs(bytes(body).decode("utf-8", errors="replace"))
                values = form.get(CSRF_FIELD)
                given = values[0] if values else None
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            return "missing or wrong CSRF token: reload the page and try again"
        return None
