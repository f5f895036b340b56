"""Optuna tuning on a tiny synthetic fleet: storage, pruning wiring, and a best config that trains."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("torch")

from prognos.bundle import read_bundle  # noqa: E402
from prognos.data.synthetic import synthetic_fleet  # noqa: E402
from prognos.errors import ConfigError, PrognosError  # noqa: E402
from prognos.lifecycle.tuning import TrialReport, tune_study, write_best_config  # noqa: E402
from prognos.training.config import TrainConfig, load_train_config  # noqa: E402
from prognos.training.run import train_bundle_from_readings  # noqa: E402

FAST = TrainConfig(model="cnn", folds=2, epochs=40, patience=40, holdout=0.0, threads=1)


@pytest.fixture(scope="module")
def fleet():  # type: ignore[no-untyped-def]
    return synthetic_fleet(8, seed=5, min_life=90, max_life=140)


def test_a_study_is_stored_and_its_best_config_trains(fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    seen: list[TrialReport] = []
    result = tune_study(fleet, "SYNTH", n_trials=3, storage=storage, base=FAST, epochs=2, on_trial=seen.append)
    assert [r.number for r in seen] == [0, 1, 2]
    assert result.n_trials == 3 and result.n_complete + result.n_pruned == 3
    assert result.best_value == min(r.value for r in seen if r.value is not None)
    # the study lives in the given database, under the default name
    with sqlite3.connect(tmp_path / "optuna.db") as db:
        names = [row[0] for row in db.execute("select study_name from studies")]
        n_rows = db.execute("select count(*) from trials").fetchone()[0]
    assert names == ["prognos-synth"] and n_rows == 3
    # the best configuration keeps the base's full length (epochs=2 was for the search only)
    assert result.best_config.epochs == FAST.epochs
    assert result.best_config.lr == result.best_params["lr"]
    assert result.best_config.model_params[FAST.model]["channels"] == result.best_params["channels"]

    path = write_best_config(result, tmp_path / "best.json")
    cfg = load_train_config(path, epochs=1)  # as `prognos train --config best.json --epochs 1`
    assert cfg.window == result.best_params["window"] and cfg.batch_size == result.best_params["batch_size"]
    assert json.loads(path.read_text())["tuning"]["best_trial"] == result.best_number
    bundle = train_bundle_from_readings(fleet, "SYNTH", tmp_path / "bundle", cfg, log=lambda m: None)
    assert read_bundle(bundle.path).manifest.window == cfg.window

    # a second run against the same storage adds to the study (several machines share one)
    again = tune_study(fleet, "SYNTH", n_trials=1, storage=storage, base=FAST, epochs=1)
    assert again.n_trials == 4


def test_pruning_stops_a_trial_from_the_epoch_callback(fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A pruner that prunes every reported value: each trial must stop after its first epoch."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(PrognosError, match="no trial completed"):
        tune_study(fleet, "SYNTH", n_trials=2, storage=storage, base=FAST, epochs=5,
                   pruner=optuna.pruners.ThresholdPruner(upper=0.0))
    study = optuna.load_study(study_name="prognos-synth", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    # one intermediate value (member 1, epoch 1) per trial: training stopped right there
    assert [list(t.intermediate_values) for t in study.trials] == [[1], [1]]


def test_median_pruner_prunes_a_hopeless_trial(fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Default pruner: after a good trial, a trial with a learning rate too small to learn is cut."""
    from prognos.lifecycle import tuning

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="prognos-synth", storage=storage, direction="minimize")
    good = {"dropout": 0.1, "channels": 16, "kernel": 3, "lr": 5e-3, "batch_size": 64, "window": 20, "smoothing": 0.5}
    study.enqueue_trial(good)
    study.enqueue_trial({**good, "lr": 3e-4, "batch_size": 512})
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=1)
    tuning.tune_study(fleet, "SYNTH", n_trials=2, storage=storage, base=FAST, epochs=4, pruner=pruner)
    states = [t.state for t in optuna.load_study(study_name="prognos-synth", storage=storage).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED]


def test_bad_arguments_fail_clearly(fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(ConfigError, match="--trials must be at least 1"):
        tune_study(fleet, "SYNTH", n_trials=0, storage=storage)
    with pytest.raises(PrognosError, match="fewer than folds=10"):
        tune_study(fleet, "SYNTH", n_trials=1, storage=storage, base=FAST, folds=10)
    with pytest.raises(ConfigError, match="--storage not a url: not a usable database URL"):
        tune_study(fleet, "SYNTH", n_trials=1, storage="not a url", base=FAST)
    with pytest.raises(PrognosError, match=r"--storage postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x: cannot open"):
        tune_study(fleet, "SYNTH", n_trials=1, storage="postgresql+psycopg://u:secret@127.0.0.1:1/x", base=FAST)


def test_cli_tune_writes_a_config_that_train_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from prognos import cli
    from tests.helpers import write_cmapss_dir

    data = write_cmapss_dir(tmp_path / "cmapss", n_train=8, n_test=4)
    monkeypatch.setenv("PROGNOS_DATA_DIR", str(tmp_path / "state"))
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"folds": 2, "epochs": 30, "threads": 1}))
    out = tmp_path / "best.json"
    monkeypatch.setattr("sys.argv", ["prognos", "tune", "--dataset", "FD001", "--data-dir", str(data), "--trials", "2",
                                     "--epochs", "1", "--config", str(base), "--out", str(out)])
    cli.main()
    printed = capsys.readouterr().out
    assert "2 trials" in printed and f"--config {out}" in printed
    assert (tmp_path / "state" / "optuna.db").is_file()  # default storage: the data dir
    cfg = load_train_config(out)
    assert (cfg.folds, cfg.epochs, cfg.threads) == (2, 30, 1)  # the base config, not the search shortcut

    monkeypatch.setattr("sys.argv", ["prognos", "tune", "--data-dir", str(data), "--trials", "0"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 2 and "--trials must be at least 1" in capsys.readouterr().err
