"""The reporter API: what ``lbcloud reporter`` calls from inside an attempt's pod.

Every request carries ``Authorization: Bearer <attempt token>``; the attempt id in the path must be
the token's. Errors are ``{"error": "<one line>"}``: 401 bad token, 404 unknown route task, 409
conflicting record or log offset (with ``expected_offset``), 410 attempt already ended, 413 too
large, 422 not a route record, 503 store unavailable.

- ``PUT  /api/v1/reporter/attempts/{id}/record`` — the results document; 201 stored, 200 replay.
- ``POST /api/v1/reporter/attempts/{id}/logs/{stream}?offset=N`` — append a log chunk.
- ``GET  /api/v1/reporter/attempts/{id}/logs/{stream}`` — ``{"offset": N}`` stored so far.
- ``POST /api/v1/reporter/attempts/{id}/heartbeat`` — ``{"detail": "..."}`` (optional).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from lbcloud.domain.errors import Conflict, InputError, LbcloudError, NotFound, Unavailable
from lbcloud.services.reporting import (
    OffsetMismatch,
    RecordReceipt,
    ReportGone,
    ReportingService,
    ReportTooLarge,
    ReportUnauthorized,
)

if TYPE_CHECKING:
    from lbcloud.entrypoints.wiring import System

PREFIX = "/api/v1/reporter"


def _token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(err: LbcloudError) -> JSONResponse:
    status = 500
    body: dict[str, Any] = {"error": str(err)}
    if isinstance(err, ReportUnauthorized):
        status = 401
    elif isinstance(err, ReportTooLarge):
        status = 413
    elif isinstance(err, ReportGone):
        status = 410
    elif isinstance(err, OffsetMismatch):
        status = 409
        body["expected_offset"] = err.expected
    elif isinstance(err, Conflict):
        status = 409
    elif isinstance(err, NotFound):
        status = 404
    elif isinstance(err, InputError):
        status = 422
    elif isinstance(err, Unavailable):
        status = 503
    return JSONResponse(body, status_code=status)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused early (413) when its declared or actual size exceeds ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ReportTooLarge(f"the payload is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ReportTooLarge(f"the payload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _stored(receipt: RecordReceipt) -> JSONResponse:
    """201 for what was stored now, 200 for a replay of the same bytes."""
    return JSONResponse(
        {"key": receipt.key, "sha256": receipt.sha256, "created": receipt.created},
        status_code=201 if receipt.created else 200,
    )


def create_router(service: ReportingService) -> APIRouter:
    """The reporter API over ``service`` (mount with ``app.include_router``)."""
    router = APIRouter(prefix=PREFIX, tags=["reporter"])

    @router.put("/attempts/{attempt_id}/record")
    async def put_record(attempt_id: int, request: Request) -> JSONResponse:
        try:
            data = await _body(request, service.max_record_bytes)
            receipt = await run_in_threadpool(service.put_record, _token(request), attempt_id, data)
        except LbcloudError as err:
            return _error(err)
        return _stored(receipt)

    @router.put("/attempts/{attempt_id}/recording")
    async def put_recording(attempt_id: int, request: Request) -> JSONResponse:
        try:
            data = await _body(request, service.max_recording_bytes)
            receipt = await run_in_threadpool(service.put_recording, _token(request), attempt_id, data)
        except LbcloudError as err:
            return _error(err)
        return _stored(receipt)

    @router.post("/attempts/{attempt_id}/logs/{stream}")
    async def append_log(
        attempt_id: int, stream: str, request: Request, offset: Annotated[int, Query(ge=0)] = 0
    ) -> JSONResponse:
        try:
            data = await _body(request, service.max_chunk_bytes)
            receipt = await run_in_threadpool(service.append_log, _token(request), attempt_id, stream, offset, data)
        except LbcloudError as err:
            return _error(err)
        return JSONResponse(
            {"next_offset": receipt.next_offset, "appended": receipt.appended, "truncated": receipt.truncated}
        )

    @router.get("/attempts/{attempt_id}/logs/{stream}")
    async def log_offset(attempt_id: int, stream: str, request: Request) -> JSONResponse:
        try:
            offset = await run_in_threadpool(service.log_offset, _token(request), attempt_id, stream)
        except ValueError:
            return JSONResponse({"error": f"unknown log stream {stream!r}"}, status_code=422)
        except LbcloudError as err:
            return _error(err)
        return JSONResponse({"offset": offset})

    @router.post("/attempts/{attempt_id}/heartbeat")
    async def heartbeat(attempt_id: int, request: Request) -> JSONResponse:
        try:
            raw = await _body(request, 4096)
            detail = ""
            if raw.strip():
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    raise InputError("the heartbeat body must be JSON") from None
                detail = str(parsed.get("detail", "")) if isinstance(parsed, dict) else ""
            await run_in_threadpool(service.heartbeat, _token(request), attempt_id, detail)
        except LbcloudError as err:
            return _error(err)
        return JSONResponse({"status": "ok"})

    return router


def build_router(system: System) -> APIRouter:
    """The reporter API over the system's state and artifact stores (what the web app mounts)."""
    return create_router(ReportingService(system.store, system.artifacts))
