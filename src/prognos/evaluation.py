"""Evaluate a bundle two ways and write a report (metrics.json, per-engine CSV, plots).

**Every cycle** (the yardstick: a fleet is watched at every cycle). Each engine is predicted at every
one of its cycles from its latest ``history_readings`` readings, exactly as the fleet sends them, in
one batched model call; the truth at cycle ``t`` is ``R + L − t`` (``R`` the engine's true RUL after
its last cycle ``L``: the RUL file's value for an official test engine, 0 for a run-to-failure
training engine), capped at the bundle's ``rul_cap``. Reported: RMSE / bias / coverage by true-RUL
bin and age bin; in the last :data:`LATE_LIFE` cycles of life the share of predictions whose lower
bound is above the truth and of dangerous misses (later than the truth by more than
:data:`DANGEROUS_LATE`); status changes against the truth's (judged with the same thresholds), raw
and with the fleet's hysteresis (:class:`prognos.status.HeldStatus`); reversals to a better status
and how many came on a falling prediction; the true RUL at the first warning and the first
critical; per-engine coverage (worst engines named).

**Last cycle** (the field's protocol): the last window of each test engine against the RUL file.
Without a RUL file: the engines the bundle held out of training, each cut at a seeded uniformly
random cycle (no test set's RUL values shape the cut), and every cycle of their whole lives.

Metrics are computed against the true RUL capped at the bundle's ``rul_cap`` (the piecewise-linear
target of the literature); ``*_uncapped`` figures against the raw truth sit beside them.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prognos.correction import AGE_BINS
from prognos.data.cmapss import EngineSeries, Readings, load_subset
from prognos.errors import DataFormatError
from prognos.metrics import rul_metrics
from prognos.serving.predictor import Predictor, Strata
from prognos.status import HEALTH_STATUSES, HeldStatus, StatusThresholds

__all__ = ["DANGEROUS_LATE", "LATE_LIFE", "TRUE_RUL_BINS", "EvaluationReport", "Trajectories", "coverage_by",
           "evaluate_bundle", "every_cycle_metrics", "predict_every_cycle", "truncate_engines"]

#: Lower edges of the true-RUL bins (capped truth, cycles) of the every-cycle table; the last is open.
TRUE_RUL_BINS = (0, 25, 50, 75, 100)
LATE_LIFE = 50  # cycles: "the last 50 cycles of life" (true RUL below this)
DANGEROUS_LATE = 20  # cycles: a prediction later than the truth by more than this, in late life


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


@dataclass(frozen=True)
class Trajectories:
    """Predictions at every cycle of many engines, engine after engine, (n,) each; cycles."""

    engine_ids: np.ndarray
    age: np.ndarray  # readings since the engine's first, at each prediction
    true: np.ndarray  # uncapped true RUL
    pred: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def predict_every_cycle(predictor: Predictor, engines: Sequence[EngineSeries], true_at_end: np.ndarray,
                        readings: int | None = None) -> Trajectories:
    """Predict every engine at each of its cycles from its latest ``readings`` readings (default: what
    the fleet sends, ``predictor.history_readings``), all windows in one model call."""
    readings = readings or predictor.history_readings
    pipe = predictor.pipeline
    x = np.concatenate([pipe.recent_windows(e.values, readings) for e in engines])
    ages = [np.arange(1, len(e) + 1) for e in engines]
    strata = Strata(np.minimum(np.concatenate(ages), readings),
                    np.concatenate([pipe.regime_of(e.values) for e in engines]),
                    np.concatenate([e.cycles for e in engines]))
    c = predictor.calibrate(predictor.predict_windows(x), strata)
    true = np.concatenate([r + e.cycles[-1] - e.cycles for e, r in zip(engines, true_at_end, strict=True)])
    ids = np.concatenate([np.full(len(e), e.engine_id) for e in engines])
    return Trajectories(ids, np.concatenate(ages), true.astype(np.float64), c.rul, c.lower, c.upper)


def _table(key: np.ndarray, lows: Sequence[int], d: np.ndarray, inside: np.ndarray, unit: str
           ) -> list[dict[str, Any]]:
    b = np.searchsorted(np.asarray(lows), key, side="right") - 1
    rows = []
    for j in range(len(lows)):
        m = b == j
        if m.any():
            label = f">= {lows[j]}" if j == len(lows) - 1 else f"{lows[j]}-{lows[j + 1] - 1}"
            rows.append({unit: label, "n": int(m.sum()), "rmse": round(float(np.sqrt(np.mean(d[m] ** 2))), 2),
                         "bias": round(float(d[m].mean()), 2), "coverage": round(float(inside[m].mean()), 3)})
    return rows


def _statuses(lower: np.ndarray, thresholds: StatusThresholds) -> np.ndarray:
    """Status rank (0 healthy, 1 warning, 2 critical) of every lower bound, vectorised."""
    return np.where(lower < thresholds.critical, 2, np.where(lower < thresholds.warning, 1, 0))


def _held(raw: np.ndarray, starts: np.ndarray, hold: int) -> np.ndarray:
    """The fleet's stored status (ranks) after each prediction: :class:`HeldStatus` engine by engine."""
    out = np.empty_like(raw)
    state = HeldStatus(HEALTH_STATUSES[0])
    for i, r in enumerate(raw.tolist()):
        state = HeldStatus(HEALTH_STATUSES[r]) if starts[i] else state.next(HEALTH_STATUSES[r], hold)
        out[i] = HEALTH_STATUSES.index(state.status)
    return out


def _changes(s: np.ndarray, starts: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    step = ~starts
    changed = step & (s != np.roll(s, 1))
    better = step & (s < np.roll(s, 1))
    falling = better & (pred < np.roll(pred, 1))
    idx = np.flatnonzero(changed)
    engine_of = np.cumsum(starts) - 1
    close = sum(1 for a, b in itertools.pairwise(idx) if engine_of[a] == engine_of[b] and b - a <= 5)
    return {"changes": int(changed.sum()), "reversals_to_better": int(better.sum()),
            "reversals_on_falling_prediction": int(falling.sum()),
            "engines_with_reversals": len(np.unique(engine_of[better])),
            "changes_within_5_cycles_of_previous": int(close)}


def every_cycle_metrics(t: Trajectories, cap: float, thresholds: StatusThresholds, hold: int) -> dict[str, Any]:
    """The every-cycle figures of :class:`Trajectories` (module docstring); ``hold`` is the fleet's
    ``status_hold_readings``."""
    capped = np.minimum(t.true, cap)
    d = t.pred - capped
    inside = (capped >= t.lower) & (capped <= t.upper)
    starts = np.r_[True, t.engine_ids[1:] != t.engine_ids[:-1]]
    late = t.true < LATE_LIFE
    raw = _statuses(t.lower, thresholds)
    truth = _statuses(capped, thresholds)
    held = _held(raw, starts, hold)
    first: dict[str, Any] = {}
    offsets = np.flatnonzero(starts)
    for name, rank in (("warning", 1), ("critical", 2)):
        hits = [(o, np.flatnonzero(seg >= rank)) for o, seg in zip(offsets, np.split(raw, offsets[1:]), strict=True)]
        vals = np.array([t.true[o + h[0]] for o, h in hits if len(h)])
        first[name] = {"engines": len(vals), "median_true_rul": float(np.median(vals)) if len(vals) else None,
                       "min_true_rul": float(vals.min()) if len(vals) else None}
    per_engine = []
    for e in np.unique(t.engine_ids):
        m = t.engine_ids == e
        per_engine.append((float(inside[m].mean()), str(e), int(m.sum())))
    per_engine.sort()
    jumps = int((~starts & (np.abs(t.pred - np.roll(t.pred, 1)) > 5)).sum())
    return {
        "n_predictions": len(d), "n_engines": int(starts.sum()),
        "rmse": round(float(np.sqrt(np.mean(d ** 2))), 3), "bias": round(float(d.mean()), 3),
        "coverage": round(float(inside.mean()), 3),
        "by_true_rul": _table(capped, TRUE_RUL_BINS, d, inside, "true_rul"),
        "by_age": _table(t.age, AGE_BINS, d, inside, "age"),
        "late_life": {"cycles": LATE_LIFE, "n": int(late.sum()),
                      "below_lower_bound": round(float((t.true < t.lower)[late].mean()), 4) if late.any() else None,
                      "dangerous_misses": round(float((d > DANGEROUS_LATE)[late].mean()), 4) if late.any() else None,
                      "dangerous_late_by": DANGEROUS_LATE,
                      "engines_with_dangerous_misses": len(np.unique(t.engine_ids[late & (d > DANGEROUS_LATE)]))},
        "status": {"thresholds": {"warning": thresholds.warning, "critical": thresholds.critical},
                   "truth_changes": _changes(truth, starts, capped)["changes"],
                   "predictor": _changes(raw, starts, t.pred),
                   "fleet": {"hold_readings": hold, **_changes(held, starts, t.pred)}},
        "first_alarm": first,
        "jumps_over_5_cycles": jumps,
        "worst_engines_by_coverage": [{"engine_id": e, "coverage": round(c, 3), "n": n} for c, e, n in per_engine[:5]],
    }


def evaluate_bundle(
    predictor: Predictor, data_dir: Path, dataset: str, out_dir: Path, rul_file: Path | None = None, seed: int = 0,
    thresholds: StatusThresholds | None = None, hold: int | None = None,
) -> EvaluationReport:
    """Both protocols (module docstring) with the status thresholds and hysteresis of the settings
    unless given; writes ``metrics.json`` (``every_cycle`` and, when there are held-out engines,
    ``every_cycle_holdout`` beside the last-cycle figures), ``engines.csv`` and plots to ``out_dir``."""
    from prognos.config import get_settings

    settings = get_settings()
    thresholds = thresholds or StatusThresholds.from_settings(settings)
    hold = settings.status_hold_readings if hold is None else hold
    manifest = predictor.bundle.manifest
    subset = load_subset(data_dir, dataset, rul_file=rul_file)
    held_engines: list[EngineSeries] = []
    if manifest.holdout_engines:
        held_engines = list(subset.train.select(set(manifest.holdout_engines)).engines())
    if subset.test is not None and subset.rul is not None:
        engines = list(subset.test.engines())
        true = subset.rul
        protocol = f"official test set: last cycle of each {subset.name} test engine vs {subset.rul_source}"
    elif held_engines:
        engines, true = truncate_engines(subset.train.select(set(manifest.holdout_engines)), seed)
        protocol = (
            f"held-out training engines ({len(engines)} of {subset.name}, not seen in training), each cut at "
            "a seeded uniformly random cycle — no RUL file for the test set"
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
    x = np.stack([predictor.window_of(e.values) for e in engines])
    strata = predictor.strata([e.values for e in engines], [e.cycles for e in engines])
    iv = predictor.calibrate(predictor.predict_windows(x), strata)
    pred = iv.rul
    capped = np.minimum(true, cap)
    m: dict[str, Any] = dict(rul_metrics(pred, capped, iv.lower, iv.upper).to_dict())
    raw = rul_metrics(pred, true, iv.lower, iv.upper)
    m.update(
        rmse_uncapped=raw.rmse, score_uncapped=raw.score, coverage_uncapped=raw.coverage,
        confidence_level=predictor.confidence, protocol=protocol, dataset=subset.name,
        model_version=predictor.version, rul_cap=cap,
        coverage_by=coverage_by(predictor, pred, capped, iv.lower, iv.upper, strata.history, strata.regime),
    )
    if subset.test is not None and subset.rul is not None:
        every = predict_every_cycle(predictor, engines, true)
        m["every_cycle"] = {"protocol": f"every cycle of each {subset.name} test engine from its latest "
                            f"{predictor.history_readings} readings; truth R + L - t",
                            **every_cycle_metrics(every, cap, thresholds, hold)}
    if held_engines:
        every = predict_every_cycle(predictor, held_engines, np.zeros(len(held_engines)))
        m["every_cycle_holdout"] = {"protocol": f"every cycle of the {len(held_engines)} held-out run-to-failure "
                                    f"training engines from their latest {predictor.history_readings} readings",
                                    **every_cycle_metrics(every, cap, thresholds, hold)}
        if "every_cycle" not in m:
            m["every_cycle"] = m["every_cycle_holdout"]
    if isinstance(manifest.validation_metrics.get("age_correction"), dict):  # training's held-out folds, by age
        m["out_of_fold_by_age"] = manifest.validation_metrics["age_correction"]
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
    if "every_cycle" in m:
        _every_cycle_plot(m["every_cycle"], out_dir, subset.name)
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


def _every_cycle_plot(ec: dict[str, Any], out: Path, name: str) -> None:
    """RMSE and bias by true-RUL bin and by age bin, every cycle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, unit, label in ((axes[0], "by_true_rul", "true_rul", "true RUL, capped (cycles)"),
                                 (axes[1], "by_age", "age", "age (readings since the first)")):
        rows = ec[key]
        xs = np.arange(len(rows))
        ax.bar(xs - 0.2, [r["rmse"] for r in rows], 0.4, label="RMSE")
        ax.bar(xs + 0.2, [r["bias"] for r in rows], 0.4, label="bias (> 0 late)")
        ax.set_xticks(xs, [r[unit] for r in rows])
        ax.axhline(0, color="k", lw=0.8)
        ax.set(xlabel=label, ylabel="cycles")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{name}: every cycle (RMSE {ec['rmse']:.2f}, coverage {ec['coverage']:.3f})")
    fig.tight_layout()
    fig.savefig(out / "every_cycle.png", dpi=110)
    plt.close(fig)
