"""API-key authentication for the whole app (serving + fleet), behind the serving layer's
:class:`~prognos.serving.http.auth.Authenticator` Protocol.

``Authorization: Bearer <key>`` -> the key's :class:`Principal` (viewer / operator / admin). The
settings' ``admin_token`` stays valid as an admin key. Each principal has a token bucket; a
request over its rate raises :class:`~prognos.errors.RateLimitedError` (HTTP 429 + Retry-After;
gRPC RESOURCE_EXHAUSTED), on every protocol. While the database is down a key that is not in the
cache cannot be checked: :class:`~prognos.errors.StorageUnavailableError` (503), never a 500.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable

from prognos.fleet.database import storage_unavailable
from prognos.fleet.keys import KeyStore, hash_key
from prognos.serving.access import Principal, RateLimiter, Role, rate_limited

__all__ = ["ApiKeyAuthenticator"]

_ROLES = {"viewer": Role.VIEWER, "operator": Role.OPERATOR, "admin": Role.ADMIN}


class ApiKeyAuthenticator:
    """Looks keys up by hash, caching answers for ``cache_ttl_s`` seconds so a busy client costs
    no database round trip per request; a key revoked in another process stops working within
    that time (at once when revoked through this object's :meth:`forget`)."""

    def __init__(self, keys: KeyStore, *, admin_token: str | None = None, limiter: RateLimiter | None = None,
                 cache_ttl_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys
        self._admin = admin_token.encode() if admin_token else None
        self.limiter = limiter
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str | None) -> Principal | None:
        if not token:
            return None
        principal = self._principal(token)
        if principal is not None and self.limiter is not None:
            decision = self.limiter.check(principal.name)
            if not decision.allowed:
                raise rate_limited(self.limiter, principal.name, decision)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def _principal(self, token: str) -> Principal | None:
        # Constant-time comparison: response timing must not reveal how much of a guess was right.
        if self._admin is not None and hmac.compare_digest(token.encode(), self._admin):
            return Principal("admin-token", Role.ADMIN)
        digest = hash_key(token)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[1] < self.cache_ttl_s:
            return hit[0]
        try:
            key = self.keys.lookup(token)
        except Exception as exc:
            unavailable = storage_unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from None
        principal = None if key is None else Principal(f"key:{key.prefix}", _ROLES[key.role])
        with self._lock:
            if len(self._cache) > 10_000:  # guessed tokens must not grow memory without bound
                self._cache.clear()
            self._cache[digest] = (principal, now)
        return principal
