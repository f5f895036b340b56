"""Prometheus metrics of one app, in a registry of its own (never the process-global one, so
several apps — tests, SageMaker beside REST — do not collide).

HTTP request counts and latency come from the middleware; the service's counters (predictions,
cache, batches, queue, model) are read at scrape time by :class:`ServiceCollector`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from prognos.serving.batcher import BATCH_SIZE_BUCKETS
from prognos.serving.service import PredictionService

__all__ = ["METHODS", "HttpMetrics", "LoopLag", "ServiceCollector"]

# Seconds; dense below 20 ms where the latency targets live.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))


#: The methods a request may carry; any other is answered 501 and counted as "other", so label
#: sets stay closed (random 201-character methods once grew /metrics to 68 MiB).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, float("inf"))


class LoopLag:
    """Event-loop lag, measured by the server itself: a task asks to wake every ``interval_s``
    and records how late it woke (s). The lateness counted is capped by the CPU time the loop's
    own thread used meanwhile, so a stall is code that held the loop (a regex, a scrape, a parse)
    and not the OS running another process on a busy 2-core machine. Exported as the histogram
    ``prognos_event_loop_lag_seconds``; the reliability tests fail on any sample above 50 ms."""

    def __init__(self, registry: CollectorRegistry, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self.histogram = Histogram("prognos_event_loop_lag_seconds", "How late the event loop ran a timer (s), "
                                   "capped by its thread's CPU time meanwhile", buckets=_LAG_BUCKETS,
                                   registry=registry)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start measuring on the running loop (idempotent; the middleware calls it per request)."""
        if self._task is None or self._task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="prognos-loop-lag")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        at, cpu = loop.time(), time.thread_time()
        while True:
            await asyncio.sleep(self.interval_s)
            now, cpu_now = loop.time(), time.thread_time()
            late = now - at - self.interval_s
            self.histogram.observe(max(0.0, min(late, cpu_now - cpu)))
            at, cpu = now, cpu_now


class ServiceCollector(Collector):
    def __init__(self, service: PredictionService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        s = self.service
        yield CounterMetricFamily("prognos_predictions", "Predictions served (engines)", value=s.counters.predictions)
        yield CounterMetricFamily("prognos_cache_hits", "Prediction cache hits", value=s.cache.hits)
        yield CounterMetricFamily("prognos_cache_misses", "Prediction cache misses", value=s.cache.misses)
        yield GaugeMetricFamily("prognos_cache_entries", "Cached predictions", value=len(s.cache))
        yield GaugeMetricFamily("prognos_queue_depth", "Windows queued or in the model", value=s.batcher.stats.pending)
        yield CounterMetricFamily("prognos_overloaded", "Requests refused for overload", value=s.counters.overloaded)
        yield CounterMetricFamily("prognos_model_reloads", "Successful model swaps", value=s.counters.reloads)
        yield CounterMetricFamily("prognos_model_reload_failures", "Refused bundles", value=s.counters.reload_failures)
        stats = s.batcher.stats
        cumulative, buckets = 0, []
        for bound, count in zip(BATCH_SIZE_BUCKETS, stats.bucket_counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", cumulative))
        yield HistogramMetricFamily("prognos_batch_size", "Windows per model call", buckets=buckets,
                                    sum_value=stats.windows)
        info = GaugeMetricFamily("prognos_model_info", "The loaded model (value 1)", labels=["version"])
        if s.model_version is not None:
            info.add_metric([s.model_version], 1)
        yield info
        yield GaugeMetricFamily("prognos_ready", "1 when a model is loaded and warm", value=int(s.ready))


class HttpMetrics:
    """Request counter and latency histogram by route template, method and status."""

    def __init__(self, service: PredictionService) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("prognos_http_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("prognos_http_request_duration_seconds", "HTTP request latency (s)",
                                 ["route", "method", "status"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.refused = Counter("prognos_http_refused", "HTTP requests refused: too many in flight",
                               registry=self.registry)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, cpu seconds, fds
        self.registry.register(ServiceCollector(service))
        self.loop_lag = LoopLag(self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method if method in METHODS else "other", str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
