"""Prometheus gauges of the fleet app, read at scrape time: ingestion progress, the state
directory's disk, the SQLite file and the retention schedule. Registered on the app's metrics
registry by :meth:`prognos.fleet.fleet.Fleet.install` (the alert rules in deploy/prometheus use them)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["FleetCollector"]


class FleetCollector(Collector):
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        writer = self.fleet.ingestor.writer
        yield CounterMetricFamily("prognos_ingest_commits", "Readings jobs committed to the fleet database",
                                  value=writer.readings_jobs)
        last = GaugeMetricFamily("prognos_ingest_last_commit_timestamp_seconds",
                                 "Unix time (s) of the last committed readings; absent before the first")
        if writer.last_readings_at is not None:
            last.add_metric([], writer.last_readings_at)
        yield last
        data_dir = self.fleet.settings.data_dir
        if data_dir.exists():
            usage = shutil.disk_usage(data_dir)
            yield GaugeMetricFamily("prognos_data_dir_free_bytes", "Free bytes on the state directory's filesystem",
                                    value=usage.free)
            yield GaugeMetricFamily("prognos_data_dir_size_bytes", "Size in bytes of the state directory's filesystem",
                                    value=usage.total)
        url = self.fleet.settings.sqlalchemy_url
        db = GaugeMetricFamily("prognos_database_bytes", "SQLite database size in bytes (with its WAL); "
                               "absent for other databases")
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            db.add_metric([], sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p)))
        yield db
        job = self.fleet.retention
        yield GaugeMetricFamily("prognos_retention_enabled", "1 when the server runs retention",
                                value=int(job is not None))
        if job is not None:
            yield GaugeMetricFamily("prognos_retention_interval_seconds", "Seconds between retention runs",
                                    value=job.interval_s)
            yield CounterMetricFamily("prognos_retention_runs", "Completed retention runs", value=len(job.runs))
            last_run = GaugeMetricFamily("prognos_retention_last_run_timestamp_seconds",
                                         "Unix time (s) of the last completed retention run")
            if job.runs:  # a run deletes what is older than (its time - days): its time is cutoff + days
                last_run.add_metric([], job.runs[-1].cutoff.timestamp() + job.days * 86400)
            yield last_run
