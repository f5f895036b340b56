"""Readings in the fleet store: idempotent storage by (engine, cycle), an engine's latest
history for scoring, and the paged listing. The hot path (:meth:`ReadingStore.readings_job`)
runs prebuilt statements: building SQLAlchemy statements per call costs more than running them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, case, func, select
from sqlalchemy.orm import Session

from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.errors import ConflictError
from prognos.fleet.engines import require_engine
from prognos.fleet.records import History, Page, ReadingBatch, StoredBatch
from prognos.fleet.tables import EngineRow, ReadingRow, utcnow
from prognos.fleet.transactions import Transactions

__all__ = ["ReadingStore"]

_COLS = [getattr(ReadingRow, f) for f in MEASUREMENT_FIELDS]
_ENGINES: Table = EngineRow.__table__  # type: ignore[assignment]
_READINGS: Table = ReadingRow.__table__  # type: ignore[assignment]
# FOR UPDATE (PostgreSQL; SQLite has one writer anyway): writers of one engine in several
# processes take turns, so the count read here is exact and becomes the batch's version.
_SQL_LAST_CYCLE = select(_ENGINES.c.last_cycle, _ENGINES.c.n_readings).where(
    _ENGINES.c.id == bindparam("e")).with_for_update()
_SQL_VERSIONS = select(_ENGINES.c.id, _ENGINES.c.n_readings).where(_ENGINES.c.id.in_(bindparam("ids", expanding=True)))
_SQL_NEW_ENGINE = _ENGINES.insert()
_SQL_EXISTING = select(_READINGS.c.cycle, *(_READINGS.c[f] for f in MEASUREMENT_FIELDS)).where(
    _READINGS.c.engine_id == bindparam("e"), _READINGS.c.cycle.between(bindparam("lo"), bindparam("hi")))
_SQL_INSERT_READINGS = _READINGS.insert()
_SQL_BUMP_ENGINE = _ENGINES.update().where(_ENGINES.c.id == bindparam("e")).values(
    n_readings=_ENGINES.c.n_readings + bindparam("n"), last_reading_at=bindparam("now"),
    last_cycle=case((_ENGINES.c.last_cycle.is_(None), bindparam("hi")),
                    (_ENGINES.c.last_cycle < bindparam("hi"), bindparam("hi")), else_=_ENGINES.c.last_cycle))


def _same(a: float, b: float | None) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return math.isnan(a)
    return a == b


def _add_batch(s: Session, batch: ReadingBatch) -> StoredBatch:
    now = utcnow()
    conn = s.connection()
    eid = batch.engine_id
    lo, hi = int(batch.cycles[0]), int(batch.cycles[-1])
    previous = conn.execute(_SQL_LAST_CYCLE, {"e": eid}).first()
    if previous is None:
        # A new engine. Two processes may race to create it: the loser's unique violation
        # rolls back its savepoint and run_group retries it, finding the engine.
        conn.execute(_SQL_NEW_ENGINE, {"id": eid, "tags": {}, "n_readings": 0, "status": "unknown",
                                       "created_at": now})
        existing: dict[int, Sequence[Any]] = {}
    else:
        existing = {row[0]: row[1:] for row in conn.execute(_SQL_EXISTING, {"e": eid, "lo": lo, "hi": hi})}
    last_before = None if previous is None else previous[0]
    fresh: list[dict[str, Any]] = []
    duplicates = 0
    for cycle, values in zip(batch.cycles.tolist(), batch.values.tolist(), strict=True):
        old = existing.get(cycle)
        if old is None:
            rec: dict[str, Any] = {"engine_id": eid, "cycle": cycle, "received_at": now}
            rec.update({f: (None if math.isnan(v) else v) for f, v in zip(MEASUREMENT_FIELDS, values, strict=True)})
            fresh.append(rec)
            continue
        for name, new, was in zip(MEASUREMENT_FIELDS, values, old, strict=True):
            if not _same(new, was):
                raise ConflictError(
                    f"engine {eid!r} cycle {cycle}: {name}={new:g} conflicts with the stored "
                    f"{name}={was if was is not None else 'missing'}; a resend must be identical"
                )
        duplicates += 1
    if fresh:
        conn.execute(_SQL_INSERT_READINGS, fresh)
        conn.execute(_SQL_BUMP_ENGINE, {"e": eid, "n": len(fresh), "now": now, "hi": hi})
    last = hi if last_before is None else max(hi, last_before)
    version = (0 if previous is None else int(previous[1] or 0)) + len(fresh)
    return StoredBatch(eid, len(fresh), duplicates, last, last_before, version)


class ReadingStore(Transactions):
    def add_readings(self, batches: Sequence[ReadingBatch]) -> list[StoredBatch]:
        """Store every batch in ONE transaction (all or nothing).

        A reading whose (engine, cycle) is stored already with identical values is a duplicate
        (skipped, counted); with different values it is a conflict: :class:`ConflictError` naming
        the engine, cycle and field, and nothing of the call is stored.
        """
        return self._write(self.readings_job(batches))

    def readings_job(self, batches: Sequence[ReadingBatch]) -> Callable[[Session], list[StoredBatch]]:
        """:meth:`add_readings` as a job for :meth:`run_group`."""
        return lambda s: [_add_batch(s, b) for b in batches]

    def versions(self, engine_ids: Sequence[str]) -> dict[str, int]:
        """Each engine's history version (its reading count). Read it BEFORE the history: the
        history is then at least as new as the version says, never older."""
        with self.db.sessions() as s:
            return {e: int(v or 0) for e, v in s.connection().execute(_SQL_VERSIONS, {"ids": list(engine_ids)})}

    def history(self, engine_ids: Sequence[str], n: int) -> list[History]:
        """Each engine's latest ``n`` readings, oldest first."""
        out = []
        with self.db.sessions() as s:
            for eid in engine_ids:
                rows = s.execute(
                    select(ReadingRow.cycle, *_COLS).where(ReadingRow.engine_id == eid)
                    .order_by(ReadingRow.cycle.desc()).limit(n)
                ).all()[::-1]
                cycles = np.array([r[0] for r in rows], dtype=np.int64)
                values = np.array([[np.nan if v is None else v for v in r[1:]] for r in rows], dtype=np.float64)
                out.append(History(eid, cycles, values.reshape(len(rows), len(MEASUREMENT_FIELDS))))
        return out

    def readings(self, engine_id: str, *, limit: int = 100, offset: int = 0, descending: bool = False) -> Page:
        order = ReadingRow.cycle.desc() if descending else ReadingRow.cycle.asc()
        with self.db.sessions() as s:
            require_engine(s, engine_id)
            total = s.scalar(select(func.count()).where(ReadingRow.engine_id == engine_id)) or 0
            rows = s.execute(
                select(ReadingRow.cycle, ReadingRow.received_at, *_COLS).where(ReadingRow.engine_id == engine_id)
                .order_by(order).limit(limit).offset(offset)
            ).all()
        items = []
        for r in rows:
            item: dict[str, Any] = {"cycle": r[0], "received_at": r[1].isoformat().replace("+00:00", "Z")}
            item.update({f: v for f, v in zip(MEASUREMENT_FIELDS, r[2:], strict=True) if v is not None})
            items.append(item)
        return Page(items, total, limit, offset)
