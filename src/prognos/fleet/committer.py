"""Group commit for the fleet's writes.

Every acknowledged reading must be on disk (one fsync per commit), and SQLite has one writer. One
transaction per request would cap ingestion at the disk's fsync rate; instead, concurrent requests
queue their writes here and ONE worker commits everything queued in ONE transaction (each request
in its own SAVEPOINT, so a conflict in one request rolls back only that request). Each caller is
answered after the commit that holds its rows. Under light load a group is a single request, so
nothing waits for company.

A commit the database refuses for its own state (down, read-only, disk full) fails every job of
the group with :class:`~prognos.errors.StorageUnavailableError` (503 + Retry-After): none of their
rows are stored, so each caller may resend. :attr:`GroupCommitter.failing` remembers that until a
commit succeeds again, and :meth:`GroupCommitter.storage_ready` (a ``/ready`` probe) says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from prognos.fleet.database import storage_unavailable
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
                 on_readings: Callable[[Sequence[ReadingBatch], list[StoredBatch]], None] | None = None,
                 min_free_bytes: int = 0) -> None:
        self.store = store
        self.on_readings = on_readings  # told of every committed readings job, in commit order
        self.max_group = max_group
        self.groups = 0  # commits made (for tests and metrics)
        self.jobs = 0
        self.readings_jobs = 0  # committed readings jobs, and the unix time (s) of the last (metrics)
        self.last_readings_at: float | None = None
        self.min_free_bytes = min_free_bytes
        self.failing: str | None = None  # why the last commit failed for the database's state, until one succeeds
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
                unavailable = storage_unavailable(exc)
                if unavailable is not None:
                    self.failing = str(unavailable)
                    log.warning("commit refused by the database: %s", unavailable)
                    exc = unavailable
                for j in group:
                    if not j.future.done():
                        j.future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            self.groups += 1
            self.jobs += len(group)
            self.failing = None
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

    async def storage_ready(self) -> str | None:
        """A readiness probe: None when writes can be stored, else why not. Healthy: one cheap
        read (is the database reachable?), and for SQLite enough free disk (``min_free_bytes``).
        After a refused commit: a real write that changes
        nothing, so ``/ready`` turns 200 as soon as the database takes writes again, without a
        restart and without waiting for a client to try."""
        free = await asyncio.to_thread(self.store.db.free_bytes)
        if free is not None and free < self.min_free_bytes:
            # A nearly full disk still takes a small write (SQLite reuses its WAL) but not the next
            # real batch: not ready until space is back.
            return (f"the fleet database's disk has {free / 2**20:.1f} MiB free (less than "
                    f"{self.min_free_bytes / 2**20:g})")
        try:
            if self.failing is None:
                await asyncio.to_thread(self.store.db.ping)
            else:
                await asyncio.to_thread(self.store.db.probe_write)
                self.failing = None
        except Exception as exc:
            unavailable = storage_unavailable(exc)
            if unavailable is None:
                raise
            self.failing = str(unavailable)
        return self.failing
