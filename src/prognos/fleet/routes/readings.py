"""Ingestion: ``POST /api/v1/engines/{id}/readings`` (JSON) and the file uploads.

Uploads are bounded four ways: their size (``http_max_upload_mb``, enforced while the body
streams in, by the request middleware), how many are parsed at once (``http_max_concurrent_uploads``;
one more is answered 503 + Retry-After rather than queued in memory), one at a time per key (a
second from the same key while the first is parsed or stored: 429), and where and how they are
parsed: in a worker thread, as a stream of lines read from the multipart parser's spooled file
(on disk past 1 MiB), so memory holds the parsed arrays and one chunk of text, never the file, and
a 40 MB file stalls neither ``/health`` nor the predictions beside it.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Annotated, BinaryIO

from fastapi import File, Query, Request, UploadFile
from starlette.responses import Response

from prognos.data.validation import clip, parse_json_off_loop
from prognos.errors import OverloadedError, RateLimitedError, ValidationError
from prognos.fleet.records import IngestResult, ReadingBatch
from prognos.fleet.routes.deps import EngineId, Operator, fleet_router, json_response
from prognos.serving.access import Principal
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


def _parse_stream(fleet: Fleet, raw: BinaryIO, filename: str, **where: str | None) -> list[ReadingBatch]:
    """Parse the uploaded file as it is read, in UTF-8 lines (runs in a worker thread). Its lines
    are counted first (1 MiB at a time), so the parser sizes its arrays once."""
    raw.seek(0)
    lines = sum(block.count(b"\n") for block in iter(lambda: raw.read(2**20), b"")) + 1
    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    try:
        return fleet.ingestor.parse_file(text, filename, engine_prefix=where.get("engine_prefix") or "",
                                         engine_id=where.get("engine_id"), lines_hint=lines)
    except UnicodeDecodeError:
        raise ValidationError(f"file {filename}: not UTF-8 text (C-MAPSS text or CSV expected)") from None
    finally:
        text.detach()  # the upload closes its own file


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1", "ingestion")
    uploads = asyncio.Semaphore(fleet.settings.http_max_concurrent_uploads)
    uploading: set[str] = set()  # keys with an upload being parsed or stored

    async def store_upload(who: Principal, file: UploadFile, **where: str | None) -> IngestResult:
        if who.name in uploading:
            raise RateLimitedError(f"{who.name} is uploading a file already; one upload at a time per key",
                                   retry_after_s=2.0)
        if uploads.locked():
            raise OverloadedError(f"{fleet.settings.http_max_concurrent_uploads} uploads are being stored; retry "
                                  "shortly", retry_after_s=2.0)
        uploading.add(who.name)
        try:
            async with uploads:
                name = clip(file.filename or "upload")
                # the multipart parser spooled the file (to disk past 1 MiB; size-capped upstream)
                batches = await asyncio.to_thread(_parse_stream, fleet, file.file, name, **where)
                return await fleet.ingestor.ingest_batches(batches)
        finally:
            uploading.discard(who.name)

    @router.post("/engines/{engine_id}/readings", status_code=201, responses=_ERRORS, openapi_extra=_JSON_BODY)
    async def ingest(engine_id: EngineId, request: Request, _: Operator) -> Response:
        """Store one engine's readings (a JSON list of readings, or one reading object), then score
        its latest window. Idempotent on (engine, cycle); answered only after the commit."""
        body = await parse_json_off_loop(await request.body())
        log_context(request, engine_id=engine_id)
        return _answer(await fleet.ingestor.ingest(engine_id, body))

    @router.post("/engines/{engine_id}/readings/upload", status_code=201, responses=_ERRORS)
    async def upload_engine(engine_id: EngineId, request: Request, who: Operator,
                            file: Annotated[UploadFile, File(description="C-MAPSS text or CSV, one engine")]
                            ) -> Response:
        """Store a file of one engine's readings under ``engine_id``."""
        log_context(request, engine_id=engine_id)
        return await asyncio.to_thread(_answer, await store_upload(who, file, engine_id=engine_id))

    @router.post("/readings/upload", status_code=201, responses=_ERRORS)
    async def upload(request: Request, who: Operator,
                     file: Annotated[UploadFile, File(description="C-MAPSS text or CSV (unit/engine_id column)")],
                     engine_prefix: Annotated[str, Query(max_length=32, pattern=r"^[A-Za-z0-9._:-]*$",
                                                         description="prepended to unit numbers")] = "") -> Response:
        """Store a file of many engines' readings (one transaction for the whole file)."""
        result = await store_upload(who, file, engine_prefix=engine_prefix)
        log_context(request, engines=len(result.engines))
        # A file of a thousand engines answers with a thousand entries: built off the event loop.
        return await asyncio.to_thread(_answer, result)

    return router
