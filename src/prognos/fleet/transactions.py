"""Write transactions of the fleet store: one committed transaction per write, retried when a
concurrent writer won a unique race, and group commit (many jobs, one transaction, one fsync)
for :mod:`prognos.fleet.committer`. Every store module builds on :class:`Transactions`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from prognos.errors import PrognosError
from prognos.fleet.database import Database

__all__ = ["Transactions"]

log = logging.getLogger("prognos.fleet")

T = TypeVar("T")


class Transactions:
    """Synchronous (call from a worker thread in async code); thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _write(self, fn: Callable[[Session], T], retries: int = 3) -> T:
        """Run ``fn`` in one write transaction; retry when a concurrent writer won a unique race."""
        for attempt in range(retries):
            try:
                with self.db.writing(), self.db.write_sessions.begin() as session:
                    return fn(session)
            except IntegrityError:
                if attempt == retries - 1:
                    raise
                log.debug("write conflict, retrying (attempt %d)", attempt + 1)
        raise AssertionError("unreachable")

    def run_group(self, jobs: Sequence[Callable[[Session], Any]]) -> list[Any]:
        """Group commit: run each job in its own SAVEPOINT of ONE transaction and commit once, so
        many concurrent requests share one fsync. A job that raises is rolled back alone; its
        exception is returned in its place (the others still commit). Raises only if the commit
        itself fails (then nothing of the group is stored)."""
        for attempt in range(3):
            try:
                return self._run_group(jobs)
            except OperationalError as exc:
                # PostgreSQL ends one of two groups that lock the same engines in opposite order
                # (deadlock_detected, 40P01); nothing of it was stored, so run it again.
                if getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001") or attempt == 2:
                    raise
                log.info("group commit aborted by %s; retrying", getattr(exc.orig, "sqlstate", None))
        raise AssertionError("unreachable")

    def _run_group(self, jobs: Sequence[Callable[[Session], Any]]) -> list[Any]:
        results: list[Any] = []
        with self.db.writing(), self.db.write_sessions.begin() as session:
            for job in jobs:
                for attempt in range(2):
                    try:
                        with session.begin_nested():
                            results.append(job(session))
                        break
                    except IntegrityError as exc:  # a writer in another process won a unique race
                        if attempt == 1:
                            results.append(exc)
                    except PrognosError as exc:
                        results.append(exc)
                        break
        return results
