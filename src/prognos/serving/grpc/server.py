"""The gRPC front end: ``prognos.v1.RulService`` over :class:`PredictionService`, plus the standard
health service and server reflection, so generic clients (grpcurl, grpc_health_probe) work.

Access: every call goes through the one access check (:class:`prognos.serving.access.Access`),
with the key in metadata ``authorization: Bearer <key>``. ``IngestReadings`` writes and needs an
operator key (none or unknown: UNAUTHENTICATED; viewer: PERMISSION_DENIED); the predictions take an
optional key as over REST (a key's rate limit, else the peer address's). Each message of a stream
counts against the caller's rate. With ``tls_cert_file``/``tls_key_file`` set the port speaks TLS.

Errors are mapped here and only here: every :class:`~prognos.errors.PrognosError` carries its
``grpc_code`` (INVALID_ARGUMENT naming the field, UNAVAILABLE without a model, RESOURCE_EXHAUSTED
when overloaded, with a ``grpc-retry-pushback-ms`` trailer that gRPC retry policies obey). Anything
else is a bug: logged with its traceback, and the client gets INTERNAL without one.

``build_server`` returns an unstarted ``grpc.aio.Server``; :func:`add_port` binds it. The server
runs on the caller's event loop (``prognos serve`` shares one loop with uvicorn).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from prognos.config import Settings
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import ValidSequence
from prognos.errors import ConfigError, OverloadedError, PrognosError, StorageUnavailableError, ValidationError
from prognos.serving.access import Access, Authenticator, RateLimiter, Role, TokenAuthenticator, parse_bearer
from prognos.serving.grpc.health import RUL_SERVICE, ReadinessHealth
from prognos.serving.grpc.messages import engine_input, response_message
from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc
from prognos.serving.logs import RequestLogger
from prognos.serving.service import PredictionService

__all__ = ["IngestResult", "Ingestor", "RulServicer", "add_port", "build_server", "server_options", "tls_files"]

T = TypeVar("T")

_COLUMN = {name: i for i, name in enumerate(MEASUREMENT_FIELDS)}


class IngestResult(Protocol):
    """What an ingestor reports for one batch of readings."""

    @property
    def accepted(self) -> int: ...

    @property
    def duplicates(self) -> int: ...


class Ingestor(Protocol):
    """Stores readings for the fleet (the fleet app provides one). Raises :mod:`prognos.errors`."""

    async def ingest(self, engine_id: str, readings: list[dict[str, Any]]) -> IngestResult: ...


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel arguments: message size limits (MiB in settings, bytes here) and keepalive (s -> ms)."""
    max_bytes = int(settings.grpc_max_message_mb * 2**20)
    return [
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", max_bytes),
        # The server pings idle connections so half-open ones (a gateway that vanished) get closed.
        ("grpc.keepalive_time_ms", int(settings.grpc_keepalive_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(settings.grpc_keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        # Clients that ping more often than this are told GOAWAY (protects against ping floods).
        ("grpc.http2.min_ping_interval_without_data_ms", int(settings.grpc_min_ping_interval_s * 1000)),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _grpc_code(exc: PrognosError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, exc.grpc_code, grpc.StatusCode.INTERNAL)


def _trailers(exc: PrognosError) -> tuple[tuple[str, str], ...]:
    if isinstance(exc, OverloadedError | StorageUnavailableError):
        return (("grpc-retry-pushback-ms", str(int(exc.retry_after_s * 1000))),)
    return ()


def _token(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return parse_bearer(str(value))
    return None


def _peer_host(context: grpc.aio.ServicerContext) -> str:
    """``ipv4:127.0.0.1:5123`` / ``ipv6:[::1]:5123`` -> the address without the port."""
    peer = context.peer() or "unknown"
    _, _, address = peer.partition(":")
    host = address.rsplit(":", 1)[0] if address.count(":") >= 1 else address
    return host.strip("[]") or peer


def _request_id(context: grpc.aio.ServicerContext) -> str:
    """The caller's ``x-request-id`` metadata (as over REST), or a new id."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return str(value)[:64]
    return uuid.uuid4().hex


@dataclass
class _History:
    """The most recent validated readings of one engine in one stream."""

    values: np.ndarray  # (n, 24), MEASUREMENT_FIELDS order
    cycles: np.ndarray | None  # (n,) or None when the readings carry no cycle


class RulServicer(rul_pb2_grpc.RulServiceServicer):
    """Messages -> the dict form -> :class:`PredictionService` -> messages."""

    def __init__(self, service: PredictionService, settings: Settings, ingestor: Ingestor | None = None,
                 access: Access | None = None) -> None:
        self.service, self.settings, self.ingestor = service, settings, ingestor
        self.access = access or Access(TokenAuthenticator(settings.admin_token),
                                       RateLimiter(settings.anonymous_rate_limit_per_s,
                                                   settings.anonymous_rate_limit_burst))
        self.log = RequestLogger(settings.log_sample_rate)

    async def _checked(self, context: grpc.aio.ServicerContext, need: Role | None,
                       call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` after the access check (whose errors ``_answer`` maps like any other); a
        factory, so a refused call never creates the coroutine it will not run."""
        self.access.check(_token(context), _peer_host(context), need)
        return await call()

    async def _answer(self, context: grpc.aio.ServicerContext, method: str, call: Awaitable[T], **ids: Any) -> T:
        """Run one call: map domain errors to status codes (once, here), echo the request id in the
        trailers and write the sampled request log line (identifiers only, never readings)."""
        started, request_id = time.perf_counter(), _request_id(context)
        status, code, error, exc_info = 200, "OK", None, None
        try:
            try:
                result = await call
            except PrognosError as exc:
                status, code, error = exc.http_status, exc.grpc_code, str(exc)
                await context.abort(_grpc_code(exc), error, trailing_metadata=(("x-request-id", request_id),
                                                                                *_trailers(exc)))
            except Exception as exc:  # a bug: the log gets the traceback, the client a bare INTERNAL
                status, code, error, exc_info = 500, "INTERNAL", "internal error", exc
                await context.abort(grpc.StatusCode.INTERNAL, f"{method}: internal error (logged on the server)",
                                    trailing_metadata=(("x-request-id", request_id),))
            context.set_trailing_metadata((("x-request-id", request_id),))
            return result
        finally:
            self.log.request(request_id=request_id, route=f"grpc {method}", status=status, grpc_code=code,
                             latency_ms=(time.perf_counter() - started) * 1000, error=error, exc_info=exc_info,
                             model_version=self.service.model_version, **ids)

    async def PredictRUL(self, request: rul_pb2.PredictRULRequest,
                         context: grpc.aio.ServicerContext) -> rul_pb2.PredictRULResponse:
        return await self._answer(context, "PredictRUL", self._checked(context, None, lambda: self._predict(request)),
                                  engine_id=request.engine_id)

    async def _predict(self, request: rul_pb2.PredictRULRequest) -> rul_pb2.PredictRULResponse:
        one = engine_input(request)
        served = await self.service.predict(one.engine_id, one.readings, where="sensor_data", explain=request.explain)
        return response_message(served.to_dict())

    async def GetModel(self, request: rul_pb2.GetModelRequest, context: grpc.aio.ServicerContext) -> rul_pb2.ModelInfo:
        return await self._answer(context, "GetModel", self._checked(context, None, self._model_info))

    async def _model_info(self) -> rul_pb2.ModelInfo:
        predictor = self.service.predictor  # ModelUnavailableError (UNAVAILABLE) without a model
        return rul_pb2.ModelInfo(model_version=predictor.version,
                                 manifest_json=predictor.bundle.manifest.model_dump_json(),
                                 history_readings=predictor.history_readings, max_readings=predictor.spec.max_readings)

    async def BatchPredictRUL(self, request: rul_pb2.BatchPredictRULRequest,
                              context: grpc.aio.ServicerContext) -> rul_pb2.BatchPredictRULResponse:
        checked = self._checked(context, None, lambda: self._batch(request))
        return await self._answer(context, "BatchPredictRUL", checked, engines=len(request.requests))

    async def _batch(self, request: rul_pb2.BatchPredictRULRequest) -> rul_pb2.BatchPredictRULResponse:
        n, limit = len(request.requests), self.settings.max_batch_requests
        if n == 0:
            raise ValidationError("requests: is empty; send at least one request")
        if n > limit:
            raise ValidationError(f"requests: {n} requests exceed the limit of {limit}")
        inputs = [engine_input(r, f"requests[{i}].") for i, r in enumerate(request.requests)]
        served = await self.service.predict_many([(x.engine_id, x.readings) for x in inputs], where="requests",
                                                 explain=request.explain)
        return rul_pb2.BatchPredictRULResponse(responses=[response_message(s.to_dict()) for s in served])

    async def StreamPredictRUL(self, request_iterator: AsyncIterator[rul_pb2.StreamPredictRULRequest],
                               context: grpc.aio.ServicerContext) -> AsyncIterator[rul_pb2.StreamPredictRULResponse]:
        # Per-stream state, bounded twice: readings per engine and engines per stream (least
        # recently updated engine forgotten first; it restarts from its next readings).
        histories: OrderedDict[str, _History] = OrderedDict()
        request_id = _request_id(context)
        token, peer = _token(context), _peer_host(context)
        try:
            self.access.check(token, peer, None)
        except PrognosError as exc:  # no stream for a caller refused up front
            await context.abort(_grpc_code(exc), str(exc), trailing_metadata=(("x-request-id", request_id),
                                                                                *_trailers(exc)))
        first = True
        async for request in request_iterator:
            started = time.perf_counter()
            status, code, error, exc_info = 200, "OK", None, None
            response: rul_pb2.StreamPredictRULResponse | None = None
            try:
                if not first:  # each further message counts against the caller's rate
                    self.access.check(token, peer, None)
                first = False
                response = await self._stream_step(request, histories)
            except PrognosError as exc:
                # One bad request must not end a live stream that may carry a whole fleet.
                status, code, error = exc.http_status, exc.grpc_code, str(exc)
                response = rul_pb2.StreamPredictRULResponse(engine_id=request.engine_id,
                                                            error=rul_pb2.StreamError(code=code, message=error))
            except Exception as exc:  # a bug: logged with its traceback below, the stream ends INTERNAL
                status, code, error, exc_info = 500, "INTERNAL", "internal error", exc
            self.log.request(request_id=request_id, route="grpc StreamPredictRUL", status=status, grpc_code=code,
                             latency_ms=(time.perf_counter() - started) * 1000, error=error, exc_info=exc_info,
                             model_version=self.service.model_version, engine_id=request.engine_id)
            if response is None:
                await context.abort(grpc.StatusCode.INTERNAL, "StreamPredictRUL: internal error (logged on the server)")
                return
            yield response

    async def _stream_step(self, request: rul_pb2.StreamPredictRULRequest,
                           histories: OrderedDict[str, _History]) -> rul_pb2.StreamPredictRULResponse:
        one = engine_input(request)
        predictor = self.service.predictor
        new = predictor.validate(one.readings, "sensor_data")
        old = histories.get(one.engine_id)
        keep = max(self.settings.grpc_stream_history, predictor.window)
        joined = _extend(old, new, keep)
        required = [_COLUMN[name] for name in predictor.spec.required]
        if np.isnan(joined.values[:, required]).any():
            # A hot swap brought a model needing fields the older readings lack: start over from these.
            joined = _extend(None, new, keep)
        served = (await self.service.predict_valid([one.engine_id], [ValidSequence(joined.values, joined.cycles)]))[0]
        # Committed only after a prediction: a request refused (overload, no model) may be resent as is.
        histories[one.engine_id] = joined
        histories.move_to_end(one.engine_id)
        while len(histories) > self.settings.grpc_stream_max_engines:
            histories.popitem(last=False)
        return rul_pb2.StreamPredictRULResponse(engine_id=one.engine_id, prediction=response_message(served.to_dict()))

    async def IngestReadings(self, request_iterator: AsyncIterator[rul_pb2.IngestReadingsRequest],
                             context: grpc.aio.ServicerContext) -> rul_pb2.IngestReadingsResponse:
        if self.ingestor is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                "IngestReadings: this server stores no readings (no fleet database configured)")
        checked = self._checked(context, Role.OPERATOR, lambda: self._ingest(request_iterator, context))
        return await self._answer(context, "IngestReadings", checked)

    async def _ingest(self, requests: AsyncIterator[rul_pb2.IngestReadingsRequest],
                      context: grpc.aio.ServicerContext) -> rul_pb2.IngestReadingsResponse:
        assert self.ingestor is not None
        accepted = duplicates = 0
        i = 0
        token, peer = _token(context), _peer_host(context)
        async for request in requests:
            try:
                if i:  # the first message was admitted with the call; each further one counts against the rate
                    self.access.check(token, peer, Role.OPERATOR)
                one = engine_input(request)
                result = await self.ingestor.ingest(one.engine_id, one.readings)
            except PrognosError as exc:
                # Earlier messages are stored already: say so, so the client resends only the rest.
                raise type(exc)(f"message {i} (engine {request.engine_id!r}): {exc}; {i} earlier message(s) were "
                                f"stored ({accepted} readings accepted, {duplicates} duplicates)") from exc
            accepted += result.accepted
            duplicates += result.duplicates
            i += 1
        return rul_pb2.IngestReadingsResponse(accepted=accepted, duplicates=duplicates)


def _extend(old: _History | None, new: ValidSequence, keep: int) -> _History:
    """Append validated readings to an engine's history, keeping the last ``keep`` rows. Cycles
    must go on increasing across requests, as they must within one (the validator's rule)."""
    if old is None:
        return _History(new.values[-keep:], None if new.cycles is None else new.cycles[-keep:])
    if (old.cycles is None) != (new.cycles is None):
        had = "carry cycles" if old.cycles is not None else "carry no cycle"
        raise ValidationError(f"sensor_data[0].cycle: this engine's earlier readings {had}; give cycle on every "
                              "reading or on none")
    cycles = None
    if old.cycles is not None and new.cycles is not None:
        if new.cycles[0] <= old.cycles[-1]:
            raise ValidationError(f"sensor_data[0].cycle: {new.cycles[0]} does not increase (previous is "
                                  f"{old.cycles[-1]})")
        cycles = np.concatenate([old.cycles, new.cycles])[-keep:]
    return _History(np.concatenate([old.values, new.values])[-keep:], cycles)


def build_server(service: PredictionService, settings: Settings, ingestor: Ingestor | None = None, *,
                 health: ReadinessHealth | None = None, authenticator: Authenticator | None = None
                 ) -> grpc.aio.Server:
    """An unstarted server with RulService, Health and reflection. Bind it with :func:`add_port`,
    then ``await server.start()``. Pass ``health`` to keep a handle on it for shutdown
    (``await health.enter_graceful_shutdown()`` before ``await server.stop(grace_s)``).
    ``authenticator`` checks keys (the fleet's API keys; default: the settings' admin token only)."""
    server = grpc.aio.server(options=server_options(settings),
                             maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs)
    access = Access(authenticator or TokenAuthenticator(settings.admin_token),
                    RateLimiter(settings.anonymous_rate_limit_per_s, settings.anonymous_rate_limit_burst))
    rul_pb2_grpc.add_RulServiceServicer_to_server(RulServicer(service, settings, ingestor, access), server)
    health_pb2_grpc.add_HealthServicer_to_server(health or ReadinessHealth(service), server)
    names = (RUL_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    return server


def tls_files(settings: Settings) -> tuple[bytes, bytes] | None:
    """(certificate chain, private key) PEM bytes when TLS is configured, else None. Raises
    :class:`ConfigError` naming the setting when only one is set or a file cannot be read."""
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("tls_cert_file and tls_key_file (PROGNOS_TLS_CERT_FILE, PROGNOS_TLS_KEY_FILE): set both "
                          "or neither")
    try:
        return cert.read_bytes(), key.read_bytes()
    except OSError as exc:
        raise ConfigError(f"TLS certificate or key: cannot read {exc.filename}: {exc.strerror}") from None


def add_port(server: grpc.aio.Server, host: str, port: int, tls: tuple[bytes, bytes] | None = None) -> int:
    """Listen on ``host:port`` (port 0: any free port), with TLS when ``tls`` (certificate chain,
    private key; PEM, from :func:`tls_files`) is given; returns the bound port.

    Raises :class:`ConfigError` when the address cannot be bound (in use, bad host).
    """
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        if tls is not None:
            credentials = grpc.ssl_server_credentials([(tls[1], tls[0])])
            bound = server.add_secure_port(address, credentials)
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc reports bind failures this way
        raise ConfigError(f"grpc_port (PROGNOS_GRPC_PORT): cannot listen on {address}: {exc}") from None
    if bound == 0:
        raise ConfigError(f"grpc_port (PROGNOS_GRPC_PORT): cannot listen on {address}")
    return int(bound)

