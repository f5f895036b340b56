"""Model monitoring inside ``prognos serve``: drift capture and the periodic drift job, ground-truth
routes, the shadow canary, their Prometheus metrics — plugged in through the server's hooks.

::

    hooks = lifecycle_hooks(settings, hooks, service=service, fleet=fleet)   # in the composition root

Routes (``/api/v1``): ``POST /engines/{id}/failure`` (operator) records ground truth;
``GET /models/performance`` live RMSE / PHM08 per model version and the canary's realised errors;
``GET /models/drift`` the latest drift report (``POST /models/drift/check``, operator, computes one
now); ``GET /models/canary`` live shadow agreement. Metrics: ``prognos_drift_psi{feature,kind}``,
``prognos_drift_ks{feature,kind}``, ``prognos_drift_detected``, ``prognos_drift_samples``,
``prognos_canary_*``. A drift verdict opens (and a later all-clear resolves) an alert of kind
``drift`` on the served model version (a model-level alert, not an engine's).

Dependencies are injected by the composition root (``assembly``): the prediction service
and, when the fleet app runs, the fleet as a :class:`~prognos.lifecycle.ports.FleetPort` — this
module never imports the fleet and never looks it up on the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from prognos.config import Settings
from prognos.data.validation import check_engine_id
from prognos.errors import BundleError, ModelUnavailableError, PrognosError
from prognos.lifecycle.canary import RegistryCandidate, ShadowCanary
from prognos.lifecycle.drift import DriftCapture, DriftReport, DriftThresholds, compute_drift, sample_from_records
from prognos.lifecycle.feedback import DEFAULT_RUL_CAP, model_performance, record_failure
from prognos.lifecycle.ports import FleetPort, GroundTruth, ModelAlert
from prognos.reference import ReferenceProfile, load_reference
from prognos.serving.hooks import ServerHooks
from prognos.serving.http.auth import Principal, Role, require
from prognos.serving.http.responses import JsonResponse
from prognos.serving.http.routing import PrognosRoute

if TYPE_CHECKING:
    from prognos.serving.service import PredictionService

__all__ = ["DriftMonitor", "FailureRequest", "Monitoring", "MonitoringCollector", "build_router", "lifecycle_hooks"]

log = logging.getLogger("prognos.lifecycle")


class DriftMonitor:
    """Computes drift over the captured sample of the served model; keeps the latest report."""

    def __init__(self, settings: Settings, capture: DriftCapture) -> None:
        self.settings = settings
        self.capture = capture
        self.thresholds = DriftThresholds.from_settings(settings)
        self.latest: DriftReport | None = None
        self._references: dict[str, ReferenceProfile | None] = {}

    def _reference(self, service: PredictionService) -> ReferenceProfile | None:
        predictor = service.predictor
        if predictor.version not in self._references:
            try:
                reference = load_reference(predictor.bundle)
            except BundleError as exc:  # an outdated or unreadable profile: no verdicts (said once, here)
                log.warning("drift monitoring is off for model %s: %s", predictor.version, exc)
                reference = None
            self._references = {predictor.version: reference}
        return self._references[predictor.version]

    def check(self, service: PredictionService) -> DriftReport:
        """One drift computation (blocking: call in a worker thread). Also flushes the capture."""
        predictor = service.predictor  # ModelUnavailableError before the model is loaded
        self.capture.flush()
        sample = sample_from_records(predictor, self.capture.records(predictor.version),
                                     f"served requests (sampled at {self.capture.rate:.0%})")
        report = compute_drift(self._reference(service), sample, self.thresholds, predictor.version)
        self.latest = report
        return report


@dataclass
class Monitoring:
    """Everything the lifecycle adds to a server. ``service`` and ``fleet`` (None: no fleet
    database, so no ground truth and no alerts) are injected by the composition root."""

    settings: Settings
    capture: DriftCapture
    monitor: DriftMonitor
    canary: ShadowCanary | None
    service: PredictionService | None = None
    fleet: FleetPort | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def store(self) -> GroundTruth | None:
        return None if self.fleet is None else self.fleet.ground_truth

    def rul_cap(self) -> float:
        if self.settings.feedback_rul_cap is not None:
            return self.settings.feedback_rul_cap
        service = self.service
        if service is not None and service.ready:
            return float(service.manifest.rul_cap)
        return DEFAULT_RUL_CAP

    # ------------------------------------------------------------------ drift job
    async def drift_check(self, service: PredictionService) -> DriftReport:
        report = await asyncio.to_thread(self.monitor.check, service)
        await self._alert(report)
        return report

    async def _alert(self, report: DriftReport) -> None:
        """Open / escalate / resolve the ``drift`` alert on the report's model version."""
        fleet = self.fleet
        if fleet is None or report.status not in ("drift", "ok"):
            return  # too few samples or no reference: no verdict, leave any alert as it is
        if not report.detected:
            await fleet.resolve_model_alert(report.model_version, "drift")
            return
        severity = "critical" if report.prediction is not None and report.prediction.drifted else "warning"
        await fleet.raise_model_alert(ModelAlert(
            report.model_version, "drift", severity, f"model {report.model_version}: input drift: {report.message}",
            {"model_version": report.model_version, "n_samples": report.n_samples,
             "drifted_features": report.drifted_features, "psi": {q.name: round(q.psi, 4) for q in report.features}}))

    async def _drift_loop(self, service: PredictionService) -> None:
        while True:
            await asyncio.sleep(self.settings.drift_interval_s)
            if self.fleet is not None and not await asyncio.to_thread(self.fleet.runs_scheduled_jobs):
                continue  # several servers on one database: one judges drift
            try:
                report = await self.drift_check(service)
                if report.detected:
                    log.warning("drift detected: %s", report.message)
            except ModelUnavailableError:
                continue
            except Exception as exc:  # a failed check must not end the monitoring
                log.exception("drift check failed: %s", exc)

    async def start(self, service: PredictionService) -> None:
        service.observers.append(self.capture.observe)
        self.tasks.append(asyncio.create_task(self._drift_loop(service), name="prognos-drift"))
        if self.canary is not None:
            service.observers.append(self.canary.observe)
            self.tasks.append(asyncio.create_task(self.canary.run(), name="prognos-canary"))

    async def stop(self, service: PredictionService) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        try:
            await asyncio.to_thread(self.capture.flush)
        except OSError as exc:
            log.warning("could not persist the drift capture: %s", exc)

    def configure(self, app: FastAPI) -> None:
        """Register the drift and canary gauges with the app's metrics registry."""
        metrics = getattr(app.state, "metrics", None)
        if metrics is not None:
            metrics.registry.register(MonitoringCollector(self))


class MonitoringCollector(Collector):
    """Drift gauges and canary counters, read at scrape time."""

    def __init__(self, monitoring: Monitoring) -> None:
        self.m = monitoring

    def collect(self) -> Iterator[Metric]:
        report = self.m.monitor.latest
        psi = GaugeMetricFamily("prognos_drift_psi", "PSI of the captured sample vs the reference",
                                labels=["feature", "kind"])
        ks = GaugeMetricFamily("prognos_drift_ks", "KS statistic (max CDF gap) vs the reference",
                               labels=["feature", "kind"])
        if report is not None:
            quantities = [*report.features, *report.raw, *([report.prediction] if report.prediction else [])]
            for q in quantities:
                if q.n:
                    psi.add_metric([q.name, q.kind], q.psi)
                    ks.add_metric([q.name, q.kind], q.ks)
        yield psi
        yield ks
        yield GaugeMetricFamily("prognos_drift_detected", "1 when the last drift check found drift",
                                value=int(report is not None and report.detected))
        yield GaugeMetricFamily("prognos_drift_features_drifted", "Model features drifted at the last check",
                                value=0 if report is None else report.n_drifted)
        yield GaugeMetricFamily("prognos_drift_samples", "Captured samples of the served model",
                                value=0 if report is None else report.n_samples)
        yield CounterMetricFamily("prognos_drift_captured", "Predictions captured for drift",
                                  value=self.m.capture.captured)
        canary = self.m.canary
        if canary is None:
            return
        c = canary.counters
        yield CounterMetricFamily("prognos_canary_sampled", "Predictions sampled for shadow scoring", value=c.sampled)
        yield CounterMetricFamily("prognos_canary_scored", "Shadow predictions made by the candidate", value=c.scored)
        yield CounterMetricFamily("prognos_canary_dropped", "Shadow jobs dropped (queue full, no candidate, "
                                  "candidate error)", value=c.dropped)
        yield CounterMetricFamily("prognos_canary_errors", "Canary errors (registry, loading, scoring)",
                                  value=c.errors)
        labels = ["production", "candidate"]
        n = CounterMetricFamily("prognos_canary_pairs", "Requests scored by both versions", labels=labels)
        agree = GaugeMetricFamily("prognos_canary_agreement", "Share of shadow pairs within the tolerance",
                                  labels=labels)
        mad = GaugeMetricFamily("prognos_canary_mean_abs_diff_cycles", "Mean |candidate - production| RUL",
                                labels=labels)
        for p in canary.pairs.values():
            d = p.to_dict()
            key = [p.production_version, p.candidate_version]
            n.add_metric(key, p.n)
            agree.add_metric(key, d["agreement"])
            mad.add_metric(key, d["mean_abs_diff"])
        yield n
        yield agree
        yield mad
        info = GaugeMetricFamily("prognos_canary_candidate_info", "The candidate scored in shadow (value 1)",
                                 labels=["version"])
        if canary.candidate_version is not None:
            info.add_metric([canary.candidate_version], 1)
        yield info


# ---------------------------------------------------------------------------------------- routes


class FailureRequest(BaseModel):
    """``POST /api/v1/engines/{id}/failure``: the engine's last cycle (it failed after it)."""

    model_config = ConfigDict(extra="forbid")

    cycle: int = Field(ge=1, strict=True, description="the cycle at which the engine failed (its last cycle)")


def _json(body: Any, status_code: int = 200) -> Response:
    return JsonResponse(body, status_code)  # the one JSON response class of the REST API


_Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
_Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]


def build_router(m: Monitoring) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["lifecycle"], route_class=PrognosRoute)  # the one JSON parser

    def store() -> GroundTruth:
        s = m.store()
        if s is None:
            raise ModelUnavailableError("ground truth needs the fleet database; it is not configured")
        return s

    @router.post("/engines/{engine_id}/failure", status_code=201,
                 responses={200: {"description": "already recorded (same cycle): nothing changed"}})
    async def record(engine_id: str, body: FailureRequest, who: _Operator) -> Response:
        """Record that the engine failed at ``cycle``; returns its predictions' realised errors per model."""
        check_engine_id(engine_id)  # the one id rule: a NUL is the same 422 on both databases, not a 500
        result = await asyncio.to_thread(record_failure, store(), engine_id, body.cycle, who.name, rul_cap=m.rul_cap())
        return _json(result.to_dict(), 201 if result.created else 200)

    @router.get("/models/performance")
    async def performance(_: _Viewer) -> Response:
        """Live RMSE and PHM08 score per model version (engines with a recorded failure), and the
        shadow canary's production vs candidate realised errors."""
        report = await asyncio.to_thread(model_performance, store(), m.rul_cap())
        body = report.to_dict()
        body["canary"] = None if m.canary is None else m.canary.snapshot()
        return _json(body)

    @router.get("/models/drift")
    async def drift(_: _Viewer) -> Response:
        """The latest drift report of the served model (computed every PROGNOS_DRIFT_INTERVAL_S)."""
        report = m.monitor.latest
        if report is None:
            return _json({"status": "pending", "detected": False, "message": "no drift check has run yet",
                          "captured": m.capture.captured})
        return _json(report.to_dict())

    @router.post("/models/drift/check")
    async def drift_check(_: _Operator) -> Response:
        """Compute drift over the captured sample now (and raise or clear the drift alert)."""
        if m.service is None:
            raise ModelUnavailableError("drift needs the local prediction service; it is not configured")
        report = await m.drift_check(m.service)
        return _json(report.to_dict())

    @router.get("/models/canary")
    async def canary(_: _Viewer) -> Response:
        """Shadow canary: the candidate being scored and its agreement with production."""
        if m.canary is None:
            return _json({"enabled": False, "fraction": 0.0, "candidate": None, "pairs": []})
        return _json(m.canary.snapshot())

    return router


def lifecycle_hooks(settings: Settings, hooks: ServerHooks, *, service: PredictionService,
                    fleet: FleetPort | None) -> ServerHooks:
    """``hooks`` plus drift capture and monitoring of ``service``, ground-truth routes and (when
    ``canary_fraction`` > 0) the shadow canary following the registry's ``candidate`` alias.
    ``fleet`` stores ground truth and shadow pairs and carries the drift alert (None: neither)."""
    capture = DriftCapture.from_settings(settings)
    m = Monitoring(settings, capture, DriftMonitor(settings, capture), None, service=service, fleet=fleet)
    if settings.canary_fraction > 0:
        try:
            from prognos.lifecycle.registry import open_registry

            registry = open_registry(settings.registry_location, settings.registry_cache)
        except PrognosError as exc:
            log.warning("shadow canary disabled: %s", exc)
        else:
            m.canary = ShadowCanary(settings, RegistryCandidate(registry), store=m.store)
    return replace(hooks, routers=[*hooks.routers, build_router(m)], on_startup=(*hooks.on_startup, m.start),
                   on_shutdown=(m.stop, *hooks.on_shutdown), configure_app=(*hooks.configure_app, m.configure))
