"""Operating regimes: clusters of the three operational settings (k-means, k chosen from data).

FD002/FD004 fly six discrete flight conditions; sensor levels depend far more on the condition
than on wear, so each sensor is normalised per regime. Single-condition subsets get one regime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = ["RegimeModel", "fit_regimes"]


@dataclass(frozen=True)
class RegimeModel:
    """Nearest-centroid assignment in standardised settings space."""

    mean: np.ndarray  # (3,)
    scale: np.ndarray  # (3,)
    centroids: np.ndarray  # (k, 3), standardised units

    @property
    def n_regimes(self) -> int:
        return len(self.centroids)

    def assign(self, settings: np.ndarray) -> np.ndarray:
        """Regime index (n,) of each row of ``settings`` (n, 3)."""
        if self.n_regimes == 1:
            return np.zeros(len(settings), dtype=np.int64)
        z = (settings - self.mean) / self.scale
        d = ((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(-1)
        nearest: np.ndarray = np.argmin(d, axis=1)
        return nearest

    def to_dict(self) -> dict[str, object]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "centroids": self.centroids.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> RegimeModel:
        return cls(
            np.asarray(d["mean"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            np.asarray(d["centroids"], dtype=np.float64).reshape(-1, 3),
        )


class _Clustering(NamedTuple):
    centroids: np.ndarray
    inertia: float


def _kmeans(z: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 8, iters: int = 50) -> _Clustering:
    best_c, best_inertia = z[:k].copy(), np.inf
    for _ in range(n_init):
        # k-means++ seeding
        c = [z[rng.integers(len(z))]]
        for _ in range(1, k):
            d = np.min(((z[:, None, :] - np.array(c)[None]) ** 2).sum(-1), axis=1)
            p = d / d.sum() if d.sum() > 0 else None
            c.append(z[rng.choice(len(z), p=p)])
        cent = np.array(c)
        for _ in range(iters):
            lab = np.argmin(((z[:, None, :] - cent[None]) ** 2).sum(-1), axis=1)
            new = np.array([z[lab == j].mean(0) if np.any(lab == j) else cent[j] for j in range(k)])
            if np.allclose(new, cent):
                break
            cent = new
        inertia = float(np.min(((z[:, None, :] - cent[None]) ** 2).sum(-1), axis=1).sum())
        if inertia < best_inertia:
            best_c, best_inertia = cent, inertia
    return _Clustering(best_c, best_inertia)


def fit_regimes(settings: np.ndarray, n_regimes: int | None = None, max_regimes: int = 8, seed: int = 0) -> RegimeModel:
    """Cluster the settings. With ``n_regimes=None`` pick the smallest k whose clusters explain
    99.9% of the (standardised) settings variance — true for discrete flight conditions, never for
    the sensor-noise-sized jitter of a single condition, which then gets one regime.
    """
    mean = settings.mean(0)
    scale = settings.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (settings - mean) / scale
    rng = np.random.default_rng(seed)
    # k-means on a sample keeps fitting fast on large files; centroids of discrete conditions are
    # found exactly from a few thousand rows.
    sample = z[rng.choice(len(z), size=min(len(z), 5000), replace=False)]
    if n_regimes == 1:
        return RegimeModel(mean, scale, np.zeros((1, 3)))
    total = float(((sample - sample.mean(0)) ** 2).sum())
    ks = [n_regimes] if n_regimes else list(range(2, max_regimes + 1))
    for k in ks:
        cent, inertia = _kmeans(sample, k, rng)
        if n_regimes or (total > 0 and inertia / total < 1e-3):
            return RegimeModel(mean, scale, cent)
    return RegimeModel(mean, scale, np.zeros((1, 3)))
