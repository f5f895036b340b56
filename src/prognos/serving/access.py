"""Who may call what, for every front end (REST, gRPC; MQTT by its own credentials): the one access
check.

``Authorization: Bearer <key>`` (an HTTP header, or gRPC metadata ``authorization``) names a
:class:`Principal` through an :class:`Authenticator` (the admin token here; API keys in the fleet
app). :meth:`Access.check` then applies the rule of the operation:

* an operation that reads fleet data or writes needs a key of at least its :class:`Role`
  (no or unknown key -> :class:`~prognos.errors.UnauthenticatedError`, too weak a role ->
  :class:`~prognos.errors.PermissionDeniedError`);
* predictions take an optional key: a valid key is rate-limited per key, an anonymous caller per
  client address (``anonymous_rate_limit_per_s``); a key that is given but unknown is refused, so a
  typo never silently downgrades a client to the anonymous limit.

Over its rate a caller gets :class:`~prognos.errors.RateLimitedError` (HTTP 429 / gRPC
RESOURCE_EXHAUSTED) whose ``retry_after_s`` is the whole number of seconds its message and the
``Retry-After`` header both state.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from prognos.errors import PermissionDeniedError, RateLimitedError, UnauthenticatedError

__all__ = ["Access", "Authenticator", "Decision", "Principal", "RateLimiter", "Role", "TokenAuthenticator",
           "parse_bearer", "rate_limited"]


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
    """One shared admin token. ``admin_token=None`` admits nobody (admin operations stay closed)."""

    def __init__(self, admin_token: str | None) -> None:
        self._token = admin_token.encode() if admin_token else None

    def authenticate(self, token: str | None) -> Principal | None:
        if self._token is None or not token:
            return None
        # Constant-time comparison: response timing must not reveal how much of a guess was right.
        if hmac.compare_digest(token.encode(), self._token):
            return Principal("admin", Role.ADMIN)
        return None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float  # 0 when allowed


class RateLimiter:
    """Token buckets per key: ``rate_per_s`` requests per second (s) on average, bursts up to
    ``burst``; ``rate_per_s=0`` admits everything. At most ``max_keys`` buckets are kept (the
    oldest dropped first), so callers with fresh addresses cannot grow memory without bound."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, key: str) -> Decision:
        """Take one token for ``key`` if there is one."""
        if self.rate <= 0:
            return Decision(True, 0.0)
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if len(self._buckets) >= self.max_keys:
                del self._buckets[next(iter(self._buckets))]
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return Decision(True, 0.0)
            self._buckets[key] = (tokens, now)
            return Decision(False, (1.0 - tokens) / self.rate)


def rate_limited(limiter: RateLimiter, who: str, decision: Decision) -> RateLimitedError:
    """The 429 for ``who``: the message and ``Retry-After`` state the same whole seconds."""
    wait_s = max(1, math.ceil(decision.retry_after_s))
    return RateLimitedError(f"rate limit of {limiter.rate:g} requests/s for {who} exceeded; retry after {wait_s} s",
                            retry_after_s=wait_s)


def parse_bearer(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value (None for other schemes)."""
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Access:
    """The one access check, shared by REST and gRPC (see the module docstring)."""

    def __init__(self, authenticator: Authenticator, anonymous: RateLimiter | None = None,
                 failures: RateLimiter | None = None) -> None:
        self.authenticator = authenticator
        self.anonymous = anonymous
        self.failures = failures  # 401s per client address: guessing keys is rate-limited too

    def check(self, token: str | None, client: str | None, need: Role | None) -> Principal | None:
        """``need=None``: an optional key (predictions); else the least role the operation needs."""
        principal = self.authenticator.authenticate(token) if token else None  # may raise RateLimitedError
        if principal is None:
            if token or need is not None:
                if self.failures is not None:
                    decision = self.failures.check(client or "unknown")
                    if not decision.allowed:
                        raise rate_limited(self.failures, f"failed authentications from {client or 'unknown'}",
                                           decision)
                raise UnauthenticatedError("missing or unknown API key (send Authorization: Bearer <key>)"
                                           if need is not None or not token else
                                           "unknown API key (send a valid key, or none to be limited by address)")
            if self.anonymous is not None:
                who = f"anonymous client {client or 'unknown'}"
                decision = self.anonymous.check(client or "unknown")
                if not decision.allowed:
                    raise rate_limited(self.anonymous, who, decision)
            return None
        if need is not None and principal.role < need:
            raise PermissionDeniedError(f"{principal.name} has role {principal.role.name.lower()}; this needs "
                                        f"{need.name.lower()}")
        return principal
