"""What the front ends (REST app, gRPC server, the process runner ``server``) accept
from the parts plugged in beside the prediction service — the fleet app, the lifecycle's
monitoring, an alias watcher. The composition root (``assembly``) builds one
:class:`ServerHooks` from them; the front ends never import those parts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from prognos.serving.http.auth import Authenticator

if TYPE_CHECKING:
    from prognos.serving.service import PredictionService

__all__ = ["ServerHooks"]


@dataclass(frozen=True)
class ServerHooks:
    """Routers, the authenticator (API keys; default: the admin token) and coroutines run after
    the model is ready and before the process exits (open/close the database, start/stop
    background jobs). ``configure_app`` is called with the FastAPI app (CORS, metrics collectors,
    readiness probes); ``ingestor`` is the gRPC ``IngestReadings`` back end (the fleet's)."""

    routers: Sequence[APIRouter] = ()
    authenticator: Authenticator | None = None
    on_startup: Sequence[Callable[[PredictionService], Awaitable[None]]] = ()
    on_shutdown: Sequence[Callable[[PredictionService], Awaitable[None]]] = ()
    configure_app: Sequence[Callable[[Any], None]] = ()
    ingestor: Any = None
