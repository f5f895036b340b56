"""The field's RUL metrics. All in cycles; ``d = predicted - true``."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["RulMetrics", "phm08_score", "rul_metrics"]


def phm08_score(pred: np.ndarray, true: np.ndarray) -> float:
    """PHM08 challenge score: sum of exp(-d/13)-1 for early (d<0) and exp(d/10)-1 for late (d>=0)
    predictions. Lower is better; late predictions cost more."""
    d = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


@dataclass(frozen=True)
class RulMetrics:
    rmse: float
    mae: float
    score: float
    coverage: float | None
    mean_interval_width: float | None
    n_engines: int

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def rul_metrics(
    pred: np.ndarray, true: np.ndarray, lower: np.ndarray | None = None, upper: np.ndarray | None = None
) -> RulMetrics:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    d = pred - true
    coverage = width = None
    if lower is not None and upper is not None:
        coverage = float(np.mean((true >= lower) & (true <= upper)))
        width = float(np.mean(np.asarray(upper) - np.asarray(lower)))
    return RulMetrics(
        rmse=float(np.sqrt(np.mean(d**2))),
        mae=float(np.mean(np.abs(d))),
        score=phm08_score(pred, true),
        coverage=coverage,
        mean_interval_width=width,
        n_engines=len(pred),
    )
