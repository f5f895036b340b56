"""``/api/v1/plan``: the maintenance plan (:mod:`prognos.fleet.plan`), as JSON or CSV."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from prognos.fleet.plan import MAX_HORIZON, build_plan
from prognos.fleet.routes.deps import Viewer, fleet_router, json_response

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["build_router"]


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1/plan", "plan")

    @router.get("", responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                                      "description": "the plan (JSON, or CSV with format=csv)"}})
    async def plan(
        _: Viewer,
        horizon: Annotated[int, Query(ge=0, le=MAX_HORIZON, description="cycles ahead to plan for")] = 30,
        format: Annotated[str, Query(pattern="^(json|csv)$", description="json (default) or csv")] = "json",
    ) -> Response:
        """Engines whose interval's lower bound reaches the critical threshold within ``horizon``
        cycles, most urgent first, with the probability implied by the calibrated interval and
        their data quality."""
        result = await asyncio.to_thread(build_plan, fleet.store, horizon, fleet.settings.critical_rul)
        if format == "csv":
            return Response(result.to_csv(), media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="maintenance-plan-{horizon}.csv"'})
        return json_response(result.to_dict())

    return router
