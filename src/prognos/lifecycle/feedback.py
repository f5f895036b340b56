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
from typing import Any

import numpy as np

from prognos.errors import ValidationError
from prognos.lifecycle.ports import FailureRecord, GroundTruth, RealisedPrediction, ShadowPair
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


def record_failure(store: GroundTruth, engine_id: str, cycle: object, by: str, *,
                   rul_cap: float = DEFAULT_RUL_CAP) -> FailureResult:
    """Record that ``engine_id`` failed at ``cycle`` (its last cycle). Idempotent for the same cycle;
    a different cycle for an engine that already has one is a :class:`ConflictError`. The cycle may
    not precede the engine's last stored reading (it was still running then)."""
    if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 1:
        raise ValidationError(f"cycle: {cycle!r} is not a positive whole number of cycles")
    last_cycle = store.engine_last_cycle(engine_id)  # NotFoundError names the engine
    if last_cycle is not None and cycle < last_cycle:
        raise ValidationError(f"cycle: {cycle} is before engine {engine_id!r}'s last reading at cycle "
                              f"{last_cycle}; the failure cycle is the engine's last cycle")
    stored = store.store_failure(engine_id, cycle, by)
    if stored.created:
        log.info("failure of engine %s recorded at cycle %d by %s", engine_id, cycle, by)
    performance = _version_performance(store.realised_predictions([engine_id]), rul_cap)
    return FailureResult(stored.failure, stored.created, performance)


def _version_performance(rows: Iterable[RealisedPrediction], cap: float) -> list[VersionPerformance]:
    by_version: dict[str, list[RealisedPrediction]] = defaultdict(list)
    for r in rows:
        by_version[r.model_version].append(r)
    return [VersionPerformance(v, len({r.engine_id for r in rs}),
                               ErrorStats.of(np.array([r.predicted for r in rs]), np.array([r.true for r in rs]), cap))
            for v, rs in sorted(by_version.items())]


def model_performance(store: GroundTruth, rul_cap: float = DEFAULT_RUL_CAP) -> PerformanceReport:
    """Live RMSE / PHM08 per model version over all engines with a recorded failure, and the
    shadow canary's production/candidate pairs judged on the same requests."""
    n_failures = store.count_failures()
    pairs = store.shadow_pair_counts()
    truth: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for o in store.shadow_outcomes():
        truth[(o.production_version, o.candidate_version)].append((o.production_rul, o.candidate_rul, o.true))
    shadow = []
    for (pv, cv), n in sorted(pairs.items()):
        got = np.array(truth.get((pv, cv), []), dtype=np.float64).reshape(-1, 3)
        shadow.append(ShadowPerformance(pv, cv, int(n), len(got),
                                        ErrorStats.of(got[:, 0], got[:, 2], rul_cap) if len(got) else None,
                                        ErrorStats.of(got[:, 1], got[:, 2], rul_cap) if len(got) else None))
    return PerformanceReport(rul_cap, int(n_failures), _version_performance(store.realised_predictions(), rul_cap),
                             shadow)


# --- shadow canary storage ------------------------------------------------------------------------


def save_shadow(store: GroundTruth, pairs: Sequence[ShadowPair]) -> int:
    """Store shadow pairs (one transaction). Returns how many were stored."""
    return store.save_shadow_pairs(pairs) if pairs else 0


def prune_shadow(store: GroundTruth, max_rows: int) -> int:
    """Keep only the newest ``max_rows`` shadow pairs (bounded storage). Returns rows deleted."""
    return store.prune_shadow_pairs(max_rows)
