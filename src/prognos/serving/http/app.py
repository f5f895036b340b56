"""Assembles the FastAPI app; no module-level app or settings, so every test builds its own."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from prognos import __version__
from prognos.config import Settings
from prognos.serving.access import Access, RateLimiter
from prognos.serving.http.auth import Authenticator
from prognos.serving.http.errors import install_error_handlers
from prognos.serving.http.metrics import HttpMetrics
from prognos.serving.http.middleware import BodyLimits, InFlight, RequestMiddleware
from prognos.serving.http.openapi import document_errors
from prognos.serving.http.routes import health, metrics, models, predict
from prognos.serving.logs import RequestLogger
from prognos.serving.service import PredictionService

__all__ = ["create_app"]


def create_app(settings: Settings, service: PredictionService, authenticator: Authenticator,
               extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The REST API over ``service``. ``extra_routers`` (the fleet app's) are mounted as given and
    share the error mapping, metrics, request logs, edge limits and ``app.state`` (service,
    settings, authenticator, access). ``app.state.readiness_probes`` holds coroutines that
    ``/ready`` awaits (each returns None when fine, else why not; the fleet adds its storage)."""
    # No /docs or /redoc: FastAPI's pages load Swagger UI / ReDoc from a CDN, which a server that
    # sends no CSP must not hand to a browser. The document itself is /openapi.json.
    app = FastAPI(title="prognos inference service", version=__version__, docs_url=None, redoc_url=None,
                  description="Remaining-useful-life predictions with calibrated intervals.")
    app.state.settings = settings
    app.state.service = service
    app.state.authenticator = authenticator
    app.state.access = Access(authenticator, RateLimiter(settings.anonymous_rate_limit_per_s,
                                                         settings.anonymous_rate_limit_burst),
                              RateLimiter(settings.auth_failure_rate_limit_per_s,
                                          settings.auth_failure_rate_limit_burst))
    app.state.readiness_probes = []
    app.state.metrics = HttpMetrics(service)
    install_error_handlers(app)
    for router in (predict.router, health.router, models.router, metrics.router, *extra_routers):
        app.include_router(router)
    document_errors(app, extra={("POST", p): {200} for p in ("/api/v1/engines/{engine_id}/readings",
                                                           "/api/v1/engines/{engine_id}/readings/upload",
                                                           "/api/v1/readings/upload")})
    limits = BodyLimits(max_body=int(settings.http_max_body_mb * 2**20),
                        max_upload=int(settings.http_max_upload_mb * 2**20), timeout_s=settings.http_body_timeout_s)
    app.state.in_flight = InFlight(settings.http_max_in_flight, settings.http_max_in_flight_per_client)
    app.add_middleware(RequestMiddleware, metrics=app.state.metrics,  # type: ignore[arg-type]
                       log=RequestLogger(settings.log_sample_rate), limits=limits, routes=app.router.routes,
                       in_flight=app.state.in_flight)
    return app
