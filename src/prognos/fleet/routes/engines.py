"""``/api/v1/engines``: the fleet, one engine, its predictions and readings."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from prognos.data.validation import check_engine_id, clip
from prognos.errors import ValidationError
from prognos.fleet.routes.deps import EngineId, Limit, Offset, Operator, Viewer, fleet_router, json_response

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet
    from prognos.serving.service import ServedPrediction

__all__ = ["build_router"]


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1/engines", "engines")
    store = fleet.store

    @router.get("")
    async def list_engines(
        _: Viewer,
        status: Annotated[str | None, Query(description="healthy, warning, critical, unknown; a,b")] = None,
        sort: Annotated[str, Query(description="rul, lower, engine_id, last_update, last_cycle, status; -x reverses")]
        = "engine_id",
        q: Annotated[str | None, Query(description="search in engine id and model family")] = None,
        limit: Limit = 1000, offset: Offset = 0,
    ) -> Response:
        """Every engine with its current RUL, interval, status, last cycle and last update."""
        page = await asyncio.to_thread(store.list_engines, status=status, q=q, sort=sort, limit=limit, offset=offset)
        return json_response(page.to_dict())

    @router.get("/{engine_id}")
    async def get_engine(engine_id: EngineId, _: Viewer, explain: Annotated[bool, Query(
            description="also explain the engine's current prediction (on its stored readings, with the model "
                        "loaded now): which channels drive it, and since when; off by default")] = False,
                         ) -> Response:
        """One engine: details, tags, current state and its latest prediction (with ``explain=true``,
        the prediction's ``explanation``)."""
        engine = await asyncio.to_thread(store.get_engine, engine_id)
        latest = await asyncio.to_thread(store.latest_prediction, engine_id)
        body = engine.to_dict()
        body["latest_prediction"] = None if latest is None else latest.to_dict()
        if explain and latest is not None:
            body["latest_prediction"]["explanation"] = _explained(await fleet.ingestor.explain(engine_id))
        return json_response(body)

    @router.put("/{engine_id}")
    async def put_engine(engine_id: EngineId, _: Operator, body: Annotated[dict[str, Any], Body()]) -> Response:
        """Register an engine or update its ``tags`` (e.g. site, fleet) and ``model_family``."""
        check_engine_id(engine_id)
        unknown = set(body) - {"tags", "model_family"}
        if unknown:
            raise ValidationError(f"body.{clip(sorted(unknown)[0])}: unknown field (allowed: tags, model_family)")
        # The store checks tags and family (lengths, NUL, surrogates, finite numbers) before writing.
        engine = await asyncio.to_thread(store.upsert_engine, engine_id, body.get("tags"), body.get("model_family"))
        return json_response(engine.to_dict())

    @router.get("/{engine_id}/predictions")
    async def predictions(engine_id: EngineId, _: Viewer, limit: Limit = 1000, offset: Offset = 0) -> Response:
        """The engine's RUL history (oldest cycle first) with intervals and model versions."""
        page = await asyncio.to_thread(store.predictions, engine_id, limit=limit, offset=offset)
        return json_response(page.to_dict())

    @router.get("/{engine_id}/readings")
    async def readings(engine_id: EngineId, _: Viewer, limit: Limit = 100, offset: Offset = 0,
                       order: Annotated[str, Query(pattern="^(asc|desc)$", description="by cycle")] = "asc",
                       ) -> Response:
        """The engine's stored readings, paged by ``limit``/``offset``, with the ``total``."""
        page = await asyncio.to_thread(store.readings, engine_id, limit=limit, offset=offset,
                                       descending=order == "desc")
        return json_response(page.to_dict())

    return router


def _explained(served: ServedPrediction | None) -> dict[str, Any] | None:
    """The explanation with the prediction it explains (computed now: the model version and cycle
    may be newer than the stored latest prediction's)."""
    if served is None or served.explanation is None:
        return None
    p = served.prediction
    return {**served.explanation.to_dict(), "model_version": p.model_version, "predicted_rul": round(p.rul, 3),
            "last_cycle": p.last_cycle}
