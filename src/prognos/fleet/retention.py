"""Retention: delete readings and predictions older than ``retention_days``, always keeping each
engine's latest window (what scoring reads), once (``prognos retention run``) or periodically
inside the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from prognos.fleet.records import RetentionResult
from prognos.fleet.tables import EngineRow, PredictionRow, ReadingRow, utcnow
from prognos.fleet.transactions import Transactions

__all__ = ["RetentionJob", "RetentionStore", "run_retention"]

log = logging.getLogger("prognos.fleet")


class RetentionStore(Transactions):
    """The deletion itself (mixed into the fleet store)."""

    def delete_older_than(self, cutoff: datetime, keep_latest: int) -> RetentionResult:
        """Delete readings and predictions received/made before ``cutoff``, except each engine's
        latest ``keep_latest`` readings and latest ``keep_latest`` predictions (what scoring needs)."""

        def run(s: Session) -> RetentionResult:
            n_read = n_pred = 0
            for eid in s.scalars(select(EngineRow.id)).all():
                keep_cycle = s.scalar(select(ReadingRow.cycle).where(ReadingRow.engine_id == eid)
                                      .order_by(ReadingRow.cycle.desc()).offset(keep_latest - 1).limit(1))
                if keep_cycle is not None:
                    n_read += s.execute(delete(ReadingRow).where(
                        ReadingRow.engine_id == eid, ReadingRow.received_at < cutoff, ReadingRow.cycle < keep_cycle,
                    )).rowcount or 0  # type: ignore[attr-defined]
                keep_id = s.scalar(select(PredictionRow.id).where(PredictionRow.engine_id == eid)
                                   .order_by(PredictionRow.id.desc()).offset(keep_latest - 1).limit(1))
                if keep_id is not None:
                    n_pred += s.execute(delete(PredictionRow).where(
                        PredictionRow.engine_id == eid, PredictionRow.created_at < cutoff, PredictionRow.id < keep_id,
                    )).rowcount or 0  # type: ignore[attr-defined]
            return RetentionResult(cutoff, n_read, n_pred)

        return self._write(run)


def run_retention(store: RetentionStore, days: float, keep_latest: int) -> RetentionResult:
    """Delete what is older than ``days`` (days) beyond each engine's latest ``keep_latest`` rows."""
    return store.delete_older_than(utcnow() - timedelta(days=days), keep_latest)


class RetentionJob:
    """Runs :func:`run_retention` every ``interval_s`` seconds (s) in the server's event loop."""

    def __init__(self, store: RetentionStore, days: float, keep_latest: int | Callable[[], int], interval_s: float,
                 should_run: Callable[[], bool] | None = None) -> None:
        # ``keep_latest`` may be a callable: the window to keep follows the model loaded at run time.
        self.store, self.days, self.keep_latest, self.interval_s = store, days, keep_latest, interval_s
        self.runs: list[RetentionResult] = []
        self._task: asyncio.Task[None] | None = None
        # Several servers on one database: only the one this says yes to runs (fleet/leader.py).
        self.should_run = should_run

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="prognos-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                if self.should_run is not None and not await asyncio.to_thread(self.should_run):
                    await asyncio.sleep(self.interval_s)
                    continue
                keep = self.keep_latest() if callable(self.keep_latest) else self.keep_latest
                result = await asyncio.to_thread(run_retention, self.store, self.days, keep)
                self.runs.append(result)
                log.info("retention: deleted %d readings, %d predictions older than %s", result.readings_deleted,
                         result.predictions_deleted, result.cutoff.isoformat())
            except Exception as exc:  # a failed run must not end the schedule
                log.exception("retention run failed: %s", exc)
            await asyncio.sleep(self.interval_s)
