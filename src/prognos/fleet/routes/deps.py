"""Shared pieces of the fleet routes: role aliases, the integer-range rule for ids and paging, the
route class (one JSON parser; a database outage answered 503) and the JSON response.

Routers are built per :class:`~prognos.fleet.fleet.Fleet` (``build_router(fleet)``), so a test can
run several apps side by side without global state.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from prognos.data.validation import MAX_ID
from prognos.errors import PrognosError
from prognos.fleet.database import storage_unavailable
from prognos.serving.http.auth import Principal, Role, require
from prognos.serving.http.responses import JsonResponse
from prognos.serving.http.routing import PrognosRoute

__all__ = ["Admin", "EngineId", "FleetRoute", "Id", "Limit", "Offset", "Operator", "Viewer", "fleet_router",
           "json_response"]


class FleetRoute(PrognosRoute):
    """A fleet route: a database that is down, read-only or full answers 503 + Retry-After."""

    def translate(self, exc: Exception) -> PrognosError | None:
        return storage_unavailable(exc)


def fleet_router(prefix: str, tag: str) -> APIRouter:
    return APIRouter(prefix=prefix, tags=[tag], route_class=FleetRoute)


json_response = JsonResponse  # the one JSON response class, under the name the fleet routes use

Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
# The one integer-range rule (prognos.data.validation.MAX_ID): beyond 64 bits is a 422, not an overflow.
Limit = Annotated[int, Query(ge=1, le=5000, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="items to skip")]
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="a positive 64-bit id")]
EngineId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
                               description="1-64 of A-Z a-z 0-9 . _ : -, starting with a letter or digit")]
