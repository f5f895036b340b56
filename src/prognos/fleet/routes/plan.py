"""``/api/v1/plan``: the maintenance plan (:mod:`prognos.fleet.plan`), as JSON or CSV.

A plan reads the whole fleet (21,000 engines: ~20 s on 2 cores), so its cost is bounded: one plan
is computed at a time, and a plan is reused for ``plan_cache_s`` (its ``generated_at`` says
when it was made). Four viewers asking at once cost one computation, not four; a viewer polling
the plan costs at most one computation per ``plan_cache_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from prognos.fleet.plan import MAX_HORIZON, MaintenancePlan, build_plan
from prognos.fleet.routes.deps import Viewer, fleet_router, json_response

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["PlanCache", "build_router"]


class PlanCache:
    """Plans by horizon, each reused for ``ttl_s`` seconds; one computation at a time."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = asyncio.Lock()
        self._plans: dict[int, tuple[float, MaintenancePlan]] = {}

    async def get(self, horizon: int, compute: Callable[[], MaintenancePlan]) -> MaintenancePlan:
        async with self._lock:  # concurrent viewers wait for the one computation and share it
            now = time.monotonic()
            self._plans = {h: v for h, v in self._plans.items() if now - v[0] < self.ttl_s}
            if horizon in self._plans:
                return self._plans[horizon][1]
            plan = await asyncio.to_thread(compute)
            if self.ttl_s > 0:
                self._plans[horizon] = (time.monotonic(), plan)
            return plan


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1/plan", "plan")
    cache = PlanCache(fleet.settings.plan_cache_s)

    @router.get("", responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                                      "description": "the plan (JSON, or CSV with format=csv)"}})
    async def plan(
        _: Viewer,
        horizon: Annotated[int, Query(ge=0, le=MAX_HORIZON, description="cycles ahead to plan for")] = 30,
        format: Annotated[str, Query(pattern="^(json|csv)$", description="json (default) or csv")] = "json",
    ) -> Response:
        """Engines whose interval's lower bound reaches the critical threshold within ``horizon``
        cycles, most urgent first, with the probability implied by the calibrated interval and
        their data quality. Computed at most once per ``plan_cache_s`` per horizon (``generated_at``)."""
        result = await cache.get(horizon, lambda: build_plan(fleet.store, horizon, fleet.settings.critical_rul))
        if format == "csv":
            return Response(result.to_csv(), media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="maintenance-plan-{horizon}.csv"'})
        return json_response(result.to_dict())

    return router
