"""Shared pieces of the fleet routes: role aliases and a plain-JSON response.

Routers are built per :class:`~prognos.fleet.fleet.Fleet` (``build_router(fleet)``), so a test can
run several apps side by side without global state.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Query
from starlette.responses import Response

from prognos.serving.http.auth import Principal, Role, require

__all__ = ["Admin", "Limit", "Offset", "Operator", "Viewer", "json_response"]


def json_response(body: Any, status_code: int = 200) -> Response:
    # Bodies are already plain JSON types: skip re-validation against a response model.
    return Response(json.dumps(body, separators=(",", ":")), status_code=status_code, media_type="application/json")


Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Limit = Annotated[int, Query(ge=1, le=5000, description="items per page")]
Offset = Annotated[int, Query(ge=0, description="items to skip")]
