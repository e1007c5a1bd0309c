"""An EvalAI stand-in: a real HTTP server on 127.0.0.1 speaking the host API of ``evalai-host-api.md``.

It reproduces the paths (trailing slashes included), methods, status codes and error texts lbcloud
relies on: both auth header forms and their 401s, the verified-email 403, host checks (401 on
E1/E2/E4/E5, 400 on E7–E10), E7's PATCH-only ``queued``/``running``, E8/E9's result-as-string and
label checks against a phase split schema, queue redelivery after a visibility timeout, E10's
filters, E11–E14, participant-side submission creation and message re-publishing, 429 throttling,
token expiry and fault injection (500s or hangs for a period).

Anything else answers 404 and is listed in :attr:`EvalAIStandIn.unknown_requests`, so tests can
assert the client sent only documented requests. Time for visibility and throttle windows comes from
``clock`` (seconds), so tests can move it forward instead of waiting.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lbcloud.domain.results.model import EVALAI_KEYS_2X

STATUSES = (
    "submitting",
    "submitted",
    "queued",
    "running",
    "partially_evaluated",
    "finished",
    "failed",
    "cancelled",
    "resuming",
    "archived",
)
E10_FILTERS = ("submitted", "running", "queued", "resuming", "failed", "cancelled", "finished", "submitting")
NOT_HOST_401 = {"error": "Sorry, you are not authorized to access this resource"}
NOT_HOST_400 = {"error": "Sorry, you are not authorized to make this request!"}
INVALID_STATUS = {"error": "Sorry, submission status is invalid"}
SUCCESS_RESULT = {"success": "Submission result has been successfully updated"}


@dataclass
class User:
    username: str
    jwt: str
    key: str
    verified: bool = True
    host: bool = False
    team_id: int | None = None
    team_name: str | None = None


@dataclass
class PhaseSplit:
    id: int
    phase: int
    split: str
    labels: list[str]
    default_order_by: str
    public: bool = True


@dataclass
class Phase:
    id: int
    codename: str
    partial: bool = True
    is_public: bool = True


@dataclass
class Submission:
    id: int
    phase: int
    team_id: int
    team_name: str
    created_by: str
    input_file: bytes
    submitted_at: datetime
    method_name: str = ""
    status: str = "submitted"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    rerun_resumed_at: datetime | None = None
    stdout: str = ""
    stderr: str = ""
    metadata: str | None = None
    job_name: list[str] = field(default_factory=list)
    is_public: bool = True
    is_flagged: bool = False
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)  # (endpoint, status)


@dataclass
class Message:
    id: int
    body: str
    visible_at: float
    handle: str | None = None
    receives: int = 0


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    endpoint: str | None
    status: int
    user: str | None
    submission: int | None
    at: float = 0.0


class Fault:
    """Makes matching requests fail with ``status`` (or hang ``hang_s`` seconds first) until ``until``."""

    def __init__(self, until: float, status: int = 500, hang_s: float = 0.0, endpoints: set[str] | None = None):
        self.until = until
        self.status = status
        self.hang_s = hang_s
        self.endpoints = endpoints


_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    (name, method, re.compile(pattern))
    for name, method, pattern in [
        ("E1", "GET", r"^/api/challenges/challenge/queues/(?P<queue>[^/]+)/$"),
        ("E2", "GET", r"^/api/challenges/(?P<challenge>\d+)/phases/$"),
        ("E3", "GET", r"^/api/challenges/challenge/(?P<challenge>\d+)/challenge_phase/(?P<phase>\d+)$"),
        ("E4", "GET", r"^/api/jobs/challenge/queues/(?P<queue>[^/]+)/$"),
        ("E5", "POST", r"^/api/jobs/queues/(?P<queue>[^/]+)/$"),
        ("E6", "GET", r"^/api/jobs/submission/(?P<submission>\d+)$"),
        ("E7", "PATCH", r"^/api/jobs/challenge/(?P<challenge>\d+)/update_submission/$"),
        ("E8", "PUT", r"^/api/jobs/challenge/(?P<challenge>\d+)/update_submission/$"),
        ("E9", "PUT", r"^/api/jobs/challenges/(?P<challenge>\d+)/update_partially_evaluated_submission/$"),
        ("E9", "PATCH", r"^/api/jobs/challenges/(?P<challenge>\d+)/update_partially_evaluated_submission/$"),
        ("E10", "GET", r"^/api/jobs/challenge/(?P<challenge>\d+)/submission/$"),
        (
            "E11",
            "PATCH",
            r"^/api/jobs/challenges/(?P<challenge>\d+)/submissions/(?P<submission>\d+)/update_submission_meta/$",
        ),
        ("E12", "POST", r"^/api/jobs/submissions/(?P<submission>\d+)/resume/$"),
        ("E13", "POST", r"^/api/jobs/submissions/(?P<submission>\d+)/re-run/$"),
        ("E14", "GET", r"^/api/jobs/challenge_phase_split/(?P<phase_split>\d+)/leaderboard/$"),
        ("P1", "POST", r"^/api/jobs/challenge/(?P<challenge>\d+)/challenge_phase/(?P<phase>\d+)/submission/$"),
        ("P2", "POST", r"^/api/jobs/phases/(?P<phase>\d+)/send_submission_message/(?P<submission>\d+)/$"),
        ("login", "POST", r"^/api/auth/login$"),
        ("get_auth_token", "GET", r"^/api/accounts/user/get_auth_token$"),
        ("refresh_auth_token", "GET", r"^/api/accounts/user/refresh_auth_token$"),
        ("media", "GET", r"^/media/submission_files/(?P<submission>\d+)/input_file\.json$"),
    ]
]
_ANONYMOUS = {"E14", "media", "login"}


class HTTPError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


class EvalAIStandIn:
    """The stand-in's state and server. Use as a context manager or call :meth:`start`/:meth:`stop`.

    One challenge (pk ``challenge_id``, queue ``queue_name``), phases with one dataset split each
    (codename ``split``) whose phase split pks are ``100 + phase pk``; labels default to the 15
    EvalAI keys of the leaderboard format, ordered by ``Driving score``.
    """

    def __init__(
        self,
        *,
        challenge_id: int = 1,
        queue_name: str = "lbcloud-test-queue-1",
        phases: dict[int, bool] | None = None,
        split: str = "leaderboard",
        labels: list[str] | None = None,
        visibility_timeout_s: float = 30.0,
        rate_limit_per_min: int | None = None,
        allow_resuming: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.challenge_id = challenge_id
        self.queue_name = queue_name
        self.split = split
        self.labels = list(labels or EVALAI_KEYS_2X)
        self.visibility_timeout_s = visibility_timeout_s
        self.rate_limit_per_min = rate_limit_per_min
        self.allow_resuming = allow_resuming
        self.clock = clock
        self.phases = {pk: Phase(pk, f"phase-{pk}", partial) for pk, partial in (phases or {1: True}).items()}
        self.phase_splits = {
            100 + pk: PhaseSplit(100 + pk, pk, split, self.labels, self.labels[0]) for pk in self.phases
        }
        self.users: dict[str, User] = {}
        self.submissions: dict[int, Submission] = {}
        self.queue: list[Message] = []
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._calls: dict[str, list[float]] = {}
        self._lock = threading.RLock()
        self._next_submission = 1
        self._next_message = 1
        self._next_team = 1
        host = self.add_user("host", host=True)
        self.host_jwt = host.jwt
        self.host_key = host.key
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---------------------------------------------------------------------------------- set-up helpers
    def add_user(self, username: str, *, host: bool = False, verified: bool = True, team: str | None = None) -> User:
        with self._lock:
            user = User(
                username,
                jwt=f"eyJ.{secrets.token_urlsafe(24)}",
                key=secrets.token_hex(20),
                verified=verified,
                host=host,
            )
            if team is not None:
                user.team_id = self._next_team
                user.team_name = team
                self._next_team += 1
            self.users[username] = user
            return user

    def add_participant(self, team: str) -> User:
        return self.add_user(f"user-{team}", team=team)

    def expire_token(self, token: str) -> None:
        """The JWT or key stops working (expiry or rotation)."""
        with self._lock:
            for user in self.users.values():
                if user.jwt == token:
                    user.jwt = f"expired-{secrets.token_hex(4)}"
                if user.key == token:
                    user.key = secrets.token_hex(20)

    def fail(
        self, seconds: float, *, status: int = 500, hang_s: float = 0.0, endpoints: set[str] | None = None
    ) -> None:
        """Answer ``status`` (after hanging ``hang_s``) to every matching request for ``seconds``."""
        with self._lock:
            self.faults.append(Fault(self.clock() + seconds, status, hang_s, endpoints))

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()

    def cancel(self, pk: int) -> None:
        """A participant's or host's E11 ``status=cancelled`` (state change without a request)."""
        with self._lock:
            self._set_status(self.submissions[pk], "cancelled", "E11")

    def publish(self, body: dict[str, Any] | str) -> None:
        """Put a raw message on the queue (tests of malformed input)."""
        with self._lock:
            self._enqueue(body if isinstance(body, str) else json.dumps(body))

    # ------------------------------------------------------------------------------------ inspection
    @property
    def unknown_requests(self) -> list[LoggedRequest]:
        """Requests the spec does not document (they were answered 404)."""
        return [r for r in self.requests if r.endpoint is None]

    def count(self, endpoint: str, submission: int | None = None) -> int:
        return sum(
            1 for r in self.requests if r.endpoint == endpoint and (submission is None or r.submission == submission)
        )

    def status_history(self, pk: int) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.submissions[pk].history)

    def queued_messages(self) -> int:
        with self._lock:
            return len(self.queue)

    # ------------------------------------------------------------------------------------------ server
    def start(self) -> EvalAIStandIn:
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="evalai-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the EvalAI stand-in did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> EvalAIStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        method = request.method
        endpoint: str | None = None
        params: dict[str, str] = {}
        for name, route_method, pattern in _ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                endpoint, params = name, match.groupdict()
                break
        body = await request.body()
        user: User | None = None
        submission = int(params["submission"]) if "submission" in params else None
        hang = 0.0
        if submission is None and request.headers.get("content-type", "").startswith("application/json"):
            try:
                peek = json.loads(body or b"{}")
            except ValueError:
                peek = None
            if isinstance(peek, dict) and str(peek.get("submission", "")).isdigit():
                submission = int(peek["submission"])
        try:
            if endpoint is None:
                raise HTTPError(404, {"detail": "Not found."})
            with self._lock:
                fault = self._active_fault(endpoint)
            if fault is not None:
                hang = fault.hang_s
                raise HTTPError(fault.status, {"error": "injected fault"})
            with self._lock:
                user = self._authenticate(request, endpoint)
                self._throttle(user)
                payload = self._parse_body(request, body)
                if submission is None and isinstance(payload, dict) and str(payload.get("submission", "")).isdigit():
                    submission = int(payload["submission"])
                status, result = self._dispatch(endpoint, params, payload, dict(request.query_params), user, request)
        except HTTPError as err:
            status, result = err.status, err.body
            headers = err.headers
        else:
            headers = {}
        with self._lock:
            self.requests.append(
                LoggedRequest(
                    method,
                    path,
                    request.url.query,
                    endpoint,
                    status,
                    user.username if user else None,
                    submission,
                    self.clock(),
                )
            )
        if hang:
            await asyncio.sleep(hang)
        if endpoint == "media" and status == 200 and isinstance(result, bytes):
            return Response(result, media_type="application/json")
        return JSONResponse(result, status_code=status, headers=headers)

    def _active_fault(self, endpoint: str) -> Fault | None:
        now = self.clock()
        self.faults = [f for f in self.faults if f.until > now]
        for fault in self.faults:
            if fault.endpoints is None or endpoint in fault.endpoints:
                return fault
        return None

    # --------------------------------------------------------------------------------- auth, limits
    def _authenticate(self, request: Request, endpoint: str) -> User | None:
        header = request.headers.get("authorization")
        if header is None:
            if endpoint in _ANONYMOUS:
                return None
            raise HTTPError(401, {"detail": "Authentication credentials were not provided."})
        scheme, _, token = header.partition(" ")
        user: User | None = None
        if scheme == "Bearer":
            user = next((u for u in self.users.values() if u.jwt == token), None)
            if user is None:
                raise HTTPError(
                    401,
                    {
                        "detail": "Given token not valid for any token type",
                        "code": "token_not_valid",
                        "messages": [
                            {
                                "token_class": "AccessToken",
                                "token_type": "access",
                                "message": "Token is invalid or expired",
                            }
                        ],
                    },
                )
        elif scheme == "Token":
            user = next((u for u in self.users.values() if u.key == token), None)
            if user is None:
                raise HTTPError(401, {"detail": "Invalid token."})
        else:
            raise HTTPError(401, {"detail": "Authentication credentials were not provided."})
        if not user.verified and endpoint not in _ANONYMOUS:
            raise HTTPError(403, {"detail": "Please verify your email!"})
        if not user.host:
            if endpoint in {"E1", "E2", "E4", "E5"}:
                raise HTTPError(401, NOT_HOST_401)
            if endpoint in {"E7", "E8", "E9", "E10"}:
                raise HTTPError(400, NOT_HOST_400)
        return user

    def _throttle(self, user: User | None) -> None:
        if self.rate_limit_per_min is None:
            return
        key = user.username if user else "anonymous"
        limit = self.rate_limit_per_min if user else 100
        now = self.clock()
        calls = [t for t in self._calls.get(key, []) if t > now - 60]
        if len(calls) >= limit:
            wait = max(1, int(calls[0] + 60 - now + 0.999))
            self._calls[key] = calls
            raise HTTPError(
                429,
                {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                {"Retry-After": str(wait)},
            )
        calls.append(now)
        self._calls[key] = calls

    @staticmethod
    def _parse_body(request: Request, body: bytes) -> Any:
        if not body:
            return {}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                return json.loads(body)
            except ValueError:
                raise HTTPError(400, {"detail": "JSON parse error"}) from None
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[-1] for k, v in parse_qs(body.decode()).items()}
        if ctype.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
            )
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                content = part.get_payload(decode=True)
                fields[str(name)] = content if part.get_filename() else content.decode()
            return fields
        raise HTTPError(415, {"detail": f'Unsupported media type "{ctype}" in request.'})

    # ---------------------------------------------------------------------------------- the endpoints
    def _dispatch(
        self,
        endpoint: str,
        params: dict[str, str],
        body: Any,
        query: dict[str, str],
        user: User | None,
        request: Request,
    ) -> tuple[int, Any]:
        if "challenge" in params and int(params["challenge"]) != self.challenge_id:
            raise HTTPError(404, {"detail": "Not found."})
        if endpoint in {"E1", "E4", "E5"} and params["queue"] != self.queue_name:
            raise HTTPError(400, {"error": f"Challenge with queue name {params['queue']} does not exist"})
        handler: Callable[..., tuple[int, Any]] = getattr(self, f"_{endpoint.lower()}")
        return handler(params=params, body=body, query=query, user=user, request=request)

    def _e1(self, **_: Any) -> tuple[int, Any]:
        return 200, {
            "id": self.challenge_id,
            "title": "lbcloud stand-in challenge",
            "is_docker_based": True,
            "remote_evaluation": True,
            "allow_resuming_submissions": self.allow_resuming,
            "submission_time_limit": 86400,
            "use_fifo_sqs": False,
            "sqs_retention_period": 345600,
            "is_active": True,
            "queue": self.queue_name,
        }

    def _phase_json(self, phase: Phase) -> dict[str, Any]:
        return {
            "id": phase.id,
            "codename": phase.codename,
            "name": phase.codename,
            "is_public": phase.is_public,
            "is_partial_submission_evaluation_enabled": phase.partial,
            "challenge": self.challenge_id,
        }

    def _e2(self, **_: Any) -> tuple[int, Any]:
        return 200, [self._phase_json(p) for p in self.phases.values()]

    def _e3(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        phase = self.phases.get(int(params["phase"]))
        if phase is None:
            raise HTTPError(406, {"error": "Challenge Phase does not exist"})
        return 200, self._phase_json(phase)

    def _e4(self, **_: Any) -> tuple[int, Any]:
        now = self.clock()
        for message in self.queue:
            if message.visible_at <= now:
                message.handle = secrets.token_urlsafe(16)
                message.visible_at = now + self.visibility_timeout_s
                message.receives += 1
                return 200, {"body": message.body, "receipt_handle": message.handle}
        return 200, {"body": None, "receipt_handle": None}

    def _e5(self, body: Any, **_: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or "receipt_handle" not in body:
            raise HTTPError(500, {"detail": "Internal Server Error"})
        handle = body["receipt_handle"]
        if not handle:
            raise HTTPError(400, {"error": "Error deleting message: receipt handle is empty"})
        # only the latest receive's handle deletes; a stale one leaves the message queued
        self.queue = [m for m in self.queue if m.handle != handle]
        return 200, {"success": f"Message deleted successfully from the queue: {self.queue_name}"}

    def _submission_json(self, sub: Submission) -> dict[str, Any]:
        base = self.base_url
        return {
            "id": sub.id,
            "participant_team": sub.team_id,
            "participant_team_name": sub.team_name,
            "challenge_phase": sub.phase,
            "created_by": sub.created_by,
            "status": sub.status,
            "started_at": _iso(sub.started_at),
            "completed_at": _iso(sub.completed_at),
            "submitted_at": _iso(sub.submitted_at),
            "rerun_resumed_at": _iso(sub.rerun_resumed_at),
            "execution_time": None,
            "method_name": sub.method_name,
            "is_public": sub.is_public,
            "is_flagged": sub.is_flagged,
            "ignore_submission": False,
            "is_baseline": False,
            "submission_metadata": None,
            "input_file": f"{base}/media/submission_files/{sub.id}/input_file.json",
            "stdout_file": None,
            "stderr_file": None,
            "environment_log_file": None,
            "submission_result_file": None,
            "job_name": list(sub.job_name),
        }

    def _get(self, pk: Any) -> Submission:
        try:
            sub = self.submissions.get(int(pk))
        except (TypeError, ValueError):
            sub = None
        if sub is None:
            raise HTTPError(404, {"error": f"Submission {pk} does not exist"})
        return sub

    def _e6(self, params: dict[str, str], user: User | None, **_: Any) -> tuple[int, Any]:
        sub = self._get(params["submission"])
        if user is None or not (user.host or user.username == sub.created_by):
            raise HTTPError(401, NOT_HOST_401)
        return 200, self._submission_json(sub)

    def _media(self, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        return 200, self._get(params["submission"]).input_file

    def _set_status(self, sub: Submission, status: str, endpoint: str) -> None:
        sub.status = status
        sub.history.append((endpoint, status))

    def _e7(self, body: Any, **_: Any) -> tuple[int, Any]:
        status = str(body.get("submission_status", "")).lower()
        if status not in ("queued", "running"):
            raise HTTPError(400, INVALID_STATUS)
        sub = self._get(body.get("submission"))
        self._set_status(sub, status, "E7")
        sub.started_at = datetime.now(UTC)
        if body.get("job_name"):
            sub.job_name.append(str(body["job_name"]).lower())
        return 200, self._submission_json(sub)

    def _check_result(self, sub: Submission, raw: Any, *, tolerate_unknown: bool) -> dict[str, dict[str, Any]]:
        if not isinstance(raw, str | bytes | bytearray):
            raise HTTPError(
                400,
                {
                    "error": "`result` key contains invalid data. Please check the format! "
                    f"the JSON object must be str, bytes or bytearray, not {type(raw).__name__}"
                },
            )
        try:
            entries = json.loads(raw)
        except ValueError as err:
            raise HTTPError(
                400, {"error": f"`result` key contains invalid data. Please check the format! {err}"}
            ) from None
        if not isinstance(entries, list):
            raise HTTPError(400, {"error": "`result` key contains invalid data. Please check the format!"})
        rows: dict[str, dict[str, Any]] = {}
        for entry in entries:
            split = entry.get("split")
            phase_split = next(
                (ps for ps in self.phase_splits.values() if ps.phase == sub.phase and ps.split == split), None
            )
            if phase_split is None:
                raise HTTPError(
                    400,
                    {
                        "error": f"Challenge Phase Split does not exist with phase_id: {sub.phase} "
                        f"and dataset_split: {split}"
                    },
                )
            if "accuracies" not in entry:
                raise HTTPError(500, {"detail": "KeyError: 'accuracies'"})
            accuracies = entry["accuracies"]
            unknown = [k for k in accuracies if k not in phase_split.labels]
            if unknown and not tolerate_unknown:
                raise HTTPError(400, {"error": f"Following metrics are missing in the leaderboard data: {unknown}"})
            malformed = [k for k, v in accuracies.items() if not isinstance(v, int | float)]
            if malformed:
                raise HTTPError(400, {"error": f"Values for following metrics are not of float/int: {malformed}"})
            rows[split] = dict(accuracies)
        return rows

    def _put(self, body: Any, endpoint: str, allowed: tuple[str, ...], tolerate_unknown: bool) -> tuple[int, Any]:
        status = str(body.get("submission_status", "")).lower()
        if status not in allowed:
            raise HTTPError(400, INVALID_STATUS)
        sub = self._get(body.get("submission"))
        for key in ("stdout", "stderr"):
            if not isinstance(body.get(key), str):
                raise HTTPError(500, {"detail": f"TypeError: {key} must be a string"})
        rows = self._check_result(sub, body.get("result"), tolerate_unknown=tolerate_unknown)
        sub.results = rows  # a PUT replaces the row's metrics
        sub.stdout, sub.stderr = body["stdout"], body["stderr"]
        if "metadata" in body:
            sub.metadata = body["metadata"]
        sub.completed_at = datetime.now(UTC)
        self._set_status(sub, status, endpoint)
        return 200, SUCCESS_RESULT

    def _e8(self, body: Any, **_: Any) -> tuple[int, Any]:
        return self._put(body, "E8", ("finished", "failed", "cancelled"), tolerate_unknown=False)

    def _e9(self, body: Any, request: Request, **kw: Any) -> tuple[int, Any]:
        status = str(body.get("submission_status", "")).lower()
        sub = self._get(body.get("submission"))
        partial = self.phases[sub.phase].partial
        if request.method == "PUT":
            return self._put(body, "E9", ("partially_evaluated", "finished", "failed", "cancelled"), partial)
        if status == "running":
            return self._e7(body=body, **kw)
        if status not in ("partially_evaluated", "finished"):
            raise HTTPError(400, INVALID_STATUS)
        if not sub.results:
            raise HTTPError(400, {"error": "Submission result does not exist, use PUT first"})
        rows = self._check_result(sub, body.get("result"), tolerate_unknown=partial)
        for split, values in rows.items():
            sub.results.setdefault(split, {}).update(values)
        self._set_status(sub, status, "E9")
        return 200, SUCCESS_RESULT

    def _e10(self, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        status = query.get("status")
        if status is not None and status not in E10_FILTERS:
            raise HTTPError(400, {"error": f"Invalid status {status}"})
        bounds: dict[str, datetime] = {}
        for key in ("submitted_after", "submitted_before"):
            if key in query:
                try:
                    moment = datetime.fromisoformat(query[key])
                except ValueError:
                    raise HTTPError(400, {"error": f"Invalid date for {key}"}) from None
                bounds[key] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        out = []
        for sub in self.submissions.values():
            if status is not None and sub.status != status:
                continue
            if "submitted_after" in bounds and not sub.submitted_at > bounds["submitted_after"]:
                continue
            if "submitted_before" in bounds and not sub.submitted_at < bounds["submitted_before"]:
                continue
            out.append(self._submission_json(sub))
        return 200, out

    def _e11(self, params: dict[str, str], body: Any, user: User | None, **_: Any) -> tuple[int, Any]:
        sub = self._get(params["submission"])
        if user is None or not (user.host or user.username == sub.created_by):
            raise HTTPError(403, {"error": "Sorry, you are not allowed to perform this operation!"})
        if "status" in body:
            status = str(body["status"]).lower()
            if status not in STATUSES:
                raise HTTPError(400, {"status": [f'"{status}" is not a valid choice.']})
            self._set_status(sub, status, "E11")
        for key in ("method_name", "is_public"):
            if key in body:
                setattr(sub, key, body[key])
        return 200, self._submission_json(sub)

    def _image_of(self, sub: Submission) -> str | None:
        try:
            image = json.loads(sub.input_file).get("submitted_image_uri")
        except (ValueError, AttributeError):
            return None
        return image if isinstance(image, str) else None

    def _e12(self, params: dict[str, str], user: User | None, **_: Any) -> tuple[int, Any]:
        sub = self._get(params["submission"])
        if user is None or not (user.host or (self.allow_resuming and user.username == sub.created_by)):
            raise HTTPError(403, {"error": "Sorry, you are not allowed to resume this submission!"})
        if sub.status != "failed":
            raise HTTPError(400, {"error": "Only failed submissions can be resumed"})
        if not self.allow_resuming:
            raise HTTPError(406, {"error": "Resuming submissions is not allowed for this challenge"})
        self._set_status(sub, "resuming", "E12")
        sub.rerun_resumed_at = datetime.now(UTC)
        self._enqueue(
            json.dumps(
                {
                    "challenge_pk": self.challenge_id,
                    "phase_pk": sub.phase,
                    "is_static_dataset_code_upload_submission": False,
                    "submitted_image_uri": self._image_of(sub),
                    "submission_pk": sub.id,
                }
            )
        )
        return 200, {"success": "Submission is successfully resumed"}

    def _e13(self, params: dict[str, str], user: User | None, **_: Any) -> tuple[int, Any]:
        sub = self._get(params["submission"])
        if user is None or not user.host:
            raise HTTPError(403, {"error": "Sorry, you are not allowed to re-run this submission!"})
        self._set_status(sub, "cancelled", "E13")
        copy = self._new_submission(
            sub.phase, sub.team_id, sub.team_name, sub.created_by, sub.input_file, sub.method_name, sub.submitted_at
        )
        copy.job_name = list(sub.job_name)
        self._enqueue(
            json.dumps(
                {
                    "challenge_pk": self.challenge_id,
                    "phase_pk": copy.phase,
                    "is_static_dataset_code_upload_submission": False,
                    "submitted_image_uri": self._image_of(copy),
                    "submission_pk": copy.id,
                }
            )
        )
        return 200, {"success": "Submission is successfully submitted for re-running"}

    def _e14(self, params: dict[str, str], query: dict[str, str], request: Request, **_: Any) -> tuple[int, Any]:
        split = self.phase_splits.get(int(params["phase_split"]))
        if split is None:
            raise HTTPError(404, {"detail": "Not found."})
        if not split.public:
            raise HTTPError(400, {"error": "Sorry, the leaderboard is not public!"})
        shown = {"finished", "partially_evaluated"} if self.phases[split.phase].partial else {"finished"}
        order = split.labels.index(split.default_order_by)
        best: dict[int, tuple[float, Submission]] = {}
        for sub in self.submissions.values():
            if sub.phase != split.phase or sub.status not in shown or not sub.is_public or sub.is_flagged:
                continue
            row = sub.results.get(split.split)
            if row is None:
                continue
            score = row.get(split.default_order_by)
            value = float(score) if isinstance(score, int | float) else float("-inf")
            if sub.team_id not in best or value > best[sub.team_id][0]:
                best[sub.team_id] = (value, sub)
        rows = []
        for value, sub in sorted(best.values(), key=lambda item: -item[0]):
            row = sub.results[split.split]
            rows.append(
                {
                    "id": sub.id,
                    "submission__id": sub.id,
                    "submission__participant_team__team_name": sub.team_name,
                    "submission__method_name": sub.method_name,
                    "leaderboard__schema": {"labels": split.labels, "default_order_by": split.default_order_by},
                    "filtering_score": value if value != float("-inf") else None,
                    "result": [row.get(label, "#") for label in split.labels],
                    "submission__status": sub.status,
                    "order_index": order,
                }
            )
        size = min(int(query.get("page_size", 100)), 1000)
        page = int(query.get("page", 1))
        chunk = rows[(page - 1) * size : page * size]
        url = f"{self.base_url}{request.url.path}"
        nxt = f"{url}?{urlencode({'page': page + 1, 'page_size': size})}" if page * size < len(rows) else None
        prev = f"{url}?{urlencode({'page': page - 1, 'page_size': size})}" if page > 1 else None
        return 200, {"count": len(rows), "next": nxt, "previous": prev, "results": chunk}

    def _new_submission(
        self,
        phase: int,
        team_id: int,
        team: str,
        created_by: str,
        input_file: bytes,
        method: str,
        submitted_at: datetime | None = None,
    ) -> Submission:
        sub = Submission(
            self._next_submission,
            phase,
            team_id,
            team,
            created_by,
            input_file,
            submitted_at or datetime.now(UTC),
            method_name=method,
        )
        self._next_submission += 1
        self.submissions[sub.id] = sub
        sub.history.append(("create", "submitted"))
        return sub

    def _enqueue(self, body: str) -> None:
        self.queue.append(Message(self._next_message, body, visible_at=self.clock()))
        self._next_message += 1

    def _p1(self, params: dict[str, str], body: Any, user: User | None, **_: Any) -> tuple[int, Any]:
        phase = self.phases.get(int(params["phase"]))
        if phase is None:
            raise HTTPError(404, {"error": "Challenge Phase does not exist"})
        if user is None or user.team_id is None or user.team_name is None:
            raise HTTPError(400, {"error": "You haven't participated in the challenge"})
        raw = body.get("input_file")
        if raw is None:
            raise HTTPError(400, {"input_file": ["No file was submitted."]})
        content = raw if isinstance(raw, bytes) else str(raw).encode()
        sub = self._new_submission(
            phase.id, user.team_id, user.team_name, user.username, content, str(body.get("method_name", ""))
        )
        message: dict[str, Any] = {
            "challenge_pk": str(self.challenge_id),
            "phase_pk": str(phase.id),
            "is_static_dataset_code_upload_submission": False,
        }
        image = self._image_of(sub)
        if image is not None:
            message["submitted_image_uri"] = image
        message["submission_pk"] = sub.id
        self._enqueue(json.dumps(message))
        return 201, self._submission_json(sub)

    def _p2(self, params: dict[str, str], user: User | None, **_: Any) -> tuple[int, Any]:
        sub = self._get(params["submission"])
        if user is None or user.username != sub.created_by:
            raise HTTPError(403, {"error": "Sorry, you are not allowed to perform this operation!"})
        self._enqueue(json.dumps({"challenge_pk": self.challenge_id, "phase_pk": sub.phase, "submission_pk": sub.id}))
        return 200, {"success": "Submission message sent"}

    def _login(self, body: Any, **_: Any) -> tuple[int, Any]:
        user = self.users.get(str(body.get("username")))
        if user is None:
            raise HTTPError(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        return 200, {"token": user.key}

    def _get_auth_token(self, user: User | None, **_: Any) -> tuple[int, Any]:
        assert user is not None
        return 200, {"token": user.jwt, "expires_at": "2027-11-28T00:00:00Z"}

    def _refresh_auth_token(self, user: User | None, **_: Any) -> tuple[int, Any]:
        assert user is not None
        user.jwt = f"eyJ.{secrets.token_urlsafe(24)}"
        return 200, {"token": user.jwt}


def submit_as_participant(standin: EvalAIStandIn, user: User, image: str, *, phase: int = 1, method: str = "") -> int:
    """What ``evalai push`` does after pushing the image: create the submission (multipart, P1)."""
    import httpx

    response = httpx.post(
        f"{standin.base_url}/api/jobs/challenge/{standin.challenge_id}/challenge_phase/{phase}/submission/",
        headers={"Authorization": f"Bearer {user.jwt}"},
        data={"status": "submitting", "method_name": method},
        files={"input_file": ("input.json", json.dumps({"submitted_image_uri": image}).encode(), "application/json")},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    pk: int = response.json()["id"]
    return pk
