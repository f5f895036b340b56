"""Evaluate a bundle with the field's protocol and write a report (metrics.json, per-engine CSV, plots).

Official protocol: the last window of each test engine against the RUL file. Without a RUL file:
the engines the bundle held out of training, each cut so that it looks like an official test engine
(**test-like cut**): the true RUL at the cut is drawn (seeded) from the RUL values of FD001's official
test set (``RUL_FD001.txt`` in the data directory; 7–145 cycles, median 86) among those that leave the
engine at least :data:`MIN_HISTORY` cycles of history. A uniform random cut — the old protocol, which
puts the cut anywhere in the life and so scores mostly healthy engines — is reported beside it
(``uniform_cut`` in ``metrics.json``) for comparison.

Metrics are computed against the true RUL capped at the bundle's ``rul_cap`` (the piecewise-linear
target of the literature); ``*_uncapped`` figures against the raw truth sit beside them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prognos.data.cmapss import EngineSeries, Readings, load_subset
from prognos.errors import DataFormatError
from prognos.metrics import rul_metrics
from prognos.serving.predictor import Predictor, Strata

__all__ = ["MIN_HISTORY", "EvaluationReport", "coverage_by", "cut_like_test_set", "evaluate_bundle", "truncate_engines"]

MIN_HISTORY = 31  # cycles: the shortest FD001 official test engine


@dataclass(frozen=True)
class EvaluationReport:
    protocol: str
    metrics: dict[str, Any]
    out_dir: Path


def truncate_engines(readings: Readings, seed: int) -> tuple[list[EngineSeries], np.ndarray]:
    """Cut every run-to-failure engine at a random cycle; return the cut engines and true RUL."""
    rng = np.random.default_rng(seed)
    cut, rul = [], []
    for e in readings.engines():
        n = len(e)
        keep = int(rng.integers(max(1, n // 10), n)) if n > 1 else 1
        cut.append(EngineSeries(e.engine_id, e.cycles[:keep], e.values[:keep]))
        rul.append(float(e.cycles[-1] - e.cycles[keep - 1]))
    return cut, np.array(rul)


def cut_like_test_set(readings: Readings, reference_rul: np.ndarray, seed: int,
                   min_history: int = MIN_HISTORY) -> tuple[list[EngineSeries], np.ndarray]:
    """Cut every run-to-failure engine so its true RUL at the cut follows ``reference_rul`` (cycles,
    e.g. an official test set's RUL file): each engine draws from the reference values that leave it
    ``min_history`` cycles (or half its life, if shorter); returns the cut engines and true RUL."""
    rng = np.random.default_rng(seed)
    ref = np.sort(np.asarray(reference_rul, dtype=np.float64))
    cut, rul = [], []
    for e in readings.engines():
        n = len(e)
        room = n - min(min_history, max(1, n // 2))
        ok = ref[ref <= room]
        r = int(rng.choice(ok)) if len(ok) else int(rng.integers(0, max(1, room)))
        keep = n - r
        cut.append(EngineSeries(e.engine_id, e.cycles[:keep], e.values[:keep]))
        rul.append(float(e.cycles[-1] - e.cycles[keep - 1]))
    return cut, np.array(rul)


def reference_rul(data_dir: Path) -> np.ndarray | None:
    """FD001's official test RUL values (the shape of truncation the test sets use), if present."""
    path = Path(data_dir) / "RUL_FD001.txt"
    if not path.is_file():
        return None
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as exc:
        raise DataFormatError(f"{path}: not a column of numbers ({exc})") from None
    return values if len(values) else None


def evaluate_bundle(
    predictor: Predictor, data_dir: Path, dataset: str, out_dir: Path, rul_file: Path | None = None, seed: int = 0,
) -> EvaluationReport:
    manifest = predictor.bundle.manifest
    subset = load_subset(data_dir, dataset, rul_file=rul_file)
    uniform_engines: list[EngineSeries] | None = None
    uniform_true: np.ndarray | None = None
    if subset.test is not None and subset.rul is not None:
        engines = list(subset.test.engines())
        true = subset.rul
        protocol = f"official test set: last cycle of each {subset.name} test engine vs {subset.rul_source}"
    elif manifest.holdout_engines:
        held = subset.train.select(set(manifest.holdout_engines))
        ref = reference_rul(data_dir)
        uniform_engines, uniform_true = truncate_engines(held, seed)
        if ref is not None:
            engines, true = cut_like_test_set(held, ref, seed)
            protocol = (
                f"held-out training engines ({len(engines)} of {subset.name}, not seen in training), each cut "
                f"test-like (RUL at the cut drawn from RUL_FD001.txt, ≥ {MIN_HISTORY} cycles of history) — "
                "no RUL file for the test set"
            )
        else:
            engines, true = uniform_engines, uniform_true
            protocol = (
                f"held-out training engines ({len(engines)} of {subset.name}, not seen in training), each cut at "
                "a seeded uniformly random cycle (RUL_FD001.txt absent, so no test-like cut) — no RUL file"
            )
    else:
        raise DataFormatError(
            f"no RUL file for {subset.name} in {data_dir} and the bundle held out no training engines; "
            "pass --rul-file or train with --holdout 0.2"
        )
    from prognos.data.validation import check_values

    for e in engines:
        check_values(e.values, predictor.spec, f"engine {e.engine_id}")
    cap = manifest.rul_cap
    uniform: dict[str, Any] | None = None
    if uniform_engines is not None and uniform_engines is not engines:
        assert uniform_true is not None
        u = predictor.calibrate(
            predictor.predict_windows(np.stack([predictor.window_of(e.values) for e in uniform_engines])),
            predictor.strata([e.values for e in uniform_engines], [e.cycles for e in uniform_engines]))
        uniform = dict(rul_metrics(u.rul, np.minimum(uniform_true, cap), u.lower, u.upper).to_dict())
        uniform["protocol"] = "the same held-out engines, each cut at a seeded uniformly random cycle"
    x = np.stack([predictor.window_of(e.values) for e in engines])
    strata = predictor.strata([e.values for e in engines], [e.cycles for e in engines])
    iv = predictor.calibrate(predictor.predict_windows(x), strata)
    pred = iv.rul
    capped = np.minimum(true, cap)
    m: dict[str, Any] = dict(rul_metrics(pred, capped, iv.lower, iv.upper).to_dict())
    raw = rul_metrics(pred, true, iv.lower, iv.upper)
    if uniform is not None:
        m["uniform_cut"] = uniform
    m.update(
        rmse_uncapped=raw.rmse, score_uncapped=raw.score, coverage_uncapped=raw.coverage,
        confidence_level=predictor.confidence, protocol=protocol, dataset=subset.name,
        model_version=predictor.version, rul_cap=cap,
        coverage_by=coverage_by(predictor, pred, capped, iv.lower, iv.upper, strata.history, strata.regime),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
    with open(out_dir / "engines.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["engine_id", "last_cycle", "true_rul", "true_rul_capped", "predicted_rul", "lower", "upper", "error"]
        )
        for e, t, tc, p, lo, hi in zip(engines, true, capped, pred, iv.lower, iv.upper, strict=True):
            w.writerow([e.engine_id, int(e.cycles[-1]), f"{t:g}", f"{tc:g}", f"{p:.2f}", f"{lo:.2f}", f"{hi:.2f}",
                        f"{p - tc:.2f}"])
    _plots(predictor, engines, true, capped, pred, iv.lower, iv.upper, out_dir, subset.name)
    return EvaluationReport(protocol, m, out_dir)


def coverage_by(predictor: Predictor, pred: np.ndarray, true: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                history: np.ndarray, regime: np.ndarray) -> dict[str, list[dict[str, Any]]]:
    """Coverage and mean width (cycles) per group of predicted RUL, of history length and of regime:
    conditional calibration is only as good as its worst group."""
    cal = predictor.calibration
    inside = (true >= lower) & (true <= upper)
    edges = [round(e, 1) for e in cal.edges]
    bounds = [0.0, *edges, cal.cap]
    h_bounds = [1, *cal.history_edges]
    groups = {
        "predicted_rul": (cal.bins_of(pred), lambda j: f"{bounds[j]:g}-{bounds[j + 1]:g} cycles"),
        "history": (cal.groups_of(history),
                    lambda j: f">= {h_bounds[j]} cycles" if j == len(h_bounds) - 1
                    else f"{h_bounds[j]}-{h_bounds[j + 1] - 1} cycles"),
        "regime": (regime, lambda j: f"regime {j}"),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for name, (key, label) in groups.items():
        out[name] = [
            {"group": label(int(j)), "n": int((key == j).sum()), "coverage": round(float(inside[key == j].mean()), 3),
             "mean_width": round(float((upper - lower)[key == j].mean()), 2)}
            for j in np.unique(key)
        ]
    return out


def _plots(predictor: Predictor, engines: list[EngineSeries], true: np.ndarray, capped: np.ndarray, pred: np.ndarray,
           lower: np.ndarray, upper: np.ndarray, out: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cap = predictor.bundle.manifest.rul_cap
    fig, ax = plt.subplots(figsize=(6, 6))
    yerr = [np.maximum(pred - lower, 0), np.maximum(upper - pred, 0)]
    ax.errorbar(capped, pred, yerr=yerr, fmt="o", ms=3, alpha=0.5, elinewidth=0.6)
    ax.plot([0, cap], [0, cap], "k--", lw=1)
    ax.set(xlabel="true RUL, capped (cycles)", ylabel="predicted RUL (cycles)",
           title=f"{name}: predicted vs true ({predictor.confidence:.0%} intervals)")
    fig.tight_layout()
    fig.savefig(out / "pred_vs_true.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(pred - capped, bins=30, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="k", lw=1)
    ax.set(xlabel="error = predicted − true (cycles); > 0 is late", ylabel="engines", title=f"{name}: error histogram")
    fig.tight_layout()
    fig.savefig(out / "error_hist.png", dpi=110)
    plt.close(fig)

    # Trajectories: predictions at every cycle of a few engines (longest histories), with bands.
    order = np.argsort([-len(e) for e in engines])[:4]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharey=True)
    for ax, i in zip(axes.ravel(), order, strict=False):
        e = engines[i]
        history = np.arange(1, len(e) + 1)
        band = predictor.calibrate(predictor.predict_windows(predictor.pipeline.engine_windows(e.values)),
                                   Strata(history, predictor.pipeline.regime_of(e.values), e.cycles))
        p = band.rul
        t = np.minimum(true[i] + (e.cycles[-1] - e.cycles), cap)
        ax.fill_between(e.cycles, band.lower, band.upper, alpha=0.25, label=f"{predictor.confidence:.0%} interval")
        ax.plot(e.cycles, p, label="predicted")
        ax.plot(e.cycles, t, "k--", label="true (capped)")
        ax.set(title=f"engine {e.engine_id}", xlabel="cycle", ylabel="RUL (cycles)")
    axes.ravel()[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "trajectories.png", dpi=110)
    plt.close(fig)
