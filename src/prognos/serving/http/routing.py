"""The route class of every REST router: bodies are parsed by the one JSON parser.

FastAPI decodes a JSON body with the standard library (no depth limit: deep nesting is a
``RecursionError``, a 500; duplicate keys silently keep the last value). :class:`PrognosRoute`
hands its handlers a request whose ``json()`` is :func:`prognos.data.validation.parse_json`, so
body-model routes refuse what the hand-parsed routes refuse, with the same one-line 422.
Subclasses may translate back-end exceptions into domain errors (:meth:`PrognosRoute.translate`;
the fleet maps a database outage to 503).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from prognos.data.validation import parse_json_off_loop
from prognos.errors import PrognosError, ValidationError

__all__ = ["BodyRefused", "PrognosRequest", "PrognosRoute"]


class BodyRefused(HTTPException):
    """Carries a :class:`ValidationError` through FastAPI's body reading (which re-raises only
    HTTP exceptions as they are); the error handlers answer it as the domain error it holds."""

    def __init__(self, error: ValidationError) -> None:
        super().__init__(error.http_status, str(error))
        self.error = error


class PrognosRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = await parse_json_off_loop(await self.body())
            except ValidationError as exc:
                raise BodyRefused(exc) from None
        return self._json


class PrognosRoute(APIRoute):
    def translate(self, exc: Exception) -> PrognosError | None:
        """The domain error ``exc`` stands for, or None to let it propagate (a bug: 500)."""
        return None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(PrognosRequest(request.scope, request.receive))
            except (PrognosError, HTTPException):
                raise
            except Exception as exc:
                mapped = self.translate(exc)
                if mapped is None:
                    raise
                raise mapped from None

        return route_handler
