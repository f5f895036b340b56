from __future__ import annotations

import pytest

from prognos.fleet.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refill_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.check("k").allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.check("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(0.5)  # 1 token at 2/s
    clock.t += 0.5
    assert limiter.check("k").allowed and not limiter.check("k").allowed
    clock.t += 100  # refills, but never beyond the burst
    assert [limiter.check("k").allowed for _ in range(4)] == [True, True, True, False]


def test_keys_have_separate_buckets_and_zero_disables() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.check("a").allowed and limiter.check("b").allowed and not limiter.check("a").allowed
    off = RateLimiter(0.0, 1, clock=Clock())
    assert all(off.check("a").allowed for _ in range(100))
