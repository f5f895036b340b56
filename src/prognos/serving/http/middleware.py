"""Per-request bookkeeping as plain ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware):
a request id (``X-Request-ID`` in, or a new one; echoed back), metrics by route template, the
sampled request log line, and a cap on requests in flight.

A second cap bounds one client's requests in flight (``http_max_in_flight_per_client``; a client is
its address and the ``Authorization`` it sends, so a viewer's key has its own budget beside the
anonymous callers of the same address): past it the client gets 429, and 300 connections that
trickle their bodies cannot take every slot. Each body must also arrive within
``http_body_timeout_s`` of the request's start, else the request is answered 408 and the
connection closed (the handler is cancelled where it waits for the body).

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
* header size: request line plus headers over 16 KiB is 431, even when they came in one segment
  (h11 bounds only headers still incomplete);
* methods: one outside :data:`~prognos.serving.http.metrics.METHODS` is 501, counted as "other";
  the media type is checked only when the path serves the method, so ``PUT .../upload`` is 405;
  a 405 lists in ``Allow`` every method the path has (Starlette's names only the first
  route it matched), and ``OPTIONS`` is answered that way too (CORS preflights, when CORS is on,
  are answered by the CORS middleware before they get here);
* redirects (Starlette's trailing-slash one) carry a relative ``Location``: the ``Host`` header is a
  client's word and is never copied into an answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prognos.data.validation import clip
from prognos.serving.http.metrics import METHODS, HttpMetrics
from prognos.serving.logs import RequestLogger

__all__ = ["MAX_HEADER_BYTES", "BodyLimits", "InFlight", "RequestMiddleware"]

MAX_HEADER_BYTES = 16 * 1024  # request line + headers (bytes); h11's default for incomplete headers

_INTERNAL = b'{"error": "InternalError", "detail": "internal error"}'
_BUSY = b'{"error": "OverloadedError", "detail": "server busy: too many requests in flight; retry shortly"}'
_CLIENT_BUSY = (b'{"error": "RateLimitedError", "detail": "too many requests of this client in flight; wait for '
                b'their answers"}')
_METHOD = b'{"error": "HTTPError", "detail": "method not implemented"}'
_HEADERS = b'{"error": "HTTPError", "detail": "request line and headers exceed 16 KiB"}'
_EXEMPT = frozenset({"/health", "/ready", "/health/detailed", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class BodyLimits:
    """Request-body rules of :class:`RequestMiddleware` (bytes)."""

    max_body: int = 8 * 2**20
    max_upload: int = 64 * 2**20
    timeout_s: float | None = 30.0  # the whole body must arrive within this of the request's start

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


def _refusal(scope: Scope, limits: BodyLimits, routes: Sequence[BaseRoute] | None) -> tuple[int, bytes] | None:
    """A 413 or 415 decided from the headers alone, or None (a 415 also not when no route serves
    the method here: the app's 404 or 405 is the better answer)."""
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
        if media == "multipart/form-data":
            return None
        detail = (f"content-type: {clip(media) or '(none)'} is not accepted here; send the file as "
                  "multipart/form-data (field 'file')")
    elif media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return None
    else:
        detail = f"content-type: {clip(media) or '(none)'} is not accepted here; send application/json"
    if routes is not None and scope["method"] not in allowed_methods(routes, scope):
        return None  # the app answers 404 or 405 (the walk over the routes runs only here, off the hot path)
    return 415, _error(415, "UnsupportedMediaTypeError", detail)


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


class InFlight:
    """Requests in flight, in all and per client (``app.state.in_flight``; ``/ready`` reads it)."""

    def __init__(self, total: int | None = None, per_client: int | None = None) -> None:
        self.total, self.per_client = total, per_client
        self.count = 0
        self.by_client: Counter[tuple[str, int]] = Counter()

    @property
    def saturated(self) -> bool:
        return self.total is not None and self.count >= self.total

    def admit(self, client: tuple[str, int]) -> bytes | None:
        """None when admitted (then :meth:`release` it), else the refusal's body (503 or 429)."""
        if self.saturated:
            return _BUSY
        if self.per_client is not None and self.by_client[client] >= self.per_client:
            return _CLIENT_BUSY
        self.count += 1
        self.by_client[client] += 1
        return None

    def release(self, client: tuple[str, int]) -> None:
        self.count -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]


def _client(scope: Scope) -> tuple[str, int]:
    client = scope.get("client")
    return (client[0] if client else "", hash(_header(scope, b"authorization")))


def _relative(location: bytes) -> bytes:
    """``http://host/x?y`` -> ``/x?y``: a redirect never repeats the client's Host header."""
    if b"://" not in location.split(b"?", 1)[0]:
        return location
    rest = location.split(b"://", 1)[1]
    slash = rest.find(b"/")
    return b"/" if slash < 0 else rest[slash:]


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics, log: RequestLogger,
                 max_in_flight: int | None = None, limits: BodyLimits | None = None,
                 routes: Sequence[BaseRoute] | None = None, in_flight: InFlight | None = None) -> None:
        self.app, self.metrics, self.log = app, metrics, log
        self.limits, self.routes = limits, routes
        self.admission = in_flight or InFlight(max_in_flight)

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
        self.metrics.loop_lag.start()
        request_id = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        method = scope.get("method", "")
        if method not in METHODS:
            await self._answer(send, 501, _METHOD, request_id, [(b"connection", b"close")])
            self.metrics.observe("(refused: method)", "other", 501, time.perf_counter() - started)
            return
        if sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ())) + len(scope.get("raw_path", b"")) \
                > MAX_HEADER_BYTES:
            await self._answer(send, 431, _HEADERS, request_id, [(b"connection", b"close")])
            self.metrics.observe("(refused: headers)", method, 431, time.perf_counter() - started)
            return
        exempt = scope.get("path") in _EXEMPT
        client = _client(scope)
        busy = None if exempt else self.admission.admit(client)
        if busy is not None:
            status = 503 if busy is _BUSY else 429
            await self._answer(send, status, busy, request_id, [(b"retry-after", b"1")])
            self.metrics.observe("(refused: in flight)", method, status, time.perf_counter() - started)
            self.metrics.refused.inc()
            return
        try:
            await self._admitted(scope, receive, send, started, request_id, state)
        finally:
            if not exempt:
                self.admission.release(client)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send, started: float, request_id: str,
                        state: dict[str, Any]) -> None:
        status = 500
        started_response = False
        refused = _refusal(scope, self.limits, self.routes) if self.limits is not None else None
        if refused is not None:
            state["error"] = orjson.loads(refused[1])["detail"]
            await self._answer(send, refused[0], refused[1], request_id)
            self.metrics.observe("(refused: body)", scope.get("method", ""), refused[0], time.perf_counter() - started)
            self.log.request(request_id=request_id, route="(refused: body)", status=refused[0],
                             latency_ms=(time.perf_counter() - started) * 1000, error=state["error"])
            return
        cut_off = False  # the body passed its limit: we answered 413; the app's answer is dropped
        received = 0
        limit = self.limits.limit(scope.get("path", "")) if self.limits is not None else None
        # The body deadline: a timer that cancels the handler if it is still waiting for the body.
        task, timed_out = asyncio.current_task(), False
        deadline: asyncio.TimerHandle | None = None

        def overdue() -> None:
            nonlocal timed_out
            timed_out = True
            if task is not None:
                task.cancel()

        if (self.limits is not None and self.limits.timeout_s is not None and scope.get("method") in _BODY_METHODS
                and (_header(scope, b"content-length") not in (None, b"0")
                     or _header(scope, b"transfer-encoding") is not None)):
            deadline = asyncio.get_running_loop().call_later(self.limits.timeout_s, overdue)

        async def receive_counted() -> Message:
            nonlocal cut_off, received, deadline
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if deadline is not None and (message["type"] != "http.request" or not message.get("more_body")):
                deadline.cancel()
                deadline = None
            if limit is not None and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    what = "upload" if self.limits is not None and self.limits.is_upload(scope["path"]) else "body"
                    await refuse(413, "PayloadTooLargeError",
                                 f"{what}: more than {limit} bytes ({limit / 2**20:g} MiB), the limit")
                    return {"type": "http.disconnect"}
            return message

        async def refuse(code: int, error: str, detail: str) -> None:
            """Answer ``code`` and close, unless the app has started its own answer (then only log it)."""
            nonlocal status, started_response
            state["error"] = detail
            if not started_response:
                status, started_response = code, True
                await self._answer(send, code, _error(code, error, detail), request_id, [(b"connection", b"close")])

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
                if 300 <= status < 400:
                    headers = [(k, _relative(v) if k.lower() == b"location" else v) for k, v in headers]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive_counted, send_wrapper)
        except asyncio.CancelledError:
            if not timed_out or task is None:
                raise
            task.uncancel()
            await refuse(408, "RequestTimeoutError",
                         f"body: not received within {self.limits.timeout_s if self.limits else 0:g} s")
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
            if deadline is not None:
                deadline.cancel()
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # The route template, not the raw path: unmatched paths must not explode label sets.
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(template, scope["method"], status, elapsed)
            self.log.request(request_id=request_id, route=template, status=status, latency_ms=elapsed * 1000,
                             error=state.get("error") if status >= 400 else None, exc_info=state.get("exc_info"),
                             **state.get("log_ids", {}))
