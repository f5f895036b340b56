"""The drift verdict: per quantity, per life stage and for the model as a whole.

A quantity (a model feature, a raw reading field or the prediction) has **drifted** when PSI >
``psi`` AND the KS gap > ``ks_effect`` AND its p-value < ``ks_pvalue``, each measured against the
reference **matched to the sample's life stages** (:meth:`prognos.reference.ReferenceProfile.matched`):
the training distribution at the same engine cycles, mixed in the sample's own proportions. That is
what makes an in-distribution fleet quiet whatever its age: a fleet of engines in their first 60
cycles compared with all training windows (half of them degraded) reaches PSI ~1.9 and KS ~0.36 on
FD001 although nothing is wrong; compared with training engines at the same cycles, KS stays under
0.2, while a second fault mode (FD003) still reaches KS 0.3-0.5 and six operating regimes (FD002) 1.0.

The overall verdict is **drift** when at least ``min_share`` of the model's features drifted; raw
fields, predictions and the per-stage breakdown are reported beside it (they explain a verdict, they
do not make it). No verdict (``insufficient``) before the sample has ``min_samples`` rows from at
least ``min_engines`` engines: readings of one engine are strongly correlated (smoothed features
move slowly), so a few engines' worth of rows is not the fleet, however many rows it is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from prognos.lifecycle.drift.statistics import finite, ks_test, psi
from prognos.reference import Distribution, ReferenceDistribution, ReferenceProfile

if TYPE_CHECKING:
    from prognos.config import Settings

__all__ = ["DriftReport", "DriftSample", "DriftThresholds", "QuantityDrift", "StageDrift", "compute_drift",
           "no_reference_report"]


@dataclass(frozen=True)
class DriftThresholds:
    """When a quantity and a model count as drifted (see the module docstring)."""

    psi: float = 0.25
    ks_pvalue: float = 0.01
    ks_effect: float = 0.3
    min_share: float = 0.3  # of the model's input features
    min_samples: int = 100
    min_engines: int = 10  # distinct engines in the sample (when the sample says which)

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        return cls(settings.drift_psi_threshold, settings.drift_ks_pvalue, settings.drift_ks_effect,
                   settings.drift_min_share, settings.drift_min_samples, settings.drift_min_engines)

    def min_features(self, n_features: int) -> int:
        return max(1, math.ceil(self.min_share * n_features - 1e-9))

    def drifted(self, n: int, p: float, ks: float, pvalue: float) -> bool:
        return bool(n >= self.min_samples and p > self.psi and ks > self.ks_effect and pvalue < self.ks_pvalue)


@dataclass(frozen=True)
class QuantityDrift:
    """One feature, raw field or the prediction: reference (matched to the sample's life stages) vs current."""

    name: str
    kind: str  # feature / raw / prediction
    n: int
    psi: float
    ks: float
    ks_pvalue: float
    reference_mean: float
    reference_std: float
    mean: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _quantity(name: str, kind: str, ref: ReferenceDistribution, values: np.ndarray, t: DriftThresholds
              ) -> QuantityDrift:
    x = finite(values)
    p = psi(ref, x)
    ks = ks_test(ref, x)
    return QuantityDrift(name, kind, len(x), p, ks.statistic, ks.pvalue, ref.mean, ref.std,
                         float(x.mean()) if len(x) else float("nan"), t.drifted(len(x), p, ks.statistic, ks.pvalue))


@dataclass(frozen=True)
class DriftSample:
    """Current data: ``features`` (n, n_features) after preprocessing, ``raw`` (n, n_raw) reading
    fields, ``predictions`` (n,) RUL in cycles. Column names say which is which. ``cycles`` (n,)
    the engine cycle of each row (NaN: unknown) and ``engines`` (n,) its engine id, when known."""

    feature_names: list[str]
    features: np.ndarray
    raw_names: list[str]
    raw: np.ndarray
    predictions: np.ndarray
    source: str = ""
    cycles: np.ndarray | None = None
    engines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    @property
    def n_engines(self) -> int | None:
        """Distinct engines in the sample (``None``: the sample does not say)."""
        if self.engines is None:
            return None
        return len({e for e in self.engines.tolist() if e})


@dataclass(frozen=True)
class StageDrift:
    """One life stage of the sample: ``n`` rows (``share`` of the sample) against ``reference_n``
    training rows at the same cycles; ``n_drifted`` features drifted within the stage and the
    largest KS gap, judged only when the stage alone has ``min_samples`` rows (else ``None``)."""

    stage: str
    n: int
    share: float
    reference_n: int
    n_drifted: int | None
    max_ks: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """``status``: ``drift``, ``ok``, ``insufficient`` (too few samples or engines) or ``no_reference``.
    ``stratified``: the reference was matched to the sample's life stages (``stages`` says how)."""

    status: str
    message: str
    model_version: str
    n_samples: int
    source: str
    thresholds: DriftThresholds
    features: list[QuantityDrift] = field(default_factory=list)
    raw: list[QuantityDrift] = field(default_factory=list)
    prediction: QuantityDrift | None = None
    n_drifted: int = 0
    min_drifted: int = 0
    computed_at: str = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0).isoformat()
                             .replace("+00:00", "Z"))
    n_engines: int | None = None
    stratified: bool = False
    stages: list[StageDrift] = field(default_factory=list)

    @property
    def detected(self) -> bool:
        return self.status == "drift"

    @property
    def drifted_features(self) -> list[str]:
        return [q.name for q in self.features if q.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "detected": self.detected, "message": self.message,
            "model_version": self.model_version, "n_samples": self.n_samples, "n_engines": self.n_engines,
            "source": self.source, "computed_at": self.computed_at, "thresholds": asdict(self.thresholds),
            "n_drifted": self.n_drifted, "min_drifted": self.min_drifted, "drifted_features": self.drifted_features,
            "stratified": self.stratified, "stages": [s.to_dict() for s in self.stages],
            "features": [q.to_dict() for q in self.features], "raw": [q.to_dict() for q in self.raw],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
        }


def no_reference_report(model_version: str, source: str, thresholds: DriftThresholds, n: int = 0) -> DriftReport:
    return DriftReport("no_reference", f"no reference profile to judge by: bundle {model_version} was trained before "
                       "drift profiles (or their life stages) existed; retrain it to monitor drift", model_version,
                       n, source, thresholds)


def _stages(reference: ReferenceProfile, sample: DriftSample, at: np.ndarray, t: DriftThresholds
            ) -> list[StageDrift]:
    stages = reference.stages
    if stages is None:
        return []
    out = []
    for s in range(len(stages)):
        rows = at == s
        n = int(rows.sum())
        if not n:
            continue
        n_drifted: int | None = None
        max_ks: float | None = None
        if n >= t.min_samples:
            n_drifted, max_ks = 0, 0.0
            for i, name in enumerate(sample.feature_names):
                parts = reference.by_stage.get(f"feature:{name}")
                if parts is None:
                    continue
                ref: Distribution = parts[s]
                ks = ks_test(ref, sample.features[rows, i])
                n_drifted += t.drifted(n, psi(ref, sample.features[rows, i]), ks.statistic, ks.pvalue)
                max_ks = max(max_ks, ks.statistic)
        out.append(StageDrift(stages.label(s), n, round(n / len(at), 4), stages.n[s], n_drifted, max_ks))
    unknown = int((at < 0).sum())
    if unknown:
        out.append(StageDrift("cycle unknown (overall reference)", unknown, round(unknown / len(at), 4),
                              reference.prediction.n, None, None))
    return out


def compute_drift(reference: ReferenceProfile | None, sample: DriftSample, thresholds: DriftThresholds,
                  model_version: str) -> DriftReport:
    """Compare ``sample`` with ``reference`` (``None``: a bundle without a usable profile)."""
    if reference is None:
        return no_reference_report(model_version, sample.source, thresholds, len(sample))
    t = thresholds
    stratified = reference.stages is not None and sample.cycles is not None
    if stratified and reference.stages is not None and sample.cycles is not None:
        at = reference.stages.index(sample.cycles)
    else:
        at = np.full(len(sample), -1)

    def one(kind: str, name: str, values: np.ndarray) -> QuantityDrift | None:
        ref = reference.matched(kind, name, at)
        return None if ref is None else _quantity(name, kind, ref, values, t)

    feats = [q for i, name in enumerate(sample.feature_names)
             if (q := one("feature", name, sample.features[:, i])) is not None]
    raw = [q for i, name in enumerate(sample.raw_names) if (q := one("raw", name, sample.raw[:, i])) is not None]
    pred = one("prediction", "predicted_rul", sample.predictions)
    assert pred is not None
    n_drifted = sum(q.drifted for q in feats)
    need = t.min_features(len(feats))
    n_engines = sample.n_engines
    if len(sample) < t.min_samples or (n_engines is not None and n_engines < t.min_engines):
        status, n_drifted = "insufficient", 0  # a handful of requests or engines never counts as drift
        message = (f"{len(sample)} samples from {'?' if n_engines is None else n_engines} engines; a verdict "
                   f"needs at least {t.min_samples} samples from {t.min_engines} engines")
        feats = [_undecided(q) for q in feats]
        raw = [_undecided(q) for q in raw]
        pred = _undecided(pred)
    elif n_drifted >= need:
        status = "drift"
        top = sorted((q for q in feats if q.drifted), key=lambda q: -q.psi)[:5]
        message = (f"{n_drifted} of {len(feats)} model features drifted (>= {need}): "
                   + ", ".join(f"{q.name} PSI {q.psi:.2f} KS {q.ks:.2f}" for q in top)
                   + ("; predictions drifted too" if pred.drifted else ""))
    else:
        status = "ok"
        message = f"{n_drifted} of {len(feats)} model features drifted (< {need})"
    if status != "insufficient":
        message += (" (vs training engines at the same life stages)" if stratified
                    else " (vs all training windows: life stages unknown)")
    return DriftReport(status, message, model_version, len(sample), sample.source, t, feats, raw, pred,
                       n_drifted, need, n_engines=n_engines, stratified=stratified,
                       stages=_stages(reference, sample, at, t) if stratified else [])


def _undecided(q: QuantityDrift) -> QuantityDrift:
    from dataclasses import replace

    return replace(q, drifted=False)
