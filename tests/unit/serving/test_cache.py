from __future__ import annotations

import numpy as np

from prognos.serving.cache import PredictionCache, window_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_key_covers_the_whole_history_and_the_model_version() -> None:
    seq = np.arange(24 * 5, dtype=float).reshape(5, 24)
    other_history = seq.copy()
    other_history[0, 3] += 1e-9  # same newest reading, different oldest one
    assert window_key("v1", seq) == window_key("v1", seq.copy())
    assert window_key("v1", seq) != window_key("v1", other_history)
    assert window_key("v1", seq) != window_key("v2", seq)
    assert window_key("v1", seq) != window_key("v1", seq[1:])  # a shorter request is another input


def test_nan_for_absent_fields_hashes_consistently() -> None:
    seq = np.full((3, 24), np.nan)
    seq[:, 5] = 1.0
    assert window_key("v", seq) == window_key("v", seq.copy())


def test_lru_evicts_the_least_recently_used() -> None:
    cache = PredictionCache(max_size=2, ttl_s=60)
    cache.put(b"a", 1.0)
    cache.put(b"b", 2.0)
    assert cache.get(b"a") == 1.0  # a is now the most recent
    cache.put(b"c", 3.0)
    assert cache.get(b"b") is None
    assert cache.get(b"a") == 1.0
    assert cache.get(b"c") == 3.0
    assert len(cache) == 2


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = PredictionCache(max_size=10, ttl_s=5, clock=clock)
    cache.put(b"k", 42.0)
    clock.now = 4.9
    assert cache.get(b"k") == 42.0
    clock.now = 5.0
    assert cache.get(b"k") is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_size_zero_disables_the_cache() -> None:
    cache = PredictionCache(max_size=0, ttl_s=5)
    cache.put(b"k", 1.0)
    assert cache.get(b"k") is None
    assert len(cache) == 0
