"""Liveness, readiness and a detailed health report.

Readiness tells the truth about what the process can do now: 503 while no verified model is
loaded, while shutting down, while every request slot is taken (``http_max_in_flight``), and while
a readiness probe fails (the fleet's: the database cannot
store writes — down, read-only, disk full). In that last case predictions are still served
(``/api/v1/predict`` needs no database); a load balancer that routes writes by ``/ready`` stops
sending them here until the database is back, and ``/ready`` turns 200 again without a restart.
Unauthenticated, so nothing here names a filesystem path."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
from fastapi import APIRouter, Request

from prognos.serving.http.deps import ServiceDep
from prognos.serving.http.responses import JsonResponse
from prognos.serving.http.routing import PrognosRoute

__all__ = ["router"]

router = APIRouter(tags=["health"], route_class=PrognosRoute)

# A probe that takes longer counts as failed. Probes run at once, so /ready answers within this
# even under overload — well inside the 3 s an orchestrator's probe usually waits.
_PROBE_TIMEOUT_S = 1.0


async def _probe(probe: Callable[[], Awaitable[str | None]]) -> str | None:
    try:
        return await asyncio.wait_for(probe(), _PROBE_TIMEOUT_S)
    except TimeoutError:
        return f"readiness probe did not answer within {_PROBE_TIMEOUT_S:g} s"


async def _probe_failures(request: Request) -> list[str]:
    probes: list[Callable[[], Awaitable[str | None]]] = getattr(request.app.state, "readiness_probes", [])
    failures = [reason for reason in await asyncio.gather(*(_probe(p) for p in probes)) if reason]
    in_flight = getattr(request.app.state, "in_flight", None)
    if in_flight is not None and in_flight.saturated:  # every API call would be answered 503 now
        failures.append(f"overloaded: {in_flight.count} requests in flight (the limit)")
    return failures


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "no model loaded yet, shutting down, or writes cannot be "
                                                    "stored (database down, read-only, disk full)"}})
async def ready(service: ServiceDep, request: Request) -> JsonResponse:
    """Readiness: 200 once a verified, warmed-up model is loaded and writes can be stored (503
    before, while shutting down and while the database cannot store writes)."""
    failures = await _probe_failures(request) if service.ready else []
    if service.ready and not failures:
        return JsonResponse({"status": "ready", "model_version": service.model_version})
    body: dict[str, Any] = {"status": "not ready", "model_version": service.model_version}
    if failures:
        body["reasons"] = failures
    return JsonResponse(body, 503, {"Retry-After": "2"})


@router.get("/health/detailed")
async def health_detailed(service: ServiceDep) -> dict[str, Any]:
    """Memory (MB), CPU (s, %), uptime (s), the model, the queue and the cache."""
    proc = psutil.Process(os.getpid())
    mem = proc.memory_info()
    cpu = proc.cpu_times()
    uptime = time.time() - service.started_at
    cache = service.cache.stats()
    return {
        "status": "ready" if service.ready else "not ready",
        "uptime_s": round(uptime, 3),
        "memory": {"rss_mb": round(mem.rss / 2**20, 1), "limit_mb": service.settings.max_memory_mb},
        # Average since start (one core = 100 %): a point sample would need a second reading.
        "cpu": {"seconds": round(cpu.user + cpu.system, 3),
                "percent_since_start": round(100 * (cpu.user + cpu.system) / max(uptime, 1e-9), 1),
                "cores": psutil.cpu_count() or 1, "threads": proc.num_threads()},
        "model": {
            "version": service.model_version,
            # The bundle's directory name only: this route is open to anyone, filesystem paths are not.
            "bundle": None if service.bundle_path is None else service.bundle_path.name,
            "loaded_at": service.loaded_at,
        },
        "queue": {"pending_windows": service.batcher.stats.pending, "limit": service.settings.max_queue,
                  "batches": service.batcher.stats.batches, "windows": service.batcher.stats.windows},
        "cache": {"entries": cache.size, "hits": cache.hits, "misses": cache.misses,
                  "capacity": service.settings.cache_size},
        "predictions": service.counters.predictions,
    }
