"""``prognos tune``: hyper-parameter search with Optuna.

* **Sampler:** TPE (seeded). **Pruner:** median pruning on the validation RMSE (cycles) that the
  trainer reports after every epoch (``on_epoch`` → ``trial.report`` → ``optuna.TrialPruned``), so
  poor trials stop early. Step ``s`` of a trial is ``(member - 1) * epochs + epoch``: trials are
  compared at the same member and epoch.
* **Objective:** the out-of-fold RMSE (cycles) of the cross-fitted ensemble, the same validation
  number ``prognos train`` reports; engines held out for evaluation are never seen.
* **Storage:** any Optuna RDB URL (default SQLite in the data dir); studies are loaded if they
  exist, so several machines pointing at one database share a study.
* **Result:** the best configuration as a JSON file that ``prognos train --config FILE`` reads.

Training goes through :func:`prognos.training.trainer.train_ensemble` — the same loop as
``prognos train``; this module only samples configurations and scores them.

Search space (:func:`suggest_config`)::

    lr            log-uniform 3e-4 .. 1e-2
    batch_size    64, 128, 256, 512
    window        20 .. 40 cycles, step 5
    smoothing     0.1 .. 1.0 (weight of the newest reading; 1 = no smoothing)
    dropout       0.0 .. 0.5
    channels      16, 32, 64       (cnn)   hidden 32, 64, 128 (lstm)
    kernel        3, 5, 7          (cnn)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from pydantic import ValidationError as PydanticValidationError

from prognos.data.cmapss import Readings
from prognos.errors import ConfigError, TrainingError
from prognos.features.pipeline import FeaturePipeline
from prognos.training.config import TrainConfig
from prognos.training.run import split_holdout
from prognos.training.trainer import EpochReport, train_ensemble

__all__ = ["TrialReport", "TuneResult", "suggest_config", "tune_study", "write_best_config"]


@dataclass(frozen=True)
class TrialReport:
    """One finished trial. RMSE values in cycles; ``state`` is complete, pruned or fail."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    best_value: float | None
    best_number: int | None
    seconds: float


@dataclass(frozen=True)
class TuneResult:
    """The outcome of a study (``best_value``: out-of-fold RMSE in cycles)."""

    study_name: str
    storage: str
    best_number: int
    best_value: float
    best_params: dict[str, Any]
    best_config: TrainConfig
    n_trials: int  # every trial in the study, including earlier runs against the same storage
    n_complete: int
    n_pruned: int
    n_failed: int = 0
    history: list[TrialReport] = field(default_factory=list)  # trials run by this call

    @property
    def storage_display(self) -> str:
        """The storage URL with any password masked (it goes into files and terminals)."""
        return _masked(self.storage)


def _masked(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL (an optuna journal path, say): shown as given
        return url


# Per network: its searched hyper-parameters (name -> Optuna distribution as a suggest call).
_NETWORK_SPACE: dict[str, dict[str, list[int]]] = {
    "cnn": {"channels": [16, 32, 64], "kernel": [3, 5, 7]},
    "tcn": {"channels": [16, 32, 48, 64], "kernel": [2, 3, 5]},
    "lstm": {"hidden": [32, 64, 128]},
    "gru": {"hidden": [32, 48, 96]},
}


def suggest_config(trial: optuna.trial.BaseTrial, base: TrainConfig) -> TrainConfig:
    """A training configuration from ``base`` with the searched hyper-parameters drawn by ``trial``.

    Network hyper-parameters are drawn for every network in ``base.model`` (``"tcn"`` or a mix such
    as ``"tcn+lstm"``); with a mix their names carry the network (``lstm_hidden``)."""
    archs = [a.strip() for a in base.model.split("+") if a.strip()]
    per_network: dict[str, dict[str, float]] = {}
    for arch in archs:
        prefix = f"{arch}_" if len(archs) > 1 else ""
        current = base.model_params.get(arch)
        params: dict[str, float] = dict(current) if isinstance(current, dict) else {}
        params["dropout"] = trial.suggest_float(f"{prefix}dropout", 0.0, 0.5)
        for name, choices in _NETWORK_SPACE.get(arch, {}).items():
            params[name] = trial.suggest_categorical(f"{prefix}{name}", choices)
        per_network[arch] = params
    update: dict[str, Any] = {
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
        "window": trial.suggest_int("window", 20, 40, step=5),
        "smoothing": trial.suggest_float("smoothing", 0.1, 1.0),
    }
    # model_params is per network ({"tcn": {"channels": 48}}); a configuration schema with one flat
    # dict (single network) takes the lone network's values instead.
    data = {**base.model_dump(), **update}
    try:
        return TrainConfig.model_validate({**data, "model_params": per_network})
    except PydanticValidationError:
        if len(archs) != 1:
            raise
        return TrainConfig.model_validate({**data, "model_params": per_network[archs[0]]})


def _objective(train: Readings, base: TrainConfig) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        cfg = suggest_config(trial, base)
        # The same feature fit as `prognos train`; window and smoothing are searched, so refit per trial.
        pipeline = FeaturePipeline(
            window=cfg.window, rul_cap=cfg.rul_cap, smoothing=cfg.smoothing, min_trend=cfg.min_trend,
            n_regimes=cfg.n_regimes, seed=cfg.seed,
        ).fit(train)
        windows = pipeline.training_windows(train)

        def on_epoch(r: EpochReport) -> None:
            step = (r.member - 1) * cfg.epochs + r.epoch
            trial.report(r.val_rmse, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"val RMSE {r.val_rmse:.2f} at member {r.member} epoch {r.epoch}")

        result = train_ensemble(windows, pipeline.n_features, cfg, on_epoch)
        return float(np.sqrt(np.mean((result.oof_pred - windows.y) ** 2)))

    return objective


def tune_study(
    train: Readings, dataset: str, *, n_trials: int, storage: str, study_name: str | None = None,
    base: TrainConfig | None = None, epochs: int | None = None, folds: int | None = None,
    has_test_truth: bool = False, seed: int = 0, timeout_s: float | None = None,
    pruner: optuna.pruners.BasePruner | None = None, on_trial: Callable[[TrialReport], None] | None = None,
) -> TuneResult:
    """Run ``n_trials`` more trials of the study ``study_name`` (default ``prognos-<dataset>``) in
    ``storage`` (an RDB URL). ``epochs``/``folds`` shorten each trial without entering the best
    configuration, which is ``base`` with the best searched values."""
    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1, not {n_trials}")
    base = base or TrainConfig.model_validate({})
    search_base = base.model_copy(update={k: v for k, v in {"epochs": epochs, "folds": folds}.items() if v})
    holdout = base.holdout if base.holdout is not None else (0.0 if has_test_truth else 0.2)
    ids = [e.engine_id for e in train.engines()]
    held = split_holdout(ids, holdout, base.seed)
    if held:  # the engines `prognos train` would keep for evaluation stay unseen here too
        train = train.select(set(ids) - set(held))
    if train.n_engines < search_base.folds:
        raise ConfigError(f"{dataset}: {train.n_engines} training engines are fewer than folds={search_base.folds}")
    name = study_name or f"prognos-{dataset.lower()}"
    rdb = _open_storage(storage)
    try:
        study = optuna.create_study(
            study_name=name, storage=rdb, direction="minimize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
        )
        history: list[TrialReport] = []
        started = [time.perf_counter()]

        def callback(study: optuna.Study, ft: optuna.trial.FrozenTrial) -> None:
            done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
            best = min(done, key=lambda t: t.value if t.value is not None else math.inf) if done else None
            report = TrialReport(
                number=ft.number, state=ft.state.name.lower(), value=ft.value, params=dict(ft.params),
                best_value=best.value if best else None, best_number=best.number if best else None,
                seconds=round(time.perf_counter() - started[0], 2),
            )
            started[0] = time.perf_counter()
            history.append(report)
            if on_trial:
                on_trial(report)

        study.optimize(_objective(train, search_base), n_trials=n_trials, timeout=timeout_s, callbacks=[callback],
                       catch=(FloatingPointError,))
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        complete = states.count(optuna.trial.TrialState.COMPLETE)
        if not complete:
            raise TrainingError(f"study {name!r}: no trial completed ({states.count(optuna.trial.TrialState.PRUNED)} "
                               "pruned); run more trials")
        best = study.best_trial
        # Replay the best trial's values onto the full configuration (not the shortened search one).
        best_config = suggest_config(optuna.trial.FixedTrial(best.params), base)
        return TuneResult(
            study_name=name, storage=storage, best_number=best.number, best_value=float(best.value or math.nan),
            best_params=dict(best.params), best_config=best_config, n_trials=len(trials), n_complete=complete,
            n_pruned=states.count(optuna.trial.TrialState.PRUNED), n_failed=states.count(optuna.trial.TrialState.FAIL),
            history=history,
        )
    finally:
        rdb.engine.dispose()  # close pooled connections now, not whenever the object is collected


def _open_storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage for ``url``. Bad URLs and unreachable servers become one-line errors.

    Two machines starting on an empty database both create Optuna's tables; one of them loses
    (a duplicate-type or duplicate-table error on PostgreSQL). The schema exists by then, so that
    process simply tries again.
    """
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

    shown = _masked(url)
    for attempt in range(1, attempts + 1):
        try:
            return optuna.storages.RDBStorage(url)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ConfigError(f"--storage {shown}: not a usable database URL ({exc})") from None
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise ConfigError(f"--storage {shown}: cannot open the study database ({reason})") from None
        except DBAPIError as exc:
            if attempt == attempts:
                reason = str(exc.orig or exc).strip().splitlines()[0]
                raise ConfigError(f"--storage {shown}: cannot set up the study tables ({reason})") from None
            time.sleep(0.2 * attempt)  # the other process is finishing the schema
    raise AssertionError("unreachable")


def write_best_config(result: TuneResult, path: Path) -> Path:
    """Write ``{"train": <TrainConfig>, "tuning": <provenance>}``: ``prognos train --config`` reads the
    ``train`` table and ignores the rest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "train": result.best_config.model_dump(),
        "tuning": {"study": result.study_name, "storage": result.storage_display, "best_trial": result.best_number,
                   "oof_rmse_cycles": result.best_value, "params": result.best_params,
                   "trials": result.n_trials, "pruned": result.n_pruned},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
    return path
