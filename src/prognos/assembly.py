"""The composition root: the only module that decides what a ``prognos serve`` process is made of.

It builds, in this order, and passes each part to the next (nothing is wired late)::

    settings (a --model reference resolved to a local bundle)
      -> prediction service          prognos.serving.service.PredictionService (always)
      -> fleet app (optional)        prognos.fleet.build_fleet(settings, service)
      -> lifecycle hooks (optional)  prognos.lifecycle.monitoring.lifecycle_hooks(..., service, fleet)
      -> front ends                  prognos.server.run: REST (uvicorn) + gRPC around the service

The fleet and the lifecycle are left out in SageMaker mode (the container contract only).
Nothing below this module imports it, ``prognos.server`` or ``prognos.web``.

Roles (``role=``): ``all`` is one process doing everything (the default). ``inference`` is the
model tier: the prediction service on gRPC (prognos.v1 + grpc.health.v1) and HTTP (health, ready,
metrics, predict), a followed registry alias, no fleet, no database. ``gateway`` is the API tier:
the fleet app built with ``build_fleet(settings, pool)`` where ``pool`` is
:class:`prognos.serving.pool.InferencePool` (round robin over the inference replicas, health
checks, deadlines, one retry on another replica) instead of the local service; it loads no model.
See docs/scaling.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prognos.config import Settings
from prognos.errors import ConfigError
from prognos.serving.hooks import ServerHooks
from prognos.serving.service import PredictionService

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["ROLES", "ServingApp", "build_app", "fleet_hooks", "merge_hooks", "run"]

#: ``prognos serve --role``: one process, the model tier, the API tier.
ROLES = ("all", "inference", "gateway")


@dataclass(frozen=True)
class ServingApp:
    """Everything one serving process runs; :func:`run` starts it."""

    settings: Settings  # with ``bundle`` resolved when a model reference was followed
    service: PredictionService
    hooks: ServerHooks
    fleet: Fleet | None = None
    role: str = "all"


def merge_hooks(*parts: ServerHooks) -> ServerHooks:
    """One :class:`ServerHooks` of ``parts``: routers and start-up in order, shutdown in reverse
    (what started last stops first); the last authenticator and ingestor given win."""
    authenticator = next((p.authenticator for p in reversed(parts) if p.authenticator is not None), None)
    ingestor = next((p.ingestor for p in reversed(parts) if p.ingestor is not None), None)
    return ServerHooks(routers=[r for p in parts for r in p.routers], authenticator=authenticator,
                       on_startup=[h for p in parts for h in p.on_startup],
                       on_shutdown=[h for p in reversed(parts) for h in p.on_shutdown],
                       configure_app=[c for p in parts for c in p.configure_app], ingestor=ingestor)


def fleet_hooks(settings: Settings, fleet: Fleet) -> ServerHooks:
    """The fleet app on the front ends: its API routers and the dashboard beside them, API-key
    authentication, gRPC ingestion, and the database and background jobs opened and closed with
    the process."""
    from prognos.fleet.leader import SqliteWriterLock, hold_sqlite_writer
    from prognos.web import build_router as build_web_router

    writer: list[SqliteWriterLock] = []

    async def on_startup(_: PredictionService) -> None:
        lock = hold_sqlite_writer(settings.sqlalchemy_url)  # one server per SQLite file: a second one stops here
        if lock is not None:
            writer.append(lock)
        await fleet.start()

    async def on_shutdown(_: PredictionService) -> None:
        await fleet.stop()
        while writer:
            writer.pop().release()

    return ServerHooks(routers=[*fleet.routers, build_web_router(settings)], authenticator=fleet.authenticator,
                       on_startup=[on_startup], on_shutdown=[on_shutdown], configure_app=[fleet.install],
                       ingestor=fleet.ingestor)


def build_app(settings: Settings, *, role: str = "all", model: str | None = None,
              inference: str | Sequence[str] = (), mqtt: bool = False) -> ServingApp:
    """Compose a serving process. ``model`` (instead of ``settings.bundle``): a registry alias,
    version or ``models:/`` URI, followed when it is an alias. ``inference``: the inference
    replicas' gRPC addresses, ``host:port`` items or one ``a,b`` string (role ``gateway``)."""
    if role not in ROLES:
        raise ConfigError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if inference and role != "gateway":
        raise ConfigError("--inference is only for --role gateway")
    if model is not None and settings.bundle is not None:
        raise ConfigError("pass --bundle or --model, not both")
    if role == "gateway":
        return _gateway(settings, inference, model, mqtt)

    # 1. settings: a model reference becomes a verified local bundle (and, for an alias, a watcher)
    follow = ServerHooks()
    if model is not None:
        from prognos.lifecycle.watcher import follow_model

        followed = follow_model(settings, model, ServerHooks())
        settings, follow = followed.settings, followed.hooks
    # 2. the prediction service (its model is loaded by the front ends, once they listen)
    service = PredictionService(settings)
    if settings.sagemaker or role == "inference":  # the model tier: stateless, no database
        return ServingApp(settings, service, follow, None, role)
    # 3. the fleet app, scoring through the service
    from prognos.fleet import build_fleet

    fleet = build_fleet(settings, service)
    # 4. the lifecycle: drift, ground truth and canary, given the service and the fleet
    from prognos.lifecycle.monitoring import lifecycle_hooks

    lifecycle = lifecycle_hooks(settings, ServerHooks(), service=service, fleet=fleet)
    # 5. the front ends get everything as hooks (and an MQTT subscriber feeding the same ingestor)
    hooks = merge_hooks(fleet_hooks(settings, fleet), lifecycle, follow, *_mqtt(settings, fleet, mqtt))
    return ServingApp(settings, service, hooks, fleet, role)


def _mqtt(settings: Settings, fleet: Fleet, enabled: bool) -> list[ServerHooks]:
    if not enabled:
        return []
    from prognos.fleet.mqtt import mqtt_hooks

    return [mqtt_hooks(settings, fleet.ingestor)]


def _gateway(settings: Settings, inference: str | Sequence[str], model: str | None, mqtt: bool) -> ServingApp:
    """The API tier: the fleet app (REST, gRPC front, dashboard, auth, database) scoring through
    a pool of inference replicas (:mod:`prognos.serving.pool`), plus ``GET /api/v1/inference``."""
    if model is not None or settings.bundle is not None:
        raise ConfigError("--role gateway loads no model: give --bundle/--model to the inference replicas")
    from prognos.fleet import build_fleet
    from prognos.serving.pool import InferencePool, pool_router

    pool = InferencePool(settings, inference or None)  # None: settings.inference_addresses
    fleet = build_fleet(settings, pool)
    pool_hooks = ServerHooks(routers=[pool_router(pool)])
    hooks = merge_hooks(fleet_hooks(settings, fleet), pool_hooks, *_mqtt(settings, fleet, mqtt))
    return ServingApp(settings, pool, hooks, fleet, "gateway")


def run(app: ServingApp) -> None:
    """Run the process until SIGTERM / SIGINT (see :mod:`prognos.server`)."""
    from prognos.server import run as run_front_ends

    run_front_ends(app.settings, app.service, app.hooks)
