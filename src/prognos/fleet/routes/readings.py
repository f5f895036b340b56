"""Ingestion: ``POST /api/v1/engines/{id}/readings`` (JSON) and the file uploads."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from starlette.responses import Response

from prognos.errors import ValidationError
from prognos.fleet.records import IngestResult
from prognos.fleet.routes.deps import Operator, json_response
from prognos.serving.http.deps import log_context

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["build_router"]

_ERRORS: dict[int | str, dict[str, str]] = {
    409: {"description": "a reading contradicts the stored reading of the same engine and cycle"},
    422: {"description": "a field is missing, unknown, not a number, out of range; or a cycle is missing"},
}
_MAX_UPLOAD = 64 * 1024 * 1024  # bytes; a C-MAPSS training file is ~3.5 MB


def _answer(result: IngestResult) -> Response:
    # 201 when something new was stored; an all-duplicate resend changes nothing: 200.
    return json_response(result.to_dict(), 201 if result.accepted else 200)


async def _text(file: UploadFile) -> str:
    data = await file.read(_MAX_UPLOAD + 1)
    if len(data) > _MAX_UPLOAD:
        raise ValidationError(f"file: larger than {_MAX_UPLOAD // 2**20} MB; split it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"file {file.filename}: not UTF-8 text (C-MAPSS text or CSV expected)") from None


def build_router(fleet: Fleet) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["ingestion"])

    @router.post("/engines/{engine_id}/readings", status_code=201, responses=_ERRORS)
    async def ingest(engine_id: str, request: Request, _: Operator) -> Response:
        """Store one engine's readings (a JSON list of readings, or one reading object), then score
        its latest window. Idempotent on (engine, cycle); answered only after the commit."""
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationError(f"body: not valid JSON ({exc})") from None
        log_context(request, engine_id=engine_id)
        return _answer(await fleet.ingestor.ingest(engine_id, body))

    @router.post("/engines/{engine_id}/readings/upload", status_code=201, responses=_ERRORS)
    async def upload_engine(engine_id: str, request: Request, _: Operator,
                            file: Annotated[UploadFile, File(description="C-MAPSS text or CSV, one engine")]
                            ) -> Response:
        """Store a file of one engine's readings under ``engine_id``."""
        log_context(request, engine_id=engine_id)
        text = await _text(file)
        return _answer(await fleet.ingestor.ingest_file(text, file.filename or "upload", engine_id=engine_id))

    @router.post("/readings/upload", status_code=201, responses=_ERRORS)
    async def upload(request: Request, _: Operator,
                     file: Annotated[UploadFile, File(description="C-MAPSS text or CSV (unit/engine_id column)")],
                     engine_prefix: Annotated[str, Query(max_length=32, description="prepended to unit numbers")]
                     = "") -> Response:
        """Store a file of many engines' readings (one transaction for the whole file)."""
        text = await _text(file)
        result = await fleet.ingestor.ingest_file(text, file.filename or "upload", engine_prefix=engine_prefix)
        log_context(request, engines=len(result.engines))
        return _answer(result)

    return router
