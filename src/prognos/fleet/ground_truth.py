"""Ground truth and shadow pairs in the fleet database: the fleet's side of
:class:`prognos.lifecycle.ports.GroundTruth` (tables ``failures`` and ``shadow_predictions``,
migration 0002). The lifecycle computes with what these return; it never sees SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from prognos.errors import ConflictError, NotFoundError
from prognos.fleet.tables import EngineRow, FailureRow, PredictionRow, ShadowPredictionRow, utcnow
from prognos.fleet.transactions import Transactions
from prognos.lifecycle.ports import (
    FailureRecord,
    RealisedPrediction,
    ShadowOutcome,
    ShadowPair,
    StoredFailure,
)

__all__ = ["GroundTruthStore"]


def _failure(row: FailureRow) -> FailureRecord:
    return FailureRecord(row.engine_id, row.cycle, row.recorded_at, row.recorded_by)


class GroundTruthStore(Transactions):
    """Implements :class:`prognos.lifecycle.ports.GroundTruth` (mixed into the fleet store)."""

    def engine_last_cycle(self, engine_id: str) -> int | None:
        with self.db.sessions() as s:
            row = s.get(EngineRow, engine_id)
            if row is None:
                raise NotFoundError(f"engine {engine_id!r} not found")
            return row.last_cycle

    def store_failure(self, engine_id: str, cycle: int, by: str) -> StoredFailure:
        def run(s: Session) -> StoredFailure:
            row = s.get(FailureRow, engine_id)
            if row is None:
                row = FailureRow(engine_id=engine_id, cycle=cycle, recorded_at=utcnow(), recorded_by=by)
                s.add(row)
                s.flush()
                return StoredFailure(_failure(row), True)
            if row.cycle != cycle:
                raise ConflictError(f"engine {engine_id!r}: a failure at cycle {row.cycle} is already recorded "
                                    f"(by {row.recorded_by}); it cannot change to {cycle}")
            return StoredFailure(_failure(row), False)

        # Recorded concurrently by another request: the retry finds it there and judges against it.
        return self._write(run, retries=2)

    def count_failures(self) -> int:
        with self.db.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(FailureRow)) or 0)

    def realised_predictions(self, engine_ids: Sequence[str] | None = None) -> list[RealisedPrediction]:
        stmt = (select(PredictionRow.engine_id, PredictionRow.model_version, PredictionRow.rul,
                       FailureRow.cycle - PredictionRow.cycle)
                .join(FailureRow, FailureRow.engine_id == PredictionRow.engine_id)
                .where(PredictionRow.cycle <= FailureRow.cycle))
        if engine_ids is not None:
            stmt = stmt.where(PredictionRow.engine_id.in_(list(engine_ids)))
        with self.db.sessions() as s:
            return [RealisedPrediction(e, v, float(r), float(t)) for e, v, r, t in s.execute(stmt).all()]

    def save_shadow_pairs(self, pairs: Sequence[ShadowPair]) -> int:
        if not pairs:
            return 0
        now = utcnow()
        rows = [dict(asdict(p), created_at=now) for p in pairs]
        self._write(lambda s: s.execute(insert(ShadowPredictionRow), rows))
        return len(rows)

    def prune_shadow_pairs(self, max_rows: int) -> int:
        def run(s: Session) -> int:
            cutoff = s.scalar(select(ShadowPredictionRow.id).order_by(ShadowPredictionRow.id.desc())
                              .offset(max_rows).limit(1))
            if cutoff is None:
                return 0
            result = s.execute(delete(ShadowPredictionRow).where(ShadowPredictionRow.id <= cutoff))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

        return self._write(run)

    def shadow_pair_counts(self) -> dict[tuple[str, str], int]:
        with self.db.sessions() as s:
            rows = s.execute(
                select(ShadowPredictionRow.production_version, ShadowPredictionRow.candidate_version, func.count())
                .group_by(ShadowPredictionRow.production_version, ShadowPredictionRow.candidate_version)
            ).all()
        return {(pv, cv): int(n) for pv, cv, n in rows}

    def shadow_outcomes(self) -> list[ShadowOutcome]:
        with self.db.sessions() as s:
            rows = s.execute(
                select(ShadowPredictionRow.production_version, ShadowPredictionRow.candidate_version,
                       ShadowPredictionRow.production_rul, ShadowPredictionRow.candidate_rul,
                       FailureRow.cycle - ShadowPredictionRow.cycle)
                .join(FailureRow, FailureRow.engine_id == ShadowPredictionRow.engine_id)
                .where(ShadowPredictionRow.cycle.is_not(None), ShadowPredictionRow.cycle <= FailureRow.cycle)
            ).all()
        return [ShadowOutcome(pv, cv, float(p), float(c), float(t)) for pv, cv, p, c, t in rows]
