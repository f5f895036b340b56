"""The standard ``grpc.health.v1.Health`` service, answering from the prediction service's readiness.

``""`` (the whole server) and ``prognos.v1.RulService`` are SERVING exactly when
:attr:`PredictionService.ready` is true (a verified, warmed-up model is loaded and the server is
not draining), NOT_SERVING otherwise. :meth:`ReadinessHealth.enter_graceful_shutdown` pins
NOT_SERVING for good, so load balancers stop routing before the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from prognos.serving.grpc.v1 import rul_pb2

__all__ = ["RUL_SERVICE", "Readiness", "ReadinessHealth"]

#: Full name of the prediction service, as health checks and reflection know it.
RUL_SERVICE: str = rul_pb2.DESCRIPTOR.services_by_name["RulService"].full_name

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness(Protocol):
    @property
    def ready(self) -> bool: ...


class ReadinessHealth(HealthServicer):
    """grpc's reference asyncio servicer, kept in step with ``source.ready``.

    Readiness has no change events (a model loads, a hot swap fails, the server drains), so it is
    read on every ``Check`` and, while someone ``Watch``es, every ``watch_interval_s`` seconds.
    """

    def __init__(self, source: Readiness, watch_interval_s: float = 0.5) -> None:
        super().__init__()
        self._source = source
        self._interval_s = watch_interval_s
        self._refresher: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Publish the current readiness (ignored after graceful shutdown began)."""
        status = _SERVING if self._source.ready else _NOT_SERVING
        for service in ("", RUL_SERVICE):
            if self._server_status.get(service) != status:
                await self.set(service, status)

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> Any:
        await self.refresh()
        return await super().Check(request, context)

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        await self.refresh()
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_while_watched())
        await super().Watch(request, context)

    async def _refresh_while_watched(self) -> None:
        await asyncio.sleep(self._interval_s)
        while self._watcher_count_by_service and not self._gracefully_shutting_down:
            await self.refresh()
            await asyncio.sleep(self._interval_s)

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
