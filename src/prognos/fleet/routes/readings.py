"""Ingestion: ``POST /api/v1/engines/{id}/readings`` (JSON) and the file uploads.

Uploads are bounded three ways: their size (``http_max_upload_mb``, enforced while the body
streams in, by the request middleware), how many are parsed at once (``http_max_concurrent_uploads``;
one more is answered 503 + Retry-After rather than queued in memory), and where they are parsed
(decoding and validation run in a worker thread, so a 40 MB file does not stall ``/health`` or
the predictions beside it).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import File, Query, Request, UploadFile
from starlette.responses import Response

from prognos.data.validation import parse_json_off_loop
from prognos.errors import OverloadedError, ValidationError
from prognos.fleet.records import IngestResult, ReadingBatch
from prognos.fleet.routes.deps import EngineId, Operator, fleet_router, json_response
from prognos.serving.http.deps import log_context

if TYPE_CHECKING:
    from fastapi import APIRouter

    from prognos.fleet.fleet import Fleet

__all__ = ["build_router"]

_ERRORS: dict[int | str, dict[str, str]] = {
    409: {"description": "a reading contradicts the stored reading of the same engine and cycle"},
    422: {"description": "a field is missing, unknown, not a number, out of range; or a cycle is missing"},
}


_READING_SCHEMA = {"type": "object", "description": "cycle, setting_1..setting_3, s1..s21 (numbers)",
                   "additionalProperties": {"type": ["number", "null"]}}
_JSON_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [{"type": "array", "items": _READING_SCHEMA}, _READING_SCHEMA]}}}}}


def _answer(result: IngestResult) -> Response:
    # 201 when something new was stored; an all-duplicate resend changes nothing: 200.
    return json_response(result.to_dict(), 201 if result.accepted else 200)


def _decode(data: bytes, filename: str | None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"file {filename}: not UTF-8 text (C-MAPSS text or CSV expected)") from None


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1", "ingestion")
    uploads = asyncio.Semaphore(fleet.settings.http_max_concurrent_uploads)

    async def parse_upload(file: UploadFile, **where: str | None) -> list[ReadingBatch]:
        if uploads.locked():
            raise OverloadedError(f"{fleet.settings.http_max_concurrent_uploads} uploads are being stored; retry "
                                  "shortly", retry_after_s=2.0)
        async with uploads:
            data = await file.read()  # spooled to a temporary file by the multipart parser; size-capped upstream
            text = await asyncio.to_thread(_decode, data, file.filename)
            del data
            return await asyncio.to_thread(fleet.ingestor.parse_file, text, file.filename or "upload",
                                           engine_prefix=where.get("engine_prefix") or "",
                                           engine_id=where.get("engine_id"))

    @router.post("/engines/{engine_id}/readings", status_code=201, responses=_ERRORS, openapi_extra=_JSON_BODY)
    async def ingest(engine_id: EngineId, request: Request, _: Operator) -> Response:
        """Store one engine's readings (a JSON list of readings, or one reading object), then score
        its latest window. Idempotent on (engine, cycle); answered only after the commit."""
        body = await parse_json_off_loop(await request.body())
        log_context(request, engine_id=engine_id)
        return _answer(await fleet.ingestor.ingest(engine_id, body))

    @router.post("/engines/{engine_id}/readings/upload", status_code=201, responses=_ERRORS)
    async def upload_engine(engine_id: EngineId, request: Request, _: Operator,
                            file: Annotated[UploadFile, File(description="C-MAPSS text or CSV, one engine")]
                            ) -> Response:
        """Store a file of one engine's readings under ``engine_id``."""
        log_context(request, engine_id=engine_id)
        batches = await parse_upload(file, engine_id=engine_id)
        return _answer(await fleet.ingestor.ingest_batches(batches))

    @router.post("/readings/upload", status_code=201, responses=_ERRORS)
    async def upload(request: Request, _: Operator,
                     file: Annotated[UploadFile, File(description="C-MAPSS text or CSV (unit/engine_id column)")],
                     engine_prefix: Annotated[str, Query(max_length=32, pattern=r"^[A-Za-z0-9._:-]*$",
                                                         description="prepended to unit numbers")] = "") -> Response:
        """Store a file of many engines' readings (one transaction for the whole file)."""
        batches = await parse_upload(file, engine_prefix=engine_prefix)
        result = await fleet.ingestor.ingest_batches(batches)
        log_context(request, engines=len(result.engines))
        return _answer(result)

    return router
