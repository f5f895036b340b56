"""Assembling the fleet app: one :class:`Fleet` holds the database, store, ingestor, alert rules,
notifier, authenticator and routers; the server plugs it in through :func:`server_hooks`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI

from prognos.config import Settings
from prognos.fleet.alerts import AlertRules
from prognos.fleet.auth import ApiKeyAuthenticator
from prognos.fleet.database import Database, connect, upgrade
from prognos.fleet.ingest import Ingestor
from prognos.fleet.keys import KeyStore
from prognos.fleet.notify import FakeNotifier, Notifier, WebhookNotifier
from prognos.fleet.ratelimit import RateLimiter
from prognos.fleet.retention import RetentionJob
from prognos.fleet.store import FleetStore
from prognos.serving.service import PredictionService

__all__ = ["Fleet", "build_fleet", "open_store", "server_hooks"]

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

    @property
    def db(self) -> Database:
        return self.store.db

    def bind(self, service: PredictionService) -> None:
        """Score with ``service`` from now on (the server creates it after the fleet)."""
        self.ingestor.service = service

    def install(self, app: FastAPI) -> None:
        """Put the fleet on ``app``: ``app.state.fleet`` and CORS for ``settings.cors_origins``."""
        from starlette.middleware.cors import CORSMiddleware

        app.state.fleet = self
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
        self.db.dispose()


def build_fleet(settings: Settings, service: PredictionService | None = None, *, notifier: Notifier | None = None,
                store: FleetStore | None = None) -> Fleet:
    """Open (and migrate) the database of ``settings`` and wire every part of the fleet app."""
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
    retention = None
    if settings.retention_days is not None:
        retention = RetentionJob(store, settings.retention_days, ingestor.history_length,
                                 settings.retention_interval_s)
    fleet = Fleet(settings, store, keys, ingestor, rules, notifier, authenticator, retention=retention)
    from prognos.fleet.routes import build_routers

    fleet.routers = build_routers(fleet)
    return fleet


def server_hooks(settings: Settings) -> Any:
    """The :class:`prognos.server.ServerHooks` that make ``prognos serve`` serve the fleet app too."""
    from prognos.server import ServerHooks

    fleet = build_fleet(settings)

    async def on_startup(service: PredictionService) -> None:
        fleet.bind(service)
        await fleet.start()

    async def on_shutdown(service: PredictionService) -> None:
        await fleet.stop()

    configure: Callable[[FastAPI], None] = fleet.install
    from prognos.web import build_router as build_web_router  # the dashboard, served beside its API

    return ServerHooks(routers=[*fleet.routers, build_web_router(settings)], authenticator=fleet.authenticator,
                       on_startup=[on_startup],
                       on_shutdown=[on_shutdown], configure_app=[configure], ingestor=fleet.ingestor)
