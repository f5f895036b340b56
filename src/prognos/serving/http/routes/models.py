"""``/api/v1/models``: the loaded manifest, and the admin-only hot swap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from prognos.serving.http.auth import Principal, Role, require
from prognos.serving.http.deps import ServiceDep, log_context
from prognos.serving.http.routing import PrognosRoute
from prognos.serving.http.schemas import ReloadRequest, ReloadResponse

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/models", tags=["models"], route_class=PrognosRoute)

Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


@router.get("")
async def loaded_model(service: ServiceDep) -> dict[str, Any]:
    """The loaded bundle's manifest (version, inputs, window, calibration, validation metrics).
    Open to anyone, so ``bundle`` is the bundle's directory name, never its filesystem path."""
    return {"bundle": None if service.bundle_path is None else service.bundle_path.name,
            "manifest": service.manifest.model_dump()}


@router.post("/reload", response_model=ReloadResponse,
             responses={401: {"description": "no or unknown token"}, 403: {"description": "not an admin"},
                        409: {"description": "bundle refused (missing, tampered, incompatible); old model serves"}})
async def reload_model(admin: Admin, request: Request, service: ServiceDep,
                       body: ReloadRequest | None = None) -> ReloadResponse:
    """Load, verify and warm up a bundle, then swap it in atomically (admin only)."""
    previous = service.model_version
    log_context(request, model_version=previous, principal=admin.name)
    manifest = await service.reload(Path(body.bundle) if body and body.bundle else None)
    return ReloadResponse(model_version=manifest.version, previous_version=previous, bundle=str(service.bundle_path))
