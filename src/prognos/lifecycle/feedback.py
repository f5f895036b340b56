"""Ground truth: an engine's recorded failure turns its stored predictions into realised errors.

An operator records the cycle at which an engine failed (``POST /api/v1/engines/{id}/failure`` or
``prognos failure ID --cycle N``; both call :func:`record_failure`). Every prediction stored for that
engine at cycle ``p`` then has a true RUL of ``N - p`` cycles, and :func:`model_performance` reports,
per model version, the live RMSE, MAE and PHM08 score of those predictions — against the truth
capped like the model's labels (``min(N - p, cap)``: the figure comparable with validation
metrics) and against the raw truth. Shadow-canary pairs (:mod:`prognos.lifecycle.canary`) are
judged the same way, so the candidate and production versions are compared on the same requests.

Times are UTC; RUL, errors and caps in cycles; the PHM08 score is dimensionless (lower is better).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from prognos.errors import ConflictError, ValidationError
from prognos.fleet.records import iso
from prognos.fleet.store import FleetStore
from prognos.fleet.tables import FailureRow, PredictionRow, ShadowPredictionRow, utcnow
from prognos.metrics import phm08_score

__all__ = [
    "DEFAULT_RUL_CAP",
    "ErrorStats",
    "FailureRecord",
    "FailureResult",
    "PerformanceReport",
    "ShadowPair",
    "ShadowPerformance",
    "VersionPerformance",
    "model_performance",
    "prune_shadow",
    "record_failure",
    "save_shadow",
]

log = logging.getLogger("prognos.lifecycle")

DEFAULT_RUL_CAP = 125.0


@dataclass(frozen=True)
class FailureRecord:
    engine_id: str
    cycle: int
    recorded_at: datetime
    recorded_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"engine_id": self.engine_id, "cycle": self.cycle, "recorded_at": iso(self.recorded_at),
                "recorded_by": self.recorded_by}


@dataclass(frozen=True)
class ErrorStats:
    """Realised errors (predicted - true) of ``n`` predictions: ``*_capped`` against ``min(true, cap)``."""

    n: int
    rmse: float
    mae: float
    score: float  # PHM08, summed over the predictions
    mean_error: float  # > 0: predictions are late (optimistic)
    rmse_uncapped: float
    score_uncapped: float

    @classmethod
    def of(cls, pred: np.ndarray, true: np.ndarray, cap: float) -> ErrorStats:
        pred = np.asarray(pred, dtype=np.float64)
        true = np.asarray(true, dtype=np.float64)
        capped = np.minimum(true, cap)
        d = pred - capped
        return cls(len(pred), float(np.sqrt(np.mean(d**2))), float(np.mean(np.abs(d))), phm08_score(pred, capped),
                   float(np.mean(d)), float(np.sqrt(np.mean((pred - true) ** 2))), phm08_score(pred, true))

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class VersionPerformance:
    """Live performance of one model version over the engines with a recorded failure."""

    model_version: str
    n_engines: int
    errors: ErrorStats

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "n_engines": self.n_engines, **self.errors.to_dict()}


@dataclass(frozen=True)
class ShadowPerformance:
    """A production/candidate pair judged on the same shadowed requests (those with ground truth)."""

    production_version: str
    candidate_version: str
    n_pairs: int  # shadow pairs recorded
    n_evaluated: int  # ... of which have a recorded failure
    production: ErrorStats | None
    candidate: ErrorStats | None

    def to_dict(self) -> dict[str, Any]:
        return {"production_version": self.production_version, "candidate_version": self.candidate_version,
                "n_pairs": self.n_pairs, "n_evaluated": self.n_evaluated,
                "production": None if self.production is None else self.production.to_dict(),
                "candidate": None if self.candidate is None else self.candidate.to_dict()}


@dataclass(frozen=True)
class PerformanceReport:
    rul_cap: float
    n_failures: int
    versions: list[VersionPerformance]
    shadow: list[ShadowPerformance]

    def to_dict(self) -> dict[str, Any]:
        return {"rul_cap": self.rul_cap, "n_failures": self.n_failures,
                "versions": [v.to_dict() for v in self.versions], "shadow": [s.to_dict() for s in self.shadow]}


@dataclass(frozen=True)
class FailureResult:
    """What recording a failure did: ``created`` is False for an identical resend. ``performance``
    is the engine's own realised errors per model version."""

    failure: FailureRecord
    created: bool
    performance: list[VersionPerformance]

    def to_dict(self) -> dict[str, Any]:
        return {"failure": self.failure.to_dict(), "created": self.created,
                "performance": [p.to_dict() for p in self.performance]}


def _failure(row: FailureRow) -> FailureRecord:
    return FailureRecord(row.engine_id, row.cycle, row.recorded_at, row.recorded_by)


def record_failure(store: FleetStore, engine_id: str, cycle: object, by: str, *,
                   rul_cap: float = DEFAULT_RUL_CAP) -> FailureResult:
    """Record that ``engine_id`` failed at ``cycle`` (its last cycle). Idempotent for the same cycle;
    a different cycle for an engine that already has one is a :class:`ConflictError`. The cycle may
    not precede the engine's last stored reading (it was still running then)."""
    if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 1:
        raise ValidationError(f"cycle: {cycle!r} is not a positive whole number of cycles")
    engine = store.get_engine(engine_id)  # NotFoundError names the engine
    if engine.last_cycle is not None and cycle < engine.last_cycle:
        raise ValidationError(f"cycle: {cycle} is before engine {engine_id!r}'s last reading at cycle "
                              f"{engine.last_cycle}; the failure cycle is the engine's last cycle")
    try:
        stored = _store_failure(store, engine_id, cycle, by)
    except IntegrityError:  # recorded concurrently by another request: now it is there, judge against it
        stored = _store_failure(store, engine_id, cycle, by)
    if stored.created:
        log.info("failure of engine %s recorded at cycle %d by %s", engine_id, cycle, by)
    return FailureResult(stored.failure, stored.created, _version_performance(_realised(store, [engine_id]), rul_cap))


@dataclass(frozen=True)
class _Stored:
    failure: FailureRecord
    created: bool


def _store_failure(store: FleetStore, engine_id: str, cycle: int, by: str) -> _Stored:
    db = store.db
    with db.writing(), db.write_sessions.begin() as s:
        row = s.get(FailureRow, engine_id)
        if row is None:
            row = FailureRow(engine_id=engine_id, cycle=cycle, recorded_at=utcnow(), recorded_by=by)
            s.add(row)
            s.flush()
            return _Stored(_failure(row), True)
        if row.cycle != cycle:
            raise ConflictError(f"engine {engine_id!r}: a failure at cycle {row.cycle} is already recorded "
                                f"(by {row.recorded_by}); it cannot change to {cycle}")
        return _Stored(_failure(row), False)


@dataclass(frozen=True)
class _Realised:
    engine_id: str
    model_version: str
    predicted: float
    true: float


def _realised(store: FleetStore, engine_ids: Sequence[str] | None = None) -> list[_Realised]:
    """Every stored prediction of a failed engine, made at or before its failure, with its true RUL."""
    stmt = (select(PredictionRow.engine_id, PredictionRow.model_version, PredictionRow.rul,
                   FailureRow.cycle - PredictionRow.cycle)
            .join(FailureRow, FailureRow.engine_id == PredictionRow.engine_id)
            .where(PredictionRow.cycle <= FailureRow.cycle))
    if engine_ids is not None:
        stmt = stmt.where(PredictionRow.engine_id.in_(list(engine_ids)))
    with store.db.sessions() as s:
        return [_Realised(e, v, float(r), float(t)) for e, v, r, t in s.execute(stmt).all()]


def _version_performance(rows: Iterable[_Realised], cap: float) -> list[VersionPerformance]:
    by_version: dict[str, list[_Realised]] = defaultdict(list)
    for r in rows:
        by_version[r.model_version].append(r)
    return [VersionPerformance(v, len({r.engine_id for r in rs}),
                               ErrorStats.of(np.array([r.predicted for r in rs]), np.array([r.true for r in rs]), cap))
            for v, rs in sorted(by_version.items())]


def model_performance(store: FleetStore, rul_cap: float = DEFAULT_RUL_CAP) -> PerformanceReport:
    """Live RMSE / PHM08 per model version over all engines with a recorded failure, and the
    shadow canary's production/candidate pairs judged on the same requests."""
    with store.db.sessions() as s:
        n_failures = s.scalar(select(func.count()).select_from(FailureRow)) or 0
        pairs = s.execute(
            select(ShadowPredictionRow.production_version, ShadowPredictionRow.candidate_version, func.count())
            .group_by(ShadowPredictionRow.production_version, ShadowPredictionRow.candidate_version)
        ).all()
        judged = s.execute(
            select(ShadowPredictionRow.production_version, ShadowPredictionRow.candidate_version,
                   ShadowPredictionRow.production_rul, ShadowPredictionRow.candidate_rul,
                   FailureRow.cycle - ShadowPredictionRow.cycle)
            .join(FailureRow, FailureRow.engine_id == ShadowPredictionRow.engine_id)
            .where(ShadowPredictionRow.cycle.is_not(None), ShadowPredictionRow.cycle <= FailureRow.cycle)
        ).all()
    truth: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for pv, cv, prod, cand, true in judged:
        truth[(pv, cv)].append((float(prod), float(cand), float(true)))
    shadow = []
    for pv, cv, n in sorted(pairs):
        got = np.array(truth.get((pv, cv), []), dtype=np.float64).reshape(-1, 3)
        shadow.append(ShadowPerformance(pv, cv, int(n), len(got),
                                        ErrorStats.of(got[:, 0], got[:, 2], rul_cap) if len(got) else None,
                                        ErrorStats.of(got[:, 1], got[:, 2], rul_cap) if len(got) else None))
    return PerformanceReport(rul_cap, int(n_failures), _version_performance(_realised(store), rul_cap), shadow)


# --- shadow canary storage ------------------------------------------------------------------------


@dataclass(frozen=True)
class ShadowPair:
    """One request answered by production and scored in shadow by the candidate (RUL in cycles)."""

    engine_id: str
    cycle: int | None
    production_version: str
    production_rul: float
    candidate_version: str
    candidate_rul: float


def save_shadow(store: FleetStore, pairs: Sequence[ShadowPair]) -> int:
    """Store shadow pairs (one transaction). Returns how many were stored."""
    if not pairs:
        return 0
    now = utcnow()
    rows = [dict(asdict(p), created_at=now) for p in pairs]
    with store.db.writing(), store.db.write_sessions.begin() as s:
        s.execute(insert(ShadowPredictionRow), rows)
    return len(rows)


def prune_shadow(store: FleetStore, max_rows: int) -> int:
    """Keep only the newest ``max_rows`` shadow pairs (bounded storage). Returns rows deleted."""
    with store.db.writing(), store.db.write_sessions.begin() as s:
        cutoff = s.scalar(select(ShadowPredictionRow.id).order_by(ShadowPredictionRow.id.desc())
                          .offset(max_rows).limit(1))
        if cutoff is None:
            return 0
        result = s.execute(delete(ShadowPredictionRow).where(ShadowPredictionRow.id <= cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
