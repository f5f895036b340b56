"""Drift statistics of a current sample against a reference distribution.

* **PSI** (population stability index) over the reference's decile bins:
  ``sum((cur - ref) * ln(cur / ref))``; 0 = same shares, > 0.25 is the usual "significant shift";
* **KS** — the largest gap between the reference CDF and the current empirical CDF (the effect
  size, 0..1) and its asymptotic p-value (the reference, tens of thousands of rows, is taken as
  the true distribution).

The reference is anything with PSI bins and a CDF (:class:`prognos.reference.ReferenceDistribution`):
a profiled :class:`~prognos.reference.Distribution` or a life-stage mixture matched to the sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from prognos.reference import ReferenceDistribution

__all__ = ["KsResult", "finite", "kolmogorov_pvalue", "ks_test", "psi"]

_EPS = 1e-4  # floor of a bin share: an empty bin must not make PSI infinite


def finite(values: np.ndarray) -> np.ndarray:
    """``values`` flattened to float64, NaN/inf dropped."""
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def psi(reference: ReferenceDistribution, values: np.ndarray) -> float:
    """Population stability index of ``values`` against the reference's PSI bins (dimensionless)."""
    x = finite(values)
    if not len(x):
        return float("nan")
    edges = np.asarray(reference.bin_edges)
    cur = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / len(x)
    ref = np.clip(np.asarray(reference.bin_shares), _EPS, None)
    cur = np.clip(cur, _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass(frozen=True)
class KsResult:
    statistic: float  # largest CDF gap, 0..1
    pvalue: float


def kolmogorov_pvalue(d: float, n: int) -> float:
    """P(D_n >= d) for the one-sample KS statistic, asymptotic (Stephens' small-n correction)."""
    if n <= 0 or not math.isfinite(d):
        return float("nan")
    if d <= 0:
        return 1.0
    sq = math.sqrt(n)
    lam = (sq + 0.12 + 0.11 / sq) * d
    if lam < 0.2:
        return 1.0
    k = np.arange(1, 101)
    p = 2.0 * float(np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * (k * lam) ** 2)))
    return float(min(1.0, max(0.0, p)))


def ks_test(reference: ReferenceDistribution, values: np.ndarray) -> KsResult:
    """KS statistic between the reference CDF and the empirical CDF of ``values``, with its p-value."""
    x = np.sort(finite(values))
    n = len(x)
    if not n:
        return KsResult(float("nan"), float("nan"))
    ref = reference.cdf(x)
    above = np.arange(1, n + 1) / n - ref
    below = ref - np.arange(0, n) / n
    d = float(max(above.max(), below.max(), 0.0))
    return KsResult(d, kolmogorov_pvalue(d, n))
