"""``/metrics`` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from prognos.serving.http.routing import PrognosRoute

__all__ = ["router"]

router = APIRouter(tags=["metrics"], route_class=PrognosRoute)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Request counts and latency by route, predictions, cache, batch sizes, queue, model, memory."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
