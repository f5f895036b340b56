"""The fleet app as one object: :class:`Fleet` holds the database, store, ingestor, alert rules,
notifier, authenticator and routers. :func:`build_fleet` wires them around a prediction seam
(:class:`prognos.serving.ports.Predictions`) given by the composition root, ``prognos.assembly``,
which also plugs the fleet into the front ends. The fleet implements
:class:`prognos.lifecycle.ports.FleetPort` for the lifecycle's monitoring."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI

from prognos.config import Settings
from prognos.fleet.alerts import AlertRules
from prognos.fleet.auth import ApiKeyAuthenticator
from prognos.fleet.database import Database, connect, upgrade
from prognos.fleet.ingest import Ingestor
from prognos.fleet.keys import KeyStore
from prognos.fleet.leader import Leadership
from prognos.fleet.notify import FakeNotifier, Notifier, WebhookNotifier
from prognos.fleet.ratelimit import RateLimiter
from prognos.fleet.records import AlertCondition
from prognos.fleet.retention import RetentionJob
from prognos.fleet.store import FleetStore
from prognos.lifecycle.ports import GroundTruth, ModelAlert
from prognos.serving.ports import Predictions

__all__ = ["Fleet", "build_fleet", "open_store"]

log = logging.getLogger("prognos.fleet")


def open_store(settings: Settings, *, migrate: bool = True) -> FleetStore:
    """Connect to ``settings.sqlalchemy_url`` and (by default) bring the schema to the latest migration."""
    db = connect(settings.sqlalchemy_url)
    if migrate:
        upgrade(db)
    return FleetStore(db)


@dataclass
class Fleet:
    settings: Settings
    store: FleetStore
    keys: KeyStore
    ingestor: Ingestor
    rules: AlertRules
    notifier: Notifier
    authenticator: ApiKeyAuthenticator
    routers: list[APIRouter] = field(default_factory=list)
    retention: RetentionJob | None = None
    leader: Leadership | None = None  # several servers on one PostgreSQL: who runs scheduled jobs

    def runs_scheduled_jobs(self) -> bool:
        """True in exactly one server process per database (retention, the drift alert)."""
        return self.leader is None or self.leader.is_leader()

    @property
    def db(self) -> Database:
        return self.store.db

    # ---- prognos.lifecycle.ports.FleetPort: what the lifecycle's monitoring may do to the fleet
    @property
    def ground_truth(self) -> GroundTruth:
        return self.store

    async def raise_model_alert(self, alert: ModelAlert) -> None:
        """Open / escalate / downgrade the alert of ``alert.kind`` on its model version; notify."""
        condition = AlertCondition(alert.severity, alert.message, alert.details)
        changes = await asyncio.to_thread(self.store.set_model_alert, alert.model_version, alert.kind, condition)
        for change in changes:  # on the event loop: the notifier's queue is not thread-safe
            self.notifier.notify(change)

    async def resolve_model_alert(self, model_version: str, kind: str) -> None:
        """Auto-resolve the active alert of ``kind`` on ``model_version`` (if any); notify."""
        for change in await asyncio.to_thread(self.store.set_model_alert, model_version, kind, None):
            self.notifier.notify(change)

    def install(self, app: FastAPI) -> None:
        """Put the fleet on ``app``: ``app.state.fleet`` and CORS for ``settings.cors_origins``."""
        from starlette.middleware.cors import CORSMiddleware

        app.state.fleet = self
        # /ready turns 503 while the database cannot store writes (prognos.serving.http.routes.health).
        app.state.readiness_probes.append(self.ingestor.writer.storage_ready)
        metrics = getattr(app.state, "metrics", None)
        if metrics is not None:
            from prognos.fleet.metrics import FleetCollector

            metrics.registry.register(FleetCollector(self))
        if self.settings.cors_origins:
            app.add_middleware(CORSMiddleware, allow_origins=self.settings.cors_origins,  # type: ignore[arg-type]
                               allow_methods=["GET", "POST", "PUT", "DELETE"],
                               allow_headers=["Authorization", "Content-Type"], max_age=600)

    async def start(self) -> None:
        await self.notifier.start()
        if self.retention is not None:
            self.retention.start()

    async def stop(self) -> None:
        if self.retention is not None:
            await self.retention.stop()
        await self.notifier.stop()
        if self.leader is not None:
            self.leader.release()
        self.db.dispose()


def build_fleet(settings: Settings, service: Predictions | None = None, *, notifier: Notifier | None = None,
                store: FleetStore | None = None) -> Fleet:
    """Open (and migrate) the database of ``settings`` and wire every part of the fleet app to
    score with ``service`` (None: store readings without predicting)."""
    store = store or open_store(settings)
    keys = KeyStore(store)
    rules = AlertRules(settings)
    if notifier is None:
        notifier = (WebhookNotifier(settings.webhook_urls, max_attempts=settings.webhook_max_attempts,
                                    backoff_s=settings.webhook_backoff_s, timeout_s=settings.webhook_timeout_s)
                    if settings.webhook_urls else FakeNotifier())
    limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    authenticator = ApiKeyAuthenticator(keys, admin_token=settings.admin_token, limiter=limiter)
    ingestor = Ingestor(settings, store, service, notifier, rules)
    leader = Leadership(store.db.engine)
    retention = None
    if settings.retention_days is not None:
        retention = RetentionJob(store, settings.retention_days, ingestor.history_length,
                                 settings.retention_interval_s, should_run=leader.is_leader)
    fleet = Fleet(settings, store, keys, ingestor, rules, notifier, authenticator, retention=retention, leader=leader)
    from prognos.fleet.routes import build_routers

    fleet.routers = build_routers(fleet)
    return fleet

