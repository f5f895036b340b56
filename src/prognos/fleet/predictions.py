"""Predictions in the fleet store: new predictions, each engine's current state (denormalised for
the fleet page) and the alerts' verdicts in one transaction; an engine's prediction history.

A stored prediction keeps its own status (the one rule of :mod:`prognos.status`); the engine's
current status has hysteresis (:class:`prognos.status.HeldStatus`, ``status_hold_readings``),
settled under the engine's row lock, and its ``rul_low`` alert follows that held status."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, Table, bindparam, func, or_, select
from sqlalchemy.orm import Session

from prognos.fleet.alert_store import sync_engine_alerts
from prognos.fleet.engines import require_engine
from prognos.fleet.records import AlertChange, EngineScore, Page, PredictionRecord
from prognos.fleet.tables import EngineRow, PredictionRow, utcnow
from prognos.fleet.transactions import Transactions
from prognos.status import HEALTH_STATUSES, HeldStatus

__all__ = ["PredictionStore", "prediction_record"]

_ENGINES: Table = EngineRow.__table__  # type: ignore[assignment]
_PREDICTIONS: Table = PredictionRow.__table__  # type: ignore[assignment]
_SQL_INSERT_PREDICTION = _PREDICTIONS.insert()
_SQL_CURRENT_PREDICTION = _ENGINES.update().where(
    _ENGINES.c.id == bindparam("e"),
    or_(_ENGINES.c.predicted_cycle.is_(None), _ENGINES.c.predicted_cycle <= bindparam("cycle")),
).values(rul=bindparam("rul"), lower=bindparam("lower"), upper=bindparam("upper"), status=bindparam("status"),
         model_version=bindparam("model_version"), predicted_cycle=bindparam("cycle"), predicted_at=bindparam("now"),
         status_better_for=bindparam("better_for"), status_better_worst=bindparam("better_worst"))


_SQL_LOCK_ENGINE = select(_ENGINES.c.n_readings, _ENGINES.c.status, _ENGINES.c.status_better_for,
                          _ENGINES.c.status_better_worst).where(_ENGINES.c.id == bindparam("e")).with_for_update()


def _held(row: Row[Any, Any, Any, Any] | None, raw: str, hold: int) -> HeldStatus:
    """The engine's stored status after a prediction whose own status is ``raw``."""
    if row is None or row.status not in HEALTH_STATUSES:  # "unknown": the first prediction sets it
        return HeldStatus(raw)
    return HeldStatus(row.status, int(row.status_better_for or 0), row.status_better_worst).next(raw, hold)


def prediction_record(row: PredictionRow) -> PredictionRecord:
    return PredictionRecord(row.engine_id, row.cycle, row.rul, row.lower, row.upper, row.confidence, row.status,
                            row.model_version, row.created_at)


class PredictionStore(Transactions):
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
                # The engine's row lock orders every scorer of this engine, in any process: one
                # alert per condition, and only a prediction of the latest history is stored.
                locked = conn.execute(_SQL_LOCK_ENGINE, {"e": sc.engine_id}).first()
                version = None if locked is None else locked.n_readings
                if sc.basis is not None and version is not None and int(version) != sc.basis:
                    continue  # another writer committed readings since: its own scoring stores the newer one
                p = sc.prediction
                conditions = sc.conditions
                if p is not None:
                    held = _held(locked, p.status, sc.policy.hold if sc.policy else 1)
                    if sc.policy is not None and "rul_low" in conditions:
                        conditions = {**conditions, "rul_low": sc.policy.condition(p, held.status)}
                    conn.execute(_SQL_INSERT_PREDICTION, {
                        "engine_id": p.engine_id, "cycle": p.cycle, "rul": p.rul, "lower": p.lower, "upper": p.upper,
                        "confidence": p.confidence, "status": p.status, "model_version": p.model_version,
                        "created_at": now})
                    # Only a prediction at least as recent as the stored one becomes current
                    # (two concurrent ingests of one engine may finish out of order).
                    conn.execute(_SQL_CURRENT_PREDICTION, {
                        "e": p.engine_id, "cycle": p.cycle, "rul": p.rul, "lower": p.lower, "upper": p.upper,
                        "status": held.status, "model_version": p.model_version, "now": now,
                        "better_for": held.better_for, "better_worst": held.better_worst})
                changes.extend(sync_engine_alerts(s, sc, now, conditions))
            return changes

        return run

    def predictions(self, engine_id: str, *, limit: int = 500, offset: int = 0) -> Page:
        """An engine's prediction history, oldest cycle first."""
        with self.db.sessions() as s:
            require_engine(s, engine_id)
            total = s.scalar(select(func.count()).where(PredictionRow.engine_id == engine_id)) or 0
            rows = s.scalars(select(PredictionRow).where(PredictionRow.engine_id == engine_id)
                             .order_by(PredictionRow.cycle, PredictionRow.id).limit(limit).offset(offset)).all()
            return Page([prediction_record(r).to_dict() for r in rows], total, limit, offset)

    def latest_prediction(self, engine_id: str) -> PredictionRecord | None:
        with self.db.sessions() as s:
            row = s.scalars(select(PredictionRow).where(PredictionRow.engine_id == engine_id)
                            .order_by(PredictionRow.cycle.desc(), PredictionRow.id.desc()).limit(1)).first()
            return None if row is None else prediction_record(row)
