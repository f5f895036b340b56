"""Per-request bookkeeping as plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware):
a request id (``X-Request-ID`` in, or a new one; echoed back), metrics by route template, the
sampled request log line, and a cap on requests in flight.

The cap is the HTTP side of overload protection: the batcher's queue bounds windows waiting for
the model, but when the CPU itself is the bottleneck requests pile up before they get there
(bodies read, parsed, waiting for their turn). Past ``max_in_flight`` a request is answered 503 with
``Retry-After`` before its body is read; health, readiness and metrics are exempt so probes keep
working under load.

Edge limits, checked before a route reads a byte of the body (:class:`BodyLimits`):

* size: a ``Content-Length`` over the limit is answered 413 at once; a body without one (chunked)
  is counted as it streams and cut off with 413 the moment it passes the limit, so a 60 MB body
  costs at most the limit in memory, never 60 MB. JSON routes have ``max_body`` (default 8 MiB),
  the file uploads (paths ending ``/upload``) their own ``max_upload`` (default 64 MiB);
* media type: a body sent to a JSON route must be ``application/json`` (or ``+json``), to an
  upload route ``multipart/form-data``; anything else is 415 (form posts, XML, text/plain);
* methods: a 405 lists in ``Allow`` every method the path has (Starlette's names only the first
  route it matched), and ``OPTIONS`` is answered that way too (CORS preflights, when CORS is on,
  are answered by the CORS middleware before they get here)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prognos.serving.http.metrics import HttpMetrics
from prognos.serving.logs import RequestLogger

__all__ = ["BodyLimits", "RequestMiddleware"]

_INTERNAL = b'{"error": "InternalError", "detail": "internal error"}'
_BUSY = b'{"error": "OverloadedError", "detail": "server busy: too many requests in flight; retry shortly"}'
_EXEMPT = frozenset({"/health", "/ready", "/health/detailed", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class BodyLimits:
    """Request-body rules of :class:`RequestMiddleware` (bytes)."""

    max_body: int = 8 * 2**20
    max_upload: int = 64 * 2**20

    def is_upload(self, path: str) -> bool:
        return path.endswith("/upload")

    def limit(self, path: str) -> int:
        return self.max_upload if self.is_upload(path) else self.max_body


def _error(status: int, error: str, detail: str) -> bytes:
    return orjson.dumps({"error": error, "detail": detail})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _media_type(scope: Scope) -> str:
    value = _header(scope, b"content-type") or b""
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")


def _refusal(scope: Scope, limits: BodyLimits) -> tuple[int, bytes] | None:
    """A 413 or 415 decided from the headers alone, or None."""
    if scope.get("method") not in _BODY_METHODS:
        return None
    path = scope.get("path", "")
    length = _header(scope, b"content-length")
    chunked = _header(scope, b"transfer-encoding") is not None
    size = int(length) if length is not None and length.isdigit() else None
    if size is not None and size > limits.limit(path):
        what = "upload" if limits.is_upload(path) else "body"
        return 413, _error(413, "PayloadTooLargeError", f"{what}: {size} bytes exceed the limit of "
                           f"{limits.limit(path)} bytes ({limits.limit(path) / 2**20:g} MiB)")
    if not chunked and not size:
        return None  # no body: nothing to type
    media = _media_type(scope)
    if limits.is_upload(path):
        if media != "multipart/form-data":
            return 415, _error(415, "UnsupportedMediaTypeError", f"content-type: {media or '(none)'} is not "
                               "accepted here; send the file as multipart/form-data (field 'file')")
    elif not (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))):
        return 415, _error(415, "UnsupportedMediaTypeError", f"content-type: {media or '(none)'} is not accepted "
                           "here; send application/json")
    return None


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves at this path (for ``Allow``). FastAPI keeps included routers
    as lazily resolved groups, so their effective routes are walked (``iter_route_contexts``)."""
    path = scope.get("path", "")
    methods: set[str] = set()
    for route in iter_route_contexts(routes):
        regex, route_methods = getattr(route, "path_regex", None), route.methods
        if regex is not None and route_methods and regex.match(path):
            methods.update(route_methods)
    return sorted(methods)


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, log: RequestLogger,
                 max_in_flight: int | None = None, limits: BodyLimits | None = None,
                 routes: Sequence[BaseRoute] | None = None) -> None:
        self.app, self.metrics, self.log, self.max_in_flight = app, metrics, log, max_in_flight
        self.limits, self.routes = limits, routes
        self.in_flight = 0

    async def _answer(self, send: Send, status: int, body: bytes, request_id: str,
                      extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
                   (b"x-request-id", request_id.encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

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
        refused = _refusal(scope, self.limits) if self.limits is not None else None
        if refused is not None:
            state["error"] = orjson.loads(refused[1])["detail"]
            await self._answer(send, refused[0], refused[1], request_id)
            self.metrics.observe("(refused: body)", scope.get("method", ""), refused[0], time.perf_counter() - started)
            self.log.request(request_id=request_id, route="(refused: body)", status=refused[0],
                             latency_ms=(time.perf_counter() - started) * 1000, error=state["error"])
            return
        self.in_flight += 1
        cut_off = False  # the body passed its limit: we answered 413; the app's answer is dropped
        received = 0
        limit = self.limits.limit(scope.get("path", "")) if self.limits is not None else None

        async def receive_counted() -> Message:
            nonlocal cut_off, received, status, started_response
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    what = "upload" if self.limits is not None and self.limits.is_upload(scope["path"]) else "body"
                    detail = f"{what}: more than {limit} bytes ({limit / 2**20:g} MiB), the limit"
                    state["error"] = detail
                    if not started_response:
                        status, started_response = 413, True
                        await self._answer(send, 413, _error(413, "PayloadTooLargeError", detail), request_id,
                                           [(b"connection", b"close")])
                    return {"type": "http.disconnect"}
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started_response
            if cut_off:
                return
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if status == 405 and self.routes is not None:
                    allow = ", ".join(allowed_methods(self.routes, scope)).encode()
                    headers = [(k, v) for k, v in headers if k.lower() != b"allow"] + [(b"allow", allow)]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive_counted if limit is not None else receive, send_wrapper)
        except Exception as exc:
            if cut_off:  # the app saw the disconnect we simulated: not a bug
                return
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
