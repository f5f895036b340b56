"""Prometheus metrics of one app, in a registry of its own (never the process-global one, so
several apps — tests, SageMaker beside REST — do not collide).

HTTP request counts and latency come from the middleware; the service's counters (predictions,
cache, batches, queue, model) are read at scrape time by :class:`ServiceCollector`.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from prognos.serving.batcher import BATCH_SIZE_BUCKETS
from prognos.serving.service import PredictionService

__all__ = ["HttpMetrics", "ServiceCollector"]

# Seconds; dense below 20 ms where the latency targets live.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))


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

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)
