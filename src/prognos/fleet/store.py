"""The fleet store: engines, readings, predictions and alerts in a SQL database (SQLite or
PostgreSQL through SQLAlchemy). The one storage seam of the fleet app. Every write is a
transaction committed before the caller acknowledges anything; :meth:`FleetStore.run_group` lets
concurrent writes share one transaction (a savepoint each) — see :mod:`prognos.fleet.committer`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Select, Table, bindparam, case, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.errors import ConflictError, NotFoundError, PrognosError, ValidationError
from prognos.fleet.database import Database
from prognos.fleet.records import (
    AlertChange,
    AlertRecord,
    EngineRecord,
    EngineScore,
    History,
    Page,
    PredictionRecord,
    ReadingBatch,
    RetentionResult,
    StoredBatch,
)
from prognos.fleet.tables import ACTIVE_ALERT, AlertRow, EngineRow, PredictionRow, ReadingRow, utcnow

__all__ = ["ENGINE_SORTS", "SEVERITY_RANK", "FleetStore"]

log = logging.getLogger("prognos.fleet")

T = TypeVar("T")

_COLS = [getattr(ReadingRow, f) for f in MEASUREMENT_FIELDS]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

#: ``sort=`` values of the engine listing ("-" prefix = descending).
ENGINE_SORTS: dict[str, Any] = {
    "engine_id": EngineRow.id,
    "rul": EngineRow.rul,
    "lower": EngineRow.lower,
    "last_update": EngineRow.last_reading_at,
    "last_cycle": EngineRow.last_cycle,
    "status": EngineRow.status,
}


# Hot-path statements, built once: constructing SQLAlchemy statements per call costs more than
# running them (ingestion runs these for every request).
_ENGINES: Table = EngineRow.__table__  # type: ignore[assignment]
_READINGS: Table = ReadingRow.__table__  # type: ignore[assignment]
_PREDICTIONS: Table = PredictionRow.__table__  # type: ignore[assignment]
_SQL_LAST_CYCLE = select(_ENGINES.c.last_cycle).where(_ENGINES.c.id == bindparam("e"))
_SQL_NEW_ENGINE = _ENGINES.insert()
_SQL_EXISTING = select(_READINGS.c.cycle, *(_READINGS.c[f] for f in MEASUREMENT_FIELDS)).where(
    _READINGS.c.engine_id == bindparam("e"), _READINGS.c.cycle.between(bindparam("lo"), bindparam("hi")))
_SQL_INSERT_READINGS = _READINGS.insert()
_SQL_BUMP_ENGINE = _ENGINES.update().where(_ENGINES.c.id == bindparam("e")).values(
    n_readings=_ENGINES.c.n_readings + bindparam("n"), last_reading_at=bindparam("now"),
    last_cycle=case((_ENGINES.c.last_cycle.is_(None), bindparam("hi")),
                    (_ENGINES.c.last_cycle < bindparam("hi"), bindparam("hi")), else_=_ENGINES.c.last_cycle))
_SQL_INSERT_PREDICTION = _PREDICTIONS.insert()
_SQL_CURRENT_PREDICTION = _ENGINES.update().where(
    _ENGINES.c.id == bindparam("e"),
    or_(_ENGINES.c.predicted_cycle.is_(None), _ENGINES.c.predicted_cycle <= bindparam("cycle")),
).values(rul=bindparam("rul"), lower=bindparam("lower"), upper=bindparam("upper"), status=bindparam("status"),
         model_version=bindparam("model_version"), predicted_cycle=bindparam("cycle"), predicted_at=bindparam("now"))
_SQL_ACTIVE_ALERTS = select(AlertRow.__table__.c.id, AlertRow.__table__.c.kind, AlertRow.__table__.c.severity).where(
    AlertRow.__table__.c.engine_id == bindparam("e"), AlertRow.__table__.c.status.in_(ACTIVE_ALERT))


def _same(a: float, b: float | None) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return math.isnan(a)
    return a == b


def _engine(row: EngineRow) -> EngineRecord:
    return EngineRecord(row.id, dict(row.tags or {}), row.model_family, row.created_at, row.last_cycle,
                        row.last_reading_at, row.n_readings, row.rul, row.lower, row.upper, row.status,
                        row.model_version, row.predicted_cycle, row.predicted_at)


def _alert(row: AlertRow) -> AlertRecord:
    return AlertRecord(row.id, row.engine_id, row.kind, row.severity, row.status, row.message, dict(row.details or {}),
                       row.opened_at, row.updated_at, row.acknowledged_at, row.acknowledged_by, row.resolved_at,
                       row.resolved_by)


def _prediction(row: PredictionRow) -> PredictionRecord:
    return PredictionRecord(row.engine_id, row.cycle, row.rul, row.lower, row.upper, row.confidence, row.status,
                            row.model_version, row.created_at)


class FleetStore:
    """Typed operations over a migrated :class:`~prognos.fleet.database.Database`. Synchronous
    (call from a worker thread in async code); thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ plumbing
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

    # ------------------------------------------------------------------ engines
    def upsert_engine(self, engine_id: str, tags: dict[str, Any] | None = None,
                      model_family: str | None = None) -> EngineRecord:
        def run(s: Session) -> EngineRecord:
            row = s.get(EngineRow, engine_id)
            if row is None:
                row = EngineRow(id=engine_id, tags=tags or {}, model_family=model_family, n_readings=0,
                                status="unknown", created_at=utcnow())
                s.add(row)
            else:
                if tags is not None:
                    row.tags = tags
                if model_family is not None:
                    row.model_family = model_family
            s.flush()
            return _engine(row)

        return self._write(run)

    def get_engine(self, engine_id: str) -> EngineRecord:
        with self.db.sessions() as s:
            row = s.get(EngineRow, engine_id)
            if row is None:
                raise NotFoundError(f"engine {engine_id!r} not found")
            return _engine(row)

    def list_engines(self, *, status: str | None = None, q: str | None = None, sort: str = "engine_id",
                     limit: int = 100, offset: int = 0) -> Page:
        key = sort.lstrip("-")
        if key not in ENGINE_SORTS:
            raise ValidationError(f"sort: {sort!r} is not one of {', '.join(ENGINE_SORTS)} (prefix - to reverse)")
        col = ENGINE_SORTS[key]
        order = col.desc() if sort.startswith("-") else col.asc()
        stmt: Select[Any] = select(EngineRow)
        if status:
            stmt = stmt.where(EngineRow.status.in_([s.strip() for s in status.split(",")]))
        if q:
            pattern = f"%{q.lower()}%"
            stmt = stmt.where(or_(func.lower(EngineRow.id).like(pattern),
                                  func.lower(func.coalesce(EngineRow.model_family, "")).like(pattern)))
        with self.db.sessions() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(stmt.order_by(order.nulls_last(), EngineRow.id).limit(limit).offset(offset)).all()
            return Page([_engine(r).to_dict() for r in rows], total, limit, offset)

    # ------------------------------------------------------------------ readings
    def add_readings(self, batches: Sequence[ReadingBatch]) -> list[StoredBatch]:
        """Store every batch in ONE transaction (all or nothing).

        A reading whose (engine, cycle) is stored already with identical values is a duplicate
        (skipped, counted); with different values it is a conflict: :class:`ConflictError` naming
        the engine, cycle and field, and nothing of the call is stored.
        """
        return self._write(self.readings_job(batches))

    def readings_job(self, batches: Sequence[ReadingBatch]) -> Callable[[Session], list[StoredBatch]]:
        """:meth:`add_readings` as a job for :meth:`run_group`."""
        return lambda s: [self._add_batch(s, b) for b in batches]

    def _add_batch(self, s: Session, batch: ReadingBatch) -> StoredBatch:
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
        return StoredBatch(eid, len(fresh), duplicates, last, last_before)

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
        self.get_engine(engine_id)
        order = ReadingRow.cycle.desc() if descending else ReadingRow.cycle.asc()
        with self.db.sessions() as s:
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

    # ------------------------------------------------------------------ predictions + alerts
    def save_scores(self, scores: Sequence[EngineScore]) -> list[AlertChange]:
        """Store new predictions, update each engine's current state and apply the alert rules'
        verdicts, in one transaction. Returns the alert changes (for webhooks)."""
        return self._write(self.scores_job(scores))

    def scores_job(self, scores: Sequence[EngineScore]) -> Callable[[Session], list[AlertChange]]:
        """:meth:`save_scores` as a job for :meth:`run_group`."""

        def run(s: Session) -> list[AlertChange]:
            changes: list[AlertChange] = []
            now = utcnow()
            conn = s.connection()
            for sc in scores:
                p = sc.prediction
                if p is not None:
                    conn.execute(_SQL_INSERT_PREDICTION, {
                        "engine_id": p.engine_id, "cycle": p.cycle, "rul": p.rul, "lower": p.lower, "upper": p.upper,
                        "confidence": p.confidence, "status": p.status, "model_version": p.model_version,
                        "created_at": now})
                    # Only a prediction at least as recent as the stored one becomes current
                    # (two concurrent ingests of one engine may finish out of order).
                    conn.execute(_SQL_CURRENT_PREDICTION, {
                        "e": p.engine_id, "cycle": p.cycle, "rul": p.rul, "lower": p.lower, "upper": p.upper,
                        "status": p.status, "model_version": p.model_version, "now": now})
                changes.extend(self._sync_alerts(s, sc, now))
            return changes

        return run

    def _sync_alerts(self, s: Session, sc: EngineScore, now: datetime) -> list[AlertChange]:
        if not sc.conditions:
            return []
        # The common case — nothing active, nothing holds — costs one cheap query, no ORM objects.
        active_ids = {kind: i for i, kind, _ in s.connection().execute(_SQL_ACTIVE_ALERTS, {"e": sc.engine_id})}
        if not active_ids and all(c is None for c in sc.conditions.values()):
            return []
        changes = []
        for kind, cond in sc.conditions.items():
            row = s.get(AlertRow, active_ids[kind]) if kind in active_ids else None
            if cond is not None and row is None:
                row = AlertRow(engine_id=sc.engine_id, kind=kind, severity=cond.severity, status="open",
                               message=cond.message, details=cond.details, opened_at=now, updated_at=now)
                s.add(row)
                s.flush()
                changes.append(AlertChange("opened", _alert(row)))
            elif cond is not None and row is not None:
                if cond.severity != row.severity:
                    worse = SEVERITY_RANK.get(cond.severity, 0) > SEVERITY_RANK.get(row.severity, 0)
                    row.severity, row.message, row.details, row.updated_at = cond.severity, cond.message, \
                        cond.details, now
                    if worse:  # an acknowledged warning that turns critical needs eyes again
                        row.status = "open"
                    s.flush()
                    changes.append(AlertChange("escalated" if worse else "downgraded", _alert(row)))
            elif cond is None and row is not None:
                row.status, row.resolved_at, row.resolved_by, row.updated_at = "resolved", now, "auto", now
                s.flush()
                changes.append(AlertChange("resolved", _alert(row)))
        return changes

    def predictions(self, engine_id: str, *, limit: int = 500, offset: int = 0) -> Page:
        """An engine's prediction history, oldest cycle first."""
        self.get_engine(engine_id)
        with self.db.sessions() as s:
            total = s.scalar(select(func.count()).where(PredictionRow.engine_id == engine_id)) or 0
            rows = s.scalars(select(PredictionRow).where(PredictionRow.engine_id == engine_id)
                             .order_by(PredictionRow.cycle, PredictionRow.id).limit(limit).offset(offset)).all()
            return Page([_prediction(r).to_dict() for r in rows], total, limit, offset)

    def latest_prediction(self, engine_id: str) -> PredictionRecord | None:
        with self.db.sessions() as s:
            row = s.scalars(select(PredictionRow).where(PredictionRow.engine_id == engine_id)
                            .order_by(PredictionRow.cycle.desc(), PredictionRow.id.desc()).limit(1)).first()
            return None if row is None else _prediction(row)

    # ------------------------------------------------------------------ alerts
    def list_alerts(self, *, status: str | None = None, severity: str | None = None, engine_id: str | None = None,
                    kind: str | None = None, limit: int = 100, offset: int = 0) -> Page:
        stmt: Select[Any] = select(AlertRow)
        for col, val in ((AlertRow.status, status), (AlertRow.severity, severity), (AlertRow.engine_id, engine_id),
                         (AlertRow.kind, kind)):
            if val:
                stmt = stmt.where(col.in_([v.strip() for v in val.split(",")]))
        with self.db.sessions() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(stmt.order_by(AlertRow.opened_at.desc(), AlertRow.id.desc())
                             .limit(limit).offset(offset)).all()
            return Page([_alert(r).to_dict() for r in rows], total, limit, offset)

    def get_alert(self, alert_id: int) -> AlertRecord:
        with self.db.sessions() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise NotFoundError(f"alert {alert_id} not found")
            return _alert(row)

    def acknowledge_alert(self, alert_id: int, by: str) -> AlertRecord:
        """open -> acknowledged (acknowledging an acknowledged alert is a no-op)."""

        def run(s: Session) -> AlertRecord:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise NotFoundError(f"alert {alert_id} not found")
            if row.status == "resolved":
                raise ConflictError(f"alert {alert_id} is resolved; it cannot be acknowledged")
            if row.status == "open":
                now = utcnow()
                row.status, row.acknowledged_at, row.acknowledged_by, row.updated_at = "acknowledged", now, by, now
            s.flush()
            return _alert(row)

        return self._write(run)

    def resolve_alert(self, alert_id: int, by: str) -> AlertRecord:
        """open/acknowledged -> resolved (resolving a resolved alert is a no-op)."""

        def run(s: Session) -> AlertRecord:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise NotFoundError(f"alert {alert_id} not found")
            if row.status != "resolved":
                now = utcnow()
                row.status, row.resolved_at, row.resolved_by, row.updated_at = "resolved", now, by, now
            s.flush()
            return _alert(row)

        return self._write(run)

    # ------------------------------------------------------------------ retention
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
