"""The prediction cache: LRU with a time-to-live, keyed on the whole input sequence and the model.

The feature pipeline smooths over every reading of a request, so the key must cover the whole
validated sequence, not only the newest reading: two requests that end on the same reading but
carry different history are different inputs. The model version is part of the key, so a hot
swap never serves a stale prediction.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["CacheStats", "PredictionCache", "window_key"]


def window_key(model_version: str, values: np.ndarray) -> bytes:
    """A 16-byte digest of the model version, the sequence's shape and every value (NaN included)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(model_version.encode())
    h.update(np.asarray(values.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return h.digest()


@dataclass(frozen=True)
class CacheStats:
    size: int
    hits: int
    misses: int


class PredictionCache:
    """Raw model outputs (RUL in cycles) by :func:`window_key`; at most ``max_size`` entries, each
    valid for ``ttl_s`` seconds. ``max_size=0`` disables it. Single event-loop use (not thread-safe).
    """

    def __init__(self, max_size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size, self.ttl_s, self._clock = max_size, ttl_s, clock
        self._items: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key -> (expires_at, rul)
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> float | None:
        if self.max_size == 0:
            return None
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        expires, rul = item
        if expires <= self._clock():
            del self._items[key]
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return rul

    def put(self, key: bytes, rul: float) -> None:
        if self.max_size == 0:
            return
        self._items[key] = (self._clock() + self.ttl_s, rul)
        self._items.move_to_end(key)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> CacheStats:
        return CacheStats(len(self._items), self.hits, self.misses)
