import numpy as np
import pytest

pytest.importorskip("torch")

from prognos.data.synthetic import synthetic_fleet
from prognos.errors import ConfigError
from prognos.features import FeaturePipeline
from prognos.training.config import TrainConfig, load_train_config
from prognos.training.trainer import engine_folds, train_ensemble


def test_folds_split_by_engine_never_by_window():
    ids = np.repeat(np.array([f"e{i}" for i in range(10)]), 7)
    fold = engine_folds(ids, folds=3, seed=4)
    for e in np.unique(ids):
        assert len(set(fold[ids == e])) == 1  # all windows of an engine sit in one fold
    assert set(fold) == {0, 1, 2}
    np.testing.assert_array_equal(fold, engine_folds(ids, folds=3, seed=4))  # seeded


def test_mixed_ensemble_has_a_member_per_fold_and_architecture_and_oof_everywhere():
    fleet = synthetic_fleet(8, seed=2, min_life=60, max_life=90)
    p = FeaturePipeline(window=10).fit(fleet)
    w = p.training_windows(fleet)
    cfg = TrainConfig(model="tcn+gru", folds=2, epochs=1, window=10, threads=1)
    seen = []
    result = train_ensemble(w, p.n_features, cfg, seen.append)
    assert len(result.model.members) == 4
    assert {r.member for r in seen} == {1, 2, 3, 4} and all(r.members == 4 for r in seen)
    assert np.all(np.isfinite(result.oof_pred)) and result.oof_pred.shape == (len(w),)
    assert np.all((result.oof_pred >= 0) & (result.oof_pred <= cfg.rul_cap))


def test_seeded_training_is_deterministic():
    fleet = synthetic_fleet(6, seed=3, min_life=60, max_life=80)
    p = FeaturePipeline(window=10).fit(fleet)
    w = p.training_windows(fleet)
    cfg = TrainConfig(model="tcn", folds=2, epochs=2, window=10, threads=1, seed=7)
    a = train_ensemble(w, p.n_features, cfg).oof_pred
    b = train_ensemble(w, p.n_features, cfg).oof_pred
    np.testing.assert_array_equal(a, b)


def test_config_file_errors_are_clear(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text('{"window": -3}')
    with pytest.raises(ConfigError, match="window: Input should be greater than or equal to 1"):
        load_train_config(bad)
    bad.write_text('{"nope": 1}')
    with pytest.raises(ConfigError, match="nope: Extra inputs are not permitted"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_train_config(tmp_path / "missing.toml")


def test_members_trained_in_worker_processes_equal_those_trained_in_process():
    """threads=2 trains members at once in two worker processes; the model must be bit-for-bit the
    threads=1 one (each member is seeded and runs on one thread wherever it runs)."""
    from prognos.training.export import torch_predict

    fleet = synthetic_fleet(6, seed=5, min_life=50, max_life=70)
    p = FeaturePipeline(window=10).fit(fleet)
    w = p.training_windows(fleet)
    one = TrainConfig(model="tcn+lstm", folds=2, epochs=2, window=10, threads=1, seed=3)
    seen: list = []
    extra = w.x[::3] + np.float32(0.1)
    a = train_ensemble(w, p.n_features, one, extra=extra)
    b = train_ensemble(w, p.n_features, one.model_copy(update={"threads": 2}), seen.append, extra=extra)
    np.testing.assert_array_equal(a.oof_pred, b.oof_pred)
    assert a.extra_pred is not None and b.extra_pred is not None
    np.testing.assert_array_equal(a.extra_pred, b.extra_pred)
    np.testing.assert_allclose(a.extra_pred, torch_predict(a.model, extra), atol=1e-4)  # = the ensemble's output
    assert a.member_epochs == b.member_epochs
    for ma, mb in zip(a.model.members, b.model.members, strict=True):
        for (ka, ta), (kb, tb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
            assert ka == kb and np.array_equal(ta.numpy(), tb.numpy()), ka
    assert {(r.member, r.epoch) for r in seen} >= {(m, 1) for m in (1, 2, 3, 4)}  # progress came back


def test_a_failing_worker_is_one_clear_error(monkeypatch):
    from prognos.errors import TrainingError
    from prognos.training.workers import Job, train_in_workers

    x = np.zeros((4, 10, 3), np.float32)
    jobs = [Job(1, 0, "no-such-network", 0), Job(2, 1, "no-such-network", 0)]
    cfg = TrainConfig(model="tcn", folds=2, window=10).model_dump_json()
    with pytest.raises(TrainingError, match=r"training worker .* stopped .* member [12]"):
        train_in_workers(jobs, x, np.zeros(4, np.float32), np.zeros(4), np.array([0, 0, 1, 1]), 3, cfg, 2,
                         lambda *a: None)

