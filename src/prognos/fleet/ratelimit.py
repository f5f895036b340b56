"""Per-key token buckets; the class lives with the one access check (:mod:`prognos.serving.access`)
so that REST and gRPC limit callers alike."""

from __future__ import annotations

from prognos.serving.access import Decision, RateLimiter

__all__ = ["Decision", "RateLimiter"]
