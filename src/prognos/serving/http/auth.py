"""The HTTP side of the one access check (:mod:`prognos.serving.access`).

Routes declare the least role they need with ``Depends(require(Role.OPERATOR))``; the predict
routes call :func:`optional_key` (an optional key, rate-limited per key or per client address).
No or unknown key -> 401, too weak a role -> 403, over the rate -> 429 (all mapped in
:mod:`prognos.serving.http.errors`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from prognos.serving.access import Access, Authenticator, Principal, Role, TokenAuthenticator, parse_bearer

__all__ = ["Authenticator", "Principal", "Role", "TokenAuthenticator", "bearer_token", "optional_key", "require"]


def bearer_token(request: Request) -> str | None:
    return parse_bearer(request.headers.get("authorization"))


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def optional_key(request: Request) -> Principal | None:
    """The predict routes' rule: a valid key or none (then limited by client address)."""
    access: Access = request.app.state.access
    return access.check(bearer_token(request), _client(request), None)


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency admitting principals of at least ``role``. Async: FastAPI would run a
    plain function in a worker thread, which costs more than the check itself."""

    async def dependency(request: Request) -> Principal:
        access: Access = request.app.state.access
        principal = access.check(bearer_token(request), _client(request), role)
        assert principal is not None  # check() raises rather than admit nobody to a role
        return principal

    dependency.__name__ = f"require_{role.name.lower()}"
    return dependency
