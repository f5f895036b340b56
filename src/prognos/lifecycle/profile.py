"""The reference profile a bundle carries for drift monitoring (``reference.json``).

Written at training time from the training windows: the distribution of every model input feature
after preprocessing (the last row of each window: per-regime z-scored, smoothed sensor values), of
every raw required reading field (NASA C-MAPSS units), and of the out-of-fold predictions (RUL,
cycles). Each distribution is summarised by numbers only (no training rows are kept):

* ``quantiles`` — 101 quantiles (0 %, 1 %, ..., 100 %): the reference CDF for the KS test;
* ``bins`` — inner edges of decile bins and the reference share in each: the PSI bins;
* ``hist_edges``/``hist_density`` — a 40-bin histogram for the report's plots;
* ``n``, ``mean``, ``std``.

Numpy only (the serving path reads it). :func:`load_reference` returns ``None`` for bundles written
before profiles existed, so callers can say "no reference profile" instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prognos.errors import BundleError

if TYPE_CHECKING:
    from prognos.bundle import Bundle
    from prognos.data.cmapss import Readings
    from prognos.features.pipeline import FeaturePipeline, Windows

__all__ = [
    "PROFILE_FORMAT",
    "REFERENCE_FILE",
    "Distribution",
    "ReferenceProfile",
    "load_reference",
    "reference_profile",
]

REFERENCE_FILE = "reference.json"
PROFILE_FORMAT = "prognos.reference/1"
_N_QUANTILES = 101
_PSI_BINS = 10
_HIST_BINS = 40


@dataclass(frozen=True)
class Distribution:
    """A one-dimensional distribution summarised for drift tests (units of the quantity profiled)."""

    n: int
    mean: float
    std: float
    quantiles: list[float]  # 101 values at 0, 1, ..., 100 %
    bin_edges: list[float]  # inner edges of the PSI bins (len = bins - 1; ties collapsed)
    bin_shares: list[float]  # reference share per PSI bin (sums to 1)
    hist_edges: list[float]
    hist_density: list[float]

    @classmethod
    def of(cls, values: np.ndarray) -> Distribution:
        """Summarise finite ``values`` (NaN/inf are ignored). Raises ValueError when none is finite."""
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[np.isfinite(x)]
        if not len(x):
            raise ValueError("no finite values to profile")
        quantiles = np.quantile(x, np.linspace(0.0, 1.0, _N_QUANTILES))
        # Decile edges; a discrete variable (many ties) gets fewer, wider bins instead of empty ones.
        edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, _PSI_BINS + 1))[1:-1])
        edges = edges[edges > quantiles[0]]  # bins hold [edge_i, edge_i+1): an edge at the minimum leaves one empty
        shares = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / len(x)
        lo, hi = float(quantiles[0]), float(quantiles[-1])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        density, hist_edges = np.histogram(x, bins=_HIST_BINS, range=(lo, hi), density=True)
        return cls(len(x), float(x.mean()), float(x.std()), quantiles.tolist(), edges.tolist(), shares.tolist(),
                   hist_edges.tolist(), density.tolist())

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The reference CDF at ``x`` (piecewise linear between the stored quantiles)."""
        q = np.asarray(self.quantiles)
        levels = np.linspace(0.0, 1.0, len(q))
        # Repeated quantiles (ties) make np.interp pick the last level of a run, which is the CDF's
        # right-continuous value at that point: what a CDF should return.
        return np.interp(np.asarray(x, dtype=np.float64), q, levels, left=0.0, right=1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "quantiles": self.quantiles,
                "bin_edges": self.bin_edges, "bin_shares": self.bin_shares, "hist_edges": self.hist_edges,
                "hist_density": self.hist_density}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Distribution:
        dist = cls(int(d["n"]), float(d["mean"]), float(d["std"]), [float(v) for v in d["quantiles"]],
                   [float(v) for v in d["bin_edges"]], [float(v) for v in d["bin_shares"]],
                   [float(v) for v in d["hist_edges"]], [float(v) for v in d["hist_density"]])
        if len(dist.bin_shares) != len(dist.bin_edges) + 1 or len(dist.quantiles) < 2:
            raise ValueError("bin_shares must have one more entry than bin_edges, and quantiles at least two")
        return dist


@dataclass(frozen=True)
class ReferenceProfile:
    """The training-time distributions a bundle's drift is judged against.

    ``features``: model input features after preprocessing (name = the sensor, z-score units);
    ``raw``: required reading fields before preprocessing (C-MAPSS units); ``prediction``: out-of-fold
    predicted RUL (cycles).
    """

    features: dict[str, Distribution]
    raw: dict[str, Distribution]
    prediction: Distribution
    source: str = "training windows"
    format: str = PROFILE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "source": self.source,
                "features": {k: v.to_dict() for k, v in self.features.items()},
                "raw": {k: v.to_dict() for k, v in self.raw.items()},
                "prediction": self.prediction.to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":")) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        if d.get("format") != PROFILE_FORMAT:
            raise ValueError(f"unsupported reference profile format {d.get('format')!r} (expected {PROFILE_FORMAT})")
        return cls({k: Distribution.from_dict(v) for k, v in d["features"].items()},
                   {k: Distribution.from_dict(v) for k, v in d["raw"].items()},
                   Distribution.from_dict(d["prediction"]), str(d.get("source", "")))

    @classmethod
    def from_arrays(cls, features: np.ndarray, feature_names: Sequence[str], raw: np.ndarray,
                    raw_names: Sequence[str], predictions: np.ndarray, source: str = "training windows"
                    ) -> ReferenceProfile:
        """``features`` (n, n_features), ``raw`` (m, n_raw), ``predictions`` (k,) -> a profile."""
        features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
        if features.shape[1] != len(feature_names) or raw.shape[1] != len(raw_names):
            raise ValueError("column count and names disagree")
        return cls({n: Distribution.of(features[:, i]) for i, n in enumerate(feature_names)},
                   {n: Distribution.of(raw[:, i]) for i, n in enumerate(raw_names)},
                   Distribution.of(predictions), source)


def reference_profile(pipeline: FeaturePipeline, readings: Readings, windows: Windows,
                      predictions: np.ndarray) -> ReferenceProfile:
    """The profile of a training run: ``windows`` are ``pipeline.training_windows(readings)`` and
    ``predictions`` their out-of-fold predictions (cycles), one per window."""
    if len(predictions) != len(windows):
        raise ValueError(f"{len(predictions)} predictions for {len(windows)} windows")
    raw = np.concatenate([e.values[:, pipeline.input_columns] for e in readings.engines()])
    return ReferenceProfile.from_arrays(windows.x[:, -1, :], list(pipeline.sensors_ or []), raw,
                                        pipeline.required_fields, predictions)


def load_reference(bundle: Bundle) -> ReferenceProfile | None:
    """The bundle's reference profile, or ``None`` when the bundle predates profiles. The file's
    checksum was verified when the bundle was read; an unreadable profile raises :class:`BundleError`."""
    if REFERENCE_FILE not in bundle.manifest.files:
        return None
    path = Path(bundle.path) / REFERENCE_FILE
    try:
        return ReferenceProfile.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: unreadable reference profile: {exc}") from None
