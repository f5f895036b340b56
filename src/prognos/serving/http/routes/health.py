"""Liveness, readiness and a detailed health report."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
from fastapi import APIRouter
from starlette.responses import JSONResponse

from prognos.serving.http.deps import ServiceDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "no model loaded yet, or shutting down"}})
async def ready(service: ServiceDep) -> JSONResponse:
    """Readiness: 200 once a verified, warmed-up model is loaded (503 before, and while shutting down)."""
    if service.ready:
        return JSONResponse({"status": "ready", "model_version": service.model_version})
    return JSONResponse({"status": "not ready", "model_version": service.model_version}, status_code=503)


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
            "bundle": None if service.bundle_path is None else str(service.bundle_path),
            "loaded_at": service.loaded_at,
        },
        "queue": {"pending_windows": service.batcher.stats.pending, "limit": service.settings.max_queue,
                  "batches": service.batcher.stats.batches, "windows": service.batcher.stats.windows},
        "cache": {"entries": cache.size, "hits": cache.hits, "misses": cache.misses,
                  "capacity": service.settings.cache_size},
        "predictions": service.counters.predictions,
    }
