"""Each engine's latest readings in memory, so scoring after an ingest need not read them back.

The database stays the source of truth: the cache is filled from it on a miss and then kept up to
date from the commits themselves (in commit order). A fill that raced with a commit for the same
engine is dropped (a per-engine commit counter tells), so the cache never holds an older view than
the database. Bounded: at most ``max_engines`` engines (least recently used go).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from prognos.fleet.records import History, ReadingBatch, StoredBatch

__all__ = ["WindowCache"]


class WindowCache:
    def __init__(self, rows: int, max_engines: int = 5000) -> None:
        self.rows = rows
        self.max_engines = max_engines
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[str, History] = OrderedDict()
        self._commits: dict[str, int] = {}
        self._versions: dict[str, int] = {}  # engine -> version of the cached history (see committed)
        self._lock = threading.Lock()

    def resize(self, rows: int) -> None:
        """A model with another window needs another history length: start over."""
        with self._lock:
            if rows != self.rows:
                self.rows = rows
                self._data.clear()
                self._versions.clear()

    def generation(self, engine_id: str) -> int:
        with self._lock:
            return self._commits.get(engine_id, 0)

    def get(self, engine_id: str) -> History | None:
        with self._lock:
            h = self._data.get(engine_id)
            if h is None:
                self.misses += 1
                return None
            self.hits += 1
            self._data.move_to_end(engine_id)
            return h

    def version(self, engine_id: str) -> int | None:
        """The version (``StoredBatch.version``) of the cached history of ``engine_id``, if known."""
        with self._lock:
            return self._versions.get(engine_id)

    def fill(self, h: History, generation: int, version: int | None = None) -> None:
        """Cache ``h`` (read from the database) unless a commit touched its engine since
        ``generation`` was taken. ``version``: read before ``h`` (so ``h`` is at least that new)."""
        with self._lock:
            if self._commits.get(h.engine_id, 0) != generation or len(h) > self.rows:
                self._versions.pop(h.engine_id, None)
                return
            self._put(h)
            if version is None:
                self._versions.pop(h.engine_id, None)
            else:
                self._versions[h.engine_id] = version

    def committed(self, batches: Sequence[ReadingBatch], stored: Sequence[StoredBatch]) -> None:
        """Fold committed batches in (call in commit order). ``stored`` says what the database held
        before each batch: if that is not what the cache holds, another process wrote to this
        engine, and the entry is dropped (read again on next use)."""
        with self._lock:
            for b, st in zip(batches, stored, strict=True):
                self._commits[b.engine_id] = self._commits.get(b.engine_id, 0) + 1
                old = self._data.get(b.engine_id)
                if old is None:
                    continue
                cached_last = int(old.cycles[-1]) if len(old) else None
                cached_version = self._versions.get(b.engine_id)
                if st.version is not None and cached_version is not None:
                    # Several writer processes (gateways on one PostgreSQL): the cache is current
                    # only if nobody else committed readings of this engine since it was filled.
                    stale = cached_version != st.version - st.accepted
                else:
                    stale = cached_last != st.previous_last_cycle
                if stale:
                    del self._data[b.engine_id]
                    self._versions.pop(b.engine_id, None)
                else:
                    self._put(_merge(old, b, self.rows))
                    if st.version is not None:
                        self._versions[b.engine_id] = st.version

    def _put(self, h: History) -> None:
        self._data[h.engine_id] = h
        self._data.move_to_end(h.engine_id)
        while len(self._data) > self.max_engines:
            self._versions.pop(next(iter(self._data)), None)
            self._data.popitem(last=False)


def _merge(old: History, b: ReadingBatch, rows: int) -> History:
    """The latest ``rows`` readings of both, by cycle (a resent cycle is identical: keep one)."""
    if len(old) and b.cycles[0] > old.cycles[-1]:  # the usual case: new cycles after the old
        cycles = np.concatenate([old.cycles, b.cycles])
        values = np.concatenate([old.values, b.values])
    else:
        cycles, first = np.unique(np.concatenate([b.cycles, old.cycles]), return_index=True)
        values = np.concatenate([b.values, old.values])[first]
    return History(old.engine_id, cycles[-rows:], values[-rows:])
