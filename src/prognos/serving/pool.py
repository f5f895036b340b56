"""A client of the inference tier: predictions answered by a pool of ``prognos serve --role
inference`` replicas over gRPC, behind the same interface as the local
:class:`~prognos.serving.service.PredictionService` (the :class:`~prognos.serving.ports.Predictions`
seam the fleet scores through, plus ``predict``/``predict_many`` for the REST and gRPC front ends).

- **Balancing**: client-side round robin over the replicas that are healthy now.
- **Health**: every ``inference_health_interval_s`` each replica gets a ``grpc.health.v1`` check of
  ``prognos.v1.RulService`` and, when SERVING, a ``GetModel`` call (its model version, manifest and
  reading contract). A call that fails with UNAVAILABLE or DEADLINE_EXCEEDED takes the replica out
  at once; the next successful check puts it back.
- **Deadlines**: every call carries ``inference_timeout_s``.
- **Retries**: predictions are pure, so a call that failed for a reason that is not the request's
  fault (replica gone, overloaded, deadline, internal error) is sent ONCE more, to another replica.
  Only when no replica could answer is the caller told ``OverloadedError`` (HTTP 503 with
  ``Retry-After``, gRPC RESOURCE_EXHAUSTED). Bad input is refused here, by the one validator,
  before any replica is asked (and a replica's INVALID_ARGUMENT is passed on as it is).
- **Versions**: each answer carries the ``model_version`` of the replica that computed it. During a
  rolling model update the pool holds replicas of two versions and answers come from either; the
  reading contract used for validation is the one of the most recently described replica.

Authentication: the pool sends ``authorization: Bearer <admin_token>`` when one is configured
(the inference replicas share the gateways' admin token).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prognos.bundle import Manifest
from prognos.config import Settings
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import ReadingSpec, ValidSequence, validate_sequence
from prognos.errors import ConfigError, ModelUnavailableError, OverloadedError
from prognos.serving.explain import Explanation
from prognos.serving.predictor import Prediction
from prognos.serving.service import PredictionService, ServedPrediction

__all__ = ["CHUNK", "InferencePool", "PoolCounters", "RemoteModel", "parse_addresses", "pool_router"]

log = logging.getLogger("prognos.serving.pool")

#: Engines per BatchPredictRUL call: a history of ~100 readings is ~25 KB as protobuf, and a
#: message must stay under the replicas' grpc_max_message_mb (4 MiB by default).
CHUNK = 64


def parse_addresses(value: str | Sequence[str]) -> list[str]:
    """``"h1:50051,h2:50051"`` (or a list) -> checked ``host:port`` strings."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for raw in items:
        a = raw.strip()
        if not a:
            continue
        host, sep, port = a.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--inference / PROGNOS_INFERENCE_ADDRESSES: {a!r} is not host:port")
        out.append(a)
    if not out:
        raise ConfigError("--inference / PROGNOS_INFERENCE_ADDRESSES: give at least one host:port of an inference "
                          "replica (prognos serve --role inference)")
    return out


@dataclass(frozen=True)
class RemoteModel:
    """What the gateway knows of a replica's model: enough to validate readings and size histories."""

    version: str
    manifest: Manifest
    spec: ReadingSpec
    history_readings: int

    @property
    def window(self) -> int:
        return self.manifest.window

    @property
    def bundle(self) -> RemoteModel:  # the front ends read ``predictor.bundle.manifest``
        return self

    @property
    def path(self) -> Path | None:
        return None

    def validate(self, readings: object, where: str = "sensor_data") -> ValidSequence:
        return validate_sequence(readings, self.spec, where)


@dataclass
class PoolCounters:
    """Totals since start: ``retried`` = calls sent a second time (to another replica) after a
    failure; ``failed`` = calls no replica could answer."""

    calls: int = 0
    retried: int = 0
    failed: int = 0


@dataclass
class _Replica:
    address: str
    channel: Any
    stub: Any
    health: Any
    healthy: bool = False
    model: RemoteModel | None = None
    served: int = 0
    failures: int = 0
    last_error: str | None = None

    def status(self) -> dict[str, Any]:
        return {"address": self.address, "healthy": self.healthy, "served": self.served, "failures": self.failures,
                "model_version": None if self.model is None else self.model.version, "last_error": self.last_error}


_RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN",
                        "CANCELLED", "ABORTED"})
_GONE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


@dataclass
class _Attempt:
    replica: _Replica
    error: str


class InferencePool(PredictionService):
    """``PredictionService`` whose model calls go to the inference replicas at ``addresses``.

    Start with :meth:`reload` (waits for a first healthy, described replica; ``prognos serve``
    calls it where a local service would load its bundle), end with :meth:`close`.
    """

    remote = True

    def __init__(self, settings: Settings, addresses: str | Sequence[str] | None = None) -> None:
        super().__init__(settings)
        self.addresses = parse_addresses(addresses if addresses else settings.inference_addresses)
        self.timeout_s = settings.inference_timeout_s
        self.interval_s = settings.inference_health_interval_s
        self.pool = PoolCounters()
        self._replicas: list[_Replica] = []
        self._next = 0
        self._latest: RemoteModel | None = None
        self._checker: asyncio.Task[None] | None = None
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {settings.admin_token}"),) if settings.admin_token else ())
        self._any_healthy: asyncio.Event | None = None

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        return not self._draining and any(r.healthy and r.model is not None for r in self._replicas)

    @property
    def model_version(self) -> str | None:
        return None if self._latest is None else self._latest.version

    @property
    def predictor(self) -> Any:  # a RemoteModel: spec, window, validate(), bundle.manifest
        if self._latest is None:
            raise ModelUnavailableError("no inference replica has answered yet")
        return self._latest

    @property
    def manifest(self) -> Manifest:
        model: RemoteModel = self.predictor
        return model.manifest

    def reading_spec(self) -> ReadingSpec:
        model: RemoteModel = self.predictor
        return model.spec

    def history_readings(self) -> int:
        model: RemoteModel = self.predictor
        return model.history_readings

    def status(self) -> dict[str, Any]:
        """The pool as ``GET /api/v1/inference`` shows it."""
        return {"replicas": [r.status() for r in self._replicas], "healthy": sum(r.healthy for r in self._replicas),
                "calls": self.pool.calls, "retried": self.pool.retried, "failed": self.pool.failed,
                "model_versions": sorted({r.model.version for r in self._replicas if r.model is not None})}

    # ------------------------------------------------------------------ lifecycle
    def _open(self) -> None:
        if self._replicas:
            return
        import grpc
        from grpc_health.v1 import health_pb2_grpc

        from prognos.serving.grpc.v1 import rul_pb2_grpc

        max_bytes = int(self.settings.grpc_max_message_mb * 2**20)
        options = [("grpc.max_receive_message_length", max_bytes), ("grpc.max_send_message_length", max_bytes),
                   # reconnect quickly to a replica that comes back (gRPC's default backs off to 120 s)
                   ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]
        for address in self.addresses:
            channel = grpc.aio.insecure_channel(address, options=options)
            self._replicas.append(_Replica(address, channel, rul_pb2_grpc.RulServiceStub(channel),
                                           health_pb2_grpc.HealthStub(channel)))
        self._any_healthy = asyncio.Event()
        self._checker = asyncio.get_running_loop().create_task(self._check_forever(), name="prognos-pool-health")

    async def reload(self, path: Path | None = None) -> Manifest:
        """Open the channels (first call) and wait until a replica is SERVING and described.
        ``path`` is ignored: the replicas load their own models."""
        self._open()
        assert self._any_healthy is not None
        await self._any_healthy.wait()
        self.loaded_at = time.time()
        self.counters.reloads += 1
        return self.manifest

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            await asyncio.gather(self._checker, return_exceptions=True)
        for r in self._replicas:
            await r.channel.close()
        await super().close()

    async def _check_forever(self) -> None:
        while True:
            await asyncio.gather(*(self._check(r) for r in self._replicas))
            await asyncio.sleep(self.interval_s)

    async def _check(self, r: _Replica) -> None:
        import grpc
        from grpc_health.v1 import health_pb2

        from prognos.serving.grpc.health import RUL_SERVICE
        from prognos.serving.grpc.v1 import rul_pb2

        try:
            answer = await r.health.Check(health_pb2.HealthCheckRequest(service=RUL_SERVICE),
                                          timeout=self.timeout_s, metadata=self._metadata)
            if answer.status != health_pb2.HealthCheckResponse.SERVING:
                self._mark(r, False, "NOT_SERVING")
                return
            info = await r.stub.GetModel(rul_pb2.GetModelRequest(), timeout=self.timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            self._mark(r, False, f"{exc.code().name}: {exc.details()}")
            return
        if r.model is None or r.model.version != info.model_version:
            manifest = Manifest.model_validate(json.loads(info.manifest_json))
            spec = ReadingSpec(tuple(manifest.input_fields), dict(manifest.input_ranges), int(info.max_readings))
            r.model = RemoteModel(info.model_version, manifest, spec, int(info.history_readings))
            self._latest = r.model
            log.info("inference replica %s serves model %s", r.address, info.model_version)
        elif self._latest is None:
            self._latest = r.model
        self._mark(r, True, None)

    def _mark(self, r: _Replica, healthy: bool, error: str | None) -> None:
        if r.healthy != healthy:
            log.warning("inference replica %s is %s%s", r.address, "back" if healthy else "out",
                        "" if error is None else f" ({error})")
        r.healthy, r.last_error = healthy, error if error is not None else r.last_error
        if self._any_healthy is not None and healthy and r.model is not None:
            self._any_healthy.set()

    # ------------------------------------------------------------------ predictions
    async def predict_many(self, items: Sequence[tuple[str, Any]], where: str = "requests", *,
                           explain: bool = False) -> list[ServedPrediction]:
        """Validate here (the one validator, the pool's current contract), then predict remotely."""
        model: RemoteModel = self.predictor
        for i, (_, readings) in enumerate(items):
            model.validate(readings, f"{where}[{i}].sensor_data" if len(items) > 1 or where != "sensor_data"
                           else where)
        return await self._remote([e for e, _ in items], [_as_list(r) for _, r in items], explain)

    async def predict_valid(self, engine_ids: Sequence[str], seqs: Sequence[ValidSequence], *,
                            explain: bool = False) -> list[ServedPrediction]:
        return await self._remote(list(engine_ids), [_readings_of(s) for s in seqs], explain)

    async def _remote(self, engine_ids: list[str], readings: list[list[dict[str, Any]]],
                      explain: bool = False) -> list[ServedPrediction]:
        if not engine_ids:
            return []
        if not self._replicas:
            raise ModelUnavailableError("the inference pool is not started")
        self._check_memory()
        chunks = [(engine_ids[i:i + CHUNK], readings[i:i + CHUNK]) for i in range(0, len(engine_ids), CHUNK)]
        parts = await asyncio.gather(*(self._batch(e, r, explain) for e, r in chunks))
        served = [s for part in parts for s in part]
        self.counters.predictions += len(served)
        return served

    async def _batch(self, engine_ids: list[str], readings: list[list[dict[str, Any]]],
                     explain: bool = False) -> list[ServedPrediction]:
        import grpc

        from prognos.serving.grpc.client import error_from_status
        from prognos.serving.grpc.messages import reading_messages
        from prognos.serving.grpc.v1 import rul_pb2

        request = rul_pb2.BatchPredictRULRequest(requests=[
            rul_pb2.PredictRULRequest(engine_id=e, sensor_data=reading_messages(r, f"requests[{i}].sensor_data"))
            for i, (e, r) in enumerate(zip(engine_ids, readings, strict=True))], explain=explain)
        self.pool.calls += 1
        tried: list[_Attempt] = []
        for attempt in range(2):  # the first try, and one retry on another replica
            replica = self._pick({id(a.replica) for a in tried})
            if replica is None:
                break
            if attempt == 1:
                self.pool.retried += 1
            try:
                answer = await replica.stub.BatchPredictRUL(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code().name, exc.details() or ""
                if code not in _RETRYABLE:  # the request's fault (or ours): another replica would say the same
                    raise error_from_status(code, details) from None
                replica.failures += 1
                if code in _GONE:
                    self._mark(replica, False, f"{code}: {details}")
                tried.append(_Attempt(replica, f"{replica.address}: {code} {details}".strip()))
                continue
            replica.served += 1
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            return [_served(m, now) for m in answer.responses]
        self.pool.failed += 1
        self.counters.overloaded += 1
        why = "; ".join(a.error for a in tried) or "no replica is healthy"
        raise OverloadedError(f"no inference replica can serve now ({why}); retry shortly",
                              retry_after_s=max(1.0, self.interval_s))

    def _pick(self, exclude: set[int]) -> _Replica | None:
        """Round robin over the healthy replicas not tried yet for this call."""
        n = len(self._replicas)
        for k in range(n):
            r = self._replicas[(self._next + k) % n]
            if r.healthy and id(r) not in exclude:
                self._next = (self._next + k + 1) % n
                return r
        return None


def _as_list(readings: Any) -> list[dict[str, Any]]:
    return [readings] if isinstance(readings, dict) else list(readings)


def _readings_of(seq: ValidSequence) -> list[dict[str, Any]]:
    """Validated rows back to the REST shape (NaN = not sent)."""
    rows = []
    cycles = seq.cycles.tolist() if seq.cycles is not None else [None] * len(seq.values)
    for cycle, values in zip(cycles, seq.values.tolist(), strict=True):
        row: dict[str, Any] = {} if cycle is None else {"cycle": int(cycle)}
        row.update({f: v for f, v in zip(MEASUREMENT_FIELDS, values, strict=True) if not math.isnan(v)})
        rows.append(row)
    return rows


def _served(m: Any, now: str) -> ServedPrediction:
    p = Prediction(m.engine_id, float(m.predicted_rul), float(m.lower), float(m.upper), float(m.confidence_level),
                   m.model_version, int(m.last_cycle) if m.HasField("last_cycle") else None)
    from prognos.serving.grpc.messages import response_dict

    body = response_dict(m) if m.HasField("explanation") else {}
    explanation = Explanation.from_dict(body["explanation"]) if "explanation" in body else None
    return ServedPrediction(p, m.status, m.timestamp or now, explanation)



def pool_router(pool: InferencePool) -> Any:
    """``GET /api/v1/inference``: the replicas, their health and model versions, and the call,
    retry and failure counts (what an operator checks during a rolling update)."""
    from fastapi import APIRouter

    router = APIRouter(prefix="/api/v1", tags=["inference pool"])

    @router.get("/inference")
    async def inference_pool() -> dict[str, Any]:
        """The inference tier as this gateway sees it."""
        return pool.status()

    return router
