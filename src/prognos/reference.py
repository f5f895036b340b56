"""The reference profile a bundle carries for drift monitoring (``reference.json``).

Written at training time from the training windows: the distribution of every model input feature
after preprocessing (the last row of each window: per-regime z-scored, smoothed sensor values), of
every raw required reading field (NASA C-MAPSS units), and of the out-of-fold predictions (RUL,
cycles). Each distribution is summarised by numbers only (no training rows are kept):

* ``quantiles`` — 101 quantiles (0 %, 1 %, ..., 100 %): the reference CDF for the KS test;
* ``bins`` — inner edges of decile bins and the reference share in each: the PSI bins;
* ``hist_edges``/``hist_density`` — a 40-bin histogram for the report's plots;
* ``n``, ``mean``, ``std``.

**Life stages.** Sensor readings of a healthy engine in its first cycles look nothing like those of
the same engine near failure, so "the training distribution" depends on which cycles it is taken
over. A fleet that has just entered service (or C-MAPSS test engines, cut before failure) is young;
the training windows of run-to-failure engines are not. Comparing the two flags in-distribution data
as drifted (an FD001 model on the first 60 cycles of FD001 test engines: PSI ~1.9, KS ~0.36). So the
profile also keeps every quantity per **life stage**: ``strata`` cut the engine cycle (the number of
the reading, 1 = first cycle in service) at the octiles of the training cycles; per stage, the
distribution's quantiles and its shares of the overall PSI bins. :meth:`ReferenceProfile.matched`
builds the reference *for a given sample*: the stages mixed in the sample's own proportions, so a
young fleet is compared with young training engines (readings without a cycle count against the
overall distribution).

Format ``prognos.reference/2``; profiles of format 1 (no stages) are refused with a message saying
to retrain, since judging them would raise the false alarms above. Numpy only (the serving path
reads it); core level: imports nothing above :mod:`prognos.errors`. :func:`load_reference` returns
``None`` for bundles written before profiles existed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
    "LifeStages",
    "MatchedDistribution",
    "OutdatedProfileError",
    "ReferenceDistribution",
    "ReferenceProfile",
    "load_reference",
    "reference_profile",
]

REFERENCE_FILE = "reference.json"
PROFILE_FORMAT = "prognos.reference/2"
_OLD_FORMATS = ("prognos.reference/1",)
_N_QUANTILES = 101
_PSI_BINS = 10
_HIST_BINS = 40
_N_STAGES = 8


class OutdatedProfileError(ValueError):
    """A profile of an older format that drift can no longer judge by (retrain the model)."""


class ReferenceDistribution(Protocol):
    """What the drift statistics read from a reference: PSI bins and a CDF."""

    @property
    def n(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def std(self) -> float: ...
    @property
    def bin_edges(self) -> list[float]: ...
    @property
    def bin_shares(self) -> list[float]: ...

    def cdf(self, x: np.ndarray) -> np.ndarray: ...


def _round(values: Sequence[float] | np.ndarray) -> list[float]:
    # 7 significant digits (at construction, so JSON round-trips exactly): a smaller profile, far
    # below any test's resolution.
    return [float(f"{v:.7g}") for v in np.asarray(values, dtype=np.float64).tolist()]


@dataclass(frozen=True)
class Distribution:
    """A one-dimensional distribution summarised for drift tests (units of the quantity profiled)."""

    n: int
    mean: float
    std: float
    quantiles: list[float]  # 101 values at 0, 1, ..., 100 %
    bin_edges: list[float]  # inner edges of the PSI bins (len = bins - 1; ties collapsed)
    bin_shares: list[float]  # reference share per PSI bin (sums to 1)
    hist_edges: list[float] = field(default_factory=list)  # empty for a life stage's distribution
    hist_density: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, values: np.ndarray, bin_edges: Sequence[float] | None = None) -> Distribution:
        """Summarise finite ``values`` (NaN/inf are ignored). With ``bin_edges`` (a life stage of an
        overall distribution): the shares of those PSI bins and no histogram. Raises ValueError when
        no value is finite."""
        x = np.asarray(values, dtype=np.float64).ravel()
        x = x[np.isfinite(x)]
        if not len(x):
            raise ValueError("no finite values to profile")
        quantiles = np.quantile(x, np.linspace(0.0, 1.0, _N_QUANTILES))
        if bin_edges is None:
            # Decile edges; a discrete variable (many ties) gets fewer, wider bins instead of empty ones.
            edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, _PSI_BINS + 1))[1:-1])
            edges = edges[edges > quantiles[0]]  # bins hold [edge_i, edge_i+1): an edge at the minimum is empty
        else:
            edges = np.asarray(bin_edges, dtype=np.float64)
        shares = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1) / len(x)
        hist_edges: list[float] = []
        density: list[float] = []
        if bin_edges is None:
            lo, hi = float(quantiles[0]), float(quantiles[-1])
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            dens, h_edges = np.histogram(x, bins=_HIST_BINS, range=(lo, hi), density=True)
            hist_edges, density = h_edges.tolist(), _round(dens)
        return cls(len(x), float(x.mean()), float(x.std()), _round(quantiles), edges.tolist(), _round(shares),
                   hist_edges, density)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The reference CDF at ``x`` (piecewise linear between the stored quantiles)."""
        q = np.asarray(self.quantiles)
        levels = np.linspace(0.0, 1.0, len(q))
        # Repeated quantiles (ties) make np.interp pick the last level of a run, which is the CDF's
        # right-continuous value at that point: what a CDF should return.
        return np.interp(np.asarray(x, dtype=np.float64), q, levels, left=0.0, right=1.0)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": self.n, "mean": self.mean, "std": self.std, "quantiles": self.quantiles,
                             "bin_edges": self.bin_edges, "bin_shares": self.bin_shares}
        if self.hist_edges:
            d.update(hist_edges=self.hist_edges, hist_density=self.hist_density)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Distribution:
        dist = cls(int(d["n"]), float(d["mean"]), float(d["std"]), [float(v) for v in d["quantiles"]],
                   [float(v) for v in d["bin_edges"]], [float(v) for v in d["bin_shares"]],
                   [float(v) for v in d.get("hist_edges", [])], [float(v) for v in d.get("hist_density", [])])
        if len(dist.bin_shares) != len(dist.bin_edges) + 1 or len(dist.quantiles) < 2:
            raise ValueError("bin_shares must have one more entry than bin_edges, and quantiles at least two")
        return dist


@dataclass(frozen=True)
class MatchedDistribution:
    """A mixture of life-stage distributions in given proportions (the sample's own): the reference
    a sample with that life-stage mix is expected to follow. Same PSI bins as the overall one."""

    parts: tuple[Distribution, ...]
    weights: tuple[float, ...]  # sum to 1

    @property
    def n(self) -> int:
        return sum(p.n for p, w in zip(self.parts, self.weights, strict=True) if w > 0)

    @property
    def mean(self) -> float:
        return float(sum(w * p.mean for p, w in zip(self.parts, self.weights, strict=True)))

    @property
    def std(self) -> float:
        m = self.mean
        second = sum(w * (p.std**2 + p.mean**2) for p, w in zip(self.parts, self.weights, strict=True))
        return math.sqrt(max(0.0, second - m * m))

    @property
    def bin_edges(self) -> list[float]:
        return self.parts[0].bin_edges

    @property
    def bin_shares(self) -> list[float]:
        shares = sum(w * np.asarray(p.bin_shares) for p, w in zip(self.parts, self.weights, strict=True))
        return np.asarray(shares, dtype=np.float64).tolist()

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.zeros(x.shape)
        for p, w in zip(self.parts, self.weights, strict=True):
            if w > 0:
                out += w * p.cdf(x)
        return out


@dataclass(frozen=True)
class LifeStages:
    """Life stages by engine cycle: stage ``i`` holds cycles in ``[edges[i-1], edges[i])`` (the
    first from cycle 1, the last open-ended). ``n`` = training rows per stage."""

    edges: list[int]
    n: list[int]

    @classmethod
    def of(cls, cycles: np.ndarray, n_stages: int = _N_STAGES) -> LifeStages:
        """Stages at the quantiles of the training ``cycles`` (about equal rows per stage)."""
        c = np.asarray(cycles, dtype=np.float64)
        edges = np.unique(np.round(np.quantile(c, np.linspace(0, 1, n_stages + 1)[1:-1])))
        edges = edges[edges > c.min()].astype(int)
        stages = cls(edges.tolist(), [])
        return cls(stages.edges, np.bincount(stages.index(c), minlength=len(stages)).tolist())

    def __len__(self) -> int:
        return len(self.edges) + 1

    def index(self, cycles: np.ndarray) -> np.ndarray:
        """The stage of each cycle (-1 where the cycle is unknown: NaN)."""
        c = np.asarray(cycles, dtype=np.float64)
        out = np.searchsorted(np.asarray(self.edges, dtype=np.float64), c, side="right")
        return np.where(np.isfinite(c), out, -1)

    def label(self, i: int) -> str:
        lo = 1 if i == 0 else self.edges[i - 1]
        return f"cycles {lo}+" if i == len(self.edges) else f"cycles {lo}-{self.edges[i] - 1}"

    def to_dict(self) -> dict[str, Any]:
        return {"edges": self.edges, "n": self.n}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LifeStages:
        stages = cls([int(v) for v in d["edges"]], [int(v) for v in d["n"]])
        if len(stages.n) != len(stages) or sorted(set(stages.edges)) != stages.edges:
            raise ValueError("life stages: edges must increase and n have one entry per stage")
        return stages


@dataclass(frozen=True)
class ReferenceProfile:
    """The training-time distributions a bundle's drift is judged against.

    ``features``: model input features after preprocessing (name = the sensor, z-score units);
    ``raw``: required reading fields before preprocessing (C-MAPSS units); ``prediction``: out-of-fold
    predicted RUL (cycles). ``stages`` and ``by_stage`` (quantity -> one distribution per stage, keyed
    ``feature:NAME``, ``raw:NAME``, ``prediction``): the same per life stage; ``None``/empty for a
    profile built without cycles (every sample is then compared with the overall distributions).
    """

    features: dict[str, Distribution]
    raw: dict[str, Distribution]
    prediction: Distribution
    source: str = "training windows"
    format: str = PROFILE_FORMAT
    stages: LifeStages | None = None
    by_stage: dict[str, list[Distribution]] = field(default_factory=dict)

    def overall(self, kind: str, name: str) -> Distribution | None:
        if kind == "prediction":
            return self.prediction
        return (self.features if kind == "feature" else self.raw).get(name)

    def matched(self, kind: str, name: str, stage_index: np.ndarray) -> ReferenceDistribution | None:
        """The reference for a sample whose rows are in stages ``stage_index`` (-1: unknown cycle):
        each stage's distribution weighted by its share of the sample; unknown cycles and a profile
        without stages weigh in the overall distribution."""
        overall = self.overall(kind, name)
        key = kind if kind == "prediction" else f"{kind}:{name}"
        per_stage = self.by_stage.get(key)
        if overall is None or self.stages is None or per_stage is None or not len(stage_index):
            return overall
        counts = np.bincount(np.asarray(stage_index) + 1, minlength=len(self.stages) + 1) / len(stage_index)
        return MatchedDistribution((overall, *per_stage), tuple(float(w) for w in counts))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"format": self.format, "source": self.source,
                             "features": {k: v.to_dict() for k, v in self.features.items()},
                             "raw": {k: v.to_dict() for k, v in self.raw.items()},
                             "prediction": self.prediction.to_dict()}
        if self.stages is not None:
            d["stages"] = self.stages.to_dict()
            d["by_stage"] = {k: [s.to_dict() for s in v] for k, v in self.by_stage.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":")) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        fmt = d.get("format")
        if fmt in _OLD_FORMATS:
            raise OutdatedProfileError(f"reference profile format {fmt!r} has no life stages: drift would be judged "
                             "against all training windows and flag any young fleet; retrain the model "
                             "to monitor drift")
        if fmt != PROFILE_FORMAT:
            raise ValueError(f"unsupported reference profile format {fmt!r} (expected {PROFILE_FORMAT})")
        stages = LifeStages.from_dict(d["stages"]) if d.get("stages") is not None else None
        by_stage = {k: [Distribution.from_dict(s) for s in v] for k, v in d.get("by_stage", {}).items()}
        if stages is not None and any(len(v) != len(stages) for v in by_stage.values()):
            raise ValueError("by_stage: one distribution per life stage expected")
        return cls({k: Distribution.from_dict(v) for k, v in d["features"].items()},
                   {k: Distribution.from_dict(v) for k, v in d["raw"].items()},
                   Distribution.from_dict(d["prediction"]), str(d.get("source", "")), PROFILE_FORMAT, stages,
                   by_stage)

    @classmethod
    def from_arrays(cls, features: np.ndarray, feature_names: Sequence[str], raw: np.ndarray,
                    raw_names: Sequence[str], predictions: np.ndarray, source: str = "training windows",
                    cycles: np.ndarray | None = None, raw_cycles: np.ndarray | None = None) -> ReferenceProfile:
        """``features`` (n, n_features), ``raw`` (m, n_raw), ``predictions`` (n,) -> a profile.
        With ``cycles`` (n,) — the engine cycle of each feature row and prediction — and
        ``raw_cycles`` (m,), also per life stage."""
        features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
        raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
        predictions = np.asarray(predictions, dtype=np.float64).ravel()
        if features.shape[1] != len(feature_names) or raw.shape[1] != len(raw_names):
            raise ValueError("column count and names disagree")
        feats = {n: Distribution.of(features[:, i]) for i, n in enumerate(feature_names)}
        raws = {n: Distribution.of(raw[:, i]) for i, n in enumerate(raw_names)}
        pred = Distribution.of(predictions)
        if cycles is None:
            return cls(feats, raws, pred, source)
        if len(cycles) != len(features) or len(predictions) != len(features):
            raise ValueError("one cycle per feature row and prediction expected")
        if raw_cycles is None or len(raw_cycles) != len(raw):
            raise ValueError("one cycle per raw row expected")
        stages = LifeStages.of(np.asarray(cycles))
        at, raw_at = stages.index(np.asarray(cycles)), stages.index(np.asarray(raw_cycles))

        def split(values: np.ndarray, where: np.ndarray, overall: Distribution) -> list[Distribution]:
            # A stage with no finite value (cannot happen with quantile stages) falls back to the overall.
            out = []
            for s in range(len(stages)):
                part = values[where == s]
                out.append(Distribution.of(part, overall.bin_edges) if np.isfinite(part).any() else overall)
            return out

        by_stage = {f"feature:{n}": split(features[:, i], at, feats[n]) for i, n in enumerate(feature_names)}
        by_stage.update({f"raw:{n}": split(raw[:, i], raw_at, raws[n]) for i, n in enumerate(raw_names)})
        by_stage["prediction"] = split(predictions, at, pred)
        return cls(feats, raws, pred, source, PROFILE_FORMAT, stages, by_stage)


def reference_profile(pipeline: FeaturePipeline, readings: Readings, windows: Windows,
                      predictions: np.ndarray) -> ReferenceProfile:
    """The profile of a training run: ``windows`` are ``pipeline.training_windows(readings)`` and
    ``predictions`` their out-of-fold predictions (cycles), one per window."""
    if len(predictions) != len(windows):
        raise ValueError(f"{len(predictions)} predictions for {len(windows)} windows")
    raw = np.concatenate([e.values[:, pipeline.input_columns] for e in readings.engines()])
    raw_cycles = np.concatenate([e.cycles for e in readings.engines()])
    return ReferenceProfile.from_arrays(windows.x[:, -1, :], list(pipeline.sensors_ or []), raw,
                                        pipeline.required_fields, predictions, cycles=windows.cycles,
                                        raw_cycles=raw_cycles)


def load_reference(bundle: Bundle) -> ReferenceProfile | None:
    """The bundle's reference profile, or ``None`` when the bundle predates profiles. The file's
    checksum was verified when the bundle was read; an unreadable or outdated profile raises
    :class:`BundleError` naming the file."""
    if REFERENCE_FILE not in bundle.manifest.files:
        return None
    path = Path(bundle.path) / REFERENCE_FILE
    try:
        return ReferenceProfile.from_dict(json.loads(path.read_text()))
    except OutdatedProfileError as exc:
        raise BundleError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path}: unreadable reference profile: {exc}") from None
