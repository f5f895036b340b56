"""A small typed client for ``prognos.v1.RulService`` (blocking; one channel per client).

::

    with RulClient("127.0.0.1:50051", timeout_s=2.0) as client:
        p = client.predict("engine-7", [{"cycle": 1, "s2": 642.1, ...}, ...])
        print(p.predicted_rul, p.lower, p.upper, p.status)

Requests take the REST shapes (a reading is ``{"cycle": 1, "s2": 642.1}``; a batch or stream item is
``{"engine_id": ..., "sensor_data": [...]}``). Failures raise :mod:`prognos.errors` exceptions:
the server's status code picks the class (INVALID_ARGUMENT -> ValidationError, UNAVAILABLE ->
ModelUnavailableError, RESOURCE_EXHAUSTED -> OverloadedError with ``retry_after_s``, ...), and the
message is the server's, naming the field at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from prognos.errors import (
    BundleError,
    ConflictError,
    ModelUnavailableError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    PrognosError,
    RemoteError,
    UnauthenticatedError,
    ValidationError,
)
from prognos.serving.grpc.messages import reading_messages, response_dict
from prognos.serving.grpc.v1 import rul_pb2, rul_pb2_grpc

__all__ = ["IngestCounts", "RulClient", "RulPrediction", "StreamUpdate", "error_from_status"]

_ERRORS: dict[str, type[PrognosError]] = {
    cls.grpc_code: cls
    for cls in (ValidationError, BundleError, NotFoundError, ConflictError, ModelUnavailableError, OverloadedError,
                UnauthenticatedError, PermissionDeniedError)
}

M = TypeVar("M", rul_pb2.PredictRULRequest, rul_pb2.StreamPredictRULRequest, rul_pb2.IngestReadingsRequest)


@dataclass(frozen=True)
class RulPrediction:
    """The REST response body: RUL in cycles after the last reading, interval [lower, upper] at
    ``confidence_level`` nominal coverage, status by the server's thresholds, UTC ISO-8601 time."""

    engine_id: str
    predicted_rul: float
    lower: float
    upper: float
    confidence_level: float
    model_version: str
    status: str
    timestamp: str
    last_cycle: int | None = None
    explanation: dict[str, Any] | None = None  # the REST body's explanation, when asked for

    @classmethod
    def from_message(cls, message: rul_pb2.PredictRULResponse) -> RulPrediction:
        return cls(**response_dict(message))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["explanation"] is None:
            del d["explanation"]
        return d


@dataclass(frozen=True)
class StreamUpdate:
    """The answer to one streamed request: a prediction, or the error for that request alone."""

    engine_id: str
    prediction: RulPrediction | None
    error: PrognosError | None


@dataclass(frozen=True)
class IngestCounts:
    accepted: int
    duplicates: int


def error_from_status(code: grpc.StatusCode | str, details: str, retry_after_s: float | None = None) -> PrognosError:
    """The domain exception for a gRPC status (the inverse of the server's mapping)."""
    name = code if isinstance(code, str) else code.name
    cls = _ERRORS.get(name)
    if cls is None:
        return RemoteError(f"{name}: {details}")
    if cls is OverloadedError:
        return OverloadedError(details, retry_after_s if retry_after_s is not None else 1.0)
    return cls(details)


def _from_rpc(exc: grpc.RpcError) -> PrognosError:
    code, details = exc.code(), exc.details() or ""  # type: ignore[attr-defined]
    pushback = dict(exc.trailing_metadata() or ()).get("grpc-retry-pushback-ms")  # type: ignore[attr-defined]
    return error_from_status(code, details, None if pushback is None else int(pushback) / 1000)


def _request(cls: type[M], body: Mapping[str, Any], where: str = "") -> M:
    if not isinstance(body, Mapping):
        raise ValidationError(f"{where or 'request'}: expected an object with engine_id and sensor_data")
    engine_id, readings = body.get("engine_id"), body.get("sensor_data")
    if not isinstance(engine_id, str):
        raise ValidationError(f"{where}engine_id: expected a string, got {engine_id!r}")
    if not isinstance(readings, Sequence) or isinstance(readings, str | bytes):
        raise ValidationError(f"{where}sensor_data: expected a list of readings")
    return cls(engine_id=engine_id, sensor_data=reading_messages(readings, f"{where}sensor_data"))


class RulClient:
    """Blocking client over one channel. ``timeout_s`` bounds each unary call (seconds); message
    limits (MiB) should match the server's ``grpc_max_message_mb``. ``api_key`` is sent as
    ``authorization: Bearer <key>`` metadata on every call (ingestion needs an operator key);
    ``root_certificates`` (PEM) makes the channel TLS, trusting those roots (``tls=True`` alone:
    the system's roots)."""

    def __init__(self, target: str, *, timeout_s: float = 5.0, max_message_mb: float = 4.0,
                 api_key: str | None = None, root_certificates: bytes | None = None, tls: bool = False) -> None:
        max_bytes = int(max_message_mb * 2**20)
        self.target, self.timeout_s = target, timeout_s
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        options = [("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes)]
        if tls or root_certificates is not None:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates), options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = rul_pb2_grpc.RulServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> RulClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Block until the channel connects. Raises :class:`ModelUnavailableError` on timeout."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s or self.timeout_s)
        except grpc.FutureTimeoutError:
            raise ModelUnavailableError(f"{self.target}: no gRPC server answered within "
                                        f"{timeout_s or self.timeout_s:g} s") from None

    # ------------------------------------------------------------------ calls
    def predict(self, engine_id: str, readings: Sequence[Mapping[str, Any]], *, explain: bool = False,
                timeout_s: float | None = None) -> RulPrediction:
        """``explain``: with the prediction's explanation (which channels drive it)."""
        request = _request(rul_pb2.PredictRULRequest, {"engine_id": engine_id, "sensor_data": readings})
        request.explain = explain
        try:
            response = self._stub.PredictRUL(request, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _from_rpc(exc) from None
        return RulPrediction.from_message(response)

    def batch_predict(self, requests: Iterable[Mapping[str, Any]], *, explain: bool = False,
                      timeout_s: float | None = None) -> list[RulPrediction]:
        """Many engines, one model call on the server; results in request order."""
        batch = rul_pb2.BatchPredictRULRequest(
            requests=[_request(rul_pb2.PredictRULRequest, body, f"requests[{i}].") for i, body in enumerate(requests)],
            explain=explain,
        )
        try:
            response = self._stub.BatchPredictRUL(batch, timeout=timeout_s or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _from_rpc(exc) from None
        return [RulPrediction.from_message(m) for m in response.responses]

    def stream(self, requests: Iterable[Mapping[str, Any]], *,
               timeout_s: float | None = None) -> Iterator[StreamUpdate]:
        """Live predictions: yields one update per request, in order, as the server answers.
        ``timeout_s`` bounds the whole stream (default: none; live streams last)."""
        refused: list[ValidationError] = []

        def messages() -> Iterator[rul_pb2.StreamPredictRULRequest]:
            # Raising inside a request iterator would only cancel the call; stop sending instead
            # and raise once the server has answered everything sent before.
            for i, body in enumerate(requests):
                try:
                    yield _request(rul_pb2.StreamPredictRULRequest, body)
                except ValidationError as exc:
                    refused.append(ValidationError(f"stream request {i}: {exc}"))
                    return

        try:
            for m in self._stub.StreamPredictRUL(messages(), timeout=timeout_s, metadata=self._metadata):
                if m.HasField("prediction"):
                    yield StreamUpdate(m.engine_id, RulPrediction.from_message(m.prediction), None)
                else:
                    yield StreamUpdate(m.engine_id, None, error_from_status(m.error.code, m.error.message))
        except grpc.RpcError as exc:
            raise _from_rpc(exc) from None
        if refused:
            raise refused[0]

    def ingest(self, requests: Iterable[Mapping[str, Any]], *, timeout_s: float | None = None) -> IngestCounts:
        """Store readings (the server needs an ingestor). Every request is checked before the first
        is sent, so a client-side error stores nothing."""
        messages = [_request(rul_pb2.IngestReadingsRequest, body, f"requests[{i}].") for i, body in enumerate(requests)]
        try:
            response = self._stub.IngestReadings(iter(messages), timeout=timeout_s or self.timeout_s,
                                                 metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _from_rpc(exc) from None
        return IngestCounts(response.accepted, response.duplicates)

    def health(self, service: str = "", *, timeout_s: float | None = None) -> str:
        """The standard health check: "SERVING", "NOT_SERVING", ... (``service`` "" = the server)."""
        try:
            response = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                          timeout=timeout_s or self.timeout_s)
        except grpc.RpcError as exc:
            raise _from_rpc(exc) from None
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
