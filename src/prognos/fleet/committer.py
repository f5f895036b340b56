"""Group commit for the fleet's writes.

Every acknowledged reading must be on disk (one fsync per commit), and SQLite has one writer. One
transaction per request would cap ingestion at the disk's fsync rate; instead, concurrent requests
queue their writes here and ONE worker commits everything queued in ONE transaction (each request
in its own SAVEPOINT, so a conflict in one request rolls back only that request). Each caller is
answered after the commit that holds its rows. Under light load a group is a single request, so
nothing waits for company.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from prognos.fleet.records import AlertChange, EngineScore, ReadingBatch, StoredBatch
from prognos.fleet.store import FleetStore

__all__ = ["GroupCommitter"]

log = logging.getLogger("prognos.fleet")


@dataclass
class _Job:
    run: Callable[[Session], Any]
    future: asyncio.Future[Any]
    batches: Sequence[ReadingBatch] | None = None  # a readings job's input


class GroupCommitter:
    def __init__(self, store: FleetStore, max_group: int = 128,
                 on_readings: Callable[[Sequence[ReadingBatch], list[StoredBatch]], None] | None = None) -> None:
        self.store = store
        self.on_readings = on_readings  # told of every committed readings job, in commit order
        self.max_group = max_group
        self.groups = 0  # commits made (for tests and metrics)
        self.jobs = 0
        self.readings_jobs = 0  # committed readings jobs, and the unix time (s) of the last (metrics)
        self.last_readings_at: float | None = None
        self._pending: list[_Job] = []
        self._worker: asyncio.Task[None] | None = None

    async def add_readings(self, batches: Sequence[ReadingBatch]) -> list[StoredBatch]:
        result: list[StoredBatch] = await self._submit(self.store.readings_job(batches), batches)
        return result

    async def save_scores(self, scores: Sequence[EngineScore]) -> list[AlertChange]:
        result: list[AlertChange] = await self._submit(self.store.scores_job(scores))
        return result

    async def _submit(self, run: Callable[[Session], Any], batches: Sequence[ReadingBatch] | None = None) -> Any:
        loop = asyncio.get_running_loop()
        job = _Job(run, loop.create_future(), batches)
        self._pending.append(job)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(), name="prognos-group-commit")
        return await job.future

    async def _drain(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:self.max_group], self._pending[self.max_group:]
            try:
                results = await asyncio.to_thread(self.store.run_group, [j.run for j in group])
            except BaseException as exc:  # the commit failed: nobody's rows are stored
                for j in group:
                    if not j.future.done():
                        j.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            self.groups += 1
            self.jobs += len(group)
            for j, r in zip(group, results, strict=True):
                if j.batches is not None and not isinstance(r, Exception):
                    self.readings_jobs += 1
                    self.last_readings_at = time.time()  # unix s, for the ingestion-stalled alert
                    if self.on_readings is not None:
                        self.on_readings(j.batches, r)
                if j.future.done():  # the caller was cancelled (client went away); its rows stand
                    continue
                if isinstance(r, Exception):
                    j.future.set_exception(r)
                else:
                    j.future.set_result(r)
