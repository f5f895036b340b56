"""Per-request bookkeeping as plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware):
a request id (``X-Request-ID`` in, or a new one; echoed back), metrics by route template, the
sampled request log line, and a cap on requests in flight.

The cap is the HTTP side of overload protection: the batcher's queue bounds windows waiting for
the model, but when the CPU itself is the bottleneck requests pile up before they get there
(bodies read, parsed, waiting for their turn). Past ``max_in_flight`` a request is answered 503 with
``Retry-After`` before its body is read; health, readiness and metrics are exempt so probes keep
working under load."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prognos.serving.http.metrics import HttpMetrics
from prognos.serving.logs import RequestLogger

__all__ = ["RequestMiddleware"]

_INTERNAL = b'{"error": "InternalError", "detail": "internal error"}'
_BUSY = b'{"error": "OverloadedError", "detail": "server busy: too many requests in flight; retry shortly"}'
_EXEMPT = frozenset({"/health", "/ready", "/health/detailed", "/metrics"})


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, log: RequestLogger,
                 max_in_flight: int | None = None) -> None:
        self.app, self.metrics, self.log, self.max_in_flight = app, metrics, log, max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        status = 500
        started_response = False
        if (self.max_in_flight is not None and self.in_flight >= self.max_in_flight
                and scope.get("path") not in _EXEMPT):
            headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BUSY)),
                       (b"retry-after", b"1"), (b"x-request-id", request_id.encode())]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": _BUSY})
            self.metrics.observe("(refused: in flight)", scope.get("method", ""), 503, time.perf_counter() - started)
            self.metrics.refused.inc()
            return
        self.in_flight += 1

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # A bug, not bad input: the client gets a bare 500, the log gets the traceback.
            # Handled here rather than re-raised so the server does not log it a second time.
            state["exc_info"], state["error"] = exc, "internal error"
            if not started_response:
                await send_wrapper({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", b"%d" % len(_INTERNAL))]})
                await send_wrapper({"type": "http.response.body", "body": _INTERNAL})
        finally:
            self.in_flight -= 1
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # The route template, not the raw path: unmatched paths must not explode label sets.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(template, scope.get("method", ""), status, elapsed)
            self.log.request(request_id=request_id, route=template, status=status, latency_ms=elapsed * 1000,
                             error=state.get("error") if status >= 400 else None, exc_info=state.get("exc_info"),
                             **state.get("log_ids", {}))
