"""Per-request bookkeeping as plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware):
a request id (``X-Request-ID`` in, or a new one; echoed back), metrics by route template, and the
sampled request log line."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prognos.serving.http.metrics import HttpMetrics
from prognos.serving.logs import RequestLogger

__all__ = ["RequestMiddleware"]

_INTERNAL = b'{"error": "InternalError", "detail": "internal error"}'


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, log: RequestLogger) -> None:
        self.app, self.metrics, self.log = app, metrics, log

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
                await send_wrapper({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"application/json")]})
                await send_wrapper({"type": "http.response.body", "body": _INTERNAL})
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # The route template, not the raw path: unmatched paths must not explode label sets.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(template, scope.get("method", ""), status, elapsed)
            self.log.request(request_id=request_id, route=template, status=status, latency_ms=elapsed * 1000,
                             error=state.get("error") if status >= 400 else None, exc_info=state.get("exc_info"),
                             **state.get("log_ids", {}))
