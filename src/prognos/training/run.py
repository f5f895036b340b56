"""``prognos train``: data -> fitted features -> cross-fitted ensemble -> (student) -> age correction ->
interval calibration -> bundle."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.nn import Module

from prognos.bundle import GRADIENT_FILE, Bundle, write_bundle
from prognos.correction import AgeCorrection, select_correction
from prognos.data.cmapss import Readings, load_subset
from prognos.errors import ConfigError, TrainingError
from prognos.features.pipeline import FeaturePipeline, Windows
from prognos.intervals import IntervalCalibration, calibrate
from prognos.metrics import rul_metrics
from prognos.serving.predictor import history_readings
from prognos.training.config import TrainConfig
from prognos.training.export import export_onnx, gradient_graph, torch_predict
from prognos.training.trainer import EpochReport, epoch_logger, train_ensemble

__all__ = ["split_holdout", "train_bundle", "train_bundle_from_readings"]


def split_holdout(engine_ids: list[str], share: float, seed: int) -> list[str]:
    """Engines kept out of training for evaluation (seeded, by engine)."""
    if share <= 0:
        return []
    rng = np.random.default_rng(seed + 7919)
    n = max(1, round(len(engine_ids) * share))
    return sorted((str(e) for e in rng.choice(engine_ids, size=n, replace=False)), key=lambda s: (len(s), s))


def train_bundle(
    data_dir: Path, dataset: str, out: Path, cfg: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None, log: Callable[[str], None] = print,
    teacher_out: Path | None = None,
) -> Bundle:
    subset = load_subset(data_dir, dataset)
    return train_bundle_from_readings(subset.train, subset.name, out, cfg, has_test_truth=subset.rul is not None,
                                      on_epoch=on_epoch, log=log, teacher_out=teacher_out)


def train_bundle_from_readings(
    train: Readings, dataset: str, out: Path, cfg: TrainConfig, *, has_test_truth: bool = False,
    on_epoch: Callable[[EpochReport], None] | None = None, log: Callable[[str], None] = print,
    teacher_out: Path | None = None,
) -> Bundle:
    """Train on run-to-failure ``train`` readings (every engine's last row is its failure).

    The bundle at ``out`` serves ``cfg.serve``: the distilled student (default) or the teacher
    ensemble. ``teacher_out``, with the student served, also writes a bundle serving the teacher
    (same features and held-out engines, its own calibration) — to compare the two without retraining.
    On every epoch ``on_epoch`` gets an :class:`EpochReport` (default: a line to ``log``)."""
    started = time.perf_counter()
    from prognos.training.networks import NETWORKS
    from prognos.training.trainer import architectures

    for arch in architectures(cfg.model) or [""]:
        if arch not in NETWORKS:
            known = ", ".join(sorted(NETWORKS))
            raise ConfigError(f"unknown model {arch!r}: expected one of {known} (or a mix like tcn+lstm)")
    holdout_share = cfg.holdout if cfg.holdout is not None else (0.0 if has_test_truth else 0.2)
    ids = [e.engine_id for e in train.engines()]
    held = split_holdout(ids, holdout_share, cfg.seed)
    held_out = train.select(set(held)) if held else None
    if held:
        train = train.select(set(ids) - set(held))
        log(f"holding out {len(held)} of {len(ids)} training engines for evaluation (no RUL file for {dataset})")
    pipeline = FeaturePipeline(
        window=cfg.window, rul_cap=cfg.rul_cap, smoothing=cfg.smoothing, min_trend=cfg.min_trend,
        n_regimes=cfg.n_regimes, seed=cfg.seed,
    ).fit(train)
    n_regimes = pipeline.regimes_.n_regimes if pipeline.regimes_ else 1
    log(f"{dataset}: {train.n_engines} engines, {len(train)} rows; {n_regimes} operating regime(s); "
        f"sensors {', '.join(pipeline.sensors_ or [])}")
    windows = pipeline.training_windows(train)
    if train.n_engines < cfg.folds:
        raise ConfigError(f"{dataset}: {train.n_engines} training engines are fewer than folds={cfg.folds}")
    if on_epoch is None:
        on_epoch = epoch_logger(log)
    inputs = None
    if cfg.serve == "student":  # the teacher's members label the student's windows where they are trained
        from prognos.training.distill import distill, student_windows

        inputs = student_windows(pipeline, train, windows, cfg.seed, cfg.student_late_starts, cfg.student_noise)
    result = train_ensemble(windows, pipeline.n_features, cfg, on_epoch, extra=None if inputs is None else inputs.x)
    history, regime = _strata(pipeline, train)

    def fit_output(pred: np.ndarray) -> _Fitted:
        """Age correction (if it helps held-out engines), then intervals, on out-of-fold predictions
        ``pred`` (cycles). Age is what serving sees: the readings in the history sent, at most the
        fleet's :func:`history_readings`."""
        correction = AgeCorrection(cap=cfg.rul_cap)
        max_age = history_readings(cfg.window)
        age = np.minimum(history, max_age)
        choice = None
        if cfg.age_correction != "off":
            choice = select_correction(pred, windows.y, windows.engine_ids, age, history, cfg.rul_cap,
                                       folds=cfg.folds, seed=cfg.seed, max_age=max_age)
            correction = choice.correction
        fixed = correction.apply(pred, age)
        # Interval cells: history shorter than a window (front-padded) or not, and the last reading's regime.
        cal = calibrate(fixed, windows.y, cfg.confidence, cfg.rul_cap, cfg.interval_bins,
                        history=history, regime=regime, history_edges=[cfg.window], late_life=cfg.late_life)
        val = _validation(fixed, windows.y, cal, history, regime)
        val["rmse_before_age_correction"] = float(np.sqrt(np.mean((pred - windows.y) ** 2)))
        if choice is not None:
            val["age_correction"] = choice.to_dict()
        return _Fitted(correction, fixed, cal, val)

    teacher = fit_output(result.oof_pred)
    teacher_val = teacher.validation
    teacher_val["note"] = ("out-of-fold, all windows of the training engines, in-sample age correction and "
                           "calibration")
    log(f"teacher ({len(result.member_epochs)} members): out-of-fold RMSE {teacher_val['rmse']:.2f} "
        f"in {result.seconds / 60:.1f} min")
    served: Module = result.model
    model_info: dict[str, Any] = {
        "name": cfg.model, "params": cfg.model_params, "members": len(result.member_epochs),
        "best_epochs": result.member_epochs, "served": "ensemble",
    }
    fitted = teacher
    if inputs is not None and result.extra_pred is not None:
        student = distill(inputs, result.extra_pred, pipeline.n_features, pipeline.window, cfg, on_epoch)
        # The student has no out-of-fold predictions of its own: its OOF estimate is the teacher's
        # OOF prediction moved by the student's gap to the teacher on that window (the student's
        # inputs begin with the training windows).
        gap = torch_predict(student.model, windows.x) - result.extra_pred[: len(windows)]
        fitted = fit_output(np.clip(result.oof_pred + gap, 0.0, cfg.rul_cap))
        val = fitted.validation
        val["note"] = ("student: teacher's out-of-fold prediction + (student - teacher) on each window, "
                       "all windows of the training engines, in-sample age correction and calibration")
        log(f"student {cfg.student}: RMSE vs teacher {student.agreement_rmse:.2f} on held-back engines; "
            f"estimated out-of-fold RMSE {val['rmse']:.2f} in {student.seconds / 60:.1f} min")
        served = student.model
        model_info = {
            "name": cfg.student, "params": cfg.student_params, "members": 1, "served": "student",
            "student": {"agreement_rmse": round(student.agreement_rmse, 3), "n_windows": student.n_windows,
                        "best_epoch": student.best_epoch, "seconds": round(student.seconds, 1)},
            "teacher": {"name": cfg.model, "params": cfg.model_params, "members": len(result.member_epochs),
                        "best_epochs": result.member_epochs, "validation_metrics": teacher_val},
        }
    common: dict[str, Any] = dict(pipeline=pipeline, train=train, windows=windows, dataset=dataset,
                                  holdout_engines=held, train_config=cfg.model_dump(), held_out=held_out)
    if "age_correction" in fitted.validation:
        c, val = fitted.correction, fitted.validation
        kept = "kept" if not c.is_identity else "dropped (not better in every age bin on held-out engines)"
        log(f"age correction {kept}: out-of-fold RMSE {val['rmse_before_age_correction']:.2f} -> {val['rmse']:.2f}; "
            + ", ".join(f"age {r['age']}: {r['rmse_without']:.2f} -> {r['rmse_with']:.2f}"
                        for r in val["age_correction"]["by_age"]))
    bundle = _write(out, served, fitted, model_info,
                    training_seconds=round(time.perf_counter() - started, 1), **common)
    if teacher_out is not None and cfg.serve == "student":
        info = {"name": cfg.model, "params": cfg.model_params, "members": len(result.member_epochs),
                "best_epochs": result.member_epochs, "served": "ensemble"}
        _write(teacher_out, result.model, teacher, info,
               training_seconds=round(result.seconds, 1), **common)
    return bundle


@dataclass(frozen=True)
class _Fitted:
    """What training fits on a served model's out-of-fold predictions."""

    correction: AgeCorrection
    oof: np.ndarray  # out-of-fold predictions after the age correction, cycles
    calibration: IntervalCalibration
    validation: dict[str, Any]


def _write(out: Path, served: Module, fitted: _Fitted, model_info: dict[str, Any], *, pipeline: FeaturePipeline,
           train: Readings, windows: Windows, held_out: Readings | None, **fields: Any) -> Bundle:
    # Drift monitoring: the distributions of the model's inputs and predictions it was trained on.
    from prognos.reference import REFERENCE_FILE, reference_profile

    reference = reference_profile(pipeline, train, windows, fitted.oof)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export_onnx(served, pipeline.window, pipeline.n_features, onnx_path)
        # The bundle must answer as the trained network does: check on real windows.
        from prognos.serving.runtime import OnnxRuntime

        sample = windows.x[np.linspace(0, len(windows) - 1, min(512, len(windows))).astype(int)]
        diff = float(np.max(np.abs(OnnxRuntime(onnx_path).run(sample) - torch_predict(served, sample))))
        if diff > 1e-3:
            raise TrainingError(f"ONNX export disagrees with PyTorch by {diff:.2g} cycles")
        explanations = _global_importance(OnnxRuntime(onnx_path), pipeline, windows, held_out)
        graph_path = Path(tmp) / GRADIENT_FILE
        gradient = gradient_graph(served, pipeline.window, pipeline.n_features, sample[:64], graph_path)
        extra: dict[str, str | bytes] = {REFERENCE_FILE: reference.to_json()}
        if gradient["built"]:
            extra[GRADIENT_FILE] = graph_path.read_bytes()
        return write_bundle(
            out, onnx_path=onnx_path, pipeline=pipeline, calibration=fitted.calibration,
            correction=fitted.correction,
            model={**model_info, "onnx_max_abs_diff": diff, "gradient_graph": gradient},
            # rul_metrics counts predictions (one per window); the page shows engines and windows apart.
            validation_metrics={**fitted.validation, "n_engines": len(np.unique(windows.engine_ids)),
                                "n_windows": len(windows)},
            extra_files=extra, explanations=explanations, **fields,
        )


def _global_importance(runtime: Any, pipeline: FeaturePipeline, windows: Windows, held_out: Readings | None,
                       limit: int = 512) -> dict[str, Any]:
    """Global importance per channel for the models page (:func:`prognos.serving.explain.global_importance`),
    on the held-out engines' windows when there are some, else on training windows (said so)."""
    from prognos.serving.explain import global_importance

    if held_out is not None and held_out.n_engines:
        x = pipeline.training_windows(held_out).x
        source = f"held-out engines ({held_out.n_engines}, validation)"
    else:
        x = windows.x
        source = f"training engines ({len(np.unique(windows.engine_ids))}; no engines were held out)"
    x = x[np.linspace(0, len(x) - 1, min(limit, len(x))).astype(int)]
    return global_importance(pipeline.sensors_ or [], runtime.run, x, f"{len(x)} windows of the {source}")


def _strata(pipeline: FeaturePipeline, train: Readings) -> tuple[np.ndarray, np.ndarray]:
    """Cycles of history and regime of the last reading behind every training window, in the order
    of :meth:`FeaturePipeline.training_windows` (engine by engine, one per row)."""
    engines = list(train.engines())
    history = np.concatenate([np.arange(1, len(e) + 1) for e in engines])
    regime = np.concatenate([pipeline.regime_of(e.values) for e in engines])
    return history, regime


def _validation(pred: np.ndarray, true: np.ndarray, calibration: IntervalCalibration, history: np.ndarray,
                regime: np.ndarray) -> dict[str, Any]:
    iv = calibration.apply(pred, history, regime)
    val: dict[str, Any] = rul_metrics(pred, true, iv.lower, iv.upper).to_dict()
    val["n_windows"] = len(true)
    return val
