"""The one place HTTP turns exceptions into responses.

Body of every error: ``{"error": "<ErrorClass>", "detail": "<one line naming the field>"}``
(:data:`ERROR_BODY_SCHEMA`, the schema the OpenAPI document states for every error status).
Domain errors take their status from :mod:`prognos.errors`; 401 carries ``WWW-Authenticate``,
429 and 503 carry ``Retry-After`` (whole seconds, the same number the message states).
FastAPI's request-validation errors become 422 naming the field. Anything unexpected becomes a 500
with no internals in the body, in :mod:`~prognos.serving.http.middleware` (which logs the traceback).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from prognos.data.validation import clip
from prognos.errors import OverloadedError, PrognosError, StorageUnavailableError, UnauthenticatedError
from prognos.serving.http.responses import JsonResponse

__all__ = ["ERROR_BODY_SCHEMA", "error_response", "install_error_handlers", "retry_after"]

ERROR_BODY_SCHEMA: dict[str, Any] = {
    "title": "ErrorBody", "type": "object", "required": ["error", "detail"], "additionalProperties": False,
    "properties": {"error": {"type": "string", "description": "the error class, e.g. ValidationError"},
                   "detail": {"type": "string", "description": "one line naming the field, file or value at fault"}},
}


_MAX_DETAIL = 512  # characters of an error's detail


def retry_after(seconds: float) -> str:
    """``Retry-After`` in whole seconds (at least 1), as every message that states a wait rounds it."""
    return str(max(1, math.ceil(seconds)))


def error_response(request: Request, status: int, error: str, detail: str,
                   headers: dict[str, str] | None = None) -> Response:
    # Bounded whatever the client sent: a message quoting a 7 MB field name must not become a 7 MB
    # answer and a 7 MB log line (messages clip values themselves; this is the backstop).
    detail = clip(detail, _MAX_DETAIL)
    request.state.error = detail  # for the request log line
    return JsonResponse({"error": error, "detail": detail}, status, headers)


def _field_path(loc: Sequence[object]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        name = clip(str(p))
        out += f"[{p}]" if isinstance(p, int) else (f".{name}" if out else name)
    return out or "body"


async def _prognos_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PrognosError)
    headers = None
    if isinstance(exc, OverloadedError | StorageUnavailableError):
        headers = {"Retry-After": retry_after(exc.retry_after_s)}
    elif isinstance(exc, UnauthenticatedError):
        headers = {"WWW-Authenticate": "Bearer"}
    # A 500-class domain error (ConfigError) is ours, not the client's: say so without internals.
    detail = str(exc) if exc.http_status < 500 or exc.http_status == 503 else "internal error"
    return error_response(request, exc.http_status, type(exc).__name__, detail, headers)


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    msg = str(first.get("msg", "invalid"))
    if first.get("type") == "missing":
        msg = "missing (required)"
    elif first.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif first.get("type") == "json_invalid":
        pos = [p for p in first.get("loc", ()) if isinstance(p, int)]
        where = f" (at character {pos[0]})" if pos else ""
        return error_response(request, 422, "ValidationError", f"body: not valid JSON{where}")
    return error_response(request, 422, "ValidationError", f"{_field_path(first.get('loc', ()))}: {msg}")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    error = getattr(exc, "error", None)  # a BodyRefused (routing.py): answer the domain error it holds
    if isinstance(error, PrognosError):
        return await _prognos_error(request, error)
    return error_response(request, exc.status_code, "HTTPError", str(exc.detail), dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PrognosError, _prognos_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
