"""The fleet REST API (``/api/v1``): one module per resource, assembled by :func:`build_routers`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter

from prognos.fleet.routes import alerts, engines, keys, plan, readings

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["build_routers"]


def build_routers(fleet: Fleet) -> list[APIRouter]:
    return [m.build_router(fleet) for m in (engines, readings, alerts, keys, plan)]
