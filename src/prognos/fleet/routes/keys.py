"""``/api/v1/keys`` (admin): create (the secret is in this one response only), list, revoke."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from prognos.data.validation import MAX_NAME_CHARS
from prognos.fleet.routes.deps import Admin, Id, fleet_router, json_response

if TYPE_CHECKING:
    from prognos.fleet.fleet import Fleet

__all__ = ["KeyCreate", "build_router"]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(pattern="^(viewer|operator|admin)$")
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_CHARS)


def build_router(fleet: Fleet) -> APIRouter:
    router = fleet_router("/api/v1/keys", "keys")
    keys = fleet.keys

    @router.get("")
    async def list_keys(_: Admin) -> Response:
        """Every key by id, name, role and prefix (never the secret)."""
        return json_response({"items": [k.to_dict() for k in await asyncio.to_thread(keys.list)]})

    @router.post("", status_code=201)
    async def create_key(body: KeyCreate, _: Admin) -> Response:
        """A new key; ``key`` in the response is the secret, shown this once."""
        created = await asyncio.to_thread(keys.create, body.role, body.name)
        return json_response(created.to_dict(), 201)

    @router.delete("/{key_id}")
    async def revoke_key(key_id: Id, _: Admin) -> Response:
        """Revoke a key (it stops working at once on this server)."""
        key = await asyncio.to_thread(keys.revoke, key_id)
        fleet.authenticator.forget()
        return json_response(key.to_dict())

    return router
