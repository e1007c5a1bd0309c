"""HTTP client for the EvalAI host API (spec ``evalai-host-api.md`` §2–§9), on httpx.

- Every endpoint lbcloud uses, with its exact path, trailing slash and method: E1–E14 (``E3``, ``E6``
  take no trailing slash; partial updates go to the plural ``challenges`` path).
- Both auth header forms (``Bearer <jwt>``, ``Token <40-hex key>``), chosen by configuration.
- Retries on 429, 5xx, timeouts and connection errors: capped exponential backoff with jitter,
  honouring ``Retry-After``; after ``max_attempts`` (or for a ``Retry-After`` longer than
  ``max_inline_wait_s``) an :class:`EvalAIUnavailable`, which callers answer by backing off.
- Auth failures (401, verified-email 403, "not authorized" 400 of E7–E10) raise
  :class:`EvalAIAuthError` with one operator message; other 4xx raise :class:`EvalAIRequestError`.
- A client-side token bucket keeps the account under EvalAI's 60 requests/min.

Time is injected (:class:`lbcloud.services.ports.Clock`) so backoff and the bucket run instantly in
tests. The client is thread-safe for use by one source, sink and watcher at once.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from lbcloud.adapters.clock import SystemClock
from lbcloud.adapters.evalai.errors import (
    EvalAIAuthError,
    EvalAIError,
    EvalAINotFound,
    EvalAIRequestError,
    EvalAIUnavailable,
)
from lbcloud.adapters.evalai.models import (
    E10_FILTERS,
    TERMINAL_STATUSES,
    Challenge,
    Delivery,
    EvalAIConfig,
    EvalAISubmission,
    LeaderboardPage,
    Phase,
)
from lbcloud.services.ports import Clock

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 300.0


class RequestBudget:
    """A token bucket: ``requests_per_minute`` refill, a burst of ``requests_per_minute // 6``.

    In any 60 s window at most burst + rate requests pass (58 for the default 50), under EvalAI's 60.
    :meth:`acquire` sleeps (on the injected clock) until a token is free.
    """

    def __init__(self, requests_per_minute: int, clock: Clock) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be >= 1")
        self.rate = requests_per_minute / 60.0
        self.capacity = float(max(1, requests_per_minute // 6))
        self._tokens = self.capacity
        self._clock = clock
        self._last = clock.monotonic()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0 - 1e-9:  # tolerate float drift
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                wait = max((1.0 - self._tokens) / self.rate, 0.001)
            self.waited_s += wait
            self._clock.sleep(wait)


class _Retryable(Exception):
    """A failure worth another try (429, 5xx, timeout, connection)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.message = message
        self.retry_after = retry_after
        super().__init__(message)


class _Throttled(Exception):
    """A 429 asking for a longer wait than the client may spend inline."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"retry after {retry_after} s")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("error", "detail", "errors"):
            if key in data:
                return str(data[key])
    return json.dumps(data)[:300]


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EvalAIClient:
    """The host side of one EvalAI instance.

    ``config`` gives the base URL, token, auth scheme, timeouts, retries and request budget;
    ``transport`` lets tests substitute an httpx transport; ``rng`` seeds the backoff jitter.
    Counts of requests sent are kept per endpoint (:attr:`requests_by_endpoint`) and per submission
    pk (:attr:`requests_by_submission`).
    """

    def __init__(
        self,
        config: EvalAIConfig,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._budget = RequestBudget(config.requests_per_minute, self._clock)
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            timeout=httpx.Timeout(config.timeout_s),
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "lbcloud"},
        )
        self._counts_lock = threading.Lock()
        self.requests_by_endpoint: Counter[str] = Counter()
        self.requests_by_submission: Counter[int] = Counter()

    @property
    def budget(self) -> RequestBudget:
        return self._budget

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EvalAIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ plumbing
    def _auth_headers(self) -> dict[str, str]:
        if not self.config.token:
            raise EvalAIAuthError("no host token configured; " + EvalAIAuthError.OPERATOR_HINT, endpoint="(any)")
        return {"Authorization": f"{self.config.auth_scheme} {self.config.token}"}

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, MAX_RETRY_AFTER_S)
        base = min(self.config.max_backoff_s, 0.5 * 2 ** (state.attempt_number - 1))
        return float(base / 2 + self._rng.uniform(0, base / 2))

    def _send(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        submission: int | None = None,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        label = f"{endpoint} {method} {url.split('?', maxsplit=1)[0]}"
        headers = self._auth_headers() if auth else {}

        def once() -> httpx.Response:
            self._budget.acquire()
            with self._counts_lock:
                self.requests_by_endpoint[endpoint] += 1
                if submission is not None:
                    self.requests_by_submission[submission] += 1
            try:
                response = self._http.request(method, url, json=json_body, params=params, headers=headers)
            except httpx.TimeoutException as err:
                raise _Retryable(f"timed out ({type(err).__name__})") from err
            except httpx.TransportError as err:
                raise _Retryable(f"connection failed ({err})") from err
            retry_after = _retry_after(response) if response.status_code == 429 else None
            if retry_after is not None and retry_after > self.config.max_inline_wait_s:
                raise _Throttled(retry_after)
            if response.status_code == 429 or response.status_code >= 500:
                raise _Retryable(f"HTTP {response.status_code}: {_error_text(response)}", _retry_after(response))
            return response

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "EvalAI request failed, retrying",
                extra={"endpoint": label, "submission": submission, "attempt": state.attempt_number, "error": str(exc)},
            )

        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.config.max_attempts)),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            response: httpx.Response = retrying(once)
        except _Throttled as err:
            raise EvalAIUnavailable(
                f"throttled by EvalAI: retry after {err.retry_after:.0f} s", endpoint=label, submission=submission
            ) from None
        except _Retryable as err:
            raise EvalAIUnavailable(
                f"{err.message} (gave up after {self.config.max_attempts} attempts)",
                endpoint=label,
                submission=submission,
            ) from None
        self._raise_for_status(response, label, submission)
        return response

    @staticmethod
    def _raise_for_status(response: httpx.Response, label: str, submission: int | None) -> None:
        code = response.status_code
        if code < 300:
            return
        text = _error_text(response)
        if code == 401:
            raise EvalAIAuthError(
                f"HTTP 401 {text!r}; {EvalAIAuthError.OPERATOR_HINT}",
                endpoint=label,
                submission=submission,
                status=code,
            )
        if code == 403 and "verify your email" in text.lower():
            raise EvalAIAuthError(
                f"HTTP 403 {text!r}; the host account's email address must be verified on EvalAI",
                endpoint=label,
                submission=submission,
                status=code,
            )
        if code == 400 and "not authorized" in text.lower():
            raise EvalAIAuthError(
                f"HTTP 400 {text!r}; {EvalAIAuthError.OPERATOR_HINT}",
                endpoint=label,
                submission=submission,
                status=code,
            )
        if code == 404:
            raise EvalAINotFound(f"HTTP 404 {text!r}", endpoint=label, submission=submission, status=code)
        if 300 <= code < 400:
            raise EvalAIRequestError(
                f"HTTP {code} redirect to {response.headers.get('Location')!r} (wrong path or base URL?)",
                endpoint=label,
                submission=submission,
                status=code,
            )
        raise EvalAIRequestError(f"HTTP {code} {text!r}", endpoint=label, submission=submission, status=code)

    @staticmethod
    def _json(response: httpx.Response, label: str, submission: int | None = None) -> Any:
        try:
            return response.json()
        except ValueError:
            raise EvalAIRequestError(
                f"answer is not JSON: {response.text[:200]!r}", endpoint=label, submission=submission
            ) from None

    def _parse(self, model: Any, data: Any, label: str, submission: int | None = None) -> Any:
        try:
            return model.model_validate(data)
        except ValueError as err:
            raise EvalAIRequestError(f"unexpected answer ({err})", endpoint=label, submission=submission) from None

    # ----------------------------------------------------------------------------------- endpoints
    def challenge_by_queue(self, queue: str) -> Challenge:
        """E1 ``GET /api/challenges/challenge/queues/<queue>/``."""
        response = self._send("E1", "GET", f"/api/challenges/challenge/queues/{queue}/")
        parsed: Challenge = self._parse(Challenge, self._json(response, "E1"), "E1")
        return parsed

    def phases(self, challenge: int) -> list[Phase]:
        """E2 ``GET /api/challenges/<challenge>/phases/``."""
        data = self._json(self._send("E2", "GET", f"/api/challenges/{challenge}/phases/"), "E2")
        if isinstance(data, dict) and "results" in data:  # tolerate a paginated answer
            data = data["results"]
        if not isinstance(data, list):
            raise EvalAIRequestError("expected a list of phases", endpoint="E2")
        return [self._parse(Phase, item, "E2") for item in data]

    def phase(self, challenge: int, phase: int) -> Phase:
        """E3 ``GET /api/challenges/challenge/<challenge>/challenge_phase/<phase>`` (no slash)."""
        response = self._send("E3", "GET", f"/api/challenges/challenge/{challenge}/challenge_phase/{phase}")
        parsed: Phase = self._parse(Phase, self._json(response, "E3"), "E3")
        return parsed

    def receive(self, queue: str) -> Delivery:
        """E4 ``GET /api/jobs/challenge/queues/<queue>/``: at most one message (short poll)."""
        response = self._send("E4", "GET", f"/api/jobs/challenge/queues/{queue}/")
        parsed: Delivery = self._parse(Delivery, self._json(response, "E4"), "E4")
        return parsed

    def ack(self, queue: str, receipt_handle: str, *, submission: int | None = None) -> None:
        """E5 ``POST /api/jobs/queues/<queue>/`` with the latest receipt handle."""
        if not receipt_handle:
            raise EvalAIRequestError("refusing to ack an empty receipt handle", endpoint="E5", submission=submission)
        self._send(
            "E5",
            "POST",
            f"/api/jobs/queues/{queue}/",
            json_body={"receipt_handle": receipt_handle},
            submission=submission,
        )

    def submission(self, submission: int) -> EvalAISubmission:
        """E6 ``GET /api/jobs/submission/<submission>`` (no slash)."""
        response = self._send("E6", "GET", f"/api/jobs/submission/{submission}", submission=submission)
        parsed: EvalAISubmission = self._parse(
            EvalAISubmission, self._json(response, "E6", submission), "E6", submission
        )
        return parsed

    def input_file(self, url: str, *, submission: int | None = None) -> bytes:
        """The submission's input file (a media or presigned storage URL; fetched without the token)."""
        absolute = urljoin(self.config.base_url.rstrip("/") + "/", url)
        return self._send("input_file", "GET", absolute, submission=submission, auth=False).content

    def set_status(self, challenge: int, submission: int, status: str, *, job_name: str | None = None) -> None:
        """E7 ``PATCH /api/jobs/challenge/<challenge>/update_submission/`` (``queued``/``running`` only).

        Each call resets ``started_at`` on EvalAI and appends ``job_name``: send it once."""
        if status not in ("queued", "running"):
            raise ValueError(f"E7 only takes queued/running, not {status!r}")
        body: dict[str, Any] = {"submission": submission, "submission_status": status}
        if job_name:
            body["job_name"] = job_name
        self._send(
            "E7", "PATCH", f"/api/jobs/challenge/{challenge}/update_submission/", json_body=body, submission=submission
        )

    def put_result(
        self,
        challenge: int,
        phase: int,
        submission: int,
        status: str,
        *,
        result: str,
        stdout: str,
        stderr: str,
        metadata: str | None = None,
        partial: bool = False,
    ) -> None:
        """E8 (final) or, with ``partial=True``, E9 (``challenges`` plural): PUT status and result.

        ``result`` is the JSON-encoded *string* EvalAI expects; stdout/stderr/metadata are strings."""
        if not isinstance(result, str):
            raise TypeError("result must be a JSON-encoded string")
        allowed = {"partially_evaluated", *TERMINAL_STATUSES} if partial else set(TERMINAL_STATUSES)
        if status not in allowed:
            raise ValueError(f"PUT {'E9' if partial else 'E8'} does not take status {status!r}")
        body: dict[str, Any] = {
            "challenge_phase": phase,
            "submission": submission,
            "submission_status": status,
            "result": result,
            "stdout": stdout or "",
            "stderr": stderr or "",
        }
        if metadata is not None:
            body["metadata"] = metadata
        if partial:
            self._send(
                "E9",
                "PUT",
                f"/api/jobs/challenges/{challenge}/update_partially_evaluated_submission/",
                json_body=body,
                submission=submission,
            )
        else:
            self._send(
                "E8",
                "PUT",
                f"/api/jobs/challenge/{challenge}/update_submission/",
                json_body=body,
                submission=submission,
            )

    def list_submissions(
        self,
        challenge: int,
        *,
        status: str | None = None,
        submitted_after: datetime | None = None,
        submitted_before: datetime | None = None,
    ) -> list[EvalAISubmission]:
        """E10 ``GET /api/jobs/challenge/<challenge>/submission/`` (unpaginated, exact-match filters)."""
        params: dict[str, str] = {}
        if status is not None:
            if status not in E10_FILTERS:
                raise ValueError(f"E10 cannot filter on status {status!r}")
            params["status"] = status
        if submitted_after is not None:
            params["submitted_after"] = _iso(submitted_after)
        if submitted_before is not None:
            params["submitted_before"] = _iso(submitted_before)
        response = self._send("E10", "GET", f"/api/jobs/challenge/{challenge}/submission/", params=params)
        data = self._json(response, "E10")
        if isinstance(data, dict) and "results" in data:
            data = data["results"]
        if not isinstance(data, list):
            raise EvalAIRequestError("expected a list of submissions", endpoint="E10")
        return [self._parse(EvalAISubmission, item, "E10") for item in data]

    def update_meta(self, challenge: int, submission: int, fields: Mapping[str, Any]) -> None:
        """E11 ``PATCH /api/jobs/challenges/<challenge>/submissions/<submission>/update_submission_meta/``."""
        self._send(
            "E11",
            "PATCH",
            f"/api/jobs/challenges/{challenge}/submissions/{submission}/update_submission_meta/",
            json_body=dict(fields),
            submission=submission,
        )

    def resume(self, submission: int) -> None:
        """E12 ``POST /api/jobs/submissions/<submission>/resume/`` (a failed submission continues)."""
        self._send("E12", "POST", f"/api/jobs/submissions/{submission}/resume/", submission=submission)

    def rerun(self, submission: int) -> None:
        """E13 ``POST /api/jobs/submissions/<submission>/re-run/`` (cancels it; a copy with a new pk)."""
        self._send("E13", "POST", f"/api/jobs/submissions/{submission}/re-run/", submission=submission)

    def leaderboard(
        self, phase_split: int, *, page: int | None = None, page_size: int | None = None
    ) -> LeaderboardPage:
        """E14 ``GET /api/jobs/challenge_phase_split/<phase_split>/leaderboard/`` (anonymous)."""
        params: dict[str, str] = {}
        if page is not None:
            params["page"] = str(page)
        if page_size is not None:
            params["page_size"] = str(page_size)
        response = self._send(
            "E14", "GET", f"/api/jobs/challenge_phase_split/{phase_split}/leaderboard/", params=params, auth=False
        )
        parsed: LeaderboardPage = self._parse(LeaderboardPage, self._json(response, "E14"), "E14")
        return parsed


__all__ = ["EvalAIClient", "EvalAIError", "RequestBudget"]
