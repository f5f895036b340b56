"""FastAPI dependencies: the service, settings and request log context, taken from ``app.state``
(set by :func:`~prognos.serving.http.app.create_app`, so tests can build an app per case).

They are ``async`` on purpose: FastAPI runs plain-function dependencies in a worker thread, and that
hand-over costs more than the whole lookup."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from prognos.config import Settings
from prognos.serving.service import PredictionService

__all__ = ["ServiceDep", "SettingsDep", "get_service", "get_settings_dep", "log_context"]


async def get_service(request: Request) -> PredictionService:
    service: PredictionService = request.app.state.service
    return service


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def log_context(request: Request, **ids: Any) -> None:
    """Identifiers (engine id, model version) for the request's log line; never payloads."""
    request.state.log_ids = ids


ServiceDep = Annotated[PredictionService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
