"""Who may call what: a small seam between the HTTP edge and whatever issues credentials.

``Authenticator.authenticate(token)`` turns a bearer token into a :class:`Principal` (or None).
This issue ships :class:`TokenAuthenticator` (the single ``PROGNOS_ADMIN_TOKEN``); the fleet app
adds API keys behind the same Protocol. Routes declare the least role they need with
``Depends(require(Role.OPERATOR))``: no or unknown token -> 401, too weak a role -> 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from fastapi import HTTPException, Request

__all__ = ["Authenticator", "Principal", "Role", "TokenAuthenticator", "bearer_token", "require"]


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


class Authenticator(Protocol):
    def authenticate(self, token: str | None) -> Principal | None:
        """The principal a bearer token stands for, or None when it is missing or unknown."""
        ...


class TokenAuthenticator:
    """One shared admin token. ``admin_token=None`` admits nobody (admin routes stay closed)."""

    def __init__(self, admin_token: str | None) -> None:
        self._token = admin_token.encode() if admin_token else None

    def authenticate(self, token: str | None) -> Principal | None:
        if self._token is None or not token:
            return None
        # Constant-time comparison: response timing must not reveal how much of a guess was right.
        if hmac.compare_digest(token.encode(), self._token):
            return Principal("admin", Role.ADMIN)
        return None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency admitting principals of at least ``role``. Async: FastAPI would run a
    plain function in a worker thread, which costs more than the check itself."""

    async def dependency(request: Request) -> Principal:
        authenticator: Authenticator = request.app.state.authenticator
        principal = authenticator.authenticate(bearer_token(request))
        if principal is None:
            raise HTTPException(401, "missing or unknown bearer token (Authorization: Bearer <token>)",
                                headers={"WWW-Authenticate": "Bearer"})
        if principal.role < role:
            raise HTTPException(403, f"{principal.name} has role {principal.role.name.lower()}; "
                                     f"this needs {role.name.lower()}")
        return principal

    dependency.__name__ = f"require_{role.name.lower()}"
    return dependency
