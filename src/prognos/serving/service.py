"""The protocol-independent prediction service shared by REST, gRPC, SageMaker and the fleet app.

Front ends call these coroutines and map :mod:`prognos.errors` exceptions to their status codes.

Request path: validate (the one validator) -> cache lookup on the whole sequence + model version
-> feature window -> :class:`~prognos.serving.batcher.MicroBatcher` (bounded queue, one model
thread) -> calibrated interval and status. :meth:`PredictionService.reload` loads, verifies and
warms up a bundle off the event loop and swaps it in atomically: requests already holding the old
predictor finish on it, new ones get the new one, none fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from prognos.bundle import Manifest
from prognos.config import Settings
from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.data.validation import ReadingSpec, ValidSequence
from prognos.errors import BundleError, ModelUnavailableError, OverloadedError, PrognosError
from prognos.serving.batcher import MicroBatcher
from prognos.serving.cache import PredictionCache, window_key
from prognos.serving.explain import Explanation
from prognos.serving.predictor import Prediction, Predictor
from prognos.status import StatusThresholds

__all__ = ["PredictionObserver", "PredictionService", "ServedPrediction", "ServiceCounters", "load_predictor",
           "warm_up"]


@dataclass(frozen=True)
class ServedPrediction:
    """A prediction as the API returns it (REST JSON body and gRPC message share these fields)."""

    prediction: Prediction
    status: str  # healthy / warning / critical, by the interval's lower bound (prognos.status)
    timestamp: str  # UTC ISO-8601
    explanation: Explanation | None = None  # asked for with explain=True

    def to_dict(self) -> dict[str, Any]:
        d = self.prediction.to_dict()
        d.update(status=self.status, timestamp=self.timestamp)
        if self.explanation is not None:
            d["explanation"] = self.explanation.to_dict()
        return d


#: ``observer(predictor, engine_ids, sequences, answers)``, see ``PredictionService.observers``.
PredictionObserver = Callable[[Predictor, Sequence[str], Sequence[ValidSequence], Sequence[ServedPrediction]], None]


@dataclass
class ServiceCounters:
    """Totals since start, read by the metrics endpoint."""

    predictions: int = 0
    overloaded: int = 0
    reloads: int = 0
    reload_failures: int = 0


def warm_up(predictor: Predictor, batch_sizes: Sequence[int] = (1, 32)) -> None:
    """Run the full path (validate -> window -> model) on plausible made-up readings, so the first
    real request pays no one-off costs (ONNX Runtime allocates per input shape on first use).

    Raises :class:`BundleError` when the model cannot run or returns the wrong shape — an
    incompatible bundle is refused before it serves.
    """
    reading: dict[str, float] = {}
    for name in predictor.spec.required:
        lo_hi = predictor.spec.ranges.get(name)
        reading[name] = float((lo_hi[0] + lo_hi[1]) / 2) if lo_hi is not None else 0.0
    try:
        seq = predictor.validate([dict(reading, cycle=i + 1) for i in range(predictor.window)], "warm-up")
        window = predictor.window_of(seq)
        for n in batch_sizes:
            y = predictor.predict_windows(np.repeat(window[None], n, axis=0))
            if y.shape != (n,) or not np.all(np.isfinite(y)):
                raise BundleError(f"{predictor.bundle.path}: model returned shape {y.shape} or non-finite RUL "
                                  f"for {n} windows")
        # The explainer's one baseline run, here: an explained request never runs the model on the event loop.
        predictor.explainer  # noqa: B018
    except BundleError:
        raise
    except Exception as exc:  # ONNX Runtime and numpy raise their own types for shape/type mismatches
        raise BundleError(f"{predictor.bundle.path}: model does not run on its own inputs: "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None


def load_predictor(path: Path, settings: Settings) -> Predictor:
    """Read and verify a bundle, open it in ONNX Runtime (one thread) and warm it up. Blocking."""
    try:
        predictor = Predictor.from_path(Path(path), max_readings=settings.max_readings, threads=1,
                                        explain_method=settings.explain_method)
    except PrognosError:
        raise
    except Exception as exc:  # a model file ONNX Runtime cannot parse, despite a valid checksum
        raise BundleError(f"{path}: cannot load the model: {exc}") from None
    unknown = [f for f in predictor.spec.required if f not in MEASUREMENT_FIELDS]
    if unknown:
        raise BundleError(f"{path}: the model requires unknown input fields {unknown}")
    warm_up(predictor, (1, min(32, settings.batch_max_size)))
    return predictor


class PredictionService:
    """One loaded model behind a cache, a micro-batcher and admission control.

    ``predictor`` may be given (tests, the CLI) or loaded later with :meth:`reload`.
    """

    remote = False  # True for a service whose model lives elsewhere (the gateway's pool): no local bundle

    def __init__(self, settings: Settings, predictor: Predictor | None = None) -> None:
        self.settings = settings
        self.thresholds = StatusThresholds.from_settings(settings)
        self._predictor = predictor
        self.bundle_path: Path | None = predictor.bundle.path if predictor is not None else None
        self.cache = PredictionCache(settings.cache_size, settings.cache_ttl_s)
        self.batcher = MicroBatcher(settings.batch_max_size, settings.batch_max_wait_ms, settings.max_queue,
                                    settings.batch_inline_max)
        self.counters = ServiceCounters()
        self.started_at = time.time()
        self.loaded_at: float | None = time.time() if predictor is not None else None
        self._draining = False
        self._reload_lock: asyncio.Lock | None = None
        self._rss_checked_at = 0.0
        self._rss_mb = 0.0
        # Called after every answered batch (drift capture, shadow canary). Each must be quick and
        # never block: an observer that raises is logged and skipped, the answer is unaffected.
        self.observers: list[PredictionObserver] = []

    # ------------------------------------------------------------------ state
    @property
    def predictor(self) -> Predictor:
        if self._predictor is None:
            raise ModelUnavailableError("no model is loaded")
        return self._predictor

    @property
    def ready(self) -> bool:
        """A verified, warmed-up model is loaded and the service is not shutting down."""
        return self._predictor is not None and not self._draining

    @property
    def model_version(self) -> str | None:
        return None if self._predictor is None else self._predictor.version

    @property
    def manifest(self) -> Manifest:
        return self.predictor.bundle.manifest

    # The prognos.serving.ports.Predictions seam (what the fleet scores through).
    def reading_spec(self) -> ReadingSpec:
        """The loaded model's reading contract; ModelUnavailableError without a model."""
        return self.predictor.spec

    def history_readings(self) -> int:
        """Latest readings per engine a prediction should see; ModelUnavailableError without a model."""
        return self.predictor.history_readings

    def begin_shutdown(self) -> None:
        """Report not-ready from now on (load balancers stop sending); in-flight work still finishes."""
        self._draining = True

    async def close(self) -> None:
        await self.batcher.close()

    # ------------------------------------------------------------------ hot swap
    async def reload(self, path: Path | None = None) -> Manifest:
        """Load, verify and warm up the bundle at ``path`` (default: the current one) in a worker
        thread, then swap it in atomically. A bad bundle raises :class:`BundleError` and the model
        being served stays. Concurrent reloads run one after the other."""
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        target = Path(path) if path is not None else self.bundle_path
        if target is None:
            raise BundleError("no bundle to reload: give a bundle directory")
        async with self._reload_lock:
            try:
                predictor = await asyncio.to_thread(load_predictor, target, self.settings)
            except PrognosError:
                self.counters.reload_failures += 1
                raise
            self.use(predictor, target)
            return predictor.bundle.manifest

    def use(self, predictor: Predictor, path: Path | None = None) -> None:
        """Serve ``predictor`` (loaded and verified already) from now on: the hot swap itself.
        Requests already holding the old predictor finish on it. ``path``: where it was loaded from."""
        # One reference assignment: every request sees the old or the new model, never a mix.
        self._predictor, self.bundle_path, self.loaded_at = predictor, path or predictor.bundle.path, time.time()
        self.counters.reloads += 1

    # ------------------------------------------------------------------ predictions
    def _serve(self, p: Prediction, explanation: Explanation | None = None) -> ServedPrediction:
        status = self.thresholds.of(p.lower)  # the one status rule: the interval's lower bound
        return ServedPrediction(p, status, datetime.now(UTC).isoformat().replace("+00:00", "Z"), explanation)

    def _check_memory(self) -> None:
        limit = self.settings.max_memory_mb
        if limit is None:
            return
        now = time.monotonic()
        if now - self._rss_checked_at > 0.25:  # reading RSS costs a syscall; 4 per second is enough
            import psutil

            self._rss_mb = psutil.Process().memory_info().rss / 2**20
            self._rss_checked_at = now
        if self._rss_mb > limit:
            self.counters.overloaded += 1
            raise OverloadedError(f"server busy: memory {self._rss_mb:.0f} MB above {limit:g} MB; retry shortly")

    async def predict(self, engine_id: str, readings: Any, where: str = "sensor_data", *,
                      explain: bool = False) -> ServedPrediction:
        """Validate one engine's raw readings (JSON-decoded list of objects) and predict;
        ``explain``: with its :class:`~prognos.serving.explain.Explanation`."""
        return (await self.predict_many([(engine_id, readings)], where=where, explain=explain))[0]

    async def predict_many(self, items: Sequence[tuple[str, Any]], where: str = "requests", *,
                           explain: bool = False) -> list[ServedPrediction]:
        """Validate and predict many engines; one model call. ``where`` prefixes error paths."""
        predictor = self.predictor
        seqs = [
            predictor.validate(r, f"{where}[{i}].sensor_data" if len(items) > 1 or where != "sensor_data" else where)
            for i, (_, r) in enumerate(items)
        ]
        return await self._predict(predictor, [e for e, _ in items], seqs, explain)

    async def predict_valid(self, engine_ids: Sequence[str], seqs: Sequence[ValidSequence], *,
                            explain: bool = False) -> list[ServedPrediction]:
        """Predict already-validated sequences (the fleet app validates at ingestion)."""
        return await self._predict(self.predictor, engine_ids, seqs, explain)

    async def _predict(self, predictor: Predictor, engine_ids: Sequence[str],
                       seqs: Sequence[ValidSequence], explain: bool = False) -> list[ServedPrediction]:
        if not seqs:
            return []
        self._check_memory()
        rul = np.empty(len(seqs))
        keys = [window_key(predictor.version, s.values) for s in seqs]
        todo: list[int] = []
        explanations: list[Explanation | None] = [None] * len(seqs)
        for i, key in enumerate(keys):
            hit = None if explain else self.cache.get(key)
            if hit is None:
                todo.append(i)
            else:
                rul[i] = hit
        if todo:
            x = predictor.windows([seqs[i] for i in todo])
            # Explained (todo is then every engine: no cache hits), the windows and all their
            # perturbations go in one job: the explanation costs one model call. Building and reading
            # them is numpy work that grows with the batch: off the event loop.
            job = await asyncio.to_thread(predictor.explainer.batch, x) if explain else x
            try:
                y = await self.batcher.submit(predictor, job)
            except OverloadedError:
                self.counters.overloaded += 1
                raise
            if explain:
                last = [None if s.cycles is None else int(s.cycles[-1]) for s in seqs]
                explanations = list(await asyncio.to_thread(predictor.explainer.read, x, y, last))
            for i, r in zip(todo, y[: len(todo)], strict=True):
                rul[i] = r
                self.cache.put(keys[i], float(r))
        self.counters.predictions += len(seqs)
        served = [self._serve(p, e) for p, e in zip(predictor.finish(engine_ids, rul, seqs), explanations, strict=True)]
        for observe in self.observers:
            try:
                observe(predictor, engine_ids, seqs, served)
            except Exception:  # monitoring must never fail a prediction
                logging.getLogger("prognos.serving").exception("prediction observer %r failed", observe)
        return served
