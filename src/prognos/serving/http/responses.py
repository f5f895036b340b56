"""The one JSON response class of the REST API (routes, errors, health, the fleet)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

__all__ = ["JsonResponse"]


class JsonResponse(Response):
    """A body of plain JSON types, serialised by orjson. Routes answer with it directly: their
    bodies are already plain dicts, and re-validating them against a response model would cost more
    than the model call. ``non_str_keys``/``numpy`` are not enabled on purpose: a stray numpy value
    is a bug to fix where it is made, not to paper over here."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, status_code=status_code, headers=headers)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
