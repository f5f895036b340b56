from __future__ import annotations

import numpy as np

from prognos.fleet.records import History, ReadingBatch, StoredBatch
from prognos.fleet.windows import WindowCache


def rows(engine: str, cycles: list[int]) -> ReadingBatch:
    c = np.array(cycles, dtype=np.int64)
    return ReadingBatch(engine, c, np.repeat(c[:, None].astype(float), 24, axis=1))


def as_history(b: ReadingBatch) -> History:
    return History(b.engine_id, b.cycles, b.values)


def stored(b: ReadingBatch, previous_last: int | None) -> list[StoredBatch]:
    return [StoredBatch(b.engine_id, len(b), 0, int(b.cycles[-1]), previous_last)]


def test_commits_fold_into_cached_engines_keeping_the_latest_rows_by_cycle() -> None:
    cache = WindowCache(rows=5)
    assert cache.get("e") is None
    cache.fill(as_history(rows("e", [1, 2, 3])), cache.generation("e"))
    b = rows("e", [4, 5, 6])
    cache.committed([b], stored(b, 3))
    h = cache.get("e")
    assert h is not None and h.cycles.tolist() == [2, 3, 4, 5, 6] and h.values[:, 0].tolist() == [2, 3, 4, 5, 6]
    b = rows("e", [1, 5, 7])
    cache.committed([b], stored(b, 6))  # a late cycle 1 is older than the window; 5 is a resend
    h = cache.get("e")
    assert h is not None and h.cycles.tolist() == [3, 4, 5, 6, 7] and h.values[:, 0].tolist() == [3, 4, 5, 6, 7]


def test_a_fill_that_raced_with_a_commit_is_dropped() -> None:
    cache = WindowCache(rows=5)
    before = cache.generation("e")
    b = rows("e", [4])
    cache.committed([b], stored(b, 3))  # committed while the reader was reading cycles 1-3
    cache.fill(as_history(rows("e", [1, 2, 3])), before)
    assert cache.get("e") is None  # next time it is read again, with cycle 4


def test_bounded_lru_and_resize() -> None:
    cache = WindowCache(rows=3, max_engines=2)
    for e in ("a", "b", "c"):
        cache.fill(as_history(rows(e, [1])), cache.generation(e))
    assert cache.get("a") is None and cache.get("b") is not None and cache.get("c") is not None
    cache.resize(10)
    assert cache.get("b") is None


def test_an_entry_another_process_wrote_past_is_dropped() -> None:
    cache = WindowCache(rows=5)
    cache.fill(as_history(rows("e", [1, 2, 3])), cache.generation("e"))
    b = rows("e", [6])
    cache.committed([b], stored(b, 5))  # the database had cycles 4-5 from elsewhere
    assert cache.get("e") is None
