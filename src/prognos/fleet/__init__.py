"""The fleet application: storage, telemetry ingestion, live predictions, alerts, API keys and
retention, served beside the prediction API by ``prognos serve``.

Layers: ``tables``/``database`` (schema, connection, Alembic migrations in ``migrations/``) ->
``store`` (typed operations, one transaction per write) -> ``ingest`` (validate, store, score),
``alerts`` (rules), ``notify`` (webhooks), ``keys``/``auth``/``ratelimit`` (access control),
``retention`` -> ``routes`` (REST) -> ``fleet`` (the app as one object). ``prognos.assembly``
builds it around a prediction service and plugs it into the front ends.
"""

from __future__ import annotations

from prognos.fleet.fleet import Fleet, build_fleet, open_store
from prognos.fleet.ingest import Ingestor
from prognos.fleet.notify import FakeNotifier, Notifier, WebhookNotifier

__all__ = ["FakeNotifier", "Fleet", "Ingestor", "Notifier", "WebhookNotifier", "build_fleet", "open_store"]
