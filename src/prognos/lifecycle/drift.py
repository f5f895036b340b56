"""Drift: how far the data a model sees now has moved from the data it was trained on.

Per model input feature (after preprocessing), per raw required reading field and for the
predictions, a current sample is compared with the bundle's reference profile
(:mod:`prognos.lifecycle.profile`) by

* **PSI** (population stability index) over the reference's decile bins:
  ``sum((cur - ref) * ln(cur / ref))``; 0 = same shares, > 0.25 is the usual "significant shift";
* **KS** — the largest gap between the reference CDF and the current empirical CDF (the effect
  size, 0..1) and its asymptotic p-value (the reference, tens of thousands of rows, is taken as
  the true distribution).

A quantity has **drifted** when PSI > ``psi`` AND the KS gap > ``ks_effect`` AND its p-value <
``ks_pvalue``. Requiring both is deliberate: in-distribution data observed at a different mix of
life stages than training (C-MAPSS test engines are cut early, so their rows lean young) already
reaches PSI 0.2-0.45 with KS gaps <= 0.23 on FD001, whereas FD003 test data (a second fault mode)
reaches KS gaps of 0.3-0.5 and FD002 (six operating regimes) 1.0. The overall verdict is **drift**
when at least ``min_share`` of the model's features drifted; raw fields and predictions are
reported beside it (they explain a verdict, they do not make it).

Sources of the current sample: a file (``prognos drift report --input``, every row of every
engine) or the server's capture of served requests (:class:`DriftCapture`: a sampled, bounded ring
buffer, optionally persisted as JSONL under ``<data_dir>/drift``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prognos.lifecycle.profile import Distribution, ReferenceProfile

if TYPE_CHECKING:
    from prognos.config import Settings
    from prognos.data.cmapss import Readings
    from prognos.data.validation import ValidSequence
    from prognos.serving.predictor import Predictor
    from prognos.serving.service import ServedPrediction

__all__ = [
    "CaptureRecord",
    "DriftCapture",
    "DriftReport",
    "DriftSample",
    "DriftThresholds",
    "KsResult",
    "QuantityDrift",
    "ReportFiles",
    "compute_drift",
    "kolmogorov_pvalue",
    "ks_test",
    "no_reference_report",
    "psi",
    "read_capture",
    "sample_from_readings",
    "sample_from_records",
    "write_report",
]

log = logging.getLogger("prognos.lifecycle")

_EPS = 1e-4  # floor of a bin share: an empty bin must not make PSI infinite
CAPTURE_FILE = "capture.jsonl"
_MAX_PER_CALL = 16


# ---------------------------------------------------------------------------------------- statistics


def psi(reference: Distribution, values: np.ndarray) -> float:
    """Population stability index of ``values`` against the reference's PSI bins (dimensionless)."""
    x = _finite(values)
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


def ks_test(reference: Distribution, values: np.ndarray) -> KsResult:
    """KS statistic between the reference CDF and the empirical CDF of ``values``, with its p-value."""
    x = np.sort(_finite(values))
    n = len(x)
    if not n:
        return KsResult(float("nan"), float("nan"))
    ref = reference.cdf(x)
    above = np.arange(1, n + 1) / n - ref
    below = ref - np.arange(0, n) / n
    d = float(max(above.max(), below.max(), 0.0))
    return KsResult(d, kolmogorov_pvalue(d, n))


def _finite(values: np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


# ---------------------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class DriftThresholds:
    """When a quantity and a model count as drifted (see the module docstring)."""

    psi: float = 0.25
    ks_pvalue: float = 0.01
    ks_effect: float = 0.3
    min_share: float = 0.3  # of the model's input features
    min_samples: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        return cls(settings.drift_psi_threshold, settings.drift_ks_pvalue, settings.drift_ks_effect,
                   settings.drift_min_share, settings.drift_min_samples)

    def min_features(self, n_features: int) -> int:
        return max(1, math.ceil(self.min_share * n_features - 1e-9))


@dataclass(frozen=True)
class QuantityDrift:
    """One feature, raw field or the prediction: reference vs current."""

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


def _quantity(name: str, kind: str, ref: Distribution, values: np.ndarray, t: DriftThresholds) -> QuantityDrift:
    x = _finite(values)
    p = psi(ref, x)
    ks = ks_test(ref, x)
    drifted = bool(len(x) >= t.min_samples and p > t.psi and ks.statistic > t.ks_effect and ks.pvalue < t.ks_pvalue)
    return QuantityDrift(name, kind, len(x), p, ks.statistic, ks.pvalue, ref.mean, ref.std,
                         float(x.mean()) if len(x) else float("nan"), drifted)


@dataclass(frozen=True)
class DriftSample:
    """Current data: ``features`` (n, n_features) after preprocessing, ``raw`` (n, n_raw) reading
    fields, ``predictions`` (n,) RUL in cycles. Column names say which is which."""

    feature_names: list[str]
    features: np.ndarray
    raw_names: list[str]
    raw: np.ndarray
    predictions: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.predictions)


@dataclass(frozen=True)
class DriftReport:
    """``status``: ``drift``, ``ok``, ``insufficient`` (too few samples) or ``no_reference``."""

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

    @property
    def detected(self) -> bool:
        return self.status == "drift"

    @property
    def drifted_features(self) -> list[str]:
        return [q.name for q in self.features if q.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "detected": self.detected, "message": self.message,
            "model_version": self.model_version, "n_samples": self.n_samples, "source": self.source,
            "computed_at": self.computed_at, "thresholds": asdict(self.thresholds),
            "n_drifted": self.n_drifted, "min_drifted": self.min_drifted, "drifted_features": self.drifted_features,
            "features": [q.to_dict() for q in self.features], "raw": [q.to_dict() for q in self.raw],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
        }


def no_reference_report(model_version: str, source: str, thresholds: DriftThresholds, n: int = 0) -> DriftReport:
    return DriftReport("no_reference", f"no reference profile: bundle {model_version} was trained before drift "
                       "profiles existed (no reference.json); retrain it to monitor drift", model_version, n, source,
                       thresholds)


def compute_drift(reference: ReferenceProfile | None, sample: DriftSample, thresholds: DriftThresholds,
                  model_version: str) -> DriftReport:
    """Compare ``sample`` with ``reference`` (``None``: a bundle without a profile)."""
    if reference is None:
        return no_reference_report(model_version, sample.source, thresholds, len(sample))
    feats = [_quantity(name, "feature", reference.features[name], sample.features[:, i], thresholds)
             for i, name in enumerate(sample.feature_names) if name in reference.features]
    raw = [_quantity(name, "raw", reference.raw[name], sample.raw[:, i], thresholds)
           for i, name in enumerate(sample.raw_names) if name in reference.raw]
    pred = _quantity("predicted_rul", "prediction", reference.prediction, sample.predictions, thresholds)
    n_drifted = sum(q.drifted for q in feats)
    need = thresholds.min_features(len(feats))
    if len(sample) < thresholds.min_samples:
        status = "insufficient"
        message = f"{len(sample)} samples; a verdict needs at least {thresholds.min_samples}"
    elif n_drifted >= need:
        status = "drift"
        top = sorted((q for q in feats if q.drifted), key=lambda q: -q.psi)[:5]
        message = (f"{n_drifted} of {len(feats)} model features drifted (>= {need}): "
                   + ", ".join(f"{q.name} PSI {q.psi:.2f} KS {q.ks:.2f}" for q in top)
                   + ("; predictions drifted too" if pred.drifted else ""))
    else:
        status = "ok"
        message = f"{n_drifted} of {len(feats)} model features drifted (< {need})"
    return DriftReport(status, message, model_version, len(sample), sample.source, thresholds, feats, raw, pred,
                       n_drifted, need)


# ---------------------------------------------------------------------------------------- samples


def sample_from_readings(predictor: Predictor, readings: Readings, *, max_rows: int = 20000, seed: int = 0,
                         source: str = "") -> DriftSample:
    """Every row of every engine in ``readings`` as the model would see it streamed cycle by cycle
    (features smoothed over the engine's history), with the model's prediction at that row. At most
    ``max_rows`` rows, drawn uniformly (seeded). Values are not range-checked: out-of-range data is
    exactly what a drift report should show."""
    pipeline = predictor.pipeline
    cols = pipeline.input_columns
    feats, raws, windows = [], [], []
    for e in readings.engines():
        feats.append(pipeline.transform_engine(e.values))
        raws.append(e.values[:, cols])
        windows.append(e.values)
    features = np.concatenate(feats) if feats else np.zeros((0, pipeline.n_features))
    raw = np.concatenate(raws) if raws else np.zeros((0, len(cols)))
    n = len(features)
    keep = np.arange(n)
    if n > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    predictions = np.empty(len(keep))
    start, pos = 0, 0
    for values in windows:  # the model on the window ending at each kept row, engine by engine
        stop = start + len(values)
        rows = keep[(keep >= start) & (keep < stop)] - start
        if len(rows):
            x = pipeline.engine_windows(values)[rows]
            for i in range(0, len(x), 1024):
                chunk = x[i:i + 1024]
                predictions[pos:pos + len(chunk)] = predictor.predict_windows(chunk)
                pos += len(chunk)
        start = stop
    return DriftSample(list(pipeline.sensors_ or []), features[keep], list(pipeline.required_fields), raw[keep],
                       predictions, source or f"{readings.source} ({len(keep)} of {n} rows)")


@dataclass(frozen=True)
class CaptureRecord:
    """One captured request: the last row of its feature window, its raw reading and the answer.
    ``t`` is the capture time (UNIX seconds)."""

    t: float
    model_version: str
    features: list[float]
    raw: list[float]
    prediction: float

    def to_json(self) -> str:
        return json.dumps({"t": round(self.t, 3), "model_version": self.model_version,
                           "features": [round(v, 6) for v in self.features],
                           "raw": [round(v, 6) for v in self.raw], "prediction": round(self.prediction, 4)},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> CaptureRecord:
        d = json.loads(line)
        return cls(float(d["t"]), str(d["model_version"]), [float(v) for v in d["features"]],
                   [float(v) for v in d["raw"]], float(d["prediction"]))


def sample_from_records(predictor: Predictor, records: Sequence[CaptureRecord], source: str = "") -> DriftSample:
    """Captured records of ``predictor``'s model as a sample (records of other versions are skipped)."""
    mine = [r for r in records if r.model_version == predictor.version]
    nf, nr = predictor.pipeline.n_features, len(predictor.pipeline.required_fields)
    return DriftSample(
        list(predictor.pipeline.sensors_ or []),
        np.array([r.features for r in mine], dtype=np.float64).reshape(len(mine), nf),
        list(predictor.pipeline.required_fields),
        np.array([r.raw for r in mine], dtype=np.float64).reshape(len(mine), nr),
        np.array([r.prediction for r in mine], dtype=np.float64),
        source or f"{len(mine)} captured requests",
    )


class DriftCapture:
    """Samples served predictions at ``rate`` into a ring buffer of ``buffer_size`` records.

    :meth:`observe` is a :class:`~prognos.serving.service.PredictionService` observer: it runs on
    the request path, so it only draws a random number per prediction and, for the sampled few,
    takes the window's last feature row (O(window) work, no I/O). :meth:`flush` (called by the
    server's drift job, off the event loop) appends new records to ``<directory>/capture.jsonl``;
    past ``max_rows`` lines the file rotates to ``capture.1.jsonl`` (one old generation is kept),
    so the disk holds at most 2 x ``max_rows`` records.
    """

    def __init__(self, rate: float, buffer_size: int, directory: Path | None = None, max_rows: int = 0,
                 seed: int | None = None) -> None:
        self.rate = rate
        self.buffer: deque[CaptureRecord] = deque(maxlen=buffer_size)
        self.directory = directory if max_rows > 0 else None
        self.max_rows = max_rows
        self.captured = 0
        self._pending: deque[CaptureRecord] = deque(maxlen=buffer_size)  # not yet on disk
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._file_rows: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftCapture:
        return cls(settings.drift_sample_rate, settings.drift_buffer_size, settings.data_dir / "drift",
                   settings.drift_capture_max_rows)

    def observe(self, predictor: Predictor, engine_ids: Sequence[str], seqs: Sequence[ValidSequence],
                served: Sequence[ServedPrediction]) -> None:
        if self.rate <= 0 or not seqs:
            return
        # At most _MAX_PER_CALL per call: a 1000-engine batch must not do 100 feature transforms inline.
        picked = np.flatnonzero(self._rng.random(len(seqs)) < self.rate)[:_MAX_PER_CALL].tolist()
        if not picked:
            return
        cols = predictor.pipeline.input_columns
        now = time.time()
        for i in picked:
            values = seqs[i].values
            # Features over the request's own readings, as the model saw them (smoothing starts at
            # its first reading); only the last row is the state the prediction is about.
            row = predictor.pipeline.transform_engine(values[-(2 * predictor.window + 20):])[-1]
            rec = CaptureRecord(now, predictor.version, [float(v) for v in row],
                                [float(v) for v in values[-1, cols]], float(served[i].prediction.rul))
            with self._lock:
                self.buffer.append(rec)
                self._pending.append(rec)
                self.captured += 1

    def records(self, model_version: str | None = None) -> list[CaptureRecord]:
        with self._lock:
            recs = list(self.buffer)
        return [r for r in recs if model_version is None or r.model_version == model_version]

    def flush(self) -> int:
        """Append records captured since the last flush to the JSONL file (blocking I/O)."""
        if self.directory is None:
            with self._lock:
                self._pending.clear()
            return 0
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        if not pending:
            return 0
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / CAPTURE_FILE
        if self._file_rows is None:
            self._file_rows = _count_lines(path)
        if self._file_rows + len(pending) > self.max_rows and self._file_rows:
            path.replace(self.directory / "capture.1.jsonl")
            self._file_rows = 0
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(r.to_json() + "\n" for r in pending))
        self._file_rows += len(pending)
        return len(pending)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def read_capture(directory: Path, *, model_version: str | None = None, since: float | None = None
                 ) -> list[CaptureRecord]:
    """Records a server persisted under ``directory`` (oldest first), optionally of one model
    version and captured at or after ``since`` (UNIX seconds). Unreadable lines are skipped."""
    out: list[CaptureRecord] = []
    for name in ("capture.1.jsonl", CAPTURE_FILE):
        path = Path(directory) / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = CaptureRecord.from_json(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash mid-write
            if (model_version is None or rec.model_version == model_version) and (since is None or rec.t >= since):
                out.append(rec)
    return out


# ---------------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    plots: bool  # False when matplotlib is not installed (the report has tables only)


def write_report(report: DriftReport, reference: ReferenceProfile | None, sample: DriftSample, out: Path
                 ) -> ReportFiles:
    """Write ``drift.json`` and ``drift.html`` (tables and, with matplotlib, histograms of reference
    vs current embedded as base64 PNGs) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "drift.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    images: list[tuple[str, str]] = []
    plots = False
    if reference is not None and len(sample):
        try:
            images = _plots(reference, sample, report)
            plots = True
        except ImportError:
            log.warning("matplotlib is not installed: the drift report has no plots")
    html_path = out / "drift.html"
    html_path.write_text(_html(report, images))
    return ReportFiles(html_path, json_path, plots)


def _plots(reference: ReferenceProfile, sample: DriftSample, report: DriftReport) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drifted = {(q.kind, q.name) for q in [*report.features, *report.raw] if q.drifted}
    groups: list[tuple[str, str, list[tuple[str, Distribution, np.ndarray]]]] = [
        ("Model features (after preprocessing, z-score units)", "feature",
         [(n, reference.features[n], sample.features[:, i]) for i, n in enumerate(sample.feature_names)
          if n in reference.features]),
        ("Raw reading fields (C-MAPSS units)", "raw",
         [(n, reference.raw[n], sample.raw[:, i]) for i, n in enumerate(sample.raw_names) if n in reference.raw]),
        ("Predicted RUL (cycles)", "prediction", [("predicted_rul", reference.prediction, sample.predictions)]),
    ]
    images = []
    for title, kind, items in groups:
        if not items:
            continue
        cols = min(4, len(items))
        rows = math.ceil(len(items) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
        for ax, (name, ref, cur) in zip(axes.ravel(), items, strict=False):
            edges = np.asarray(ref.hist_edges)
            x = _finite(cur)
            width = edges[1] - edges[0]
            lo, hi = min(edges[0], x.min() if len(x) else edges[0]), max(edges[-1], x.max() if len(x) else edges[-1])
            ax.stairs(ref.hist_density, edges, fill=True, alpha=0.45, label="reference")
            if len(x):
                bins = np.arange(lo, hi + width, width) if (hi - lo) / width <= 400 else 60
                ax.hist(x, bins=bins, density=True, histtype="step", linewidth=1.4, label="current")
            ax.set_title(name + ("  DRIFT" if (kind, name) in drifted or (kind == "prediction" and report.prediction
                                                                      and report.prediction.drifted) else ""),
                         fontsize=9, color="#b00020" if (kind, name) in drifted else "black")
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(items):]:
            ax.axis("off")
        axes.ravel()[0].legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        images.append((title, base64.b64encode(buf.getvalue()).decode("ascii")))
    return images


def _table(rows: Iterable[QuantityDrift]) -> str:
    def num(v: float, fmt: str) -> str:
        return format(v, fmt) if math.isfinite(v) else "-"

    body = "".join(
        f"<tr{' class=drift' if q.drifted else ''}><td>{html.escape(q.name)}</td><td>{q.n}</td>"
        f"<td>{num(q.psi, '.3f')}</td><td>{num(q.ks, '.3f')}</td><td>{num(q.ks_pvalue, '.2g')}</td>"
        f"<td>{num(q.reference_mean, '.4g')} ± {num(q.reference_std, '.3g')}</td><td>{num(q.mean, '.4g')}</td>"
        f"<td>{'yes' if q.drifted else ''}</td></tr>" for q in rows)
    return ("<table><thead><tr><th>name</th><th>n</th><th>PSI</th><th>KS</th><th>KS p</th><th>reference mean ± sd</th>"
            f"<th>current mean</th><th>drifted</th></tr></thead><tbody>{body}</tbody></table>")


def _html(report: DriftReport, images: list[tuple[str, str]]) -> str:
    t = report.thresholds
    verdict = {"drift": "DRIFT DETECTED", "ok": "no drift", "insufficient": "not enough data",
               "no_reference": "no reference profile"}[report.status]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>prognos drift report</title><style>"
        "body{font:14px system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}"
        "tr.drift{background:#fde2e4}.verdict{font-size:1.4em;font-weight:bold}img{max-width:100%}</style></head><body>",
        f"<h1>Drift report: model {html.escape(report.model_version)}</h1>",
        f"<p class=verdict>{verdict}</p><p>{html.escape(report.message)}</p>",
        f"<p>Data: {html.escape(report.source)}; {report.n_samples} samples; computed {report.computed_at}.</p>",
        f"<p>A quantity drifted when PSI &gt; {t.psi:g} and the KS gap &gt; {t.ks_effect:g} with p &lt; "
        f"{t.ks_pvalue:g}; the model drifted when at least {report.min_drifted} of its features did "
        f"({t.min_share:.0%}). At least {t.min_samples} samples are needed.</p>",
    ]
    if report.features:
        parts += ["<h2>Model features</h2>", _table(report.features)]
    if report.prediction is not None:
        parts += ["<h2>Predictions</h2>", _table([report.prediction])]
    if report.raw:
        parts += ["<h2>Raw reading fields</h2>", _table(report.raw)]
    for title, png in images:
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
