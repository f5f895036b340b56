"""Calibrated prediction intervals: split-conformal, conditional on the predicted RUL.

Residuals ``r = true - predicted`` of out-of-fold predictions are grouped into bins of predicted
RUL (Mondrian conformal): a prediction of 120 cycles ("healthy, near the cap") errs differently from
one of 20. In each bin the interval is ``[pred + q_lo, pred + q_hi]`` with ``q_lo``/``q_hi`` the
finite-sample-corrected ``(1-level)/2`` and ``(1+level)/2`` quantiles of that bin's residuals,
clipped to ``[0, cap]``. Coverage is guaranteed (marginally, per bin) for exchangeable engines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["IntervalCalibration", "Intervals", "calibrate"]


@dataclass(frozen=True)
class Intervals:
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class IntervalCalibration:
    level: float
    edges: list[float]  # inner bin edges in predicted cycles, ascending (len = bins - 1)
    q_lo: list[float]  # per bin, cycles (<= 0 typically)
    q_hi: list[float]
    cap: float
    n: int

    def apply(self, pred: np.ndarray) -> Intervals:
        pred = np.asarray(pred, dtype=np.float64)
        b = np.searchsorted(np.asarray(self.edges), pred, side="right")
        lo = pred + np.asarray(self.q_lo)[b]
        hi = pred + np.asarray(self.q_hi)[b]
        return Intervals(np.clip(lo, 0.0, self.cap), np.clip(hi, 0.0, self.cap))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "split-conformal, Mondrian bins of predicted RUL",
            "level": self.level, "edges": self.edges, "q_lo": self.q_lo, "q_hi": self.q_hi,
            "cap": self.cap, "n_residuals": self.n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalCalibration:
        return cls(float(d["level"]), [float(v) for v in d["edges"]], [float(v) for v in d["q_lo"]],
                   [float(v) for v in d["q_hi"]], float(d["cap"]), int(d["n_residuals"]))


def _conformal_quantile(r: np.ndarray, q: float) -> float:
    n = len(r)
    k = min(n, math.ceil((n + 1) * q)) if q >= 0.5 else max(1, math.floor((n + 1) * q))
    return float(np.sort(r)[k - 1])


def calibrate(pred: np.ndarray, true: np.ndarray, level: float, cap: float, bins: int = 4) -> IntervalCalibration:
    """Fit interval offsets from out-of-sample predictions ``pred`` and targets ``true`` (cycles)."""
    pred = np.asarray(pred, dtype=np.float64)
    r = np.asarray(true, dtype=np.float64) - pred
    # Equal-count bins, each big enough for the extreme quantile to be meaningful.
    bins = max(1, min(bins, len(pred) // max(20, int(2 / (1 - level)))))
    edges = np.unique(np.quantile(pred, np.linspace(0, 1, bins + 1)[1:-1])).tolist() if bins > 1 else []
    b = np.searchsorted(np.asarray(edges), pred, side="right")
    alpha = 1.0 - level
    q_lo, q_hi = [], []
    for j in range(len(edges) + 1):
        rj = r[b == j]
        q_lo.append(_conformal_quantile(rj, alpha / 2))
        q_hi.append(_conformal_quantile(rj, 1 - alpha / 2))
    return IntervalCalibration(level, [float(e) for e in edges], q_lo, q_hi, cap, len(r))
