"""The composition root of ``prognos serve``: which parts make up the serving process.

One place decides it: the prediction service (always), the fleet app (storage, ingestion, alerts,
API keys, dashboard) and the lifecycle jobs (drift capture and monitor, ground truth, shadow canary)
except in SageMaker mode, and a registry or MLflow model followed by alias when ``--model`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from prognos.config import Settings
from prognos.errors import ConfigError
from prognos.server import ServerHooks

__all__ = ["ServingPlan", "plan_serving"]


@dataclass(frozen=True)
class ServingPlan:
    settings: Settings  # with ``bundle`` resolved when a model reference was followed
    hooks: ServerHooks


def plan_serving(settings: Settings, model: str | None = None) -> ServingPlan:
    if model is not None and settings.bundle is not None:
        raise ConfigError("pass --bundle or --model, not both")
    if settings.sagemaker:
        hooks = ServerHooks()
    else:
        from prognos.fleet import server_hooks
        from prognos.lifecycle.monitoring import lifecycle_hooks

        hooks = lifecycle_hooks(settings, server_hooks(settings))
    if model is not None:
        from prognos.lifecycle.watcher import follow_model

        followed = follow_model(settings, model, hooks)
        settings, hooks = followed.settings, followed.hooks
    return ServingPlan(settings, hooks)
