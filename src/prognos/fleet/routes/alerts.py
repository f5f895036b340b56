"""``/api/v1/alerts``: list, acknowledge, resolve."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from prognos.data.validation import check_text
from prognos.fleet.routes.deps import Id, Limit, Offset, Operator, Viewer, fleet_router, json_response

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["build_router"]


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1/alerts", "alerts")
    store = fleet.store

    @router.get("")
    async def list_alerts(
        _: Viewer,
        status: Annotated[str | None, Query(description="open, acknowledged, resolved (comma-separated)")] = None,
        severity: Annotated[str | None, Query(description="warning, critical")] = None,
        engine_id: Annotated[str | None, Query()] = None,
        kind: Annotated[str | None, Query(description="rul_low, stuck_sensor, missing_cycles, out_of_range, "
                                                      "missing_sensor, drift")] = None,
        target_kind: Annotated[str | None, Query(description="engine or model (alerts on a model version)")] = None,
        limit: Limit = 500, offset: Offset = 0,
    ) -> Response:
        """Alerts on engines and on model versions, newest first."""
        filters = {"status": status, "severity": severity, "engine_id": engine_id, "kind": kind,
                   "target_kind": target_kind}
        for name, text in filters.items():
            if text is not None:
                check_text(text, name)  # NUL or a lone surrogate: the same 422 on both databases
        page = await asyncio.to_thread(store.list_alerts, status=status, severity=severity, engine_id=engine_id,
                                       kind=kind, target_kind=target_kind, limit=limit, offset=offset)
        return json_response(page.to_dict())

    @router.get("/{alert_id}")
    async def get_alert(alert_id: Id, _: Viewer) -> Response:
        return json_response((await asyncio.to_thread(store.get_alert, alert_id)).to_dict())

    @router.post("/{alert_id}/acknowledge")
    async def acknowledge(alert_id: Id, who: Operator) -> Response:
        """open -> acknowledged (someone is on it). A resolved alert cannot be acknowledged (409)."""
        return json_response((await asyncio.to_thread(store.acknowledge_alert, alert_id, who.name)).to_dict())

    @router.post("/{alert_id}/resolve")
    async def resolve(alert_id: Id, who: Operator) -> Response:
        """-> resolved. If the condition still holds, the next ingest opens a new alert."""
        return json_response((await asyncio.to_thread(store.resolve_alert, alert_id, who.name)).to_dict())

    return router
