"""Retention: delete readings and predictions older than ``retention_days``, always keeping each
engine's latest window (what scoring reads), once (``prognos retention run``) or periodically
inside the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from prognos.fleet.records import RetentionResult
from prognos.fleet.store import FleetStore
from prognos.fleet.tables import utcnow

__all__ = ["RetentionJob", "run_retention"]

log = logging.getLogger("prognos.fleet")


def run_retention(store: FleetStore, days: float, keep_latest: int) -> RetentionResult:
    """Delete what is older than ``days`` (days) beyond each engine's latest ``keep_latest`` rows."""
    return store.delete_older_than(utcnow() - timedelta(days=days), keep_latest)


class RetentionJob:
    """Runs :func:`run_retention` every ``interval_s`` seconds (s) in the server's event loop."""

    def __init__(self, store: FleetStore, days: float, keep_latest: int | Callable[[], int], interval_s: float
                 ) -> None:
        # ``keep_latest`` may be a callable: the window to keep follows the model loaded at run time.
        self.store, self.days, self.keep_latest, self.interval_s = store, days, keep_latest, interval_s
        self.runs: list[RetentionResult] = []
        self._task: asyncio.Task[None] | None = None

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
                keep = self.keep_latest() if callable(self.keep_latest) else self.keep_latest
                result = await asyncio.to_thread(run_retention, self.store, self.days, keep)
                self.runs.append(result)
                log.info("retention: deleted %d readings, %d predictions older than %s", result.readings_deleted,
                         result.predictions_deleted, result.cutoff.isoformat())
            except Exception as exc:  # a failed run must not end the schedule
                log.exception("retention run failed: %s", exc)
            await asyncio.sleep(self.interval_s)
